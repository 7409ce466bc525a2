// libFuzzer target: the dataset reader (data/jsonl.cpp) on arbitrary bytes, as JSONL and as a JSON
// document, then each row it accepts as a pre-tokenized sample. Every outcome must be a row, a
// counted skip or an Error naming the place; never a crash, a sanitizer report, another
// exception type, or a sample whose labels and ids disagree. Run by scripts/fuzz.sh jsonl.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>

#include "core/error.h"
#include "data/dataset.h"
#include "data/jsonl.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte picks the mode: JSON document or JSONL, skipping bad rows or not.
  const bool json_array = data[0] & 1, skip_bad_rows = data[0] & 2;
  std::istringstream in(std::string(reinterpret_cast<const char*>(data) + 1, size - 1));
  int64_t rows = 0;
  try {
    deltatune::read_json_rows(in, "fuzz.jsonl", json_array, "train", skip_bad_rows,
                              [&](const nlohmann::ordered_json& row, const deltatune::RowSource& where) {
                                if (where.line <= 0) std::abort();  // places are 1-based
                                ++rows;
                                const deltatune::Sample s = deltatune::pretokenized_sample(row, 1000, false);
                                if (s.labels.size() != s.input_ids.size() || s.input_ids.empty()) std::abort();
                              });
  } catch (const deltatune::Error& e) {
    if (std::string(e.what()).empty()) std::abort();  // an error always says something
  }
  return 0;
}
