// The Gated DeltaNet token mixer (`linear_attn`, spec/qwen35.md), forward and backward:
//   qkv = x W_qkv^T -> causal conv1d + SiLU -> q, k, v;  q, k L2-normalised, q scaled by dk^-1/2
//   z = x W_z^T;  beta = sigmoid(x W_b^T);  g = -exp(A_log) softplus(x W_a^T + dt_bias)
//   o = gated delta rule(q, k, v, g, beta);  y = rmsnorm(o) * w * silu(z) per value head
//   out = y W_out^T
// Every projection may carry a LoRA adapter; the frozen parameters (conv, A_log, dt_bias, norm)
// get no gradient.
#pragma once

#include <vector>

#include "model/layer_context.h"
#include "model/weights.h"

namespace deltatune {

// What the forward keeps for the backward (all from the arena, T = tokens).
template <class T>
struct GatedDeltaNetActivations {
  T* qkv;       // [T, C] projection, the conv input
  T* qkv_conv;  // [T, C] after conv + SiLU
  T* z;         // [T, Hv*dv]
  T* b;         // [T, Hv] beta logits
  T* a;         // [T, Hv] decay logits
  T* q;         // [T, Hk, dk] L2-normalised and scaled
  T* k;         // [T, Hk, dk] L2-normalised
  T* v;         // [T, Hv, dv]
  T* g;         // [T, Hv]
  T* beta;      // [T, Hv]
  T* core;      // [T, Hv, dv] delta-rule output
  T* normed;    // [T, Hv*dv] gated-norm output, the out_proj input
};

// What an inference session carries from one call to the next (one sequence): the last K-1 rows of
// the projection (the conv's history; zero before the first token) and the delta-rule state.
template <class T>
struct GatedDeltaNetState {
  std::vector<T> conv;       // [K-1, C]
  std::vector<T> recurrent;  // [Hv, dk, dv]
};

template <class T>
GatedDeltaNetState<T> gated_deltanet_initial_state(const ModelConfig& c);

// The layer's small frozen parameters in the compute type.
template <class T>
struct GatedDeltaNetParams {
  T* conv_weight;  // [C, K]
  T* A_log;        // [Hv]
  T* dt_bias;      // [Hv]
  T* norm_weight;  // [dv]
};

template <class T>
GatedDeltaNetParams<T> gated_deltanet_params(const LayerContext& ctx, const LinearAttentionWeights& w);

// x: [T, D] (the normed layer input); out: [T, D] (overwritten). With `state` (inference: one
// sequence continuing earlier calls) the conv and the delta rule start from it and update it.
template <class T>
void gated_deltanet_forward(const LayerContext& ctx, const LinearAttentionWeights& w,
                            const GatedDeltaNetParams<T>& p, const T* x, T* out,
                            GatedDeltaNetActivations<T>& act, GatedDeltaNetState<T>* state = nullptr);

// dx: [T, D] overwritten; LoRA factor gradients accumulated.
template <class T>
void gated_deltanet_backward(const LayerContext& ctx, const LinearAttentionWeights& w,
                             const GatedDeltaNetParams<T>& p, const T* x,
                             const GatedDeltaNetActivations<T>& act, const T* d_out, T* dx);

}  // namespace deltatune
