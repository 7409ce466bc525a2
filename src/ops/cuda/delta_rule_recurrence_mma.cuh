// The gated delta rule's sequential kernels with the state in registers (bf16 on the GPU only;
// ops/cuda/delta_rule.cu dispatches them, and runs RecurrenceBody / ReverseBody of
// delta_rule_forward.cuh / delta_rule_backward.cuh for float and in the host emulation, where the
// tests check the same equations):
//   RecurrenceMmaBody  the forward recurrence (kStore: the backward's recomputation)
//   ReverseMmaBody     the backward's reverse pass
//   BothRecurrencesMmaBody  the two of the backward in one launch
//
// Why. In the block_tile.cuh versions each chunk is a cp.async round trip, then products through
// shared memory on 8 warps that own a 16- or 32-column slice together, with 4 barriers between
// them: ~10 µs a chunk, mostly waiting (docs/performance.md). Here each warp owns 16 columns of
// the state for the whole sequence, as mma.sync accumulators: the transposed state Sᵀ [16 × dk]
// is 16 C tiles of 16×8, and, laid side by side, they are exactly the A operand of the next
// product (mma_sync.cuh), so a chunk's three products run back to back in registers with no
// barrier between them. The chunk's tiles (W, K, Q̃, U, ...) are shared by the block's warps
// (its value columns) and copied with cp.async one chunk ahead (two stages), so the copy of chunk
// c + 1 overlaps the products of chunk c: two barriers a chunk, none inside the products.
// Accuracy as in the block_tile.cuh versions: the state (and dS), V', diag(b) V', dV' and
// diag(a) dO enter the products as bf16 hi + lo (two mma each), Q̃ as hi + lo, W, K, Q as bf16.
#pragma once

#include "ops/cuda/delta_rule_backward.cuh"
#include "ops/cuda/mma_sync.cuh"

namespace deltatune::cuda {

// Tile sizes of the register-state kernels: bf16 chunks of 64 tokens, the key dim padded to 128
// (dk ≤ 128; zero columns past dk), 272-byte rows so that ldmatrix's 8 rows hit distinct banks.
struct MmaRecurrenceTiles {
  static constexpr int C = kChunk<bf16>;
  static constexpr int kDK = 128;  // kDeltaRuleCudaMaxHeadDim (checked in delta_rule.cu)
  static constexpr int kLd = kDK + 8;
  static_assert(C == 64, "the register-state kernels assume 64-token chunks");
};


// The split of the key dim over KS warps (KS = 1 or 2): warp w of a block owns state columns
// 16 (w / KS) .. +15 of the block's and key rows dk0 = (128 / KS)(w % KS) .. +128 / KS − 1 of them.
// A product over the key dim (Sᵀ Wᵀ, Sᵀ Q̃ᵀ, dSᵀ Kᵀ) is then a sum of KS partial products: each
// warp adds its partner's through shared memory (a barrier of the pair alone, no block barrier).
// Both warps then hold the whole product (a + b == b + a: the same bits), and each updates its own
// key rows. KS = 2 halves each warp's chain of dependent products per chunk (the chunk's latency)
// for one exchange of 4 KiB.
template <int KS>
struct KeySplit {
  static constexpr int kTiles = 16 / KS;  // 8-column C tiles of the state a warp holds
  static constexpr int kRows = 128 / KS;  // key rows a warp owns
  int group, part, dk0;
  DT_HD explicit KeySplit(int warp) : group(warp / KS), part(warp % KS), dk0(kRows * (warp % KS)) {}
  // Row tiles j of a 16 × C product this warp writes out (the pair writes half each).
  DT_HD bool writes(int j) const { return KS == 1 || j / (8 / KS) == part; }
  // x += the partner's partial of the 16 × C product x (8 C tiles), through xch (this block's
  // exchange area: 1024 floats per warp).
  DT_HD void add_partner(float (&x)[8][4], float* xch, int warp, int lane) const {
    if constexpr (KS == 2) {
      float* mine = xch + warp * 1024;
      const float* theirs = xch + (warp ^ 1) * 1024;
#pragma unroll
      for (int j = 0; j < 8; ++j)
#pragma unroll
        for (int r = 0; r < 4; ++r) mine[(j * 4 + r) * 32 + lane] = x[j][r];
      mma::named_barrier(1 + group, 64);
#pragma unroll
      for (int j = 0; j < 8; ++j)
#pragma unroll
        for (int r = 0; r < 4; ++r) x[j][r] += theirs[(j * 4 + r) * 32 + lane];
      // No second barrier: each area is written once a chunk, and the next chunk starts after a
      // block barrier.
    }
  }
};

// exp(x) for a token inside the chunk, 0 past its end, without a branch: the exponential is taken
// either way (of 0 past the end) and then selected, so the epilogues compile to straight-line
// code; a branch around each one cost ~25 instructions an element (docs/performance.md).
DT_HD float exp_within(bool inside, float x) {
  const float e = expf(inside ? x : 0.0f);
  return inside ? e : 0.0f;
}

// b_i = exp(Γ_last − Γ_i) of the tokens i = 8j + 2q + e (e = 0, 1) of a lane's C fragments, zero
// past the chunk's end: one exponential a token, shared by the fragment's two columns.
DT_HD void decays_to_end(const float* gamma, int n, int q, float (&b)[8][2]) {
  const float gamma_last = gamma[n - 1];
#pragma unroll
  for (int j = 0; j < 8; ++j)
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const int i = 8 * j + 2 * q + e;
      b[j][e] = exp_within(i < n, gamma_last - gamma[i]);
    }
}

