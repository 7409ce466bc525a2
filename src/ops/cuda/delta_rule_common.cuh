// What the gated delta rule's CUDA kernels share: sizes, the chunk table, the workspace between
// kernels, the decays of a chunk and the triangular inverse. Notation of
// ops/cpu/delta_rule_chunked.cpp: for one chunk of n tokens (rows i, j), Γ_i = g_0 + ... + g_i,
// a_i = exp(Γ_i), b_i = exp(Γ_last − Γ_i), M_ij = exp(Γ_i − Γ_j) for i ≥ j, A, T = (I + A)^-1,
// W, U, V' = U − W S, P = Q Kᵀ ⊙ M.
#pragma once

#include <cmath>
#include <cstdint>

#include "ops/cuda/block_mma.cuh"

namespace deltatune::cuda {

constexpr int kThreads = 256;  // every kernel of the family runs 8 warps per block

// Sizes of one call. DK, DV: the head dims rounded up to 16 (tiles are zero-padded to them).
struct Dims {
  int Hk, Hv, dk, dv, DK, DV;
  int heads_per_key;  // Hv / Hk: value head h reads key head h / heads_per_key
  int64_t tokens;
  int num_chunks, num_sequences;
};

// The chunk table (ops/delta_rule_cuda.h): chunk c covers tokens t0[c] .. t0[c] + len[c] − 1;
// sequence s owns chunks first[s] .. first[s + 1] − 1.
struct Table {
  const int32_t *t0, *len, *first;
};

// Scratch passed between the kernels, per (chunk c, value head h) at index ch = c·Hv + h. Tiles
// are dense and zero-padded: C×DK, C×DV, C×C, DK×DV. T: the operand type of the products; *_lo:
// the rounding error of the tile before it (block_tile.cuh, Operand), bf16 only (else null).
template <class T>
struct Workspace {
  float* gamma;         // [ch][C]      Γ (for rows past the chunk's end, Γ_last)
  T* W;                 // [ch][C][DK]  W = T diag(β a) K
  float* U;             // [ch][C][DV]  U = T diag(β) V, float: V' = U − W S cancels much of U
  T *Qt, *Qt_lo;        // forward: [ch][C][DK]  Q̃ = diag(a) Q − P W
  float* O_local;       // forward: [ch][C][DV]  P U
  T* Tinv;              // backward: [ch][C][C]   T = (I + A)^-1
  float* dV_local;      // backward: [ch][C][DV]  Pᵀ dO
  float *states, *d_states;  // backward: [ch][DK][DV] the state entering chunk c, and the
                             // gradient of the state leaving it
  T *V_new, *V_new_lo;       // backward: [ch][C][DV]  V'
  T *dV_new, *dV_new_lo;     // backward: [ch][C][DV]  dV'
  float* dqk_heads;          // backward, Hv > Hk: dq then dk per value head, [2][T][Hv][dk]
};

// Lays out (base == nullptr: only sizes) the workspace of a forward or a backward call.
template <class T>
Workspace<T> carve_workspace(const Dims& d, int C, bool backward, char* base, size_t* bytes) {
  size_t used = 0;
  auto take = [&](auto* type_tag, int64_t count) {
    using U = std::remove_pointer_t<decltype(type_tag)>;
    used = (used + 255) / 256 * 256;
    U* p = base && count > 0 ? reinterpret_cast<U*>(base + used) : nullptr;
    used += size_t(count) * sizeof(U);
    return p;
  };
  const int64_t ch = int64_t(d.num_chunks) * d.Hv;
  const int64_t lo = kSplit<T> ? 1 : 0;
  Workspace<T> w{};
  w.gamma = take((float*)nullptr, ch * C);
  w.W = take((T*)nullptr, ch * C * d.DK);
  w.U = take((float*)nullptr, ch * C * d.DV);
  if (!backward) {
    w.Qt = take((T*)nullptr, ch * C * d.DK);
    w.Qt_lo = take((T*)nullptr, lo * ch * C * d.DK);
    w.O_local = take((float*)nullptr, ch * C * d.DV);
  } else {
    w.Tinv = take((T*)nullptr, ch * C * C);
    w.dV_local = take((float*)nullptr, ch * C * d.DV);
    w.states = take((float*)nullptr, ch * d.DK * d.DV);
    w.d_states = take((float*)nullptr, ch * d.DK * d.DV);
    w.V_new = take((T*)nullptr, ch * C * d.DV);
    w.V_new_lo = take((T*)nullptr, lo * ch * C * d.DV);
    w.dV_new = take((T*)nullptr, ch * C * d.DV);
    w.dV_new_lo = take((T*)nullptr, lo * ch * C * d.DV);
    if (d.heads_per_key > 1) w.dqk_heads = take((float*)nullptr, 2 * d.tokens * d.Hv * d.dk);
  }
  *bytes = used;
  return w;
}

// For each row i < rows: done(i, Σ_{m < len} term(i, m)). On the GPU one warp per row, its lanes
// over m (consecutive lanes read consecutive elements: no bank conflicts, coalesced global reads,
// all loads of a row in flight at once), then a shuffle sum; lane 0 calls done. In the emulation
// one thread per row. Row i is always handled by the same thread, so two calls in a row may
// update the same per-row value without a barrier between them.
template <class Term, class Done>
DT_HD void row_sums(const Block& blk, int rows, int len, const Term& term, const Done& done) {
#if defined(__CUDA_ARCH__)
  const int warps = blk.threads / 32, warp = blk.thread / 32, lane = blk.thread % 32;
  for (int i = warp; i < rows; i += warps) {
    float sum = 0.0f;
    for (int m = lane; m < len; m += 32) sum += term(i, m);
#pragma unroll
    for (int o = 16; o > 0; o /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    if (lane == 0) done(i, sum);
  }
#else
  for (int i = blk.thread; i < rows; i += blk.threads) {
    float sum = 0.0f;
    for (int m = 0; m < len; ++m) sum += term(i, m);
    done(i, sum);
  }
#endif
}

// f(i, m) for every row i < rows and every fourth column m < cols (cols a multiple of 4): the
// elementwise passes over a float C × D tile take four neighbouring elements a call, through
// Quad's 16-byte shared loads and stores (rows of the tiles are multiples of 4 floats and 4 bf16
// long), a quarter of the instructions of one element at a time.
template <class F>
DT_HD void for_each_quad(const Block& blk, int rows, int cols, const F& f) {
  const int quads = cols / 4;
  for (int e = blk.thread; e < rows * quads; e += blk.threads) f(e / quads, 4 * (e % quads));
}

// Four neighbouring elements: one 16-byte (float) or 8-byte (bf16) access where aligned to it.
struct Quad {
  float x[4];
  DT_HD static Quad load(const float* p) {
    const float4 v = *reinterpret_cast<const float4*>(p);
    return {{v.x, v.y, v.z, v.w}};
  }
  DT_HD void store(float* p) const {
    *reinterpret_cast<float4*>(p) = make_float4(x[0], x[1], x[2], x[3]);
  }
  template <class T>
  DT_HD void store(T* p) const {
    struct alignas(4 * sizeof(T)) Four {
      T e[4];
    };
    *reinterpret_cast<Four*>(p) = Four{{from_float<T>(x[0]), from_float<T>(x[1]),
                                        from_float<T>(x[2]), from_float<T>(x[3])}};
  }
  DT_HD Quad operator*(float a) const { return {{a * x[0], a * x[1], a * x[2], a * x[3]}}; }
  // store_split (block_tile.cuh) of the four: hi, and (where lo) the rounding error of hi.
  template <class T>
  DT_HD void store_split(T* hi, T* lo) const {
    store(hi);
    if (!lo) return;
    Quad r;
    for (int u = 0; u < 4; ++u) r.x[u] = x[u] - to_float(from_float<T>(x[u]));
    r.store(lo);
  }
};
// The address of element at of a split tile's lo part, or null when it has none.
template <class T>
DT_HD T* lo_at(T* lo, int64_t at) {
  return lo ? lo + at : nullptr;
}

// Called by the block's first warp (threads 0-31) alone: Σ_{j < n} x[j], returned to every lane
// (lanes over j, then a shuffle sum; in the emulation thread 0 sums in order). One thread summing
// 64 shared values in order was a 2k-cycle chain that the whole block waited for.
DT_HD float first_warp_sum(const Block& blk, const float* x, int n) {
#if defined(__CUDA_ARCH__)
  const int lane = blk.thread % 32;
  float sum = 0.0f;
  for (int j = lane; j < n; j += 32) sum += x[j];
#pragma unroll
  for (int o = 16; o > 0; o /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  return sum;
#else
  (void)blk;
  float sum = 0.0f;
  for (int j = 0; j < n; ++j) sum += x[j];
  return sum;
#endif
}

// Called by the block's first warp alone: store(i, Σ_{k = i}^{n − 1} x[k]) for every i < n, the
// reverse running sum (on the GPU a shuffle scan over 32-element segments, the last first, each
// carrying the sum of those after it; in the emulation thread 0 in order).
template <class Store>
DT_HD void first_warp_reverse_cumsum(const Block& blk, const float* x, int n, const Store& store) {
#if defined(__CUDA_ARCH__)
  const int lane = blk.thread % 32;
  float carry = 0.0f;
  for (int base = (n - 1) / 32 * 32; base >= 0; base -= 32) {
    const int i = base + lane;
    float v = i < n ? x[i] : 0.0f;
#pragma unroll
    for (int o = 1; o < 32; o *= 2) {
      const float y = __shfl_down_sync(0xffffffffu, v, o);
      if (lane + o < 32) v += y;
    }
    v += carry;
    if (i < n) store(i, v);
    carry = __shfl_sync(0xffffffffu, v, 0);
  }
#else
  if (blk.thread != 0) return;  // (a simulated warp's other threads)
  float sum = 0.0f;
  for (int i = n - 1; i >= 0; --i) {
    sum += x[i];
    store(i, sum);
  }
#endif
}

// M_ij = exp(Γ_i − Γ_j) on and below the diagonal of rows inside the chunk, zero elsewhere: the
// exponent is formed as a difference, never as exp(Γ_i)·exp(−Γ_j), so it cannot overflow.
DT_HD float decay_mask(const float* gamma, int i, int j, int n) {
  return (j <= i && i < n) ? expf(gamma[i] - gamma[j]) : 0.0f;
}

// T = (I + A)^-1 for A strictly lower triangular [C × C] (zero on and above the diagonal, and in
// rows past the chunk's end), float: the UT transform of spec/gated_delta_rule.md. Column c of T
// solves (I + A) x = e_c by forward substitution, x_i = δ_ic − Σ_{j<i} A_ij x_j, the sum in the
// order j = 0, 1, ... as the CPU reference's. On the GPU one warp owns kCols columns at a time,
// lane ℓ rows ℓ, ℓ + 32, ... of each in registers, and substitutes right-looking: at step j, x_j
// is final; its owner lane broadcasts it (a shuffle) and every lane subtracts A_ij x_j from its
// rows (A_ij is zero for i ≤ j, so no lane needs a test). Steps before a group's first column
// change nothing (x_j = 0 there) and are skipped. No barrier: columns are independent. The former
// 16×16-block inverse took ~11k cycles a block over 8 barriers (a quarter of the chunk prep, by
// clock64 per phase, docs/performance.md); this one takes one pass of C steps a warp.
template <int C>
DT_HD void invert_unit_lower(const Block& blk, const float* A, int lda, float* T, int ldt) {
  static_assert(C % 32 == 0, "rows of 32 lanes");
#if defined(__CUDA_ARCH__)
  constexpr int R = C / 32, kCols = 4;  // rows a lane, columns a warp at a time
  const int warps = blk.threads / 32, warp = blk.thread / 32, lane = blk.thread % 32;
  for (int c0 = warp * kCols; c0 < C; c0 += warps * kCols) {
    float x[kCols][R];
#pragma unroll
    for (int k = 0; k < kCols; ++k)
#pragma unroll
      for (int r = 0; r < R; ++r) x[k][r] = lane + 32 * r == c0 + k ? 1.0f : 0.0f;
#pragma unroll
    for (int jb = 0; jb < R; ++jb) {  // x_j lives in slot jb of lane j − 32·jb
      const int first = c0 > 32 * jb ? c0 - 32 * jb : 0;
#pragma unroll 4
      for (int jl = first; jl < 32; ++jl) {
        const int j = 32 * jb + jl;
        float a[R];
#pragma unroll
        for (int r = 0; r < R; ++r) a[r] = A[(lane + 32 * r) * lda + j];
#pragma unroll
        for (int k = 0; k < kCols; ++k) {
          const float xj = __shfl_sync(0xffffffffu, x[k][jb], jl);
#pragma unroll
          for (int r = 0; r < R; ++r) x[k][r] -= a[r] * xj;
        }
      }
    }
#pragma unroll
    for (int k = 0; k < kCols; ++k)
#pragma unroll
      for (int r = 0; r < R; ++r) T[(lane + 32 * r) * ldt + c0 + k] = x[k][r];
  }
#else
  for (int c = blk.thread; c < C; c += blk.threads)
    for (int i = 0; i < C; ++i) {
      float x = i == c ? 1.0f : 0.0f;
      for (int j = c; j < i; ++j) x -= A[i * lda + j] * T[j * ldt + c];
      T[i * ldt + c] = i < c ? 0.0f : x;
    }
#endif
  blk.sync();
}

}  // namespace deltatune::cuda
