#include "io/ggml_types.h"

#include <cmath>
#include <cstring>

#include "core/error.h"

namespace deltatune {

namespace {

constexpr uint32_t QK_K = 256;

// gguf-py constants.py GGML_QUANT_SIZES (block size, bytes per block); the numbering is
// ggml.h's enum ggml_type.
constexpr GgmlTypeInfo kTypes[] = {
    {GgmlType::F32, "f32", 1, 4},
    {GgmlType::F16, "f16", 1, 2},
    {GgmlType::Q4_0, "q4_0", 32, 2 + 16},
    {GgmlType::Q4_1, "q4_1", 32, 2 + 2 + 16},
    {GgmlType::Q5_0, "q5_0", 32, 2 + 4 + 16},
    {GgmlType::Q5_1, "q5_1", 32, 2 + 2 + 4 + 16},
    {GgmlType::Q8_0, "q8_0", 32, 2 + 32},
    {GgmlType::Q8_1, "q8_1", 32, 2 + 2 + 32},
    {GgmlType::Q2_K, "q2_K", QK_K, 2 + 2 + QK_K / 16 + QK_K / 4},
    {GgmlType::Q3_K, "q3_K", QK_K, 2 + QK_K / 4 + QK_K / 8 + 12},
    {GgmlType::Q4_K, "q4_K", QK_K, 2 + 2 + QK_K / 2 + 12},
    {GgmlType::Q5_K, "q5_K", QK_K, 2 + 2 + QK_K / 2 + QK_K / 8 + 12},
    {GgmlType::Q6_K, "q6_K", QK_K, 2 + QK_K / 2 + QK_K / 4 + QK_K / 16},
    {GgmlType::Q8_K, "q8_K", QK_K, 4 + QK_K + QK_K / 8},
    {GgmlType::IQ2_XXS, "iq2_xxs", QK_K, 2 + QK_K / 4},
    {GgmlType::IQ2_XS, "iq2_xs", QK_K, 2 + QK_K / 4 + QK_K / 32},
    {GgmlType::IQ3_XXS, "iq3_xxs", QK_K, 2 + QK_K / 4 + QK_K / 8},
    {GgmlType::IQ1_S, "iq1_s", QK_K, 2 + QK_K / 8 + QK_K / 16},
    {GgmlType::IQ4_NL, "iq4_nl", 32, 2 + 16},
    {GgmlType::IQ3_S, "iq3_s", QK_K, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4},
    {GgmlType::IQ2_S, "iq2_s", QK_K, 2 + QK_K / 4 + QK_K / 16},
    {GgmlType::IQ4_XS, "iq4_xs", QK_K, 2 + 2 + QK_K / 2 + QK_K / 64},
    {GgmlType::I8, "i8", 1, 1},
    {GgmlType::I16, "i16", 1, 2},
    {GgmlType::I32, "i32", 1, 4},
    {GgmlType::I64, "i64", 1, 8},
    {GgmlType::F64, "f64", 1, 8},
    {GgmlType::IQ1_M, "iq1_m", QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32},
    {GgmlType::BF16, "bf16", 1, 2},
    {GgmlType::TQ1_0, "tq1_0", QK_K, 2 + 4 * 13},
    {GgmlType::TQ2_0, "tq2_0", QK_K, 2 + 64},
    {GgmlType::MXFP4, "mxfp4", 32, 1 + 16},
    {GgmlType::NVFP4, "nvfp4", 64, 4 + 32},
    {GgmlType::Q1_0, "q1_0", 128, 2 + 16},
    {GgmlType::Q2_0, "q2_0", 64, 2 + 16},
};

char lower(char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; }

void check_q8_0_length(int64_t n) {
  DT_CHECK(n % kQ8_0BlockSize == 0, "q8_0 needs a multiple of ", kQ8_0BlockSize, " values, got ", n);
}

}  // namespace

const GgmlTypeInfo* ggml_type_info(uint32_t type) {
  for (const GgmlTypeInfo& info : kTypes)
    if (uint32_t(info.type) == type) return &info;
  return nullptr;
}

const GgmlTypeInfo& ggml_type_info(GgmlType type) {
  const GgmlTypeInfo* info = ggml_type_info(uint32_t(type));
  DT_CHECK(info != nullptr, "unknown ggml type ", uint32_t(type));
  return *info;
}

const char* ggml_type_name(GgmlType type) { return ggml_type_info(type).name; }

std::optional<GgmlType> ggml_type_from_name(std::string_view name) {
  for (const GgmlTypeInfo& info : kTypes) {
    const std::string_view candidate = info.name;
    if (candidate.size() != name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < name.size() && same; ++i) same = lower(candidate[i]) == lower(name[i]);
    if (same) return info.type;
  }
  return std::nullopt;
}

uint64_t ggml_row_bytes(GgmlType type, int64_t ne0) {
  const GgmlTypeInfo& info = ggml_type_info(type);
  DT_CHECK(ne0 % info.block_size == 0, "a row of ", ne0, " elements is not a whole number of ",
           info.name, " blocks of ", info.block_size);
  return uint64_t(ne0) / info.block_size * info.type_size;
}

std::optional<DType> ggml_type_to_dtype(GgmlType type) {
  switch (type) {
    case GgmlType::F32: return DType::F32;
    case GgmlType::F16: return DType::F16;
    case GgmlType::BF16: return DType::BF16;
    case GgmlType::F64: return DType::F64;
    case GgmlType::I8: return DType::I8;
    case GgmlType::I16: return DType::I16;
    case GgmlType::I32: return DType::I32;
    case GgmlType::I64: return DType::I64;
    default: return std::nullopt;
  }
}

void ggml_encode(const float* src, int64_t n, GgmlType type, void* dst) {
  switch (type) {
    case GgmlType::F32: std::memcpy(dst, src, size_t(n) * 4); return;
    case GgmlType::F16: convert_from<float>(src, dst, DType::F16, size_t(n)); return;
    case GgmlType::BF16: convert_from<float>(src, dst, DType::BF16, size_t(n)); return;
    case GgmlType::Q8_0:
      check_q8_0_length(n);
      convert_from<float>(src, dst, DType::Q8_0, size_t(n));
      return;
    default: fail("cannot encode ggml type ", ggml_type_name(type));
  }
}

void ggml_decode(const void* src, int64_t n, GgmlType type, float* dst) {
  switch (type) {
    case GgmlType::F32: std::memcpy(dst, src, size_t(n) * 4); return;
    case GgmlType::F16: convert_to<float>(src, DType::F16, dst, size_t(n)); return;
    case GgmlType::BF16: convert_to<float>(src, DType::BF16, dst, size_t(n)); return;
    case GgmlType::Q8_0:
      check_q8_0_length(n);
      convert_to<float>(src, DType::Q8_0, dst, size_t(n));
      return;
    default: fail("cannot decode ggml type ", ggml_type_name(type));
  }
}

}  // namespace deltatune
