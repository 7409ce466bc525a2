// Causal GQA attention (ops/attention_cuda.h), flash-style (FlashAttention-2's decomposition):
//   forward   block (query tile, head, sequence): for each key tile up to the diagonal,
//             S = Q Kᵀ, an online softmax over the rows (running max m, sum l, O rescaled by
//             exp(m_old − m_new) when m grows), O += P V; then out = O / l, lse = m + log l
//   backward  D = rowsum(dO ⊙ O) per (token, head); then with P = exp(scale S − lse) recomputed
//             tile by tile and dS = P ⊙ (dO Vᵀ − D):
//             dQ block (query tile, head):           dQ = scale Σ_tiles dS K
//             dKV block (key tile, kv head):         dV = Σ Pᵀ dO,  dK = scale Σ dSᵀ Q over the
//                                                    query tiles at or below the diagonal of every
//                                                    query head of the group
//             Each block sums its own gradient rows (dQ recomputes the scores instead of adding
//             into shared rows with atomics): deterministic.
// Tiles are padded with zeros to multiples of 16 (head dims) and masked (keys past the query, past
// the sequence); every product goes through block_matmul (tensor cores for bf16, float
// accumulation), P and dS enter the products as T. Exponents are ≤ 0: scale S − m with m the row
// max, scale S − lse.
#include <cmath>
#include <cstdlib>
#include <initializer_list>
#include <string_view>
#include <utility>
#include <type_traits>

#include "ops/attention_cuda.h"
#include "ops/cuda/attention_mma.cuh"
#include "ops/cuda/kernel_runner.cuh"

namespace deltatune {

namespace {

using cuda::Block;
using cuda::exact;
using cuda::from_float;
using cuda::kPad;
using cuda::SmemCarver;
using cuda::to_float;

constexpr int kThreads = 256;

// Tile rows per element type: bf16 tiles of 64 queries fit shared memory at head dim 256 where
// float tiles need 32 (as the delta rule's chunks: the length changes rounding, not the function).
template <class T>
struct Tiles {
  static constexpr bool kHalf = sizeof(T) == 2;
  static constexpr int kForwardQ = kHalf ? 64 : 32, kForwardK = kHalf ? 64 : 32;
  static constexpr int kGradQ = kHalf ? 64 : 32, kGradK = 32;  // both backward kernels
};

template <class T>
struct AttentionArgs {
  int H, Hkv, group, d, DP;  // DP: d rounded up to 16
  float scale;
  const int64_t* cu;
  // grid.x, the tiles of the longest sequence; block x takes tile tiles_x − 1 − x, so the tiles
  // with the longest rows start first.
  int tiles_x;
  const T *q, *k, *v;
  int64_t ldq, ldkv;
  T* out;  // forward
  float* lse;
  const T* d_out;  // backward
  const float* lse_in;
  const float* D;
  T *dq, *dk, *dv;
};

// Row strides in shared memory: T tiles of DP columns, float tiles of DP or of a key tile.
template <class T>
DT_HD int ld_t(int cols) {
  return cols + kPad<T>;
}
DT_HD int ld_f(int cols) { return cols + 4; }

template <class T, int BQ, int BK>
struct ForwardBody {
  AttentionArgs<T> a;
  struct Smem {
    T *q, *k, *v, *p;
    float *s, *o, *m, *l, *r;
  };
  DT_HD static Smem carve(char* base, int DP, size_t* bytes) {
    SmemCarver c{base};
    Smem t;
    t.q = c.take<T>(BQ * ld_t<T>(DP));
    t.k = c.take<T>(BK * ld_t<T>(DP));
    t.v = c.take<T>(BK * ld_t<T>(DP));
    t.p = c.take<T>(BQ * ld_t<T>(BK));
    t.s = c.take<float>(BQ * ld_f(BK));
    t.o = c.take<float>(BQ * ld_f(DP));
    t.m = c.take<float>(BQ);
    t.l = c.take<float>(BQ);
    t.r = c.take<float>(BQ);
    *bytes = c.used;
    return t;
  }
  static size_t shared_bytes(int DP) {
    size_t bytes = 0;
    carve(nullptr, DP, &bytes);
    return bytes;
  }

