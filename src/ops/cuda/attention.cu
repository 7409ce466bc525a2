// The causal GQA attention of ops/attention_cuda.h, flash style (FlashAttention-2's order of work:
// Dao 2023, "FlashAttention-2", algorithms 1 and 2), written as block bodies that also run on the
// host (block_tile.cuh), so CI checks their indexing against ops/cpu/attention.cpp.
//
//   forward        one block per (tile of queries, query head): Q stays in shared memory, tiles of
//                  K and V stream through; S = Q Kᵀ, the online softmax per row (running max m and
//                  sum l, the output rescaled by exp(m_old − m_new) when m grows), O += P V; at the
//                  end O / l and lse = m + log l.
//   backward       D = rowsum(dO ∘ O) per (token, head), then two bodies that never write the same
//                  element (deterministic, no atomics):
//                  dK, dV: one block per (tile of keys, kv head), over every query head of its
//                  group and every query that can see the tile: P = exp(S − lse),
//                  dS = P ∘ (dO Vᵀ − D), dV += Pᵀ dO, dK += scale · dSᵀ Q.
//                  dQ: one block per (tile of queries, query head), over the keys it sees:
//                  dQ += scale · dS K (recomputing S and dO Vᵀ).
// Packed sequences: a query row knows its sequence's first token (a binary search in cu_seqlens);
// key j is visible to query t when start(t) ≤ j ≤ t. A tile may straddle a boundary: its rows are
// masked one by one. Products on the tensor cores for bf16 (block_matmul), float sums throughout;
// P and dS enter the products rounded to T, as in FlashAttention.
#include <cmath>

#include "ops/attention_cuda.h"
#include "ops/cuda/kernel_runner.cuh"

namespace deltatune {

namespace {

using cuda::Block;
using cuda::bf16;
using cuda::exact;
using cuda::from_float;
using cuda::kPad;
using cuda::SmemCarver;
using cuda::to_float;
using cuda::Warp;

constexpr int kThreads = 256;

// Rows of the tiles. bf16 tiles of head_dim 256 fit 64 queries × 64 keys forward (196 KB of
// shared memory) and 64 × 32 backward (198 KB, with the float dK and dV or dQ accumulators);
// float tiles take twice the bytes, so half the rows.
template <class T>
struct TileRows;
template <>
struct TileRows<bf16> {
  static constexpr int kQueries = 64, kKeys = 64, kBackwardQueries = 64, kBackwardKeys = 32;
};
template <>
struct TileRows<float> {
  static constexpr int kQueries = 32, kKeys = 32, kBackwardQueries = 32, kBackwardKeys = 16;
};

struct Geometry {
  int64_t tokens;
  int heads, kv_heads;
  int d;   // head_dim
  int dp;  // head_dim rounded up to 16 (the tiles' width; the padding is zero)
  float scale;
  const int64_t* cu_seqlens;
  int64_t num_sequences;
};

// The sequence holding token t: the largest s with cu_seqlens[s] <= t.
DT_HD int64_t sequence_of(const Geometry& g, int64_t t) {
  int64_t lo = 0, hi = g.num_sequences;
  while (hi - lo > 1) {
    const int64_t mid = (lo + hi) / 2;
    if (g.cu_seqlens[mid] <= t)
      lo = mid;
    else
      hi = mid;
  }
  return lo;
}

constexpr int64_t kNoStart = INT64_MAX;  // a padding row: sees no key

// Row values of a tile of `rows` queries from q0 (padding rows up to `count` see nothing).
DT_HD void load_query_rows(const Block& b, const Geometry& g, int64_t q0, int rows, int count,
                           int64_t* start) {
  for (int r = b.thread; r < count; r += b.threads)
    start[r] = r < rows ? g.cu_seqlens[sequence_of(g, q0 + r)] : kNoStart;
}

DT_HD bool visible(int64_t key, int64_t query, int64_t start) {
  return key >= start && key <= query;
}

template <class T>
struct ForwardBody {
  static constexpr int BQ = TileRows<T>::kQueries, BK = TileRows<T>::kKeys;
  Geometry g;
  const T* q;
  int64_t ldq;
  const T *k, *v;
  int64_t ldkv;
  T* out;
  float* lse;