// The sequential kernels' shared memory: two pipeline stages of a chunk's tiles (Body::carve lays
// out one), then the area where a warp pair exchanges partial products (Body::kExchange floats).
// A stage is found at an offset from the shared base: its pointers stay in the shared space
// (selecting between two stages' pointers made the plain loads through them generic, LD not LDS)
// and in registers (a reference to one of two structs would put them in local memory).
template <class Body>
struct TwoStages {
  static size_t bytes() { return 2 * stage_bytes() + size_t(Body::kExchange) * sizeof(float); }
  DT_HD static size_t stage_bytes() {  // a multiple of 128: where a second carve would start
    SmemCarver c{nullptr};
    Body::carve(c);
    return (c.used + 127) / 128 * 128;
  }
  DT_HD static typename Body::Stage stage(char* smem, int i) {
    SmemCarver c{smem + i * stage_bytes()};
    return Body::carve(c);
  }
  DT_HD static float* exchange(char* smem) {
    return reinterpret_cast<float*>(smem + 2 * stage_bytes());
  }
};

// One block of NW·KS warps per (sequence, value head, 16·NW state columns) (KeySplit). Per chunk,
// with Sᵀ the warp's slice of the state entering it:
//   V'ᵀ = Uᵀ − Sᵀ Wᵀ,   Oᵀ = O_localᵀ + Sᵀ Q̃ᵀ (forward),   Sᵀ ← a_last Sᵀ + (diag(b) V')ᵀ K
// (the equations of RecurrenceBody, transposed so that the state is the A operand throughout).
template <int NW, bool kStore, int KS>
struct RecurrenceMmaBody {
  static constexpr int C = MmaRecurrenceTiles::C, kDK = MmaRecurrenceTiles::kDK;
  static constexpr int kLd = MmaRecurrenceTiles::kLd;
  static constexpr int kThreads = 32 * NW * KS, kCols = 16 * NW, kLdF = kCols + 4;
  static constexpr int kTiles = KeySplit<KS>::kTiles;
  Dims d;
  Table tab;
  const bf16* k;
  const float* initial_state;
  bf16* out;
  float* final_state;
  Workspace<bf16> ws;

