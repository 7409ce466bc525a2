// The gated delta rule, chunked form (spec/gated_delta_rule.md, "Chunked form"): the WY/UT transform
// over chunks of `chunk` tokens, sequential over chunks, dense inside one. This is the path the model
// runs; the recurrent form (delta_rule_recurrent.cpp) is its reference.
//
// Notation for one chunk of n tokens (rows i, j = 0..n-1), S the state entering it, "last" = n-1:
//   Γ_i = g_0 + ... + g_i,  a_i = exp(Γ_i),  b_i = exp(Γ_last − Γ_i),  M_ij = exp(Γ_i − Γ_j) (i ≥ j)
//   A_ij = β_i (k_i·k_j) M_ij (i > j),  T = (I + A)^-1
//   W = T diag(β a) K,  U = T diag(β) V,  V' = U − W S
//   O = diag(a) Q S + (Q Kᵀ ⊙ M) V',  S_next = a_last S + (diag(b) K)ᵀ V'
// Every exponent above is ≤ 0 (g ≤ 0, i ≥ j), so no factor overflows however strong the decay.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "ops/delta_rule.h"

namespace deltatune {

namespace {

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

// The same checks as the recurrent form (delta_rule_recurrent.cpp), plus the chunk length.
void check_chunked_args(const DeltaRuleShape& shape, std::span<const int64_t> cu_seqlens,
                        int chunk) {
  DT_CHECK(shape.num_k_heads > 0 && shape.num_v_heads > 0 && shape.k_dim > 0 && shape.v_dim > 0,
           "gated delta rule: heads and head dims must be positive, got Hk=", shape.num_k_heads,
           " Hv=", shape.num_v_heads, " dk=", shape.k_dim, " dv=", shape.v_dim);
  DT_CHECK(shape.num_v_heads % shape.num_k_heads == 0, "gated delta rule: Hv=", shape.num_v_heads,
           " is not a multiple of Hk=", shape.num_k_heads);
  DT_CHECK(cu_seqlens.size() >= 2 && cu_seqlens.front() == 0 && cu_seqlens.back() == shape.tokens,
           "gated delta rule: cu_seqlens must run from 0 to tokens=", shape.tokens);
  for (size_t s = 1; s < cu_seqlens.size(); ++s)
    DT_CHECK(cu_seqlens[s] >= cu_seqlens[s - 1], "gated delta rule: cu_seqlens decreases at ", s);
  DT_CHECK(chunk > 0, "gated delta rule: chunk must be positive, got ", chunk);
}

int64_t longest_sequence(std::span<const int64_t> cu_seqlens) {
  int64_t longest = 0;
  for (size_t s = 1; s < cu_seqlens.size(); ++s)
    longest = std::max(longest, cu_seqlens[s] - cu_seqlens[s - 1]);
  return longest;
}

// One (sequence, value head) seen through its chunk: row i of q/k is token t0+i of the key head,
// of v/out the value head; g and beta step over tokens with stride Hv.
template <class T>
struct ChunkRows {
  const T *q, *k, *v, *g, *beta;
  int64_t qk_stride, v_stride, gb_stride;
  int n;  // tokens in this chunk (the last chunk of a sequence may be short)
  const T* q_row(int i) const { return q + i * qk_stride; }
  const T* k_row(int i) const { return k + i * qk_stride; }
  const T* v_row(int i) const { return v + i * v_stride; }
  T g_at(int i) const { return g[i * gb_stride]; }
  T beta_at(int i) const { return beta[i * gb_stride]; }
};

template <class T>
ChunkRows<T> chunk_rows(const DeltaRuleShape& shape, const T* q, const T* k, const T* v,
                        const T* g, const T* beta, int h, int64_t t0, int n) {
  const int Hk = shape.num_k_heads, Hv = shape.num_v_heads;
  const int kh = h / (Hv / Hk);
  return {q + (t0 * Hk + kh) * shape.k_dim,
          k + (t0 * Hk + kh) * shape.k_dim,
          v + (t0 * Hv + h) * shape.v_dim,
          g + t0 * Hv + h,
          beta + t0 * Hv + h,
          int64_t(Hk) * shape.k_dim,
          int64_t(Hv) * shape.v_dim,
          Hv,
          n};
}

// What the forward computes for one chunk and the backward recomputes: C×C matrices with leading
// dimension C (the chunk length), rows of W with Dk, rows of U and V' with Dv.
template <class T>
struct ChunkFactors {
  T *gamma, *decay_in, *decay_out;  // Γ_i, a_i, b_i
  T *mask, *key_gram, *A;           // M_ij (i ≥ j), k_i·k_j (i > j), A_ij (i > j)
  T *W, *U, *V_new;                 // W, U, V' = U − W S

