#include "model/gated_deltanet.h"

#include <cmath>

#include "core/profile.h"
#include "ops/activation.h"
#include "ops/conv1d.h"
#include "ops/delta_rule.h"
#include "ops/matmul.h"
#include "ops/norm.h"

namespace deltatune {

// transformers' l2norm eps (modeling_qwen3_5.py, l2norm), fixed, not rms_norm_eps.
constexpr double kL2NormEps = 1e-6;
// Up to this many tokens an inference step runs the delta rule's recurrent form.
constexpr int64_t kRecurrentTokens = 4;

template <class T>
GatedDeltaNetParams<T> gated_deltanet_params(const LayerContext& ctx, const LinearAttentionWeights& w) {
  const ModelConfig& c = ctx.config;
  GatedDeltaNetParams<T> p;
  p.conv_weight = ctx.alloc<T>(w.conv1d.numel());
  p.A_log = ctx.alloc<T>(c.linear_num_value_heads);
  p.dt_bias = ctx.alloc<T>(c.linear_num_value_heads);
  p.norm_weight = ctx.alloc<T>(c.linear_value_head_dim);
  tensor_to(w.conv1d, p.conv_weight);  // [C, 1, K] is [C, K] in memory
  tensor_to(w.A_log, p.A_log);
  tensor_to(w.dt_bias, p.dt_bias);
  tensor_to(w.norm, p.norm_weight);
  return p;
}

template <class T>
GatedDeltaNetState<T> gated_deltanet_initial_state(const ModelConfig& c) {
  GatedDeltaNetState<T> s;
  s.conv.assign(static_cast<size_t>((c.linear_conv_kernel - 1) * c.linear_conv_dim()), T(0));
  s.recurrent.assign(static_cast<size_t>(int64_t(c.linear_num_value_heads) * c.linear_key_head_dim *
                                         c.linear_value_head_dim), T(0));
  return s;
}

template <class T>
void gated_deltanet_forward(const LayerContext& ctx, const LinearAttentionWeights& w,
                            const GatedDeltaNetParams<T>& p, const T* x, T* out,
                            GatedDeltaNetActivations<T>& act, GatedDeltaNetState<T>* state) {
  const ModelConfig& c = ctx.config;
  const int64_t tokens = ctx.tokens;
  const int64_t C = c.linear_conv_dim(), key_dim = c.linear_key_dim(), value_dim = c.linear_value_dim();
  const int Hk = c.linear_num_key_heads, Hv = c.linear_num_value_heads;
  const int dk = c.linear_key_head_dim, dv = c.linear_value_head_dim;
  act.qkv = ctx.alloc<T>(tokens * C);
  act.qkv_conv = ctx.alloc<T>(tokens * C);
  act.z = ctx.alloc<T>(tokens * value_dim);
  act.b = ctx.alloc<T>(tokens * Hv);
  act.a = ctx.alloc<T>(tokens * Hv);
  act.q = ctx.alloc<T>(tokens * key_dim);
  act.k = ctx.alloc<T>(tokens * key_dim);
  act.v = ctx.alloc<T>(tokens * value_dim);
  act.g = ctx.alloc<T>(tokens * Hv);
  act.beta = ctx.alloc<T>(tokens * Hv);
  act.core = ctx.alloc<T>(tokens * value_dim);
  act.normed = ctx.alloc<T>(tokens * value_dim);

  lora_linear_forward(x, tokens, w.in_proj_qkv, ctx.lora, ctx.layer, LinearKind::InProjQkv, act.qkv, ctx.arena);
  lora_linear_forward(x, tokens, w.in_proj_z, ctx.lora, ctx.layer, LinearKind::InProjZ, act.z, ctx.arena);
  lora_linear_forward(x, tokens, w.in_proj_b, ctx.lora, ctx.layer, LinearKind::InProjB, act.b, ctx.arena);
  lora_linear_forward(x, tokens, w.in_proj_a, ctx.lora, ctx.layer, LinearKind::InProjA, act.a, ctx.arena);
  if (!state) {
    causal_conv1d_silu_forward(act.qkv, C, p.conv_weight, c.linear_conv_kernel, ctx.cu_seqlens, act.qkv_conv);
  } else {
    // Continue the sequence: the conv sees the carried K-1 rows before the new ones.
    DT_CHECK(ctx.cu_seqlens.size() == 2, "a stateful forward takes one sequence");
    const int64_t history = c.linear_conv_kernel - 1, rows = history + tokens;
    T* ext = ctx.alloc<T>(rows * C);
    T* ext_out = ctx.alloc<T>(rows * C);
    std::copy(state->conv.begin(), state->conv.end(), ext);
    std::copy(act.qkv, act.qkv + tokens * C, ext + history * C);
    const int64_t cu[2] = {0, rows};
    causal_conv1d_silu_forward(ext, C, p.conv_weight, c.linear_conv_kernel, std::span<const int64_t>(cu, 2), ext_out);
    std::copy(ext_out + history * C, ext_out + rows * C, act.qkv_conv);
    std::copy(ext + tokens * C, ext + rows * C, state->conv.begin());
  }

  // Split the conv output into contiguous q, k, v; beta and the log decay g per value head.
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < tokens; ++t) {
    const T* row = act.qkv_conv + t * C;
    std::copy(row, row + key_dim, act.q + t * key_dim);
    std::copy(row + key_dim, row + 2 * key_dim, act.k + t * key_dim);
    std::copy(row + 2 * key_dim, row + C, act.v + t * value_dim);
    for (int h = 0; h < Hv; ++h) {
      const int64_t i = t * Hv + h;
      act.beta[i] = sigmoid(act.b[i]);
      act.g[i] = -std::exp(p.A_log[h]) * softplus(act.a[i] + p.dt_bias[h]);
    }
  }
  l2norm_forward(act.q, tokens * Hk, dk, kL2NormEps, act.q);
  l2norm_forward(act.k, tokens * Hk, dk, kL2NormEps, act.k);
  const T q_scale = T(1.0 / std::sqrt(double(dk)));
  for (int64_t i = 0; i < tokens * key_dim; ++i) act.q[i] *= q_scale;

