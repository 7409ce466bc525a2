// The gated delta rule's forward kernels (ops/cuda/delta_rule.cu says how they fit together):
//   PrepBody        one block per (chunk, value head), all in parallel: Γ, A, T = (I + A)^-1, the
//                   WY factors W, U, and the chunk-local parts of the output (or, for the
//                   backward, of dV').
//   RecurrenceBody  one block per (sequence, value head, BV state columns): the chunks in order,
//                   the state in shared memory (float), the output written on the way (or, for
//                   the backward, every chunk's entry state and V' stored).
#pragma once

#include "ops/cuda/delta_rule_common.cuh"

namespace deltatune::cuda {

template <class T>
constexpr int kChunk = sizeof(T) == 2 ? 64 : 32;

// Per (chunk, value head), with n tokens in the chunk and rows past n zero:
//   A_ij = β_i (k_i·k_j) M_ij (i > j),  T = (I + A)^-1,
//   W = T diag(β a) K,  U = T diag(β) V                         → workspace (both passes)
//   forward:  P = Q Kᵀ ⊙ M,  Q̃ = diag(a) Q − P W,  O_local = P U → workspace
//   backward: T, and dV_local = Pᵀ dO                            → workspace
// With these, the recurrence needs only products with the state: V' = U − W S and
// O = diag(a) Q S + P V' = O_local + Q̃ S (spec/gated_delta_rule.md, "Chunked form").
// Tensor cores: K Kᵀ, Q Kᵀ, T·K, T·V, P·W, P·U (or Pᵀ dO). K, V, Q, dO are bf16 inputs, exact as
// operands; T's factors, P and U are split into bf16 hi + lo (block_tile.cuh, Operand): rounding
// them to bf16 alone gave 2-3e-3 relative error in the output (measured, docs/performance.md).
// kD > 0: the head dims are known at compile time (dk = dv = kD; delta_rule.cu picks it for the
// models' 128): every index into the tiles then folds to shifts and constants. Nsight Compute
// found the generic body's divisions by DK and DV to be a large share of its instructions.
template <class T, bool kBackward, int kD = 0>
struct PrepBody {
  static constexpr int C = kChunk<T>;
  static constexpr int kThreads = 512;  // 16 warps, as ChunkGradBody (one block per SM)
  Dims d;
  Table tab;
  const T *q, *k, *v, *d_out;
  const float *g, *beta;
  Workspace<T> ws;

  struct Smem {
    float *gamma, *a, *beta;
    T *K, *Q, *V, *dO, *U_lo;       // dO: backward; U_lo: forward (U's hi goes to V's tile)
    T *P, *P_lo, *Tw, *Tw_lo, *Tu, *Tu_lo;  // C×C: P, T diag(β a), T diag(β)
    float *CC, *Tf;  // CC: A and Q Kᵀ (2 C×C), later the C×D product results; Tf: T
  };
  DT_HD static Smem carve(SmemCarver& c, const Dims& d) {
    const int ldk = d.DK + kPad<T>, ldv = d.DV + kPad<T>, ldc = C + kPad<T>, ldf = C + 4;
    const int ldF = (d.DK > d.DV ? d.DK : d.DV) + 4;
    const int lo = kSplit<T> ? 1 : 0;
    Smem s;
    s.gamma = c.take<float>(C);
    s.a = c.take<float>(C);
    s.beta = c.take<float>(C);
    s.K = c.take<T>(C * ldk);
    s.Q = c.take<T>(C * ldk);
    s.V = c.take<T>(C * ldv);
    s.dO = kBackward ? c.take<T>(C * ldv) : nullptr;
    s.U_lo = !kBackward && lo ? c.take<T>(C * ldv) : nullptr;
    s.P = c.take<T>(C * ldc);
    s.P_lo = lo ? c.take<T>(C * ldc) : nullptr;
    s.Tw = c.take<T>(C * ldc);
    s.Tw_lo = lo ? c.take<T>(C * ldc) : nullptr;
    s.Tu = c.take<T>(C * ldc);
    s.Tu_lo = lo ? c.take<T>(C * ldc) : nullptr;
    s.CC = c.take<float>(2 * C * ldf > C * ldF ? 2 * C * ldf : C * ldF);
    s.Tf = c.take<float>(C * ldf);
    return s;
  }
  static size_t smem_bytes(const Dims& d) {
    SmemCarver c{nullptr};
    carve(c, d);
    return c.used;
  }

