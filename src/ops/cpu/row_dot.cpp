#include "ops/cpu/row_dot.h"

#include <bit>
#include <cstring>
#include <vector>

#include "core/error.h"

namespace deltatune {

namespace {

// An f16 as float, branch-free: the exponent and mantissa moved into a float and scaled by 2^112
// (exact for normal and subnormal halves), infinities and NaNs kept, the sign copied.
inline float half_to_float(uint32_t h) {
  const uint32_t e = (h & 0x7fffu) << 13;
  float v = std::bit_cast<float>(e) * 0x1p112f;
  if ((h & 0x7c00u) == 0x7c00u) v = std::bit_cast<float>(e | 0x7f800000u);
  return std::bit_cast<float>(std::bit_cast<uint32_t>(v) | ((h & 0x8000u) << 16));
}

// The kernels are plain loops the compiler vectorizes (omp simd reductions: the order of the
// float sums is the vector lanes', as any vectorized dot's); each is compiled once per target.
#define DT_ROW_DOT_KERNELS(SUFFIX, TARGET)                                                                  \
  TARGET void dots_f32_##SUFFIX(const float* w, int64_t in, const float* x, int64_t ldx, int64_t rows,    \
                                float* out) {                                                            \
    for (int64_t r = 0; r < rows; ++r) {                                                                 \
      const float* xr = x + r * ldx;                                                                     \
      float s = 0;                                                                                       \
      _Pragma("omp simd reduction(+ : s)") for (int64_t i = 0; i < in; ++i) s += xr[i] * w[i];           \
      out[r] = s;                                                                                        \
    }                                                                                                    \
  }                                                                                                      \
  TARGET void dots_bf16_##SUFFIX(const uint16_t* w, int64_t in, const float* x, int64_t ldx, int64_t rows, \
                                 float* out) {                                                           \
    for (int64_t r = 0; r < rows; ++r) {                                                                 \
      const float* xr = x + r * ldx;                                                                     \
      float s = 0;                                                                                       \
      _Pragma("omp simd reduction(+ : s)") for (int64_t i = 0; i < in; ++i) s +=                         \
          xr[i] * std::bit_cast<float>(uint32_t(w[i]) << 16);                                            \
      out[r] = s;                                                                                        \
    }                                                                                                    \
  }                                                                                                      \
  TARGET void dots_f16_##SUFFIX(const uint16_t* w, int64_t in, const float* x, int64_t ldx, int64_t rows,  \
                                float* out) {                                                            \
    for (int64_t r = 0; r < rows; ++r) {                                                                 \
      const float* xr = x + r * ldx;                                                                     \
      float s = 0;                                                                                       \
      _Pragma("omp simd reduction(+ : s)") for (int64_t i = 0; i < in; ++i) s += xr[i] * half_to_float(w[i]); \
      out[r] = s;                                                                                        \
    }                                                                                                    \
  }                                                                                                      \
  /* q8_0: 32 lanes accumulate d·q·x across blocks, summed once at the end. */                           \
  TARGET void dots_q8_0_##SUFFIX(const std::byte* w, int64_t in, const float* x, int64_t ldx, int64_t rows, \
                                 float* out) {                                                           \
    for (int64_t r = 0; r < rows; ++r) {                                                                 \
      const float* xr = x + r * ldx;                                                                     \
      const std::byte* block = w;                                                                        \
      float acc[kQ8_0BlockValues] = {};                                                                  \
      for (int64_t b = 0; b < in / kQ8_0BlockValues; ++b, block += kQ8_0BlockBytes, xr += kQ8_0BlockValues) { \
        uint16_t d16;                                                                                    \
        std::memcpy(&d16, block, 2);                                                                     \
        const float d = half_to_float(d16);                                                              \
        const auto* q = reinterpret_cast<const int8_t*>(block + 2);                                       \
        _Pragma("omp simd") for (int64_t j = 0; j < kQ8_0BlockValues; ++j) acc[j] += d * float(q[j]) * xr[j]; \
      }                                                                                                  \
      float s = 0;                                                                                       \
      for (int64_t j = 0; j < kQ8_0BlockValues; ++j) s += acc[j];                                        \
      out[r] = s;                                                                                        \
    }                                                                                                    \
  }                                                                                                      \
  TARGET void decode_bf16_##SUFFIX(const uint16_t* w, int64_t n, float* out) {                           \
    _Pragma("omp simd") for (int64_t i = 0; i < n; ++i) out[i] = std::bit_cast<float>(uint32_t(w[i]) << 16); \
  }                                                                                                      \
  TARGET void decode_f16_##SUFFIX(const uint16_t* w, int64_t n, float* out) {                            \
    _Pragma("omp simd") for (int64_t i = 0; i < n; ++i) out[i] = half_to_float(w[i]);                    \
  }                                                                                                      \
  TARGET void decode_q8_0_##SUFFIX(const std::byte* w, int64_t n, float* out) {                          \
    for (int64_t b = 0; b < n / kQ8_0BlockValues; ++b, w += kQ8_0BlockBytes, out += kQ8_0BlockValues) {  \
      uint16_t d16;                                                                                      \
      std::memcpy(&d16, w, 2);                                                                           \
      const float d = half_to_float(d16);                                                                \
      const auto* q = reinterpret_cast<const int8_t*>(w + 2);                                             \
      _Pragma("omp simd") for (int64_t j = 0; j < kQ8_0BlockValues; ++j) out[j] = d * float(q[j]);       \
    }                                                                                                    \
  }

