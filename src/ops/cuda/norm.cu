// The norms of ops/norm_cuda.h. One warp per row (as llm.c's layernorm kernels), or half a warp
// for rows of 128 bf16: the row's sums are a warp reduction, no shared memory and no barrier. The
// three norms share one body each way:
//   forward   s = Σ x²; r = 1/sqrt(s/dim + eps) (RMS) or 1/sqrt(s + eps) (L2); y = x r · scale
//   backward  with x̂ = x r and g = dy · scale (the gradient reaching x̂):
//             dx = r (g − x̂ c), c = Σ g x̂ / dim (RMS) or Σ g x̂ (L2)       ops/cpu/norm.cpp
// where scale is (1 + w), w silu(z) or 1. Σ g x̂ = r Σ g x, so one pass over the row gives both
// sums and a second writes the outputs. The weight gradient (Σ over rows of dy x̂ (silu z)) goes
// to a per-group row of shared memory, then per block to the workspace, then over blocks to dw.
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
  // ≠ 1: y rounded to T, times out_scale (forward); dy times dy_scale, rounded to T (backward).
  float out_scale = 1.0f, dy_scale = 1.0f;
  // Forward: x += residual first (rounded to T, written to x_sum = x). Backward: dx += residual
  // last (dx rounded to T before the add). Rows of residual as x's (forward) or dx's (backward).
  const T* residual = nullptr;
  T* x_sum = nullptr;
};

// v → round(round(v) · s) (forward) or round(v · s) (backward's dy, already in T): the bits of a
// separate scaling pass over a T array, folded into the norm's own pass.
template <int N, class T>
DT_HD void scale_rounded(float* v, float s, bool round_first) {
#pragma unroll
  for (int k = 0; k < N; ++k) {
    const float r = round_first ? to_float(from_float<T>(v[k])) : v[k];
    v[k] = to_float(from_float<T>(r * s));
  }
}

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

// Rows of a block: kRows consecutive rows, one per group of kLanes lanes (a warp, or half of one
// for rows of 16 vectors or fewer: rows of 128 bf16 otherwise left half of every warp idle); on
// the host one thread plays every group in turn, so the partition of rows never depends on the
// thread count. A lane takes N consecutive elements at a time (N > 1: 16-byte loads, a warp reads
// 512 contiguous bytes). A group past the last row loads nothing but still takes part in the
// sums: the shuffles need every lane of the warp.
template <class T, int kRows, int N, int kLanes>
struct NormForwardBody {
  NormArgs<T> a;
  DT_HD void operator()(const Block& b, int bx, int, int, char*) const {
    const Warp group = cuda::warp_of<kLanes>(b);
    for (int vr = group.index; vr < kRows; vr += group.count) {
      const int64_t row = int64_t(bx) * kRows + vr;
      const int dim = row < a.rows ? a.dim : 0;
      const T* x = a.x + row * a.ldx;
      float ss = 0.0f;
      for (int i0 = group.lane * N; i0 < dim; i0 += group.lanes * N) {
        float xs[N];
        load_n<N>(x + i0, xs);
        if (a.residual) {  // the sum rounded as add_cuda rounds it; pass 2 reads it back
          float rs[N];
          load_n<N>(a.residual + row * a.ldx + i0, rs);
#pragma unroll
          for (int k = 0; k < N; ++k) xs[k] = to_float(from_float<T>(xs[k] + rs[k]));
          store_n<N>(a.x_sum + row * a.ldx + i0, xs);
        }
#pragma unroll
        for (int k = 0; k < N; ++k) ss += xs[k] * xs[k];
      }
      const float r = inverse_norm(a, cuda::warp_sum<kLanes>(ss));
      T* y = a.y + row * a.ldy;
      for (int i0 = group.lane * N; i0 < dim; i0 += group.lanes * N) {
        float xs[N], scale[N], zs[N];
        load_n<N>(x + i0, xs);  // a second read of the row: from L1, the warp just read it
        scales_of<N>(a, row, i0, scale, zs);
#pragma unroll
        for (int k = 0; k < N; ++k) xs[k] *= r * scale[k];
        if (a.out_scale != 1.0f) scale_rounded<N, T>(xs, a.out_scale, true);
        store_n<N>(y + i0, xs);
      }
    }
  }
};

