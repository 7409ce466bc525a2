#include "ops/cpu/q8_product.h"

#include <immintrin.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"

// GCC 12's _mm512_cvtepi32_ps passes an undefined vector as the masked-off source, which
// -Wmaybe-uninitialized reports inside the intrinsic header.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

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
    _Pragma("GCC unroll 8") for (int n = 0; n < N; ++n) {
      const std::byte* blk = a.w + size_t(n) * a.row_bytes + size_t(b) * kBlockBytes;
      const float dw = block_scale(blk);
      const auto* wq = reinterpret_cast<const int8_t*>(blk + 2);
      _Pragma("GCC unroll 8") for (int m = 0; m < M; ++m) {
        const int8_t* xq = a.q + m * a.in + b * kBlock;
        int32_t s = 0;
        for (int j = 0; j < kBlock; ++j) s += int32_t(xq[j]) * int32_t(wq[j]);
        acc[m][n] += float(s) * (a.d[m * a.nb + b] * dw);
      }
    }
  }
  _Pragma("GCC unroll 8") for (int m = 0; m < M; ++m)
    _Pragma("GCC unroll 8") for (int n = 0; n < N; ++n) store(a, m, n, acc[m][n]);
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
  _Pragma("GCC unroll 8") for (int m = 0; m < M; ++m)
    _Pragma("GCC unroll 8") for (int n = 0; n < N; ++n) acc[m][n] = _mm256_setzero_ps();
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t b = 0; b < a.nb; ++b) {
    __m256i wv[N], wa[N];
    float dw[N];
    _Pragma("GCC unroll 8") for (int n = 0; n < N; ++n) {
      const std::byte* blk = a.w + size_t(n) * a.row_bytes + size_t(b) * kBlockBytes;
      dw[n] = block_scale(blk);
      wv[n] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
      wa[n] = _mm256_sign_epi8(wv[n], wv[n]);
    }
    _Pragma("GCC unroll 8") for (int m = 0; m < M; ++m) {
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.q + m * a.in + b * kBlock));
      const float dx = a.d[m * a.nb + b];
      _Pragma("GCC unroll 8") for (int n = 0; n < N; ++n) {
        const __m256i p = _mm256_maddubs_epi16(wa[n], _mm256_sign_epi8(xv, wv[n]));
        const __m256i s = _mm256_madd_epi16(p, ones);
        acc[m][n] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(dx * dw[n]), acc[m][n]);
      }
    }
  }
  _Pragma("GCC unroll 8") for (int m = 0; m < M; ++m)
    _Pragma("GCC unroll 8") for (int n = 0; n < N; ++n) store(a, m, n, hsum_avx2(acc[m][n]));
}

// AVX-512 VNNI on zmm, the weights repacked per group of 16 rows so that each int32 lane is one
// weight row: per block, 8 vectors of [16 rows × 4 bytes] (w ^ 0x80, i.e. w + 128 unsigned) and
// the 16 row scales as floats. vpdpbusd then multiplies those 16 rows by 4 activation bytes
// broadcast from memory (signed), 64 products per instruction, and a block's scale is applied once
// per 16 rows: acc starts at -128·Σ_j x_j (taking back the +128), 8 vpdpbusd give the exact dots
// of the block with 16 rows, then one convert, one scale product and one fma.
constexpr int64_t kGroupRows = 16, kGroupBlockBytes = 8 * 64;

// Repacks rows [0, n) (n ≤ 16; the rest padded with zero weights) of q8_0 rows at w.
void repack_group(const std::byte* w, size_t row_bytes, int64_t n, int64_t nb, uint8_t* packed, float* scales) {
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* pb = packed + b * kGroupBlockBytes;
    float* sb = scales + b * kGroupRows;
    for (int64_t r = 0; r < kGroupRows; ++r) {
      if (r >= n) {
        sb[r] = 0;
        for (int64_t kq = 0; kq < 8; ++kq) std::memset(pb + kq * 64 + r * 4, 0x80, 4);
        continue;
      }
      const std::byte* blk = w + size_t(r) * row_bytes + size_t(b) * kBlockBytes;
      sb[r] = block_scale(blk);
      const auto* q = reinterpret_cast<const uint8_t*>(blk + 2);
      for (int64_t kq = 0; kq < 8; ++kq)
        for (int64_t i = 0; i < 4; ++i) pb[kq * 64 + r * 4 + i] = uint8_t(q[kq * 4 + i] ^ 0x80u);
    }
  }
}

struct GroupArgs {
  const uint8_t* packed;
  const float* scales;
  int64_t nb, in;
  const int8_t* q;        // token rows, stride in
  const float* d;         // stride nb
  const int32_t* offset;  // -128 · Σ_j q over each block, stride nb
  float* y;
  int64_t ldy, n;  // n: valid rows of the group
  bool accumulate;
};

