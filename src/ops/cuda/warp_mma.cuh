// Warp-level tensor-core pieces for kernels that keep their accumulators in registers (the
// FlashAttention-2 way): 16-row bf16 tiles in shared memory are read with ldmatrix and multiplied
// with mma.sync m16n8k16 (bf16 in, float accumulate), on mma_sync.cuh's primitives. GPU only
// (sm_80 and later): the generic kernels beside each fast one (block_tile.cuh) are the host
// emulation and the fallback.
//
// Register layout of one m16n8 float accumulator c[4] in lane l (g = l / 4, t = l % 4):
//   c[0], c[1]: row g,     columns 2t, 2t + 1
//   c[2], c[3]: row g + 8, columns 2t, 2t + 1
// Two accumulators side by side (columns 0..15) have the layout of the A operand of a k16 step,
// which is what lets P = softmax(S) feed the next product without leaving registers.
//
// Shared tiles are row-major bf16 with a row stride of (cols + 8) elements: the 16-byte pad puts
// the 8 rows one ldmatrix reads in 8 different bank groups.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "ops/cuda/mma_sync.cuh"

namespace deltatune::cuda::mma {

#if defined(__CUDA_ARCH__)

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  return pack(__floats2bfloat162_rn(lo, hi));
}

// 16 bytes global → shared, asynchronously; src_bytes = 0 fills the 16 bytes with zeros (rows past
// the end of a sequence) without reading.
__device__ __forceinline__ void copy_async_16(uint32_t dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
               "r"(src_bytes)
               : "memory");
}
// rows × Cols bf16 from global (row r at src + r * ld) into a padded shared tile; rows at or past
// `valid` are zero-filled. All threads of the block take part; the caller commits (async_commit,
// block_tile.cuh).
template <int Cols, int Threads>
__device__ __forceinline__ void load_rows_async(__nv_bfloat16* dst, const __nv_bfloat16* src,
                                                int64_t ld, int rows, int valid, int thread) {
  constexpr int kChunks = Cols / 8;  // 16-byte pieces per row
  for (int i = thread; i < rows * kChunks; i += Threads) {
    const int r = i / kChunks, c = (i % kChunks) * 8;
    const bool in = r < valid;
    copy_async_16(shared_address(dst + r * (Cols + 8) + c), in ? src + r * ld + c : src,
                  in ? 16 : 0);
  }
}

// acc[n] += A Bᵀ over K columns: A is the warp's 16 rows of a padded shared tile (row stride
// K + 8), B the N = 8 × NT rows of another (the "nt" product: S = Q Kᵀ, dP = dO Vᵀ).
template <int K, int NT>
__device__ __forceinline__ void product_nt(float (&acc)[NT][4], const __nv_bfloat16* a,
                                           const __nv_bfloat16* b, int lane) {
  static_assert(K % 16 == 0 && NT % 2 == 0, "product_nt: K a multiple of 16, NT even");
  constexpr int kRowBytes = (K + 8) * 2;
  const uint32_t a_at = shared_address(a) + (lane & 15) * kRowBytes + (lane >> 4) * 16;
  const uint32_t b_at =
      shared_address(b) + ((lane & 7) + ((lane >> 4) << 3)) * kRowBytes + ((lane >> 3) & 1) * 16;
#pragma unroll
  for (int kk = 0; kk < K / 16; ++kk) {
    uint32_t af[4];
    ldmatrix_x4(af, a_at + kk * 32);
#pragma unroll
    for (int n = 0; n < NT; n += 2) {
      uint32_t bf[4];
      ldmatrix_x4(bf, b_at + n * 8 * kRowBytes + kk * 32);
      mma_bf16(acc[n], af, bf[0], bf[1]);
      mma_bf16(acc[n + 1], af, bf[2], bf[3]);
    }
  }
}

// acc[n] += P B: P is 16 × K in registers, as K / 8 accumulators (rounded to bf16 here), B the
// K rows × (8 × NT) columns of a padded shared tile (row stride 8 × NT + 8), read transposed (the
// "nn" product: O += P V, dQ += dS K).
template <int K, int NT>
__device__ __forceinline__ void product_rn(float (&acc)[NT][4], const float (&p)[K / 8][4],
                                           const __nv_bfloat16* b, int lane) {
  static_assert(K % 16 == 0 && NT % 2 == 0, "product_rn: K a multiple of 16, NT even");
  constexpr int kRowBytes = (NT * 8 + 8) * 2;
  const uint32_t b_at =
      shared_address(b) + ((lane & 7) + (((lane >> 3) & 1) << 3)) * kRowBytes + (lane >> 4) * 16;
#pragma unroll
  for (int kk = 0; kk < K / 16; ++kk) {
    const uint32_t af[4] = {pack_bf16(p[2 * kk][0], p[2 * kk][1]),
                            pack_bf16(p[2 * kk][2], p[2 * kk][3]),
                            pack_bf16(p[2 * kk + 1][0], p[2 * kk + 1][1]),
                            pack_bf16(p[2 * kk + 1][2], p[2 * kk + 1][3])};
#pragma unroll
    for (int n = 0; n < NT; n += 2) {
      uint32_t bf[4];
      ldmatrix_x4_trans(bf, b_at + kk * 16 * kRowBytes + n * 16);
      mma_bf16(acc[n], af, bf[0], bf[1]);
      mma_bf16(acc[n + 1], af, bf[2], bf[3]);
    }
  }
}

// The sum and max of a row's values over the 4 lanes of its quad (lanes holding the same rows).
__device__ __forceinline__ float quad_sum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  return x + __shfl_xor_sync(0xffffffffu, x, 2);
}
__device__ __forceinline__ float quad_max(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}

#endif  // __CUDA_ARCH__

}  // namespace deltatune::cuda::mma
