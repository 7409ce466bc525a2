// Causal GQA attention on the CPU in tiles: a block of up to kBlock queries of one head against the
// keys it may see, as small single-threaded BLAS products inside an OpenMP loop over (sequence,
// head, block). Scores exist for one block at a time (kBlock x sequence length per thread), never
// as a [T x T] matrix.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/profile.h"
#include "ops/attention.h"
#include "ops/matmul.h"

namespace deltatune {

namespace {

constexpr int64_t kBlock = 64;

// One unit of work: queries [q0, q1) of head h in the sequence that starts at `start`.
struct Tile {
  int64_t start, q0, q1;
  int h;
};

std::vector<Tile> query_tiles(std::span<const int64_t> cu_seqlens, int heads) {
  std::vector<Tile> tiles;
  for (size_t s = 0; s + 1 < cu_seqlens.size(); ++s)
    for (int64_t q0 = cu_seqlens[s]; q0 < cu_seqlens[s + 1]; q0 += kBlock)
      for (int h = 0; h < heads; ++h) tiles.push_back({cu_seqlens[s], q0, std::min(q0 + kBlock, cu_seqlens[s + 1]), h});
  // Longest rows first: later tiles see more keys, so dynamic scheduling balances better.
  std::reverse(tiles.begin(), tiles.end());
  return tiles;
}

// P[i, j] = exp(scale * q_i.k_j - lse_i) for the tile's queries i and keys j <= i (0 beyond),
// with S computed by one product. Writes lse when `lse_out` (forward), reads it otherwise.
template <class T>
void tile_probabilities(const AttentionShape& sh, const Tile& t, const T* q, int64_t ldq, const T* k, int64_t ldkv,
                        T* p, T* lse, bool compute_lse) {
  const int d = sh.head_dim, kvh = t.h / (sh.heads / sh.kv_heads);
  const int64_t rows = t.q1 - t.q0, keys = t.q1 - t.start;
  gemm<T>(false, true, rows, keys, d, T(sh.scale), q + t.q0 * ldq + int64_t(t.h) * d, ldq,
          k + t.start * ldkv + int64_t(kvh) * d, ldkv, T(0), p, keys);
  for (int64_t i = 0; i < rows; ++i) {
    T* row = p + i * keys;
    const int64_t visible = t.q0 - t.start + i + 1;
    T& row_lse = lse[(t.q0 + i) * sh.heads + t.h];
    if (compute_lse) {
      T m = -std::numeric_limits<T>::infinity();
      for (int64_t j = 0; j < visible; ++j) m = std::max(m, row[j]);
      T sum = 0;
      for (int64_t j = 0; j < visible; ++j) sum += std::exp(row[j] - m);
      row_lse = m + std::log(sum);
    }
    for (int64_t j = 0; j < visible; ++j) row[j] = std::exp(row[j] - row_lse);
    std::fill(row + visible, row + keys, T(0));
  }
}

int64_t longest(std::span<const int64_t> cu) {
  int64_t n = 0;
  for (size_t s = 0; s + 1 < cu.size(); ++s) n = std::max(n, cu[s + 1] - cu[s]);
  return n;
}

}  // namespace

template <class T>
void attention_forward(const AttentionShape& sh, std::span<const int64_t> cu_seqlens, const T* q, int64_t ldq,
                       const T* k, const T* v, int64_t ldkv, T* out, T* lse) {
  DT_PROFILE("attention_forward");
  const int d = sh.head_dim;
  const int64_t ldo = int64_t(sh.heads) * d;
  const std::vector<Tile> tiles = query_tiles(cu_seqlens, sh.heads);
  std::vector<T> lse_buffer;
  if (!lse) {
    lse_buffer.resize(static_cast<size_t>(sh.tokens * sh.heads));
    lse = lse_buffer.data();
  }
  const int64_t max_keys = longest(cu_seqlens);
#pragma omp parallel
  {
    std::vector<T> p(static_cast<size_t>(kBlock * max_keys));
#pragma omp for schedule(dynamic, 1)
    for (size_t i = 0; i < tiles.size(); ++i) {
      const Tile& t = tiles[i];
      const int kvh = t.h / (sh.heads / sh.kv_heads);
      tile_probabilities(sh, t, q, ldq, k, ldkv, p.data(), lse, true);
      const int64_t keys = t.q1 - t.start;
      gemm<T>(false, false, t.q1 - t.q0, d, keys, T(1), p.data(), keys, v + t.start * ldkv + int64_t(kvh) * d, ldkv,
              T(0), out + t.q0 * ldo + int64_t(t.h) * d, ldo);
    }
  }
}

template <class T>
void attention_forward_with_past(const AttentionShape& sh, int64_t past, const T* q, int64_t ldq, const T* k,
                                 const T* v, int64_t ldkv, T* out) {
  const int d = sh.head_dim, group = sh.heads / sh.kv_heads;
  const int64_t ldo = int64_t(sh.heads) * d;
#pragma omp parallel
  {
    std::vector<T> p(static_cast<size_t>(past + sh.tokens)), acc(static_cast<size_t>(d));
#pragma omp for collapse(2) schedule(static)
    for (int64_t t = 0; t < sh.tokens; ++t)
      for (int h = 0; h < sh.heads; ++h) {
        const int64_t keys = past + t + 1;
        const T* qt = q + t * ldq + int64_t(h) * d;
        const int64_t kv_off = int64_t(h / group) * d;
        T m = -std::numeric_limits<T>::infinity();
        for (int64_t j = 0; j < keys; ++j) {
          T s = 0;
          for (int i = 0; i < d; ++i) s += qt[i] * k[j * ldkv + kv_off + i];
          p[size_t(j)] = T(sh.scale) * s;
          m = std::max(m, p[size_t(j)]);
        }
        T sum = 0;
        for (int64_t j = 0; j < keys; ++j) sum += (p[size_t(j)] = std::exp(p[size_t(j)] - m));
        std::fill(acc.begin(), acc.end(), T(0));
        for (int64_t j = 0; j < keys; ++j)
          for (int i = 0; i < d; ++i) acc[size_t(i)] += p[size_t(j)] * v[j * ldkv + kv_off + i];
        for (int i = 0; i < d; ++i) out[t * ldo + int64_t(h) * d + i] = acc[size_t(i)] / sum;
      }
  }
}

// With P from the saved lse:  dV_j += sum_i P_ij dO_i;  dP = dO Vᵀ;  dS = P (dP - D_i), D_i = dO_i.O_i;
// dQ = scale dS K;  dK_j += scale sum_i dS_ij Q_i.
// Two passes: dQ over query tiles (each writes its own rows), then dK/dV over (sequence, kv head)
// so no two threads add into the same key rows.
template <class T>
void attention_backward(const AttentionShape& sh, std::span<const int64_t> cu_seqlens, const T* q, int64_t ldq,
                        const T* k, const T* v, int64_t ldkv, const T* out, const T* lse, const T* d_out, T* dq,
                        T* dk, T* dv) {
  DT_PROFILE("attention_backward");
  const int d = sh.head_dim, group = sh.heads / sh.kv_heads;
  const int64_t ldo = int64_t(sh.heads) * d;
  std::vector<T> D(static_cast<size_t>(sh.tokens * sh.heads));
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < sh.tokens; ++t)
    for (int h = 0; h < sh.heads; ++h) {
      T s = 0;
      for (int i = 0; i < d; ++i) s += d_out[t * ldo + h * d + i] * out[t * ldo + h * d + i];
      D[size_t(t * sh.heads + h)] = s;
    }
  const int64_t max_keys = longest(cu_seqlens);
  T* lse_mut = const_cast<T*>(lse);  // read only: tile_probabilities(..., compute_lse = false)

