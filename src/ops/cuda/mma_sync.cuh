// Warp-level tensor-core pieces (sm_80 and later; declared in the host pass too, empty there) for
// kernels that keep a matrix in registers across a long loop instead of in shared memory: ldmatrix,
// mma.sync m16n8k16 (bf16 operands, float accumulation) and the bf16 hi + lo split of float
// fragments. GPU only: inline PTX cannot run in the host emulation, so every kernel built from
// these has a block_tile.cuh twin that the emulation (and CI) checks.
//
// Fragment layouts (PTX ISA, "Matrix fragments for mma.m16n8k16"), with g = lane / 4, q = lane % 4:
//   A (16×16, rows m, columns k): a[0] = (m g,   k 2q..2q+1)   a[1] = (m g+8, k 2q..2q+1)
//                                 a[2] = (m g,   k 2q+8..+9)   a[3] = (m g+8, k 2q+8..+9)
//   B (16×8, rows k, columns n):  b[0] = (k 2q..2q+1, n g)     b[1] = (k 2q+8..+9, n g)
//   C (16×8 float):               c[0..1] = (m g, n 2q..2q+1)  c[2..3] = (m g+8, n 2q..2q+1)
// Two C tiles side by side (n 0..7 and 8..15) hold exactly an A fragment's elements: a product's
// result feeds the next product as its A operand without leaving the registers (FlashAttention-2's
// trick), which is what lets a recurrent state live in registers.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "ops/cuda/block_tile.cuh"

namespace deltatune::cuda::mma {

struct FragA {
  uint32_t r[4];
};
struct FragB {
  uint32_t r[2];
};

#if !defined(__CUDA_ARCH__)
// The host simulation of the warp collectives below and of barriers between warps (tests only,
// with SimulatedBlock): set on the host thread standing for one lane, each collective exchanges
// operands with the warp's other lanes through it, with the semantics documented here. Null
// otherwise: on the host these functions then do nothing.
struct SimulatedWarp {
  virtual void ldmatrix_x4(uint32_t (&r)[4], const __nv_bfloat16* row, bool trans) = 0;
  virtual void mma(float (&d)[4], const FragA& a, const FragB& b) = 0;
  virtual void named_barrier(int id, int threads) = 0;
};
inline thread_local SimulatedWarp* simulated_warp = nullptr;
#endif

#if defined(__CUDA_ARCH__)
// The device-only forms, on raw registers and shared-memory addresses (kernels that compute the
// addresses once and add byte offsets in their loops: attention_mma.cuh through warp_mma.cuh).
__device__ __forceinline__ uint32_t shared_address(const void* p) {
  return uint32_t(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t address) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t address) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}
// c += a b as mma() below, but not volatile: the compiler may move it among the loads around it
// (attention's products, written in plain loop order); mma() keeps the issue order its callers
// chose (the delta rule's products ordered 4 apart).
__device__ __forceinline__ void mma_bf16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
#endif

// d += a b for one 16×8 tile. Callers order their products so that consecutive ones go to
// different accumulators (a product into the accumulator of the one just issued waits for it).
DT_HD void mma(float (&d)[4], const FragA& a, const FragB& b) {
#if defined(__CUDA_ARCH__)
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a.r[0]), "r"(a.r[1]), "r"(a.r[2]), "r"(a.r[3]), "r"(b.r[0]), "r"(b.r[1]));
#else
  if (simulated_warp) simulated_warp->mma(d, a, b);
#endif
}

// Four 8×8 bf16 matrices from shared memory: lane l gives the address of row l % 8 of matrix l / 8.
// Plain: r[i] = (row g, columns 2q..2q+1) of matrix i; trans: (rows 2q..2q+1, column g).
DT_HD void ldmatrix_x4(uint32_t (&r)[4], const __nv_bfloat16* row) {
#if defined(__CUDA_ARCH__)
  ldmatrix_x4(r, shared_address(row));
#else
  if (simulated_warp) simulated_warp->ldmatrix_x4(r, row, false);
#endif
}
DT_HD void ldmatrix_x4_trans(uint32_t (&r)[4], const __nv_bfloat16* row) {
#if defined(__CUDA_ARCH__)
  ldmatrix_x4_trans(r, shared_address(row));
#else
  if (simulated_warp) simulated_warp->ldmatrix_x4(r, row, true);
#endif
}

