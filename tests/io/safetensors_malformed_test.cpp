// Every kind of malformed safetensors file is refused with an Error that names the problem (and,
// through SafetensorsFile, the file); none crashes. The images are built by hand, byte by byte.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "io/safetensors.h"
#include "io/test_files.h"

namespace deltatune {
namespace {

using test::error_of;
using testing::HasSubstr;

std::string length_prefix(uint64_t n) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[size_t(i)] = char(uint8_t(n >> (8 * i)));
  return bytes;
}

// A file: the header's length, the header, then `data_bytes` bytes of data.
std::string image(const std::string& header, size_t data_bytes = 0) {
  std::string data(data_bytes, '\0');
  for (size_t i = 0; i < data_bytes; ++i) data[i] = char(i * 7 + 1);
  return length_prefix(header.size()) + header + data;
}

SafetensorsHeader parse(const std::string& bytes) {
  return parse_safetensors_header(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size());
}

std::string parse_error(const std::string& bytes) {
  return error_of([&] { parse(bytes); });
}

// One tensor entry 'a' with the given fields (JSON text), over `data_bytes` of data.
std::string entry_error(const std::string& fields, size_t data_bytes = 64) {
  return parse_error(image(R"({"a": {)" + fields + "}}", data_bytes));
}

TEST(SafetensorsMalformed, TooShortForTheLengthPrefix) {
  EXPECT_THAT(parse_error(""), HasSubstr("only 0 bytes"));
  EXPECT_THAT(parse_error(std::string("\x02\0\0", 3)), HasSubstr("only 3 bytes"));
}

TEST(SafetensorsMalformed, HeaderLengthPastTheEnd) {
  EXPECT_THAT(parse_error(length_prefix(100) + "{}"),
              HasSubstr("header length 100 runs past the end of the file (10 bytes)"));
}

TEST(SafetensorsMalformed, AbsurdHeaderLength) {
  EXPECT_THAT(parse_error(length_prefix(100'000'001) + "{}"),
              HasSubstr("header length 100000001 exceeds the safetensors limit"));
  EXPECT_THAT(parse_error(length_prefix(~0ull) + "{}"), HasSubstr("exceeds the safetensors limit"));
}

TEST(SafetensorsMalformed, InvalidJson) {
  EXPECT_THAT(parse_error(image(R"({"a": )")), HasSubstr("header: invalid JSON"));
  EXPECT_THAT(parse_error(image("")), HasSubstr("invalid JSON"));
  EXPECT_THAT(parse_error(image("{} trailing")), HasSubstr("invalid JSON"));
  EXPECT_THAT(parse_error(image("{\"\xff\": 1}")), HasSubstr("invalid JSON"));  // not UTF-8
}

TEST(SafetensorsMalformed, TopLevelNotAnObject) {
  EXPECT_THAT(parse_error(image("[1, 2]")), HasSubstr("header is not a JSON object but array"));
}

TEST(SafetensorsMalformed, EntryNotAnObject) {
  EXPECT_THAT(parse_error(image(R"({"a": [1, 2]})")),
              HasSubstr("tensor 'a': is not an object but array"));
}

TEST(SafetensorsMalformed, MissingFields) {
  EXPECT_THAT(entry_error(R"("shape": [1], "data_offsets": [0, 4])"),
              HasSubstr("tensor 'a': missing 'dtype'"));
  EXPECT_THAT(entry_error(R"("dtype": "F32", "data_offsets": [0, 4])"),
              HasSubstr("tensor 'a': missing 'shape'"));
  EXPECT_THAT(entry_error(R"("dtype": "F32", "shape": [1])"),
              HasSubstr("tensor 'a': missing 'data_offsets'"));
}

TEST(SafetensorsMalformed, IllTypedFields) {
  EXPECT_THAT(entry_error(R"("dtype": 5, "shape": [1], "data_offsets": [0, 4])"),
              HasSubstr("'dtype' is not a string: 5"));
  EXPECT_THAT(entry_error(R"("dtype": "F32", "shape": "1x1", "data_offsets": [0, 4])"),
              HasSubstr("'shape' is not an array: \"1x1\""));
  EXPECT_THAT(entry_error(R"("dtype": "F32", "shape": [1], "data_offsets": [4])"),
              HasSubstr("'data_offsets' is not an array [begin, end]: [4]"));
  EXPECT_THAT(entry_error(R"("dtype": "F32", "shape": [1], "data_offsets": {"begin": 0})"),
              HasSubstr("'data_offsets' is not an array [begin, end]"));
  EXPECT_THAT(entry_error(R"("dtype": "F32", "shape": [1], "data_offsets": ["0", 4])"),
              HasSubstr("'data_offsets' begin is not an integer: \"0\""));
  EXPECT_THAT(entry_error(R"("dtype": "F32", "shape": [1], "data_offsets": [0, -4])"),
              HasSubstr("'data_offsets' end is negative: -4"));
}

TEST(SafetensorsMalformed, UnknownDtype) {
  EXPECT_THAT(entry_error(R"("dtype": "F12", "shape": [1], "data_offsets": [0, 4])"),
              HasSubstr("tensor 'a': unknown dtype \"F12\""));
}

TEST(SafetensorsMalformed, NegativeDimension) {
  EXPECT_THAT(entry_error(R"("dtype": "F32", "shape": [2, -3], "data_offsets": [0, 24])"),
              HasSubstr("a dimension of 'shape' is negative: -3"));
}

TEST(SafetensorsMalformed, NonIntegerDimension) {
  EXPECT_THAT(entry_error(R"("dtype": "F32", "shape": [2.5], "data_offsets": [0, 10])"),
              HasSubstr("a dimension of 'shape' is not an integer: 2.5"));
  EXPECT_THAT(entry_error(R"("dtype": "F32", "shape": [2.0], "data_offsets": [0, 8])"),
              HasSubstr("a dimension of 'shape' is not an integer: 2.0"));
  EXPECT_THAT(entry_error(R"("dtype": "F32", "shape": [null], "data_offsets": [0, 8])"),
              HasSubstr("a dimension of 'shape' is not an integer: null"));
  // Past uint64, nlohmann reads a number as float.
  EXPECT_THAT(
      entry_error(R"("dtype": "F32", "shape": [18446744073709551616], "data_offsets": [0, 8])"),
      HasSubstr("is not an integer"));
  EXPECT_THAT(
      entry_error(R"("dtype": "F32", "shape": [9223372036854775808], "data_offsets": [0, 8])"),
      HasSubstr("dimension 9223372036854775808 of 'shape' is too large"));
}

TEST(SafetensorsMalformed, BeginAfterEnd) {
  EXPECT_THAT(entry_error(R"("dtype": "F32", "shape": [1], "data_offsets": [8, 4])"),
              HasSubstr("tensor 'a': data_offsets [8, 4]: begin is after end"));
}

TEST(SafetensorsMalformed, OffsetsPastTheData) {
  EXPECT_THAT(entry_error(R"("dtype": "F32", "shape": [6], "data_offsets": [0, 24])", 20),
              HasSubstr("data_offsets [0, 24] run past the end of the data section (20 bytes)"));
  EXPECT_THAT(entry_error(R"("dtype": "U8", "shape": [0], "data_offsets": [21, 21])", 20),
              HasSubstr("run past the end of the data section"));
}

TEST(SafetensorsMalformed, OverlappingRanges) {
  const std::string header = R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                                 "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}})";
  EXPECT_THAT(parse_error(image(header, 24)),
              HasSubstr("tensors 'a' [0, 16] and 'b' [8, 24] overlap"));
  const std::string same = R"({"b": {"dtype": "U8", "shape": [4], "data_offsets": [4, 8]},
                               "a": {"dtype": "I32", "shape": [1], "data_offsets": [4, 8]}})";
  EXPECT_THAT(parse_error(image(same, 8)), HasSubstr("tensors 'a' [4, 8] and 'b' [4, 8] overlap"));
}