  const DeltaRuleShape shape{tokens, Hk, Hv, dk, dv};
  if (state && tokens <= kRecurrentTokens) {
    // An inference session's next token or few: the recurrent form (one step per token) is the
    // same function without the chunked form's per-chunk setup.
    DT_PROFILE("delta_rule_recurrent_forward");
    T* final_state = ctx.alloc<T>(int64_t(state->recurrent.size()));
    gated_delta_rule_recurrent_forward(shape, ctx.cu_seqlens, act.q, act.k, act.v, act.g, act.beta,
                                       state->recurrent.data(), act.core, final_state);
    std::copy(final_state, final_state + state->recurrent.size(), state->recurrent.begin());
  } else {
    DT_PROFILE("delta_rule_chunked_forward");
    T* final_state = state ? ctx.alloc<T>(int64_t(state->recurrent.size())) : nullptr;
    gated_delta_rule_chunked_forward(shape, ctx.cu_seqlens, act.q, act.k, act.v, act.g, act.beta,
                                     state ? state->recurrent.data() : static_cast<const T*>(nullptr), act.core,
                                     final_state);
    if (state) std::copy(final_state, final_state + state->recurrent.size(), state->recurrent.begin());
  }
  gated_rmsnorm_forward(act.core, act.z, tokens * Hv, dv, p.norm_weight, c.rms_norm_eps, act.normed);
  lora_linear_forward(act.normed, tokens, w.out_proj, ctx.lora, ctx.layer, LinearKind::OutProj, out, ctx.arena);
}

