// The gated delta rule's backward kernels (ops/cuda/delta_rule.cu says how they fit together;
// the equations are derived in ops/cpu/delta_rule_chunked.cpp, "Backward of one chunk"):
//   ReverseBody      one block per (sequence, value head, BV columns), the chunks in reverse: the
//                    gradient of the state, and dV' of every chunk.
//   BothRecurrencesBody  the backward's recomputing forward recurrence and ReverseBody in one
//                    launch, side by side (they are independent).
//   ChunkGradBody    one block per (chunk, value head), all in parallel: every other gradient.
//   ReduceHeadsBody  sums dq, dk over the value heads that share a key head (Hv > Hk only).
#pragma once

#include "ops/cuda/delta_rule_forward.cuh"

namespace deltatune::cuda {

// One block per (sequence, value head, BV columns of dS), chunks from the last to the first. With
// dS the gradient of the state leaving the chunk (d_final_state, or zero, after the last one):
//   dV' = Pᵀ dO + diag(b) K dS               (Pᵀ dO from PrepBody: dV_local)
//   dS ← a_last dS + Qᵀ (diag(a) dO) − Wᵀ dV'   (the gradient of the state entering the chunk)
// Stores dS (leaving) and dV' of every chunk for ChunkGradBody. Tensor cores: K dS, Qᵀ diag(a) dO
// and Wᵀ dV', with dS, diag(a) dO and dV' as bf16 hi + lo (dS stays float in shared memory):
// rounding dV' to bf16 alone gave dβ 2e-2 relative error on long, fast-forgetting sequences.
template <class T, int BV>
struct ReverseBody {
  static constexpr int C = kChunk<T>;
  Dims d;
  Table tab;
  const T *q, *k, *d_out;
  const float* d_final_state;
  float* d_initial_state;
  Workspace<T> ws;