  // dS for a tile, in place of P.
  auto tile_ds = [&](const Tile& t, T* p, T* dp) {
    const int kvh = t.h / group;
    const int64_t rows = t.q1 - t.q0, keys = t.q1 - t.start;
    tile_probabilities(sh, t, q, ldq, k, ldkv, p, lse_mut, false);
    gemm<T>(false, true, rows, keys, d, T(1), d_out + t.q0 * ldo + int64_t(t.h) * d, ldo,
            v + t.start * ldkv + int64_t(kvh) * d, ldkv, T(0), dp, keys);
    for (int64_t i = 0; i < rows; ++i) {
      const T Di = D[size_t((t.q0 + i) * sh.heads + t.h)];
      for (int64_t j = 0; j < keys; ++j) dp[i * keys + j] = p[i * keys + j] * (dp[i * keys + j] - Di);
    }
  };

  const std::vector<Tile> tiles = query_tiles(cu_seqlens, sh.heads);
#pragma omp parallel
  {
    std::vector<T> p(static_cast<size_t>(kBlock * max_keys)), ds(static_cast<size_t>(kBlock * max_keys));
#pragma omp for schedule(dynamic, 1)
    for (size_t i = 0; i < tiles.size(); ++i) {
      const Tile& t = tiles[i];
      const int kvh = t.h / group;
      tile_ds(t, p.data(), ds.data());
      const int64_t keys = t.q1 - t.start;
      gemm<T>(false, false, t.q1 - t.q0, d, keys, T(sh.scale), ds.data(), keys, k + t.start * ldkv + int64_t(kvh) * d,
              ldkv, T(0), dq + t.q0 * ldq + int64_t(t.h) * d, ldq);
    }
  }

