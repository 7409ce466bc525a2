#include "ops/cpu/q8_product.h"

#include <immintrin.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "core/dtype.h"
#include "core/error.h"

namespace deltatune {

namespace {

constexpr int64_t kBlock = kQ8_0BlockValues;  // 32
constexpr size_t kBlockBytes = kQ8_0BlockBytes;  // 34: f16 scale, 32 int8

// An f16 as float (as in row_dot.cpp): exact for every half.
inline float half_to_float(uint32_t h) {
  const uint32_t e = (h & 0x7fffu) << 13;
  float v = std::bit_cast<float>(e) * 0x1p112f;
  if ((h & 0x7c00u) == 0x7c00u) v = std::bit_cast<float>(e | 0x7f800000u);
  return std::bit_cast<float>(std::bit_cast<uint32_t>(v) | ((h & 0x8000u) << 16));
}

inline float block_scale(const std::byte* block) {
  uint16_t h;
  std::memcpy(&h, block, 2);
  return half_to_float(h);
}

// A tile: tokens t < M (q rows of `in`, scales d rows of nb) times weight rows n < N (row_bytes
// apart), the results written to y[t·ldy + n].
struct TileArgs {
  const int8_t* q;
  const float* d;
  int64_t in, nb;
  const std::byte* w;
  size_t row_bytes;
  float* y;
  int64_t ldy;
  bool accumulate;
};

inline void store(const TileArgs& a, int64_t m, int64_t n, float s) {
  float& out = a.y[m * a.ldy + n];
  out = a.accumulate ? out + s : s;
}

// Scalar reference: each block's int32 dot, scaled and summed in float32.
template <int M, int N>
void tile_scalar(const TileArgs& a) {
  float acc[M][N] = {};
  for (int64_t b = 0; b < a.nb; ++b) {
    for (int n = 0; n < N; ++n) {
      const std::byte* blk = a.w + size_t(n) * a.row_bytes + size_t(b) * kBlockBytes;
      const float dw = block_scale(blk);
      const auto* wq = reinterpret_cast<const int8_t*>(blk + 2);
      for (int m = 0; m < M; ++m) {
        const int8_t* xq = a.q + m * a.in + b * kBlock;
        int32_t s = 0;
        for (int j = 0; j < kBlock; ++j) s += int32_t(xq[j]) * int32_t(wq[j]);
        acc[m][n] += float(s) * (a.d[m * a.nb + b] * dw);
      }
    }
  }
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) store(a, m, n, acc[m][n]);
}

#define DT_AVX2_TARGET __attribute__((target("avx2,fma")))
#define DT_VNNI_TARGET __attribute__((target("avx512f,avx512vl,avx512bw,avx512vnni,avx2,fma")))

DT_AVX2_TARGET inline float hsum_avx2(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// AVX2: per pair, |w| (unsigned, ≤ 128) times x with w's sign (|x| ≤ 127) through vpmaddubsw —
// pairs of products ≤ 2·128·127 < 2^15, no saturation — then vpmaddwd by ones to int32 lanes.
template <int M, int N>
DT_AVX2_TARGET void tile_avx2(const TileArgs& a) {
  __m256 acc[M][N];
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) acc[m][n] = _mm256_setzero_ps();
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t b = 0; b < a.nb; ++b) {
    __m256i wv[N], wa[N];
    float dw[N];
    for (int n = 0; n < N; ++n) {
      const std::byte* blk = a.w + size_t(n) * a.row_bytes + size_t(b) * kBlockBytes;
      dw[n] = block_scale(blk);
      wv[n] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
      wa[n] = _mm256_sign_epi8(wv[n], wv[n]);
    }
    for (int m = 0; m < M; ++m) {
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.q + m * a.in + b * kBlock));
      const float dx = a.d[m * a.nb + b];
      for (int n = 0; n < N; ++n) {
        const __m256i p = _mm256_maddubs_epi16(wa[n], _mm256_sign_epi8(xv, wv[n]));
        const __m256i s = _mm256_madd_epi16(p, ones);
        acc[m][n] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(dx * dw[n]), acc[m][n]);
      }
    }
  }
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) store(a, m, n, hsum_avx2(acc[m][n]));
}

DT_VNNI_TARGET inline float hsum_vnni(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// AVX-512 VNNI: vpdpbusd multiplies unsigned by signed bytes, so x goes in as x + 128 (x ^ 0x80)
// and each lane starts from -128 · (its 4 weights' sum), itself a vpdpbusd of 0x80 bytes with w:
// the lane then holds the exact signed dot of its 4 pairs.
template <int M, int N>
DT_VNNI_TARGET void tile_vnni(const TileArgs& a) {
  __m256 acc[M][N];
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) acc[m][n] = _mm256_setzero_ps();
  const __m256i bias = _mm256_set1_epi8(char(0x80));
  const __m256i zero = _mm256_setzero_si256();
  for (int64_t b = 0; b < a.nb; ++b) {
    __m256i wv[N], start[N];
    float dw[N];
    for (int n = 0; n < N; ++n) {
      const std::byte* blk = a.w + size_t(n) * a.row_bytes + size_t(b) * kBlockBytes;
      dw[n] = block_scale(blk);
      wv[n] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
      start[n] = _mm256_sub_epi32(zero, _mm256_dpbusd_epi32(zero, bias, wv[n]));
    }
    for (int m = 0; m < M; ++m) {
      const __m256i xv = _mm256_xor_si256(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.q + m * a.in + b * kBlock)), bias);
      const float dx = a.d[m * a.nb + b];
      for (int n = 0; n < N; ++n) {
        const __m256i s = _mm256_dpbusd_epi32(start[n], xv, wv[n]);
        acc[m][n] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(dx * dw[n]), acc[m][n]);
      }
    }
  }
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) store(a, m, n, hsum_vnni(acc[m][n]));
}