  DT_HD void operator()(const Block& b, int bx, int h, int seq, char* shared) const {
    const int64_t start = a.cu[seq], end = a.cu[seq + 1];
    const int64_t q0 = start + int64_t(a.tiles_x - 1 - bx) * BQ;
    if (q0 >= end) return;
    const int rows = int(end - q0 < BQ ? end - q0 : BQ), DP = a.DP;
    const int kvh = h / a.group;
    size_t bytes = 0;
    const Smem t = carve(shared, DP, &bytes);
    const int ldq = ld_t<T>(DP), ldp = ld_t<T>(BK), lds = ld_f(BK), ldo = ld_f(DP);
    cuda::load_tile(b, t.q, ldq, BQ, DP, a.q + q0 * a.ldq + int64_t(h) * a.d, a.ldq, rows, a.d);
    for (int e = b.thread; e < BQ * DP; e += b.threads) t.o[(e / DP) * ldo + e % DP] = 0.0f;
    for (int i = b.thread; i < BQ; i += b.threads) {
      t.m[i] = -INFINITY;
      t.l[i] = 0.0f;
    }
    const int64_t last_query = q0 + rows - 1;
    for (int64_t k0 = start; k0 <= last_query; k0 += BK) {
      const int keys = int(end - k0 < BK ? end - k0 : BK);
      b.sync();  // the previous tile's products have read K, V and P
      const int64_t kv_at = k0 * a.ldkv + int64_t(kvh) * a.d;
      cuda::load_tile(b, t.k, ldq, BK, DP, a.k + kv_at, a.ldkv, keys, a.d);
      cuda::load_tile(b, t.v, ldq, BK, DP, a.v + kv_at, a.ldkv, keys, a.d);
      b.sync();
      cuda::block_matmul<false, true>(b, BQ, BK, DP, exact(t.q, ldq), exact(t.k, ldq), t.s, lds,
                                      false);
      b.sync();
      for (int i = b.thread; i < BQ; i += b.threads) {
        // Key j is visible to query i when it is inside the sequence and not after it.
        const int64_t visible = i < rows ? q0 + i - k0 + 1 : 0;  // keys 0 .. visible − 1
        const int n = int(visible < keys ? visible : keys);
        float m = t.m[i];
        for (int j = 0; j < n; ++j) m = fmaxf(m, a.scale * t.s[i * lds + j]);
        const float r = m == -INFINITY ? 1.0f : expf(t.m[i] - m);
        float sum = 0.0f;
        for (int j = 0; j < BK; ++j) {
          const float p = j < n ? expf(a.scale * t.s[i * lds + j] - m) : 0.0f;
          sum += p;
          t.p[i * ldp + j] = from_float<T>(p);
        }
        t.m[i] = m;
        t.l[i] = r * t.l[i] + sum;
        t.r[i] = r;
      }
      b.sync();
      for (int e = b.thread; e < BQ * DP; e += b.threads)
        t.o[(e / DP) * ldo + e % DP] *= t.r[e / DP];
      b.sync();
      cuda::block_matmul<false, false>(b, BQ, DP, BK, exact(t.p, ldp), exact(t.v, ldq), t.o, ldo,
                                       true);
    }
    b.sync();
    const int64_t ld_out = int64_t(a.H) * a.d;
    for (int e = b.thread; e < rows * a.d; e += b.threads) {
      const int i = e / a.d, c = e % a.d;
      a.out[(q0 + i) * ld_out + int64_t(h) * a.d + c] = from_float<T>(t.o[i * ldo + c] / t.l[i]);
    }
    for (int i = b.thread; i < rows; i += b.threads)
      a.lse[(q0 + i) * a.H + h] = t.m[i] + logf(t.l[i]);
  }
};

// D[t, h] = Σ_c dO[t, h, c] O[t, h, c], one warp per (token, head).
template <class T>
struct RowDotBody {
  static constexpr int kRows = kThreads / 32;
  const T *d_out, *out;
  int64_t rows;
  int d;
  float* D;
  DT_HD void operator()(const Block& b, int bx, int, int, char*) const {
    const cuda::Warp warp = cuda::warp_of(b);
    for (int vw = warp.index; vw < kRows; vw += warp.count) {
      const int64_t r = int64_t(bx) * kRows + vw;
      if (r >= rows) continue;
      float s = 0.0f;
      for (int c = warp.lane; c < d; c += warp.lanes)
        s += to_float(d_out[r * d + c]) * to_float(out[r * d + c]);
      s = cuda::warp_sum(s);
      if (warp.lane == 0) D[r] = s;
    }
  }
};

// P and dS of a (query tile, key tile) pair from S = Q Kᵀ and dP = dO Vᵀ in shared memory:
// P = exp(scale S − lse) where the key is visible, 0 elsewhere; dS = P (dP − D).
template <class T>
DT_HD void probabilities_and_score_grads(const Block& b, int BQ, int BK, int rows, int keys,
                                         int64_t q0, int64_t k0, float scale, const float* s,
                                         const float* dp, int lds, const float* lse, const float* D,
                                         T* p, T* ds, int ldp) {
  for (int e = b.thread; e < BQ * BK; e += b.threads) {
    const int i = e / BK, j = e % BK;
    const bool visible = i < rows && j < keys && k0 + j <= q0 + i;
    const float pij = visible ? expf(scale * s[i * lds + j] - lse[i]) : 0.0f;
    if (p) p[i * ldp + j] = from_float<T>(pij);
    ds[i * ldp + j] = from_float<T>(pij * (dp[i * lds + j] - D[i]));
  }
}

// The rows' lse and D of a query tile (zero past the sequence: those rows are masked anyway).
template <class T>
DT_HD void load_row_values(const Block& b, const AttentionArgs<T>& a, int64_t q0, int rows, int h,
                           int BQ, float* lse, float* D) {
  for (int i = b.thread; i < BQ; i += b.threads) {
    lse[i] = i < rows ? a.lse_in[(q0 + i) * a.H + h] : 0.0f;
    D[i] = i < rows ? a.D[(q0 + i) * a.H + h] : 0.0f;
  }
}

template <class T, int BQ, int BK>
struct QueryGradBody {
  AttentionArgs<T> a;
  struct Smem {
    T *q, *dout, *k, *v, *ds;
    float *s, *dp, *dq, *lse, *D;
  };
  DT_HD static Smem carve(char* base, int DP, size_t* bytes) {
    SmemCarver c{base};
    Smem t;
    t.q = c.take<T>(BQ * ld_t<T>(DP));
    t.dout = c.take<T>(BQ * ld_t<T>(DP));
    t.k = c.take<T>(BK * ld_t<T>(DP));
    t.v = c.take<T>(BK * ld_t<T>(DP));
    t.ds = c.take<T>(BQ * ld_t<T>(BK));
    t.s = c.take<float>(BQ * ld_f(BK));
    t.dp = c.take<float>(BQ * ld_f(BK));
    t.dq = c.take<float>(BQ * ld_f(DP));
    t.lse = c.take<float>(BQ);
    t.D = c.take<float>(BQ);
    *bytes = c.used;
    return t;
  }
  static size_t shared_bytes(int DP) {
    size_t bytes = 0;
    carve(nullptr, DP, &bytes);
    return bytes;
  }