  struct Smem {
    float *dS, *F, *dV_local, *gamma;
    T *dS_op, *dS_lo, *K, *Q, *W, *dO, *dOa, *dOa_lo, *dV_neg, *dV_neg_lo;
  };
  DT_HD static Smem carve(SmemCarver& c, const Dims& d) {
    const int ldk = d.DK + kPad<T>, ldS = BV + 4, ldSo = BV + kPad<T>;
    const int lo = kSplit<T> ? 1 : 0;
    Smem s;
    s.dS = c.take<float>(d.DK * ldS);
    s.F = c.take<float>(C * ldS);
    s.dV_local = c.take<float>(C * ldS);
    s.gamma = c.take<float>(C);
    s.dS_op = c.take<T>(d.DK * ldSo);
    s.dS_lo = lo ? c.take<T>(d.DK * ldSo) : nullptr;
    s.K = c.take<T>(C * ldk);
    s.Q = c.take<T>(C * ldk);
    s.W = c.take<T>(C * ldk);
    s.dO = c.take<T>(C * ldSo);
    s.dOa = c.take<T>(C * ldSo);
    s.dOa_lo = lo ? c.take<T>(C * ldSo) : nullptr;
    s.dV_neg = c.take<T>(C * ldSo);
    s.dV_neg_lo = lo ? c.take<T>(C * ldSo) : nullptr;
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
    const int64_t qk_row = int64_t(d.Hk) * d.dk, v_row = int64_t(d.Hv) * d.dv;

    for (int e = blk.thread; e < DK * BV; e += blk.threads) {
      const int m = e / BV, c = e % BV;
      s.dS[m * ldS + c] = d_final_state && m < d.dk && v0 + c < d.dv
                              ? d_final_state[pair * state + int64_t(m) * d.dv + v0 + c]
                              : 0.0f;
    }
    blk.sync();
    for (int c = tab.first[seq + 1] - 1; c >= tab.first[seq]; --c) {
      const int t0 = tab.t0[c], n = tab.len[c];
      const int64_t ch = int64_t(c) * d.Hv + h;
      const int64_t qk_at = (int64_t(t0) * d.Hk + kh) * d.dk;
      copy_tile_async(blk, s.K, ldk, C, DK, k + qk_at, qk_row, n, d.dk);
      copy_tile_async(blk, s.Q, ldk, C, DK, q + qk_at, qk_row, n, d.dk);
      copy_tile_async(blk, s.W, ldk, C, DK, ws.W + ch * C * DK, DK, C, DK);
      copy_tile_async(blk, s.dO, ldSo, C, BV, d_out + (int64_t(t0) * d.Hv + h) * d.dv + v0, v_row,
                      n, d.dv - v0 < BV ? d.dv - v0 : BV);
      copy_tile_async(blk, s.dV_local, ldS, C, BV, ws.dV_local + ch * C * DV + v0, DV, C, BV);
      for (int i = blk.thread; i < C; i += blk.threads) s.gamma[i] = ws.gamma[ch * C + i];
      for (int e = blk.thread; e < DK * BV; e += blk.threads) {
        const int m = e / BV, col = e % BV;
        const float x = s.dS[m * ldS + col];
        store_split(s.dS_op, s.dS_lo, m * ldSo + col, x);
        ws.d_states[ch * DK * DV + int64_t(m) * DV + v0 + col] = x;
      }
      async_wait();
      blk.sync();

      block_product<false, false>(blk, C, BV, DK, exact(s.K, ldk), split(s.dS_op, s.dS_lo, ldSo),
                                 s.F, ldS, false);
      for (int e = blk.thread; e < C * BV; e += blk.threads) {  // diag(a) dO
        const int i = e / BV, col = e % BV;
        const float a = i < n ? expf(s.gamma[i]) : 0.0f;
        store_split(s.dOa, s.dOa_lo, i * ldSo + col, a * to_float(s.dO[i * ldSo + col]));
      }
      blk.sync();
      const float a_last = expf(s.gamma[n - 1]);
      for (int e = blk.thread; e < C * BV; e += blk.threads) {
        const int i = e / BV, col = e % BV;
        const float b = i < n ? expf(s.gamma[n - 1] - s.gamma[i]) : 0.0f;
        const float dv_new = s.dV_local[i * ldS + col] + b * s.F[i * ldS + col];
        store_split(ws.dV_new, ws.dV_new_lo, (ch * C + i) * DV + v0 + col, dv_new);
        store_split(s.dV_neg, s.dV_neg_lo, i * ldSo + col, -dv_new);
      }
      for (int e = blk.thread; e < DK * BV; e += blk.threads) s.dS[(e / BV) * ldS + e % BV] *= a_last;
      blk.sync();
      block_product<true, false>(blk, DK, BV, C, exact(s.Q, ldk), split(s.dOa, s.dOa_lo, ldSo),
                                s.dS, ldS, true);
      blk.sync();
      block_product<true, false>(blk, DK, BV, C, exact(s.W, ldk),
                                split(s.dV_neg, s.dV_neg_lo, ldSo), s.dS, ldS, true);
      blk.sync();
    }
    if (d_initial_state)
      for (int e = blk.thread; e < DK * BV; e += blk.threads) {
        const int m = e / BV, c = e % BV;
        if (m < d.dk && v0 + c < d.dv)
          d_initial_state[pair * state + int64_t(m) * d.dv + v0 + c] = s.dS[m * ldS + c];
      }
  }
};

// The backward's two sequential passes in one launch. The forward recomputation (entry states
// and V') and the reverse pass (dS and dV') read only what PrepBody wrote, never each other's
// output, so their blocks run side by side, two per SM: z < value_blocks runs the forward
// recurrence, the rest the reverse one.
template <class T, int BV>
struct BothRecurrencesBody {
  RecurrenceBody<T, BV, true> forward;
  ReverseBody<T, BV> reverse;
  int value_blocks;

