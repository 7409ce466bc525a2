// Causal depthwise conv1d + SiLU of the Gated DeltaNet layer, on packed sequences.
//   p[t, c] = sum_{j<K} w[c, j] * x[t - (K-1) + j, c]   (terms before the sequence start are zero)
//   y[t, c] = silu(p[t, c])
// x, y: [T, C] row-major with row stride ldx (default C); w: [C, K]; cu_seqlens [nseq + 1].
#pragma once

#include <cstdint>
#include <span>

namespace deltatune {

template <class T>
void causal_conv1d_silu_forward(const T* x, int64_t channels, const T* w, int kernel,
                                std::span<const int64_t> cu_seqlens, T* y, int64_t ldx = -1);

// dx overwritten ([T, C], row stride ldx like x); dw [C, K] accumulated (nullable).
template <class T>
void causal_conv1d_silu_backward(const T* x, int64_t channels, const T* w, int kernel,
                                 std::span<const int64_t> cu_seqlens, const T* dy, T* dx, T* dw,
                                 int64_t ldx = -1);

}  // namespace deltatune
