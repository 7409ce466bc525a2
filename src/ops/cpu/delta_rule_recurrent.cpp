// The gated delta rule, recurrent form (spec/gated_delta_rule.md, "Recurrent form"): one token at a
// time, the reference the chunked form and every gradient are checked against. Plain loops, state
// S [dk, dv] per (sequence, value head); the backward runs the same steps in reverse.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "ops/delta_rule.h"

namespace deltatune {

namespace {

// States kept per sequence and value head by the backward: one every this many steps; the steps in
// between are recomputed one segment at a time.
constexpr int64_t kCheckpointSteps = 64;

template <class T>
inline T dot(const T* a, const T* b, int n) {
  T s = 0;
#pragma omp simd reduction(+ : s)
  for (int i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

template <class T>
inline void axpy(T alpha, const T* x, T* y, int n) {
#pragma omp simd
  for (int i = 0; i < n; ++i) y[i] += alpha * x[i];
}

// One step of the recurrence on a state S [dk, dv] (row m of S is S + m*dv):
//   S~ = exp(g) S;  r = v - S~^T k;  u = beta r;  S = S~ + k u^T.
// Leaves S~^T k in `kv` and u in `u` for the caller.
template <class T>
inline void recurrent_step(T* S, const T* k, const T* v, T g, T beta, int Dk, int Dv, T* kv, T* u) {
  const T decay = std::exp(g);
  for (int m = 0; m < Dk * Dv; ++m) S[m] *= decay;
  std::fill(kv, kv + Dv, T(0));
  for (int m = 0; m < Dk; ++m) axpy(k[m], S + m * Dv, kv, Dv);
  for (int n = 0; n < Dv; ++n) u[n] = beta * (v[n] - kv[n]);
  for (int m = 0; m < Dk; ++m) axpy(k[m], u, S + m * Dv, Dv);
}

}  // namespace

void check_delta_rule_arguments(const DeltaRuleShape& shape, std::span<const int64_t> cu_seqlens) {
  DT_CHECK(shape.num_k_heads > 0 && shape.num_v_heads > 0 && shape.k_dim > 0 && shape.v_dim > 0,
           "gated delta rule: heads and head dims must be positive, got Hk=", shape.num_k_heads,
           " Hv=", shape.num_v_heads, " dk=", shape.k_dim, " dv=", shape.v_dim);
  DT_CHECK(shape.num_v_heads % shape.num_k_heads == 0, "gated delta rule: Hv=", shape.num_v_heads,
           " is not a multiple of Hk=", shape.num_k_heads);
  DT_CHECK(cu_seqlens.size() >= 2 && cu_seqlens.front() == 0 && cu_seqlens.back() == shape.tokens,
           "gated delta rule: cu_seqlens must run from 0 to tokens=", shape.tokens);
  for (size_t s = 1; s < cu_seqlens.size(); ++s)
    DT_CHECK(cu_seqlens[s] >= cu_seqlens[s - 1], "gated delta rule: cu_seqlens decreases at ", s);
}

template <class T>
void gated_delta_rule_recurrent_forward(const DeltaRuleShape& shape,
                                        std::span<const int64_t> cu_seqlens, const T* q, const T* k,
                                        const T* v, const T* g, const T* beta,
                                        const T* initial_state, T* out, T* final_state) {
  check_delta_rule_arguments(shape, cu_seqlens);
  const int Hk = shape.num_k_heads, Hv = shape.num_v_heads, Dk = shape.k_dim, Dv = shape.v_dim;
  const int heads_per_key = Hv / Hk;
  const int64_t nseq = int64_t(cu_seqlens.size()) - 1;
  const int64_t state_size = int64_t(Dk) * Dv;

#pragma omp parallel
  {
    std::vector<T> scratch(size_t(state_size + 2 * Dv));
    T* S = scratch.data();
    T* kv = S + state_size;
    T* u = kv + Dv;
#pragma omp for schedule(dynamic, 1)
    for (int64_t pair = 0; pair < nseq * Hv; ++pair) {
      const int64_t s = pair / Hv;
      const int h = int(pair % Hv), kh = h / heads_per_key;
      if (initial_state)
        std::copy_n(initial_state + pair * state_size, state_size, S);
      else
        std::fill(S, S + state_size, T(0));
      for (int64_t t = cu_seqlens[size_t(s)]; t < cu_seqlens[size_t(s + 1)]; ++t) {
        const T* qt = q + (t * Hk + kh) * Dk;
        const T* kt = k + (t * Hk + kh) * Dk;
        recurrent_step(S, kt, v + (t * Hv + h) * Dv, g[t * Hv + h], beta[t * Hv + h], Dk, Dv, kv,
                       u);
        T* ot = out + (t * Hv + h) * Dv;  // o_t = S_t^T q_t
        std::fill(ot, ot + Dv, T(0));
        for (int m = 0; m < Dk; ++m) axpy(qt[m], S + m * Dv, ot, Dv);
      }
      if (final_state) std::copy_n(S, state_size, final_state + pair * state_size);
    }
  }
}

// Reverse-time backward. With dS the gradient of S_t (from o_t and all later steps), one step
// t = T..1 of the forward  S~ = a S_{t-1} (a = exp g_t), r = v - S~^T k, u = beta r,
// S_t = S~ + k u^T, o = S_t^T q  gives, in that order:
//   dS += q do^T                          (o = S_t^T q)
//   dq  = S_t do = S~ do + k (u . do)
//   du  = dS^T k,  dk = dS u              (S_t = S~ + k u^T)
//   dbeta = du . r,  dv = beta du,  d(S~^T k) = -beta du
//   dS~ = dS + k d(S~^T k)^T,  dk += S~ d(S~^T k)
//   dg = a <dS~, S_{t-1}> = <dS~, S~>,  dS_{t-1} = a dS~.
// Parallel over (sequence, key head): the value heads sharing a key head run one after another in
// the same thread, so their dq/dk sum without races.
template <class T>
void gated_delta_rule_recurrent_backward(const DeltaRuleShape& shape,
                                         std::span<const int64_t> cu_seqlens, const T* q,
                                         const T* k, const T* v, const T* g, const T* beta,
                                         const T* initial_state, const T* d_out,
                                         const T* d_final_state, T* dq, T* dk, T* dv, T* dg,
                                         T* dbeta, T* d_initial_state) {
  check_delta_rule_arguments(shape, cu_seqlens);
  const int Hk = shape.num_k_heads, Hv = shape.num_v_heads, Dk = shape.k_dim, Dv = shape.v_dim;
  const int heads_per_key = Hv / Hk;
  const int64_t nseq = int64_t(cu_seqlens.size()) - 1;
  const int64_t state_size = int64_t(Dk) * Dv;
  int64_t max_len = 0;
  for (int64_t s = 0; s < nseq; ++s)
    max_len = std::max(max_len, cu_seqlens[size_t(s + 1)] - cu_seqlens[size_t(s)]);
  const int64_t max_checkpoints = (max_len + kCheckpointSteps - 1) / kCheckpointSteps;

#pragma omp parallel
  {
    // checkpoints[c]: state before step c*64 of the sequence; before_step[j]: state before step j
    // of the segment being reversed.
    std::vector<T> scratch(size_t((max_checkpoints + kCheckpointSteps + 3) * state_size + 4 * Dv));
    T* checkpoints = scratch.data();
    T* before_step = checkpoints + max_checkpoints * state_size;
    T* S = before_step + kCheckpointSteps * state_size;
    T* S_tilde = S + state_size;
    T* dS = S_tilde + state_size;
    T* kv = dS + state_size;
    T* u = kv + Dv;
    T* du = u + Dv;
    T* d_kv = du + Dv;
#pragma omp for schedule(dynamic, 1)
    for (int64_t pair = 0; pair < nseq * Hk; ++pair) {
      const int64_t s = pair / Hk;
      const int kh = int(pair % Hk);
      const int64_t begin = cu_seqlens[size_t(s)], end = cu_seqlens[size_t(s + 1)];
      for (int64_t t = begin; t < end; ++t) {
        std::fill(dq + (t * Hk + kh) * Dk, dq + (t * Hk + kh + 1) * Dk, T(0));
        std::fill(dk + (t * Hk + kh) * Dk, dk + (t * Hk + kh + 1) * Dk, T(0));
      }
      for (int h = kh * heads_per_key; h < (kh + 1) * heads_per_key; ++h) {
        const int64_t sh = s * Hv + h;
        if (initial_state)
          std::copy_n(initial_state + sh * state_size, state_size, S);
        else
          std::fill(S, S + state_size, T(0));
        for (int64_t t = begin; t < end; ++t) {
          if ((t - begin) % kCheckpointSteps == 0)
            std::copy_n(S, state_size, checkpoints + (t - begin) / kCheckpointSteps * state_size);
          recurrent_step(S, k + (t * Hk + kh) * Dk, v + (t * Hv + h) * Dv, g[t * Hv + h],
                         beta[t * Hv + h], Dk, Dv, kv, u);
        }
        if (d_final_state)
          std::copy_n(d_final_state + sh * state_size, state_size, dS);
        else
          std::fill(dS, dS + state_size, T(0));

        for (int64_t c = (end - begin + kCheckpointSteps - 1) / kCheckpointSteps - 1; c >= 0; --c) {
          const int64_t seg_begin = begin + c * kCheckpointSteps;
          const int64_t seg_end = std::min(end, seg_begin + kCheckpointSteps);
          std::copy_n(checkpoints + c * state_size, state_size, S);
          for (int64_t t = seg_begin; t < seg_end; ++t) {
            std::copy_n(S, state_size, before_step + (t - seg_begin) * state_size);
            recurrent_step(S, k + (t * Hk + kh) * Dk, v + (t * Hv + h) * Dv, g[t * Hv + h],
                           beta[t * Hv + h], Dk, Dv, kv, u);
          }
          for (int64_t t = seg_end - 1; t >= seg_begin; --t) {
            const T* qt = q + (t * Hk + kh) * Dk;
            const T* kt = k + (t * Hk + kh) * Dk;
            const T* vt = v + (t * Hv + h) * Dv;
            const T* dout_t = d_out + (t * Hv + h) * Dv;
            const T bt = beta[t * Hv + h];
            const T decay = std::exp(g[t * Hv + h]);
            T* dqt = dq + (t * Hk + kh) * Dk;
            T* dkt = dk + (t * Hk + kh) * Dk;
            T* dvt = dv + (t * Hv + h) * Dv;

            const T* S_prev = before_step + (t - seg_begin) * state_size;
            for (int64_t m = 0; m < state_size; ++m) S_tilde[m] = decay * S_prev[m];
            std::fill(kv, kv + Dv, T(0));
            for (int m = 0; m < Dk; ++m) axpy(kt[m], S_tilde + m * Dv, kv, Dv);
            for (int n = 0; n < Dv; ++n) u[n] = bt * (vt[n] - kv[n]);

            for (int m = 0; m < Dk; ++m) axpy(qt[m], dout_t, dS + m * Dv, Dv);
            const T u_dot_dout = dot(u, dout_t, Dv);
            for (int m = 0; m < Dk; ++m)
              dqt[m] += dot(S_tilde + m * Dv, dout_t, Dv) + kt[m] * u_dot_dout;

            std::fill(du, du + Dv, T(0));
            for (int m = 0; m < Dk; ++m) axpy(kt[m], dS + m * Dv, du, Dv);
            for (int m = 0; m < Dk; ++m) dkt[m] += dot(dS + m * Dv, u, Dv);
            T d_beta = 0;
            for (int n = 0; n < Dv; ++n) {
              d_beta += du[n] * (vt[n] - kv[n]);
              dvt[n] = bt * du[n];
              d_kv[n] = -bt * du[n];
            }
            dbeta[t * Hv + h] = d_beta;

            for (int m = 0; m < Dk; ++m) {
              axpy(kt[m], d_kv, dS + m * Dv, Dv);
              dkt[m] += dot(S_tilde + m * Dv, d_kv, Dv);
            }
            dg[t * Hv + h] = dot(dS, S_tilde, int(state_size));
            for (int64_t m = 0; m < state_size; ++m) dS[m] *= decay;
          }
        }
        if (d_initial_state) std::copy_n(dS, state_size, d_initial_state + sh * state_size);
      }
    }
  }
}

#define DT_INSTANTIATE(T)                                                                      \
  template void gated_delta_rule_recurrent_forward<T>(                                         \
      const DeltaRuleShape&, std::span<const int64_t>, const T*, const T*, const T*, const T*, \
      const T*, const T*, T*, T*);                                                             \
  template void gated_delta_rule_recurrent_backward<T>(                                        \
      const DeltaRuleShape&, std::span<const int64_t>, const T*, const T*, const T*, const T*, \
      const T*, const T*, const T*, const T*, T*, T*, T*, T*, T*, T*);
DT_INSTANTIATE(float)
DT_INSTANTIATE(double)
#undef DT_INSTANTIATE

}  // namespace deltatune
