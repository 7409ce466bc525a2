#include "model/qwen35.h"

#include "core/profile.h"
#include "model/attention.h"
#include "model/gated_deltanet.h"
#include "model/mlp.h"
#include "ops/embedding.h"
#include "ops/loss.h"
#include "ops/matmul.h"
#include "ops/norm.h"

namespace deltatune {

namespace {

template <class T>
T* converted(const Tensor& w, Arena& arena) {
  T* out = arena.alloc<T>(size_t(w.numel()));
  tensor_to(w, out);
  return out;
}

// Everything one decoder layer's backward needs from its forward.
template <class T>
struct DecoderActivations {
  T* norm1_w;
  T* norm2_w;
  T* xn1;    // [T, D] norm1(x_in), the mixer input
  T* x_mid;  // [T, D] x_in + mixer
  T* xn2;    // [T, D] norm2(x_mid), the MLP input
  GatedDeltaNetParams<T> gdn_params;
  GatedDeltaNetActivations<T> gdn;
  FullAttentionParams<T> attn_params;
  FullAttentionActivations<T> attn;
  MlpActivations<T> mlp;
};

// x_out = x_mid + mlp(norm2(x_mid)), x_mid = x_in + mixer(norm1(x_in)).
template <class T>
void decoder_layer_forward(const LayerContext& ctx, const LayerWeights& w, const RopeTable<T>& rope,
                           const T* x_in, T* x_out, DecoderActivations<T>& act, ModelState<T>* state = nullptr) {
  const ModelConfig& c = ctx.config;
  const int64_t n = ctx.tokens * c.hidden_size;
  act.norm1_w = converted<T>(w.input_layernorm, ctx.arena);
  act.norm2_w = converted<T>(w.post_attention_layernorm, ctx.arena);
  act.xn1 = ctx.alloc<T>(n);
  act.x_mid = ctx.alloc<T>(n);
  act.xn2 = ctx.alloc<T>(n);
  rmsnorm_zero_centred_forward(x_in, ctx.tokens, c.hidden_size, act.norm1_w, c.rms_norm_eps, act.xn1);
  if (w.kind == LayerKind::LinearAttention) {
    DT_PROFILE("layer: gated deltanet forward");
    act.gdn_params = gated_deltanet_params<T>(ctx, w.linear);
    gated_deltanet_forward(ctx, w.linear, act.gdn_params, act.xn1, act.x_mid, act.gdn,
                           state ? &state->linear[size_t(ctx.layer)] : nullptr);
  } else {
    DT_PROFILE("layer: full attention forward");
    act.attn_params = full_attention_params<T>(ctx, w.attn, rope);
    full_attention_forward(ctx, w.attn, act.attn_params, act.xn1, act.x_mid, act.attn,
                           state ? &state->attention[size_t(ctx.layer)] : nullptr);
  }
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) act.x_mid[i] += x_in[i];
  rmsnorm_zero_centred_forward(act.x_mid, ctx.tokens, c.hidden_size, act.norm2_w, c.rms_norm_eps, act.xn2);
  {
    DT_PROFILE("layer: mlp forward");
    mlp_forward(ctx, w.mlp, act.xn2, x_out, act.mlp);
  }
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) x_out[i] += act.x_mid[i];
}

// d_in = d_mid + norm1ᵀ mixerᵀ d_mid,  d_mid = d_out + norm2ᵀ mlpᵀ d_out.
template <class T>
void decoder_layer_backward(const LayerContext& ctx, const LayerWeights& w, const T* x_in,
                            const DecoderActivations<T>& act, const T* d_out, T* d_in) {
  const ModelConfig& c = ctx.config;
  const int64_t n = ctx.tokens * c.hidden_size;
  const Arena::Mark mark = ctx.arena.mark();
  T* d_xn = ctx.alloc<T>(n);
  T* d_mid = ctx.alloc<T>(n);
  {
    DT_PROFILE("layer: mlp backward");
    mlp_backward(ctx, w.mlp, act.xn2, act.mlp, d_out, d_xn);
  }
  rmsnorm_zero_centred_backward(act.x_mid, ctx.tokens, c.hidden_size, act.norm2_w, c.rms_norm_eps, d_xn, d_mid,
                                static_cast<T*>(nullptr));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) d_mid[i] += d_out[i];
  if (w.kind == LayerKind::LinearAttention) {
    DT_PROFILE("layer: gated deltanet backward");
    gated_deltanet_backward(ctx, w.linear, act.gdn_params, act.xn1, act.gdn, d_mid, d_xn);
  } else {
    DT_PROFILE("layer: full attention backward");
    full_attention_backward(ctx, w.attn, act.attn_params, act.xn1, act.attn, d_mid, d_xn);
  }
  rmsnorm_zero_centred_backward(x_in, ctx.tokens, c.hidden_size, act.norm1_w, c.rms_norm_eps, d_xn, d_in,
                                static_cast<T*>(nullptr));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) d_in[i] += d_mid[i];
  ctx.arena.reset(mark);
}

