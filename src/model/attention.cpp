#include "model/attention.h"

#include <cmath>

#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/matmul.h"
#include "ops/norm.h"

namespace deltatune {

template <class T>
FullAttentionParams<T> full_attention_params(const LayerContext& ctx, const FullAttentionWeights& w,
                                             const RopeTable<T>& rope) {
  FullAttentionParams<T> p;
  p.q_norm = ctx.alloc<T>(ctx.config.head_dim);
  p.k_norm = ctx.alloc<T>(ctx.config.head_dim);
  tensor_to(w.q_norm, p.q_norm);
  tensor_to(w.k_norm, p.k_norm);
  p.rope = &rope;
  return p;
}

namespace {
AttentionShape attention_shape(const LayerContext& ctx) {
  const ModelConfig& c = ctx.config;
  return {ctx.tokens, c.num_heads, c.num_kv_heads, c.head_dim, 1.0 / std::sqrt(double(c.head_dim))};
}
}  // namespace

template <class T>
void full_attention_forward(const LayerContext& ctx, const FullAttentionWeights& w,
                            const FullAttentionParams<T>& p, const T* x, T* out,
                            FullAttentionActivations<T>& act, AttentionCache<T>* cache) {
  const ModelConfig& c = ctx.config;
  const int64_t tokens = ctx.tokens;
  const int H = c.num_heads, Hkv = c.num_kv_heads, hd = c.head_dim;
  const int64_t q_width = int64_t(H) * hd, kv_width = int64_t(Hkv) * hd;
  act.qg = ctx.alloc<T>(tokens * 2 * q_width);
  act.k_raw = ctx.alloc<T>(tokens * kv_width);
  act.v = ctx.alloc<T>(tokens * kv_width);
  act.q = ctx.alloc<T>(tokens * q_width);
  act.k = ctx.alloc<T>(tokens * kv_width);
  act.o = ctx.alloc<T>(tokens * q_width);
  act.lse = ctx.alloc<T>(tokens * H);
  act.gated = ctx.alloc<T>(tokens * q_width);

  lora_linear_forward(x, tokens, w.q_proj, ctx.lora, ctx.layer, LinearKind::QProj, act.qg, ctx.arena);
  lora_linear_forward(x, tokens, w.k_proj, ctx.lora, ctx.layer, LinearKind::KProj, act.k_raw, ctx.arena);
  lora_linear_forward(x, tokens, w.v_proj, ctx.lora, ctx.layer, LinearKind::VProj, act.v, ctx.arena);
  // The query of head h is qg[t, h, 0:hd]: rows of hd with stride 2*hd.
  rmsnorm_zero_centred_forward(act.qg, tokens * H, hd, p.q_norm, c.rms_norm_eps, act.q, 2 * hd, hd);
  rmsnorm_zero_centred_forward(act.k_raw, tokens * Hkv, hd, p.k_norm, c.rms_norm_eps, act.k);
  rope_forward(act.q, tokens, H, q_width, hd, *p.rope);
  rope_forward(act.k, tokens, Hkv, kv_width, hd, *p.rope);
  if (!cache || cache->length == 0) {
    attention_forward(attention_shape(ctx), ctx.cu_seqlens, act.q, q_width, act.k, act.v, kv_width, act.o, act.lse);
  } else {
    DT_CHECK(ctx.cu_seqlens.size() == 2, "a stateful forward takes one sequence");
    const size_t n = size_t(tokens * kv_width);
    cache->k.insert(cache->k.end(), act.k, act.k + n);
    cache->v.insert(cache->v.end(), act.v, act.v + n);
    attention_forward_with_past(attention_shape(ctx), cache->length, act.q, q_width, cache->k.data(), cache->v.data(),
                                kv_width, act.o);
  }
  if (cache && cache->length == 0) {
    cache->k.assign(act.k, act.k + tokens * kv_width);
    cache->v.assign(act.v, act.v + tokens * kv_width);
  }
  if (cache) cache->length += tokens;
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < tokens; ++t)
    for (int h = 0; h < H; ++h)
      for (int i = 0; i < hd; ++i) {
        const T gate = act.qg[(t * H + h) * 2 * hd + hd + i];
        act.gated[t * q_width + h * hd + i] = act.o[t * q_width + h * hd + i] * sigmoid(gate);
      }
  lora_linear_forward(act.gated, tokens, w.o_proj, ctx.lora, ctx.layer, LinearKind::OProj, out, ctx.arena);
}

