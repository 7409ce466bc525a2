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
    {DType::Q8_0, "Q8_0", 0},
};

void check_q8_0_count(size_t n) {
  DT_CHECK(n % size_t(kQ8_0BlockValues) == 0, "Q8_0 data holds whole blocks of ", kQ8_0BlockValues,
           " values; ", n, " is not a multiple");
}

// ggml's dequantize_row_q8_0: value = d · q in float (exact: an f16 times an int8 needs 19 bits).
template <class T>
void q8_0_decode(const std::byte* in, T* y, size_t n) {
  check_q8_0_count(n);
  for (size_t b = 0; b < n / size_t(kQ8_0BlockValues); ++b, in += kQ8_0BlockBytes, y += kQ8_0BlockValues) {
    uint16_t d16;
    std::memcpy(&d16, in, 2);
    const float d = f16_to_f32(d16);
    const auto* q = reinterpret_cast<const int8_t*>(in + 2);
    for (int64_t j = 0; j < kQ8_0BlockValues; ++j) y[j] = T(d * float(q[j]));
  }
}

// ggml's quantize_row_q8_0_ref: d = max|x| / 127 in float, q = roundf(x / d) (half away from
// zero, as C's roundf; gguf-py's np_roundf reproduces it), d stored as f16.
template <class T>
void q8_0_encode(const T* x, std::byte* out, size_t n) {
  check_q8_0_count(n);
  float v[kQ8_0BlockValues];
  for (size_t b = 0; b < n / size_t(kQ8_0BlockValues); ++b, x += kQ8_0BlockValues, out += kQ8_0BlockBytes) {
    float amax = 0.0f;
    for (int64_t j = 0; j < kQ8_0BlockValues; ++j) {
      v[j] = float(x[j]);
      const float a = std::fabs(v[j]);
      amax = amax > a ? amax : a;  // ggml's MAX macro
    }
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const uint16_t d16 = f32_to_f16(d);
    std::memcpy(out, &d16, 2);
    for (int64_t j = 0; j < kQ8_0BlockValues; ++j) out[2 + j] = std::byte(uint8_t(int8_t(std::roundf(v[j] * id))));
  }
}

}  // namespace

size_t dtype_size(DType t) {
  DT_CHECK(t != DType::Q8_0, "Q8_0 is block-quantized (34 bytes per 32 values): it has no per-element size");
  return kInfo[size_t(t)].size;
}

size_t dtype_bytes(DType t, int64_t n) {
  if (t != DType::Q8_0) return size_t(n) * kInfo[size_t(t)].size;
  check_q8_0_count(size_t(n));
  return size_t(n / kQ8_0BlockValues) * kQ8_0BlockBytes;
}

const char* dtype_name(DType t) { return kInfo[size_t(t)].name; }

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const auto& info : kInfo)
    if (name == info.name && info.type != DType::Q8_0) return info.type;
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
    case DType::Q8_0:
      q8_0_decode(static_cast<const std::byte*>(src), dst, n);
      return;
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
    case DType::Q8_0:
      q8_0_encode(src, static_cast<std::byte*>(dst), n);
      return;
    default:
      fail("cannot convert a float type to ", dtype_name(dst_type));
  }
}

template void convert_to<float>(const void*, DType, float*, size_t);
template void convert_to<double>(const void*, DType, double*, size_t);
template void convert_from<float>(const float*, void*, DType, size_t);
template void convert_from<double>(const double*, void*, DType, size_t);

}  // namespace deltatune