  static size_t size(int C, int Dk, int Dv) {
    return size_t(3 * C + 3 * C * C + C * Dk + 2 * C * Dv);
  }
  static ChunkFactors carve(T* p, int C, int Dk, int Dv) {
    ChunkFactors f;
    f.gamma = p;
    f.decay_in = f.gamma + C;
    f.decay_out = f.decay_in + C;
    f.mask = f.decay_out + C;
    f.key_gram = f.mask + C * C;
    f.A = f.key_gram + C * C;
    f.W = f.A + C * C;
    f.U = f.W + C * Dk;
    f.V_new = f.U + C * Dv;
    return f;
  }
};

// Γ, the decays, A, and the WY factors W, U of one chunk, then V' = U − W S for the state S [Dk, Dv]
// entering it.
template <class T>
void compute_chunk_factors(const ChunkRows<T>& x, const T* S, int C, int Dk, int Dv,
                           ChunkFactors<T>& f) {
  const int n = x.n;
  T gamma = 0;
  for (int i = 0; i < n; ++i) {
    gamma += x.g_at(i);
    f.gamma[i] = gamma;
    f.decay_in[i] = std::exp(gamma);
  }
  for (int i = 0; i < n; ++i) {
    f.decay_out[i] = std::exp(f.gamma[n - 1] - f.gamma[i]);
    for (int j = 0; j <= i; ++j) f.mask[i * C + j] = std::exp(f.gamma[i] - f.gamma[j]);
    for (int j = 0; j < i; ++j) {
      f.key_gram[i * C + j] = dot(x.k_row(i), x.k_row(j), Dk);
      f.A[i * C + j] = x.beta_at(i) * f.key_gram[i * C + j] * f.mask[i * C + j];
    }
  }
  // (I + A) W = diag(β a) K and (I + A) U = diag(β) V by forward substitution: row i needs only
  // the rows j < i already solved, so T = (I + A)^-1 is never formed.
  for (int i = 0; i < n; ++i) {
    T* Wi = f.W + i * Dk;
    T* Ui = f.U + i * Dv;
    const T* ki = x.k_row(i);
    const T* vi = x.v_row(i);
    const T bi = x.beta_at(i), bai = bi * f.decay_in[i];
    for (int m = 0; m < Dk; ++m) Wi[m] = bai * ki[m];
    for (int m = 0; m < Dv; ++m) Ui[m] = bi * vi[m];
    for (int j = 0; j < i; ++j) {
      axpy(-f.A[i * C + j], f.W + j * Dk, Wi, Dk);
      axpy(-f.A[i * C + j], f.U + j * Dv, Ui, Dv);
    }
  }
  for (int i = 0; i < n; ++i) {
    T* Vi = f.V_new + i * Dv;
    std::copy_n(f.U + i * Dv, Dv, Vi);
    const T* Wi = f.W + i * Dk;
    for (int m = 0; m < Dk; ++m) axpy(-Wi[m], S + m * Dv, Vi, Dv);
  }
}

// S <- a_last S + (diag(b) K)ᵀ V'.
template <class T>
void advance_state(const ChunkRows<T>& x, const ChunkFactors<T>& f, int Dk, int Dv, T* S) {
  const int n = x.n;
  const T decay_all = f.decay_in[n - 1];
  for (int m = 0; m < Dk; ++m) {
    T* Sm = S + m * Dv;
    for (int c = 0; c < Dv; ++c) Sm[c] *= decay_all;
    for (int i = 0; i < n; ++i) axpy(f.decay_out[i] * x.k_row(i)[m], f.V_new + i * Dv, Sm, Dv);
  }
}

}  // namespace

template <class T>
void gated_delta_rule_chunked_forward(const DeltaRuleShape& shape,
                                      std::span<const int64_t> cu_seqlens, const T* q, const T* k,
                                      const T* v, const T* g, const T* beta,
                                      const T* initial_state, T* out, T* final_state, int chunk) {
  check_chunked_args(shape, cu_seqlens, chunk);
  const int Hv = shape.num_v_heads, Dk = shape.k_dim, Dv = shape.v_dim;
  const int64_t nseq = int64_t(cu_seqlens.size()) - 1;
  const int64_t state_size = int64_t(Dk) * Dv;
  const int C = int(std::min<int64_t>(chunk, std::max<int64_t>(1, longest_sequence(cu_seqlens))));

#pragma omp parallel
  {
    std::vector<T> scratch(size_t(state_size) + ChunkFactors<T>::size(C, Dk, Dv));
    T* S = scratch.data();
    ChunkFactors<T> f = ChunkFactors<T>::carve(S + state_size, C, Dk, Dv);
#pragma omp for schedule(dynamic, 1)
    for (int64_t pair = 0; pair < nseq * Hv; ++pair) {
      const int64_t s = pair / Hv;
      const int h = int(pair % Hv);
      if (initial_state)
        std::copy_n(initial_state + pair * state_size, state_size, S);
      else
        std::fill(S, S + state_size, T(0));
      const int64_t end = cu_seqlens[size_t(s + 1)];
      for (int64_t t0 = cu_seqlens[size_t(s)]; t0 < end; t0 += C) {
        const ChunkRows<T> x = chunk_rows(shape, q, k, v, g, beta, h, t0, int(std::min<int64_t>(C, end - t0)));
        compute_chunk_factors(x, S, C, Dk, Dv, f);
        // O = diag(a) Q S + (Q Kᵀ ⊙ M) V', from the state entering the chunk.
        for (int i = 0; i < x.n; ++i) {
          T* oi = out + ((t0 + i) * Hv + h) * Dv;
          const T* qi = x.q_row(i);
          std::fill(oi, oi + Dv, T(0));
          for (int m = 0; m < Dk; ++m) axpy(f.decay_in[i] * qi[m], S + m * Dv, oi, Dv);
          for (int j = 0; j <= i; ++j)
            axpy(dot(qi, x.k_row(j), Dk) * f.mask[i * C + j], f.V_new + j * Dv, oi, Dv);
        }
        advance_state(x, f, Dk, Dv, S);
      }
      if (final_state) std::copy_n(S, state_size, final_state + pair * state_size);
    }
  }
}

namespace {

// Backward of one chunk, derived step by step from the forward above. Given dO and
// dS = ∂L/∂S_next, with P = Q Kᵀ ⊙ M:
//   dV' = Pᵀ dO + diag(b) K dS                       (V' feeds O and S_next)
//   dP_ij = dO_i·V'_j (i ≥ j) → dq_i += Σ_j dP_ij M_ij k_j, dk_j += Σ_i dP_ij M_ij q_i,
//                                dΓ_i += dP_ij P_ij, dΓ_j −= dP_ij P_ij
//   O ∋ a_i Sᵀq_i        → dq_i += a_i S dO_i, dΓ_i += a_i q_i·(S dO_i)
//   S_next ∋ b_j k_j V'_jᵀ → dk_j += b_j dS V'_j, and with db_j = k_j·(dS V'_j):
//                                dΓ_last += b_j db_j, dΓ_j −= b_j db_j;  dΓ_last += a_last <S, dS>
//   V' = U − W S         → dW = −dV' Sᵀ, dU = dV', dS_entry ∋ −Wᵀ dV'
//   W = T B_w, U = T B_u (B_w = diag(β a) K, B_u = diag(β) V):
//       dB_w = Tᵀ dW, dB_u = Tᵀ dU  (back substitution on (I + A)ᵀ)
//       dA = −Tᵀ dT Tᵀ with dT = dW B_wᵀ + dU B_uᵀ, i.e. dA = −(dB_w Wᵀ + dB_u Uᵀ), kept for i > j
//   A_ij = β_i (k_i·k_j) M_ij → dβ_i += dA_ij (k_i·k_j) M_ij, dk_i += dA_ij β_i M_ij k_j,
//                                dk_j += dA_ij β_i M_ij k_i, dΓ_i += dA_ij A_ij, dΓ_j −= dA_ij A_ij
//   B_w, B_u             → dk_i += β_i a_i dB_w,i, dβ_i += a_i k_i·dB_w,i + v_i·dB_u,i,
//                                dΓ_i += β_i a_i k_i·dB_w,i, dv_i = β_i dB_u,i
//   dS_entry = a_last dS + (diag(a) Q)ᵀ dO − Wᵀ dV',  dg_i = Σ_{m ≥ i} dΓ_m.
// dq/dk of this value head go to rows with stride Hv·Dk (the caller sums value heads per key head).
template <class T>
struct ChunkGrads {
  T *qk, *dV_new, *dBw, *dBu, *d_gamma, *S_times_dout;
  static size_t size(int C, int Dk, int Dv) {
    return size_t(C * C + 2 * C * Dv + C * Dk + C + Dk);
  }
  static ChunkGrads carve(T* p, int C, int Dk, int Dv) {
    ChunkGrads d;
    d.qk = p;
    d.dV_new = d.qk + C * C;
    d.dBw = d.dV_new + C * Dv;
    d.dBu = d.dBw + C * Dk;
    d.d_gamma = d.dBu + C * Dv;
    d.S_times_dout = d.d_gamma + C;
    return d;
  }
};

template <class T>
void chunk_backward(const ChunkRows<T>& x, const ChunkFactors<T>& f, const T* S, const T* d_out,
                    int64_t d_out_stride, int C, int Dk, int Dv, ChunkGrads<T>& d, T* dS, T* dq,
                    T* dk, int64_t dqk_stride, T* dv, T* dg, T* dbeta) {
  const int n = x.n, last = n - 1;
  const T* dO = d_out;
  auto dO_row = [&](int i) { return dO + i * d_out_stride; };
  auto dq_row = [&](int i) { return dq + i * dqk_stride; };
  auto dk_row = [&](int i) { return dk + i * dqk_stride; };
  for (int i = 0; i < n; ++i) {
    std::fill(dq_row(i), dq_row(i) + Dk, T(0));
    std::fill(dk_row(i), dk_row(i) + Dk, T(0));
    dbeta[i * x.gb_stride] = 0;
    d.d_gamma[i] = 0;
  }

  for (int i = 0; i < n; ++i)
    for (int j = 0; j <= i; ++j) d.qk[i * C + j] = dot(x.q_row(i), x.k_row(j), Dk);

  // dV' = Pᵀ dO + diag(b) K dS.
  for (int j = 0; j < n; ++j) {
    T* dVj = d.dV_new + j * Dv;
    std::fill(dVj, dVj + Dv, T(0));
    for (int m = 0; m < Dk; ++m) axpy(f.decay_out[j] * x.k_row(j)[m], dS + m * Dv, dVj, Dv);
  }
  for (int i = 0; i < n; ++i)
    for (int j = 0; j <= i; ++j)
      axpy(d.qk[i * C + j] * f.mask[i * C + j], dO_row(i), d.dV_new + j * Dv, Dv);

  // Through P = Q Kᵀ ⊙ M; the diagonal M_ii = 1 carries no Γ dependence.
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j <= i; ++j) {
      const T dP_M = dot(dO_row(i), f.V_new + j * Dv, Dv) * f.mask[i * C + j];
      axpy(dP_M, x.k_row(j), dq_row(i), Dk);
      axpy(dP_M, x.q_row(i), dk_row(j), Dk);
      if (j < i) {
        const T dP_P = dP_M * d.qk[i * C + j];
        d.d_gamma[i] += dP_P;
        d.d_gamma[j] -= dP_P;
      }
    }
  }

