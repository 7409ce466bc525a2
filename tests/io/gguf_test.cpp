// GGUF round trips: every metadata value type (scalars, strings, arrays of each, empty arrays,
// arrays of arrays), every tensor type deltatune writes (F32, F16, BF16, Q8_0) and raw blocks of
// another, the layout gguf-py and ggml expect (aligned, packed offsets, padding), zero-copy views,
// and the writer's refusals and atomicity.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>

#include "core/rng.h"
#include "io/gguf.h"
#include "io/test_files.h"

namespace deltatune {
namespace {

using test::error_of;
using test::ScratchDir;
using testing::HasSubstr;

template <class T>
void expect_scalar_round_trip(const GgufFile& f, const std::string& key, T want) {
  const GgufValue& v = f.get_key(key);
  EXPECT_EQ(v.type(), gguf_type_of<T>()) << key;
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(v.get<T>())) << key;
      return;
    }
  }
  EXPECT_EQ(v.get<T>(), want) << key;
}

TEST(Gguf, EveryScalarTypeRoundTrips) {
  ScratchDir dir;
  const GgufMetadata metadata = {
      {"u8", GgufValue::scalar<uint8_t>(255)},
      {"i8", GgufValue::scalar<int8_t>(-128)},
      {"u16", GgufValue::scalar<uint16_t>(65535)},
      {"i16", GgufValue::scalar<int16_t>(-32768)},
      {"u32", GgufValue::scalar<uint32_t>(4294967295u)},
      {"i32", GgufValue::scalar<int32_t>(-2147483647 - 1)},
      {"f32", GgufValue::scalar<float>(-1.5e-38f)},
      {"f32.nan", GgufValue::scalar<float>(std::numeric_limits<float>::quiet_NaN())},
      {"bool.true", GgufValue::scalar<bool>(true)},
      {"bool.false", GgufValue::scalar<bool>(false)},
      {"str", GgufValue::string("héllo\nwörld")},
      {"str.empty", GgufValue::string("")},
      {"str.nul", GgufValue::string(std::string("a\0b", 3))},
      {"u64", GgufValue::scalar<uint64_t>(18446744073709551615ull)},
      {"i64", GgufValue::scalar<int64_t>(-9223372036854775807ll - 1)},
      {"f64", GgufValue::scalar<double>(3.141592653589793)},
  };
  write_gguf(dir.file("m.gguf"), metadata, {});
  const GgufFile f(dir.file("m.gguf"));
  ASSERT_EQ(f.metadata().size(), metadata.size());
  for (size_t i = 0; i < metadata.size(); ++i) EXPECT_EQ(f.metadata()[i].key, metadata[i].key);  // file order
  expect_scalar_round_trip<uint8_t>(f, "u8", 255);
  expect_scalar_round_trip<int8_t>(f, "i8", -128);
  expect_scalar_round_trip<uint16_t>(f, "u16", 65535);
  expect_scalar_round_trip<int16_t>(f, "i16", -32768);
  expect_scalar_round_trip<uint32_t>(f, "u32", 4294967295u);
  expect_scalar_round_trip<int32_t>(f, "i32", -2147483647 - 1);
  expect_scalar_round_trip<float>(f, "f32", -1.5e-38f);
  expect_scalar_round_trip<float>(f, "f32.nan", std::numeric_limits<float>::quiet_NaN());
  expect_scalar_round_trip<bool>(f, "bool.true", true);
  expect_scalar_round_trip<bool>(f, "bool.false", false);
  expect_scalar_round_trip<uint64_t>(f, "u64", 18446744073709551615ull);
  expect_scalar_round_trip<int64_t>(f, "i64", -9223372036854775807ll - 1);
  expect_scalar_round_trip<double>(f, "f64", 3.141592653589793);
  EXPECT_EQ(f.get_key("str").get_string(), "héllo\nwörld");
  EXPECT_EQ(f.get_key("str.empty").get_string(), "");
  EXPECT_EQ(f.get_key("str.nul").get_string(), std::string("a\0b", 3));
  EXPECT_EQ(f.get_key("u32").get_integer(), 4294967295ll);
  EXPECT_EQ(f.get_key("u8").describe(), "u8 255");
  EXPECT_EQ(f.get_key("str").describe(), "str 'héllo\nwörld'");
  // A typed read of the wrong type says what it found.
  EXPECT_THAT(error_of([&] { f.get_key("u32").get<int32_t>(); }), HasSubstr("expected i32, found u32"));
  EXPECT_THAT(error_of([&] { f.get_key("nope"); }), HasSubstr("m.gguf: no metadata key 'nope'"));
  EXPECT_TRUE(f.tensors().empty());
}

