#include "model/cuda/gated_deltanet_cuda.h"

#include <cmath>

#include "model/cuda/model_pointwise.h"
#include "ops/conv1d_cuda.h"
#include "ops/delta_rule_cuda.h"
#include "ops/norm_cuda.h"

namespace deltatune {

namespace {

using bf16 = __nv_bfloat16;

// transformers' l2norm eps (modeling_qwen3_5.py, l2norm), fixed, not rms_norm_eps.
constexpr double kL2NormEps = 1e-6;

DeltaRuleShape delta_rule_shape(const DeviceLayerContext& ctx) {
  const ModelConfig& c = ctx.config;
  return {ctx.tokens(), c.linear_num_key_heads, c.linear_num_value_heads, c.linear_key_head_dim,
          c.linear_value_head_dim};
}

// The delta rule on the GPU through the batch's plan, or its host emulation.
void delta_rule_forward(const DeviceLayerContext& ctx, const DeviceGatedDeltaNetActivations& act,
                        const bf16* q, const bf16* k, bf16* out) {
  const cuda::Target target = ctx.target();
  if (target.emulate) {
    gated_delta_rule_cuda_emulated_forward<bf16>(delta_rule_shape(ctx), ctx.batch.host_cu_seqlens(),
                                                 q, k, act.v, act.g, act.beta, nullptr, out,
                                                 nullptr);
    return;
  }
  const DeltaRuleCudaPlan& plan = *ctx.batch.delta_rule_plan();
  const cuda::DeviceArena::Mark mark = ctx.arena.mark();
  void* workspace = ctx.arena.alloc_bytes(plan.forward_workspace_bytes());
  gated_delta_rule_cuda_forward<bf16>(plan, q, k, act.v, act.g, act.beta, nullptr, out, nullptr,
                                      workspace, target.stream);
  ctx.arena.reset(mark);
}

void delta_rule_backward(const DeviceLayerContext& ctx, const DeviceGatedDeltaNetActivations& act,
                         const bf16* q, const bf16* k, const bf16* d_out, bf16* dq, bf16* dk,
                         bf16* dv, float* dg, float* dbeta) {
  const cuda::Target target = ctx.target();
  if (target.emulate) {
    gated_delta_rule_cuda_emulated_backward<bf16>(delta_rule_shape(ctx), ctx.batch.host_cu_seqlens(),
                                                  q, k, act.v, act.g, act.beta, nullptr, d_out,
                                                  nullptr, dq, dk, dv, dg, dbeta, nullptr);
    return;
  }
  const DeltaRuleCudaPlan& plan = *ctx.batch.delta_rule_plan();
  const cuda::DeviceArena::Mark mark = ctx.arena.mark();
  void* workspace = ctx.arena.alloc_bytes(plan.backward_workspace_bytes());
  gated_delta_rule_cuda_backward<bf16>(plan, q, k, act.v, act.g, act.beta, nullptr, d_out, nullptr,
                                       dq, dk, dv, dg, dbeta, nullptr, workspace, target.stream);
  ctx.arena.reset(mark);
}

// The delta rule's q and k from the kept raw ones: L2-normalised, q scaled by dk^-1/2 (into
// arena scratch; the caller's mark gives them back).
void normalised_qk(const DeviceLayerContext& ctx, const DeviceGatedDeltaNetActivations& act,
                   bf16** q, bf16** k) {
  const ModelConfig& c = ctx.config;
  const int64_t tokens = ctx.tokens(), key_dim = c.linear_key_dim();
  const int Hk = c.linear_num_key_heads, dk = c.linear_key_head_dim;
  *q = ctx.alloc<bf16>(tokens * key_dim);
  *k = ctx.alloc<bf16>(tokens * key_dim);
  // q's dk^-1/2 folded into its norm's pass (the same bits as scaling it after).
  l2norm_cuda_forward(act.q_raw, tokens * Hk, dk, kL2NormEps, *q, -1, -1, ctx.target(),
                      float(1.0 / std::sqrt(double(dk))));
  l2norm_cuda_forward(act.k_raw, tokens * Hk, dk, kL2NormEps, *k, -1, -1, ctx.target());
}

}  // namespace

void gated_deltanet_cuda_forward(const DeviceLayerContext& ctx, const DeviceLinearAttention& w,
                                 const bf16* x, bf16* out, DeviceGatedDeltaNetActivations& act,
                                 bool core_kept) {
  DT_CHECK(!core_kept || act.core, "gated_deltanet_cuda_forward: core_kept without a kept output");
  const ModelConfig& c = ctx.config;
  const int64_t tokens = ctx.tokens();
  const int64_t C = c.linear_conv_dim(), key_dim = c.linear_key_dim(), value_dim = c.linear_value_dim();
  const int Hv = c.linear_num_value_heads, dv = c.linear_value_head_dim;
  const cuda::Target target = ctx.target();
  act.qkv = ctx.alloc<bf16>(tokens * C);
  act.z = ctx.alloc<bf16>(tokens * value_dim);
  act.a = ctx.alloc<bf16>(tokens * Hv);
  act.q_raw = ctx.alloc<bf16>(tokens * key_dim);
  act.k_raw = ctx.alloc<bf16>(tokens * key_dim);
  act.v = ctx.alloc<bf16>(tokens * value_dim);
  act.g = ctx.alloc<float>(tokens * Hv);
  act.beta = ctx.alloc<float>(tokens * Hv);
  if (!act.core) act.core = ctx.alloc<bf16>(tokens * value_dim);
  act.normed = ctx.alloc<bf16>(tokens * value_dim);

  auto project = [&](const bf16* in, const DeviceLinear& weight, LinearKind kind, bf16* y) {
    // in_proj_b's u would be allocated inside the scratch scope below and given back with it.
    lora_linear_cuda_forward(ctx.blas, ctx.arena, in, tokens, weight, ctx.lora, ctx.layer, kind, y,
                             -1, kind == LinearKind::InProjB ? nullptr : act.lora.keep(kind));
  };
  project(x, w.in_proj_qkv, LinearKind::InProjQkv, act.qkv);
  project(x, w.in_proj_z, LinearKind::InProjZ, act.z);
  project(x, w.in_proj_a, LinearKind::InProjA, act.a);
  {
    // The beta logits are needed only until beta is made. The conv writes q, k, v straight into
    // their own arrays (no [T, C] output to split).
    const cuda::DeviceArena::Mark mark = ctx.arena.mark();
    bf16* b_logit = ctx.alloc<bf16>(tokens * Hv);
    project(x, w.in_proj_b, LinearKind::InProjB, b_logit);
    causal_conv1d_silu_cuda_forward(
        act.qkv, tokens, C, w.conv1d, c.linear_conv_kernel, ctx.batch.cu_seqlens(),
        ctx.batch.num_sequences(),
        ConvColumns<bf16*>::split3(act.q_raw, key_dim, act.k_raw, key_dim, act.v, value_dim), -1,
        target);
    gated_deltanet_gates_cuda(b_logit, act.a, w.A_log, w.dt_bias, tokens, Hv, act.beta, act.g,
                              target);
    ctx.arena.reset(mark);
  }
  if (!core_kept) {
    const cuda::DeviceArena::Mark mark = ctx.arena.mark();
    bf16 *q = nullptr, *k = nullptr;
    normalised_qk(ctx, act, &q, &k);
    delta_rule_forward(ctx, act, q, k, act.core);
    ctx.arena.reset(mark);
  }
  gated_rmsnorm_cuda_forward(act.core, act.z, tokens * Hv, dv, w.norm, c.rms_norm_eps, act.normed,
                             target);
  project(act.normed, w.out_proj, LinearKind::OutProj, out);
}

void gated_deltanet_cuda_backward(const DeviceLayerContext& ctx, const DeviceLinearAttention& w,
                                  const bf16* x, const DeviceGatedDeltaNetActivations& act,
                                  const bf16* d_out, bf16* dx) {
  const ModelConfig& c = ctx.config;
  const int64_t tokens = ctx.tokens();
  const int64_t C = c.linear_conv_dim(), key_dim = c.linear_key_dim(), value_dim = c.linear_value_dim();
  const int Hk = c.linear_num_key_heads, Hv = c.linear_num_value_heads;
  const int dk = c.linear_key_head_dim, dv = c.linear_value_head_dim;
  const cuda::Target target = ctx.target();
  const cuda::DeviceArena::Mark mark = ctx.arena.mark();
  auto project_back = [&](const bf16* in, const DeviceLinear& weight, LinearKind kind,
                          const bf16* dy, bf16* d_in, bool accumulate) {
    lora_linear_cuda_backward(ctx.blas, ctx.arena, in, tokens, weight, ctx.lora, ctx.layer, kind, dy,
                              d_in, accumulate, -1, act.lora.kept(kind));
  };

  // out = normed W_out^T
  bf16* d_normed = ctx.alloc<bf16>(tokens * value_dim);
  project_back(act.normed, w.out_proj, LinearKind::OutProj, d_out, d_normed, false);
  // normed = rmsnorm(core) * w * silu(z)
  bf16* d_core = ctx.alloc<bf16>(tokens * value_dim);
  bf16* d_z = ctx.alloc<bf16>(tokens * value_dim);
  gated_rmsnorm_cuda_backward(act.core, act.z, tokens * Hv, dv, w.norm, c.rms_norm_eps, d_normed,
                              d_core, d_z, nullptr, nullptr, target);
  // core = delta rule(q, k, v, g, beta)
  bf16* d_q = ctx.alloc<bf16>(tokens * key_dim);
  bf16* d_k = ctx.alloc<bf16>(tokens * key_dim);
  bf16* d_v = ctx.alloc<bf16>(tokens * value_dim);
  float* d_g = ctx.alloc<float>(tokens * Hv);
  float* d_beta = ctx.alloc<float>(tokens * Hv);
  {
    const cuda::DeviceArena::Mark qk_mark = ctx.arena.mark();
    bf16 *q = nullptr, *k = nullptr;
    normalised_qk(ctx, act, &q, &k);
    delta_rule_backward(ctx, act, q, k, d_core, d_q, d_k, d_v, d_g, d_beta);
    ctx.arena.reset(qk_mark);
  }
  // q = l2norm(q_raw) * scale, k = l2norm(k_raw): the raw gradients overwrite d_q, d_k in place.
  l2norm_cuda_backward(act.q_raw, tokens * Hk, dk, kL2NormEps, d_q, d_q, -1, -1, target,
                       float(1.0 / std::sqrt(double(dk))));
  l2norm_cuda_backward(act.k_raw, tokens * Hk, dk, kL2NormEps, d_k, d_k, -1, -1, target);
  // Back through beta = sigmoid(b), g = -exp(A_log) softplus(a + dt_bias).
  bf16* d_b = ctx.alloc<bf16>(tokens * Hv);
  bf16* d_a = ctx.alloc<bf16>(tokens * Hv);
  gated_deltanet_gates_backward_cuda(d_beta, d_g, act.beta, act.a, w.A_log, w.dt_bias, tokens, Hv,
                                     d_b, d_a, target);
  // q | k | v = silu(conv(qkv)): the conv reads their gradients where they are.
  bf16* d_qkv = ctx.alloc<bf16>(tokens * C);
  causal_conv1d_silu_cuda_backward(
      act.qkv, tokens, C, w.conv1d, c.linear_conv_kernel, ctx.batch.cu_seqlens(),
      ctx.batch.num_sequences(),
      ConvColumns<const bf16*>::split3(d_q, key_dim, d_k, key_dim, d_v, value_dim), d_qkv, nullptr,
      nullptr, -1, target);
  // The four input projections all read x.
  project_back(x, w.in_proj_qkv, LinearKind::InProjQkv, d_qkv, dx, false);
  project_back(x, w.in_proj_z, LinearKind::InProjZ, d_z, dx, true);
  project_back(x, w.in_proj_b, LinearKind::InProjB, d_b, dx, true);
  project_back(x, w.in_proj_a, LinearKind::InProjA, d_a, dx, true);
  ctx.arena.reset(mark);
}

}  // namespace deltatune