  struct Smem {
    int ld, lds, ldp, ldo;
    T *q, *k, *v, *p;
    float *s, *o, *row_max, *row_sum, *row_scale;
    int64_t* row_start;
  };
  DT_HD static Smem carve(char* base, int dp, size_t* bytes) {
    SmemCarver c{base};
    Smem s;
    s.ld = dp + kPad<T>;
    s.lds = BK + 4;
    s.ldp = BK + kPad<T>;
    s.ldo = dp + 4;
    s.q = c.take<T>(BQ * s.ld);
    s.k = c.take<T>(BK * s.ld);
    s.v = c.take<T>(BK * s.ld);
    s.p = c.take<T>(BQ * s.ldp);
    s.s = c.take<float>(BQ * s.lds);
    s.o = c.take<float>(BQ * s.ldo);
    s.row_max = c.take<float>(BQ);
    s.row_sum = c.take<float>(BQ);
    s.row_scale = c.take<float>(BQ);
    s.row_start = c.take<int64_t>(BQ);
    *bytes = c.used;
    return s;
  }
  static size_t shared_bytes(int dp) {
    size_t bytes = 0;
    carve(nullptr, dp, &bytes);
    return bytes;
  }

  DT_HD void operator()(const Block& b, int bx, int head, int, char* shared) const {
    size_t bytes = 0;
    const Smem s = carve(shared, g.dp, &bytes);
    const int64_t q0 = int64_t(bx) * BQ;
    const int rows = int(cuda::min_of(BQ, g.tokens - q0));
    const int kv_head = head / (g.heads / g.kv_heads);
    load_query_rows(b, g, q0, rows, BQ, s.row_start);
    for (int r = b.thread; r < BQ; r += b.threads) {
      s.row_max[r] = -INFINITY;
      s.row_sum[r] = 0.0f;
    }
    for (int e = b.thread; e < BQ * g.dp; e += b.threads) s.o[(e / g.dp) * s.ldo + e % g.dp] = 0.0f;
    cuda::load_tile(b, s.q, s.ld, BQ, g.dp, q + q0 * ldq + int64_t(head) * g.d, ldq, rows, g.d);
    b.sync();
    const int64_t first_key = s.row_start[0], last_key = q0 + rows - 1;
    for (int64_t k0 = first_key; k0 <= last_key; k0 += BK) {
      const int keys = int(cuda::min_of(BK, last_key + 1 - k0));
      const int64_t kv_at = k0 * ldkv + int64_t(kv_head) * g.d;
      cuda::load_tile(b, s.k, s.ld, BK, g.dp, k + kv_at, ldkv, keys, g.d);
      cuda::load_tile(b, s.v, s.ld, BK, g.dp, v + kv_at, ldkv, keys, g.d);
      b.sync();
      cuda::block_matmul<false, true>(b, BQ, BK, g.dp, exact(s.q, s.ld), exact(s.k, s.ld), s.s,
                                      s.lds, false);
      b.sync();
      // Online softmax, one (virtual) warp per row: masked scores become −inf, P = exp(S − m_new).
      const Warp w = cuda::warp_of(b);
      for (int r = w.index; r < BQ; r += w.count) {
        float* srow = s.s + r * s.lds;
        float row_max = -INFINITY;
        for (int j = w.lane; j < BK; j += w.lanes) {
          const float x = j < keys && visible(k0 + j, q0 + r, s.row_start[r]) ? srow[j] * g.scale
                                                                               : -INFINITY;
          srow[j] = x;
          row_max = fmaxf(row_max, x);
        }
        row_max = cuda::warp_max(row_max);
        const float m_old = s.row_max[r], m_new = fmaxf(m_old, row_max);
        float sum = 0.0f;
        for (int j = w.lane; j < BK; j += w.lanes) {
          const float p = srow[j] == -INFINITY ? 0.0f : expf(srow[j] - m_new);
          s.p[r * s.ldp + j] = from_float<T>(p);
          sum += p;
        }
        sum = cuda::warp_sum(sum);
        if (w.lane == 0) {
          const float alpha = m_old == -INFINITY ? 0.0f : expf(m_old - m_new);
          s.row_scale[r] = alpha;
          s.row_sum[r] = s.row_sum[r] * alpha + sum;
          s.row_max[r] = m_new;
        }
      }
      b.sync();
      for (int e = b.thread; e < BQ * g.dp; e += b.threads) {
        const int r = e / g.dp;
        s.o[r * s.ldo + e % g.dp] *= s.row_scale[r];
      }
      b.sync();
      cuda::block_matmul<false, false>(b, BQ, g.dp, BK, exact(s.p, s.ldp), exact(s.v, s.ld), s.o,
                                       s.ldo, true);
      b.sync();
    }
    const int64_t ldo = int64_t(g.heads) * g.d;
    for (int e = b.thread; e < rows * g.d; e += b.threads) {
      const int r = e / g.d, c = e % g.d;
      out[(q0 + r) * ldo + int64_t(head) * g.d + c] = from_float<T>(s.o[r * s.ldo + c] / s.row_sum[r]);
    }
    for (int r = b.thread; r < rows; r += b.threads)
      lse[(q0 + r) * g.heads + head] = s.row_max[r] + logf(s.row_sum[r]);
  }
};

// D[row] = Σ_c dO[row, c] O[row, c] over rows of (token, head); kRows rows per block.
template <class T>
struct RowDotBody {
  static constexpr int kRows = kThreads / 32;
  const T *out, *d_out;
  int64_t rows;
  int d;
  float* delta;
  DT_HD void operator()(const Block& b, int bx, int, int, char*) const {
    const Warp w = cuda::warp_of(b);
    for (int vw = w.index; vw < kRows; vw += w.count) {
      const int64_t row = int64_t(bx) * kRows + vw;
      if (row >= rows) continue;
      float sum = 0.0f;
      for (int c = w.lane; c < d; c += w.lanes)
        sum += to_float(out[row * d + c]) * to_float(d_out[row * d + c]);
      sum = cuda::warp_sum(sum);
      if (w.lane == 0) delta[row] = sum;
    }
  }
};

// What both backward bodies share: the tiles of one step (queries × keys) and the scores' gradient.
template <class T, int BQ, int BK>
struct BackwardTiles {
  int ld, lds, ldp, ldo;
  T *q, *d_out, *k, *v, *p, *ds;
  float *s, *dp, *row_lse, *row_delta;
  int64_t* row_start;

