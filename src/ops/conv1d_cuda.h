// The causal depthwise conv1d + SiLU of ops/conv1d.h on an NVIDIA GPU, on packed sequences: same
// equations and layouts, on device pointers (or host pointers under
// cuda::Target::host_emulation()). x, y, dy, dx and w are bf16 (training) or float (tests); dw and
// every sum are float. No tap reads across a sequence boundary. Kernels in ops/cuda/conv1d.cu.
//
//   p[t, c] = sum_{j<K} w[c, j] * x[t - (K-1) + j, c]   (terms before the sequence start are zero)
//   y[t, c] = silu(p[t, c])
// x [tokens, C] with row stride ldx (-1 = C); y, dy [tokens, C]; w [C, K], K <= 8;
// cu_seqlens: num_sequences + 1 token offsets, in the memory the target reads (device or host),
// ending at `tokens`.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/cuda/target.h"

namespace deltatune {

constexpr int kConv1dCudaMaxKernel = 8;

template <class T>
void causal_conv1d_silu_cuda_forward(const T* x, int64_t tokens, int64_t channels, const T* w,
                                     int kernel, const int64_t* cu_seqlens, int64_t num_sequences,
                                     T* y, int64_t ldx, cuda::Target target);

// Scratch of the backward when dw is wanted: per-slice partial sums of the weight gradient.
size_t causal_conv1d_cuda_dw_workspace_bytes(int64_t tokens, int64_t channels, int kernel);

// dx overwritten ([tokens, C], row stride ldx like x); dw [C, K] float, ACCUMULATED (null = not
// wanted; then workspace may be null).
template <class T>
void causal_conv1d_silu_cuda_backward(const T* x, int64_t tokens, int64_t channels, const T* w,
                                      int kernel, const int64_t* cu_seqlens, int64_t num_sequences,
                                      const T* dy, T* dx, float* dw, void* workspace, int64_t ldx,
                                      cuda::Target target);

}  // namespace deltatune