DT_ROW_DOT_KERNELS(avx512, __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma"))))
DT_ROW_DOT_KERNELS(avx2, __attribute__((target("avx2,fma"))))
DT_ROW_DOT_KERNELS(baseline, )
#undef DT_ROW_DOT_KERNELS

enum class Isa { Avx512, Avx2, Baseline };

Isa detect_isa() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
    return Isa::Avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::Avx2;
  return Isa::Baseline;
}

const Isa kIsa = detect_isa();

}  // namespace

const char* weight_row_dots_isa() {
  return kIsa == Isa::Avx512 ? "avx512" : kIsa == Isa::Avx2 ? "avx2" : "baseline";
}

#define DT_DISPATCH(KERNEL, ...)                                         \
  switch (kIsa) {                                                        \
    case Isa::Avx512: KERNEL##_avx512(__VA_ARGS__); return;              \
    case Isa::Avx2: KERNEL##_avx2(__VA_ARGS__); return;                  \
    case Isa::Baseline: KERNEL##_baseline(__VA_ARGS__); return;          \
  }

void weight_row_dots(const std::byte* w, DType dtype, int64_t in, const float* x, int64_t ldx, int64_t rows,
                     float* out) {
  switch (dtype) {
    case DType::F32: DT_DISPATCH(dots_f32, reinterpret_cast<const float*>(w), in, x, ldx, rows, out); break;
    case DType::BF16: DT_DISPATCH(dots_bf16, reinterpret_cast<const uint16_t*>(w), in, x, ldx, rows, out); break;
    case DType::F16: DT_DISPATCH(dots_f16, reinterpret_cast<const uint16_t*>(w), in, x, ldx, rows, out); break;
    case DType::Q8_0: DT_DISPATCH(dots_q8_0, w, in, x, ldx, rows, out); break;
    default: {
      // F64: decode the row, then the f32 kernel.
      thread_local std::vector<float> row;
      row.resize(static_cast<size_t>(in));
      convert_to<float>(w, dtype, row.data(), size_t(in));
      DT_DISPATCH(dots_f32, row.data(), in, x, ldx, rows, out);
    }
  }
}

void decode_weight_row(const std::byte* w, DType dtype, int64_t n, float* out) {
  switch (dtype) {
    case DType::F32: std::memcpy(out, w, size_t(n) * sizeof(float)); return;
    case DType::BF16: DT_DISPATCH(decode_bf16, reinterpret_cast<const uint16_t*>(w), n, out); break;
    case DType::F16: DT_DISPATCH(decode_f16, reinterpret_cast<const uint16_t*>(w), n, out); break;
    case DType::Q8_0: DT_DISPATCH(decode_q8_0, w, n, out); break;
    default: convert_to<float>(w, dtype, out, size_t(n));
  }
}
#undef DT_DISPATCH

}  // namespace deltatune
