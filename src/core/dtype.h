// Element types of tensors: the storage types of checkpoints (safetensors, GGUF) and the compute
// types (float, double). bf16, f16 and q8_0 are converted on the fly where they are read.
//
// Q8_0 is ggml's block format (ggml/src/ggml-common.h `block_q8_0`): blocks of 32 values, an f16
// scale d then 32 int8 quants q, value = d·q; 34 bytes per 32 values. It has no per-element size:
// a Q8_0 tensor's rows are whole blocks (the last dimension a multiple of 32), and its bytes are
// counted with dtype_bytes, never dtype_size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace deltatune {

enum class DType : uint8_t { F64, F32, F16, BF16, F8_E4M3, F8_E5M2, I64, I32, I16, I8, U8, BOOL, Q8_0 };

constexpr int64_t kQ8_0BlockValues = 32;
constexpr size_t kQ8_0BlockBytes = 34;

// Bytes per element; throws for Q8_0 (see dtype_bytes).
size_t dtype_size(DType t);
// Bytes of n consecutive elements (for Q8_0, n a multiple of 32: whole blocks).
size_t dtype_bytes(DType t, int64_t n);
// The safetensors spelling ("F32", "BF16", ...), also used in messages; "Q8_0".
const char* dtype_name(DType t);
// A safetensors dtype by name (Q8_0 is not one).
std::optional<DType> dtype_from_name(std::string_view name);
inline bool dtype_is_float(DType t) {
  return t == DType::F64 || t == DType::F32 || t == DType::F16 || t == DType::BF16;
}
// What frozen weights may be stored as: the float types and Q8_0.
inline bool dtype_is_weight(DType t) { return dtype_is_float(t) || t == DType::Q8_0; }

template <class T>
constexpr DType dtype_of();
template <> constexpr DType dtype_of<double>() { return DType::F64; }
template <> constexpr DType dtype_of<float>() { return DType::F32; }
template <> constexpr DType dtype_of<int64_t>() { return DType::I64; }
template <> constexpr DType dtype_of<int32_t>() { return DType::I32; }

inline float bf16_to_f32(uint16_t h) {
  uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round to nearest, ties to even, as torch does; NaN stays a (quiet) NaN.
inline uint16_t f32_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return uint16_t(bits >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

// Converts n elements of a float type (F64, F32, F16, BF16) or of Q8_0 (n whole blocks) into T;
// throws on other types.
template <class T>
void convert_to(const void* src, DType src_type, T* dst, size_t n);
// Converts n values of T into dst_type (a float type, rounding to nearest even; or Q8_0, n whole
// blocks, quantized as ggml's reference quantize_row_q8_0_ref does).
template <class T>
void convert_from(const T* src, void* dst, DType dst_type, size_t n);

}  // namespace deltatune