  struct Stage {
    bf16 *W, *K, *Qt, *Qt_lo;
    float *U, *O_local, *gamma;
  };
  DT_HD static Stage carve(SmemCarver& c) {
    Stage s;
    s.W = c.take<bf16>(C * kLd);
    s.K = c.take<bf16>(C * kLd);
    s.Qt = kStore ? nullptr : c.take<bf16>(C * kLd);
    s.Qt_lo = kStore ? nullptr : c.take<bf16>(C * kLd);
    s.U = c.take<float>(C * kLdF);
    s.O_local = kStore ? nullptr : c.take<float>(C * kLdF);
    s.gamma = c.take<float>(C);
    return s;
  }
  // After the two stages, the exchange area (KS = 2: 1024 floats per warp and product exchanged).
  static constexpr int kExchange = KS == 1 ? 0 : NW * KS * 1024 * (kStore ? 1 : 2);
  using Stages = TwoStages<RecurrenceMmaBody>;
  static size_t smem_bytes() { return Stages::bytes(); }

  // A chunk's tile over the key dim (C × kDK bf16) and one over the block's value columns
  // (C × kCols floats).
  DT_HD static void copy_keys(const Block& blk, bf16* dst, const bf16* src, int64_t stride, int rows,
                              int cols) {
    copy_fixed_tile_async<C, kDK, kLd, kThreads>(blk, dst, src, stride, rows, cols);
  }
  DT_HD static void copy_values(const Block& blk, float* dst, const float* src, int64_t stride,
                                int rows, int cols) {
    copy_fixed_tile_async<C, kCols, kLdF, kThreads>(blk, dst, src, stride, rows, cols);
  }

  DT_HD void issue(const Block& blk, const Stage& s, int c, int h, int v0) const {
    const int t0 = tab.t0[c], n = tab.len[c], kh = h / d.heads_per_key;
    const int64_t ch = int64_t(c) * d.Hv + h;
    const int cols = d.DV - v0 < kCols ? d.DV - v0 : kCols;
    copy_keys(blk, s.W, ws.W + ch * C * d.DK, d.DK, C, d.DK);
    copy_keys(blk, s.K, k + (int64_t(t0) * d.Hk + kh) * d.dk, int64_t(d.Hk) * d.dk, n, d.dk);
    if (!kStore) {
      copy_keys(blk, s.Qt, ws.Qt + ch * C * d.DK, d.DK, C, d.DK);
      copy_keys(blk, s.Qt_lo, ws.Qt_lo + ch * C * d.DK, d.DK, C, d.DK);
      copy_values(blk, s.O_local, ws.O_local + ch * C * d.DV + v0, d.DV, C, cols);
    }
    copy_values(blk, s.U, ws.U + ch * C * d.DV + v0, d.DV, C, cols);
    copy_fixed_tile_async<1, C, C, kThreads>(blk, s.gamma, ws.gamma + ch * C, C, 1, C);
    async_commit();
  }

