// The AdamW update of train/optimizer.h on an NVIDIA GPU: float32 parameters, gradients and moments
// (m, v) on device pointers (or host pointers under cuda::Target::host_emulation()). Each element
// goes through the same float operations in the same order as the CPU update, with the same
// double-precision scalars and the same double-precision sqrt, and no fused multiply-adds: the
// result is bit-identical to AdamW::step on float tensors. Kernel in train/cuda/adamw.cu.
#pragma once

#include <cstdint>

#include "core/cuda/target.h"
#include "train/optimizer.h"

namespace deltatune {

// One update of n parameters (the LoRA factors laid end to end in one buffer, say) from their
// gradients. step: the number of this update, counting from 1 (bias correction), i.e.
// AdamW::steps_done() after the CPU optimizer's ++step_.
void adamw_cuda_step(float* params, const float* grads, float* m, float* v, int64_t n, double lr,
                     const AdamWConfig& config, int64_t step, cuda::Target target);

}  // namespace deltatune
