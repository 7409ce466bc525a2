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

// Where the conv's output y (forward) or its gradient dy (backward) lives: one dense [tokens, C]
// array, or split by channel into up to three dense arrays, so that the Gated DeltaNet's q, k, v
// need no copy out of (or into) one [tokens, C] array. Channels [first[i], first[i + 1]) are in
// part[i], whose rows hold first[i + 1] − first[i] of them; first[parts] = C.
template <class P>
struct ConvColumns {
  P part[3] = {};
  int64_t first[4] = {};
  int parts = 0;
  static ConvColumns dense(P p, int64_t channels) { return {{p}, {0, channels}, 1}; }
  static ConvColumns split3(P a, int64_t wa, P b, int64_t wb, P c, int64_t wc) {
    return {{a, b, c}, {0, wa, wa + wb, wa + wb + wc}, 3};
  }
};

template <class T>
void causal_conv1d_silu_cuda_forward(const T* x, int64_t tokens, int64_t channels, const T* w,
                                     int kernel, const int64_t* cu_seqlens, int64_t num_sequences,
                                     T* y, int64_t ldx, cuda::Target target);

// The same, y split by channel (y.first[y.parts] must be `channels`).
template <class T>
void causal_conv1d_silu_cuda_forward(const T* x, int64_t tokens, int64_t channels, const T* w,
                                     int kernel, const int64_t* cu_seqlens, int64_t num_sequences,
                                     const ConvColumns<T*>& y, int64_t ldx, cuda::Target target);

// Scratch of the backward when dw is wanted: per-slice partial sums of the weight gradient.
size_t causal_conv1d_cuda_dw_workspace_bytes(int64_t tokens, int64_t channels, int kernel);

// dx overwritten ([tokens, C], row stride ldx like x); dw [C, K] float, ACCUMULATED (null = not
// wanted; then workspace may be null).
template <class T>
void causal_conv1d_silu_cuda_backward(const T* x, int64_t tokens, int64_t channels, const T* w,
                                      int kernel, const int64_t* cu_seqlens, int64_t num_sequences,
                                      const T* dy, T* dx, float* dw, void* workspace, int64_t ldx,
                                      cuda::Target target);
// The same, dy split by channel (dy.first[dy.parts] must be `channels`).
template <class T>
void causal_conv1d_silu_cuda_backward(const T* x, int64_t tokens, int64_t channels, const T* w,
                                      int kernel, const int64_t* cu_seqlens, int64_t num_sequences,
                                      const ConvColumns<const T*>& dy, T* dx, float* dw,
                                      void* workspace, int64_t ldx, cuda::Target target);

}  // namespace deltatune