  static size_t smem_bytes(const Dims& d) {
    const size_t f = RecurrenceBody<T, BV, true>::smem_bytes(d);
    const size_t r = ReverseBody<T, BV>::smem_bytes(d);
    return f > r ? f : r;
  }
  DT_HD void operator()(const Block& blk, int seq, int h, int z, char* smem) const {
    if (z < value_blocks)
      forward(blk, seq, h, z, smem);
    else
      reverse(blk, seq, h, z - value_blocks, smem);
  }
};

// One block per (chunk, value head): every gradient that needs no other chunk, from the state S
// entering the chunk, dS (the gradient of the state leaving it), V' and dV'. With
// P = Q Kᵀ ⊙ M, D = dP ⊙ M, X = dO Sᵀ, Y = V' dSᵀ:
//   dP = dO V'ᵀ                      dΓ_i += Σ_j dP_ij P_ij, dΓ_j −= the same (j < i)
//   dq = D K + diag(a) X             dΓ_i += a_i q_i·X_i
//   dk = Dᵀ Q + diag(b) Y + ...      dΓ_j −= b_j k_j·Y_j, dΓ_last += Σ_j b_j k_j·Y_j + a_last <S,
//   dS> dB_w = Tᵀ (−dV' Sᵀ), dB_u = Tᵀ dV' dk += diag(β a) dB_w; dv = diag(β) dB_u; dβ_i = a_i
//   k_i·dB_w,i + v_i·dB_u,i + Σ_j dA_ij (k_i·k_j) M_ij dA = −(dB_w Wᵀ + dB_u Uᵀ) (i > j), dΓ_i +=
//   dA_ij A_ij, dΓ_j −= the same; Z = dA ⊙ β_i M dk += Z K + Zᵀ K;  dg = the reverse running sum of
//   dΓ inside the chunk.
// Fourteen tensor-core products. V', dV' and D enter as bf16 hi + lo; S, dS and the rest as bf16
// (shared memory has no room for more: 229 KB of the 227 KiB a block may have on a Hopper GPU at
// dk = dv = 128). Shared memory is reused phase by phase (each tile's comment says what it holds
// when).
// Σ S ⊙ dS over this thread's elements of the float [DK × DV] states, and dS into the operand
// tile dst (ld): 16-byte loads, four of each in flight a thread before any is used (the loop
// through scalar loads and shared stores waited for global memory at every element).
template <class T>
DT_HD float state_dot_and_copy(const Block& blk, const float* S, const float* dS, int DK, int DV,
                               T* dst, int ld) {
  constexpr int kBatch = 4;
  const int quads = DK * DV / 4;  // DV is a multiple of 16: a quad never straddles rows
  float part = 0.0f;
  for (int e0 = blk.thread; e0 < quads; e0 += kBatch * blk.threads) {
    float4 s[kBatch], ds[kBatch];
#pragma unroll
    for (int u = 0; u < kBatch; ++u) {
      const int e = e0 + u * blk.threads;
      if (e < quads) {
        s[u] = reinterpret_cast<const float4*>(S)[e];
        ds[u] = reinterpret_cast<const float4*>(dS)[e];
      }
    }
#pragma unroll
    for (int u = 0; u < kBatch; ++u) {
      const int e = e0 + u * blk.threads;
      if (e >= quads) continue;
      part += s[u].x * ds[u].x + s[u].y * ds[u].y + s[u].z * ds[u].z + s[u].w * ds[u].w;
      // One store of the four (ld is a multiple of 4: kPad).
      Quad{{ds[u].x, ds[u].y, ds[u].z, ds[u].w}}.store(dst + (4 * e / DV) * ld + 4 * e % DV);
    }
  }
  return part;
}

// kD > 0: dk = dv = kD known at compile time (PrepBody says why).
template <class T, int kD = 0>
struct ChunkGradBody {
  static constexpr int C = kChunk<T>;
  // 16 warps: one block per SM (its shared memory), so the block's own warps are all the SM has
  // to hide the latency of its products and phases (8 warps measured slower: docs/performance.md).
  static constexpr int kThreads = 512;
  Dims d;
  Table tab;
  const T *q, *k, *v, *d_out;
  const float* beta;
  T *dq, *dk, *dv;
  float *dg, *dbeta;
  Workspace<T> ws;

