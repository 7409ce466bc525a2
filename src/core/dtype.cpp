#include "core/dtype.h"

#include <cmath>

#include "core/error.h"

namespace deltatune {

namespace {
struct DTypeInfo {
  DType type;
  const char* name;
  size_t size;
};
constexpr DTypeInfo kInfo[] = {
    {DType::F64, "F64", 8},        {DType::F32, "F32", 4},        {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2},      {DType::F8_E4M3, "F8_E4M3", 1}, {DType::F8_E5M2, "F8_E5M2", 1},
    {DType::I64, "I64", 8},        {DType::I32, "I32", 4},        {DType::I16, "I16", 2},
    {DType::I8, "I8", 1},          {DType::U8, "U8", 1},          {DType::BOOL, "BOOL", 1},
};
}  // namespace

size_t dtype_size(DType t) { return kInfo[size_t(t)].size; }
const char* dtype_name(DType t) { return kInfo[size_t(t)].name; }

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const auto& info : kInfo)
    if (name == info.name) return info.type;
  return std::nullopt;
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  uint32_t bits;
  if (exponent == 0) {
    if (mantissa == 0) {
      bits = sign;
    } else {  // subnormal half: value = mantissa * 2^-24, exact in float
      float f = std::ldexp(float(mantissa), -24);
      std::memcpy(&bits, &f, 4);
      bits |= sign;
    }
  } else if (exponent == 31) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  const uint16_t sign = uint16_t((bits >> 16) & 0x8000u);
  const uint32_t abs = bits & 0x7fffffffu;
  if (abs > 0x7f800000u) return sign | 0x7e00u;  // NaN
  if (abs >= 0x477ff000u) return sign | 0x7c00u;  // rounds to >= 65520: infinity
  if (abs < 0x38800000u) {                        // below the smallest normal half (2^-14)
    // Subnormal or zero: value / 2^-24 rounded to nearest even.
    float scaled = std::ldexp(std::fabs(f), 24);
    return sign | uint16_t(std::nearbyint(scaled));
  }
  uint32_t rounded = abs + 0xfffu + ((abs >> 13) & 1u);
  return sign | uint16_t((rounded - 0x38000000u) >> 13);
}

template <class T>
void convert_to(const void* src, DType src_type, T* dst, size_t n) {
  switch (src_type) {
    case DType::F64: {
      const double* s = static_cast<const double*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = T(s[i]);
      return;
    }
    case DType::F32: {
      const float* s = static_cast<const float*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = T(s[i]);
      return;
    }
    case DType::BF16: {
      const uint16_t* s = static_cast<const uint16_t*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = T(bf16_to_f32(s[i]));
      return;
    }
    case DType::F16: {
      const uint16_t* s = static_cast<const uint16_t*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = T(f16_to_f32(s[i]));
      return;
    }
    default:
      fail("cannot convert ", dtype_name(src_type), " to a float type");
  }
}

template <class T>
void convert_from(const T* src, void* dst, DType dst_type, size_t n) {
  switch (dst_type) {
    case DType::F64: {
      double* d = static_cast<double*>(dst);
      for (size_t i = 0; i < n; ++i) d[i] = double(src[i]);
      return;
    }
    case DType::F32: {
      float* d = static_cast<float*>(dst);
      for (size_t i = 0; i < n; ++i) d[i] = float(src[i]);
      return;
    }
    case DType::BF16: {
      uint16_t* d = static_cast<uint16_t*>(dst);
      for (size_t i = 0; i < n; ++i) d[i] = f32_to_bf16(float(src[i]));
      return;
    }
    case DType::F16: {
      uint16_t* d = static_cast<uint16_t*>(dst);
      for (size_t i = 0; i < n; ++i) d[i] = f32_to_f16(float(src[i]));
      return;
    }
    default:
      fail("cannot convert a float type to ", dtype_name(dst_type));
  }
}

template void convert_to<float>(const void*, DType, float*, size_t);
template void convert_to<double>(const void*, DType, double*, size_t);
template void convert_from<float>(const float*, void*, DType, size_t);
template void convert_from<double>(const double*, void*, DType, size_t);

}  // namespace deltatune