  DT_HD void operator()(const Block& blk, int seq, int h, int vb, char* smem) const {
    const int lane = blk.thread & 31, warp = blk.thread >> 5, g = lane >> 2, q = lane & 3;
    const KeySplit<KS> split(warp);
    const int v0 = vb * kCols, col0 = 16 * split.group;  // the block's first column; the warp's
    const bool active = v0 + col0 < d.DV;
    const int64_t pair = int64_t(seq) * d.Hv + h, state = int64_t(d.dk) * d.dv;

    // Sᵀ: S[j][r] = S(m = dk0 + 8j + 2q + r % 2, column v0 + col0 + g + 8 (r / 2)).
    float S[kTiles][4];
#pragma unroll
    for (int j = 0; j < kTiles; ++j)
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int m = split.dk0 + 8 * j + 2 * q + (r & 1), v = v0 + col0 + g + 8 * (r >> 1);
        S[j][r] = initial_state && m < d.dk && v < d.dv
                      ? initial_state[pair * state + int64_t(m) * d.dv + v]
                      : 0.0f;
      }
    const int first = tab.first[seq], end = tab.first[seq + 1];
    if (first < end) issue(blk, Stages::stage(smem, 0), first, h, v0);
    for (int c = first; c < end; ++c) {
      const int now = (c - first) & 1;
      if (c + 1 < end) {
        issue(blk, Stages::stage(smem, now ^ 1), c + 1, h, v0);
        async_wait_pending<1>();  // all but the next chunk's copies
      } else {
        async_wait();
      }
      blk.sync();
      if (active)
        step(Stages::stage(smem, now), Stages::exchange(smem), c, h, v0, col0, split, warp, lane,
             S);
      blk.sync();  // every warp is done with this stage before the next chunk's copy reuses it
    }
    if (!kStore && final_state && active)
#pragma unroll
      for (int j = 0; j < kTiles; ++j)
#pragma unroll
        for (int r = 0; r < 4; ++r) {
          const int m = split.dk0 + 8 * j + 2 * q + (r & 1), v = v0 + col0 + g + 8 * (r >> 1);
          if (m < d.dk && v < d.dv) final_state[pair * state + int64_t(m) * d.dv + v] = S[j][r];
        }
  }

  DT_HD void step(const Stage& s, float* xch, int c, int h, int v0, int col0,
                  const KeySplit<KS>& split, int warp, int lane, float (&S)[kTiles][4]) const {
    const int g = lane >> 2, q = lane & 3, dk0 = split.dk0;
    const int t0 = tab.t0[c], n = tab.len[c];
    const int64_t ch = int64_t(c) * d.Hv + h;
    // Stores address this lane's first column of the chunk plus 32-bit offsets (row · stride +
    // 8 (r / 2)): 64-bit index arithmetic per element was a large share of the instructions.
    const int lane_col = v0 + col0 + g;
    if (kStore) {  // the state entering the chunk, for ChunkGradBody (padded rows and columns too)
      float* const state = ws.states + ch * d.DK * d.DV + lane_col;
#pragma unroll
      for (int j = 0; j < kTiles; ++j)
#pragma unroll
        for (int r = 0; r < 4; ++r) {
          const int m = dk0 + 8 * j + 2 * q + (r & 1);
          if (m < d.DK) state[m * d.DV + 8 * (r >> 1)] = S[j][r];
        }
    }

    // P = Sᵀ Wᵀ [16 columns × C tokens], over this warp's key rows 16 at a time. The products into
    // one accumulator are ordered 4 apart (hi terms of 4 tiles, then their lo terms), so that each
    // waits on nothing: consecutive ones into the same tile would stall. S's hi + lo fragments are
    // kept for O = Sᵀ Q̃ᵀ (forward), which is off the state's chain: its products run between the
    // update's below, filling their waits.
    constexpr int kSlices = kTiles / 2;  // 16-row slices of this warp's key rows
    float P[8][4] = {};
    mma::FragA s_hi[kSlices], s_lo[kSlices];
#pragma unroll
    for (int ks = 0; ks < kSlices; ++ks) {
      const int k0 = dk0 + 16 * ks;
      if (k0 >= d.DK) break;
      mma::split_a(S[2 * ks], S[2 * ks + 1], 1.0f, s_hi[ks], s_lo[ks]);
#pragma unroll
      for (int p = 0; p < C / 16; p += 2) {
        mma::FragB w[4];
        mma::load_b_of_transposed(w[0], w[1], s.W, kLd, k0, 16 * p, lane);
        mma::load_b_of_transposed(w[2], w[3], s.W, kLd, k0, 16 * p + 16, lane);
#pragma unroll
        for (int t = 0; t < 4; ++t) mma::mma(P[2 * p + t], s_hi[ks], w[t]);
#pragma unroll
        for (int t = 0; t < 4; ++t) mma::mma(P[2 * p + t], s_lo[ks], w[t]);
      }
    }
    split.add_partner(P, xch, warp, lane);

    // V' = U − P (stored for the backward) and diag(b) V' in place of P.
    const float gamma_last = s.gamma[n - 1];
    float b[8][2];
    decays_to_end(s.gamma, n, q, b);
    const int64_t at_chunk = ch * C * d.DV + lane_col;
    bf16* const v_new_hi = ws.V_new + at_chunk;
    bf16* const v_new_lo = ws.V_new_lo ? ws.V_new_lo + at_chunk : nullptr;
#pragma unroll
    for (int j = 0; j < 8; ++j)
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int i = 8 * j + 2 * q + (r & 1);
        const float v_new = s.U[i * kLdF + col0 + g + 8 * (r >> 1)] - P[j][r];
        if (kStore && split.writes(j))
          store_split(v_new_hi, v_new_lo, i * d.DV + 8 * (r >> 1), v_new);
        P[j][r] = i < n ? b[j][r & 1] * v_new : 0.0f;
      }

    // O += S's key slice ks times Q̃ᵀ (hi · hi, lo · hi, hi · lo), for every token tile.
    float O[8][4] = {};
    auto output_products = [&](int ks) {
      if constexpr (kStore) return;
      const int k0 = dk0 + 16 * ks;
#pragma unroll
      for (int p = 0; p < C / 16 && k0 < d.DK; ++p) {
        mma::FragB q0, q1, l0, l1;
        mma::load_b_of_transposed(q0, q1, s.Qt, kLd, k0, 16 * p, lane);
        mma::load_b_of_transposed(l0, l1, s.Qt_lo, kLd, k0, 16 * p, lane);
        mma::mma(O[2 * p], s_hi[ks], q0);
        mma::mma(O[2 * p + 1], s_hi[ks], q1);
        mma::mma(O[2 * p], s_lo[ks], q0);
        mma::mma(O[2 * p + 1], s_lo[ks], q1);
        mma::mma(O[2 * p], s_hi[ks], l0);
        mma::mma(O[2 * p + 1], s_hi[ks], l1);
      }
    };

    // Sᵀ ← a_last Sᵀ + (diag(b) V')ᵀ K on this warp's key rows, over the chunk's tokens, with
    // the output's products between.
    const float a_last = expf(gamma_last);
