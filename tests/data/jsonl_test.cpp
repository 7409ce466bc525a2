// The dataset reader (data/jsonl.cpp): rows in order with their places, and every malformed input
// an Error naming the place, including what the fuzzer found (a number too large for a double
// made nlohmann throw out_of_range, which escaped as an uncaught exception).
#include <gtest/gtest.h>

#include <sstream>

#include "core/error.h"
#include "data/jsonl.h"

namespace deltatune {
namespace {

std::string read_error(const std::string& text, bool json_array, bool skip = false, int64_t* skipped = nullptr) {
  std::istringstream in(text);
  try {
    const int64_t n = read_json_rows(in, "data.jsonl", json_array, "train", skip, [](const auto&, const auto&) {});
    if (skipped) *skipped = n;
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(JsonRows, RowsComeInOrderWithTheirLines) {
  std::istringstream in("{\"a\": 1}\n\n  \n{\"a\": 2}\r\n");
  std::vector<std::pair<int64_t, int64_t>> seen;
  read_json_rows(in, "d.jsonl", false, "", false,
                 [&](const nlohmann::ordered_json& row, const RowSource& src) { seen.push_back({row["a"], src.line}); });
  EXPECT_EQ(seen, (std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {2, 4}}));
}

TEST(JsonRows, MalformedInputNamesThePlace) {
  EXPECT_NE(read_error("{\"a\": 1}\n{\"a\": \n", false).find("data.jsonl:2: invalid JSON"), std::string::npos);
  EXPECT_NE(read_error("{\"a\": 1}\n[1]\n", false).find("data.jsonl:2: a row must be a JSON object, got array"),
            std::string::npos);
  // Numbers past double's range: nlohmann's out_of_range, reported like any parse error.
  EXPECT_NE(read_error("{\"a\": 1E111111111055555555}\n", false).find("data.jsonl:1: invalid JSON"), std::string::npos);
  EXPECT_NE(read_error("[1E111111111055555555]", true).find("data.jsonl: invalid JSON"), std::string::npos);
  EXPECT_NE(read_error("{\"valid\": []}", true).find("holding 'train'"), std::string::npos);
}

TEST(JsonRows, SkipBadRowsCountsThem) {
  int64_t skipped = -1;
  EXPECT_EQ(read_error("{\"a\": 1}\nnot json\n{\"a\": 1E999}\n7\n", false, true, &skipped), "");
  EXPECT_EQ(skipped, 3);
}

}  // namespace
}  // namespace deltatune