TEST(Gguf, EveryArrayTypeRoundTrips) {
  ScratchDir dir;
  const std::vector<std::string> strings = {"Ġthe", "", "<|im_end|>", std::string(1000, 'x')};
  const GgufValue nested = GgufValue::array_of_arrays(
      {GgufValue::array(std::vector<int32_t>{1, 2, 3}), GgufValue::array(std::vector<std::string>{"a"}),
       GgufValue::array_of_arrays({GgufValue::array(std::vector<double>{}), GgufValue::array(std::vector<bool>{true})})});
  const GgufMetadata metadata = {
      {"u8", GgufValue::array(std::vector<uint8_t>{0, 1, 255})},
      {"i8", GgufValue::array(std::vector<int8_t>{-128, 0, 127})},
      {"u16", GgufValue::array(std::vector<uint16_t>{0, 65535})},
      {"i16", GgufValue::array(std::vector<int16_t>{-32768, 32767})},
      {"u32", GgufValue::array(std::vector<uint32_t>{7, 4294967295u})},
      {"i32", GgufValue::array(std::vector<int32_t>{11, 11, 10, 0})},
      {"f32", GgufValue::array(std::vector<float>{1.0f, -0.0f, 1e-45f})},
      {"bool", GgufValue::array(std::vector<bool>{true, false, true})},
      {"str", GgufValue::array(strings)},
      {"u64", GgufValue::array(std::vector<uint64_t>{1ull << 63})},
      {"i64", GgufValue::array(std::vector<int64_t>{-1})},
      {"f64", GgufValue::array(std::vector<double>{2.5, -1e300})},
      {"empty.u32", GgufValue::array(std::vector<uint32_t>{})},
      {"empty.str", GgufValue::array(std::vector<std::string>{})},
      {"nested", nested},
  };
  write_gguf(dir.file("a.gguf"), metadata, {});
  const GgufFile f(dir.file("a.gguf"));
  ASSERT_EQ(f.metadata().size(), metadata.size());
  for (size_t i = 0; i < metadata.size(); ++i)
    EXPECT_EQ(f.metadata()[i].value, metadata[i].value) << metadata[i].key;
  EXPECT_EQ(f.get_key("i32").get_array<int32_t>(), (std::vector<int32_t>{11, 11, 10, 0}));
  EXPECT_EQ(f.get_key("bool").get_array<bool>(), (std::vector<bool>{true, false, true}));
  EXPECT_EQ(f.get_key("str").get_string_array(), strings);
  EXPECT_EQ(f.get_key("f32").get_array<float>()[2], 1e-45f);
  EXPECT_EQ(f.get_key("empty.u32").size(), 0u);
  EXPECT_EQ(f.get_key("nested").get_array_of_arrays()[2].get_array_of_arrays()[1].get_array<bool>(),
            std::vector<bool>{true});
  EXPECT_EQ(f.get_key("str").describe(), "arr[str,4]");
  EXPECT_THAT(error_of([&] { f.get_key("u32").get_array<int32_t>(); }),
              HasSubstr("expected an array of i32, found u32"));
}