  DT_HD void operator()(const Block& b, int bx, int h, int seq, char* shared) const {
    const int64_t start = a.cu[seq], end = a.cu[seq + 1];
    const int64_t q0 = start + int64_t(a.tiles_x - 1 - bx) * BQ;
    if (q0 >= end) return;
    const int rows = int(end - q0 < BQ ? end - q0 : BQ), DP = a.DP, kvh = h / a.group;
    size_t bytes = 0;
    const Smem t = carve(shared, DP, &bytes);
    const int ldq = ld_t<T>(DP), ldp = ld_t<T>(BK), lds = ld_f(BK), ldg = ld_f(DP);
    const int64_t ld_out = int64_t(a.H) * a.d;
    cuda::load_tile(b, t.q, ldq, BQ, DP, a.q + q0 * a.ldq + int64_t(h) * a.d, a.ldq, rows, a.d);
    cuda::load_tile(b, t.dout, ldq, BQ, DP, a.d_out + q0 * ld_out + int64_t(h) * a.d, ld_out, rows,
                    a.d);
    load_row_values(b, a, q0, rows, h, BQ, t.lse, t.D);
    for (int e = b.thread; e < BQ * DP; e += b.threads) t.dq[(e / DP) * ldg + e % DP] = 0.0f;
    const int64_t last_query = q0 + rows - 1;
    for (int64_t k0 = start; k0 <= last_query; k0 += BK) {
      const int keys = int(end - k0 < BK ? end - k0 : BK);
      b.sync();
      const int64_t kv_at = k0 * a.ldkv + int64_t(kvh) * a.d;
      cuda::load_tile(b, t.k, ldq, BK, DP, a.k + kv_at, a.ldkv, keys, a.d);
      cuda::load_tile(b, t.v, ldq, BK, DP, a.v + kv_at, a.ldkv, keys, a.d);
      b.sync();
      cuda::block_matmul<false, true>(b, BQ, BK, DP, exact(t.q, ldq), exact(t.k, ldq), t.s, lds,
                                      false);
      cuda::block_matmul<false, true>(b, BQ, BK, DP, exact(t.dout, ldq), exact(t.v, ldq), t.dp, lds,
                                      false, (BQ / 16) * (BK / 16));
      b.sync();
      probabilities_and_score_grads<T>(b, BQ, BK, rows, keys, q0, k0, a.scale, t.s, t.dp, lds,
                                       t.lse, t.D, nullptr, t.ds, ldp);
      b.sync();
      cuda::block_matmul<false, false>(b, BQ, DP, BK, exact(t.ds, ldp), exact(t.k, ldq), t.dq, ldg,
                                       true);
    }
    b.sync();
    for (int e = b.thread; e < rows * a.d; e += b.threads) {
      const int i = e / a.d, c = e % a.d;
      a.dq[(q0 + i) * a.ldq + int64_t(h) * a.d + c] = from_float<T>(a.scale * t.dq[i * ldg + c]);
    }
  }
};

template <class T, int BQ, int BK>
struct KeyValueGradBody {
  AttentionArgs<T> a;
  struct Smem {
    T *k, *v, *q, *dout, *p, *ds;
    float *s, *dp, *dk, *dv, *lse, *D;
  };
  DT_HD static Smem carve(char* base, int DP, size_t* bytes) {
    SmemCarver c{base};
    Smem t;
    t.k = c.take<T>(BK * ld_t<T>(DP));
    t.v = c.take<T>(BK * ld_t<T>(DP));
    t.q = c.take<T>(BQ * ld_t<T>(DP));
    t.dout = c.take<T>(BQ * ld_t<T>(DP));
    t.p = c.take<T>(BQ * ld_t<T>(BK));
    t.ds = c.take<T>(BQ * ld_t<T>(BK));
    t.s = c.take<float>(BQ * ld_f(BK));
    t.dp = c.take<float>(BQ * ld_f(BK));
    t.dk = c.take<float>(BK * ld_f(DP));
    t.dv = c.take<float>(BK * ld_f(DP));
    t.lse = c.take<float>(BQ);
    t.D = c.take<float>(BQ);
    *bytes = c.used;
    return t;
  }
  static size_t shared_bytes(int DP) {
    size_t bytes = 0;
    carve(nullptr, DP, &bytes);
    return bytes;
  }

