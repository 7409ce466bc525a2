// The gated delta rule, chunked form (spec/gated_delta_rule.md, "Chunked form"): the WY/UT
// transform over chunks of `chunk` tokens, sequential over chunks, dense inside one. This is the
// path the model runs; the recurrent form (delta_rule_recurrent.cpp) is its reference.
//
// Notation for one chunk of n tokens (rows i, j = 0..n-1), S the state entering it, last = n-1:
//   Γ_i = g_0 + ... + g_i,  a_i = exp(Γ_i),  b_i = exp(Γ_last − Γ_i),
//   M_ij = exp(Γ_i − Γ_j) (i ≥ j),  A_ij = β_i (k_i·k_j) M_ij (i > j),  T = (I + A)^-1,
//   W = T diag(β a) K,  U = T diag(β) V,  V' = U − W S,
//   O = diag(a) Q S + P V' with P = Q Kᵀ ⊙ M,  S_next = a_last S + (diag(b) K)ᵀ V'.
// Every exponent above is ≤ 0 (g ≤ 0, i ≥ j), so no factor overflows however strong the decay.
//
// On a CPU the chunked form does about 1.4x the arithmetic of the recurrent one (C = 64,
// dk = dv = 128); it still runs faster because the arithmetic is matrix products, register-tiled
// in multiply_add below.
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

// A matrix operand read through strides: X(r, m) = data[r * row + m * col]. The transpose of a
// row-major matrix is the same memory with the strides swapped, so no product needs a copy for Xᵀ.
template <class T>
struct Strided {
  const T* data;
  int64_t row, col;
};
template <class T>
Strided<T> rows_of(const T* data, int64_t row_stride) {
  return {data, row_stride, 1};
}
template <class T>
Strided<T> transpose_of(const T* data, int64_t row_stride) {
  return {data, 1, row_stride};
}

// Terms a product may leave out: X zero above or below its diagonal, or Y wanted only on and below
// its diagonal (then some entries just above it are computed too, and are not to be read).
enum class Skip { kNothing, kXAboveDiagonal, kXBelowDiagonal, kYAboveDiagonal };

// Register tile: kTileRows rows of Y by one cache line of columns, accumulated over the whole inner
// dimension before touching memory. 4 × 64 bytes measured best of 2..8 rows × 16..128 bytes, both
// with SSE only (x86-64-v2, the default build) and with AVX-512 (-march=native).
constexpr int kTileRows = 4;
template <class T>
constexpr int kTileCols = int(64 / sizeof(T));

