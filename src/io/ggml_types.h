// ggml's tensor element types as GGUF files name them: the numbering, block sizes and byte sizes
// of every type ggml v0.5.0 knows (ggml/include/ggml.h `enum ggml_type`; gguf-py
// constants.py `GGML_QUANT_SIZES`), so the GGUF reader can size any tensor; and conversion from
// and to float for the types deltatune writes: F32, F16, BF16 and Q8_0.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "core/dtype.h"

namespace deltatune {

enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22,
  IQ4_XS = 23, I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
  TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39, NVFP4 = 40, Q1_0 = 41, Q2_0 = 42,
};

struct GgmlTypeInfo {
  GgmlType type;
  const char* name;     // ggml's spelling: "f32", "q8_0", ...
  uint32_t block_size;  // elements per block (1 for plain types)
  uint32_t type_size;   // bytes per block
};

// The type with this number, or nullptr for numbers ggml does not define (or removed: 4, 5,
// 31-33, 36-38, whose files ggml refuses).
const GgmlTypeInfo* ggml_type_info(uint32_t type);
const GgmlTypeInfo& ggml_type_info(GgmlType type);
const char* ggml_type_name(GgmlType type);
// By ggml's name, case-insensitive ("q8_0", "BF16").
std::optional<GgmlType> ggml_type_from_name(std::string_view name);

// Bytes of a row of `ne0` elements; ne0 must be a multiple of the block size.
uint64_t ggml_row_bytes(GgmlType type, int64_t ne0);

// The deltatune DType with the same element layout (F32, F16, BF16, F64, I8..I64), if any:
// tensors of these types can be viewed in place.
std::optional<DType> ggml_type_to_dtype(GgmlType type);

// Q8_0 (ggml/src/ggml-common.h `block_q8_0`): blocks of 32 values, an f16 scale d followed by 32
// int8 quants; value = d * q. The codec itself is core/dtype.h's (DType::Q8_0, kQ8_0BlockBytes).
constexpr int kQ8_0BlockSize = int(kQ8_0BlockValues);

// Encodes n floats as `type` (F32, F16, BF16 or Q8_0; n a multiple of 32 for Q8_0) into dst,
// exactly as ggml and gguf-py do: f16 and bf16 round to nearest even; Q8_0 as ggml's reference
// quantize_row_q8_0_ref (ggml/src/ggml-quants.c).
void ggml_encode(const float* src, int64_t n, GgmlType type, void* dst);
// Decodes n elements of `type` (F32, F16, BF16 or Q8_0) into floats.
void ggml_decode(const void* src, int64_t n, GgmlType type, float* dst);

}  // namespace deltatune