  DT_HD void operator()(const Block& b, int bx, int kvh, int seq, char* shared) const {
    const int64_t start = a.cu[seq], end = a.cu[seq + 1];
    const int64_t k0 = start + int64_t(a.tiles_x - 1 - bx) * BK;
    if (k0 >= end) return;
    const int keys = int(end - k0 < BK ? end - k0 : BK), DP = a.DP;
    size_t bytes = 0;
    const Smem t = carve(shared, DP, &bytes);
    const int ldq = ld_t<T>(DP), ldp = ld_t<T>(BK), lds = ld_f(BK), ldg = ld_f(DP);
    const int64_t ld_out = int64_t(a.H) * a.d;
    const int64_t kv_at = k0 * a.ldkv + int64_t(kvh) * a.d;
    cuda::load_tile(b, t.k, ldq, BK, DP, a.k + kv_at, a.ldkv, keys, a.d);
    cuda::load_tile(b, t.v, ldq, BK, DP, a.v + kv_at, a.ldkv, keys, a.d);
    for (int e = b.thread; e < BK * DP; e += b.threads) {
      t.dk[(e / DP) * ldg + e % DP] = 0.0f;
      t.dv[(e / DP) * ldg + e % DP] = 0.0f;
    }
    // Queries at or after the tile's first key see some of its keys.
    for (int h = kvh * a.group; h < (kvh + 1) * a.group; ++h)
      for (int64_t q0 = k0; q0 < end; q0 += BQ) {
        const int rows = int(end - q0 < BQ ? end - q0 : BQ);
        b.sync();  // the previous tile's products have read Q, dO, P and dS
        cuda::load_tile(b, t.q, ldq, BQ, DP, a.q + q0 * a.ldq + int64_t(h) * a.d, a.ldq, rows, a.d);
        cuda::load_tile(b, t.dout, ldq, BQ, DP, a.d_out + q0 * ld_out + int64_t(h) * a.d, ld_out,
                        rows, a.d);
        load_row_values(b, a, q0, rows, h, BQ, t.lse, t.D);
        b.sync();
        cuda::block_matmul<false, true>(b, BQ, BK, DP, exact(t.q, ldq), exact(t.k, ldq), t.s, lds,
                                        false);
        cuda::block_matmul<false, true>(b, BQ, BK, DP, exact(t.dout, ldq), exact(t.v, ldq), t.dp,
                                        lds, false, (BQ / 16) * (BK / 16));
        b.sync();
        probabilities_and_score_grads<T>(b, BQ, BK, rows, keys, q0, k0, a.scale, t.s, t.dp, lds,
                                         t.lse, t.D, t.p, t.ds, ldp);
        b.sync();
        cuda::block_matmul<true, false>(b, BK, DP, BQ, exact(t.p, ldp), exact(t.dout, ldq), t.dv,
                                        ldg, true);
        cuda::block_matmul<true, false>(b, BK, DP, BQ, exact(t.ds, ldp), exact(t.q, ldq), t.dk, ldg,
                                        true, (BK / 16) * (DP / 16));
      }
    b.sync();
    for (int e = b.thread; e < keys * a.d; e += b.threads) {
      const int j = e / a.d, c = e % a.d;
      const int64_t at = (k0 + j) * a.ldkv + int64_t(kvh) * a.d + c;
      a.dk[at] = from_float<T>(a.scale * t.dk[j * ldg + c]);
      a.dv[at] = from_float<T>(t.dv[j * ldg + c]);
    }
  }
};

template <class T>
AttentionArgs<T> make_args(const AttentionShape& s, const int64_t* cu, int64_t num_sequences,
                           const T* q, int64_t ldq, const T* k, const T* v, int64_t ldkv) {
  DT_CHECK(s.head_dim >= 1 && s.head_dim <= kAttentionCudaMaxHeadDim,
           "attention (CUDA): head_dim must be in [1, ", kAttentionCudaMaxHeadDim, "], got ",
           s.head_dim);
  DT_CHECK(s.heads > 0 && s.kv_heads > 0 && s.heads % s.kv_heads == 0 && s.heads <= 65535,
           "attention (CUDA): heads (", s.heads, ") must be a multiple of kv_heads (", s.kv_heads,
           "), at most 65535");
  DT_CHECK(num_sequences >= 0 && num_sequences <= 65535,
           "attention (CUDA): at most 65535 sequences per call, got ", num_sequences);
  AttentionArgs<T> a{};
  a.H = s.heads;
  a.Hkv = s.kv_heads;
  a.group = s.heads / s.kv_heads;
  a.d = s.head_dim;
  a.DP = cuda::round_up(s.head_dim, 16);
  a.scale = float(s.scale);
  a.cu = cu;
  a.q = q;
  a.k = k;
  a.v = v;
  a.ldq = ldq;
  a.ldkv = ldkv;
  return a;
}

dim3 tile_grid(int64_t max_seqlen, int tile, int heads, int64_t num_sequences) {
  const int64_t tiles = (max_seqlen + tile - 1) / tile;
  DT_CHECK(tiles < (int64_t(1) << 31), "attention (CUDA): sequence too long (", max_seqlen, ")");
  return dim3(unsigned(tiles), unsigned(heads), unsigned(num_sequences));
}

// The register-accumulator kernels (attention_mma.cuh) run bf16 on the GPU at head dims 64, 128
// and 256, with rows aligned for 16-byte copies; everything else takes the generic kernels above.
// DELTATUNE_ATTENTION=generic forces the generic kernels (to compare the two in one binary).
bool mma_path(const AttentionShape& s, const cuda::Target& target, int64_t ldq, int64_t ldkv,
              std::initializer_list<const void*> pointers) {
  static const bool generic = [] {
    const char* e = std::getenv("DELTATUNE_ATTENTION");
    return e && std::string_view(e) == "generic";
  }();
  if (target.emulate || generic) return false;
  if (s.head_dim != 64 && s.head_dim != 128 && s.head_dim != 256) return false;
  if (ldq % 8 != 0 || ldkv % 8 != 0) return false;
  for (const void* p : pointers)
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0) return false;
  return true;
}

template <class T>
attention_mma::Args mma_args(const AttentionArgs<T>& g) {
  attention_mma::Args a{};
  a.H = g.H;
  a.Hkv = g.Hkv;
  a.group = g.group;
  a.scale = g.scale;
  a.scale_log2 = g.scale * attention_mma::kLog2e;
  a.cu = g.cu;
  a.q = g.q;
  a.k = g.k;
  a.v = g.v;
  a.ldq = g.ldq;
  a.ldkv = g.ldkv;
  return a;
}

template <template <int> class Body>
void launch_mma(const char* name, const attention_mma::Args& a, int head_dim, dim3 grid,
                const cuda::Target& target) {
  // Threads a block: the body's own kThreads where it has one (KeyValueGrad's 8 warps), else 4 warps.
  constexpr int threads = [] {
    if constexpr (requires { Body<64>::kThreads; })
      return Body<64>::kThreads;
    else
      return attention_mma::kThreads;
  }();
  switch (head_dim) {
    case 64: cuda::launch<threads>(target, name, Body<64>{a}, grid, Body<64>::shared_bytes()); break;
    case 128: cuda::launch<threads>(target, name, Body<128>{a}, grid, Body<128>::shared_bytes()); break;
    case 256: cuda::launch<threads>(target, name, Body<256>{a}, grid, Body<256>::shared_bytes()); break;
    default: fail("attention (CUDA): no mma kernel for head_dim ", head_dim);
  }
}

}  // namespace