  struct Smem {
    float *gamma, *a, *b, *beta, *d_gamma, *d_beta, *t, *partial;
    T *Q;       // Q, then dB_w (operand)
    T *K;       // K
    T *O;       // dO, then dW = −dV' Sᵀ (operand), then W
    T *Vn;      // V', then v, then dB_u (operand)
    T *dVn, *dVn_lo;  // dV'
    char* S;    // V'.lo, then S, then dS (DK × DV), then dB_u (float), then U
    float* F;   // dq, then dk (C × D)
    float* G;   // P and dP (2 C×C), then V'.lo, then dB_w (C × D), then dA and K Kᵀ (2 C×C)
    T *CC, *CC_lo;  // D = dP ⊙ M (hi, lo), then T, then Z
  };
  DT_HD static Smem carve(SmemCarver& c, const Dims& d) {
    const int D = d.DK > d.DV ? d.DK : d.DV;
    const int ldD = D + kPad<T>, ldST = d.DV + kPad<T>, ldF = D + 4, ldf = C + 4;
    const int lo = kSplit<T> ? 1 : 0;
    const size_t s_bytes_state = size_t(d.DK) * ldST * sizeof(T);
    const size_t s_bytes_f = size_t(C) * ldF * sizeof(float);
    const size_t s_bytes_u = size_t(C) * ldD * sizeof(T);
    size_t s_bytes = s_bytes_state > s_bytes_f ? s_bytes_state : s_bytes_f;
    if (s_bytes_u > s_bytes) s_bytes = s_bytes_u;
    Smem s;
    s.gamma = c.take<float>(C);
    s.a = c.take<float>(C);
    s.b = c.take<float>(C);
    s.beta = c.take<float>(C);
    s.d_gamma = c.take<float>(C);
    s.d_beta = c.take<float>(C);
    s.t = c.take<float>(C);
    s.partial = c.take<float>(kThreads + 1);  // <S, dS> by warp (host: by thread), then the sum
    s.Q = c.take<T>(C * ldD);
    s.K = c.take<T>(C * ldD);
    s.O = c.take<T>(C * ldD);
    s.Vn = c.take<T>(C * ldD);
    s.dVn = c.take<T>(C * ldD);
    s.dVn_lo = lo ? c.take<T>(C * ldD) : nullptr;
    s.S = c.take<char>(int64_t(s_bytes));
    s.F = c.take<float>(C * ldF);
    s.G = c.take<float>(2 * C * ldf > C * ldF ? 2 * C * ldf : C * ldF);
    s.CC = c.take<T>(C * (C + kPad<T>));
    s.CC_lo = lo ? c.take<T>(C * (C + kPad<T>)) : nullptr;
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
    const int DK = kD ? kD : d.DK, DV = kD ? kD : d.DV, D = DK > DV ? DK : DV;
    const int dim_k = kD ? kD : d.dk, dim_v = kD ? kD : d.dv;
    const int ldD = D + kPad<T>, ldST = DV + kPad<T>, ldF = D + 4, ldf = C + 4, ldc = C + kPad<T>;
    const int t0 = tab.t0[chunk], n = tab.len[chunk], last = n - 1, kh = h / d.heads_per_key;
    const int64_t ch = int64_t(chunk) * d.Hv + h;
    const int64_t qk_row = int64_t(d.Hk) * dim_k, v_row = int64_t(d.Hv) * dim_v;
    const int64_t qk_at = (int64_t(t0) * d.Hk + kh) * dim_k;
    const int64_t v_at = (int64_t(t0) * d.Hv + h) * dim_v;
    T* S_op = reinterpret_cast<T*>(s.S);
    const float* S_ws = ws.states + ch * DK * DV;
    const float* dS_ws = ws.d_states + ch * DK * DV;
    const T* V_new_lo = ws.V_new_lo ? ws.V_new_lo + ch * C * DV : nullptr;
    T* Vn_lo_1 = V_new_lo ? reinterpret_cast<T*>(s.S) : nullptr;  // V'.lo while S is not loaded
    T* Vn_lo_2 = V_new_lo ? reinterpret_cast<T*>(s.G) : nullptr;  // V'.lo while G is free

    // Inputs of the chunk.
    // β and Γ first, into registers: issued after the tile copies, these loads queued behind
    // them, and the block's first barrier waited for all the tiles.
    const bool one_pass = blk.threads >= C;  // the GPU's blocks; the emulation loops below
    float beta_i = 0.0f, gamma_i = 0.0f;
    if (one_pass && blk.thread < C) {
      beta_i = blk.thread < n ? beta[int64_t(t0 + blk.thread) * d.Hv + h] : 0.0f;
      gamma_i = ws.gamma[ch * C + blk.thread];
    }
    // Three groups of copies in the order of use: Q and K (P), dO and V' (dP), dV' (dW, much
    // later), so that each product waits only for its own operands.
    copy_tile_async(blk, s.Q, ldD, C, DK, q + qk_at, qk_row, n, dim_k);
    copy_tile_async(blk, s.K, ldD, C, DK, k + qk_at, qk_row, n, dim_k);
    async_commit();
    copy_tile_async(blk, s.O, ldD, C, DV, d_out + v_at, v_row, n, dim_v);
    copy_tile_async(blk, s.Vn, ldD, C, DV, ws.V_new + ch * C * DV, DV, C, DV);
    if (Vn_lo_1) copy_tile_async(blk, Vn_lo_1, ldD, C, DV, V_new_lo, DV, C, DV);
    async_commit();
    copy_tile_async(blk, s.dVn, ldD, C, DV, ws.dV_new + ch * C * DV, DV, C, DV);
    if (s.dVn_lo) copy_tile_async(blk, s.dVn_lo, ldD, C, DV, ws.dV_new_lo + ch * C * DV, DV, C, DV);
    async_commit();
    for (int i = blk.thread; i < C; i += blk.threads) {
      s.beta[i] = one_pass ? beta_i : i < n ? beta[int64_t(t0 + i) * d.Hv + h] : 0.0f;
      s.gamma[i] = one_pass ? gamma_i : ws.gamma[ch * C + i];
      s.d_gamma[i] = 0.0f;
      s.d_beta[i] = 0.0f;
    }
    blk.sync();
    // a_i = exp(Γ_i), b_i = exp(Γ_last − Γ_i) inside the chunk, zero past its end (exponents ≤ 0).
    for (int i = blk.thread; i < C; i += blk.threads) {
      s.a[i] = i < n ? expf(s.gamma[i]) : 0.0f;
      s.b[i] = i < n ? expf(s.gamma[n - 1] - s.gamma[i]) : 0.0f;
    }
    async_wait_pending<2>();  // Q and K
    blk.sync();
    const Operand<T> Q = exact(s.Q, ldD), K = exact(s.K, ldD);
    const Operand<T> dV_new = split(s.dVn, s.dVn_lo, ldD);

    // P and dP, and their share of dΓ; D = dP ⊙ M into CC.
    float* P = s.G;
    float* dP = s.G + C * ldf;
    block_product<false, true>(blk, C, C, DK, Q, K, P, ldf, false);
    async_wait_pending<1>();  // dO and V'
    blk.sync();
    block_product<false, true>(blk, C, C, DV, exact(s.O, ldD), split(s.Vn, Vn_lo_1, ldD), dP, ldf,
                              false);
    blk.sync();
    for_each_quad(blk, C, C, [&](int i, int j) {
      Quad p = Quad::load(P + i * ldf + j), dm = Quad::load(dP + i * ldf + j);
      for (int u = 0; u < 4; ++u) {
        const float m = decay_mask(s.gamma, i, j + u, n), dp = dm.x[u];
        p.x[u] = j + u < i ? dp * p.x[u] * m : 0.0f;  // dP_ij P_ij (the diagonal cancels)
        dm.x[u] = dp * m;
      }
      p.store(P + i * ldf + j);
      dm.store_split(s.CC + i * ldc + j, lo_at(s.CC_lo, i * ldc + j));
    });
    blk.sync();
    row_sums(
        blk, C, C, [&](int i, int j) { return P[i * ldf + j] - P[j * ldf + i]; },
        [&](int i, float sum) { s.d_gamma[i] += sum; });
    const Operand<T> Dm = split(s.CC, s.CC_lo, ldc);

    // dq = D K + diag(a) X with X = dO Sᵀ.
    load_tile(blk, S_op, ldST, DK, DV, S_ws, DV, DK, DV);
    blk.sync();
    block_product<false, true>(blk, C, DK, DV, exact(s.O, ldD), exact(S_op, ldST), s.F, ldF, false);
    blk.sync();
    row_sums(
        blk, C, DK, [&](int i, int m) { return to_float(s.Q[i * ldD + m]) * s.F[i * ldF + m]; },
        [&](int i, float x) { s.d_gamma[i] += s.a[i] * x; });
    blk.sync();
    for_each_quad(blk, C, DK, [&](int i, int m) {
      float* f = s.F + i * ldF + m;
      (Quad::load(f) * s.a[i]).store(f);
    });
    blk.sync();
    block_product<false, false>(blk, C, DK, C, Dm, K, s.F, ldF, true);
    blk.sync();
    async_wait();  // dV' (store_qk ends with a barrier)
    store_qk(blk, s.F, ldF, n, t0, h, kh, dim_k, dq, 0);
    // dW = −dV' Sᵀ, as an operand into O's tile (dO is done).
    block_product<false, true>(blk, C, DK, DV, dV_new, exact(S_op, ldST), s.F, ldF, false);
    blk.sync();
    for_each_quad(blk, C, DK, [&](int i, int m) {
      (Quad::load(s.F + i * ldF + m) * -1.0f).store(s.O + i * ldD + m);
    });

    // dS into S's tile, and <S, dS> from the float states; then Y = V' dSᵀ.
    if (Vn_lo_2) copy_tile_async(blk, Vn_lo_2, ldD, C, DV, V_new_lo, DV, C, DV);
    {
      float part = state_dot_and_copy(blk, S_ws, dS_ws, DK, DV, S_op, ldST);
#if defined(__CUDA_ARCH__)
#pragma unroll
      for (int o = 16; o > 0; o /= 2) part += __shfl_xor_sync(0xffffffffu, part, o);
      if (blk.thread % 32 == 0) s.partial[blk.thread / 32] = part;  // one sum a warp
#else
      s.partial[blk.thread] = part;  // one a thread (also right for the simulation's warps)
#endif
    }
    async_wait();
    blk.sync();
    if (blk.thread == 0) {
#if defined(__CUDA_ARCH__)
      const int parts = (blk.threads + 31) / 32;
#else
      const int parts = blk.threads;
#endif
      float sum = 0.0f;
      for (int w = 0; w < parts; ++w) sum += s.partial[w];
      s.partial[kThreads] = sum;
    }
    block_product<false, true>(blk, C, DK, DV, split(s.Vn, Vn_lo_2, ldD), exact(S_op, ldST), s.F,
                              ldF, false);
    blk.sync();
    row_sums(
        blk, C, DK, [&](int j, int m) { return to_float(s.K[j * ldD + m]) * s.F[j * ldF + m]; },
        [&](int j, float y) {
          s.t[j] = s.b[j] * y;
          s.d_gamma[j] -= s.t[j];
        });
    blk.sync();
    for_each_quad(blk, C, DK, [&](int i, int m) {
      float* f = s.F + i * ldF + m;
      (Quad::load(f) * s.b[i]).store(f);
    });
    if (blk.thread < 32) {
      const float sum = first_warp_sum(blk, s.t, C);
      if (blk.thread == 0) s.d_gamma[last] += s.a[last] * s.partial[kThreads] + sum;
    }
    blk.sync();
    block_product<true, false>(blk, C, DK, C, Dm, Q, s.F, ldF, true);
    blk.sync();
    // v into V''s tile (V' is done) for dβ's v·dB_u below: read from global memory there, each
    // warp's row sums waited for it load after load.
    copy_tile_async(blk, s.Vn, ldD, C, DV, v + v_at, v_row, n, dim_v);

    // dB_w = Tᵀ dW into G, dB_u = Tᵀ dV' into S's space (float).
    copy_tile_async(blk, s.CC, ldc, C, C, ws.Tinv + ch * C * C, C, C, C);
    async_wait();
    blk.sync();
    float* dBw = s.G;
    float* dBu = reinterpret_cast<float*>(s.S);
    block_product<true, false>(blk, C, DK, C, exact(s.CC, ldc), exact(s.O, ldD), dBw, ldF, false);
    block_product<true, false>(blk, C, DV, C, exact(s.CC, ldc), dV_new, dBu, ldF, false);
    blk.sync();
    row_sums(
        blk, C, DK, [&](int i, int m) { return to_float(s.K[i * ldD + m]) * dBw[i * ldF + m]; },
        [&](int i, float kb) {
          s.d_gamma[i] += s.beta[i] * s.a[i] * kb;
          s.d_beta[i] += s.a[i] * kb;
        });
    row_sums(
        blk, C, DV, [&](int i, int c) { return to_float(s.Vn[i * ldD + c]) * dBu[i * ldF + c]; },
        [&](int i, float vb) { s.d_beta[i] += vb; });
    blk.sync();  // v read before dB_u replaces it
    for_each_quad(blk, C, DK, [&](int i, int m) {
      const Quad w = Quad::load(dBw + i * ldF + m);
      Quad f = Quad::load(s.F + i * ldF + m);
      for (int u = 0; u < 4; ++u) f.x[u] += s.beta[i] * s.a[i] * w.x[u];
      f.store(s.F + i * ldF + m);
      w.store(s.Q + i * ldD + m);
    });
    for_each_quad(blk, C, DV, [&](int i, int c) {
      const Quad x = Quad::load(dBu + i * ldF + c);
      x.store(s.Vn + i * ldD + c);
      if (i >= n) return;
      T* out = dv + v_at + i * v_row + c;
      if (quads_fit(dv))  // dim_v = DV = kD: whole quads
        (x * s.beta[i]).store(out);
      else
        for (int u = 0; u < 4 && c + u < dim_v; ++u) out[u] = from_float<T>(s.beta[i] * x.x[u]);
    });
    blk.sync();

    // dA = −(dB_w Wᵀ + dB_u Uᵀ) and K Kᵀ, into G; Z = dA ⊙ β_i M into CC.
    T* U_op = reinterpret_cast<T*>(s.S);
    copy_tile_async(blk, s.O, ldD, C, DK, ws.W + ch * C * DK, DK, C, DK);
    load_tile(blk, U_op, ldD, C, DV, ws.U + ch * C * DV, DV, C, DV);
    async_wait();
    blk.sync();
    float* dA = s.G;
    float* KK = s.G + C * ldf;
    block_product<false, true>(blk, C, C, DK, exact(s.Q, ldD), exact(s.O, ldD), dA, ldf, false);
    block_product<false, true>(blk, C, C, DK, K, K, KK, ldf, false);
    blk.sync();
    block_product<false, true>(blk, C, C, DV, exact(s.Vn, ldD), exact(U_op, ldD), dA, ldf, true);
    blk.sync();
    for_each_quad(blk, C, C, [&](int i, int j) {
      Quad term_gamma = Quad::load(dA + i * ldf + j), term_beta = Quad::load(KK + i * ldf + j), z;
      for (int u = 0; u < 4; ++u) {
        const float da = -term_gamma.x[u], kk = term_beta.x[u];
        term_gamma.x[u] = term_beta.x[u] = z.x[u] = 0.0f;
        if (j + u < i && i < n) {
          const float m = decay_mask(s.gamma, i, j + u, n), km = kk * m;
          term_gamma.x[u] = da * s.beta[i] * km;  // dA_ij A_ij
          term_beta.x[u] = da * km;
          z.x[u] = da * s.beta[i] * m;
        }
      }
      term_gamma.store(dA + i * ldf + j);
      term_beta.store(KK + i * ldf + j);
      z.store(s.CC + i * ldc + j);
    });
    blk.sync();
    row_sums(
        blk, C, C, [&](int i, int j) { return dA[i * ldf + j] - dA[j * ldf + i]; },
        [&](int i, float sum) { s.d_gamma[i] += sum; });
    row_sums(
        blk, C, C, [&](int i, int j) { return KK[i * ldf + j]; },
        [&](int i, float sum) { s.d_beta[i] += sum; });

    // dk += Z K + Zᵀ K; then dk, dβ and dg (the reverse running sum of dΓ) out.
    block_product<false, false>(blk, C, DK, C, exact(s.CC, ldc), K, s.F, ldF, true);
    blk.sync();
    block_product<true, false>(blk, C, DK, C, exact(s.CC, ldc), K, s.F, ldF, true);
    blk.sync();
    store_qk(blk, s.F, ldF, n, t0, h, kh, dim_k, dk, 1);
    for (int i = blk.thread; i < n; i += blk.threads) dbeta[int64_t(t0 + i) * d.Hv + h] = s.d_beta[i];
    if (blk.thread < 32)
      first_warp_reverse_cumsum(blk, s.d_gamma, n,
                                [&](int i, float sum) { dg[int64_t(t0 + i) * d.Hv + h] = sum; });
  }

