// The fast bf16 path of the causal GQA attention (ops/attention_cuda.h) for head dims 64, 128 and
// 256 on the GPU: FlashAttention-2's loop order with every accumulator in registers.
//   A block is 4 warps over 64 rows of its own side; each warp owns 16 rows and, for them, the
//   scores of a tile of the other side (product_nt) and the output rows (product_rn, the scores
//   or their gradients fed straight from registers, warp_mma.cuh). Shared memory holds the own
//   rows and one tile of each other-side operand; the next tile is copied asynchronously while
//   the current one is used, one operand behind the other (below). ~101 KiB a block at head dim
//   256, so two blocks share an SM.
//   forward  own queries, key tiles of 64:   S = Q Kᵀ, online softmax, O += P V
//   dQ       own queries, key tiles of 32:   dP = dO Vᵀ, S = Q Kᵀ, dS = P (dP − D), dQ += dS K
//   dK, dV   own keys, query tiles of 32 of one query head (float partials per head, summed over
//            the group after: SumGroupPartials), or of the kv head's only one; 8 warps, a dK warp
//            and a dV warp for each 16 keys ([16 × 256] float accumulators of both do not fit one
//            warp's registers), trading P and dPᵀ through shared memory (KeyValueGrad):
//                                  dK warp: Sᵀ = K Qᵀ, P;  dV warp: dPᵀ = V dOᵀ
//                                  dK warp: dK += (P ∘ (dPᵀ − D)) Q;  dV warp: dV += Pᵀ dO
// Deterministic: each output row is summed by one warp in a fixed order. Exponentials in base 2
// with the scale folded in.
// The generic kernels (attention.cu) remain the emulated path and the fallback for other shapes.
#pragma once

#include <cmath>

#include "ops/cuda/kernel_runner.cuh"
#include "ops/cuda/warp_mma.cuh"

namespace deltatune::attention_mma {

using bf16 = __nv_bfloat16;

constexpr int kWarps = 4, kThreads = 32 * kWarps, kRows = 16 * kWarps;  // own rows per block
constexpr float kLog2e = 1.4426950408889634f, kLn2 = 0.6931471805599453f;

struct Args {
  int H, Hkv, group;
  float scale, scale_log2;  // scale · log2(e)
  const int64_t* cu;
  int tiles_x;  // own-row tiles of the longest sequence
  const bf16 *q, *k, *v;
  int64_t ldq, ldkv;
  bf16* out;  // forward: [T, H, d]
  float* lse;
  const bf16* d_out;  // backward: [T, H, d]
  const float *lse_in, *D;
  bf16 *dq, *dk, *dv;
  // With groups of query heads (group > 1) the key-side kernels run one block per query head
  // (the group's heads in one block leave the first keys' blocks with group × the average work,
  // and the grid with too few blocks) and write float partials [T, H, d], which
  // sum_group_partials adds up per kv head in a fixed order; null when group == 1.
  float *dk_part, *dv_part;
};

// A padded tile of `rows` rows of head dim D, in bytes.
template <int D>
constexpr size_t tile_bytes(int rows) {
  return size_t(rows) * (D + 8) * sizeof(bf16);
}

#if defined(__CUDA_ARCH__)

// Where the C-fragment element e (0..3) of n-tile n sits in a warp's 16 × (8·NT) tile.
__device__ __forceinline__ int frag_row(int lane, int e) { return lane / 4 + (e >> 1) * 8; }
__device__ __forceinline__ int frag_col(int lane, int n, int e) { return n * 8 + 2 * (lane % 4) + (e & 1); }

// Writes a warp's 16 × D float accumulator rows (times `scale`) as bf16 to dst rows (row stride ld),
// rows at or past `valid` skipped.
template <int D>
__device__ __forceinline__ void store_rows(const float (&acc)[D / 8][4], float scale, bf16* dst,
                                           int64_t ld, int valid, int lane) {
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = frag_row(lane, 2 * r);
    if (row >= valid) continue;
#pragma unroll
    for (int n = 0; n < D / 8; ++n)
      *reinterpret_cast<__nv_bfloat162*>(dst + row * ld + frag_col(lane, n, 0)) =
          __floats2bfloat162_rn(scale * acc[n][2 * r], scale * acc[n][2 * r + 1]);
  }
}