  DT_HD void operator()(const Block& blk, int chunk, int h, int, char* smem) const {
    SmemCarver carver{smem};
    const Smem s = carve(carver, d);
    const int DK = kD ? kD : d.DK, DV = kD ? kD : d.DV;
    const int dim_k = kD ? kD : d.dk, dim_v = kD ? kD : d.dv;
    const int ldk = DK + kPad<T>, ldv = DV + kPad<T>, ldc = C + kPad<T>, ldf = C + 4;
    const int ldF = (DK > DV ? DK : DV) + 4;
    const int t0 = tab.t0[chunk], n = tab.len[chunk], kh = h / d.heads_per_key;
    const int64_t ch = int64_t(chunk) * d.Hv + h;
    const int64_t qk_row = int64_t(d.Hk) * dim_k, v_row = int64_t(d.Hv) * dim_v;
    const int64_t qk_at = (int64_t(t0) * d.Hk + kh) * dim_k;
    const int64_t v_at = (int64_t(t0) * d.Hv + h) * dim_v;

    // g and β first, into registers (as in ChunkGradBody: behind the copies they waited for
    // all the tiles).
    const bool one_pass = blk.threads >= C;  // the GPU's blocks; the emulation loops below
    float g_i = 0.0f, beta_i = 0.0f;
    if (one_pass && blk.thread < n) {
      g_i = g[int64_t(t0 + blk.thread) * d.Hv + h];
      beta_i = beta[int64_t(t0 + blk.thread) * d.Hv + h];
    }
    // Two groups of copies: K and Q, which the first products need, then V (and dO), which
    // arrive while A, its inverse and W are computed (waited for before U's product).
    copy_tile_async(blk, s.K, ldk, C, DK, k + qk_at, qk_row, n, dim_k);
    copy_tile_async(blk, s.Q, ldk, C, DK, q + qk_at, qk_row, n, dim_k);
    async_commit();
    copy_tile_async(blk, s.V, ldv, C, DV, v + v_at, v_row, n, dim_v);
    if (kBackward) copy_tile_async(blk, s.dO, ldv, C, DV, d_out + v_at, v_row, n, dim_v);
    async_commit();
    // g (zero past the chunk's end, so Γ stays at Γ_last there) and β (zero past the end).
    for (int i = blk.thread; i < C; i += blk.threads) {
      s.a[i] = one_pass ? g_i : i < n ? g[int64_t(t0 + i) * d.Hv + h] : 0.0f;
      s.beta[i] = one_pass ? beta_i : i < n ? beta[int64_t(t0 + i) * d.Hv + h] : 0.0f;
    }
    blk.sync();
    for (int i = blk.thread; i < C; i += blk.threads) {
      float sum = 0.0f;  // Γ_i, summed in token order as the CPU reference does
      for (int j = 0; j <= i; ++j) sum += s.a[j];
      s.gamma[i] = sum;
      ws.gamma[ch * C + i] = sum;
    }
    async_wait_pending<1>();  // K and Q
    blk.sync();
    for (int i = blk.thread; i < C; i += blk.threads) s.a[i] = i < n ? expf(s.gamma[i]) : 0.0f;

    float* A = s.CC;
    float* QK = s.CC + C * ldf;
    block_product<false, true>(blk, C, C, DK, exact(s.K, ldk), exact(s.K, ldk), A, ldf, false);
    block_product<false, true>(blk, C, C, DK, exact(s.Q, ldk), exact(s.K, ldk), QK, ldf, false);
    blk.sync();
    for_each_quad(blk, C, C, [&](int i, int j) {
      Quad a = Quad::load(A + i * ldf + j), p = Quad::load(QK + i * ldf + j);
      for (int u = 0; u < 4; ++u) {
        const float m = decay_mask(s.gamma, i, j + u, n);
        a.x[u] = j + u < i ? s.beta[i] * a.x[u] * m : 0.0f;
        p.x[u] *= m;
      }
      a.store(A + i * ldf + j);
      p.store_split(s.P + i * ldc + j, lo_at(s.P_lo, i * ldc + j));
    });
    blk.sync();
    invert_unit_lower<C>(blk, A, ldf, s.Tf, ldf);
    for_each_quad(blk, C, C, [&](int i, int j) {
      const Quad t = Quad::load(s.Tf + i * ldf + j);
      Quad tw, tu;
      for (int u = 0; u < 4; ++u) {
        tw.x[u] = t.x[u] * s.beta[j + u] * s.a[j + u];
        tu.x[u] = t.x[u] * s.beta[j + u];
      }
      tw.store_split(s.Tw + i * ldc + j, lo_at(s.Tw_lo, i * ldc + j));
      tu.store_split(s.Tu + i * ldc + j, lo_at(s.Tu_lo, i * ldc + j));
      if (kBackward) t.store(ws.Tinv + (ch * C + i) * C + j);
    });
    blk.sync();

    // W = T diag(β a) K and U = T diag(β) V. The forward keeps them as operands in K's and V's
    // tiles (K and V are not needed any more).
    float* F = s.CC;
    block_product<false, false>(blk, C, DK, C, split(s.Tw, s.Tw_lo, ldc), exact(s.K, ldk), F, ldF,
                               false);
    blk.sync();
    for_each_quad(blk, C, DK, [&](int i, int m) {
      const Quad w = Quad::load(F + i * ldF + m);
      w.store(ws.W + (ch * C + i) * DK + m);
      if (!kBackward) w.store(s.K + i * ldk + m);
    });
    async_wait();  // V (and dO)
    blk.sync();
    block_product<false, false>(blk, C, DV, C, split(s.Tu, s.Tu_lo, ldc), exact(s.V, ldv), F, ldF,
                               false);
    blk.sync();
    for_each_quad(blk, C, DV, [&](int i, int c) {
      const Quad u = Quad::load(F + i * ldF + c);
      u.store(ws.U + (ch * C + i) * DV + c);
      if (!kBackward) u.store_split(s.V + i * ldv + c, lo_at(s.U_lo, i * ldv + c));
    });
    blk.sync();

    const Operand<T> P = split(s.P, s.P_lo, ldc);
    if (!kBackward) {
      block_product<false, false>(blk, C, DK, C, P, exact(s.K, ldk), F, ldF, false);  // P W
      blk.sync();
      for_each_quad(blk, C, DK, [&](int i, int m) {
        Quad qt = Quad::load(F + i * ldF + m);
        for (int u = 0; u < 4; ++u) qt.x[u] = s.a[i] * to_float(s.Q[i * ldk + m + u]) - qt.x[u];
        qt.store_split(ws.Qt + (ch * C + i) * DK + m, lo_at(ws.Qt_lo, (ch * C + i) * DK + m));
      });
      blk.sync();
      block_product<false, false>(blk, C, DV, C, P, split(s.V, s.U_lo, ldv), F, ldF, false);  // P U
      blk.sync();
      for_each_quad(blk, C, DV, [&](int i, int c) {
        Quad::load(F + i * ldF + c).store(ws.O_local + (ch * C + i) * DV + c);
      });
    } else {
      block_product<true, false>(blk, C, DV, C, P, exact(s.dO, ldv), F, ldF, false);  // Pᵀ dO
      blk.sync();
      for_each_quad(blk, C, DV, [&](int i, int c) {
        Quad::load(F + i * ldF + c).store(ws.dV_local + (ch * C + i) * DV + c);
      });
    }
  }
};

// One block per (sequence, value head, BV columns of the state), the sequential part: for each
// chunk of the sequence in order, with S [DK × BV] the state entering it (float):
//   V' = U − W S                          (forward also: O = O_local + Q̃ S)
//   S ← a_last S + (diag(b) K)ᵀ V' = a_last S + Kᵀ (diag(b) V')
// Columns of the state are independent of each other, so the BV-column slices run in parallel.
// kStore (the backward's recomputation): no output; stores each entry state S and V'.
// Tensor cores: W S, Q̃ S and Kᵀ (diag(b) V'); the state stays float in shared memory and enters
// the products as bf16 hi + lo, as do Q̃ and diag(b) V' (W and K as bf16).
template <class T, int BV, bool kStore>
struct RecurrenceBody {
  static constexpr int C = kChunk<T>;
  static constexpr int kRows = kStore ? C : 2 * C;  // rows of the products with S: W, then Q̃
  Dims d;
  Table tab;
  const T* k;
  const float* initial_state;
  T* out;
  float* final_state;
  Workspace<T> ws;