  // Through diag(a) Q S.
  for (int i = 0; i < n; ++i) {
    for (int m = 0; m < Dk; ++m) d.S_times_dout[m] = dot(S + m * Dv, dO_row(i), Dv);
    axpy(f.decay_in[i], d.S_times_dout, dq_row(i), Dk);
    d.d_gamma[i] += f.decay_in[i] * dot(x.q_row(i), d.S_times_dout, Dk);
  }

  // Through S_next = a_last S + (diag(b) K)ᵀ V' (its V' part is in dV' above). S_times_dout is
  // reused for dS V'_j.
  for (int j = 0; j < n; ++j) {
    for (int m = 0; m < Dk; ++m) d.S_times_dout[m] = dot(dS + m * Dv, f.V_new + j * Dv, Dv);
    axpy(f.decay_out[j], d.S_times_dout, dk_row(j), Dk);
    const T db_b = f.decay_out[j] * dot(x.k_row(j), d.S_times_dout, Dk);
    d.d_gamma[last] += db_b;
    d.d_gamma[j] -= db_b;
  }
  d.d_gamma[last] += f.decay_in[last] * dot(S, dS, Dk * Dv);

  // dB_w = Tᵀ dW with dW = −dV' Sᵀ, dB_u = Tᵀ dV': solve (I + A)ᵀ X = D from the last row up.
  for (int i = n - 1; i >= 0; --i) {
    T* dBwi = d.dBw + i * Dk;
    T* dBui = d.dBu + i * Dv;
    for (int m = 0; m < Dk; ++m) dBwi[m] = -dot(S + m * Dv, d.dV_new + i * Dv, Dv);
    std::copy_n(d.dV_new + i * Dv, Dv, dBui);
    for (int j = i + 1; j < n; ++j) {
      axpy(-f.A[j * C + i], d.dBw + j * Dk, dBwi, Dk);
      axpy(-f.A[j * C + i], d.dBu + j * Dv, dBui, Dv);
    }
  }

