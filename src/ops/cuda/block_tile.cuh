// Block-level pieces of the CUDA kernels: who runs a block's code, tiles in shared memory, copies
// between global memory and tiles, and the tile product that runs on the tensor cores.
//
// Every kernel body is written as block-strided loops over elements, separated by block.sync().
// Compiled for the GPU, a body runs with blockDim.x threads. Compiled for the host, the same body
// runs with one thread per block and sync() does nothing: the emulation the CPU tests use
// (tests/cuda_emulated), so CI, which has nvcc but no GPU, checks every kernel's indexing and
// equations. What only the GPU can check (tests/cuda): the tensor-core product, the asynchronous
// copies and races between threads.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__CUDA_ARCH__)
#include <mma.h>
#endif

#define DT_HD __host__ __device__ inline

namespace deltatune::cuda {

using bf16 = __nv_bfloat16;

#if !defined(__CUDA_ARCH__)
// The host simulation of a whole block, one host thread per GPU thread (tests only:
// tests/cuda_emulated/delta_rule_mma_sim_test.cu, for kernels that need real warps): set on each of
// its threads, Block::sync waits for the block's other threads. Null otherwise (the emulation runs
// one thread per block and needs no barrier).
struct SimulatedBlock {
  virtual void sync() = 0;
};
inline thread_local SimulatedBlock* simulated_block = nullptr;
#endif

// The threads running one block's body: thread in [0, threads).
struct Block {
  int thread = 0, threads = 1;
  DT_HD void sync() const {
#if defined(__CUDA_ARCH__)
    __syncthreads();
#else
    if (simulated_block) simulated_block->sync();
#endif
  }
};

DT_HD float to_float(float x) { return x; }
DT_HD float to_float(bf16 x) { return __bfloat162float(x); }
template <class T>
DT_HD T from_float(float x);
template <>
DT_HD float from_float<float>(float x) {
  return x;
}
template <>
DT_HD bf16 from_float<bf16>(float x) {  // round to nearest even
  return __float2bfloat16(x);
}

// Row padding of tiles in shared memory: one 16-byte access width, so that consecutive rows start
// in different banks (HOPPER.md, "Banks"); it also keeps every leading dimension a multiple of 8
// elements (bf16) or 4 (float), as the tensor-core loads require.
template <class T>
constexpr int kPad = int(16 / sizeof(T));

constexpr int round_up(int x, int m) { return (x + m - 1) / m * m; }

// Hands out 128-byte aligned pieces of a block's shared memory. Run over a null base it only
// counts, so each kernel's layout is written once and gives its own size.
struct SmemCarver {
  char* base;
  size_t used = 0;
  template <class T>
  DT_HD T* take(int64_t count) {
    used = (used + 127) / 128 * 128;
    T* p = base ? reinterpret_cast<T*>(base + used) : nullptr;
    used += size_t(count) * sizeof(T);
    return p;
  }
};

// A matrix operand in shared memory, row-major with leading dimension ld: hi, and optionally lo,
// the rounding error of hi (x = hi + lo to about 16 bits of mantissa where x was a float). lo is
// null where hi is exact: an input that is bf16 already, or any float tile.
template <class T>
struct Operand {
  const T* hi;
  const T* lo;
  int ld;
};
template <class T>
DT_HD Operand<T> exact(const T* p, int ld) {
  return {p, nullptr, ld};
}
template <class T>
DT_HD Operand<T> split(const T* hi, const T* lo, int ld) {
  return {hi, lo, ld};
}

// Splits only pay for bf16: a float tile is its own exact value.
template <class T>
constexpr bool kSplit = std::is_same_v<T, bf16>;

// Stores x as hi (rounded to T) and, where lo is given, lo = x − hi rounded to T.
template <class T>
DT_HD void store_split(T* hi, T* lo, int64_t at, float x) {
  const T h = from_float<T>(x);
  hi[at] = h;
  if (lo) lo[at] = from_float<T>(x - to_float(h));
}

// C (+)= A·B for tiles in shared memory: A is M×K, B is K×N, C is M×N float (row-major, ldc).
// A is read from its row-major storage or, when TransA, from the row-major storage of Aᵀ (K×M);
// B likewise. M, N and K are multiples of 16. With split operands the product is
// A.hi B.hi + A.lo B.hi + A.hi B.lo (A.lo B.lo is below float rounding).
// T = bf16 on the GPU: tensor cores (wmma 16×16×16, float accumulation), one warp per 16×16 tile
// of C. Otherwise (float tiles, or the host emulation): one thread per element of C, float FMAs.
// Tile t of C goes to warp (first_warp + t) mod warps: two small independent products in one
// phase run side by side when the second starts where the first's tiles end.
template <bool TransA, bool TransB, class T>
DT_HD void block_matmul(const Block& b, int M, int N, int K, Operand<T> A, Operand<T> B, float* C,
                        int ldc, bool accumulate, int first_warp = 0) {
#if defined(__CUDA_ARCH__)
  if constexpr (std::is_same_v<T, bf16>) {
    using namespace nvcuda;
    using LayoutA = std::conditional_t<TransA, wmma::col_major, wmma::row_major>;
    using LayoutB = std::conditional_t<TransB, wmma::col_major, wmma::row_major>;
    const int warps = b.threads / 32, warp = b.thread / 32;
    const int tiles_n = N / 16, tiles = (M / 16) * tiles_n;
    // A warp's tiles t, t + warps, ... two at a time: each product waits ~30 cycles for the one
    // before it into the same accumulator, so two independent chains run in the time of one.
    for (int t = ((warp - first_warp) % warps + warps) % warps; t < tiles; t += 2 * warps) {
      const int count = t + warps < tiles ? 2 : 1;
      int m0[2], n0[2];
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> c[2];
#pragma unroll
      for (int u = 0; u < 2; ++u) {
        const int tu = u < count ? t + u * warps : t;
        m0[u] = (tu / tiles_n) * 16;
        n0[u] = (tu % tiles_n) * 16;
        if (accumulate)
          wmma::load_matrix_sync(c[u], C + m0[u] * ldc + n0[u], ldc, wmma::mem_row_major);
        else
          wmma::fill_fragment(c[u], 0.0f);
      }
      for (int k0 = 0; k0 < K; k0 += 16) {
#pragma unroll
        for (int u = 0; u < 2; ++u) {
          if (u >= count) break;
          const int a_at = TransA ? k0 * A.ld + m0[u] : m0[u] * A.ld + k0;
          const int b_at = TransB ? n0[u] * B.ld + k0 : k0 * B.ld + n0[u];
          wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, LayoutA> a;
          wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, LayoutB> bb;
          wmma::load_matrix_sync(a, A.hi + a_at, A.ld);
          wmma::load_matrix_sync(bb, B.hi + b_at, B.ld);
          wmma::mma_sync(c[u], a, bb, c[u]);
          if (B.lo) {
            wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, LayoutB> bl;
            wmma::load_matrix_sync(bl, B.lo + b_at, B.ld);
            wmma::mma_sync(c[u], a, bl, c[u]);
          }
          if (A.lo) {
            wmma::load_matrix_sync(a, A.lo + a_at, A.ld);
            wmma::mma_sync(c[u], a, bb, c[u]);
          }
        }
      }
#pragma unroll
      for (int u = 0; u < 2; ++u)
        if (u < count)
          wmma::store_matrix_sync(C + m0[u] * ldc + n0[u], c[u], ldc, wmma::mem_row_major);
    }
  } else
#endif
  {
    auto value = [](const Operand<T>& X, int at) {
      return to_float(X.hi[at]) + (X.lo ? to_float(X.lo[at]) : 0.0f);
    };
    const int first = ((b.thread - 32 * first_warp) % b.threads + b.threads) % b.threads;
    for (int e = first; e < M * N; e += b.threads) {
      const int m = e / N, n = e % N;
      float acc = accumulate ? C[m * ldc + n] : 0.0f;
      for (int k = 0; k < K; ++k)
        acc += value(A, TransA ? k * A.ld + m : m * A.ld + k) *
               value(B, TransB ? n * B.ld + k : k * B.ld + n);
      C[m * ldc + n] = acc;
    }
  }
}

// dst [R × Cn] (leading dimension ld) = src[r * stride + c] converted to T for r < rows and
// c < cols, zero elsewhere: the padding that makes every product's sizes multiples of 16.
// On the GPU, 16-byte loads, several in flight per thread, when the rows allow them.
template <class T, class S>
DT_HD void load_tile(const Block& b, T* dst, int ld, int R, int Cn, const S* src, int64_t stride,
                     int rows, int cols) {
#if defined(__CUDA_ARCH__)
  constexpr int V = int(16 / sizeof(S));
  if (Cn % V == 0 && cols % V == 0 && stride % V == 0 &&
      (reinterpret_cast<uintptr_t>(src) & 15) == 0) {
    constexpr int kBatch = 4;
    const int per_row = Cn / V, total = R * per_row;
    for (int e0 = b.thread; e0 < total; e0 += kBatch * b.threads) {
      uint4 x[kBatch];
#pragma unroll
      for (int u = 0; u < kBatch; ++u) {
        const int e = e0 + u * b.threads, r = e / per_row, c = (e % per_row) * V;
        x[u] = (e < total && r < rows && c < cols)
                   ? *reinterpret_cast<const uint4*>(src + r * stride + c)
                   : make_uint4(0, 0, 0, 0);
      }
#pragma unroll
      for (int u = 0; u < kBatch; ++u) {
        const int e = e0 + u * b.threads, r = e / per_row, c = (e % per_row) * V;
        if (e < total) {
          const S* xs = reinterpret_cast<const S*>(&x[u]);
          // The V converted elements as one store where the tile allows (one 16- or 8-byte store
          // instead of V 2-byte ones: Nsight Compute found the narrow stores' bank conflicts).
          struct alignas(V * sizeof(T)) Vec {
            T e[V];
          } y;
#pragma unroll
          for (int i = 0; i < V; ++i) y.e[i] = from_float<T>(to_float(xs[i]));
          T* at = dst + r * ld + c;
          if ((reinterpret_cast<uintptr_t>(at) & (sizeof(Vec) - 1)) == 0) {
            *reinterpret_cast<Vec*>(at) = y;
          } else {
#pragma unroll
            for (int i = 0; i < V; ++i) at[i] = y.e[i];
          }
        }
      }
    }
    return;
  }
#endif
  for (int e = b.thread; e < R * Cn; e += b.threads) {
    const int r = e / Cn, c = e % Cn;
    dst[r * ld + c] = from_float<T>(r < rows && c < cols ? to_float(src[r * stride + c]) : 0.0f);
  }
}

// The same copy without conversion, as asynchronous 16-byte copies (cp.async, sm_80 and later)
// that bypass registers; complete after async_wait() and a block.sync(). Falls back to load_tile
// when rows are not whole 16-byte vectors.
template <class T>
DT_HD void copy_tile_async(const Block& b, T* dst, int ld, int R, int Cn, const T* src,
                           int64_t stride, int rows, int cols) {
#if defined(__CUDA_ARCH__)
  constexpr int V = kPad<T>;
  if (Cn % V == 0 && cols % V == 0 && stride % V == 0 && ld % V == 0 &&
      (reinterpret_cast<uintptr_t>(src) & 15) == 0) {
    const int per_row = Cn / V;
    for (int e = b.thread; e < R * per_row; e += b.threads) {
      const int r = e / per_row, c = (e % per_row) * V;
      const bool valid = r < rows && c < cols;
      const size_t from = __cvta_generic_to_global(valid ? src + r * stride + c : src);
      const unsigned to = unsigned(__cvta_generic_to_shared(dst + r * ld + c));
      asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(to), "l"(from),
                   "r"(valid ? 16 : 0)
                   : "memory");
    }
    return;
  }
#endif
  load_tile(b, dst, ld, R, Cn, src, stride, rows, cols);
}