  DT_HD static BackwardTiles carve(SmemCarver& c, int dp) {
    BackwardTiles t;
    t.ld = dp + kPad<T>;
    t.lds = BK + 4;
    t.ldp = BK + kPad<T>;
    t.ldo = dp + 4;
    t.q = c.take<T>(BQ * t.ld);
    t.d_out = c.take<T>(BQ * t.ld);
    t.k = c.take<T>(BK * t.ld);
    t.v = c.take<T>(BK * t.ld);
    t.p = c.take<T>(BQ * t.ldp);
    t.ds = c.take<T>(BQ * t.ldp);
    t.s = c.take<float>(BQ * t.lds);
    t.dp = c.take<float>(BQ * t.lds);
    t.row_lse = c.take<float>(BQ);
    t.row_delta = c.take<float>(BQ);
    t.row_start = c.take<int64_t>(BQ);
    return t;
  }

  // Loads the query side of a step: Q and dO of `rows` queries from q0 for `head`, their lse, D
  // and sequence starts.
  DT_HD void load_queries(const Block& b, const Geometry& g, const T* q, int64_t ldq, const T* d_out_g,
                          const float* lse, const float* delta, int64_t q0, int rows, int head) const {
    cuda::load_tile(b, this->q, ld, BQ, g.dp, q + q0 * ldq + int64_t(head) * g.d, ldq, rows, g.d);
    const int64_t ldo_g = int64_t(g.heads) * g.d;
    cuda::load_tile(b, d_out, ld, BQ, g.dp, d_out_g + q0 * ldo_g + int64_t(head) * g.d, ldo_g,
                    rows, g.d);
    load_query_rows(b, g, q0, rows, BQ, row_start);
    for (int r = b.thread; r < BQ; r += b.threads) {
      row_lse[r] = r < rows ? lse[(q0 + r) * g.heads + head] : 0.0f;
      row_delta[r] = r < rows ? delta[(q0 + r) * g.heads + head] : 0.0f;
    }
  }
  DT_HD void load_keys(const Block& b, const Geometry& g, const T* k, const T* v, int64_t ldkv,
                       int64_t k0, int keys, int kv_head) const {
    const int64_t at = k0 * ldkv + int64_t(kv_head) * g.d;
    cuda::load_tile(b, this->k, ld, BK, g.dp, k + at, ldkv, keys, g.d);
    cuda::load_tile(b, this->v, ld, BK, g.dp, v + at, ldkv, keys, g.d);
  }
  // S = Q Kᵀ and dP = dO Vᵀ (the second on the warps after the first's tiles), then
  // P = exp(scale S − lse) and dS = P ∘ (dP − D) where visible, 0 elsewhere.
  DT_HD void scores_and_gradient(const Block& b, const Geometry& g, int64_t q0, int64_t k0,
                                 int keys) const {
    cuda::block_matmul<false, true>(b, BQ, BK, g.dp, exact(q, ld), exact(k, ld), s, lds, false);
    cuda::block_matmul<false, true>(b, BQ, BK, g.dp, exact(d_out, ld), exact(v, ld), dp, lds,
                                    false, (BQ / 16) * (BK / 16));
    b.sync();
    for (int e = b.thread; e < BQ * BK; e += b.threads) {
      const int r = e / BK, j = e % BK;
      const bool seen = j < keys && visible(k0 + j, q0 + r, row_start[r]);
      const float pr = seen ? expf(s[r * lds + j] * g.scale - row_lse[r]) : 0.0f;
      p[r * ldp + j] = from_float<T>(pr);
      ds[r * ldp + j] = from_float<T>(pr * (dp[r * lds + j] - row_delta[r]));
    }
  }
};

template <class T>
struct KeyValueGradBody {
  static constexpr int BQ = TileRows<T>::kBackwardQueries, BK = TileRows<T>::kBackwardKeys;
  using Tiles = BackwardTiles<T, BQ, BK>;
  Geometry g;
  const T* q;
  int64_t ldq;
  const T *k, *v;
  int64_t ldkv;
  const T* d_out;
  const float *lse, *delta;
  T *dk, *dv;