TEST(SafetensorsMalformed, ShapeDoesNotMatchTheByteSize) {
  EXPECT_THAT(
      parse_error(
          image(R"({"a.weight": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 20]}})", 24)),
      HasSubstr("tensor 'a.weight': data_offsets [0, 20] but shape [2, 3] of F32 needs 24 bytes"));
}

TEST(SafetensorsMalformed, ShapeWhoseSizeOverflows) {
  // 2^32 * 2^32 * 2^32 elements wraps to 0 in 64 bits, which would match data_offsets [0, 0].
  EXPECT_THAT(entry_error(R"("dtype": "F32", "shape": [4294967296, 4294967296, 4294967296],
                             "data_offsets": [0, 0])"),
              HasSubstr("shape [4294967296, 4294967296, 4294967296] of F32 is too large"));
  // 2^61 elements fit; 2^61 * 8 bytes wraps to 0.
  EXPECT_THAT(
      entry_error(R"("dtype": "F64", "shape": [2305843009213693952], "data_offsets": [0, 0])"),
      HasSubstr("its size overflows"));
  // Empty, yet its other dimensions alone would overflow the strides of a view.
  EXPECT_THAT(
      entry_error(R"("dtype": "U8", "shape": [0, 4294967296, 4294967296], "data_offsets": [0, 0])"),
      HasSubstr("is too large"));
}