// One tensor of each type deltatune encodes, plus raw Q4_K blocks; each comes back bit for bit,
// at offsets packed the way ggml requires, and viewed in place with the shape reversed.
TEST(Gguf, EveryTensorTypeRoundTrips) {
  ScratchDir dir;
  Rng rng(7);
  std::vector<float> values(64 * 3);
  for (float& v : values) v = float(rng.normal());
  struct Case {
    GgmlType type;
    std::vector<int64_t> ne;
  };
  const std::vector<Case> cases = {{GgmlType::F32, {64, 3}}, {GgmlType::F16, {64, 3}},
                                   {GgmlType::BF16, {64, 3}}, {GgmlType::Q8_0, {64, 3}},
                                   {GgmlType::F32, {5}},      {GgmlType::F32, {}}};
  std::vector<std::vector<uint8_t>> encoded;
  std::vector<GgufTensorData> tensors;
  for (size_t i = 0; i < cases.size(); ++i) {
    int64_t n = 1;
    for (int64_t d : cases[i].ne) n *= d;
    encoded.emplace_back(gguf_tensor_bytes(cases[i].type, cases[i].ne));
    ggml_encode(values.data(), n, cases[i].type, encoded.back().data());
    tensors.push_back({{str_cat("t", i, ".", ggml_type_name(cases[i].type)), cases[i].type, cases[i].ne},
                       encoded.back().data()});
  }
  std::vector<uint8_t> q4k(2 * ggml_type_info(GgmlType::Q4_K).type_size);
  for (size_t i = 0; i < q4k.size(); ++i) q4k[i] = uint8_t(i * 13 + 5);
  tensors.push_back({{"raw.q4_K", GgmlType::Q4_K, {512, 1}}, q4k.data()});
  encoded.push_back(q4k);
  write_gguf(dir.file("t.gguf"), {{"general.architecture", GgufValue::string("test")}}, tensors);

  const GgufFile f(dir.file("t.gguf"));
  ASSERT_EQ(f.tensors().size(), tensors.size());
  EXPECT_EQ(f.header().data_offset % 32, 0u);
  uint64_t expected_offset = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const GgufTensorInfo& t = f.tensors()[i];
    EXPECT_EQ(t.name, tensors[i].plan.name);
    EXPECT_EQ(t.type, tensors[i].plan.type);
    EXPECT_EQ(t.ne, tensors[i].plan.ne);
    EXPECT_EQ(t.offset, expected_offset) << t.name;  // packed in order, each padded to 32
    EXPECT_EQ(t.nbytes, encoded[i].size());
    expected_offset += (t.nbytes + 31) / 32 * 32;
    const auto bytes = f.tensor_bytes(t);
    EXPECT_EQ(0, std::memcmp(bytes.data(), encoded[i].data(), bytes.size())) << t.name;
  }
  // The file ends with the last tensor's padding, as gguf-py writes it.
  EXPECT_EQ(std::filesystem::file_size(dir.file("t.gguf")), f.header().data_offset + expected_offset);

  const Tensor f32 = f.tensor("t0.f32");
  EXPECT_EQ(f32.shape_vector(), (std::vector<int64_t>{3, 64}));  // ne {64, 3} is row-major [3, 64]
  EXPECT_EQ(f32.dtype, DType::F32);
  EXPECT_EQ(static_cast<const float*>(f32.data)[70], values[70]);
  EXPECT_EQ(f.tensor("t2.bf16").dtype, DType::BF16);
  EXPECT_EQ(f.tensor("t5.f32").ndim, 0);
  EXPECT_THAT(error_of([&] { f.tensor("t3.q8_0"); }), HasSubstr("q8_0 tensor has no element view"));
  // Decoded Q8_0 stays within half a quantization step d = max|x| / 127 of the input, plus the
  // f16 rounding of d (2^-11 relative) times at most 127 steps.
  const std::vector<float> q8 = f.tensor_to_float(f.get_tensor("t3.q8_0"));
  for (size_t b = 0; b < q8.size() / 32; ++b) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(values[b * 32 + j]));
    const float bound = amax / 127 * (0.5f + 127.0f / 2048) * 1.001f;
    for (int j = 0; j < 32; ++j)
      EXPECT_LE(std::fabs(q8[b * 32 + j] - values[b * 32 + j]), bound) << b << "," << j;
  }
  const std::vector<float> f16 = f.tensor_to_float(f.get_tensor("t1.f16"));
  for (size_t i = 0; i < f16.size(); ++i) EXPECT_EQ(f16[i], f16_to_f32(f32_to_f16(values[i])));
}