#pragma unroll
    for (int j = 0; j < kTiles; ++j)
#pragma unroll
      for (int r = 0; r < 4; ++r) S[j][r] *= a_last;
#pragma unroll
    for (int ks = 0; ks < C / 16; ++ks) {
      mma::FragA hi, lo;
      mma::split_a(P[2 * ks], P[2 * ks + 1], 1.0f, hi, lo);
#pragma unroll
      for (int p = 0; p < kTiles / 2; p += 2) {
        const int n0 = dk0 + 16 * p;
        if (n0 >= d.DK) break;  // DK is a multiple of 16; n0 + 16 past it multiplies zeros
        mma::FragB b[4];
        mma::load_b(b[0], b[1], s.K, kLd, 16 * ks, n0, lane);
        mma::load_b(b[2], b[3], s.K, kLd, 16 * ks, n0 + 16, lane);
#pragma unroll
        for (int t = 0; t < 4; ++t) mma::mma(S[2 * p + t], hi, b[t]);
#pragma unroll
        for (int t = 0; t < 4; ++t) mma::mma(S[2 * p + t], lo, b[t]);
      }
      if (ks < kSlices) output_products(ks);
    }
#pragma unroll
    for (int ks = C / 16; ks < kSlices; ++ks) output_products(ks);
    if (kStore) return;

    // The output: O_local + O, the pair's partials summed.
    split.add_partner(O, xch + NW * KS * 1024, warp, lane);
    bf16* const out_lane = out + (int64_t(t0) * d.Hv + h) * d.dv + lane_col;
    const int out_row = d.Hv * d.dv;
#pragma unroll
    for (int j = 0; j < 8; ++j)
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int i = 8 * j + 2 * q + (r & 1), col = col0 + g + 8 * (r >> 1);
        if (split.writes(j) && i < n && v0 + col < d.dv)
          out_lane[i * out_row + 8 * (r >> 1)] =
              from_float<bf16>(s.O_local[i * kLdF + col] + O[j][r]);
      }
  }
};