// Barrier `id` (1..15; 0 is the block's) for `threads` threads, whole warps.
DT_HD void named_barrier(int id, int threads) {
#if defined(__CUDA_ARCH__)
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
#else
  if (simulated_warp) simulated_warp->named_barrier(id, threads);
#endif
}

// B fragments of two adjacent n-tiles (n0..n0+7, n0+8..n0+15) for k rows k0..k0+15, where
// B[k][n] = X[n][k] with X row-major (ld elements): the product with Xᵀ.
DT_HD void load_b_of_transposed(FragB& b0, FragB& b1, const __nv_bfloat16* X, int ld, int k0,
                                int n0, int lane) {
  const int m = lane >> 3, r = lane & 7;
  uint32_t x[4];
  ldmatrix_x4(x, X + (n0 + r + 8 * (m >> 1)) * ld + k0 + 8 * (m & 1));
  b0 = {x[0], x[1]};
  b1 = {x[2], x[3]};
}
// The same with B[k][n] = X[k][n], X row-major: the product with X.
DT_HD void load_b(FragB& b0, FragB& b1, const __nv_bfloat16* X, int ld, int k0, int n0, int lane) {
  const int m = lane >> 3, r = lane & 7;
  uint32_t x[4];
  ldmatrix_x4_trans(x, X + (k0 + r + 8 * (m & 1)) * ld + n0 + 8 * (m >> 1));
  b0 = {x[0], x[1]};
  b1 = {x[2], x[3]};
}
// An A fragment (m0..m0+15, k0..k0+15) where A[m][k] = X[k][m], X row-major: the product with Xᵀ.
DT_HD void load_a_of_transposed(FragA& a, const __nv_bfloat16* X, int ld, int m0, int k0,
                                int lane) {
  const int m = lane >> 3, r = lane & 7;
  ldmatrix_x4_trans(a.r, X + (k0 + r + 8 * (m >> 1)) * ld + m0 + 8 * (m & 1));
}

DT_HD uint32_t pack(__nv_bfloat162 x) { return *reinterpret_cast<uint32_t*>(&x); }
DT_HD float2 unpack(uint32_t x) {
  return __bfloat1622float2(*reinterpret_cast<__nv_bfloat162*>(&x));
}

// (x, y) as bf16 hi + lo: hi = the pair rounded, lo = what rounding lost, rounded (x = hi + lo to
// about 16 bits of mantissa; block_tile.cuh, Operand).
DT_HD void split2(float x, float y, uint32_t& hi, uint32_t& lo) {
  const __nv_bfloat162 h = __floats2bfloat162_rn(x, y);
  const float2 hf = __bfloat1622float2(h);
  hi = pack(h);
  lo = pack(__floats2bfloat162_rn(x - hf.x, y - hf.y));
}

// The A fragment (hi, lo) of columns 16s..16s+15 of a 16-row float matrix held as C tiles
// t[2s], t[2s + 1], each scaled by `scale`.
DT_HD void split_a(const float (&t0)[4], const float (&t1)[4], float scale, FragA& hi, FragA& lo) {
  split2(scale * t0[0], scale * t0[1], hi.r[0], lo.r[0]);
  split2(scale * t0[2], scale * t0[3], hi.r[1], lo.r[1]);
  split2(scale * t1[0], scale * t1[1], hi.r[2], lo.r[2]);
  split2(scale * t1[2], scale * t1[3], hi.r[3], lo.r[3]);
}

}  // namespace deltatune::cuda::mma