// The same as float2 pairs (the key-side partials).
template <int D>
__device__ __forceinline__ void store_rows_float(const float (&acc)[D / 8][4], float scale,
                                                 float* dst, int64_t ld, int valid, int lane) {
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = frag_row(lane, 2 * r);
    if (row >= valid) continue;
#pragma unroll
    for (int n = 0; n < D / 8; ++n)
      *reinterpret_cast<float2*>(dst + row * ld + frag_col(lane, n, 0)) =
          make_float2(scale * acc[n][2 * r], scale * acc[n][2 * r + 1]);
  }
}

#endif

template <int D>
struct Forward {
  static constexpr int BC = 64, LD = D + 8;
  Args a;
  static size_t shared_bytes() { return tile_bytes<D>(kRows + 2 * BC); }
  DT_HD void operator()(const cuda::Block& b, int bx, int h, int s, char* shared) const {
#if defined(__CUDA_ARCH__)
    run(b.thread, bx, h, s, reinterpret_cast<bf16*>(shared));
#endif
  }
#if defined(__CUDA_ARCH__)
  __device__ void run(int thread, int bx, int h, int s, bf16* sq) const {
    using namespace cuda::mma;
    const int64_t start = a.cu[s];
    const int len = int(a.cu[s + 1] - start), q0 = (a.tiles_x - 1 - bx) * kRows;
    if (q0 >= len) return;
    const int warp = thread / 32, lane = thread % 32, rows = min(kRows, len - q0);
    bf16 *sk = sq + kRows * LD, *sv = sk + BC * LD;
    const bf16* kg = a.k + start * a.ldkv + (h / a.group) * D;
    const bf16* vg = a.v + start * a.ldkv + (h / a.group) * D;
    load_rows_async<D, kThreads>(sq, a.q + (start + q0) * a.ldq + h * D, a.ldq, kRows, rows, thread);
    load_rows_async<D, kThreads>(sk, kg, a.ldkv, BC, min(BC, len), thread);
    cuda::async_commit();
    load_rows_async<D, kThreads>(sv, vg, a.ldkv, BC, min(BC, len), thread);
    cuda::async_commit();
    const int tiles = (q0 + rows - 1) / BC + 1, row0 = q0 + warp * 16;
    float o[D / 8][4] = {}, m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
    for (int j = 0; j < tiles; ++j) {
      const int k0 = j * BC;
      // Copies in flight here: K_j (with Q at j = 0), then V_j. K_{j+1} is fetched while the
      // softmax and P V run, V_{j+1} while the next S does.
      cuda::async_wait_pending<1>();
      __syncthreads();
      float p[BC / 8][4] = {};
      product_nt<D, BC / 8>(p, sq + warp * 16 * LD, sk, lane);
      __syncthreads();
      if (j + 1 < tiles)
        load_rows_async<D, kThreads>(sk, kg + int64_t(k0 + BC) * a.ldkv, a.ldkv, BC,
                                     min(BC, len - k0 - BC), thread);
      cuda::async_commit();
      const bool mask = k0 + BC - 1 > q0 || k0 + BC > len;
      float tile_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
      for (int n = 0; n < BC / 8; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int row = row0 + frag_row(lane, e), col = k0 + frag_col(lane, n, e);
          float x = p[n][e] * a.scale_log2;
          if (mask && (col > row || col >= len)) x = -INFINITY;
          p[n][e] = x;
          tile_max[e >> 1] = fmaxf(tile_max[e >> 1], x);
        }
      float base[2];
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const float m_new = fmaxf(m[r], quad_max(tile_max[r]));
        base[r] = m_new == -INFINITY ? 0.0f : m_new;  // a row with nothing visible yet
        const float alpha = exp2f(m[r] - base[r]);
        m[r] = m_new;
        l[r] *= alpha;
#pragma unroll
        for (int n = 0; n < D / 8; ++n) {
          o[n][2 * r] *= alpha;
          o[n][2 * r + 1] *= alpha;
        }
      }
#pragma unroll
      for (int n = 0; n < BC / 8; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          p[n][e] = exp2f(p[n][e] - base[e >> 1]);
          l[e >> 1] += p[n][e];
        }
      cuda::async_wait_pending<1>();
      __syncthreads();
      product_rn<BC, D / 8>(o, p, sv, lane);
      __syncthreads();
      if (j + 1 < tiles)
        load_rows_async<D, kThreads>(sv, vg + int64_t(k0 + BC) * a.ldkv, a.ldkv, BC,
                                     min(BC, len - k0 - BC), thread);
      cuda::async_commit();
    }
    cuda::async_wait_pending<0>();
    float inv[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      l[r] = quad_sum(l[r]);
      inv[r] = 1.0f / l[r];
#pragma unroll
      for (int n = 0; n < D / 8; ++n) {
        o[n][2 * r] *= inv[r];
        o[n][2 * r + 1] *= inv[r];
      }
    }
    const int64_t ld_out = int64_t(a.H) * D;
    store_rows<D>(o, 1.0f, a.out + (start + row0) * ld_out + h * D, ld_out, len - row0, lane);
    if (lane % 4 == 0)
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const int row = row0 + frag_row(lane, 2 * r);
        if (row < len) a.lse[(start + row) * a.H + h] = (m[r] + log2f(l[r])) * kLn2;
      }
  }