  for (int64_t t = 0; t < sh.tokens; ++t) {
    std::fill(dk + t * ldkv, dk + t * ldkv + int64_t(sh.kv_heads) * d, T(0));
    std::fill(dv + t * ldkv, dv + t * ldkv + int64_t(sh.kv_heads) * d, T(0));
  }
  const int64_t nseq = int64_t(cu_seqlens.size()) - 1;
#pragma omp parallel
  {
    std::vector<T> p(static_cast<size_t>(kBlock * max_keys)), ds(static_cast<size_t>(kBlock * max_keys));
#pragma omp for collapse(2) schedule(dynamic, 1)
    for (int64_t s = 0; s < nseq; ++s)
      for (int kvh = 0; kvh < sh.kv_heads; ++kvh) {
        const int64_t start = cu_seqlens[size_t(s)], end = cu_seqlens[size_t(s + 1)];
        for (int h = kvh * group; h < (kvh + 1) * group; ++h)
          for (int64_t q0 = start; q0 < end; q0 += kBlock) {
            const Tile t{start, q0, std::min(q0 + kBlock, end), h};
            tile_ds(t, p.data(), ds.data());
            const int64_t rows = t.q1 - t.q0, keys = t.q1 - t.start;
            gemm<T>(true, false, keys, d, rows, T(1), p.data(), keys, d_out + t.q0 * ldo + int64_t(h) * d, ldo, T(1),
                    dv + start * ldkv + int64_t(kvh) * d, ldkv);
            gemm<T>(true, false, keys, d, rows, T(sh.scale), ds.data(), keys, q + t.q0 * ldq + int64_t(h) * d, ldq,
                    T(1), dk + start * ldkv + int64_t(kvh) * d, ldkv);
          }
      }
  }
}

#define INSTANTIATE(T)                                                                                       \
  template void attention_forward<T>(const AttentionShape&, std::span<const int64_t>, const T*, int64_t,      \
                                     const T*, const T*, int64_t, T*, T*);                                    \
  template void attention_forward_with_past<T>(const AttentionShape&, int64_t, const T*, int64_t, const T*,  \
                                               const T*, int64_t, T*);                                       \
  template void attention_backward<T>(const AttentionShape&, std::span<const int64_t>, const T*, int64_t,     \
                                      const T*, const T*, int64_t, const T*, const T*, const T*, T*, T*, T*);
INSTANTIATE(float)
INSTANTIATE(double)
#undef INSTANTIATE

}  // namespace deltatune