  // dS_entry = a_last dS + (diag(a) Q)ᵀ dO − Wᵀ dV', in place: dS_next is not needed any more.
  for (int m = 0; m < Dk; ++m) {
    T* dSm = dS + m * Dv;
    for (int c = 0; c < Dv; ++c) dSm[c] *= f.decay_in[last];
    for (int i = 0; i < n; ++i) {
      axpy(f.decay_in[i] * x.q_row(i)[m], dO_row(i), dSm, Dv);
      axpy(-f.W[i * Dk + m], d.dV_new + i * Dv, dSm, Dv);
    }
  }

  // Through A (strictly lower): dA = −(dB_w Wᵀ + dB_u Uᵀ).
  for (int i = 0; i < n; ++i) {
    const T bi = x.beta_at(i);
    T dbeta_i = 0;
    for (int j = 0; j < i; ++j) {
      const T dA = -(dot(d.dBw + i * Dk, f.W + j * Dk, Dk) + dot(d.dBu + i * Dv, f.U + j * Dv, Dv));
      dbeta_i += dA * f.key_gram[i * C + j] * f.mask[i * C + j];
      const T dA_gram = dA * bi * f.mask[i * C + j];
      axpy(dA_gram, x.k_row(j), dk_row(i), Dk);
      axpy(dA_gram, x.k_row(i), dk_row(j), Dk);
      const T dA_A = dA * f.A[i * C + j];
      d.d_gamma[i] += dA_A;
      d.d_gamma[j] -= dA_A;
    }
    // Through B_w = diag(β a) K and B_u = diag(β) V.
    const T k_dBw = dot(x.k_row(i), d.dBw + i * Dk, Dk);
    axpy(bi * f.decay_in[i], d.dBw + i * Dk, dk_row(i), Dk);
    d.d_gamma[i] += bi * f.decay_in[i] * k_dBw;
    dbeta_i += f.decay_in[i] * k_dBw + dot(x.v_row(i), d.dBu + i * Dv, Dv);
    dbeta[i * x.gb_stride] = dbeta_i;
    T* dvi = dv + i * x.v_stride;
    for (int c = 0; c < Dv; ++c) dvi[c] = bi * d.dBu[i * Dv + c];
  }

