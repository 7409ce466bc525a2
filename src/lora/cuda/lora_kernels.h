// The LoRA path's elementwise kernels on the GPU: dropout with lora/dropout_mask.h's masks (the
// CPU's masks, bit for bit), and the bf16 copies of the float factors that the products read.
// Device pointers, or host pointers under cuda::Target::host_emulation().
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "core/cuda/target.h"
#include "lora/dropout_mask.h"

namespace deltatune {

// y = x where kept, scaled by keep_scale; 0 elsewhere (n values).
void lora_dropout_cuda_forward(const __nv_bfloat16* x, int64_t n, const DropoutMask& mask,
                               __nv_bfloat16* y, cuda::Target target);
// dx += g where kept, scaled by keep_scale (the transpose of the forward's mask).
void lora_dropout_cuda_backward_add(const __nv_bfloat16* g, int64_t n, const DropoutMask& mask,
                                    __nv_bfloat16* dx, cuda::Target target);

// y = bf16(x), round to nearest even.
void float_to_bf16_cuda(const float* x, int64_t n, __nv_bfloat16* y, cuda::Target target);

}  // namespace deltatune