  DT_HD static Tiles carve(char* base, int dp, float** dk_acc, float** dv_acc, size_t* bytes) {
    SmemCarver c{base};
    Tiles t = Tiles::carve(c, dp);
    *dk_acc = c.take<float>(BK * t.ldo);
    *dv_acc = c.take<float>(BK * t.ldo);
    *bytes = c.used;
    return t;
  }
  static size_t shared_bytes(int dp) {
    size_t bytes = 0;
    float *a, *b;
    carve(nullptr, dp, &a, &b, &bytes);
    return bytes;
  }

  DT_HD void operator()(const Block& b, int bx, int kv_head, int, char* shared) const {
    size_t bytes = 0;
    float *dk_acc, *dv_acc;
    const Tiles t = carve(shared, g.dp, &dk_acc, &dv_acc, &bytes);
    const int64_t k0 = int64_t(bx) * BK;
    const int keys = int(cuda::min_of(BK, g.tokens - k0));
    // Queries that see a key of this tile: from k0 to the end of the last key's sequence.
    const int64_t q_end = g.cu_seqlens[sequence_of(g, k0 + keys - 1) + 1];
    for (int e = b.thread; e < BK * g.dp; e += b.threads) {
      dk_acc[(e / g.dp) * t.ldo + e % g.dp] = 0.0f;
      dv_acc[(e / g.dp) * t.ldo + e % g.dp] = 0.0f;
    }
    t.load_keys(b, g, k, v, ldkv, k0, keys, kv_head);
    const int group = g.heads / g.kv_heads;
    for (int member = 0; member < group; ++member) {
      const int head = kv_head * group + member;
      for (int64_t q0 = k0; q0 < q_end; q0 += BQ) {
        const int rows = int(cuda::min_of(BQ, q_end - q0));
        b.sync();  // the previous step's products have read Q, dO, P and dS
        t.load_queries(b, g, q, ldq, d_out, lse, delta, q0, rows, head);
        b.sync();
        t.scores_and_gradient(b, g, q0, k0, keys);
        b.sync();
        cuda::block_matmul<true, false>(b, BK, g.dp, BQ, exact(t.p, t.ldp), exact(t.d_out, t.ld),
                                        dv_acc, t.ldo, true);
        cuda::block_matmul<true, false>(b, BK, g.dp, BQ, exact(t.ds, t.ldp), exact(t.q, t.ld),
                                        dk_acc, t.ldo, true, (BK / 16) * (g.dp / 16));
      }
    }
    b.sync();
    for (int e = b.thread; e < keys * g.d; e += b.threads) {
      const int j = e / g.d, c = e % g.d;
      const int64_t at = (k0 + j) * ldkv + int64_t(kv_head) * g.d + c;
      dk[at] = from_float<T>(g.scale * dk_acc[j * t.ldo + c]);
      dv[at] = from_float<T>(dv_acc[j * t.ldo + c]);
    }
  }
};

template <class T>
struct QueryGradBody {
  static constexpr int BQ = TileRows<T>::kBackwardQueries, BK = TileRows<T>::kBackwardKeys;
  using Tiles = BackwardTiles<T, BQ, BK>;
  Geometry g;
  const T* q;
  int64_t ldq;
  const T *k, *v;
  int64_t ldkv;
  const T* d_out;
  const float *lse, *delta;
  T* dq;