template <class T, int R>
inline void multiply_add_tile(int cols_in_tile, int m_begin, int m_end, T alpha, Strided<T> X,
                              const T* B, int64_t b_row, T* Y, int64_t y_row) {
  constexpr int NB = kTileCols<T>;
  T acc[R][NB] = {};
  T x[R];
  if (cols_in_tile == NB) {
    for (int m = m_begin; m < m_end; ++m) {
      const T* b = B + m * b_row;
      for (int r = 0; r < R; ++r) x[r] = X.data[r * X.row + m * X.col];
      for (int r = 0; r < R; ++r)
#pragma omp simd
        for (int c = 0; c < NB; ++c) acc[r][c] += x[r] * b[c];
    }
  } else {
    for (int m = m_begin; m < m_end; ++m) {
      const T* b = B + m * b_row;
      for (int r = 0; r < R; ++r) {
        const T xr = X.data[r * X.row + m * X.col];
        for (int c = 0; c < cols_in_tile; ++c) acc[r][c] += xr * b[c];
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < cols_in_tile; ++c) Y[r * y_row + c] += alpha * acc[r][c];
}

// Y += alpha · X B, with Y [rows × cols], X [rows × inner] (strided), B [inner × cols]; rows of B
// and Y are contiguous with strides b_row, y_row.
template <class T>
void multiply_add(int rows, int cols, int inner, T alpha, Strided<T> X, const T* B, int64_t b_row,
                  T* Y, int64_t y_row, Skip skip = Skip::kNothing) {
  constexpr int NB = kTileCols<T>;
  for (int r0 = 0; r0 < rows;) {
    const bool full_tile = r0 + kTileRows <= rows;
    const int R = full_tile ? kTileRows : 1;
    const int m_begin = skip == Skip::kXBelowDiagonal ? std::min(r0, inner) : 0;
    const int m_end = skip == Skip::kXAboveDiagonal ? std::min(inner, r0 + R) : inner;
    const int c_end = skip == Skip::kYAboveDiagonal ? std::min(cols, r0 + R) : cols;
    const Strided<T> X_tile{X.data + r0 * X.row, X.row, X.col};
    for (int c0 = 0; c0 < c_end; c0 += NB) {
      const int nc = std::min(NB, c_end - c0);
      if (full_tile)
        multiply_add_tile<T, kTileRows>(nc, m_begin, m_end, alpha, X_tile, B + c0, b_row,
                                        Y + r0 * y_row + c0, y_row);
      else
        multiply_add_tile<T, 1>(nc, m_begin, m_end, alpha, X_tile, B + c0, b_row,
                                Y + r0 * y_row + c0, y_row);
    }
    r0 += R;
  }
}

template <class T>
void set_zero(int rows, int cols, T* Y, int64_t y_row) {
  for (int r = 0; r < rows; ++r) std::fill(Y + r * y_row, Y + r * y_row + cols, T(0));
}

// dst [cols × rows] = srcᵀ, for products whose right operand is a transpose (multiply_add reads B
// by contiguous rows).
template <class T>
void transpose(int rows, int cols, const T* src, int64_t src_row, T* dst, int64_t dst_row) {
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) dst[c * dst_row + r] = src[r * src_row + c];
}

// The checks of both forms, plus the chunk length.
void check_chunked_args(const DeltaRuleShape& shape, std::span<const int64_t> cu_seqlens,
                        int chunk) {
  check_delta_rule_arguments(shape, cu_seqlens);
  DT_CHECK(chunk > 0, "gated delta rule: chunk must be positive, got ", chunk);
}

int64_t longest_sequence(std::span<const int64_t> cu_seqlens) {
  int64_t longest = 0;
  for (size_t s = 1; s < cu_seqlens.size(); ++s)
    longest = std::max(longest, cu_seqlens[s] - cu_seqlens[s - 1]);
  return longest;
}

// Hands out consecutive pieces of one per-thread buffer. Run over a null buffer it only counts, so
// each layout below is written once and gives its own size.
template <class T>
struct Carver {
  T* base;
  size_t used = 0;
  T* take(int64_t n) {
    T* p = base ? base + used : nullptr;
    used += size_t(n);
    return p;
  }
};

// One (sequence, value head) seen through one chunk: row i of q/k is token t0+i of the key head,
// of v the value head; g and beta step over tokens with stride Hv.
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
ChunkRows<T> chunk_rows(const DeltaRuleShape& shape, const T* q, const T* k, const T* v, const T* g,
                        const T* beta, int h, int64_t t0, int n) {
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

// What the forward computes for one chunk and the backward recomputes. C×C matrices have leading
// dimension C; rows of [C × Dk] ones have Dk, of [C × Dv] ones Dv; transposes [D × C] have C.
template <class T>
struct ChunkFactors {
  T *gamma, *decay_in, *decay_out;  // Γ_i, a_i, b_i
  T *mask, *key_gram, *A;           // M_ij (i ≥ j), k_i·k_j (i > j), A_ij (i > j)
  T *K_t, *Q_in, *K_out;            // Kᵀ, diag(a) Q, diag(b) K
  T *W, *U, *V_new;                 // W, U, V' = U − W S

  ChunkFactors(Carver<T>& c, int C, int Dk, int Dv) {
    gamma = c.take(C);
    decay_in = c.take(C);
    decay_out = c.take(C);
    mask = c.take(C * C);
    key_gram = c.take(C * C);
    A = c.take(C * C);
    K_t = c.take(Dk * C);
    Q_in = c.take(C * Dk);
    K_out = c.take(C * Dk);
    W = c.take(C * Dk);
    U = c.take(C * Dv);
    V_new = c.take(C * Dv);
  }
};

// Γ, the decays, A, and the WY factors W, U of one chunk, then V' = U − W S for the state
// S [Dk, Dv] entering it.
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
    for (int m = 0; m < Dk; ++m) {
      f.Q_in[i * Dk + m] = f.decay_in[i] * x.q_row(i)[m];
      f.K_out[i * Dk + m] = f.decay_out[i] * x.k_row(i)[m];
    }
  }
  transpose(n, Dk, x.k, x.qk_stride, f.K_t, C);
  set_zero(n, n, f.key_gram, C);
  multiply_add(n, n, Dk, T(1), rows_of(x.k, x.qk_stride), f.K_t, C, f.key_gram, C,
               Skip::kYAboveDiagonal);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < i; ++j)
      f.A[i * C + j] = x.beta_at(i) * f.key_gram[i * C + j] * f.mask[i * C + j];

  // (I + A) W = diag(β a) K and (I + A) U = diag(β) V by blocked forward substitution: a block of
  // rows first takes the product with all solved rows above it, then solves its own small triangle;
  // T = (I + A)^-1 is never formed.
  for (int i = 0; i < n; ++i) {
    const T bi = x.beta_at(i), bai = bi * f.decay_in[i];
    for (int m = 0; m < Dk; ++m) f.W[i * Dk + m] = bai * x.k_row(i)[m];
    for (int m = 0; m < Dv; ++m) f.U[i * Dv + m] = bi * x.v_row(i)[m];
  }
  for (int r0 = 0; r0 < n; r0 += kTileRows) {
    const int rows = std::min(kTileRows, n - r0);
    multiply_add(rows, Dk, r0, T(-1), rows_of(f.A + r0 * C, C), f.W, Dk, f.W + r0 * Dk, Dk);
    multiply_add(rows, Dv, r0, T(-1), rows_of(f.A + r0 * C, C), f.U, Dv, f.U + r0 * Dv, Dv);
    for (int i = r0 + 1; i < r0 + rows; ++i)
      for (int j = r0; j < i; ++j) {
        axpy(-f.A[i * C + j], f.W + j * Dk, f.W + i * Dk, Dk);
        axpy(-f.A[i * C + j], f.U + j * Dv, f.U + i * Dv, Dv);
      }
  }
  std::copy_n(f.U, n * Dv, f.V_new);
  multiply_add(n, Dv, Dk, T(-1), rows_of(f.W, Dk), S, Dv, f.V_new, Dv);
}

