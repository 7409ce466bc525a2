// SwiGLU (ops/activation_cuda.h): memory-bound elementwise kernels, kPerBlock elements per block,
// consecutive threads on consecutive elements (16-byte vectors of them where aligned) so every
// warp's loads coalesce.
#include <algorithm>
#include <initializer_list>

#include "ops/activation_cuda.h"
#include "ops/cuda/kernel_runner.cuh"

namespace deltatune {

namespace {

using cuda::Block;
using cuda::from_float;
using cuda::to_float;

constexpr int kThreads = 256;
constexpr int64_t kPerBlock = 8 * kThreads;

// h = silu(gate) · up, N elements a thread at a time (cuda::load_n).
template <class T, int N>
struct SwigluForwardBody {
  const T *gate, *up;
  int64_t n;
  T* h;
  DT_HD void operator()(const Block& b, int bx, int, int, char*) const {
    cuda::for_vectors<N>(b, bx, kPerBlock, n, [&](int64_t i) {
      float g[N], u[N];
      cuda::load_n<N>(gate + i, g);
      cuda::load_n<N>(up + i, u);
#pragma unroll
      for (int k = 0; k < N; ++k) g[k] = cuda::siluf(g[k]) * u[k];
      cuda::store_n<N>(h + i, g);
    });
  }
};

// dgate = dh · up · silu'(gate), dup = dh · silu(gate); both read before either is written.
template <class T, int N>
struct SwigluBackwardBody {
  const T *gate, *up, *dh;
  int64_t n;
  T *dgate, *dup;
  DT_HD void operator()(const Block& b, int bx, int, int, char*) const {
    cuda::for_vectors<N>(b, bx, kPerBlock, n, [&](int64_t i) {
      float g[N], u[N], d[N], dg[N], du[N];
      cuda::load_n<N>(gate + i, g);
      cuda::load_n<N>(up + i, u);
      cuda::load_n<N>(dh + i, d);
#pragma unroll
      for (int k = 0; k < N; ++k) {
        dg[k] = d[k] * u[k] * cuda::silu_gradf(g[k]);
        du[k] = d[k] * cuda::siluf(g[k]);
      }
      cuda::store_n<N>(dgate + i, dg);
      cuda::store_n<N>(dup + i, du);
    });
  }
};

// 16-byte vectors when every array is 16-byte aligned and n a multiple of the vector, else one
// element a thread.
template <class T>
bool vectorizable(int64_t n, std::initializer_list<const void*> arrays) {
  return n % cuda::kVector<T> == 0 && cuda::aligned_16(arrays);
}

}  // namespace

template <class T>
void swiglu_cuda_forward(const T* gate, const T* up, int64_t n, T* h, cuda::Target target) {
  constexpr int N = cuda::kVector<T>;
  if (vectorizable<T>(n, {gate, up, h}))
    cuda::launch<kThreads>(target, "SwiGLU forward", SwigluForwardBody<T, N>{gate, up, n, h},
                           cuda::blocks_for(n, kPerBlock));
  else
    cuda::launch<kThreads>(target, "SwiGLU forward", SwigluForwardBody<T, 1>{gate, up, n, h},
                           cuda::blocks_for(n, kPerBlock));
}

template <class T>
void swiglu_cuda_backward(const T* gate, const T* up, const T* dh, int64_t n, T* dgate, T* dup,
                          cuda::Target target) {
  constexpr int N = cuda::kVector<T>;
  if (vectorizable<T>(n, {gate, up, dh, dgate, dup}))
    cuda::launch<kThreads>(target, "SwiGLU backward",
                           SwigluBackwardBody<T, N>{gate, up, dh, n, dgate, dup},
                           cuda::blocks_for(n, kPerBlock));
  else
    cuda::launch<kThreads>(target, "SwiGLU backward",
                           SwigluBackwardBody<T, 1>{gate, up, dh, n, dgate, dup},
                           cuda::blocks_for(n, kPerBlock));
}

#define DT_INSTANTIATE(T)                                                              \
  template void swiglu_cuda_forward<T>(const T*, const T*, int64_t, T*, cuda::Target); \
  template void swiglu_cuda_backward<T>(const T*, const T*, const T*, int64_t, T*, T*, \
                                        cuda::Target);
DT_INSTANTIATE(float)
DT_INSTANTIATE(__nv_bfloat16)
#undef DT_INSTANTIATE

}  // namespace deltatune
