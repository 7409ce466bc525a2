// SwiGLU (ops/activation_cuda.h): memory-bound elementwise kernels, kPerBlock elements per block,
// consecutive threads on consecutive elements so every warp's loads coalesce.
#include <algorithm>

#include "ops/activation_cuda.h"
#include "ops/cuda/kernel_runner.cuh"

namespace deltatune {

namespace {

using cuda::Block;
using cuda::from_float;
using cuda::to_float;

constexpr int kThreads = 256;
constexpr int64_t kPerBlock = 8 * kThreads;

template <class T>
struct SwigluForwardBody {
  const T *gate, *up;
  int64_t n;
  T* h;
  DT_HD void operator()(const Block& b, int bx, int, int, char*) const {
    const int64_t end = cuda::min_of(n, (int64_t(bx) + 1) * kPerBlock);
    for (int64_t i = int64_t(bx) * kPerBlock + b.thread; i < end; i += b.threads)
      h[i] = from_float<T>(cuda::siluf(to_float(gate[i])) * to_float(up[i]));
  }
};

// dgate = dh · up · silu'(gate), dup = dh · silu(gate); both read before either is written.
template <class T>
struct SwigluBackwardBody {
  const T *gate, *up, *dh;
  int64_t n;
  T *dgate, *dup;
  DT_HD void operator()(const Block& b, int bx, int, int, char*) const {
    const int64_t end = cuda::min_of(n, (int64_t(bx) + 1) * kPerBlock);
    for (int64_t i = int64_t(bx) * kPerBlock + b.thread; i < end; i += b.threads) {
      const float g = to_float(gate[i]), u = to_float(up[i]), d = to_float(dh[i]);
      dgate[i] = from_float<T>(d * u * cuda::silu_gradf(g));
      dup[i] = from_float<T>(d * cuda::siluf(g));
    }
  }
};

}  // namespace

template <class T>
void swiglu_cuda_forward(const T* gate, const T* up, int64_t n, T* h, cuda::Target target) {
  cuda::launch<kThreads>(target, "SwiGLU forward", SwigluForwardBody<T>{gate, up, n, h},
                         cuda::blocks_for(n, kPerBlock));
}

template <class T>
void swiglu_cuda_backward(const T* gate, const T* up, const T* dh, int64_t n, T* dgate, T* dup,
                          cuda::Target target) {
  cuda::launch<kThreads>(target, "SwiGLU backward",
                         SwigluBackwardBody<T>{gate, up, dh, n, dgate, dup},
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
