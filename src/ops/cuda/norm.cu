// The norms of ops/norm_cuda.h. One warp per row (as llm.c's layernorm kernels): the row's sums
// are a warp reduction, no shared memory and no barrier. The three norms share one body each way:
//   forward   s = Σ x²; r = 1/sqrt(s/dim + eps) (RMS) or 1/sqrt(s + eps) (L2); y = x r · scale
//   backward  with x̂ = x r and g = dy · scale (the gradient reaching x̂):
//             dx = r (g − x̂ c), c = Σ g x̂ / dim (RMS) or Σ g x̂ (L2)       ops/cpu/norm.cpp
// where scale is (1 + w), w silu(z) or 1. Σ g x̂ = r Σ g x, so one pass over the row gives both
// sums and a second writes the outputs. The weight gradient (Σ over rows of dy x̂ (silu z)) goes
// to a per-warp row of shared memory, then per block to the workspace, then over blocks to dw.
#include <algorithm>

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

template <class T>
DT_HD float scale_of(const NormArgs<T>& a, int64_t row, int i) {
  switch (a.kind) {
    case NormKind::ZeroCentred:
      return 1.0f + to_float(a.w[i]);
    case NormKind::Gated:
      return to_float(a.w[i]) * cuda::siluf(to_float(a.z[row * a.ldz + i]));
    default:
      return 1.0f;
  }
}

template <class T>
DT_HD float inverse_norm(const NormArgs<T>& a, float sum_squares) {
  const float mean = a.kind == NormKind::L2 ? sum_squares : sum_squares / float(a.dim);
  return 1.0f / sqrtf(mean + a.eps);
}

// Rows of a block: kWarps consecutive rows, one per (virtual) warp; on the host one thread plays
// every warp in turn, so the partition of rows never depends on the thread count.
template <class T, int kWarps>
struct NormForwardBody {
  NormArgs<T> a;
  DT_HD void operator()(const Block& b, int bx, int, int, char*) const {
    const Warp warp = cuda::warp_of(b);
    for (int vw = warp.index; vw < kWarps; vw += warp.count) {
      const int64_t row = int64_t(bx) * kWarps + vw;
      if (row >= a.rows) continue;
      const T* x = a.x + row * a.ldx;
      float ss = 0.0f;
      for (int i = warp.lane; i < a.dim; i += warp.lanes) ss += to_float(x[i]) * to_float(x[i]);
      const float r = inverse_norm(a, cuda::warp_sum(ss));
      T* y = a.y + row * a.ldy;
      for (int i = warp.lane; i < a.dim; i += warp.lanes)
        y[i] = from_float<T>(to_float(x[i]) * r * scale_of(a, row, i));
    }
  }
};

// Rows row0, row0 + stride, ... for each virtual warp; with dw, each warp sums dy x̂ (silu z) of its
// rows into its own shared row, and the block writes the sum of its warps' rows to dw_partials[bx].
template <class T, int kWarps>
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
        for (int i = warp.lane; i < a.dim; i += warp.lanes) {
          const float xi = to_float(x[i]);
          ss += xi * xi;
          gx += to_float(dy[i]) * scale_of(a, row, i) * xi;
        }
        const float r = inverse_norm(a, cuda::warp_sum(ss));
        const float c = r * cuda::warp_sum(gx) / (a.kind == NormKind::L2 ? 1.0f : float(a.dim));
        T* dx = a.dx + row * a.lddx;
        for (int i = warp.lane; i < a.dim; i += warp.lanes) {
          const float xhat = to_float(x[i]) * r, dyi = to_float(dy[i]);
          const float g = dyi * scale_of(a, row, i);
          if (a.kind == NormKind::Gated) {
            const float z = to_float(a.z[row * a.ldz + i]), w = to_float(a.w[i]);
            a.dz[row * a.lddz + i] = from_float<T>(dyi * xhat * w * cuda::silu_gradf(z));
            if (a.dw_partials) dw_row[i] += dyi * xhat * cuda::siluf(z);
          } else if (a.dw_partials) {
            dw_row[i] += dyi * xhat;
          }
          dx[i] = from_float<T>(r * (g - xhat * c));  // after every read of dy: dx may be dy
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
  constexpr int kWarps = kForwardThreads / 32;
  cuda::launch<kForwardThreads>(target, name, NormForwardBody<T, kWarps>{a},
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
  using Body = NormBackwardBody<T, kBackwardWarps>;
  cuda::launch<kBackwardThreads>(target, name, Body{a, blocks * kBackwardWarps},
                                 dim3(unsigned(blocks)), Body::shared_bytes(a));
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