// The reverse pass of ReverseBody with dSᵀ [16 columns × dk] in registers (split as
// RecurrenceMmaBody's state), chunks from the last:
//   Xᵀ = dSᵀ Kᵀ,  dV'ᵀ = dV_localᵀ + Xᵀ diag(b),
//   dSᵀ ← a_last dSᵀ + (diag(a) dO)ᵀ Q − dV'ᵀ W
// storing dS (leaving each chunk) and dV' for ChunkGradBody.
template <int NW, int KS>
struct ReverseMmaBody {
  static constexpr int C = MmaRecurrenceTiles::C, kDK = MmaRecurrenceTiles::kDK;
  static constexpr int kLd = MmaRecurrenceTiles::kLd;
  static constexpr int kThreads = 32 * NW * KS, kCols = 16 * NW, kLdF = kCols + 4;
  static constexpr int kLdO = kCols + 8, kTiles = KeySplit<KS>::kTiles;
  Dims d;
  Table tab;
  const bf16 *q, *k, *d_out;
  const float* d_final_state;
  float* d_initial_state;
  Workspace<bf16> ws;

  struct Stage {
    bf16 *K, *Q, *W, *dO;
    float *dV_local, *gamma;
  };
  DT_HD static Stage carve(SmemCarver& c) {
    Stage s;
    s.K = c.take<bf16>(C * kLd);
    s.Q = c.take<bf16>(C * kLd);
    s.W = c.take<bf16>(C * kLd);
    s.dO = c.take<bf16>(C * kLdO);
    s.dV_local = c.take<float>(C * kLdF);
    s.gamma = c.take<float>(C);
    return s;
  }
  static constexpr int kExchange = KS == 1 ? 0 : NW * KS * 1024;
  using Stages = TwoStages<ReverseMmaBody>;
  static size_t smem_bytes() { return Stages::bytes(); }

  DT_HD static void copy_keys(const Block& blk, bf16* dst, const bf16* src, int64_t stride, int rows,
                              int cols) {  // as RecurrenceMmaBody's
    copy_fixed_tile_async<C, kDK, kLd, kThreads>(blk, dst, src, stride, rows, cols);
  }

  DT_HD void issue(const Block& blk, const Stage& s, int c, int h, int v0) const {
    const int t0 = tab.t0[c], n = tab.len[c], kh = h / d.heads_per_key;
    const int64_t ch = int64_t(c) * d.Hv + h;
    const int64_t qk_at = (int64_t(t0) * d.Hk + kh) * d.dk, qk_row = int64_t(d.Hk) * d.dk;
    copy_keys(blk, s.K, k + qk_at, qk_row, n, d.dk);
    copy_keys(blk, s.Q, q + qk_at, qk_row, n, d.dk);
    copy_keys(blk, s.W, ws.W + ch * C * d.DK, d.DK, C, d.DK);
    copy_fixed_tile_async<C, kCols, kLdO, kThreads>(
        blk, s.dO, d_out + (int64_t(t0) * d.Hv + h) * d.dv + v0, int64_t(d.Hv) * d.dv, n,
        d.dv - v0 < kCols ? d.dv - v0 : kCols);
    copy_fixed_tile_async<C, kCols, kLdF, kThreads>(blk, s.dV_local,
                                                    ws.dV_local + ch * C * d.DV + v0, d.DV, C,
                                                    d.DV - v0 < kCols ? d.DV - v0 : kCols);
    copy_fixed_tile_async<1, C, C, kThreads>(blk, s.gamma, ws.gamma + ch * C, C, 1, C);
    async_commit();
  }