// P = Q Kᵀ ⊙ M on and below the diagonal, zero above it.
template <class T>
void attention_scores(const ChunkRows<T>& x, const ChunkFactors<T>& f, int C, int Dk, T* P) {
  const int n = x.n;
  set_zero(n, n, P, C);
  multiply_add(n, n, Dk, T(1), rows_of(x.q, x.qk_stride), f.K_t, C, P, C, Skip::kYAboveDiagonal);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) P[i * C + j] = j <= i ? P[i * C + j] * f.mask[i * C + j] : T(0);
}

// S <- a_last S + (diag(b) K)ᵀ V'.
template <class T>
void advance_state(const ChunkFactors<T>& f, int n, int Dk, int Dv, T* S) {
  const T decay_all = f.decay_in[n - 1];
  for (int64_t e = 0; e < int64_t(Dk) * Dv; ++e) S[e] *= decay_all;
  multiply_add(Dk, Dv, n, T(1), transpose_of(f.K_out, Dk), f.V_new, Dv, S, Dv);
}

}  // namespace

template <class T>
void gated_delta_rule_chunked_forward(const DeltaRuleShape& shape,
                                      std::span<const int64_t> cu_seqlens, const T* q, const T* k,
                                      const T* v, const T* g, const T* beta, const T* initial_state,
                                      T* out, T* final_state, int chunk) {
  check_chunked_args(shape, cu_seqlens, chunk);
  const int Hv = shape.num_v_heads, Dk = shape.k_dim, Dv = shape.v_dim;
  const int64_t nseq = int64_t(cu_seqlens.size()) - 1;
  const int64_t state_size = int64_t(Dk) * Dv;
  const int C = int(std::min<int64_t>(chunk, std::max<int64_t>(1, longest_sequence(cu_seqlens))));
  const int64_t out_row = int64_t(Hv) * Dv;

#pragma omp parallel
  {
    Carver<T> sizer{nullptr};
    sizer.take(state_size + C * C);
    ChunkFactors<T>(sizer, C, Dk, Dv);
    std::vector<T> scratch(sizer.used);
    Carver<T> carver{scratch.data()};
    T* S = carver.take(state_size);
    T* P = carver.take(C * C);
    ChunkFactors<T> f(carver, C, Dk, Dv);
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
        const int n = int(std::min<int64_t>(C, end - t0));
        const ChunkRows<T> x = chunk_rows(shape, q, k, v, g, beta, h, t0, n);
        compute_chunk_factors(x, S, C, Dk, Dv, f);
        // O = diag(a) Q S + (Q Kᵀ ⊙ M) V', from the state entering the chunk.
        T* O = out + (t0 * Hv + h) * Dv;
        set_zero(n, Dv, O, out_row);
        multiply_add(n, Dv, Dk, T(1), rows_of(f.Q_in, Dk), S, Dv, O, out_row);
        attention_scores(x, f, C, Dk, P);
        multiply_add(n, Dv, n, T(1), rows_of(P, C), f.V_new, Dv, O, out_row, Skip::kXAboveDiagonal);
        advance_state(f, n, Dk, Dv, S);
      }
      if (final_state) std::copy_n(S, state_size, final_state + pair * state_size);
    }
  }
}