TEST(Gguf, CustomAlignmentPadsEverything) {
  ScratchDir dir;
  std::vector<float> a(3, 1.0f), b(5, 2.0f);
  write_gguf(dir.file("al.gguf"), {{kGgufAlignmentKey, GgufValue::scalar<uint32_t>(256)}},
             {{{"a", GgmlType::F32, {3}}, a.data()}, {{"b", GgmlType::F32, {5}}, b.data()}});
  const GgufFile f(dir.file("al.gguf"));
  EXPECT_EQ(f.header().alignment, 256u);
  EXPECT_EQ(f.header().data_offset % 256, 0u);
  EXPECT_EQ(f.get_tensor("b").offset, 256u);
  EXPECT_EQ(std::filesystem::file_size(dir.file("al.gguf")), f.header().data_offset + 512);
  EXPECT_EQ(static_cast<const float*>(f.tensor("b").data)[4], 2.0f);
}

TEST(Gguf, StreamedDataInPiecesAcrossTensors) {
  ScratchDir dir;
  std::vector<float> all = {1, 2, 3, 4, 5, 6, 7};
  GgufWriter w(dir.file("s.gguf"), {}, {{"a", GgmlType::F32, {3}}, {"empty", GgmlType::F32, {0}}, {"b", GgmlType::F32, {4}}});
  w.write_data(all.data(), 2 * 4);
  EXPECT_EQ(w.next_tensor(), 0u);
  w.write_data(all.data() + 2, 3 * 4);  // the end of "a", the empty one, the start of "b"
  EXPECT_EQ(w.next_tensor(), 2u);
  w.write_data(all.data() + 5, 2 * 4);
  w.commit();
  const GgufFile f(dir.file("s.gguf"));
  EXPECT_EQ(static_cast<const float*>(f.tensor("b").data)[3], 7.0f);
  EXPECT_EQ(f.tensor("empty").numel(), 0);
}