LayerContext layer_context(const Model& model, const LoraRun& lora, const Batch& batch, int layer, Arena& arena) {
  return LayerContext{model.config(), lora, layer, batch.tokens(), std::span<const int64_t>(batch.cu_seqlens), arena};
}

}  // namespace

template <class T>
ModelState<T> initial_model_state(const ModelConfig& c) {
  ModelState<T> s;
  s.linear.resize(size_t(c.num_layers));
  s.attention.resize(size_t(c.num_layers));
  for (int l = 0; l < c.num_layers; ++l)
    if (c.layer_kinds[size_t(l)] == LayerKind::LinearAttention) s.linear[size_t(l)] = gated_deltanet_initial_state<T>(c);
  return s;
}

template <class T>
void model_forward_hidden(const Model& model, const LoraRun& lora, const Batch& batch, T* hidden, Arena& arena,
                          ModelState<T>* state) {
  const ModelConfig& c = model.config();
  const ModelWeights& w = model.weights();
  const int64_t tokens = batch.tokens(), D = c.hidden_size;
  DT_CHECK(!state || batch.num_sequences() == 1, "a stateful forward takes one sequence");
  const Arena::Mark start = arena.mark();
  T* x = arena.alloc<T>(size_t(tokens * D));
  T* next = arena.alloc<T>(size_t(tokens * D));
  embedding_forward(w.embed_tokens, batch.input_ids.data(), tokens, x);
  std::vector<int64_t> positions = batch.positions;
  if (state)
    for (int64_t& p : positions) p += state->length;
  const RopeTable<T> rope = make_rope_table<T>(positions.data(), tokens, c.rotary_dim(), c.rope_theta);
  for (int l = 0; l < c.num_layers; ++l) {
    const Arena::Mark m = arena.mark();
    DecoderActivations<T> act;
    decoder_layer_forward(layer_context(model, lora, batch, l, arena), w.layers[size_t(l)], rope, x, next, act, state);
    std::swap(x, next);
    arena.reset(m);
  }
  rmsnorm_zero_centred_forward(x, tokens, D, converted<T>(w.norm, arena), c.rms_norm_eps, hidden);
  if (state) state->length += tokens;
  arena.reset(start);
}

template <class T>
void model_forward_logits(const Model& model, const LoraRun& lora, const Batch& batch, T* logits, Arena& arena) {
  const int64_t tokens = batch.tokens();
  const Arena::Mark start = arena.mark();
  T* hidden = arena.alloc<T>(size_t(tokens * model.config().hidden_size));
  model_forward_hidden(model, lora, batch, hidden, arena);
  DT_PROFILE("lm_head logits");
  linear_forward(hidden, tokens, model.weights().lm_head, logits);
  arena.reset(start);
}

std::vector<int64_t> shifted_targets(const Batch& batch) {
  DT_CHECK(int64_t(batch.labels.size()) == batch.tokens(), "the batch has no labels");
  std::vector<int64_t> targets(batch.labels.size(), -100);
  for (int64_t s = 0; s < batch.num_sequences(); ++s)
    for (int64_t t = batch.cu_seqlens[size_t(s)]; t + 1 < batch.cu_seqlens[size_t(s + 1)]; ++t)
      targets[size_t(t)] = batch.labels[size_t(t + 1)];
  return targets;
}

namespace {
int64_t count_targets(const std::vector<int64_t>& targets) {
  int64_t n = 0;
  for (int64_t t : targets) n += t != -100;
  return n;
}
}  // namespace