namespace {

// Backward of one chunk, derived step by step from the forward above. Given dO and
// dS = ∂L/∂S_next, with P = Q Kᵀ ⊙ M:
//   dV' = Pᵀ dO + diag(b) K dS                       (V' feeds O and S_next)
//   dP_ij = dO_i·V'_j (i ≥ j) → dQ += (dP ⊙ M) K,  dK += (dP ⊙ M)ᵀ Q,
//                                dΓ_i += dP_ij P_ij,  dΓ_j −= dP_ij P_ij
//   O ∋ a_i Sᵀq_i        → dq_i += a_i S dO_i,  dΓ_i += a_i q_i·(S dO_i)
//   S_next ∋ b_j k_j V'_jᵀ → dk_j += b_j dS V'_j, and with db_j = k_j·(dS V'_j):
//                                dΓ_last += b_j db_j,  dΓ_j −= b_j db_j;  dΓ_last += a_last <S, dS>
//   V' = U − W S         → dW = −dV' Sᵀ,  dU = dV',  dS_entry ∋ −Wᵀ dV'
//   W = T B_w, U = T B_u (B_w = diag(β a) K, B_u = diag(β) V):
//       dB_w = Tᵀ dW, dB_u = Tᵀ dU  (back substitution on (I + A)ᵀ)
//       dA = −Tᵀ dT Tᵀ with dT = dW B_wᵀ + dU B_uᵀ, i.e. dA = −(dB_w Wᵀ + dB_u Uᵀ), kept for i > j
//   A_ij = β_i (k_i·k_j) M_ij → with Z_ij = dA_ij β_i M_ij:  dK += Z K + Zᵀ K,
//                                dβ_i += Σ_j dA_ij (k_i·k_j) M_ij,
//                                dΓ_i += dA_ij A_ij,  dΓ_j −= dA_ij A_ij
//   B_w, B_u             → dk_i += β_i a_i dB_w,i,  dβ_i += a_i k_i·dB_w,i + v_i·dB_u,i,
//                                dΓ_i += β_i a_i k_i·dB_w,i,  dv_i = β_i dB_u,i
//   dS_entry = a_last dS + (diag(a) Q)ᵀ dO − Wᵀ dV',  dg_i = Σ_{m ≥ i} dΓ_m.
template <class T>
struct ChunkGrads {
  T *P, *dP, *dA;          // [C × C]: P; dP, then dP ⊙ M; dA, then Z
  T *S_t, *dS_t;           // Sᵀ, dSᵀ [Dv × Dk]
  T *V_new_t, *W_t, *U_t;  // V'ᵀ [Dv × C], Wᵀ [Dk × C], Uᵀ [Dv × C]
  T *dV_new, *dBw, *dBu;   // dV', dB_w, dB_u
  T *dO_S, *dS_V_new;      // rows S dO_i and dS V'_j [C × Dk]
  T* d_gamma;              // dΓ

