// Launches a kernel body (a functor with a __host__ __device__ operator()) over a grid: on the GPU,
// or emulated on the host (core/cuda/target.h). The body has the signature
//   void operator()(const Block& b, int block_x, int block_y, int block_z, char* shared) const
// and is written as block-strided loops separated by b.sync() (ops/cuda/block_tile.cuh), so it is
// correct both with `Threads` threads per block and with one.
#pragma once

#include <omp.h>

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <type_traits>
#include <vector>

#include "core/cuda/cuda_check.h"
#include "core/cuda/gpu_profile.h"
#include "core/cuda/target.h"
#include "core/profile.h"
#include "ops/cuda/block_tile.cuh"

namespace deltatune::cuda {

template <int Threads, class Body>
__global__ void __launch_bounds__(Threads) run_body(Body body) {
  extern __shared__ __align__(128) char shared[];
  body(Block{int(threadIdx.x), int(blockDim.x)}, int(blockIdx.x), int(blockIdx.y), int(blockIdx.z),
       shared);
}

// Blocks of one launch never depend on each other, so the emulation spreads them over OpenMP
// threads. On the GPU, bodies needing more than 48 KiB of shared memory opt in once per body type;
// DELTATUNE_PROFILE=1 times each launch with events (core/cuda/gpu_profile.h).
template <int Threads, class Body>
void launch(const Target& target, const char* name, const Body& body, dim3 grid,
            size_t shared_bytes = 0) {
  if (grid.x == 0 || grid.y == 0 || grid.z == 0) return;
  if (target.emulate) {
    const int64_t blocks = int64_t(grid.x) * grid.y * grid.z;
#pragma omp parallel
    {
      std::vector<char> shared(shared_bytes + 128);
      char* base = shared.data() + (128 - reinterpret_cast<uintptr_t>(shared.data()) % 128) % 128;
#pragma omp for schedule(dynamic, 1)
      for (int64_t b = 0; b < blocks; ++b)
        body(Block{0, 1}, int(b % grid.x), int(b / grid.x % grid.y), int(b / grid.x / grid.y),
             base);
    }
    return;
  }
  static const int limit = [] {
    int device = 0, bytes = 0;
    DT_CUDA(cudaGetDevice(&device));
    DT_CUDA(cudaDeviceGetAttribute(&bytes, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    DT_CUDA(cudaFuncSetAttribute(run_body<Threads, Body>,
                                 cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
    return bytes;
  }();
  DT_CHECK(shared_bytes <= size_t(limit), name, ": needs ", shared_bytes,
           " bytes of shared memory per block, this GPU allows ", limit);
  const GpuProfileMark mark = gpu_profile_begin(target.stream);
  run_body<Threads, Body><<<grid, Threads, shared_bytes, target.stream>>>(body);
  DT_CUDA_LAUNCHED(name);
  gpu_profile_end(name, mark, target.stream);
}

// Blocks for `count` items of `per_block` each, checked against the grid's x limit.
inline dim3 blocks_for(int64_t count, int64_t per_block) {
  const int64_t blocks = (count + per_block - 1) / per_block;
  DT_CHECK(blocks < (int64_t(1) << 31), "CUDA launch: ", count, " items need ", blocks,
           " blocks, more than a grid holds");
  return dim3(unsigned(blocks));
}

// dst[i] += Σ over k of partials[k][i] for i < n, k in order: the deterministic second half of a
// reduction whose first half wrote one row of partial sums per block (no atomics).
struct SumPartialsBody {
  static constexpr int kPerBlock = 256;
  const float* partials;
  int64_t rows, n;
  float* dst;
  DT_HD void operator()(const Block& b, int bx, int, int, char*) const {
    const int64_t end = n < (int64_t(bx) + 1) * kPerBlock ? n : (int64_t(bx) + 1) * kPerBlock;
    for (int64_t i = int64_t(bx) * kPerBlock + b.thread; i < end; i += b.threads) {
      float s = 0.0f;
      for (int64_t k = 0; k < rows; ++k) s += partials[k * n + i];
      dst[i] += s;
    }
  }
};
inline void sum_partials(const Target& target, const char* name, const float* partials,
                         int64_t rows, int64_t n, float* dst) {
  launch<SumPartialsBody::kPerBlock>(target, name, SumPartialsBody{partials, rows, n, dst},
                                     blocks_for(n, SumPartialsBody::kPerBlock));
}

// One warp of a block, or a group of kLanes lanes of one, for the row kernels (one row per warp or
// group; kLanes = 16 puts two rows in a warp, for rows of 16 vectors or fewer that would leave half
// its lanes idle). On the host a block has one thread, which is then one group of one lane.
struct Warp {
  int lane, lanes;   // lane in [0, lanes)
  int index, count;  // this warp (or group) in [0, count) of the block
};
template <int kLanes = 32>
DT_HD Warp warp_of(const Block& b) {
  static_assert(kLanes == 32 || kLanes == 16 || kLanes == 8, "a warp or an aligned part of one");
  const int lanes = b.threads < kLanes ? b.threads : kLanes;
  return {b.thread % lanes, lanes, b.thread / lanes, b.threads / lanes};
}

// The sum of `x` over the kLanes lanes of a group (a butterfly: the same order in every lane, so
// every lane gets the same bits). Every lane of the warp must call it (full mask); offsets below
// kLanes never cross a group.
template <int kLanes = 32>
DT_HD float warp_sum(float x) {
#if defined(__CUDA_ARCH__)
  for (int offset = kLanes / 2; offset > 0; offset /= 2)
    x += __shfl_xor_sync(0xffffffffu, x, offset);
#endif
  return x;
}
DT_HD float warp_max(float x) {
#if defined(__CUDA_ARCH__)
  for (int offset = 16; offset > 0; offset /= 2)
    x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, offset));
#endif
  return x;
}

DT_HD int64_t min_of(int64_t a, int64_t b) { return a < b ? a : b; }

// Vectors for the memory-bound kernels: N consecutive elements of T as floats, in one 4-, 8- or
// 16-byte access when N > 1 (the caller checked alignment: aligned_16), else one element.
// kVector<T> = 16 / sizeof(T): a warp of such accesses reads 512 contiguous bytes instead of 64
// (bf16 one by one).
template <class T>
constexpr int kVector = 16 / int(sizeof(T));

inline bool aligned_16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }
inline bool aligned_16(std::initializer_list<const void*> arrays) {
  for (const void* p : arrays)
    if (!aligned_16(p)) return false;
  return true;
}

// The machine word of an access of Bytes bytes.
template <int Bytes>
using VectorWord = std::conditional_t<Bytes == 16, uint4, std::conditional_t<Bytes == 8, uint2, uint32_t>>;

// N elements copied as they are (no conversion): one access.
template <int N, class T>
DT_HD void copy_n(T* dst, const T* src) {
  if constexpr (N == 1) {
    dst[0] = src[0];
  } else {
    constexpr int kBytes = N * int(sizeof(T));
    static_assert(kBytes == 4 || kBytes == 8 || kBytes == 16, "one 4-, 8- or 16-byte access");
#if defined(__CUDA_ARCH__)
    *reinterpret_cast<VectorWord<kBytes>*>(dst) = *reinterpret_cast<const VectorWord<kBytes>*>(src);
#else
    std::memcpy(dst, src, kBytes);  // the host compiler's aliasing rules: no word view of T
#endif
  }
}
template <int N, class T>
DT_HD void load_n(const T* p, float* out) {
  alignas(16) T e[N];
  copy_n<N>(e, p);
#pragma unroll
  for (int k = 0; k < N; ++k) out[k] = to_float(e[k]);
}
template <int N, class T>
DT_HD void store_n(T* p, const float* in) {
  alignas(16) T e[N];
#pragma unroll
  for (int k = 0; k < N; ++k) e[k] = from_float<T>(in[k]);
  copy_n<N>(p, e);
}

// Calls f(i0) for i0 = the first element of every N-element vector in block bx's share
// [bx · per_block, (bx + 1) · per_block) of [0, n); n and per_block multiples of N. Consecutive
// threads take consecutive vectors.
template <int N, class F>
DT_HD void for_vectors(const Block& b, int bx, int64_t per_block, int64_t n, const F& f) {
  const int64_t end = min_of(n, (int64_t(bx) + 1) * per_block);
  for (int64_t i = int64_t(bx) * per_block + int64_t(b.thread) * N; i < end; i += int64_t(b.threads) * N)
    f(i);
}

DT_HD float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }
DT_HD float siluf(float x) { return x * sigmoidf(x); }
// d silu / dx = s (1 + x (1 − s)), s = sigmoid(x) (ops/activation.h)
DT_HD float silu_gradf(float x) {
  const float s = sigmoidf(x);
  return s * (1.0f + x * (1.0f - s));
}

}  // namespace deltatune::cuda
