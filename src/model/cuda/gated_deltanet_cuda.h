// The Gated DeltaNet token mixer on the GPU (model/gated_deltanet.h's equations, bf16 activations):
//   qkv = x W_qkv^T -> causal conv1d + SiLU -> q, k, v;  q, k L2-normalised, q scaled by dk^-1/2
//   z = x W_z^T;  beta = sigmoid(x W_b^T);  g = -exp(A_log) softplus(x W_a^T + dt_bias)
//   o = gated delta rule(q, k, v, g, beta);  y = rmsnorm(o) * w * silu(z) per value head
//   out = y W_out^T
// g and beta are float (they feed the delta rule's float decays); everything else bf16.
#pragma once

#include <cuda_bf16.h>

#include "model/cuda/device_model.h"
#include "model/cuda/layer_context_cuda.h"

namespace deltatune {

// What the forward keeps for the backward (from the arena; T = tokens, C = conv channels).
struct DeviceGatedDeltaNetActivations {
  __nv_bfloat16* qkv;    // [T, C] projection, the conv input
  __nv_bfloat16* z;      // [T, Hv*dv]
  __nv_bfloat16* a;      // [T, Hv] decay logits
  __nv_bfloat16* q_raw;  // [T, Hk*dk] before the L2 norm (the normalised q and k are not kept:
  __nv_bfloat16* k_raw;  // [T, Hk*dk]  the backward remakes them, one cheap pass, see below)
  __nv_bfloat16* v;      // [T, Hv, dv]
  float* g;              // [T, Hv]
  float* beta;           // [T, Hv]
  __nv_bfloat16* core = nullptr;  // [T, Hv, dv] delta-rule output (the forward allocates it when null)
  __nv_bfloat16* normed; // [T, Hv*dv] gated-norm output, the out_proj input
  DeviceLoraDowns lora;  // the adapter's u (not in_proj_b's: its projection runs in a scratch scope)
};

// x: [T, D] (the normed layer input); out: [T, D] overwritten. core_kept: act.core already holds
// this layer's delta-rule output for this x (checkpointing's recomputation keeps it from the first
// forward), so the delta rule is not run again.
void gated_deltanet_cuda_forward(const DeviceLayerContext& ctx, const DeviceLinearAttention& w,
                                 const __nv_bfloat16* x, __nv_bfloat16* out,
                                 DeviceGatedDeltaNetActivations& act, bool core_kept = false);

// dx: [T, D] overwritten; LoRA factor gradients accumulated.
void gated_deltanet_cuda_backward(const DeviceLayerContext& ctx, const DeviceLinearAttention& w,
                                  const __nv_bfloat16* x, const DeviceGatedDeltaNetActivations& act,
                                  const __nv_bfloat16* d_out, __nv_bfloat16* dx);

}  // namespace deltatune