template <int T>
DT_VNNI_TARGET void group_vnni(const GroupArgs& a) {
  __m512 acc[T];
  _Pragma("GCC unroll 8") for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t b = 0; b < a.nb; ++b) {
    __m512i wv[8];
    const uint8_t* pb = a.packed + b * kGroupBlockBytes;
    _Pragma("GCC unroll 8") for (int kq = 0; kq < 8; ++kq) wv[kq] = _mm512_loadu_si512(pb + kq * 64);
    const __m512 dw = _mm512_loadu_ps(a.scales + b * kGroupRows);
    _Pragma("GCC unroll 8") for (int t = 0; t < T; ++t) {
      const int8_t* xb = a.q + t * a.in + b * kBlock;
      __m512i s = _mm512_set1_epi32(a.offset[t * a.nb + b]);
      _Pragma("GCC unroll 8") for (int kq = 0; kq < 8; ++kq) {
        int32_t x4;
        std::memcpy(&x4, xb + kq * 4, 4);
        s = _mm512_dpbusd_epi32(s, wv[kq], _mm512_set1_epi32(x4));
      }
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, _mm512_set1_ps(a.d[t * a.nb + b])), acc[t]);
    }
  }
  const __mmask16 mask = __mmask16((1u << a.n) - 1u);
  _Pragma("GCC unroll 8") for (int t = 0; t < T; ++t) {
    float* yt = a.y + t * a.ldy;
    __m512 v = acc[t];
    if (a.accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, yt));
    _mm512_mask_storeu_ps(yt, mask, v);
  }
}

using GroupFn = void (*)(const GroupArgs&);
constexpr int kGroupTokens = 8;
const GroupFn kGroupFns[kGroupTokens + 1] = {nullptr, group_vnni<1>, group_vnni<2>, group_vnni<3>, group_vnni<4>,
                                             group_vnni<5>, group_vnni<6>, group_vnni<7>, group_vnni<8>};

// Tasks of up to 4 groups (64 rows): each thread repacks its groups, then runs every tile of 8
// tokens against them (the tile's activations stay in L1 across the groups).
void product_vnni(const int8_t* q, const float* d, int64_t rows, const std::byte* w, int64_t out, int64_t in,
                  float* y, int64_t ldy, bool accumulate) {
  const int64_t nb = in / kBlock;
  const size_t row_bytes = size_t(nb) * kBlockBytes;
  std::vector<int32_t> offset(size_t(rows * nb));
  for (int64_t i = 0; i < rows * nb; ++i) {
    int32_t s = 0;
    for (int64_t j = 0; j < kBlock; ++j) s += q[i * kBlock + j];
    offset[size_t(i)] = -128 * s;
  }
  constexpr int64_t kGroupsPerTask = 4;
  const int64_t groups = (out + kGroupRows - 1) / kGroupRows;
  const int64_t tasks = (groups + kGroupsPerTask - 1) / kGroupsPerTask;
#pragma omp parallel for schedule(static) if (rows * out * in >= (int64_t(1) << 18))
  for (int64_t task = 0; task < tasks; ++task) {
    thread_local std::vector<uint8_t> packed;
    thread_local std::vector<float> scales;
    packed.resize(size_t(kGroupsPerTask * nb * kGroupBlockBytes));
    scales.resize(size_t(kGroupsPerTask * nb * kGroupRows));
    const int64_t g0 = task * kGroupsPerTask, g1 = std::min(groups, g0 + kGroupsPerTask);
    for (int64_t g = g0; g < g1; ++g) {
      const int64_t o = g * kGroupRows;
      repack_group(w + size_t(o) * row_bytes, row_bytes, std::min(kGroupRows, out - o), nb,
                   packed.data() + (g - g0) * nb * kGroupBlockBytes, scales.data() + (g - g0) * nb * kGroupRows);
    }
    for (int64_t t = 0; t < rows; t += kGroupTokens) {
      const int64_t m = std::min<int64_t>(kGroupTokens, rows - t);
      for (int64_t g = g0; g < g1; ++g) {
        const int64_t o = g * kGroupRows;
        const GroupArgs a{packed.data() + (g - g0) * nb * kGroupBlockBytes, scales.data() + (g - g0) * nb * kGroupRows,
                          nb, in, q + t * in, d + t * nb, offset.data() + t * nb, y + t * ldy + o, ldy,
                          std::min(kGroupRows, out - o), accumulate};
        kGroupFns[m](a);
      }
    }
  }
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
    case Q8Isa::Avx2: return DT_TILES(tile_avx2, 4, 2);
    case Q8Isa::Vnni:  // product_vnni
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
  if (isa == Q8Isa::Vnni) {
    product_vnni(q, d, rows, w, out, in, y, ldy, accumulate);
    return;
  }
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