TEST(SafetensorsMalformed, DuplicateNames) {
  const std::string header = R"({"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]},
                                 "a": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}})";
  EXPECT_THAT(parse_error(image(header, 2)), HasSubstr("name 'a' appears twice"));
  EXPECT_THAT(entry_error(R"("dtype": "U8", "dtype": "F32", "shape": [1], "data_offsets": [0, 1])"),
              HasSubstr("key 'dtype' appears twice in one object"));
}

TEST(SafetensorsMalformed, DeeplyNestedValues) {
  // A million levels: a recursive walk over this value would overflow the stack.
  const size_t depth = 1'000'000;
  const std::string nested = std::string(depth, '[') + std::string(depth, ']');
  EXPECT_THAT(
      entry_error(R"("dtype": "F32", "shape": [)" + nested + R"(], "data_offsets": [0, 4])"),
      HasSubstr("a dimension of 'shape' is not an integer: array nested more than 8 levels deep"));
}

TEST(SafetensorsMalformed, MetadataNotAnObjectOfStrings) {
  EXPECT_THAT(parse_error(image(R"({"__metadata__": ["format", "pt"]})")),
              HasSubstr("'__metadata__' is not an object but array"));
  EXPECT_THAT(parse_error(image(R"({"__metadata__": {"format": "pt", "step": 3}})")),
              HasSubstr("'__metadata__' value of 'step' is not a string: 3"));
  EXPECT_THAT(parse_error(image(R"({"__metadata__": {"a": "1", "a": "2"}})")),
              HasSubstr("key 'a' appears twice"));
}

TEST(SafetensorsMalformed, AcceptsTheEdgesOfValid) {
  // No tensors; padding spaces; empty tensors sharing an offset; a gap before the last tensor.
  EXPECT_TRUE(parse(image("{}       ")).tensors.empty());
  const auto header = parse(image(R"({"__metadata__": {}, "e": {"dtype": "F32", "shape": [0, 3],
      "data_offsets": [4, 4]}, "s": {"dtype": "I32", "shape": [], "data_offsets": [0, 4]},
      "z": {"dtype": "BF16", "shape": [0], "data_offsets": [4, 4]},
      "g": {"dtype": "U8", "shape": [2], "data_offsets": [6, 8]}})",
                                  8));
  ASSERT_EQ(header.tensors.size(), 4u);
  EXPECT_EQ(header.tensors[1].name, "s");  // file order, not sorted
  EXPECT_TRUE(header.tensors[1].shape.empty());
  EXPECT_TRUE(header.metadata.empty());
}

TEST(SafetensorsMalformed, FileErrorsNameTheFile) {
  test::ScratchDir dir;
  const std::string path = dir.file("model.safetensors");
  test::write_bytes(
      path,
      image(R"({"a.weight": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 20]}})", 24));
  EXPECT_THAT(error_of([&] { SafetensorsFile file(path); }),
              HasSubstr(path + ": tensor 'a.weight': data_offsets [0, 20] but shape [2, 3] of "
                               "F32 needs 24 bytes"));
  test::write_bytes(path, "");
  EXPECT_THAT(error_of([&] { SafetensorsFile file(path); }), HasSubstr(path + ": only 0 bytes"));
  EXPECT_THAT(error_of([&] { SafetensorsFile file(dir.file("absent.safetensors")); }),
              HasSubstr("absent.safetensors: cannot open: No such file or directory"));
  EXPECT_THAT(error_of([&] { SafetensorsFile file(dir.path().string()); }),
              HasSubstr(": not a regular file"));
}

TEST(SafetensorsMalformed, MisalignedDataIsRefusedWhenViewed) {
  // A 6-byte header puts the data at file offset 14: F32 elements there would be misaligned.
  const std::string header = R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                                 "b": {"dtype": "U8", "shape": [2], "data_offsets": [4, 6]}})";
  std::string padded = header;
  while (padded.size() % 8 != 6) padded += ' ';
  test::ScratchDir dir;
  const std::string path = dir.file("old.safetensors");
  test::write_bytes(path, image(padded, 6));
  SafetensorsFile file(path);
  EXPECT_THAT(error_of([&] { file.tensor("a"); }),
              HasSubstr("tensor 'a': data at file offset " + std::to_string(8 + padded.size()) +
                        " is not aligned to its 4-byte F32 elements"));
  EXPECT_EQ(file.tensor("b").dtype, DType::U8);  // bytes are always aligned
}

}  // namespace
}  // namespace deltatune