// D, then (where the mma kernels may run with groups of query heads) the float partials of dK and
// dV per query head.
size_t attention_cuda_backward_workspace_bytes(const AttentionShape& shape) {
  const size_t rows = size_t(shape.tokens) * size_t(shape.heads);
  const bool partials = shape.heads > shape.kv_heads &&
                        (shape.head_dim == 64 || shape.head_dim == 128 || shape.head_dim == 256);
  return rows * sizeof(float) + (partials ? 2 * rows * size_t(shape.head_dim) * sizeof(float) : 0);
}

template <class T>
void attention_cuda_forward(const AttentionShape& shape, const int64_t* cu_seqlens,
                            int64_t num_sequences, int64_t max_seqlen, const T* q, int64_t ldq,
                            const T* k, const T* v, int64_t ldkv, T* out, float* lse,
                            cuda::Target target) {
  AttentionArgs<T> a = make_args(shape, cu_seqlens, num_sequences, q, ldq, k, v, ldkv);
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    if (mma_path(shape, target, ldq, ldkv, {q, k, v, out})) {
      attention_mma::Args m = mma_args(a);
      m.out = out;
      m.lse = lse;
      const dim3 grid = tile_grid(max_seqlen, attention_mma::kRows, shape.heads, num_sequences);
      m.tiles_x = int(grid.x);
      launch_mma<attention_mma::Forward>("attention forward (mma)", m, shape.head_dim, grid, target);
      return;
    }
  }
  a.out = out;
  a.lse = lse;
  using Body = ForwardBody<T, Tiles<T>::kForwardQ, Tiles<T>::kForwardK>;
  const dim3 grid = tile_grid(max_seqlen, Tiles<T>::kForwardQ, shape.heads, num_sequences);
  a.tiles_x = int(grid.x);
  cuda::launch<kThreads>(target, "attention forward", Body{a}, grid, Body::shared_bytes(a.DP));
}

