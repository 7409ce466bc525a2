// Every kind of malformed GGUF file is refused with an Error that names the problem (and, through
// GgufFile, the file); none crashes or allocates more than the file's size. The images are built
// byte by byte from a valid one.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "io/gguf.h"
#include "io/test_files.h"

namespace deltatune {
namespace {

using test::error_of;
using testing::HasSubstr;

// A GGUF image assembled field by field.
struct Image {
  std::string bytes;
  Image& raw(const std::string& s) { bytes += s; return *this; }
  template <class T>
  Image& put(T v) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    bytes.append(b, sizeof(T));
    return *this;
  }
  Image& u32(uint32_t v) { return put(v); }
  Image& u64(uint64_t v) { return put(v); }
  Image& str(const std::string& s) { return u64(s.size()).raw(s); }
  Image& header(uint64_t tensors, uint64_t kvs, uint32_t version = 3) { return raw("GGUF").u32(version).u64(tensors).u64(kvs); }
  Image& kv_u32(const std::string& key, uint32_t v) { return str(key).u32(uint32_t(GgufType::U32)).u32(v); }
  Image& tensor(const std::string& name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
    str(name).u32(uint32_t(ne.size()));
    for (uint64_t d : ne) u64(d);
    return u32(type).u64(offset);
  }
  // Zero padding to `alignment`, then `n` data bytes.
  Image& data(size_t n, size_t alignment = 32) {
    bytes.append((alignment - bytes.size() % alignment) % alignment, '\0');
    bytes.append(n, '\x5a');
    return *this;
  }
};

std::string parse_error(const Image& image) {
  return error_of([&] { parse_gguf(reinterpret_cast<const std::byte*>(image.bytes.data()), image.bytes.size()); });
}

constexpr uint32_t F32 = uint32_t(GgmlType::F32);

TEST(GgufMalformed, ValidImageParses) {
  Image im;
  im.header(1, 1).kv_u32("k", 7).tensor("t", {4}, F32, 0).data(16);
  const GgufHeader h = parse_gguf(reinterpret_cast<const std::byte*>(im.bytes.data()), im.bytes.size());
  EXPECT_EQ(h.tensors.at(0).nbytes, 16u);
  EXPECT_EQ(h.data_offset, 96u);
}

TEST(GgufMalformed, TooShortForTheMagic) {
  EXPECT_THAT(parse_error(Image{}), HasSubstr("truncated: the magic at offset 0 needs 4 bytes, only 0 remain"));
  EXPECT_THAT(parse_error(Image{}.raw("GG")), HasSubstr("only 2 remain"));
}

TEST(GgufMalformed, WrongMagic) {
  EXPECT_THAT(parse_error(Image{}.raw("GGML").u32(3)), HasSubstr("not a GGUF file: it starts with 'GGML'"));
  EXPECT_THAT(parse_error(Image{}.raw(std::string("\x00\x01GG", 4))), HasSubstr("starts with '??GG'"));
}

TEST(GgufMalformed, UnsupportedVersions) {
  EXPECT_THAT(parse_error(Image{}.header(0, 0, 1)), HasSubstr("GGUF version 1 is not supported"));
  EXPECT_THAT(parse_error(Image{}.header(0, 0, 4)), HasSubstr("GGUF version 4 is not supported"));
  EXPECT_THAT(parse_error(Image{}.header(0, 0, 0)), HasSubstr("GGUF version 0"));
  EXPECT_THAT(parse_error(Image{}.header(0, 0, 0x03000000)), HasSubstr("big-endian"));
}

TEST(GgufMalformed, TruncatedHeader) {
  EXPECT_THAT(parse_error(Image{}.raw("GGUF").u32(3).u64(0)),
              HasSubstr("truncated: the metadata count at offset 16 needs 8 bytes"));
}

TEST(GgufMalformed, AbsurdCounts) {
  EXPECT_THAT(parse_error(Image{}.header(0, ~0ull)), HasSubstr("claims 18446744073709551615 metadata entries"));
  EXPECT_THAT(parse_error(Image{}.header(1ull << 40, 0)), HasSubstr("claims 1099511627776 tensors"));
}

TEST(GgufMalformed, TruncatedMetadata) {
  EXPECT_THAT(parse_error(Image{}.header(0, 2).kv_u32("a long enough key", 1)),
              HasSubstr("metadata entry 1: truncated: the key at offset 57"));
  EXPECT_THAT(parse_error(Image{}.header(0, 1).str("k").u32(uint32_t(GgufType::U64)).u32(1)),
              HasSubstr("metadata entry 0 ('k'): truncated: a scalar value"));
}

TEST(GgufMalformed, AbsurdStringLength) {
  EXPECT_THAT(parse_error(Image{}.header(0, 1).u64(~0ull).raw("kkkkkk")),
              HasSubstr("metadata entry 0: the key at offset 32 claims 18446744073709551615 bytes, only 6 remain"));
  EXPECT_THAT(parse_error(Image{}.header(0, 1).str("k").u32(uint32_t(GgufType::STRING)).u64(1ull << 40)),
              HasSubstr("a string value at offset 45 claims 1099511627776 bytes"));
}

TEST(GgufMalformed, EmptyKey) {
  EXPECT_THAT(parse_error(Image{}.header(0, 1).kv_u32("", 1)), HasSubstr("metadata entry 0 (''): the key is empty"));
}

TEST(GgufMalformed, DuplicateKey) {
  EXPECT_THAT(parse_error(Image{}.header(0, 2).kv_u32("k", 1).kv_u32("k", 2)),
              HasSubstr("metadata entry 1 ('k'): the key appears twice"));
}

TEST(GgufMalformed, UnknownValueType) {
  EXPECT_THAT(parse_error(Image{}.header(0, 1).str("k").u32(13).u32(0)),
              HasSubstr("metadata entry 0 ('k'): unknown value type 13"));
  EXPECT_THAT(parse_error(Image{}.header(0, 1).str("k").u32(uint32_t(GgufType::ARRAY)).u32(99).u64(0)),
              HasSubstr("unknown value type 99 (the array's element type)"));
}

TEST(GgufMalformed, AbsurdArrayLength) {
  EXPECT_THAT(parse_error(Image{}.header(0, 1).str("k").u32(uint32_t(GgufType::ARRAY)).u32(uint32_t(GgufType::U32)).u64(1ull << 61)),
              HasSubstr("an array of 2305843009213693952 u32 elements at offset 49 cannot fit in the remaining 0 bytes"));
  // Strings take at least their 8-byte length each.
  EXPECT_THAT(parse_error(Image{}.header(0, 1).str("k").u32(uint32_t(GgufType::ARRAY)).u32(uint32_t(GgufType::STRING)).u64(2).u64(0)),
              HasSubstr("an array of 2 str elements"));
}

TEST(GgufMalformed, ArraysNestedTooDeep) {
  Image im;
  im.header(0, 1).str("k").u32(uint32_t(GgufType::ARRAY));
  for (int i = 0; i < 9; ++i) im.u32(uint32_t(GgufType::ARRAY)).u64(1);
  im.u32(uint32_t(GgufType::U8)).u64(0);
  EXPECT_THAT(parse_error(im), HasSubstr("arrays nested more than 8 levels deep"));
}

TEST(GgufMalformed, BadAlignment) {
  EXPECT_THAT(parse_error(Image{}.header(0, 1).str(kGgufAlignmentKey).u32(uint32_t(GgufType::U64)).u64(32)),
              HasSubstr("general.alignment must be a u32, found u64 32"));
  EXPECT_THAT(parse_error(Image{}.header(0, 1).kv_u32(kGgufAlignmentKey, 0)), HasSubstr("alignment 0 is not a power of two"));
  EXPECT_THAT(parse_error(Image{}.header(0, 1).kv_u32(kGgufAlignmentKey, 48)), HasSubstr("alignment 48 is not a power of two"));
}

TEST(GgufMalformed, TruncatedTensorInfo) {
  EXPECT_THAT(parse_error(Image{}.header(1, 0).str("tensor").u32(2).u64(4)),
              HasSubstr("tensor 0 ('tensor'): truncated: a dimension at offset 50"));
}

TEST(GgufMalformed, BadTensorNames) {
  EXPECT_THAT(parse_error(Image{}.header(1, 0).tensor("", {1}, F32, 0).data(4)), HasSubstr("tensor 0 (''): the name is empty"));
  EXPECT_THAT(parse_error(Image{}.header(1, 0).tensor(std::string(64, 'n'), {1}, F32, 0).data(4)),
              HasSubstr("the name has 64 bytes; ggml allows at most 63"));
  EXPECT_THAT(parse_error(Image{}.header(2, 0).tensor("t", {1}, F32, 0).tensor("t", {1}, F32, 32).data(36)),
              HasSubstr("tensor 1 ('t'): the name appears twice"));
}

TEST(GgufMalformed, TooManyDimensions) {
  EXPECT_THAT(parse_error(Image{}.header(1, 0).tensor("t", {1, 1, 1, 1, 1}, F32, 0).data(4)),
              HasSubstr("tensor 0 ('t'): 5 dimensions; ggml allows at most 4"));
}

TEST(GgufMalformed, DimensionsOverflow) {
  EXPECT_THAT(parse_error(Image{}.header(1, 0).tensor("t", {~0ull}, F32, 0)), HasSubstr("more than int64 holds"));
  EXPECT_THAT(parse_error(Image{}.header(1, 0).tensor("t", {1ull << 32, 1ull << 32}, F32, 0)),
              HasSubstr("ne [4294967296, 4294967296]: the element count overflows"));
  // Elements fit int64, bytes do not fit u64.
  EXPECT_THAT(parse_error(Image{}.header(1, 0).tensor("t", {1ull << 62}, F32, 0)), HasSubstr("the byte size overflows"));
}

TEST(GgufMalformed, UnknownTensorType) {
  EXPECT_THAT(parse_error(Image{}.header(1, 0).tensor("t", {32}, 4, 0).data(64)), HasSubstr("unknown ggml type 4"));
  EXPECT_THAT(parse_error(Image{}.header(1, 0).tensor("t", {32}, 43, 0).data(64)), HasSubstr("unknown ggml type 43"));
  EXPECT_THAT(parse_error(Image{}.header(1, 0).tensor("t", {32}, 0xffffffffu, 0).data(64)),
              HasSubstr("unknown ggml type 4294967295"));
}

TEST(GgufMalformed, RowsNotWholeBlocks) {
  EXPECT_THAT(parse_error(Image{}.header(1, 0).tensor("t", {33, 2}, uint32_t(GgmlType::Q8_0), 0).data(128)),
              HasSubstr("rows of 33 elements are not whole q8_0 blocks of 32"));
}

TEST(GgufMalformed, MisalignedOffset) {
  EXPECT_THAT(parse_error(Image{}.header(1, 0).tensor("t", {1}, F32, 4).data(64)),
              HasSubstr("tensor 0 ('t'): data offset 4 is not a multiple of the alignment 32"));
}

TEST(GgufMalformed, OffsetOutOfRange) {
  EXPECT_THAT(parse_error(Image{}.header(1, 0).tensor("t", {4}, F32, 64).data(32)),
              HasSubstr("data [64, 64 + 16) runs past the end of the data section (32 bytes)"));
  EXPECT_THAT(parse_error(Image{}.header(1, 0).tensor("t", {4}, F32, ~0ull - 31).data(32)),
              HasSubstr("runs past the end of the data section"));
  // The file ends inside the tensor's bytes.
  EXPECT_THAT(parse_error(Image{}.header(1, 0).tensor("t", {16}, F32, 0).data(63)),
              HasSubstr("data [0, 0 + 64) runs past the end of the data section (63 bytes)"));
}

TEST(GgufMalformed, DataSectionPastTheEnd) {
  EXPECT_THAT(parse_error(Image{}.header(1, 0).tensor("t", {1}, F32, 0)),
              HasSubstr("the data section would start at offset 64, past the end of the file (57 bytes)"));
}

TEST(GgufMalformed, OverlappingTensors) {
  EXPECT_THAT(parse_error(Image{}.header(2, 0).tensor("a", {16}, F32, 0).tensor("b", {8}, F32, 32).data(64)),
              HasSubstr("tensors 'a' [0, 64) and 'b' [32, 64) overlap"));
}

TEST(GgufMalformed, FileErrorsNameTheFile) {
  test::ScratchDir dir;
  test::write_bytes(dir.file("bad.gguf"), Image{}.header(1, 0).tensor("t", {1}, F32, 4).data(64).bytes);
  EXPECT_THAT(error_of([&] { GgufFile f(dir.file("bad.gguf")); }),
              HasSubstr("bad.gguf: tensor 0 ('t'): data offset 4 is not a multiple"));
  EXPECT_THAT(error_of([&] { GgufFile f(dir.file("missing.gguf")); }), HasSubstr("missing.gguf: cannot open"));
}

}  // namespace
}  // namespace deltatune