using TileFn = void (*)(const TileArgs&);

// The tile shapes of one variant: M × N, 1 × N, M × 1, 1 × 1 (the edges).
struct Tiles {
  int m, n;
  TileFn full, row, col, one;
};


#define DT_TILES(KERNEL, M, N) Tiles{M, N, KERNEL<M, N>, KERNEL<1, N>, KERNEL<M, 1>, KERNEL<1, 1>}

Tiles tiles_for(Q8Isa isa) {
  switch (isa) {
    case Q8Isa::Vnni: return DT_TILES(tile_vnni, 4, 4);
    case Q8Isa::Avx2: return DT_TILES(tile_avx2, 4, 2);
    case Q8Isa::Scalar: break;
  }
  return DT_TILES(tile_scalar, 4, 4);
}
#undef DT_TILES

bool cpu_has(Q8Isa isa) {
  __builtin_cpu_init();
  switch (isa) {
    case Q8Isa::Vnni:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni") &&
             __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Q8Isa::Avx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Q8Isa::Scalar: return true;
  }
  return false;
}

// Blocks of work: weight rows × tokens small enough that both stay in the core's cache (64 rows
// and 64 tokens of 4096 int8 values: 256 KiB each).
constexpr int64_t kRowsPerTask = 64, kTokensPerTask = 64;

}  // namespace

bool q8_isa_available(Q8Isa isa) { return cpu_has(isa); }

Q8Isa q8_default_isa() {
  static const Q8Isa isa = cpu_has(Q8Isa::Vnni) ? Q8Isa::Vnni : cpu_has(Q8Isa::Avx2) ? Q8Isa::Avx2 : Q8Isa::Scalar;
  return isa;
}

const char* q8_isa_name(Q8Isa isa) {
  return isa == Q8Isa::Vnni ? "avx512vnni" : isa == Q8Isa::Avx2 ? "avx2" : "scalar";
}

void quantize_activations_q8(const float* x, int64_t rows, int64_t in, int64_t ldx, int8_t* q, float* d) {
  DT_CHECK(in % kBlock == 0, "q8_0 activations: ", in, " values per row is not a multiple of 32");
  const int64_t nb = in / kBlock;
#pragma omp parallel for schedule(static) if (rows * in >= (int64_t(1) << 15))
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < nb; ++b) {
      const float* xb = x + r * ldx + b * kBlock;
      int8_t* qb = q + r * in + b * kBlock;
      float amax = 0;
      for (int64_t j = 0; j < kBlock; ++j) amax = std::max(amax, std::fabs(xb[j]));
      const float scale = amax / 127.0f;
      const float inv = scale != 0 ? 1.0f / scale : 0.0f;
#pragma omp simd
      for (int64_t j = 0; j < kBlock; ++j) qb[j] = int8_t(std::nearbyint(xb[j] * inv));
      d[r * nb + b] = scale;
    }
  }
}

void q8_product(const int8_t* q, const float* d, int64_t rows, const std::byte* w, int64_t out, int64_t in,
                float* y, int64_t ldy, bool accumulate, Q8Isa isa) {
  DT_CHECK(in % kBlock == 0, "q8_0 product: ", in, " columns is not a multiple of 32");
  DT_CHECK(cpu_has(isa), "q8_0 product: this CPU has no ", q8_isa_name(isa));
  if (rows == 0 || out == 0) return;
  const Tiles t = tiles_for(isa);
  const int64_t nb = in / kBlock;
  const size_t row_bytes = size_t(nb) * kBlockBytes;
  const int64_t row_tasks = (out + kRowsPerTask - 1) / kRowsPerTask;
  const int64_t token_tasks = (rows + kTokensPerTask - 1) / kTokensPerTask;
#pragma omp parallel for collapse(2) schedule(static) if (rows * out * in >= (int64_t(1) << 18))
  for (int64_t rt = 0; rt < row_tasks; ++rt) {
    for (int64_t tt = 0; tt < token_tasks; ++tt) {
      const int64_t o_end = std::min(out, (rt + 1) * kRowsPerTask);
      const int64_t t_end = std::min(rows, (tt + 1) * kTokensPerTask);
      for (int64_t o = rt * kRowsPerTask; o < o_end; o += t.n) {
        const int64_t nn = std::min<int64_t>(t.n, o_end - o);
        for (int64_t tok = tt * kTokensPerTask; tok < t_end; tok += t.m) {
          const int64_t mm = std::min<int64_t>(t.m, t_end - tok);
          TileArgs a{q + tok * in, d + tok * nb, in, nb, w + size_t(o) * row_bytes, row_bytes,
                     y + tok * ldy + o, ldy, accumulate};
          if (mm == t.m && nn == t.n) {
            t.full(a);
          } else if (nn == t.n) {
            for (int64_t i = 0; i < mm; ++i, a.q += in, a.d += nb, a.y += ldy) t.row(a);
          } else if (mm == t.m) {
            for (int64_t j = 0; j < nn; ++j, a.w += row_bytes, ++a.y) t.col(a);
          } else {
            for (int64_t i = 0; i < mm; ++i)
              for (int64_t j = 0; j < nn; ++j) {
                TileArgs e = a;
                e.q += i * in, e.d += i * nb, e.w += size_t(j) * row_bytes, e.y += i * ldy + j;
                t.one(e);
              }
          }
        }
      }
    }
  }
}

}  // namespace deltatune