  struct Smem {
    float *S, *F, *U, *O_local, *gamma;
    T *S_op, *S_lo, *W, *Qt, *Qt_lo, *K, *Vb, *Vb_lo;
  };
  DT_HD static Smem carve(SmemCarver& c, const Dims& d) {
    const int ldk = d.DK + kPad<T>, ldS = BV + 4, ldSo = BV + kPad<T>;
    const int lo = kSplit<T> ? 1 : 0;
    Smem s;
    s.S = c.take<float>(d.DK * ldS);
    s.F = c.take<float>(kRows * ldS);
    s.U = c.take<float>(C * ldS);
    s.O_local = kStore ? nullptr : c.take<float>(C * ldS);
    s.gamma = c.take<float>(C);
    s.S_op = c.take<T>(d.DK * ldSo);
    s.S_lo = lo ? c.take<T>(d.DK * ldSo) : nullptr;
    s.W = c.take<T>(C * ldk);
    s.Qt = kStore ? nullptr : c.take<T>(C * ldk);
    s.Qt_lo = !kStore && lo ? c.take<T>(C * ldk) : nullptr;
    s.K = c.take<T>(C * ldk);
    s.Vb = c.take<T>(C * ldSo);
    s.Vb_lo = lo ? c.take<T>(C * ldSo) : nullptr;
    return s;
  }
  static size_t smem_bytes(const Dims& d) {
    SmemCarver c{nullptr};
    carve(c, d);
    return c.used;
  }

