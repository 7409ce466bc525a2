// The normalisations of ops/norm.h on an NVIDIA GPU: same equations, layouts and strides, on
// device pointers (or host pointers under cuda::Target::host_emulation()). x, z, w, y and the
// gradients of x, z are bf16 (training) or float (tests); sums and every intermediate are float.
// Kernels in ops/cuda/norm.cu; tests in tests/cuda (GPU) and tests/cuda_emulated.
//
//   zero-centred RMSNorm  y = x / sqrt(mean(x^2) + eps) * (1 + w)     decoder norms, q_norm, k_norm
//   gated RMSNorm         y = x / sqrt(mean(x^2) + eps) * w * silu(z) GDN output norm
//   L2 norm               y = x / sqrt(sum(x^2) + eps)                 GDN q and k
//
// Backward functions overwrite dx (and dz) and ACCUMULATE into dw (float; null = not wanted). With
// dw, `workspace` must hold norm_cuda_dw_workspace_bytes(rows, dim): the weight gradient is summed
// per block there, then over blocks in a fixed order (deterministic: no atomics). In-place calls
// (y == x, dx == dy with equal strides) are allowed.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/cuda/target.h"

namespace deltatune {

size_t norm_cuda_dw_workspace_bytes(int64_t rows, int64_t dim);

// ldx, ldy: row strides (-1 = dim), as in ops/norm.h (q_norm reads heads out of the q+gate rows).
template <class T>
void rmsnorm_zero_centred_cuda_forward(const T* x, int64_t rows, int64_t dim, const T* w,
                                       double eps, T* y, int64_t ldx, int64_t ldy,
                                       cuda::Target target);
// dx has x's row stride, dy has y's.
template <class T>
void rmsnorm_zero_centred_cuda_backward(const T* x, int64_t rows, int64_t dim, const T* w,
                                        double eps, const T* dy, T* dx, float* dw, void* workspace,
                                        int64_t ldx, int64_t ldy, cuda::Target target);

// The decoder's residual add fused with the norm that follows it (dense rows): x += residual
// (rounded to T, written back to x), then y = the norm of the new x; the bits of add_cuda(x,
// residual) followed by rmsnorm_zero_centred_cuda_forward, in one pass over x.
template <class T>
void add_rmsnorm_zero_centred_cuda_forward(T* x, const T* residual, int64_t rows, int64_t dim,
                                           const T* w, double eps, T* y, cuda::Target target);
// The backward with the residual's gradient added (dense rows, no dw): dx = the backward's dx
// (rounded to T) + residual, rounded again; the bits of add_cuda(dx, residual) after the backward.
template <class T>
void rmsnorm_zero_centred_cuda_backward_add(const T* x, int64_t rows, int64_t dim, const T* w,
                                            double eps, const T* dy, T* dx, const T* residual,
                                            cuda::Target target);

template <class T>
void gated_rmsnorm_cuda_forward(const T* x, const T* z, int64_t rows, int64_t dim, const T* w,
                                double eps, T* y, cuda::Target target);
template <class T>
void gated_rmsnorm_cuda_backward(const T* x, const T* z, int64_t rows, int64_t dim, const T* w,
                                 double eps, const T* dy, T* dx, T* dz, float* dw, void* workspace,
                                 cuda::Target target);

// out_scale: y is then multiplied by it, rounded to T before and after, the same bits as a
// separate pass y *= out_scale (the Gated DeltaNet's q · dk^-1/2) without the extra pass.
template <class T>
void l2norm_cuda_forward(const T* x, int64_t rows, int64_t dim, double eps, T* y, int64_t ldx,
                         int64_t ldy, cuda::Target target, float out_scale = 1.0f);
// dy is contiguous; dx has row stride lddx. dy_scale: dy is first multiplied by it and rounded to
// T, the same bits as a separate pass dy *= dy_scale before the call (the backward of out_scale).
template <class T>
void l2norm_cuda_backward(const T* x, int64_t rows, int64_t dim, double eps, const T* dy, T* dx,
                          int64_t ldx, int64_t lddx, cuda::Target target, float dy_scale = 1.0f);

}  // namespace deltatune