  DT_HD static Tiles carve(char* base, int dp, float** dq_acc, size_t* bytes) {
    SmemCarver c{base};
    Tiles t = Tiles::carve(c, dp);
    *dq_acc = c.take<float>(BQ * t.ldo);
    *bytes = c.used;
    return t;
  }
  static size_t shared_bytes(int dp) {
    size_t bytes = 0;
    float* a;
    carve(nullptr, dp, &a, &bytes);
    return bytes;
  }

  DT_HD void operator()(const Block& b, int bx, int head, int, char* shared) const {
    size_t bytes = 0;
    float* dq_acc;
    const Tiles t = carve(shared, g.dp, &dq_acc, &bytes);
    const int64_t q0 = int64_t(bx) * BQ;
    const int rows = int(cuda::min_of(BQ, g.tokens - q0));
    const int kv_head = head / (g.heads / g.kv_heads);
    for (int e = b.thread; e < BQ * g.dp; e += b.threads) dq_acc[(e / g.dp) * t.ldo + e % g.dp] = 0.0f;
    t.load_queries(b, g, q, ldq, d_out, lse, delta, q0, rows, head);
    b.sync();
    const int64_t first_key = t.row_start[0], last_key = q0 + rows - 1;
    for (int64_t k0 = first_key; k0 <= last_key; k0 += BK) {
      const int keys = int(cuda::min_of(BK, last_key + 1 - k0));
      b.sync();  // the previous step's product has read K and dS
      t.load_keys(b, g, k, v, ldkv, k0, keys, kv_head);
      b.sync();
      t.scores_and_gradient(b, g, q0, k0, keys);
      b.sync();
      cuda::block_matmul<false, false>(b, BQ, g.dp, BK, exact(t.ds, t.ldp), exact(t.k, t.ld), dq_acc,
                                       t.ldo, true);
    }
    b.sync();
    for (int e = b.thread; e < rows * g.d; e += b.threads) {
      const int r = e / g.d, c = e % g.d;
      dq[(q0 + r) * ldq + int64_t(head) * g.d + c] = from_float<T>(g.scale * dq_acc[r * t.ldo + c]);
    }
  }
};

Geometry geometry(const AttentionShape& shape, const int64_t* cu_seqlens, int64_t num_sequences) {
  DT_CHECK(shape.head_dim > 0 && shape.head_dim <= kAttentionCudaMaxHeadDim,
           "attention (CUDA): head_dim up to ", kAttentionCudaMaxHeadDim, ", got ", shape.head_dim);
  DT_CHECK(shape.kv_heads > 0 && shape.heads % shape.kv_heads == 0,
           "attention (CUDA): heads must be a multiple of kv_heads");
  DT_CHECK(num_sequences >= 1 && shape.heads <= 65535 && shape.kv_heads <= 65535,
           "attention (CUDA): at least one sequence and at most 65535 heads");
  Geometry g;
  g.tokens = shape.tokens;
  g.heads = shape.heads;
  g.kv_heads = shape.kv_heads;
  g.d = shape.head_dim;
  g.dp = cuda::round_up(shape.head_dim, 16);
  g.scale = float(shape.scale);
  g.cu_seqlens = cu_seqlens;
  g.num_sequences = num_sequences;
  return g;
}

unsigned tiles_of(int64_t tokens, int rows) { return unsigned((tokens + rows - 1) / rows); }

}  // namespace

size_t attention_cuda_backward_workspace_bytes(int64_t tokens, int heads) {
  return size_t(tokens) * size_t(heads) * sizeof(float);
}

template <class T>
void attention_cuda_forward(const AttentionShape& shape, const int64_t* cu_seqlens,
                            int64_t num_sequences, const T* q, int64_t ldq, const T* k,
                            const T* v, int64_t ldkv, T* out, float* lse, cuda::Target target) {
  if (shape.tokens == 0) return;
  const Geometry g = geometry(shape, cu_seqlens, num_sequences);
  using Body = ForwardBody<T>;
  cuda::launch<kThreads>(target, "attention forward", Body{g, q, ldq, k, v, ldkv, out, lse},
                         dim3(tiles_of(g.tokens, Body::BQ), unsigned(g.heads)),
                         Body::shared_bytes(g.dp));
}

template <class T>
void attention_cuda_backward(const AttentionShape& shape, const int64_t* cu_seqlens,
                             int64_t num_sequences, const T* q, int64_t ldq, const T* k,
                             const T* v, int64_t ldkv, const T* out, const float* lse,
                             const T* d_out, T* dq, T* dk, T* dv, void* workspace,
                             cuda::Target target) {
  if (shape.tokens == 0) return;
  const Geometry g = geometry(shape, cu_seqlens, num_sequences);
  float* delta = static_cast<float*>(workspace);
  const int64_t rows = g.tokens * g.heads;
  cuda::launch<kThreads>(target, "attention backward: rowsum(dO O)",
                         RowDotBody<T>{out, d_out, rows, g.d, delta},
                         cuda::blocks_for(rows, RowDotBody<T>::kRows));
  using KeyValue = KeyValueGradBody<T>;
  cuda::launch<kThreads>(target, "attention backward: dK, dV",
                         KeyValue{g, q, ldq, k, v, ldkv, d_out, lse, delta, dk, dv},
                         dim3(tiles_of(g.tokens, KeyValue::BK), unsigned(g.kv_heads)),
                         KeyValue::shared_bytes(g.dp));
  using Query = QueryGradBody<T>;
  cuda::launch<kThreads>(target, "attention backward: dQ",
                         Query{g, q, ldq, k, v, ldkv, d_out, lse, delta, dq},
                         dim3(tiles_of(g.tokens, Query::BQ), unsigned(g.heads)),
                         Query::shared_bytes(g.dp));
}

#define DT_INSTANTIATE(T)                                                                         \
  template void attention_cuda_forward<T>(const AttentionShape&, const int64_t*, int64_t,         \
                                          const T*, int64_t, const T*, const T*, int64_t, T*,     \
                                          float*, cuda::Target);                                  \
  template void attention_cuda_backward<T>(const AttentionShape&, const int64_t*, int64_t,        \
                                           const T*, int64_t, const T*, const T*, int64_t,        \
                                           const T*, const float*, const T*, T*, T*, T*, void*,   \
                                           cuda::Target);
DT_INSTANTIATE(float)
DT_INSTANTIATE(__nv_bfloat16)
#undef DT_INSTANTIATE

}  // namespace deltatune