TEST(Gguf, WriterRefusesWhatGgmlCannotRead) {
  ScratchDir dir;
  const std::string path = dir.file("w.gguf");
  auto plan_error = [&](const GgufMetadata& m, std::vector<GgufTensorPlan> t) {
    return error_of([&] { GgufWriter(path, m, std::move(t)); });
  };
  EXPECT_THAT(plan_error({{"k", GgufValue::scalar<uint8_t>(1)}, {"k", GgufValue::scalar<uint8_t>(2)}}, {}),
              HasSubstr("metadata key 'k' appears twice"));
  EXPECT_THAT(plan_error({{"", GgufValue::scalar<uint8_t>(1)}}, {}), HasSubstr("a metadata key is empty"));
  EXPECT_THAT(plan_error({{kGgufAlignmentKey, GgufValue::scalar<uint32_t>(24)}}, {}),
              HasSubstr("general.alignment 24 is not a power of two"));
  EXPECT_THAT(plan_error({{kGgufAlignmentKey, GgufValue::scalar<uint64_t>(32)}}, {}),
              HasSubstr("general.alignment must be a u32"));
  EXPECT_THAT(plan_error({}, {{std::string(64, 'n'), GgmlType::F32, {1}}}), HasSubstr("at most 63"));
  EXPECT_THAT(plan_error({}, {{"a", GgmlType::F32, {1}}, {"a", GgmlType::F32, {1}}}),
              HasSubstr("tensor 'a': the name appears twice"));
  EXPECT_THAT(plan_error({}, {{"a", GgmlType::F32, {1, 1, 1, 1, 1}}}), HasSubstr("5 dimensions"));
  EXPECT_THAT(plan_error({}, {{"a", GgmlType::Q8_0, {48, 2}}}), HasSubstr("not a whole number of q8_0 blocks"));
  EXPECT_THAT(plan_error({}, {{"a", GgmlType::F32, {-1}}}), HasSubstr("negative dimension"));
  EXPECT_FALSE(std::filesystem::exists(path));

  // Too much data, or too little at commit: an error, and no file appears.
  {
    GgufWriter w(path, {}, {{"a", GgmlType::F32, {2}}});
    const float x[3] = {1, 2, 3};
    EXPECT_THAT(error_of([&] { w.write_data(x, sizeof x); }), HasSubstr("beyond the last tensor"));
  }
  {
    GgufWriter w(path, {}, {{"a", GgmlType::F32, {2}}});
    const float x = 1;
    w.write_data(&x, 4);
    EXPECT_THAT(error_of([&] { w.commit(); }), HasSubstr("tensor 'a' got 4 of its 8 bytes"));
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  for (const auto& e : std::filesystem::directory_iterator(dir.path()))
    ADD_FAILURE() << "stray file " << e.path();  // no temporaries left behind
}

// A writer abandoned half-way leaves the previous file as it was.
TEST(Gguf, FailedWriteKeepsTheOldFile) {
  ScratchDir dir;
  const std::string path = dir.file("keep.gguf");
  write_gguf(path, {{"version", GgufValue::scalar<uint32_t>(1)}}, {});
  const std::string before = test::read_bytes(path);
  {
    GgufWriter w(path, {{"version", GgufValue::scalar<uint32_t>(2)}}, {{"a", GgmlType::F32, {4}}});
    const float x = 0;
    w.write_data(&x, 4);
  }  // destroyed without commit
  EXPECT_EQ(test::read_bytes(path), before);
  EXPECT_EQ(GgufFile(path).get_key("version").get<uint32_t>(), 1u);
}

// ggml's quantize_row_q8_0_ref on hand-computed blocks: d = max|x| / 127 stored as f16,
// q = roundf(x / d) with halves away from zero; an all-zero block has d = 0 and q = 0.
TEST(Gguf, Q8_0MatchesGgmlsReferenceQuantizer) {
  std::vector<float> x(64, 0.0f);
  x[0] = 127.0f;   // d = 1
  x[1] = 2.5f;     // 2.5 -> 3 (roundf: away from zero; rint would give 2)
  x[2] = -2.5f;    // -> -3
  x[3] = -127.0f;  // -> -127
  x[4] = 0.49f;    // -> 0
  std::vector<uint8_t> q(2 * kQ8_0BlockBytes);
  ggml_encode(x.data(), 64, GgmlType::Q8_0, q.data());
  uint16_t d0, d1;
  std::memcpy(&d0, q.data(), 2);
  std::memcpy(&d1, q.data() + kQ8_0BlockBytes, 2);
  EXPECT_EQ(d0, 0x3c00);  // f16 1.0
  EXPECT_EQ(d1, 0x0000);  // the second block is all zeros
  EXPECT_EQ(int8_t(q[2 + 0]), 127);
  EXPECT_EQ(int8_t(q[2 + 1]), 3);
  EXPECT_EQ(int8_t(q[2 + 2]), -3);
  EXPECT_EQ(int8_t(q[2 + 3]), -127);
  EXPECT_EQ(int8_t(q[2 + 4]), 0);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(q[kQ8_0BlockBytes + 2 + j], 0);
  // The scale is rounded to f16 after the division: 1/127 of 1.0 is not exact in f16.
  std::vector<float> y(32, 0.0f);
  y[5] = 1.0f;
  ggml_encode(y.data(), 32, GgmlType::Q8_0, q.data());
  std::memcpy(&d0, q.data(), 2);
  EXPECT_EQ(d0, f32_to_f16(1.0f / 127.0f));
  EXPECT_EQ(int8_t(q[2 + 5]), 127);
  EXPECT_THAT(error_of([&] { ggml_encode(y.data(), 31, GgmlType::Q8_0, q.data()); }),
              HasSubstr("q8_0 needs a multiple of 32"));
}

TEST(Gguf, GgmlTypeTable) {
  EXPECT_EQ(ggml_type_info(4u), nullptr);  // Q4_2: removed, ggml refuses it
  EXPECT_EQ(ggml_type_info(43u), nullptr);
  EXPECT_EQ(ggml_type_info(GgmlType::Q6_K).type_size, 210u);
  EXPECT_EQ(ggml_type_info(GgmlType::IQ4_XS).type_size, 136u);
  EXPECT_EQ(ggml_type_from_name("BF16"), GgmlType::BF16);
  EXPECT_EQ(ggml_type_from_name("q8_0"), GgmlType::Q8_0);
  EXPECT_FALSE(ggml_type_from_name("q8").has_value());
  EXPECT_EQ(ggml_row_bytes(GgmlType::Q8_0, 64), 68u);
}

}  // namespace
}  // namespace deltatune
