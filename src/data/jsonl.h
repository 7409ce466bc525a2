// Reading datasets: JSONL (one JSON object per line) or JSON (an array of objects, or an object
// whose `split` key holds one). Every malformed row is reported as file:line and the problem;
// with skip_bad_rows the caller's handler may drop it instead, and the rows dropped are counted.
#pragma once

#include <functional>
#include <istream>
#include <nlohmann/json.hpp>
#include <string>

namespace deltatune {

struct RowSource {
  const std::string& file;
  int64_t line;  // 1-based line in the file (JSONL) or index + 1 in the array (JSON)
  std::string where() const;  // "file:line"
};

// Calls on_row for every row in file order. An exception (Error) thrown by on_row or by the
// reader is rethrown with the row's place, unless skip_bad_rows, in which case the row is counted
// and skipped. Rows keep their keys in file order (as Python's json does: templates' tojson sees
// that order). Returns the number of rows skipped.
int64_t read_json_rows(const std::string& path, const std::string& split, bool skip_bad_rows,
                       const std::function<void(const nlohmann::ordered_json&, const RowSource&)>& on_row);

// The same over a stream already open: `name` is for messages, `json_array` picks JSON (an array,
// or an object holding `split`) over JSONL.
int64_t read_json_rows(std::istream& in, const std::string& name, bool json_array, const std::string& split,
                       bool skip_bad_rows,
                       const std::function<void(const nlohmann::ordered_json&, const RowSource&)>& on_row);

}  // namespace deltatune
