// The text the tokenizer's speed is measured on, here and in scripts/make_tokenizer_fixtures.py
// (tokenizers' figure): the lines of tests/fixtures/tokenizer/corpus.jsonl in order, repeated
// until they hold `megabytes` MB of UTF-8; each line is one encode call.
#pragma once

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"

namespace deltatune {

inline std::vector<std::string> tokenizer_bench_lines(const std::string& corpus_jsonl, double megabytes, size_t* total_bytes) {
  std::ifstream in(corpus_jsonl);
  DT_CHECK(in, corpus_jsonl, ": cannot open");
  std::vector<std::string> corpus;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) corpus.push_back(nlohmann::json::parse(line).get<std::string>());
  std::vector<std::string> lines;
  size_t total = 0;
  while (double(total) < megabytes * 1e6)
    for (const std::string& s : corpus) lines.push_back(s), total += s.size();
  *total_bytes = total;
  return lines;
}

}  // namespace deltatune