#endif
};

template <int D>
struct QueryGrad {
  static constexpr int BC = 32, LD = D + 8;
  Args a;
  static size_t shared_bytes() { return tile_bytes<D>(2 * kRows + 2 * BC); }
  DT_HD void operator()(const cuda::Block& b, int bx, int h, int s, char* shared) const {
#if defined(__CUDA_ARCH__)
    run(b.thread, bx, h, s, reinterpret_cast<bf16*>(shared));
#endif
  }
#if defined(__CUDA_ARCH__)
  __device__ void run(int thread, int bx, int h, int s, bf16* sq) const {
    using namespace cuda::mma;
    const int64_t start = a.cu[s];
    const int len = int(a.cu[s + 1] - start), q0 = (a.tiles_x - 1 - bx) * kRows;
    if (q0 >= len) return;
    const int warp = thread / 32, lane = thread % 32, rows = min(kRows, len - q0);
    const int64_t ld_do = int64_t(a.H) * D;
    bf16 *sdo = sq + kRows * LD, *sk = sdo + kRows * LD, *sv = sk + BC * LD;
    const bf16* kg = a.k + start * a.ldkv + (h / a.group) * D;
    const bf16* vg = a.v + start * a.ldkv + (h / a.group) * D;
    load_rows_async<D, kThreads>(sq, a.q + (start + q0) * a.ldq + h * D, a.ldq, kRows, rows, thread);
    load_rows_async<D, kThreads>(sdo, a.d_out + (start + q0) * ld_do + h * D, ld_do, kRows, rows,
                                 thread);
    load_rows_async<D, kThreads>(sv, vg, a.ldkv, BC, min(BC, len), thread);
    cuda::async_commit();
    load_rows_async<D, kThreads>(sk, kg, a.ldkv, BC, min(BC, len), thread);
    cuda::async_commit();
    const int tiles = (q0 + rows - 1) / BC + 1, row0 = q0 + warp * 16;
    float lse2[2], Drow[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int row = row0 + frag_row(lane, 2 * r);
      lse2[r] = row < len ? a.lse_in[(start + row) * a.H + h] * kLog2e : 0.0f;
      Drow[r] = row < len ? a.D[(start + row) * a.H + h] : 0.0f;
    }
    float dq[D / 8][4] = {};
    for (int j = 0; j < tiles; ++j) {
      const int k0 = j * BC;
      // In flight: V_j, then K_j. V_{j+1} is fetched during S and dQ, K_{j+1} during the next dP.
      cuda::async_wait_pending<1>();
      __syncthreads();
      float dp[BC / 8][4] = {};
      product_nt<D, BC / 8>(dp, sdo + warp * 16 * LD, sv, lane);
      __syncthreads();
      if (j + 1 < tiles)
        load_rows_async<D, kThreads>(sv, vg + int64_t(k0 + BC) * a.ldkv, a.ldkv, BC,
                                     min(BC, len - k0 - BC), thread);
      cuda::async_commit();
      cuda::async_wait_pending<1>();
      __syncthreads();
      float ds[BC / 8][4] = {};
      product_nt<D, BC / 8>(ds, sq + warp * 16 * LD, sk, lane);
      const bool mask = k0 + BC - 1 > q0 || k0 + BC > len;
#pragma unroll
      for (int n = 0; n < BC / 8; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int row = row0 + frag_row(lane, e), col = k0 + frag_col(lane, n, e);
          const bool hidden = mask && (col > row || col >= len);
          const float p = hidden ? 0.0f : exp2f(ds[n][e] * a.scale_log2 - lse2[e >> 1]);
          ds[n][e] = p * (dp[n][e] - Drow[e >> 1]);
        }
      product_rn<BC, D / 8>(dq, ds, sk, lane);
      __syncthreads();
      if (j + 1 < tiles)
        load_rows_async<D, kThreads>(sk, kg + int64_t(k0 + BC) * a.ldkv, a.ldkv, BC,
                                     min(BC, len - k0 - BC), thread);
      cuda::async_commit();
    }
    cuda::async_wait_pending<0>();
    store_rows<D>(dq, a.scale, a.dq + (start + row0) * a.ldq + h * D, a.ldq, len - row0, lane);
  }
#endif
};

