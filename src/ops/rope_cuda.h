// Partial rotary position embedding (ops/rope.h) on an NVIDIA GPU: the first `rotary_dim` dims of
// each head turn in rotate-half pairs (i, i + rotary_dim/2) by angle pos · theta^(-2i/rotary_dim);
// the rest of the head is untouched. On device pointers (or host pointers under
// cuda::Target::host_emulation()). Kernels in ops/cuda/rope.cu.
#pragma once

#include <cstdint>

#include "core/cuda/target.h"

namespace deltatune {

// cos and sin [tokens, rotary_dim / 2] (float) of every (position, frequency) pair, computed in
// double as make_rope_table does, then rounded; once per batch, shared by every layer.
void rope_cuda_table(const int64_t* positions, int64_t tokens, int rotary_dim, double theta,
                     float* cos, float* sin, cuda::Target target);

// In place on x (bf16 or float): `heads` heads of each token, head h of token t at
// x + t * ld_token + h * ld_head.
template <class T>
void rope_cuda_forward(T* x, int64_t tokens, int heads, int64_t ld_token, int64_t ld_head,
                       int rotary_dim, const float* cos, const float* sin, cuda::Target target);
// The transpose rotation, in place on the gradient.
template <class T>
void rope_cuda_backward(T* dx, int64_t tokens, int heads, int64_t ld_token, int64_t ld_head,
                        int rotary_dim, const float* cos, const float* sin, cuda::Target target);

}  // namespace deltatune
