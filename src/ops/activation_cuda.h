// SwiGLU of the MLP (ops/activation.h) on an NVIDIA GPU: h = silu(gate) * up elementwise, on device
// pointers (or host pointers under cuda::Target::host_emulation()). bf16 (training) or float
// (tests) in and out, float arithmetic. Kernels in ops/cuda/activation.cu.
#pragma once

#include <cstdint>

#include "core/cuda/target.h"

namespace deltatune {

template <class T>
void swiglu_cuda_forward(const T* gate, const T* up, int64_t n, T* h, cuda::Target target);
// dgate, dup overwritten (either may be the same buffer as dh).
template <class T>
void swiglu_cuda_backward(const T* gate, const T* up, const T* dh, int64_t n, T* dgate, T* dup,
                          cuda::Target target);

}  // namespace deltatune