template <class T>
void attention_cuda_backward(const AttentionShape& shape, const int64_t* cu_seqlens,
                             int64_t num_sequences, int64_t max_seqlen, const T* q, int64_t ldq,
                             const T* k, const T* v, int64_t ldkv, const T* out, const float* lse,
                             const T* d_out, T* dq, T* dk, T* dv, void* workspace,
                             cuda::Target target) {
  AttentionArgs<T> a = make_args(shape, cu_seqlens, num_sequences, q, ldq, k, v, ldkv);
  float* D = static_cast<float*>(workspace);
  const int64_t rows = shape.tokens * shape.heads;
  cuda::launch<kThreads>(target, "attention backward: rowsum(dO O)",
                         RowDotBody<T>{d_out, out, rows, shape.head_dim, D},
                         cuda::blocks_for(rows, RowDotBody<T>::kRows));
  a.d_out = d_out;
  a.lse_in = lse;
  a.D = D;
  a.dq = dq;
  a.dk = dk;
  a.dv = dv;
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    if (mma_path(shape, target, ldq, ldkv, {q, k, v, out, d_out, dq, dk, dv})) {
      attention_mma::Args m = mma_args(a);
      m.d_out = d_out;
      m.lse_in = lse;
      m.D = D;
      m.dq = dq;
      m.dk = dk;
      m.dv = dv;
      dim3 grid = tile_grid(max_seqlen, attention_mma::kRows, shape.heads, num_sequences);
      m.tiles_x = int(grid.x);
      launch_mma<attention_mma::QueryGrad>("attention backward: dq (mma)", m, shape.head_dim,
                                           grid, target);
      const bool partials = shape.heads > shape.kv_heads;
      if (partials) {
        m.dk_part = D + rows;
        m.dv_part = m.dk_part + rows * shape.head_dim;
      }
      grid = tile_grid(max_seqlen, attention_mma::kRows, partials ? shape.heads : shape.kv_heads,
                       num_sequences);
      m.tiles_x = int(grid.x);
      launch_mma<attention_mma::KeyValueGrad>("attention backward: dk, dv (mma)", m,
                                              shape.head_dim, grid, target);
      if (partials) {
        using Sum = attention_mma::SumGroupPartials;
        const int64_t n = shape.tokens * shape.kv_heads * shape.head_dim;
        for (auto [part, dst] : {std::pair{m.dk_part, dk}, std::pair{m.dv_part, dv}})
          cuda::launch<Sum::kPerBlock>(
              target, "attention backward: dk, dv over the group",
              Sum{part, shape.tokens, int(shape.kv_heads), a.group, shape.head_dim, dst, ldkv},
              cuda::blocks_for(n, Sum::kPerBlock));
      }
      return;
    }
  }
  constexpr int BQ = Tiles<T>::kGradQ, BK = Tiles<T>::kGradK;
  using QueryGrad = QueryGradBody<T, BQ, BK>;
  dim3 grid = tile_grid(max_seqlen, BQ, shape.heads, num_sequences);
  a.tiles_x = int(grid.x);
  cuda::launch<kThreads>(target, "attention backward: dq", QueryGrad{a}, grid,
                         QueryGrad::shared_bytes(a.DP));
  using KeyValueGrad = KeyValueGradBody<T, BQ, BK>;
  grid = tile_grid(max_seqlen, BK, shape.kv_heads, num_sequences);
  a.tiles_x = int(grid.x);
  cuda::launch<kThreads>(target, "attention backward: dk, dv", KeyValueGrad{a}, grid,
                         KeyValueGrad::shared_bytes(a.DP));
}

#define DT_INSTANTIATE(T)                                                                          \
  template void attention_cuda_forward<T>(const AttentionShape&, const int64_t*, int64_t, int64_t, \
                                          const T*, int64_t, const T*, const T*, int64_t, T*,      \
                                          float*, cuda::Target);                                   \
  template void attention_cuda_backward<T>(                                                        \
      const AttentionShape&, const int64_t*, int64_t, int64_t, const T*, int64_t, const T*,        \
      const T*, int64_t, const T*, const float*, const T*, T*, T*, T*, void*, cuda::Target);
DT_INSTANTIATE(float)
DT_INSTANTIATE(__nv_bfloat16)
#undef DT_INSTANTIATE

}  // namespace deltatune
