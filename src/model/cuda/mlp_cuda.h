// The SwiGLU MLP on the GPU (model/mlp.h): out = down(silu(gate(x)) * up(x)), bf16 activations.
#pragma once

#include <cuda_bf16.h>

#include "model/cuda/device_model.h"
#include "model/cuda/layer_context_cuda.h"

namespace deltatune {

// h = silu(gate) * up, down_proj's input, is not kept: the backward remakes it (one elementwise
// pass) rather than hold a third [T, I] tensor per layer; so down_proj's LoRA u is remade too.
struct DeviceMlpActivations {
  __nv_bfloat16* gate;  // [T, I]
  __nv_bfloat16* up;    // [T, I]
  DeviceLoraDowns lora;  // the adapter's u of gate and up
};

// out null: the activations only (checkpointing's recomputation), no down projection.
void mlp_cuda_forward(const DeviceLayerContext& ctx, const DeviceMlp& w, const __nv_bfloat16* x,
                      __nv_bfloat16* out, DeviceMlpActivations& act);

void mlp_cuda_backward(const DeviceLayerContext& ctx, const DeviceMlp& w, const __nv_bfloat16* x,
                       const DeviceMlpActivations& act, const __nv_bfloat16* d_out,
                       __nv_bfloat16* dx);

}  // namespace deltatune