template <class T>
void full_attention_backward(const LayerContext& ctx, const FullAttentionWeights& w,
                             const FullAttentionParams<T>& p, const T* x,
                             const FullAttentionActivations<T>& act, const T* d_out, T* dx) {
  const ModelConfig& c = ctx.config;
  const int64_t tokens = ctx.tokens;
  const int H = c.num_heads, Hkv = c.num_kv_heads, hd = c.head_dim;
  const int64_t q_width = int64_t(H) * hd, kv_width = int64_t(Hkv) * hd;
  const Arena::Mark mark = ctx.arena.mark();

  T* d_gated = ctx.alloc<T>(tokens * q_width);
  lora_linear_backward(act.gated, tokens, w.o_proj, ctx.lora, ctx.layer, LinearKind::OProj, d_out, d_gated,
                       false, ctx.arena);
  // gated = o * sigmoid(gate): the gate's gradient goes straight into the gate half of d_qg.
  T* d_o = ctx.alloc<T>(tokens * q_width);
  T* d_qg = ctx.alloc<T>(tokens * 2 * q_width);
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < tokens; ++t)
    for (int h = 0; h < H; ++h)
      for (int i = 0; i < hd; ++i) {
        const int64_t oi = t * q_width + h * hd + i, gi = (t * H + h) * 2 * hd + hd + i;
        const T s = sigmoid(act.qg[gi]);
        d_o[oi] = d_gated[oi] * s;
        d_qg[gi] = d_gated[oi] * act.o[oi] * s * (T(1) - s);
      }
  T* d_q = ctx.alloc<T>(tokens * q_width);
  T* d_k = ctx.alloc<T>(tokens * kv_width);
  T* d_v = ctx.alloc<T>(tokens * kv_width);
  attention_backward(attention_shape(ctx), ctx.cu_seqlens, act.q, q_width, act.k, act.v, kv_width, act.o,
                     act.lse, d_o, d_q, d_k, d_v);
  rope_backward(d_q, tokens, H, q_width, hd, *p.rope);
  rope_backward(d_k, tokens, Hkv, kv_width, hd, *p.rope);
  // Norm backward writes the query half of d_qg (rows of hd, stride 2*hd, like qg itself).
  rmsnorm_zero_centred_backward(act.qg, tokens * H, hd, p.q_norm, c.rms_norm_eps, d_q, d_qg,
                                static_cast<T*>(nullptr), 2 * hd, hd);
  T* d_k_raw = ctx.alloc<T>(tokens * kv_width);
  rmsnorm_zero_centred_backward(act.k_raw, tokens * Hkv, hd, p.k_norm, c.rms_norm_eps, d_k, d_k_raw,
                                static_cast<T*>(nullptr));
  lora_linear_backward(x, tokens, w.q_proj, ctx.lora, ctx.layer, LinearKind::QProj, d_qg, dx, false, ctx.arena);
  lora_linear_backward(x, tokens, w.k_proj, ctx.lora, ctx.layer, LinearKind::KProj, d_k_raw, dx, true, ctx.arena);
  lora_linear_backward(x, tokens, w.v_proj, ctx.lora, ctx.layer, LinearKind::VProj, d_v, dx, true, ctx.arena);
  ctx.arena.reset(mark);
}

#define INSTANTIATE(T)                                                                               \
  template FullAttentionParams<T> full_attention_params<T>(const LayerContext&, const FullAttentionWeights&, \
                                                           const RopeTable<T>&);                      \
  template void full_attention_forward<T>(const LayerContext&, const FullAttentionWeights&,           \
                                          const FullAttentionParams<T>&, const T*, T*,                \
                                          FullAttentionActivations<T>&, AttentionCache<T>*);          \
  template void full_attention_backward<T>(const LayerContext&, const FullAttentionWeights&,          \
                                           const FullAttentionParams<T>&, const T*,                   \
                                           const FullAttentionActivations<T>&, const T*, T*);
INSTANTIATE(float)
INSTANTIATE(double)
#undef INSTANTIATE

}  // namespace deltatune
