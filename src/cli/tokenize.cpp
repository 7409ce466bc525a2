// deltatune tokenize TOKENIZER [--file F] [--jsonl]: token ids of each input line, one JSON array
// a line. With --jsonl each input line is a JSON string, so one text may hold newlines.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/commands.h"
#include "core/error.h"
#include "text/tokenizer.h"

namespace deltatune::cli {

namespace {

struct TokenizeArgs {
  std::string tokenizer, file;
  bool jsonl = false;
};

int run_tokenize(const TokenizeArgs& args) {
  const Tokenizer tokenizer = Tokenizer::load(args.tokenizer);
  std::ifstream file;
  if (!args.file.empty()) {
    file.open(args.file, std::ios::binary);
    DT_CHECK(file, args.file, ": cannot open");
  }
  std::istream& in = args.file.empty() ? std::cin : file;
  const std::string source = args.file.empty() ? "stdin" : args.file;
  std::string line, out;
  for (size_t number = 1; std::getline(in, line); ++number) {
    std::string text;
    if (args.jsonl) {
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range for a number like 1e999
        fail(source, ":", number, ": not JSON: ", e.what());
      }
      DT_CHECK(j.is_string(), source, ":", number, ": expected a JSON string, found ", j.type_name());
      text = j.get<std::string>();
    } else {
      text = std::move(line);
    }
    out = "[";
    for (int32_t id : tokenizer.encode(text)) {
      if (out.size() > 1) out += ", ";
      out += std::to_string(id);
    }
    out += "]\n";
    std::fwrite(out.data(), 1, out.size(), stdout);
  }
  return 0;
}

}  // namespace

Action add_tokenize(CLI::App& app) {
  auto* sub = app.add_subcommand("tokenize", "Token ids of each input line (a JSON array a line)");
  auto args = std::make_shared<TokenizeArgs>();
  sub->add_option("tokenizer", args->tokenizer, "tokenizer.json, or a folder holding it")->required();
  sub->add_option("--file", args->file, "read lines from this file (default: standard input)");
  sub->add_flag("--jsonl", args->jsonl, "each line is a JSON string");
  return [args] { return run_tokenize(*args); };
}

}  // namespace deltatune::cli