  DT_HD void operator()(const Block& blk, int seq, int h, int vb, char* smem) const {
    const int lane = blk.thread & 31, warp = blk.thread >> 5, g = lane >> 2, qq = lane & 3;
    const KeySplit<KS> split(warp);
    const int v0 = vb * kCols, col0 = 16 * split.group;
    const bool active = v0 + col0 < d.DV;
    const int64_t pair = int64_t(seq) * d.Hv + h, state = int64_t(d.dk) * d.dv;

    float dS[kTiles][4];  // dSᵀ, laid out as RecurrenceMmaBody's S
#pragma unroll
    for (int j = 0; j < kTiles; ++j)
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int m = split.dk0 + 8 * j + 2 * qq + (r & 1), v = v0 + col0 + g + 8 * (r >> 1);
        dS[j][r] = d_final_state && m < d.dk && v < d.dv
                       ? d_final_state[pair * state + int64_t(m) * d.dv + v]
                       : 0.0f;
      }
    const int first = tab.first[seq], last = tab.first[seq + 1] - 1;
    if (last >= first) issue(blk, Stages::stage(smem, 0), last, h, v0);
    for (int c = last; c >= first; --c) {
      const int now = (last - c) & 1;
      if (c > first) {
        issue(blk, Stages::stage(smem, now ^ 1), c - 1, h, v0);
        async_wait_pending<1>();  // all but the next chunk's copies
      } else {
        async_wait();
      }
      blk.sync();
      if (active)
        step(Stages::stage(smem, now), Stages::exchange(smem), c, h, v0, col0, split, warp, lane,
             dS);
      blk.sync();
    }
    if (d_initial_state && active)
#pragma unroll
      for (int j = 0; j < kTiles; ++j)
#pragma unroll
        for (int r = 0; r < 4; ++r) {
          const int m = split.dk0 + 8 * j + 2 * qq + (r & 1), v = v0 + col0 + g + 8 * (r >> 1);
          if (m < d.dk && v < d.dv)
            d_initial_state[pair * state + int64_t(m) * d.dv + v] = dS[j][r];
        }
  }

  DT_HD void step(const Stage& s, float* xch, int c, int h, int v0, int col0,
                  const KeySplit<KS>& split, int warp, int lane, float (&dS)[kTiles][4]) const {
    const int g = lane >> 2, qq = lane & 3, dk0 = split.dk0;
    const int n = tab.len[c];
    const int64_t ch = int64_t(c) * d.Hv + h;
    const int lane_col = v0 + col0 + g;  // stores as RecurrenceMmaBody's
    float* const d_state = ws.d_states + ch * d.DK * d.DV + lane_col;
#pragma unroll
    for (int j = 0; j < kTiles; ++j)
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int m = dk0 + 8 * j + 2 * qq + (r & 1);
        if (m < d.DK) d_state[m * d.DV + 8 * (r >> 1)] = dS[j][r];
      }

    // X = dSᵀ Kᵀ [16 columns × C tokens], ordered as RecurrenceMmaBody's products.
    float X[8][4] = {};
#pragma unroll
    for (int ks = 0; ks < kTiles / 2; ++ks) {
      const int k0 = dk0 + 16 * ks;
      if (k0 >= d.DK) break;
      mma::FragA hi, lo;
      mma::split_a(dS[2 * ks], dS[2 * ks + 1], 1.0f, hi, lo);
#pragma unroll
      for (int p = 0; p < C / 16; p += 2) {
        mma::FragB b[4];
        mma::load_b_of_transposed(b[0], b[1], s.K, kLd, k0, 16 * p, lane);
        mma::load_b_of_transposed(b[2], b[3], s.K, kLd, k0, 16 * p + 16, lane);
#pragma unroll
        for (int t = 0; t < 4; ++t) mma::mma(X[2 * p + t], hi, b[t]);
#pragma unroll
        for (int t = 0; t < 4; ++t) mma::mma(X[2 * p + t], lo, b[t]);
      }
    }
    split.add_partner(X, xch, warp, lane);

    // dV' = dV_local + diag(b) X (stored), kept negated in X for the update.
    const float gamma_last = s.gamma[n - 1];
    float b[8][2];
    decays_to_end(s.gamma, n, qq, b);
    const int64_t at_chunk = ch * C * d.DV + lane_col;
    bf16* const dv_new_hi = ws.dV_new + at_chunk;
    bf16* const dv_new_lo = ws.dV_new_lo ? ws.dV_new_lo + at_chunk : nullptr;