// copy_tile_async for a tile whose shape is known at compile time (R rows of Cn elements, shared
// row stride LD), copied by a block of Threads threads: each thread keeps one column and steps
// down the rows, so a 16-byte copy costs a pointer step and a row test, where the general one
// derives its row and column from a flat index (~30 instructions a copy: the sequential kernels'
// profile, docs/performance.md). The caller guarantees whole 16-byte vectors: cols and stride
// multiples of 16 bytes, src 16-byte aligned (fixed_copies_fit). On the host: copy_tile_async.
template <int R, int Cn, int LD, int Threads, class T>
DT_HD void copy_fixed_tile_async(const Block& b, T* dst, const T* src, int64_t stride, int rows,
                                 int cols) {
#if defined(__CUDA_ARCH__)
  constexpr int V = kPad<T>, kPerRow = Cn / V, kTotal = R * kPerRow;
  constexpr int kCopiers = kTotal < Threads ? kTotal : Threads, kRowStep = kCopiers / kPerRow;
  static_assert(Cn % V == 0 && LD % V == 0, "rows of whole 16-byte vectors");
  static_assert(kCopiers % kPerRow == 0 && kTotal % kCopiers == 0, "a fixed column a thread");
  if (b.thread >= kCopiers) return;
  const int c = (b.thread % kPerRow) * V, r0 = b.thread / kPerRow;
  const bool column_valid = c < cols;
  const T* from = src + r0 * stride + c;
  const unsigned to = unsigned(__cvta_generic_to_shared(dst + r0 * LD + c));
#pragma unroll
  for (int i = 0; i < kTotal / kCopiers; ++i) {
    const bool valid = column_valid && r0 + i * kRowStep < rows;
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(
                     to + unsigned(i * kRowStep * LD * sizeof(T))),
                 "l"(__cvta_generic_to_global(valid ? from : src)), "r"(valid ? 16 : 0)
                 : "memory");
    from += kRowStep * stride;
  }
#else
  copy_tile_async(b, dst, LD, R, Cn, src, stride, rows, cols);
#endif
}

DT_HD void async_wait() {
#if defined(__CUDA_ARCH__)
  asm volatile("cp.async.wait_all;\n" ::: "memory");
#endif
}

// For pipelines that copy the next tile while the current one is used: async_commit() closes the
// group of copies issued since the last one; async_wait_pending<N>() waits until at most N of the
// committed groups are still in flight (N = 1: all but the newest).
DT_HD void async_commit() {
#if defined(__CUDA_ARCH__)
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}
template <int Pending>
DT_HD void async_wait_pending() {
#if defined(__CUDA_ARCH__)
  asm volatile("cp.async.wait_group %0;\n" ::"n"(Pending) : "memory");
#endif
}

}  // namespace deltatune::cuda
