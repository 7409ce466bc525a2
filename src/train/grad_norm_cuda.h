// Global-norm gradient clipping (train/optimizer.h's clip_grad_norm) on an NVIDIA GPU, over
// float gradients laid end to end in one buffer. The sum of squares runs in double, as on the CPU:
// each block sums a fixed slice in order, the host adds the blocks' sums in order (deterministic;
// the order differs from the CPU's, so the last bits may too). Kernels in train/cuda/grad_norm.cu.
#pragma once

#include <cstdint>

#include "core/cuda/target.h"

namespace deltatune {

// sqrt(Σ g²); NaN or inf when any gradient is. Waits for the target.
double grad_norm_cuda(const float* grads, int64_t n, cuda::Target target);

// torch.nn.utils.clip_grad_norm_: when the norm exceeds max_norm (> 0), every gradient is scaled
// by max_norm / (norm + 1e-6) (in double, then rounded, as the CPU does). Returns the norm before
// clipping.
double clip_grad_norm_cuda(float* grads, int64_t n, double max_norm, cuda::Target target);

}  // namespace deltatune