#pragma unroll
    for (int j = 0; j < 8; ++j)
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int i = 8 * j + 2 * qq + (r & 1), col = col0 + g + 8 * (r >> 1);
        const float dv_new = s.dV_local[i * kLdF + col] + b[j][r & 1] * X[j][r];
        if (split.writes(j))
          store_split(dv_new_hi, dv_new_lo, i * d.DV + 8 * (r >> 1), dv_new);
        X[j][r] = -dv_new;
      }

    // dSᵀ ← a_last dSᵀ + (diag(a) dO)ᵀ Q − dV'ᵀ W on this warp's key rows, over the tokens.
    const float a_last = expf(gamma_last);
#pragma unroll
    for (int j = 0; j < kTiles; ++j)
#pragma unroll
      for (int r = 0; r < 4; ++r) dS[j][r] *= a_last;
#pragma unroll
    for (int ks = 0; ks < C / 16; ++ks) {
      // (diag(a) dO)ᵀ: dO's rows (tokens) scaled by a_i = exp(Γ_i), zero past the chunk's end.
      mma::FragA o, o_hi, o_lo;
      mma::load_a_of_transposed(o, s.dO, kLdO, col0, 16 * ks, lane);
#pragma unroll
      for (int x = 0; x < 4; ++x) {
        const int i = 16 * ks + 2 * qq + 8 * (x >> 1);
        const float a0 = exp_within(i < n, s.gamma[i]);
        const float a1 = exp_within(i + 1 < n, s.gamma[i + 1]);
        const float2 y = mma::unpack(o.r[x]);
        mma::split2(a0 * y.x, a1 * y.y, o_hi.r[x], o_lo.r[x]);
      }
      mma::FragA v_hi, v_lo;
      mma::split_a(X[2 * ks], X[2 * ks + 1], 1.0f, v_hi, v_lo);
#pragma unroll
      for (int p = 0; p < kTiles / 2; p += 2) {
        const int n0 = dk0 + 16 * p;
        if (n0 >= d.DK) break;
        mma::FragB bq[4], bw[4];
        mma::load_b(bq[0], bq[1], s.Q, kLd, 16 * ks, n0, lane);
        mma::load_b(bq[2], bq[3], s.Q, kLd, 16 * ks, n0 + 16, lane);
        mma::load_b(bw[0], bw[1], s.W, kLd, 16 * ks, n0, lane);
        mma::load_b(bw[2], bw[3], s.W, kLd, 16 * ks, n0 + 16, lane);
#pragma unroll
        for (int t = 0; t < 4; ++t) mma::mma(dS[2 * p + t], o_hi, bq[t]);
#pragma unroll
        for (int t = 0; t < 4; ++t) mma::mma(dS[2 * p + t], v_hi, bw[t]);
#pragma unroll
        for (int t = 0; t < 4; ++t) mma::mma(dS[2 * p + t], o_lo, bq[t]);
#pragma unroll
        for (int t = 0; t < 4; ++t) mma::mma(dS[2 * p + t], v_lo, bw[t]);
      }
    }
  }
};

// The backward's two sequential passes in one launch, as BothRecurrencesBody: z < value_blocks
// recomputes the forward (entry states and V'), the rest runs the reverse pass.
template <int NW, int KS>
struct BothRecurrencesMmaBody {
  static constexpr int kThreads = 32 * NW * KS;
  RecurrenceMmaBody<NW, true, KS> forward;
  ReverseMmaBody<NW, KS> reverse;
  int value_blocks;

  static size_t smem_bytes() {
    const size_t f = RecurrenceMmaBody<NW, true, KS>::smem_bytes();
    const size_t r = ReverseMmaBody<NW, KS>::smem_bytes();
    return f > r ? f : r;
  }
  DT_HD void operator()(const Block& blk, int seq, int h, int z, char* smem) const {
    if (z < value_blocks)
      forward(blk, seq, h, z, smem);
    else
      reverse(blk, seq, h, z - value_blocks, smem);
  }
};

}  // namespace deltatune::cuda