  // Γ_i = g_0 + ... + g_i, so dg_i = Σ_{m ≥ i} dΓ_m.
  T suffix = 0;
  for (int i = n - 1; i >= 0; --i) {
    suffix += d.d_gamma[i];
    dg[i * x.gb_stride] = suffix;
  }
}

}  // namespace

template <class T>
void gated_delta_rule_chunked_backward(const DeltaRuleShape& shape,
                                       std::span<const int64_t> cu_seqlens, const T* q, const T* k,
                                       const T* v, const T* g, const T* beta,
                                       const T* initial_state, const T* d_out,
                                       const T* d_final_state, T* dq, T* dk, T* dv, T* dg,
                                       T* dbeta, T* d_initial_state, int chunk) {
  check_chunked_args(shape, cu_seqlens, chunk);
  const int Hk = shape.num_k_heads, Hv = shape.num_v_heads, Dk = shape.k_dim, Dv = shape.v_dim;
  const int heads_per_key = Hv / Hk;
  const int64_t nseq = int64_t(cu_seqlens.size()) - 1;
  const int64_t state_size = int64_t(Dk) * Dv;
  const int64_t longest = longest_sequence(cu_seqlens);
  const int C = int(std::min<int64_t>(chunk, std::max<int64_t>(1, longest)));
  const int64_t max_chunks = (longest + C - 1) / C;

  // Value heads sharing a key head write their dq/dk to separate rows [T, Hv, Dk], summed below;
  // with Hv == Hk each value head owns its key head and writes dq/dk directly.
  std::vector<T> per_value_head;
  T* dq_heads = dq;
  T* dk_heads = dk;
  if (heads_per_key > 1) {
    per_value_head.resize(size_t(2 * shape.tokens * Hv * Dk));
    dq_heads = per_value_head.data();
    dk_heads = dq_heads + shape.tokens * Hv * Dk;
  }

#pragma omp parallel
  {
    // entry_states[c]: the state entering chunk c of the current sequence.
    std::vector<T> scratch(size_t((max_chunks + 1) * state_size) + ChunkFactors<T>::size(C, Dk, Dv) +
                           ChunkGrads<T>::size(C, Dk, Dv));
    T* entry_states = scratch.data();
    T* dS = entry_states + max_chunks * state_size;
    ChunkFactors<T> f = ChunkFactors<T>::carve(dS + state_size, C, Dk, Dv);
    ChunkGrads<T> d = ChunkGrads<T>::carve(dS + state_size + ChunkFactors<T>::size(C, Dk, Dv), C, Dk, Dv);
#pragma omp for schedule(dynamic, 1)
    for (int64_t pair = 0; pair < nseq * Hv; ++pair) {
      const int64_t s = pair / Hv;
      const int h = int(pair % Hv);
      const int64_t begin = cu_seqlens[size_t(s)], end = cu_seqlens[size_t(s + 1)];
      const int64_t nchunks = (end - begin + C - 1) / C;
      auto rows_of = [&](int64_t c) {
        const int64_t t0 = begin + c * C;
        return chunk_rows(shape, q, k, v, g, beta, h, t0, int(std::min<int64_t>(C, end - t0)));
      };

      // Forward over the chunks, keeping each entry state (the spec's "recompute chunk-entry states").
      T* S = dS;  // dS is not in use yet: it holds the running state until the last chunk
      if (initial_state)
        std::copy_n(initial_state + pair * state_size, state_size, S);
      else
        std::fill(S, S + state_size, T(0));
      for (int64_t c = 0; c < nchunks; ++c) {
        std::copy_n(S, state_size, entry_states + c * state_size);
        const ChunkRows<T> x = rows_of(c);
        compute_chunk_factors(x, S, C, Dk, Dv, f);
        advance_state(x, f, Dk, Dv, S);
      }

      if (d_final_state)
        std::copy_n(d_final_state + pair * state_size, state_size, dS);
      else
        std::fill(dS, dS + state_size, T(0));
      for (int64_t c = nchunks - 1; c >= 0; --c) {
        const ChunkRows<T> x = rows_of(c);
        const T* S_entry = entry_states + c * state_size;
        const int64_t t0 = begin + c * C;
        compute_chunk_factors(x, S_entry, C, Dk, Dv, f);
        chunk_backward(x, f, S_entry, d_out + (t0 * Hv + h) * Dv, int64_t(Hv) * Dv, C, Dk, Dv, d,
                       dS, dq_heads + (t0 * Hv + h) * Dk, dk_heads + (t0 * Hv + h) * Dk,
                       int64_t(Hv) * Dk, dv + (t0 * Hv + h) * Dv, dg + t0 * Hv + h,
                       dbeta + t0 * Hv + h);
      }
      if (d_initial_state) std::copy_n(dS, state_size, d_initial_state + pair * state_size);
    }
  }

  if (heads_per_key > 1) {
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < shape.tokens; ++t) {
      for (int kh = 0; kh < Hk; ++kh) {
        T* dq_t = dq + (t * Hk + kh) * Dk;
        T* dk_t = dk + (t * Hk + kh) * Dk;
        std::fill(dq_t, dq_t + Dk, T(0));
        std::fill(dk_t, dk_t + Dk, T(0));
        for (int h = kh * heads_per_key; h < (kh + 1) * heads_per_key; ++h) {
          axpy(T(1), dq_heads + (t * Hv + h) * Dk, dq_t, Dk);
          axpy(T(1), dk_heads + (t * Hv + h) * Dk, dk_t, Dk);
        }
      }
    }
  }
}

#define DT_INSTANTIATE(T)                                                                          \
  template void gated_delta_rule_chunked_forward<T>(const DeltaRuleShape&,                         \
                                                    std::span<const int64_t>, const T*, const T*,  \
                                                    const T*, const T*, const T*, const T*, T*,    \
                                                    T*, int);                                      \
  template void gated_delta_rule_chunked_backward<T>(                                              \
      const DeltaRuleShape&, std::span<const int64_t>, const T*, const T*, const T*, const T*,     \
      const T*, const T*, const T*, const T*, T*, T*, T*, T*, T*, T*, int);
DT_INSTANTIATE(float)
DT_INSTANTIATE(double)
#undef DT_INSTANTIATE

}  // namespace deltatune