// The key-side kernels walk (query head, query tile) pairs: the query tiles at or after the
// block's keys, of the block's query heads (one, or every head of the group).
struct KeySteps {
  int kvh, first_head, first_tile, tiles_per_head, count;
  // Block row `unit` of the grid: a query head when writing partials, else a kv head.
  DT_HD static KeySteps make(const Args& a, int unit, int k0, int len, int tile) {
    const int first = k0 / tile, per_head = (len - 1) / tile - first + 1;
    if (a.dk_part) return {unit / a.group, unit, first, per_head, per_head};
    return {unit, unit * a.group, first, per_head, per_head * a.group};
  }
  DT_HD int head(int step) const { return first_head + step / tiles_per_head; }
  DT_HD int query0(int step, int tile) const { return (first_tile + step % tiles_per_head) * tile; }
};

#if defined(__CUDA_ARCH__)
// A key-side step's operands, copied while the step before it computes: its query rows
// (asynchronously) with their lse in base 2 and, for dK, their D (plain loads, read after the next
// barrier); and its output-gradient rows.
template <int D, int BC>
__device__ void fetch_step_queries(const Args& a, const KeySteps& st, int step, int64_t start,
                                   int len, int thread, bf16* sq, float* slse, float* sD) {
  const int h = st.head(step), qa = st.query0(step, BC);
  cuda::mma::load_rows_async<D, kThreads>(sq, a.q + (start + qa) * a.ldq + h * D, a.ldq, BC,
                                          min(BC, len - qa), thread);
  for (int i = thread; i < BC; i += kThreads) {
    const bool in = qa + i < len;
    slse[i] = in ? a.lse_in[(start + qa + i) * a.H + h] * kLog2e : 0.0f;
    if (sD) sD[i] = in ? a.D[(start + qa + i) * a.H + h] : 0.0f;
  }
}
template <int D, int BC>
__device__ void fetch_step_grads(const Args& a, const KeySteps& st, int step, int64_t start,
                                 int len, int thread, bf16* sdo) {
  const int h = st.head(step), qa = st.query0(step, BC);
  const int64_t ld_do = int64_t(a.H) * D;
  cuda::mma::load_rows_async<D, kThreads>(sdo, a.d_out + (start + qa) * ld_do + h * D, ld_do, BC,
                                          min(BC, len - qa), thread);
}
#endif

