#include "data/jsonl.h"

#include <cstdio>
#include <fstream>

#include "core/error.h"

namespace deltatune {

std::string RowSource::where() const { return file + ":" + std::to_string(line); }

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

int64_t read_json_rows(const std::string& path, const std::string& split, bool skip_bad_rows,
                       const std::function<void(const nlohmann::ordered_json&, const RowSource&)>& on_row) {
  std::ifstream in(path, std::ios::binary);
  DT_CHECK(in, path, ": cannot open the dataset file");
  return read_json_rows(in, path, ends_with(path, ".json"), split, skip_bad_rows, on_row);
}

int64_t read_json_rows(std::istream& in, const std::string& path, bool json_array, const std::string& split,
                       bool skip_bad_rows,
                       const std::function<void(const nlohmann::ordered_json&, const RowSource&)>& on_row) {
  int64_t skipped = 0;
  auto handle = [&](const RowSource& src, const std::function<nlohmann::ordered_json()>& parse) {
    try {
      const nlohmann::ordered_json row = parse();
      DT_CHECK(row.is_object(), "a row must be a JSON object, got ", row.type_name());
      on_row(row, src);
    } catch (const Error& e) {
      if (!skip_bad_rows) fail(src.where(), ": ", e.what());
      ++skipped;
    } catch (const nlohmann::json::exception& e) {
      if (!skip_bad_rows) fail(src.where(), ": ", e.what());
      ++skipped;
    }
  };
  if (json_array) {
    nlohmann::ordered_json doc;
    try {
      doc = nlohmann::ordered_json::parse(in);
    } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range for a number like 1e999
      fail(path, ": invalid JSON: ", e.what());
    }
    const nlohmann::ordered_json* rows = &doc;
    if (doc.is_object()) {
      DT_CHECK(!split.empty() && doc.contains(split), path, ": a JSON dataset must be a list of rows",
               split.empty() ? "" : ", or an object holding '" + split + "'");
      rows = &doc.at(split);
    }
    DT_CHECK(rows->is_array(), path, ": a JSON dataset must be a list of rows");
    for (size_t i = 0; i < rows->size(); ++i)
      handle(RowSource{path, int64_t(i + 1)}, [&] { return (*rows)[i]; });
    return skipped;
  }
  std::string line;
  int64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;  // blank lines are not rows
    handle(RowSource{path, number}, [&] {
      try {
        return nlohmann::ordered_json::parse(line);
      } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range for a number like 1e999
        fail("invalid JSON: ", e.what());
      }
    });
  }
  return skipped;
}

}  // namespace deltatune