  // Whether rows of kD elements from p on take whole quads, aligned (Quad::store).
  DT_HD static bool quads_fit(const T* p) {
    return kD > 0 && reinterpret_cast<uintptr_t>(p) % (4 * sizeof(T)) == 0;
  }

  // Rows of dq (which = 0) or dk (1): straight to the output when each key head has one value
  // head, else to this value head's rows in the workspace (ReduceHeadsBody sums them).
  DT_HD void store_qk(const Block& blk, const float* F, int ldF, int n, int t0, int h, int kh,
                      int dim_k, T* out, int which) const {
    if (quads_fit(out)) {  // dim_k = kD: whole quads
      for_each_quad(blk, n, kD, [&](int i, int m) {
        const Quad x = Quad::load(F + i * ldF + m);
        if (d.heads_per_key == 1)
          x.store(out + (int64_t(t0 + i) * d.Hk + kh) * kD + m);
        else
          x.store(ws.dqk_heads + (which * d.tokens + t0 + i) * d.Hv * kD + int64_t(h) * kD + m);
      });
      blk.sync();
      return;
    }
    for (int e = blk.thread; e < n * dim_k; e += blk.threads) {
      const int i = e / dim_k, m = e % dim_k;
      const float x = F[i * ldF + m];
      if (d.heads_per_key == 1)
        out[(int64_t(t0 + i) * d.Hk + kh) * dim_k + m] = from_float<T>(x);
      else
        ws.dqk_heads[(which * d.tokens + t0 + i) * d.Hv * dim_k + int64_t(h) * dim_k + m] = x;
    }
    blk.sync();
  }
};

// dq, dk [T, Hk, dk] = the sums over the value heads of each key head (Hv > Hk). V consecutive
// elements a thread (V = 4 where dk % 4 == 0: 16-byte loads of the float rows; one element at a
// time they ran at half the bandwidth), the value heads summed in order.
template <class T, int V>
struct ReduceHeadsBody {
  static_assert(V == 1 || V == 4, "one element or one 16-byte vector a thread");
  static constexpr int kPerBlock = 8 * kThreads * V;
  Dims d;
  const float* heads;
  T *dq, *dk;