template <class T>
LossSum model_loss(const Model& model, const LoraRun& lora, const Batch& batch, Arena& arena) {
  const std::vector<int64_t> targets = shifted_targets(batch);
  const Arena::Mark start = arena.mark();
  T* hidden = arena.alloc<T>(size_t(batch.tokens() * model.config().hidden_size));
  model_forward_hidden(model, lora, batch, hidden, arena);
  LossSum r;
  r.sum = cross_entropy_forward_backward<T>(hidden, batch.tokens(), model.weights().lm_head, targets.data(), 0,
                                            nullptr);
  r.targets = count_targets(targets);
  arena.reset(start);
  return r;
}

template <class T>
LossSum model_loss_backward(const Model& model, const LoraRun& lora, const Batch& batch, double grad_scale,
                            bool checkpointing, Arena& arena, int kept_layers) {
  const ModelConfig& c = model.config();
  const ModelWeights& w = model.weights();
  const int64_t tokens = batch.tokens(), D = c.hidden_size, n = tokens * D;
  const int L = c.num_layers;
  auto recomputed = [&](int l) { return checkpointing && l < L - kept_layers; };
  const std::vector<int64_t> targets = shifted_targets(batch);
  const Arena::Mark start = arena.mark();
  const RopeTable<T> rope = make_rope_table<T>(batch.positions.data(), tokens, c.rotary_dim(), c.rope_theta);

  // Forward: the residual stream before every layer (x[l]) and after the last (x[L]); without
  // checkpointing also every layer's activations.
  std::vector<T*> x(static_cast<size_t>(L + 1));
  for (T*& p : x) p = arena.alloc<T>(size_t(n));
  std::vector<DecoderActivations<T>> acts(static_cast<size_t>(L));
  embedding_forward(w.embed_tokens, batch.input_ids.data(), tokens, x[0]);
  for (int l = 0; l < L; ++l) {
    const Arena::Mark m = arena.mark();
    decoder_layer_forward(layer_context(model, lora, batch, l, arena), w.layers[size_t(l)], rope, x[size_t(l)],
                          x[size_t(l + 1)], acts[size_t(l)]);
    if (recomputed(l)) arena.reset(m);
  }
  T* final_w = converted<T>(w.norm, arena);
  T* hidden = arena.alloc<T>(size_t(n));
  rmsnorm_zero_centred_forward(x[size_t(L)], tokens, D, final_w, c.rms_norm_eps, hidden);

  // Loss and d_hidden in one pass over the vocabulary, then back through the final norm.
  T* d_hidden = arena.alloc<T>(size_t(n));
  LossSum r;
  {
    DT_PROFILE("loss forward+backward");
    r.sum = cross_entropy_forward_backward<T>(hidden, tokens, w.lm_head, targets.data(), grad_scale, d_hidden);
  }
  r.targets = count_targets(targets);
  T* d_x = arena.alloc<T>(size_t(n));
  T* d_prev = arena.alloc<T>(size_t(n));
  rmsnorm_zero_centred_backward(x[size_t(L)], tokens, D, final_w, c.rms_norm_eps, d_hidden, d_x,
                                static_cast<T*>(nullptr));

  for (int l = L - 1; l >= 0; --l) {
    const LayerContext ctx = layer_context(model, lora, batch, l, arena);
    const Arena::Mark m = arena.mark();
    if (recomputed(l)) {
      T* scratch_out = arena.alloc<T>(size_t(n));
      decoder_layer_forward(ctx, w.layers[size_t(l)], rope, x[size_t(l)], scratch_out, acts[size_t(l)]);
    }
    decoder_layer_backward(ctx, w.layers[size_t(l)], x[size_t(l)], acts[size_t(l)], d_x, d_prev);
    std::swap(d_x, d_prev);
    arena.reset(m);
  }
  arena.reset(start);
  return r;
}

#define INSTANTIATE(T)                                                                                   \
  template ModelState<T> initial_model_state<T>(const ModelConfig&);                                     \
  template void model_forward_hidden<T>(const Model&, const LoraRun&, const Batch&, T*, Arena&, ModelState<T>*); \
  template void model_forward_logits<T>(const Model&, const LoraRun&, const Batch&, T*, Arena&);         \
  template LossSum model_loss<T>(const Model&, const LoraRun&, const Batch&, Arena&);                    \
  template LossSum model_loss_backward<T>(const Model&, const LoraRun&, const Batch&, double, bool, Arena&, int);
INSTANTIATE(float)
INSTANTIATE(double)
#undef INSTANTIATE

}  // namespace deltatune
