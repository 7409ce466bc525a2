#include "model/cuda/full_attention_cuda.h"

#include <cmath>

#include "model/cuda/model_pointwise.h"
#include "ops/attention_cuda.h"
#include "ops/norm_cuda.h"
#include "ops/rope_cuda.h"

namespace deltatune {

namespace {

using bf16 = __nv_bfloat16;

AttentionShape attention_shape(const DeviceLayerContext& ctx) {
  const ModelConfig& c = ctx.config;
  return {ctx.tokens(), c.num_heads, c.num_kv_heads, c.head_dim, 1.0 / std::sqrt(double(c.head_dim))};
}

// q, k [T, H or Hkv, hd] normed and rotated, from qg and k_raw (into arena scratch).
void normed_rotated_qk(const DeviceLayerContext& ctx, const DeviceFullAttention& w,
                       const DeviceFullAttentionActivations& act, bf16** q, bf16** k) {
  const ModelConfig& c = ctx.config;
  const int64_t tokens = ctx.tokens();
  const int H = c.num_heads, Hkv = c.num_kv_heads, hd = c.head_dim;
  const int64_t q_width = int64_t(H) * hd, kv_width = int64_t(Hkv) * hd;
  const cuda::Target target = ctx.target();
  *q = ctx.alloc<bf16>(tokens * q_width);
  *k = ctx.alloc<bf16>(tokens * kv_width);
  // The query of head h is qg[t, h, 0:hd]: rows of hd with stride 2*hd.
  rmsnorm_zero_centred_cuda_forward(act.qg, tokens * H, hd, w.q_norm, c.rms_norm_eps, *q, 2 * hd,
                                    hd, target);
  rmsnorm_zero_centred_cuda_forward(act.k_raw, tokens * Hkv, hd, w.k_norm, c.rms_norm_eps, *k, -1,
                                    -1, target);
  const int rotary = c.rotary_dim();
  rope_cuda_forward(*q, tokens, H, q_width, hd, rotary, ctx.batch.rope_cos(), ctx.batch.rope_sin(),
                    target);
  rope_cuda_forward(*k, tokens, Hkv, kv_width, hd, rotary, ctx.batch.rope_cos(),
                    ctx.batch.rope_sin(), target);
}

// o_proj's input o * sigmoid(gate) [T, H*hd] (into arena scratch).
bf16* gated_output(const DeviceLayerContext& ctx, const DeviceFullAttentionActivations& act) {
  const ModelConfig& c = ctx.config;
  bf16* gated = ctx.alloc<bf16>(ctx.tokens() * c.num_heads * c.head_dim);
  attention_gate_cuda_forward(act.o, act.qg, ctx.tokens(), c.num_heads, c.head_dim, gated,
                              ctx.target());
  return gated;
}

}  // namespace

void full_attention_cuda_forward(const DeviceLayerContext& ctx, const DeviceFullAttention& w,
                                 const bf16* x, bf16* out, DeviceFullAttentionActivations& act,
                                 bool o_kept) {
  DT_CHECK(!o_kept || (act.o && act.lse),
           "full_attention_cuda_forward: o_kept without a kept output and lse");
  const ModelConfig& c = ctx.config;
  const int64_t tokens = ctx.tokens();
  const int H = c.num_heads, Hkv = c.num_kv_heads, hd = c.head_dim;
  const int64_t q_width = int64_t(H) * hd, kv_width = int64_t(Hkv) * hd;
  const cuda::Target target = ctx.target();
  act.qg = ctx.alloc<bf16>(tokens * 2 * q_width);
  act.k_raw = ctx.alloc<bf16>(tokens * kv_width);
  act.v = ctx.alloc<bf16>(tokens * kv_width);
  if (!act.o) act.o = ctx.alloc<bf16>(tokens * q_width);
  if (!act.lse) act.lse = ctx.alloc<float>(tokens * H);

  auto project = [&](const bf16* in, const DeviceLinear& weight, LinearKind kind, bf16* y,
                     bool keep_u) {
    lora_linear_cuda_forward(ctx.blas, ctx.arena, in, tokens, weight, ctx.lora, ctx.layer, kind, y,
                             -1, keep_u ? act.lora.keep(kind) : nullptr);
  };
  project(x, w.q_proj, LinearKind::QProj, act.qg, true);
  project(x, w.k_proj, LinearKind::KProj, act.k_raw, true);
  project(x, w.v_proj, LinearKind::VProj, act.v, true);
  const cuda::DeviceArena::Mark mark = ctx.arena.mark();
  if (!o_kept) {
    bf16 *q = nullptr, *k = nullptr;
    normed_rotated_qk(ctx, w, act, &q, &k);
    attention_cuda_forward(attention_shape(ctx), ctx.batch.cu_seqlens(), ctx.batch.num_sequences(),
                           ctx.batch.max_seqlen(), q, q_width, k, act.v, kv_width, act.o, act.lse,
                           target);
    ctx.arena.reset(mark);
  }
  *act.lora.keep(LinearKind::OProj) = nullptr;  // its input is scratch: the backward remakes u
  project(gated_output(ctx, act), w.o_proj, LinearKind::OProj, out, false);
  ctx.arena.reset(mark);
}

void full_attention_cuda_backward(const DeviceLayerContext& ctx, const DeviceFullAttention& w,
                                  const bf16* x, const DeviceFullAttentionActivations& act,
                                  const bf16* d_out, bf16* dx) {
  const ModelConfig& c = ctx.config;
  const int64_t tokens = ctx.tokens();
  const int H = c.num_heads, Hkv = c.num_kv_heads, hd = c.head_dim;
  const int64_t q_width = int64_t(H) * hd, kv_width = int64_t(Hkv) * hd;
  const cuda::Target target = ctx.target();
  const cuda::DeviceArena::Mark mark = ctx.arena.mark();
  auto project_back = [&](const bf16* in, const DeviceLinear& weight, LinearKind kind,
                          const bf16* dy, bf16* d_in, bool accumulate) {
    lora_linear_cuda_backward(ctx.blas, ctx.arena, in, tokens, weight, ctx.lora, ctx.layer, kind, dy,
                              d_in, accumulate, -1, act.lora.kept(kind));
  };

  bf16* d_gated = ctx.alloc<bf16>(tokens * q_width);
  {
    const cuda::DeviceArena::Mark gated_mark = ctx.arena.mark();
    project_back(gated_output(ctx, act), w.o_proj, LinearKind::OProj, d_out, d_gated, false);
    ctx.arena.reset(gated_mark);
  }
  // gated = o * sigmoid(gate): the gate's gradient goes straight into the gate half of d_qg.
  bf16* d_o = ctx.alloc<bf16>(tokens * q_width);
  bf16* d_qg = ctx.alloc<bf16>(tokens * 2 * q_width);
  attention_gate_cuda_backward(act.o, act.qg, d_gated, tokens, H, hd, d_o, d_qg, target);
  bf16* d_q = ctx.alloc<bf16>(tokens * q_width);
  bf16* d_k = ctx.alloc<bf16>(tokens * kv_width);
  bf16* d_v = ctx.alloc<bf16>(tokens * kv_width);
  {
    const cuda::DeviceArena::Mark scratch = ctx.arena.mark();
    bf16 *q = nullptr, *k = nullptr;
    normed_rotated_qk(ctx, w, act, &q, &k);
    void* workspace = ctx.arena.alloc_bytes(attention_cuda_backward_workspace_bytes(attention_shape(ctx)));
    attention_cuda_backward(attention_shape(ctx), ctx.batch.cu_seqlens(), ctx.batch.num_sequences(),
                            ctx.batch.max_seqlen(), q, q_width, k, act.v, kv_width, act.o, act.lse,
                            d_o, d_q, d_k, d_v, workspace, target);
    ctx.arena.reset(scratch);
  }
  const int rotary = c.rotary_dim();
  rope_cuda_backward(d_q, tokens, H, q_width, hd, rotary, ctx.batch.rope_cos(), ctx.batch.rope_sin(),
                     target);
  rope_cuda_backward(d_k, tokens, Hkv, kv_width, hd, rotary, ctx.batch.rope_cos(),
                     ctx.batch.rope_sin(), target);
  // The norm's backward writes the query half of d_qg (rows of hd, stride 2*hd, like qg itself);
  // k's gradient goes back through its norm in place.
  rmsnorm_zero_centred_cuda_backward(act.qg, tokens * H, hd, w.q_norm, c.rms_norm_eps, d_q, d_qg,
                                     nullptr, nullptr, 2 * hd, hd, target);
  rmsnorm_zero_centred_cuda_backward(act.k_raw, tokens * Hkv, hd, w.k_norm, c.rms_norm_eps, d_k, d_k,
                                     nullptr, nullptr, -1, -1, target);
  project_back(x, w.q_proj, LinearKind::QProj, d_qg, dx, false);
  project_back(x, w.k_proj, LinearKind::KProj, d_k, dx, true);
  project_back(x, w.v_proj, LinearKind::VProj, d_v, dx, true);
  ctx.arena.reset(mark);
}

}  // namespace deltatune