// dK and dV in one kernel of 8 warps: warps 0-3 own 16 key rows each of dK, warps 4-7 the same
// rows of dV. Per query tile the dK warp computes Sᵀ = K Qᵀ and P, its dV partner dPᵀ = V dOᵀ; they
// trade P and dPᵀ through shared memory (each a C fragment, read back in the same lane order), then
// the dK warp adds dSᵀ Q = (P ∘ (dPᵀ − D)) Q and the dV warp Pᵀ dO: four products a tile for both,
// where separate dK and dV kernels took five (dV recomputing Sᵀ), and two on each warp's chain
// instead of three. The values are those the two kernels gave (same products, same order). Q and
// dO are double-buffered (both groups read both in both phases); ~152 KiB at head dim 256, one
// block an SM. Measured 10% faster for the whole backward at the 4B shape (docs/performance.md).
template <int D>
struct KeyValueGrad {
  static constexpr int BC = 32, LD = D + 8, kWarps = 8, kThreads = 32 * kWarps;
  static constexpr int kFragFloats = 16 * BC;  // one warp's C fragment of a 16 × BC tile
  Args a;
  // K, V rows; two stages of Q, dO rows; two stages of lse (base 2) and D; P and dPᵀ of 4 pairs.
  static size_t shared_bytes() {
    return tile_bytes<D>(2 * kRows + 4 * BC) + (4 * BC + 2 * 4 * kFragFloats) * sizeof(float);
  }
  DT_HD void operator()(const cuda::Block& b, int bx, int unit, int s, char* shared) const {
#if defined(__CUDA_ARCH__)
    run(b.thread, bx, unit, s, reinterpret_cast<bf16*>(shared));
#endif
  }
#if defined(__CUDA_ARCH__)
  __device__ void run(int thread, int bx, int unit, int s, bf16* sk) const {
    using namespace cuda::mma;
    const int64_t start = a.cu[s];
    const int len = int(a.cu[s + 1] - start), k0 = bx * kRows;
    if (k0 >= len) return;
    const int warp = thread / 32, lane = thread % 32, keys = min(kRows, len - k0);
    const bool dk_warp = warp < 4;
    const int slice = warp % 4;  // the 16 key rows of the pair
    // Stage i's Q rows at sq0 + i·BC·LD, its dO rows at sdo0 + i·BC·LD, its lse (base 2) and D at
    // srow0 + i·2·BC (offsets, not arrays of pointers: those went to local memory).
    bf16* sv = sk + kRows * LD;
    bf16* sq0 = sv + kRows * LD;
    bf16* sdo0 = sq0 + 2 * BC * LD;
    float* srow0 = reinterpret_cast<float*>(sdo0 + 2 * BC * LD);
    float* xp = srow0 + 4 * BC + slice * kFragFloats;       // P of the pair
    float* xdp = srow0 + 4 * BC + (4 + slice) * kFragFloats;  // dPᵀ of the pair
    const KeySteps st = KeySteps::make(a, unit, k0, len, BC);
    const int kvh = st.kvh;
    // The copies are made by the first 128 threads (the helpers' thread count).
    const bool copier = thread < attention_mma::kThreads;
    if (copier) {
      load_rows_async<D, attention_mma::kThreads>(sk, a.k + (start + k0) * a.ldkv + kvh * D, a.ldkv,
                                                  kRows, keys, thread);
      load_rows_async<D, attention_mma::kThreads>(sv, a.v + (start + k0) * a.ldkv + kvh * D, a.ldkv,
                                                  kRows, keys, thread);
      fetch_step_queries<D, BC>(a, st, 0, start, len, thread, sq0, srow0, srow0 + BC);
      fetch_step_grads<D, BC>(a, st, 0, start, len, thread, sdo0);
    }
    cuda::async_commit();
    const int row0 = k0 + slice * 16;
    float acc[D / 8][4] = {};  // dK (warps 0-3) or dV (4-7)
    for (int step = 0; step < st.count; ++step) {
      const int cur = step & 1, next = cur ^ 1, qa = st.query0(step, BC);
      const bf16* q = sq0 + cur * BC * LD;
      const bf16* d_o = sdo0 + cur * BC * LD;
      const float* lse = srow0 + cur * 2 * BC;
      if (step + 1 < st.count) {
        if (copier) {
          float* row_next = srow0 + next * 2 * BC;
          fetch_step_queries<D, BC>(a, st, step + 1, start, len, thread, sq0 + next * BC * LD,
                                    row_next, row_next + BC);
          fetch_step_grads<D, BC>(a, st, step + 1, start, len, thread, sdo0 + next * BC * LD);
        }
        cuda::async_commit();
        cuda::async_wait_pending<1>();
      } else {
        cuda::async_wait_pending<0>();
      }
      __syncthreads();
      float x[BC / 8][4] = {};  // P (dK warps) or dPᵀ (dV warps)
      if (dk_warp) {
        product_nt<D, BC / 8>(x, sk + slice * 16 * LD, q, lane);
        const bool mask = qa < k0 + kRows - 1 || qa + BC > len;
#pragma unroll
        for (int n = 0; n < BC / 8; ++n)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int key = row0 + frag_row(lane, e), c = frag_col(lane, n, e), query = qa + c;
            const bool hidden = mask && (query < key || query >= len);
            x[n][e] = hidden ? 0.0f : exp2f(x[n][e] * a.scale_log2 - lse[c]);
            xp[(n * 4 + e) * 32 + lane] = x[n][e];
          }
      } else {
        product_nt<D, BC / 8>(x, sv + slice * 16 * LD, d_o, lane);
#pragma unroll
        for (int n = 0; n < BC / 8; ++n)
#pragma unroll
          for (int e = 0; e < 4; ++e) xdp[(n * 4 + e) * 32 + lane] = x[n][e];
      }
      __syncthreads();
      if (dk_warp) {
#pragma unroll
        for (int n = 0; n < BC / 8; ++n)
#pragma unroll
          for (int e = 0; e < 4; ++e)
            x[n][e] *= xdp[(n * 4 + e) * 32 + lane] - lse[BC + frag_col(lane, n, e)];
        product_rn<BC, D / 8>(acc, x, q, lane);
      } else {
#pragma unroll
        for (int n = 0; n < BC / 8; ++n)
#pragma unroll
          for (int e = 0; e < 4; ++e) x[n][e] = xp[(n * 4 + e) * 32 + lane];
        product_rn<BC, D / 8>(acc, x, d_o, lane);
      }
      __syncthreads();  // the stage and the exchange are free for the next step's copies
    }
    if (dk_warp) {
      if (a.dk_part)
        store_rows_float<D>(acc, a.scale, a.dk_part + (start + row0) * a.H * D + st.first_head * D,
                            int64_t(a.H) * D, len - row0, lane);
      else
        store_rows<D>(acc, a.scale, a.dk + (start + row0) * a.ldkv + kvh * D, a.ldkv, len - row0,
                      lane);
    } else {
      if (a.dv_part)
        store_rows_float<D>(acc, 1.0f, a.dv_part + (start + row0) * a.H * D + st.first_head * D,
                            int64_t(a.H) * D, len - row0, lane);
      else
        store_rows<D>(acc, 1.0f, a.dv + (start + row0) * a.ldkv + kvh * D, a.ldkv, len - row0,
                      lane);
    }
  }
#endif
};

// dst[t, j, c] (bf16, row stride ld) = Σ_{g < group} part[t, j·group + g, c], g in order.
struct SumGroupPartials {
  static constexpr int kPerBlock = 256;
  const float* part;
  int64_t tokens;
  int Hkv, group, d;
  bf16* dst;
  int64_t ld;
  DT_HD void operator()(const cuda::Block& b, int bx, int, int, char*) const {
    const int64_t n = tokens * Hkv * d;
    for (int64_t i = int64_t(bx) * kPerBlock + b.thread; i < n && i < (int64_t(bx) + 1) * kPerBlock;
         i += b.threads) {
      const int64_t t = i / (int64_t(Hkv) * d);
      const int j = int(i / d % Hkv), c = int(i % d);
      const float* src = part + (t * Hkv * group + int64_t(j) * group) * d + c;
      float sum = 0.0f;
      for (int g = 0; g < group; ++g) sum += src[int64_t(g) * d];
      dst[t * ld + int64_t(j) * d + c] = cuda::from_float<bf16>(sum);
    }
  }
};

}  // namespace deltatune::attention_mma
