// The norms of ops/norm_cuda.h. One warp per row (as llm.c's layernorm kernels): the row's sums
// are a warp reduction, no shared memory and no barrier. The three norms share one body each way:
//   forward   s = Σ x²; r = 1/sqrt(s/dim + eps) (RMS) or 1/sqrt(s + eps) (L2); y = x r · scale
//   backward  with x̂ = x r and g = dy · scale (the gradient reaching x̂):
//             dx = r (g − x̂ c), c = Σ g x̂ / dim (RMS) or Σ g x̂ (L2)       ops/cpu/norm.cpp
// where scale is (1 + w), w silu(z) or 1. Σ g x̂ = r Σ g x, so one pass over the row gives both
// sums and a second writes the outputs. The weight gradient (Σ over rows of dy x̂ (silu z)) goes
// to a per-warp row of shared memory, then per block to the workspace, then over blocks to dw.
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "ops/cuda/kernel_runner.cuh"
#include "ops/norm_cuda.h"

namespace deltatune {

namespace {

using cuda::Block;
using cuda::from_float;
using cuda::to_float;
using cuda::Warp;

enum class NormKind { ZeroCentred, Gated, L2 };

constexpr int kForwardThreads = 256;
constexpr int kBackwardThreads = 128;   // 4 warps: 4 rows of dw partials in shared memory
constexpr int kMaxPartialBlocks = 512;  // bounds the workspace and the final sum over blocks

// Pointers and row strides of one call; z and dz are used by the gated norm only, w not by L2.
template <class T>
struct NormArgs {
  NormKind kind;
  int64_t rows;
  int dim;
  float eps;
  const T *x = nullptr, *z = nullptr, *w = nullptr;
  int64_t ldx = 0, ldz = 0;
  T* y = nullptr;  // forward
  int64_t ldy = 0;
  const T* dy = nullptr;  // backward
  int64_t lddy = 0;
  T *dx = nullptr, *dz = nullptr;
  int64_t lddx = 0, lddz = 0;
  float* dw_partials = nullptr;  // [blocks][dim], null = no dw
};

using cuda::load_n;
using cuda::store_n;

// The scale of elements i0 .. i0 + N − 1 of a row: (1 + w), w silu(z) or 1; z of the gated norm
// into zs (its gradient needs it).
template <int N, class T>
DT_HD void scales_of(const NormArgs<T>& a, int64_t row, int i0, float* scale, float* zs) {
  if (a.kind == NormKind::L2) {
#pragma unroll
    for (int k = 0; k < N; ++k) scale[k] = 1.0f;
    return;
  }
  load_n<N>(a.w + i0, scale);
  if (a.kind == NormKind::ZeroCentred) {
#pragma unroll
    for (int k = 0; k < N; ++k) scale[k] += 1.0f;
    return;
  }
  load_n<N>(a.z + row * a.ldz + i0, zs);
#pragma unroll
  for (int k = 0; k < N; ++k) scale[k] *= cuda::siluf(zs[k]);
}

template <class T>
DT_HD float inverse_norm(const NormArgs<T>& a, float sum_squares) {
  const float mean = a.kind == NormKind::L2 ? sum_squares : sum_squares / float(a.dim);
  return 1.0f / sqrtf(mean + a.eps);
}

// Rows of a block: kWarps consecutive rows, one per (virtual) warp; on the host one thread plays
// every warp in turn, so the partition of rows never depends on the thread count. A lane takes N
// consecutive elements at a time (N > 1: 16-byte loads, a warp reads 512 contiguous bytes).
template <class T, int kWarps, int N>
struct NormForwardBody {
  NormArgs<T> a;
  DT_HD void operator()(const Block& b, int bx, int, int, char*) const {
    const Warp warp = cuda::warp_of(b);
    for (int vw = warp.index; vw < kWarps; vw += warp.count) {
      const int64_t row = int64_t(bx) * kWarps + vw;
      if (row >= a.rows) continue;
      const T* x = a.x + row * a.ldx;
      float ss = 0.0f;
      for (int i0 = warp.lane * N; i0 < a.dim; i0 += warp.lanes * N) {
        float xs[N];
        load_n<N>(x + i0, xs);
#pragma unroll
        for (int k = 0; k < N; ++k) ss += xs[k] * xs[k];
      }
      const float r = inverse_norm(a, cuda::warp_sum(ss));
      T* y = a.y + row * a.ldy;
      for (int i0 = warp.lane * N; i0 < a.dim; i0 += warp.lanes * N) {
        float xs[N], scale[N], zs[N];
        load_n<N>(x + i0, xs);  // a second read of the row: from L1, the warp just read it
        scales_of<N>(a, row, i0, scale, zs);
#pragma unroll
        for (int k = 0; k < N; ++k) xs[k] *= r * scale[k];
        store_n<N>(y + i0, xs);
      }
    }
  }
};

// Rows row0, row0 + stride, ... for each virtual warp; with dw, each warp sums dy x̂ (silu z) of its
// rows into its own shared row, and the block writes the sum of its warps' rows to dw_partials[bx].
template <class T, int kWarps, int N>
struct NormBackwardBody {
  NormArgs<T> a;
  int64_t row_stride;  // blocks × kWarps
  static size_t shared_bytes(const NormArgs<T>& a) {
    return a.dw_partials ? size_t(kWarps) * size_t(a.dim) * sizeof(float) : 0;
  }
  DT_HD void operator()(const Block& b, int bx, int, int, char* shared) const {
    float* dw_rows = reinterpret_cast<float*>(shared);  // [kWarps][dim]
    if (a.dw_partials) {
      for (int e = b.thread; e < kWarps * a.dim; e += b.threads) dw_rows[e] = 0.0f;
      b.sync();
    }
    const Warp warp = cuda::warp_of(b);
    for (int vw = warp.index; vw < kWarps; vw += warp.count) {
      float* dw_row = dw_rows + vw * a.dim;
      for (int64_t row = int64_t(bx) * kWarps + vw; row < a.rows; row += row_stride) {
        const T* x = a.x + row * a.ldx;
        const T* dy = a.dy + row * a.lddy;
        float ss = 0.0f, gx = 0.0f;
        for (int i0 = warp.lane * N; i0 < a.dim; i0 += warp.lanes * N) {
          float xs[N], dys[N], scale[N], zs[N];
          load_n<N>(x + i0, xs);
          load_n<N>(dy + i0, dys);
          scales_of<N>(a, row, i0, scale, zs);
#pragma unroll
          for (int k = 0; k < N; ++k) {
            ss += xs[k] * xs[k];
            gx += dys[k] * scale[k] * xs[k];
          }
        }
        const float r = inverse_norm(a, cuda::warp_sum(ss));
        const float c = r * cuda::warp_sum(gx) / (a.kind == NormKind::L2 ? 1.0f : float(a.dim));
        T* dx = a.dx + row * a.lddx;
        for (int i0 = warp.lane * N; i0 < a.dim; i0 += warp.lanes * N) {
          float xs[N], dys[N], scale[N], zs[N], out[N];
          load_n<N>(x + i0, xs);
          load_n<N>(dy + i0, dys);
          scales_of<N>(a, row, i0, scale, zs);
          if (a.kind == NormKind::Gated) {
            float ws[N], dz[N];
            load_n<N>(a.w + i0, ws);
#pragma unroll
            for (int k = 0; k < N; ++k) {
              const float xhat = xs[k] * r;
              dz[k] = dys[k] * xhat * ws[k] * cuda::silu_gradf(zs[k]);
              if (a.dw_partials) dw_row[i0 + k] += dys[k] * xhat * cuda::siluf(zs[k]);
            }
            store_n<N>(a.dz + row * a.lddz + i0, dz);
          } else if (a.dw_partials) {
#pragma unroll
            for (int k = 0; k < N; ++k) dw_row[i0 + k] += dys[k] * xs[k] * r;
          }
#pragma unroll
          for (int k = 0; k < N; ++k) out[k] = r * (dys[k] * scale[k] - xs[k] * r * c);
          store_n<N>(dx + i0, out);  // after every read of dy: dx may be dy
        }
      }
    }
    if (!a.dw_partials) return;
    b.sync();
    for (int i = b.thread; i < a.dim; i += b.threads) {
      float s = 0.0f;
      for (int w = 0; w < kWarps; ++w) s += dw_rows[w * a.dim + i];
      a.dw_partials[int64_t(bx) * a.dim + i] = s;
    }
  }
};

// Elements a lane takes at a time: 16 bytes' worth when every row of every operand starts
// 16-byte aligned, else 1.
template <class T>
int vector_width(const NormArgs<T>& a) {
  constexpr int N = cuda::kVector<T>;
  bool ok = a.dim % N == 0;
  ok = ok && cuda::aligned_16({a.x, a.z, a.w, a.y, a.dy, a.dx, a.dz});
  const int64_t strides[] = {a.ldx, a.ldz, a.ldy, a.lddy, a.lddx, a.lddz};
  for (int64_t ld : strides) ok = ok && ld % N == 0;
  return ok ? N : 1;
}

constexpr int kBackwardWarps = kBackwardThreads / 32;

int64_t partial_blocks(int64_t rows) {
  return std::clamp<int64_t>((rows + kBackwardWarps - 1) / kBackwardWarps, 1, kMaxPartialBlocks);
}

template <class T>
void check_rows(const NormArgs<T>& a, const char* name) {
  DT_CHECK(a.rows >= 0 && a.dim > 0, name, ": rows must be >= 0 and dim > 0, got rows=", a.rows,
           " dim=", a.dim);
}

template <class T>
void run_forward(const NormArgs<T>& a, const char* name, cuda::Target target) {
  check_rows(a, name);
  constexpr int kWarps = kForwardThreads / 32, N = cuda::kVector<T>;
  if (vector_width(a) == N)
    cuda::launch<kForwardThreads>(target, name, NormForwardBody<T, kWarps, N>{a},
                                  cuda::blocks_for(a.rows, kWarps));
  else
    cuda::launch<kForwardThreads>(target, name, NormForwardBody<T, kWarps, 1>{a},
                                  cuda::blocks_for(a.rows, kWarps));
}

template <class T>
void run_backward(NormArgs<T> a, float* dw, void* workspace, const char* name,
                  cuda::Target target) {
  check_rows(a, name);
  if (a.rows == 0) return;
  const int64_t blocks =
      dw ? partial_blocks(a.rows) : (a.rows + kBackwardWarps - 1) / kBackwardWarps;
  DT_CHECK(blocks < (int64_t(1) << 31), name, ": too many rows (", a.rows, ")");
  DT_CHECK(!dw || workspace, name, ": dw needs a workspace of norm_cuda_dw_workspace_bytes");
  a.dw_partials = dw ? static_cast<float*>(workspace) : nullptr;
  auto launch = [&](auto width) {
    using Body = NormBackwardBody<T, kBackwardWarps, decltype(width)::value>;
    cuda::launch<kBackwardThreads>(target, name, Body{a, blocks * kBackwardWarps},
                                   dim3(unsigned(blocks)), Body::shared_bytes(a));
  };
  if (vector_width(a) > 1)
    launch(std::integral_constant<int, cuda::kVector<T>>{});
  else
    launch(std::integral_constant<int, 1>{});
  if (dw) cuda::sum_partials(target, "norm: dw over blocks", a.dw_partials, blocks, a.dim, dw);
}

int64_t stride_or(int64_t ld, int64_t dim) { return ld < 0 ? dim : ld; }

}  // namespace

size_t norm_cuda_dw_workspace_bytes(int64_t rows, int64_t dim) {
  return size_t(partial_blocks(rows)) * size_t(dim) * sizeof(float);
}

template <class T>
void rmsnorm_zero_centred_cuda_forward(const T* x, int64_t rows, int64_t dim, const T* w,
                                       double eps, T* y, int64_t ldx, int64_t ldy,
                                       cuda::Target target) {
  const NormArgs<T> a{.kind = NormKind::ZeroCentred, .rows = rows, .dim = int(dim),
                      .eps = float(eps), .x = x, .w = w, .ldx = stride_or(ldx, dim),
                      .y = y, .ldy = stride_or(ldy, dim)};
  run_forward(a, "zero-centred RMSNorm forward", target);
}

template <class T>
void rmsnorm_zero_centred_cuda_backward(const T* x, int64_t rows, int64_t dim, const T* w,
                                        double eps, const T* dy, T* dx, float* dw, void* workspace,
                                        int64_t ldx, int64_t ldy, cuda::Target target) {
  const NormArgs<T> a{.kind = NormKind::ZeroCentred, .rows = rows, .dim = int(dim),
                      .eps = float(eps), .x = x, .w = w, .ldx = stride_or(ldx, dim),
                      .dy = dy, .lddy = stride_or(ldy, dim), .dx = dx,
                      .lddx = stride_or(ldx, dim)};
  run_backward(a, dw, workspace, "zero-centred RMSNorm backward", target);
}

template <class T>
void gated_rmsnorm_cuda_forward(const T* x, const T* z, int64_t rows, int64_t dim, const T* w,
                                double eps, T* y, cuda::Target target) {
  const NormArgs<T> a{.kind = NormKind::Gated, .rows = rows, .dim = int(dim), .eps = float(eps),
                      .x = x, .z = z, .w = w, .ldx = dim, .ldz = dim, .y = y, .ldy = dim};
  run_forward(a, "gated RMSNorm forward", target);
}

template <class T>
void gated_rmsnorm_cuda_backward(const T* x, const T* z, int64_t rows, int64_t dim, const T* w,
                                 double eps, const T* dy, T* dx, T* dz, float* dw, void* workspace,
                                 cuda::Target target) {
  const NormArgs<T> a{.kind = NormKind::Gated, .rows = rows, .dim = int(dim), .eps = float(eps),
                      .x = x, .z = z, .w = w, .ldx = dim, .ldz = dim, .dy = dy, .lddy = dim,
                      .dx = dx, .dz = dz, .lddx = dim, .lddz = dim};
  run_backward(a, dw, workspace, "gated RMSNorm backward", target);
}

template <class T>
void l2norm_cuda_forward(const T* x, int64_t rows, int64_t dim, double eps, T* y, int64_t ldx,
                         int64_t ldy, cuda::Target target) {
  const NormArgs<T> a{.kind = NormKind::L2, .rows = rows, .dim = int(dim), .eps = float(eps),
                      .x = x, .ldx = stride_or(ldx, dim), .y = y, .ldy = stride_or(ldy, dim)};
  run_forward(a, "L2 norm forward", target);
}

template <class T>
void l2norm_cuda_backward(const T* x, int64_t rows, int64_t dim, double eps, const T* dy, T* dx,
                          int64_t ldx, int64_t lddx, cuda::Target target) {
  const NormArgs<T> a{.kind = NormKind::L2, .rows = rows, .dim = int(dim), .eps = float(eps),
                      .x = x, .ldx = stride_or(ldx, dim), .dy = dy, .lddy = dim, .dx = dx,
                      .lddx = stride_or(lddx, dim)};
  run_backward(a, nullptr, nullptr, "L2 norm backward", target);
}

// clang-format off
#define DT_INSTANTIATE(T)                                                                          \
  template void rmsnorm_zero_centred_cuda_forward<T>(const T*, int64_t, int64_t, const T*, double, \
                                                     T*, int64_t, int64_t, cuda::Target);          \
  template void rmsnorm_zero_centred_cuda_backward<T>(const T*, int64_t, int64_t, const T*,        \
                                                      double, const T*, T*, float*, void*,         \
                                                      int64_t, int64_t, cuda::Target);             \
  template void gated_rmsnorm_cuda_forward<T>(const T*, const T*, int64_t, int64_t, const T*,      \
                                              double, T*, cuda::Target);                           \
  template void gated_rmsnorm_cuda_backward<T>(const T*, const T*, int64_t, int64_t, const T*,     \
                                               double, const T*, T*, T*, float*, void*,            \
                                               cuda::Target);                                      \
  template void l2norm_cuda_forward<T>(const T*, int64_t, int64_t, double, T*, int64_t, int64_t,   \
                                       cuda::Target);                                              \
  template void l2norm_cuda_backward<T>(const T*, int64_t, int64_t, double, const T*, T*, int64_t, \
                                        int64_t, cuda::Target);
DT_INSTANTIATE(float)
DT_INSTANTIATE(__nv_bfloat16)
#undef DT_INSTANTIATE
// clang-format on

}  // namespace deltatune