template <class T>
void gated_deltanet_backward(const LayerContext& ctx, const LinearAttentionWeights& w,
                             const GatedDeltaNetParams<T>& p, const T* x,
                             const GatedDeltaNetActivations<T>& act, const T* d_out, T* dx) {
  const ModelConfig& c = ctx.config;
  const int64_t tokens = ctx.tokens;
  const int64_t C = c.linear_conv_dim(), key_dim = c.linear_key_dim(), value_dim = c.linear_value_dim();
  const int Hk = c.linear_num_key_heads, Hv = c.linear_num_value_heads;
  const int dk = c.linear_key_head_dim, dv = c.linear_value_head_dim;
  const Arena::Mark mark = ctx.arena.mark();

  // out = normed W_out^T
  T* d_normed = ctx.alloc<T>(tokens * value_dim);
  lora_linear_backward(act.normed, tokens, w.out_proj, ctx.lora, ctx.layer, LinearKind::OutProj, d_out,
                       d_normed, false, ctx.arena);
  // normed = rmsnorm(core) * w * silu(z)
  T* d_core = ctx.alloc<T>(tokens * value_dim);
  T* d_z = ctx.alloc<T>(tokens * value_dim);
  gated_rmsnorm_backward(act.core, act.z, tokens * Hv, dv, p.norm_weight, c.rms_norm_eps, d_normed,
                         d_core, d_z, static_cast<T*>(nullptr));
  // core = delta rule(q, k, v, g, beta)
  T* d_q = ctx.alloc<T>(tokens * key_dim);
  T* d_k = ctx.alloc<T>(tokens * key_dim);
  T* d_qkv_conv = ctx.alloc<T>(tokens * C);
  T* d_v = ctx.alloc<T>(tokens * value_dim);
  T* d_g = ctx.alloc<T>(tokens * Hv);
  T* d_beta = ctx.alloc<T>(tokens * Hv);
  const DeltaRuleShape shape{tokens, Hk, Hv, dk, dv};
  {
    DT_PROFILE("delta_rule_chunked_backward");
    gated_delta_rule_chunked_backward(shape, ctx.cu_seqlens, act.q, act.k, act.v, act.g, act.beta,
                                      static_cast<const T*>(nullptr), d_core, static_cast<const T*>(nullptr),
                                      d_q, d_k, d_v, d_g, d_beta, static_cast<T*>(nullptr));
  }
  // q = l2norm(q_raw) * scale, k = l2norm(k_raw): the raw values are the conv output's first blocks.
  const T q_scale = T(1.0 / std::sqrt(double(dk)));
  for (int64_t i = 0; i < tokens * key_dim; ++i) d_q[i] *= q_scale;
  T* raw = ctx.alloc<T>(tokens * key_dim);
  T* d_raw = ctx.alloc<T>(tokens * key_dim);
  for (int part = 0; part < 2; ++part) {
    for (int64_t t = 0; t < tokens; ++t)
      std::copy(act.qkv_conv + t * C + part * key_dim, act.qkv_conv + t * C + (part + 1) * key_dim, raw + t * key_dim);
    l2norm_backward(raw, tokens * Hk, dk, kL2NormEps, part == 0 ? d_q : d_k, d_raw);
    for (int64_t t = 0; t < tokens; ++t)
      std::copy(d_raw + t * key_dim, d_raw + (t + 1) * key_dim, d_qkv_conv + t * C + part * key_dim);
  }
  for (int64_t t = 0; t < tokens; ++t)
    std::copy(d_v + t * value_dim, d_v + (t + 1) * value_dim, d_qkv_conv + t * C + 2 * key_dim);
  // beta = sigmoid(b);  g = -exp(A_log) softplus(a + dt_bias)
  T* d_b = ctx.alloc<T>(tokens * Hv);
  T* d_a = ctx.alloc<T>(tokens * Hv);
  for (int64_t t = 0; t < tokens; ++t)
    for (int h = 0; h < Hv; ++h) {
      const int64_t i = t * Hv + h;
      d_b[i] = d_beta[i] * act.beta[i] * (T(1) - act.beta[i]);
      d_a[i] = d_g[i] * -std::exp(p.A_log[h]) * softplus_grad(act.a[i] + p.dt_bias[h]);
    }
  // qkv_conv = silu(conv(qkv))
  T* d_qkv = ctx.alloc<T>(tokens * C);
  causal_conv1d_silu_backward(act.qkv, C, p.conv_weight, c.linear_conv_kernel, ctx.cu_seqlens, d_qkv_conv,
                              d_qkv, static_cast<T*>(nullptr));
  // The four input projections all read x.
  lora_linear_backward(x, tokens, w.in_proj_qkv, ctx.lora, ctx.layer, LinearKind::InProjQkv, d_qkv, dx, false, ctx.arena);
  lora_linear_backward(x, tokens, w.in_proj_z, ctx.lora, ctx.layer, LinearKind::InProjZ, d_z, dx, true, ctx.arena);
  lora_linear_backward(x, tokens, w.in_proj_b, ctx.lora, ctx.layer, LinearKind::InProjB, d_b, dx, true, ctx.arena);
  lora_linear_backward(x, tokens, w.in_proj_a, ctx.lora, ctx.layer, LinearKind::InProjA, d_a, dx, true, ctx.arena);
  ctx.arena.reset(mark);
}

#define INSTANTIATE(T)                                                                                \
  template GatedDeltaNetParams<T> gated_deltanet_params<T>(const LayerContext&, const LinearAttentionWeights&); \
  template GatedDeltaNetState<T> gated_deltanet_initial_state<T>(const ModelConfig&);                 \
  template void gated_deltanet_forward<T>(const LayerContext&, const LinearAttentionWeights&,          \
                                          const GatedDeltaNetParams<T>&, const T*, T*,                 \
                                          GatedDeltaNetActivations<T>&, GatedDeltaNetState<T>*);       \
  template void gated_deltanet_backward<T>(const LayerContext&, const LinearAttentionWeights&,         \
                                           const GatedDeltaNetParams<T>&, const T*,                    \
                                           const GatedDeltaNetActivations<T>&, const T*, T*);
INSTANTIATE(float)
INSTANTIATE(double)
#undef INSTANTIATE

}  // namespace deltatune
