#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/profile.h"
#include "ops/attention.h"

namespace deltatune {

namespace {
template <class T>
inline T dot(const T* a, const T* b, int n) {
  T s = 0;
  for (int i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}
}  // namespace

template <class T>
void attention_forward(const AttentionShape& sh, std::span<const int64_t> cu_seqlens, const T* q,
                       int64_t ldq, const T* k, const T* v, int64_t ldkv, T* out, T* lse) {
  DT_PROFILE("attention_forward");
  const int d = sh.head_dim, group = sh.heads / sh.kv_heads;
  const int64_t ldo = int64_t(sh.heads) * d;
  const int64_t nseq = int64_t(cu_seqlens.size()) - 1;
  // One task per (query token, head): each row of scores lives in a per-thread buffer of the
  // sequence's length, so no [T x T] matrix is ever formed.
  std::vector<int64_t> seq_of(static_cast<size_t>(sh.tokens));
  for (int64_t s = 0; s < nseq; ++s)
    for (int64_t t = cu_seqlens[size_t(s)]; t < cu_seqlens[size_t(s + 1)]; ++t) seq_of[size_t(t)] = s;
#pragma omp parallel
  {
    std::vector<T> p;
    std::vector<T> acc(static_cast<size_t>(d));
#pragma omp for collapse(2) schedule(dynamic, 16)
    for (int64_t t = 0; t < sh.tokens; ++t) {
      for (int h = 0; h < sh.heads; ++h) {
        const int64_t start = cu_seqlens[size_t(seq_of[size_t(t)])];
        const int64_t n = t - start + 1;
        const T* qt = q + t * ldq + int64_t(h) * d;
        const int kvh = h / group;
        p.resize(size_t(n));
        T m = -std::numeric_limits<T>::infinity();
        for (int64_t j = 0; j < n; ++j) {
          p[size_t(j)] = T(sh.scale) * dot(qt, k + (start + j) * ldkv + int64_t(kvh) * d, d);
          m = std::max(m, p[size_t(j)]);
        }
        T sum = 0;
        for (int64_t j = 0; j < n; ++j) sum += (p[size_t(j)] = std::exp(p[size_t(j)] - m));
        std::fill(acc.begin(), acc.end(), T(0));
        for (int64_t j = 0; j < n; ++j) {
          const T* vj = v + (start + j) * ldkv + int64_t(kvh) * d;
          const T pj = p[size_t(j)];
          for (int i = 0; i < d; ++i) acc[size_t(i)] += pj * vj[i];
        }
        T* ot = out + t * ldo + int64_t(h) * d;
        for (int i = 0; i < d; ++i) ot[i] = acc[size_t(i)] / sum;
        if (lse) lse[t * sh.heads + h] = m + std::log(sum);
      }
    }
  }
}

// With P_ij = exp(s_ij - lse_i), s_ij = scale q_i.k_j:
//   dv_j += P_ij dO_i;  dP_ij = dO_i.v_j;  dS_ij = P_ij (dP_ij - D_i), D_i = dO_i.O_i;
//   dq_i = scale sum_j dS_ij k_j;  dk_j += scale dS_ij q_i.
// Parallel over (sequence, kv head): the heads of one group write the same dk/dv rows.
template <class T>
void attention_backward(const AttentionShape& sh, std::span<const int64_t> cu_seqlens, const T* q,
                        int64_t ldq, const T* k, const T* v, int64_t ldkv, const T* out,
                        const T* lse, const T* d_out, T* dq, T* dk, T* dv) {
  DT_PROFILE("attention_backward");
  const int d = sh.head_dim, group = sh.heads / sh.kv_heads;
  const int64_t ldo = int64_t(sh.heads) * d;
  const int64_t nseq = int64_t(cu_seqlens.size()) - 1;
  for (int64_t t = 0; t < sh.tokens; ++t) {
    std::fill(dk + t * ldkv, dk + t * ldkv + int64_t(sh.kv_heads) * d, T(0));
    std::fill(dv + t * ldkv, dv + t * ldkv + int64_t(sh.kv_heads) * d, T(0));
  }
#pragma omp parallel
  {
    std::vector<T> ds;
#pragma omp for collapse(2) schedule(dynamic, 1)
    for (int64_t s = 0; s < nseq; ++s) {
      for (int kvh = 0; kvh < sh.kv_heads; ++kvh) {
        const int64_t start = cu_seqlens[size_t(s)], end = cu_seqlens[size_t(s + 1)];
        for (int h = kvh * group; h < (kvh + 1) * group; ++h) {
          for (int64_t t = start; t < end; ++t) {
            const int64_t n = t - start + 1;
            const T* qt = q + t * ldq + int64_t(h) * d;
            const T* ot = out + t * ldo + int64_t(h) * d;
            const T* dot_ = d_out + t * ldo + int64_t(h) * d;
            const T row_lse = lse[t * sh.heads + h];
            const T D = dot(dot_, ot, d);
            ds.resize(size_t(n));
            for (int64_t j = 0; j < n; ++j) {
              const T* kj = k + (start + j) * ldkv + int64_t(kvh) * d;
              const T* vj = v + (start + j) * ldkv + int64_t(kvh) * d;
              const T pj = std::exp(T(sh.scale) * dot(qt, kj, d) - row_lse);
              T* dvj = dv + (start + j) * ldkv + int64_t(kvh) * d;
              for (int i = 0; i < d; ++i) dvj[i] += pj * dot_[i];
              ds[size_t(j)] = pj * (dot(dot_, vj, d) - D);
            }
            T* dqt = dq + t * ldq + int64_t(h) * d;
            for (int i = 0; i < d; ++i) dqt[i] = 0;
            for (int64_t j = 0; j < n; ++j) {
              const T* kj = k + (start + j) * ldkv + int64_t(kvh) * d;
              T* dkj = dk + (start + j) * ldkv + int64_t(kvh) * d;
              const T g = T(sh.scale) * ds[size_t(j)];
              for (int i = 0; i < d; ++i) {
                dqt[i] += g * kj[i];
                dkj[i] += g * qt[i];
              }
            }
          }
        }
      }
    }
  }
}

#define INSTANTIATE(T)                                                                         \
  template void attention_forward<T>(const AttentionShape&, std::span<const int64_t>, const T*, \
                                     int64_t, const T*, const T*, int64_t, T*, T*);            \
  template void attention_backward<T>(const AttentionShape&, std::span<const int64_t>, const T*, \
                                      int64_t, const T*, const T*, int64_t, const T*, const T*, \
                                      const T*, T*, T*, T*);
INSTANTIATE(float)
INSTANTIATE(double)
#undef INSTANTIATE

}  // namespace deltatune