  DT_HD static void load(const float* p, float (&x)[V]) {
#if defined(__CUDA_ARCH__)
    if constexpr (V == 4) {
      const float4 y = *reinterpret_cast<const float4*>(p);
      x[0] = y.x, x[1] = y.y, x[2] = y.z, x[3] = y.w;
    } else {
      x[0] = p[0];
    }
#else
    for (int i = 0; i < V; ++i) x[i] = p[i];
#endif
  }

  DT_HD void operator()(const Block& blk, int block, int, int, char*) const {
    const int64_t total = d.tokens * d.Hk * d.dk, begin = int64_t(block) * kPerBlock;
    const int64_t end = begin + kPerBlock < total ? begin + kPerBlock : total;
    const int64_t dk_heads = d.tokens * d.Hv * d.dk;
    for (int64_t e = begin + int64_t(V) * blk.thread; e < end; e += int64_t(V) * blk.threads) {
      const int64_t row = e / d.dk, t = row / d.Hk;  // (token, key head) rows of dk elements
      const int m = int(e - row * d.dk), kh = int(row - t * d.Hk);
      const float* at = heads + (t * d.Hv + int64_t(kh) * d.heads_per_key) * d.dk + m;
      float sq[V] = {}, sk[V] = {};
      for (int r = 0; r < d.heads_per_key; ++r, at += d.dk) {
        float xq[V], xk[V];
        load(at, xq);
        load(at + dk_heads, xk);
#pragma unroll
        for (int i = 0; i < V; ++i) sq[i] += xq[i], sk[i] += xk[i];
      }
#pragma unroll
      for (int i = 0; i < V; ++i) {
        dq[e + i] = from_float<T>(sq[i]);
        dk[e + i] = from_float<T>(sk[i]);
      }
    }
  }
};

}  // namespace deltatune::cuda