  ChunkGrads(Carver<T>& c, int C, int Dk, int Dv) {
    P = c.take(C * C);
    dP = c.take(C * C);
    dA = c.take(C * C);
    S_t = c.take(Dv * Dk);
    dS_t = c.take(Dv * Dk);
    V_new_t = c.take(Dv * C);
    W_t = c.take(Dk * C);
    U_t = c.take(Dv * C);
    dV_new = c.take(C * Dv);
    dBw = c.take(C * Dk);
    dBu = c.take(C * Dv);
    dO_S = c.take(C * Dk);
    dS_V_new = c.take(C * Dk);
    d_gamma = c.take(C);
  }
};

// dq/dk of this value head go to rows with stride dqk_row (the caller sums value heads per key
// head); dv, dg, dbeta rows follow the layout of v, g, beta.
template <class T>
void chunk_backward(const ChunkRows<T>& x, const ChunkFactors<T>& f, const T* S, const T* dO,
                    int64_t dO_row, int C, int Dk, int Dv, ChunkGrads<T>& d, T* dS, T* dq, T* dk,
                    int64_t dqk_row, T* dv, T* dg, T* dbeta) {
  const int n = x.n, last = n - 1;
  set_zero(n, Dk, dq, dqk_row);
  set_zero(n, Dk, dk, dqk_row);
  std::fill(d.d_gamma, d.d_gamma + n, T(0));

  attention_scores(x, f, C, Dk, d.P);

  // dV' = Pᵀ dO + diag(b) K dS.
  set_zero(n, Dv, d.dV_new, Dv);
  multiply_add(n, Dv, n, T(1), transpose_of(d.P, C), dO, dO_row, d.dV_new, Dv,
               Skip::kXBelowDiagonal);
  multiply_add(n, Dv, Dk, T(1), rows_of(f.K_out, Dk), dS, Dv, d.dV_new, Dv);

  // dP = dO V'ᵀ on and below the diagonal; dΓ from P_ij = (q_i·k_j) exp(Γ_i − Γ_j), then dP ⊙ M
  // (zero above the diagonal) for dQ and dK.
  transpose(n, Dv, f.V_new, Dv, d.V_new_t, C);
  set_zero(n, n, d.dP, C);
  multiply_add(n, n, Dv, T(1), rows_of(dO, dO_row), d.V_new_t, C, d.dP, C, Skip::kYAboveDiagonal);
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < i; ++j) {
      const T dP_P = d.dP[i * C + j] * d.P[i * C + j];
      d.d_gamma[i] += dP_P;
      d.d_gamma[j] -= dP_P;
    }
    for (int j = 0; j < n; ++j)
      d.dP[i * C + j] = j <= i ? d.dP[i * C + j] * f.mask[i * C + j] : T(0);
  }
  multiply_add(n, Dk, n, T(1), rows_of(d.dP, C), x.k, x.qk_stride, dq, dqk_row,
               Skip::kXAboveDiagonal);
  multiply_add(n, Dk, n, T(1), transpose_of(d.dP, C), x.q, x.qk_stride, dk, dqk_row,
               Skip::kXBelowDiagonal);

  // Through diag(a) Q S: rows S dO_i.
  transpose(Dk, Dv, S, Dv, d.S_t, Dk);
  set_zero(n, Dk, d.dO_S, Dk);
  multiply_add(n, Dk, Dv, T(1), rows_of(dO, dO_row), d.S_t, Dk, d.dO_S, Dk);
  for (int i = 0; i < n; ++i) {
    axpy(f.decay_in[i], d.dO_S + i * Dk, dq + i * dqk_row, Dk);
    d.d_gamma[i] += dot(f.Q_in + i * Dk, d.dO_S + i * Dk, Dk);
  }

  // Through S_next = a_last S + (diag(b) K)ᵀ V' (its V' part is in dV' above): rows dS V'_j.
  transpose(Dk, Dv, dS, Dv, d.dS_t, Dk);
  set_zero(n, Dk, d.dS_V_new, Dk);
  multiply_add(n, Dk, Dv, T(1), rows_of(f.V_new, Dv), d.dS_t, Dk, d.dS_V_new, Dk);
  for (int j = 0; j < n; ++j) {
    axpy(f.decay_out[j], d.dS_V_new + j * Dk, dk + j * dqk_row, Dk);
    const T db_b = dot(f.K_out + j * Dk, d.dS_V_new + j * Dk, Dk);
    d.d_gamma[last] += db_b;
    d.d_gamma[j] -= db_b;
  }
  d.d_gamma[last] += f.decay_in[last] * dot(S, dS, Dk * Dv);

  // dB_w = Tᵀ dW with dW = −dV' Sᵀ, and dB_u = Tᵀ dV': solve (I + A)ᵀ X = D by blocked back
  // substitution, the mirror of the forward substitution in compute_chunk_factors.
  set_zero(n, Dk, d.dBw, Dk);
  multiply_add(n, Dk, Dv, T(-1), rows_of(d.dV_new, Dv), d.S_t, Dk, d.dBw, Dk);
  std::copy_n(d.dV_new, n * Dv, d.dBu);
  for (int r_end = n; r_end > 0; r_end -= kTileRows) {
    const int r0 = std::max(0, r_end - kTileRows), rows = r_end - r0;
    const Strided<T> A_t_below{f.A + r_end * C + r0, 1, C};  // (Aᵀ)(r0 + r, r_end + m)
    multiply_add(rows, Dk, n - r_end, T(-1), A_t_below, d.dBw + r_end * Dk, Dk, d.dBw + r0 * Dk,
                 Dk);
    multiply_add(rows, Dv, n - r_end, T(-1), A_t_below, d.dBu + r_end * Dv, Dv, d.dBu + r0 * Dv,
                 Dv);
    for (int i = r_end - 2; i >= r0; --i)
      for (int j = i + 1; j < r_end; ++j) {
        axpy(-f.A[j * C + i], d.dBw + j * Dk, d.dBw + i * Dk, Dk);
        axpy(-f.A[j * C + i], d.dBu + j * Dv, d.dBu + i * Dv, Dv);
      }
  }

  // dS_entry = a_last dS + (diag(a) Q)ᵀ dO − Wᵀ dV', in place: dS_next is not needed any more.
  for (int64_t e = 0; e < int64_t(Dk) * Dv; ++e) dS[e] *= f.decay_in[last];
  multiply_add(Dk, Dv, n, T(1), transpose_of(f.Q_in, Dk), dO, dO_row, dS, Dv);
  multiply_add(Dk, Dv, n, T(-1), transpose_of(f.W, Dk), d.dV_new, Dv, dS, Dv);

  // dA = −(dB_w Wᵀ + dB_u Uᵀ) below the diagonal, then Z = dA ⊙ β_i M (zero elsewhere).
  transpose(n, Dk, f.W, Dk, d.W_t, C);
  transpose(n, Dv, f.U, Dv, d.U_t, C);
  set_zero(n, n, d.dA, C);
  multiply_add(n, n, Dk, T(-1), rows_of(d.dBw, Dk), d.W_t, C, d.dA, C, Skip::kYAboveDiagonal);
  multiply_add(n, n, Dv, T(-1), rows_of(d.dBu, Dv), d.U_t, C, d.dA, C, Skip::kYAboveDiagonal);
  for (int i = 0; i < n; ++i) {
    const T bi = x.beta_at(i);
    T dbeta_i = 0;
    for (int j = 0; j < i; ++j) {
      const T dA = d.dA[i * C + j];
      dbeta_i += dA * f.key_gram[i * C + j] * f.mask[i * C + j];
      const T dA_A = dA * f.A[i * C + j];
      d.d_gamma[i] += dA_A;
      d.d_gamma[j] -= dA_A;
      d.dA[i * C + j] = dA * bi * f.mask[i * C + j];
    }
    std::fill(d.dA + i * C + i, d.dA + i * C + n, T(0));
    // Through B_w = diag(β a) K and B_u = diag(β) V.
    const T k_dBw = dot(x.k_row(i), d.dBw + i * Dk, Dk);
    axpy(bi * f.decay_in[i], d.dBw + i * Dk, dk + i * dqk_row, Dk);
    d.d_gamma[i] += bi * f.decay_in[i] * k_dBw;
    dbeta_i += f.decay_in[i] * k_dBw + dot(x.v_row(i), d.dBu + i * Dv, Dv);
    dbeta[i * x.gb_stride] = dbeta_i;
    T* dvi = dv + i * x.v_stride;
    for (int c = 0; c < Dv; ++c) dvi[c] = bi * d.dBu[i * Dv + c];
  }
  multiply_add(n, Dk, n, T(1), rows_of(d.dA, C), x.k, x.qk_stride, dk, dqk_row,
               Skip::kXAboveDiagonal);
  multiply_add(n, Dk, n, T(1), transpose_of(d.dA, C), x.k, x.qk_stride, dk, dqk_row,
               Skip::kXBelowDiagonal);

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
                                       const T* d_final_state, T* dq, T* dk, T* dv, T* dg, T* dbeta,
                                       T* d_initial_state, int chunk) {
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
    Carver<T> sizer{nullptr};
    sizer.take((max_chunks + 1) * state_size);
    ChunkFactors<T>(sizer, C, Dk, Dv);
    ChunkGrads<T>(sizer, C, Dk, Dv);
    std::vector<T> scratch(sizer.used);
    Carver<T> carver{scratch.data()};
    T* entry_states = carver.take(max_chunks * state_size);  // [c]: the state entering chunk c
    T* dS = carver.take(state_size);
    ChunkFactors<T> f(carver, C, Dk, Dv);
    ChunkGrads<T> d(carver, C, Dk, Dv);
#pragma omp for schedule(dynamic, 1)
    for (int64_t pair = 0; pair < nseq * Hv; ++pair) {
      const int64_t s = pair / Hv;
      const int h = int(pair % Hv);
      const int64_t begin = cu_seqlens[size_t(s)], end = cu_seqlens[size_t(s + 1)];
      const int64_t nchunks = (end - begin + C - 1) / C;
      auto rows_of_chunk = [&](int64_t c) {
        const int64_t t0 = begin + c * C;
        return chunk_rows(shape, q, k, v, g, beta, h, t0, int(std::min<int64_t>(C, end - t0)));
      };

      // Forward over the chunks, keeping each entry state (the spec's "recompute chunk-entry
      // states"); dS is free until the reverse pass and holds the running state meanwhile.
      T* S = dS;
      if (initial_state)
        std::copy_n(initial_state + pair * state_size, state_size, S);
      else
        std::fill(S, S + state_size, T(0));
      for (int64_t c = 0; c < nchunks; ++c) {
        std::copy_n(S, state_size, entry_states + c * state_size);
        const ChunkRows<T> x = rows_of_chunk(c);
        compute_chunk_factors(x, S, C, Dk, Dv, f);
        advance_state(f, x.n, Dk, Dv, S);
      }

      if (d_final_state)
        std::copy_n(d_final_state + pair * state_size, state_size, dS);
      else
        std::fill(dS, dS + state_size, T(0));
      for (int64_t c = nchunks - 1; c >= 0; --c) {
        const ChunkRows<T> x = rows_of_chunk(c);
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

#define DT_INSTANTIATE(T)                                                                      \
  template void gated_delta_rule_chunked_forward<T>(                                           \
      const DeltaRuleShape&, std::span<const int64_t>, const T*, const T*, const T*, const T*, \
      const T*, const T*, T*, T*, int);                                                        \
  template void gated_delta_rule_chunked_backward<T>(                                          \
      const DeltaRuleShape&, std::span<const int64_t>, const T*, const T*, const T*, const T*, \
      const T*, const T*, const T*, const T*, T*, T*, T*, T*, T*, T*, int);
DT_INSTANTIATE(float)
DT_INSTANTIATE(double)
#undef DT_INSTANTIATE

}  // namespace deltatune
