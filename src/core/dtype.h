// Element types of tensors: the storage types of checkpoints (safetensors, GGUF) and the compute
// types (float, double). bf16 and f16 are converted on the fly where they are read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace deltatune {

enum class DType : uint8_t { F64, F32, F16, BF16, F8_E4M3, F8_E5M2, I64, I32, I16, I8, U8, BOOL };

size_t dtype_size(DType t);
// The safetensors spelling ("F32", "BF16", ...), also used in messages.
const char* dtype_name(DType t);
std::optional<DType> dtype_from_name(std::string_view name);
inline bool dtype_is_float(DType t) {
  return t == DType::F64 || t == DType::F32 || t == DType::F16 || t == DType::BF16;
}

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

// Converts n elements of a float type (F64, F32, F16, BF16) into T; throws on other types.
template <class T>
void convert_to(const void* src, DType src_type, T* dst, size_t n);
// Converts n values of T into dst_type (a float type), rounding to nearest even.
template <class T>
void convert_from(const T* src, void* dst, DType dst_type, size_t n);

}  // namespace deltatune
