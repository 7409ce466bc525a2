// Gated full attention on the GPU (model/attention.h's equations, bf16 activations):
//   [q | gate] per head = x W_q^T;  k = x W_k^T;  v = x W_v^T
//   q, k: zero-centred RMSNorm per head, then RoPE on the first rotary_dim dims
//   o = causal GQA softmax attention (block-diagonal in a pack), scale hd^-1/2 (ops/attention_cuda.h)
//   out = (o * sigmoid(gate)) W_o^T
#pragma once

#include <cuda_bf16.h>

#include "model/cuda/device_model.h"
#include "model/cuda/layer_context_cuda.h"

namespace deltatune {

// What the backward reads is kept; what one cheap elementwise pass remakes from it is not: the
// normed and rotated q, k (from qg, k_raw) and o_proj's input o * sigmoid(gate) (from o, qg),
// hence o_proj's LoRA u neither.
struct DeviceFullAttentionActivations {
  __nv_bfloat16* qg;     // [T, H, 2*hd] q_proj output: per head the query, then the gate
  __nv_bfloat16* k_raw;  // [T, Hkv, hd] k_proj output
  __nv_bfloat16* v;      // [T, Hkv, hd]
  __nv_bfloat16* o;      // [T, H, hd] attention output
  float* lse;            // [T, H]
  DeviceLoraDowns lora;  // the adapter's u of q, k and v
};

// o and lse are allocated here unless act already holds them. o_kept: they already hold this
// layer's attention output (a recomputation that kept it across the checkpoint): the attention
// itself, and the normed and rotated q, k it reads, are skipped.
void full_attention_cuda_forward(const DeviceLayerContext& ctx, const DeviceFullAttention& w,
                                 const __nv_bfloat16* x, __nv_bfloat16* out,
                                 DeviceFullAttentionActivations& act, bool o_kept = false);

void full_attention_cuda_backward(const DeviceLayerContext& ctx, const DeviceFullAttention& w,
                                  const __nv_bfloat16* x, const DeviceFullAttentionActivations& act,
                                  const __nv_bfloat16* d_out, __nv_bfloat16* dx);

}  // namespace deltatune