  DT_HD void operator()(const Block& blk, int seq, int h, int vb, char* smem) const {
    SmemCarver carver{smem};
    const Smem s = carve(carver, d);
    const int DK = d.DK, DV = d.DV, ldk = DK + kPad<T>, ldS = BV + 4, ldSo = BV + kPad<T>;
    const int v0 = vb * BV, kh = h / d.heads_per_key;
    const int64_t pair = int64_t(seq) * d.Hv + h, state = int64_t(d.dk) * d.dv;

    for (int e = blk.thread; e < DK * BV; e += blk.threads) {
      const int m = e / BV, c = e % BV;
      s.S[m * ldS + c] = initial_state && m < d.dk && v0 + c < d.dv
                             ? initial_state[pair * state + int64_t(m) * d.dv + v0 + c]
                             : 0.0f;
    }
    blk.sync();
    for (int c = tab.first[seq]; c < tab.first[seq + 1]; ++c) {
      const int t0 = tab.t0[c], n = tab.len[c];
      const int64_t ch = int64_t(c) * d.Hv + h;
      copy_tile_async(blk, s.W, ldk, C, DK, ws.W + ch * C * DK, DK, C, DK);
      if (!kStore) {
        copy_tile_async(blk, s.Qt, ldk, C, DK, ws.Qt + ch * C * DK, DK, C, DK);
        if (s.Qt_lo) copy_tile_async(blk, s.Qt_lo, ldk, C, DK, ws.Qt_lo + ch * C * DK, DK, C, DK);
        copy_tile_async(blk, s.O_local, ldS, C, BV, ws.O_local + ch * C * DV + v0, DV, C, BV);
      }
      copy_tile_async(blk, s.K, ldk, C, DK, k + (int64_t(t0) * d.Hk + kh) * d.dk,
                      int64_t(d.Hk) * d.dk, n, d.dk);
      copy_tile_async(blk, s.U, ldS, C, BV, ws.U + ch * C * DV + v0, DV, C, BV);
      for (int i = blk.thread; i < C; i += blk.threads) s.gamma[i] = ws.gamma[ch * C + i];
      for (int e = blk.thread; e < DK * BV; e += blk.threads) {
        const int m = e / BV, col = e % BV;
        const float x = s.S[m * ldS + col];
        store_split(s.S_op, s.S_lo, m * ldSo + col, x);
        if (kStore) ws.states[ch * DK * DV + int64_t(m) * DV + v0 + col] = x;
      }
      async_wait();
      blk.sync();

      // W S and Q̃ S side by side: the second product starts on the warp after the first's tiles.
      const Operand<T> S = split(s.S_op, s.S_lo, ldSo);
      block_product<false, false>(blk, C, BV, DK, exact(s.W, ldk), S, s.F, ldS, false);
      if (!kStore)
        block_product<false, false>(blk, C, BV, DK, split(s.Qt, s.Qt_lo, ldk), S, s.F + C * ldS,
                                   ldS, false, (C / 16) * (BV / 16));
      blk.sync();
      const float a_last = expf(s.gamma[n - 1]);
      for (int e = blk.thread; e < C * BV; e += blk.threads) {
        const int i = e / BV, col = e % BV;
        const float v_new = s.U[i * ldS + col] - s.F[i * ldS + col];
        if (kStore)
          store_split(ws.V_new, ws.V_new_lo, (ch * C + i) * DV + v0 + col, v_new);
        const float b = i < n ? expf(s.gamma[n - 1] - s.gamma[i]) : 0.0f;
        store_split(s.Vb, s.Vb_lo, i * ldSo + col, b * v_new);
        if (!kStore && i < n && v0 + col < d.dv)
          out[(int64_t(t0 + i) * d.Hv + h) * d.dv + v0 + col] =
              from_float<T>(s.O_local[i * ldS + col] + s.F[(C + i) * ldS + col]);
      }
      for (int e = blk.thread; e < DK * BV; e += blk.threads) s.S[(e / BV) * ldS + e % BV] *= a_last;
      blk.sync();
      block_product<true, false>(blk, DK, BV, C, exact(s.K, ldk), split(s.Vb, s.Vb_lo, ldSo), s.S,
                                ldS, true);
      blk.sync();
    }
    if (!kStore && final_state)
      for (int e = blk.thread; e < DK * BV; e += blk.threads) {
        const int m = e / BV, c = e % BV;
        if (m < d.dk && v0 + c < d.dv)
          final_state[pair * state + int64_t(m) * d.dv + v0 + c] = s.S[m * ldS + c];
      }
  }
};

}  // namespace deltatune::cuda