// Rows r0 + vr for r0 = bx · kRows, then + row_stride, ... for each group vr (r0 is the same in
// every lane of the block, so the groups of a warp reach the sums together); with dw, each group
// sums dy x̂ (silu z) of its rows into its own shared row, and the block writes the sum of its
// groups' rows to dw_partials[bx].
template <class T, int kRows, int N, int kLanes>
struct NormBackwardBody {
  NormArgs<T> a;
  int64_t row_stride;  // blocks × kRows
  static size_t shared_bytes(const NormArgs<T>& a) {
    return a.dw_partials ? size_t(kRows) * size_t(a.dim) * sizeof(float) : 0;
  }
  DT_HD void operator()(const Block& b, int bx, int, int, char* shared) const {
    float* dw_rows = reinterpret_cast<float*>(shared);  // [kRows][dim]
    if (a.dw_partials) {
      for (int e = b.thread; e < kRows * a.dim; e += b.threads) dw_rows[e] = 0.0f;
      b.sync();
    }
    const Warp group = cuda::warp_of<kLanes>(b);
    for (int vr = group.index; vr < kRows; vr += group.count) {
      float* dw_row = dw_rows + vr * a.dim;
      for (int64_t r0 = int64_t(bx) * kRows; r0 < a.rows; r0 += row_stride) {
        const int64_t row = r0 + vr;
        const int dim = row < a.rows ? a.dim : 0;
        const T* x = a.x + row * a.ldx;
        const T* dy = a.dy + row * a.lddy;
        float ss = 0.0f, gx = 0.0f;
        for (int i0 = group.lane * N; i0 < dim; i0 += group.lanes * N) {
          float xs[N], dys[N], scale[N], zs[N];
          load_n<N>(x + i0, xs);
          load_n<N>(dy + i0, dys);
          if (a.dy_scale != 1.0f) scale_rounded<N, T>(dys, a.dy_scale, false);
          scales_of<N>(a, row, i0, scale, zs);
#pragma unroll
          for (int k = 0; k < N; ++k) {
            ss += xs[k] * xs[k];
            gx += dys[k] * scale[k] * xs[k];
          }
        }
        const float r = inverse_norm(a, cuda::warp_sum<kLanes>(ss));
        const float c =
            r * cuda::warp_sum<kLanes>(gx) / (a.kind == NormKind::L2 ? 1.0f : float(a.dim));
        T* dx = a.dx + row * a.lddx;
        for (int i0 = group.lane * N; i0 < dim; i0 += group.lanes * N) {
          float xs[N], dys[N], scale[N], zs[N], out[N];
          load_n<N>(x + i0, xs);
          load_n<N>(dy + i0, dys);
          if (a.dy_scale != 1.0f) scale_rounded<N, T>(dys, a.dy_scale, false);
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
          if (a.residual) {
            float rs[N];
            load_n<N>(a.residual + row * a.lddx + i0, rs);
#pragma unroll
            for (int k = 0; k < N; ++k) out[k] = to_float(from_float<T>(out[k])) + rs[k];
          }
          store_n<N>(dx + i0, out);  // after every read of dy: dx may be dy
        }
      }
    }
    if (!a.dw_partials) return;
    b.sync();
    for (int i = b.thread; i < a.dim; i += b.threads) {
      float s = 0.0f;
      for (int w = 0; w < kRows; ++w) s += dw_rows[w * a.dim + i];
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
  ok = ok && cuda::aligned_16({a.x, a.z, a.w, a.y, a.dy, a.dx, a.dz, a.residual, a.x_sum});
  const int64_t strides[] = {a.ldx, a.ldz, a.ldy, a.lddy, a.lddx, a.lddz};
  for (int64_t ld : strides) ok = ok && ld % N == 0;
  return ok ? N : 1;
}

// Lanes a row: 16 where a row is at most 16 vectors of N (rows of 128 bf16: two rows a warp),
// else a whole warp.
int lanes_for(int dim, int N) { return N > 1 && dim <= 16 * N ? 16 : 32; }

// Blocks of the backward: one row a group, or with dw at most kMaxPartialBlocks of them (each
// then walks rows a grid apart).
int64_t backward_blocks(int64_t rows, int rows_per_block, bool dw) {
  const int64_t blocks = (rows + rows_per_block - 1) / rows_per_block;
  return dw ? std::clamp<int64_t>(blocks, 1, kMaxPartialBlocks) : blocks;
}

template <class T>
void check_rows(const NormArgs<T>& a, const char* name) {
  DT_CHECK(a.rows >= 0 && a.dim > 0, name, ": rows must be >= 0 and dim > 0, got rows=", a.rows,
           " dim=", a.dim);
}

// Calls run(N, kLanes) with the vector width and lanes a row of this call, as constants.
template <class T, class Run>
void with_shape(const NormArgs<T>& a, const Run& run) {
  constexpr int N = cuda::kVector<T>;
  if (vector_width(a) != N)
    run(std::integral_constant<int, 1>{}, std::integral_constant<int, 32>{});
  else if (lanes_for(a.dim, N) == 16)
    run(std::integral_constant<int, N>{}, std::integral_constant<int, 16>{});
  else
    run(std::integral_constant<int, N>{}, std::integral_constant<int, 32>{});
}

template <class T>
void run_forward(const NormArgs<T>& a, const char* name, cuda::Target target) {
  check_rows(a, name);
  with_shape(a, [&](auto width, auto lanes) {
    constexpr int kRows = kForwardThreads / decltype(lanes)::value;
    using Body = NormForwardBody<T, kRows, decltype(width)::value, decltype(lanes)::value>;
    cuda::launch<kForwardThreads>(target, name, Body{a}, cuda::blocks_for(a.rows, kRows));
  });
}

template <class T>
void run_backward(NormArgs<T> a, float* dw, void* workspace, const char* name,
                  cuda::Target target) {
  check_rows(a, name);
  if (a.rows == 0) return;
  DT_CHECK(!dw || workspace, name, ": dw needs a workspace of norm_cuda_dw_workspace_bytes");
  a.dw_partials = dw ? static_cast<float*>(workspace) : nullptr;
  int64_t blocks = 0;
  with_shape(a, [&](auto width, auto lanes) {
    constexpr int kRows = kBackwardThreads / decltype(lanes)::value;
    using Body = NormBackwardBody<T, kRows, decltype(width)::value, decltype(lanes)::value>;
    blocks = backward_blocks(a.rows, kRows, dw != nullptr);
    DT_CHECK(blocks < (int64_t(1) << 31), name, ": too many rows (", a.rows, ")");
    cuda::launch<kBackwardThreads>(target, name, Body{a, blocks * kRows}, dim3(unsigned(blocks)),
                                   Body::shared_bytes(a));
  });
  if (dw) cuda::sum_partials(target, "norm: dw over blocks", a.dw_partials, blocks, a.dim, dw);
}

int64_t stride_or(int64_t ld, int64_t dim) { return ld < 0 ? dim : ld; }

}  // namespace

size_t norm_cuda_dw_workspace_bytes(int64_t rows, int64_t dim) {
  // The most blocks any shape takes: rows of a whole warp each (fewer rows a block).
  return size_t(backward_blocks(rows, kBackwardThreads / 32, true)) * size_t(dim) * sizeof(float);
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
void add_rmsnorm_zero_centred_cuda_forward(T* x, const T* residual, int64_t rows, int64_t dim,
                                           const T* w, double eps, T* y, cuda::Target target) {
  const NormArgs<T> a{.kind = NormKind::ZeroCentred, .rows = rows, .dim = int(dim),
                      .eps = float(eps), .x = x, .w = w, .ldx = dim, .y = y, .ldy = dim,
                      .residual = residual, .x_sum = x};
  run_forward(a, "residual add + zero-centred RMSNorm forward", target);
}

template <class T>
void rmsnorm_zero_centred_cuda_backward_add(const T* x, int64_t rows, int64_t dim, const T* w,
                                            double eps, const T* dy, T* dx, const T* residual,
                                            cuda::Target target) {
  const NormArgs<T> a{.kind = NormKind::ZeroCentred, .rows = rows, .dim = int(dim),
                      .eps = float(eps), .x = x, .w = w, .ldx = dim, .dy = dy, .lddy = dim,
                      .dx = dx, .lddx = dim, .residual = residual};
  run_backward(a, nullptr, nullptr, "zero-centred RMSNorm backward + residual add", target);
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
                         int64_t ldy, cuda::Target target, float out_scale) {
  const NormArgs<T> a{.kind = NormKind::L2, .rows = rows, .dim = int(dim), .eps = float(eps),
                      .x = x, .ldx = stride_or(ldx, dim), .y = y, .ldy = stride_or(ldy, dim),
                      .out_scale = out_scale};
  run_forward(a, "L2 norm forward", target);
}

template <class T>
void l2norm_cuda_backward(const T* x, int64_t rows, int64_t dim, double eps, const T* dy, T* dx,
                          int64_t ldx, int64_t lddx, cuda::Target target, float dy_scale) {
  const NormArgs<T> a{.kind = NormKind::L2, .rows = rows, .dim = int(dim), .eps = float(eps),
                      .x = x, .ldx = stride_or(ldx, dim), .dy = dy, .lddy = dim, .dx = dx,
                      .lddx = stride_or(lddx, dim), .dy_scale = dy_scale};
  run_backward(a, nullptr, nullptr, "L2 norm backward", target);
}

// clang-format off
#define DT_INSTANTIATE(T)                                                                          \
  template void rmsnorm_zero_centred_cuda_forward<T>(const T*, int64_t, int64_t, const T*, double, \
                                                     T*, int64_t, int64_t, cuda::Target);          \
  template void rmsnorm_zero_centred_cuda_backward<T>(const T*, int64_t, int64_t, const T*,        \
                                                      double, const T*, T*, float*, void*,         \
                                                      int64_t, int64_t, cuda::Target);             \
  template void add_rmsnorm_zero_centred_cuda_forward<T>(T*, const T*, int64_t, int64_t, const T*, \
                                                         double, T*, cuda::Target);                \
  template void rmsnorm_zero_centred_cuda_backward_add<T>(const T*, int64_t, int64_t, const T*,    \
                                                          double, const T*, T*, const T*,          \
                                                          cuda::Target);                           \
  template void gated_rmsnorm_cuda_forward<T>(const T*, const T*, int64_t, int64_t, const T*,      \
                                              double, T*, cuda::Target);                           \
  template void gated_rmsnorm_cuda_backward<T>(const T*, const T*, int64_t, int64_t, const T*,     \
                                               double, const T*, T*, T*, float*, void*,            \
                                               cuda::Target);                                      \
  template void l2norm_cuda_forward<T>(const T*, int64_t, int64_t, double, T*, int64_t, int64_t,   \
                                       cuda::Target, float);                                       \
  template void l2norm_cuda_backward<T>(const T*, int64_t, int64_t, double, const T*, T*, int64_t, \
                                        int64_t, cuda::Target, float);
DT_INSTANTIATE(float)
DT_INSTANTIATE(__nv_bfloat16)
#undef DT_INSTANTIATE
// clang-format on

}  // namespace deltatune
