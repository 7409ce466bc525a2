// block_product: block_matmul (block_tile.cuh) with, for bf16 on the GPU, the tiles read by
// ldmatrix and multiplied by mma.sync (mma_sync.cuh) instead of wmma. Same operands, same result
// layout, same split (hi + lo) products; float tiles and the host emulation take block_matmul.
//
// Why: Nsight Compute on the delta rule's parallel kernels (docs/performance.md, "GPU: gated delta
// rule") found wmma's fragment loads compiled to generic 32-bit loads (LD, not LDS) plus MOVM
// transposes for every column-major operand: several instructions per fragment element where
// ldmatrix takes one instruction per 16×16 operand tile, transposed or not.
#pragma once

#include "ops/cuda/mma_sync.cuh"

namespace deltatune::cuda {

namespace mma_detail {

// The A fragment (rows m0.., columns k0..) of A or, TransA, of the transpose of its storage.
template <bool TransA>
DT_HD void load_a(mma::FragA& a, const bf16* X, int ld, int m0, int k0, int lane) {
  if constexpr (TransA) {
    mma::load_a_of_transposed(a, X, ld, m0, k0, lane);
  } else {
    // Lanes 0-15 give rows m0..m0+15 at k0, lanes 16-31 the same rows at k0 + 8: the four 8×8
    // matrices come back in the A fragment's register order.
    mma::ldmatrix_x4(a.r, X + (m0 + (lane & 15)) * ld + k0 + 8 * (lane >> 4));
  }
}
// B fragments of columns n0..n0+7 and n0+8..n0+15 for rows k0..k0+15.
template <bool TransB>
DT_HD void load_b(mma::FragB& b0, mma::FragB& b1, const bf16* X, int ld, int k0, int n0,
                  int lane) {
  if constexpr (TransB)
    mma::load_b_of_transposed(b0, b1, X, ld, k0, n0, lane);
  else
    mma::load_b(b0, b1, X, ld, k0, n0, lane);
}
// c += a b; on the GPU not volatile, so the compiler may interleave the loads of the next step.
DT_HD void mma_tile(float (&c)[4], const mma::FragA& a, const mma::FragB& b) {
#if defined(__CUDA_ARCH__)
  mma::mma_bf16(c, a.r, b.r[0], b.r[1]);
#else
  mma::mma(c, a, b);
#endif
}

}  // namespace mma_detail

// C (+)= A·B as block_matmul: one warp per 16×16 tile of C (two m16n8 accumulators), a warp's
// tiles two at a time (four independent accumulators in flight), tile t to warp
// (first_warp + t) mod warps. On the host the warp code runs only in the simulation of whole
// warps (mma_sync.cuh, SimulatedWarp: tests/cuda_emulated/delta_rule_mma_sim_test.cu checks it
// there against block_matmul); the emulation (one thread per block) takes block_matmul.
template <bool TransA, bool TransB, class T>
DT_HD void block_product(const Block& b, int M, int N, int K, Operand<T> A, Operand<T> B,
                         float* C, int ldc, bool accumulate, int first_warp = 0) {
  if constexpr (std::is_same_v<T, bf16>) {
#if defined(__CUDA_ARCH__)
    constexpr bool kWarps = true;
#else
    const bool kWarps = mma::simulated_warp != nullptr;
#endif
    if (kWarps) {
      using mma_detail::load_a;
      using mma_detail::load_b;
      using mma_detail::mma_tile;
      const int warps = b.threads / 32, warp = b.thread / 32, lane = b.thread % 32;
      const int g = lane / 4, q = lane % 4;
      const int tiles_n = N / 16, tiles = (M / 16) * tiles_n;
      for (int t = ((warp - first_warp) % warps + warps) % warps; t < tiles; t += 2 * warps) {
        const bool two = t + warps < tiles;
        int m0[2], n0[2];
        float c[2][2][4];
#pragma unroll
        for (int u = 0; u < 2; ++u) {
          const int tu = u == 1 && two ? t + warps : t;
          m0[u] = (tu / tiles_n) * 16;
          n0[u] = (tu % tiles_n) * 16;
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            const float* row0 = C + (m0[u] + g) * ldc + n0[u] + 8 * h + 2 * q;
            const float* row1 = row0 + 8 * ldc;
            if (accumulate) {
              const float2 x = *reinterpret_cast<const float2*>(row0);
              const float2 y = *reinterpret_cast<const float2*>(row1);
              c[u][h][0] = x.x, c[u][h][1] = x.y, c[u][h][2] = y.x, c[u][h][3] = y.y;
            } else {
              c[u][h][0] = c[u][h][1] = c[u][h][2] = c[u][h][3] = 0.0f;
            }
          }
        }
        for (int k0 = 0; k0 < K; k0 += 16) {
#pragma unroll
          for (int u = 0; u < 2; ++u) {
            if (u == 1 && !two) break;
            mma::FragA a, al;
            mma::FragB b0, b1, bl0, bl1;
            load_a<TransA>(a, A.hi, A.ld, m0[u], k0, lane);
            load_b<TransB>(b0, b1, B.hi, B.ld, k0, n0[u], lane);
            mma_tile(c[u][0], a, b0);
            mma_tile(c[u][1], a, b1);
            if (B.lo) {
              load_b<TransB>(bl0, bl1, B.lo, B.ld, k0, n0[u], lane);
              mma_tile(c[u][0], a, bl0);
              mma_tile(c[u][1], a, bl1);
            }
            if (A.lo) {
              load_a<TransA>(al, A.lo, A.ld, m0[u], k0, lane);
              mma_tile(c[u][0], al, b0);
              mma_tile(c[u][1], al, b1);
            }
          }
        }
#pragma unroll
        for (int u = 0; u < 2; ++u) {
          if (u == 1 && !two) break;
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            float* row0 = C + (m0[u] + g) * ldc + n0[u] + 8 * h + 2 * q;
            *reinterpret_cast<float2*>(row0) = make_float2(c[u][h][0], c[u][h][1]);
            *reinterpret_cast<float2*>(row0 + 8 * ldc) = make_float2(c[u][h][2], c[u][h][3]);
          }
        }
      }
      return;
    }
  }
  block_matmul<TransA, TransB>(b, M, N, K, A, B, C, ldc, accumulate, first_warp);
}

}  // namespace deltatune::cuda
