#include "model/cuda/qwen35_cuda.h"

#include <algorithm>

#include "model/cuda/full_attention_cuda.h"
#include "model/cuda/gated_deltanet_cuda.h"
#include "model/cuda/mlp_cuda.h"
#include "model/cuda/model_pointwise.h"
#include "ops/loss_cuda.h"
#include "ops/norm_cuda.h"
#include "ops/rope_cuda.h"

namespace deltatune {

namespace {

using bf16 = __nv_bfloat16;

// Everything one decoder layer's backward needs from its forward.
struct DeviceDecoderActivations {
  bf16* xn1;    // [T, D] norm1(x_in), the mixer input
  bf16* x_mid;  // [T, D] x_in + mixer
  bf16* xn2;    // [T, D] norm2(x_mid), the MLP input
  DeviceGatedDeltaNetActivations gdn;
  DeviceFullAttentionActivations attn;
  DeviceMlpActivations mlp;
};

// Which forward of a layer: the first, or checkpointing's recomputation just before the layer's
// backward. The recomputation needs only the activations: it skips the MLP's down projection
// (x_out is not written) and takes the mixer's core output from the first forward (a Gated
// DeltaNet layer's delta-rule output act.gdn.core, an attention layer's act.attn.o and lse, kept
// across the checkpoint: model_loss_backward_cuda).
enum class LayerPass { Forward, Recompute };

// x_out = x_mid + mlp(norm2(x_mid)), x_mid = x_in + mixer(norm1(x_in)).
void decoder_layer_forward(const DeviceLayerContext& ctx, const DeviceLayer& w, const bf16* x_in,
                           bf16* x_out, DeviceDecoderActivations& act,
                           LayerPass pass = LayerPass::Forward) {
  const ModelConfig& c = ctx.config;
  const int64_t tokens = ctx.tokens(), n = tokens * c.hidden_size;
  const cuda::Target target = ctx.target();
  act.xn1 = ctx.alloc<bf16>(n);
  act.x_mid = ctx.alloc<bf16>(n);
  act.xn2 = ctx.alloc<bf16>(n);
  rmsnorm_zero_centred_cuda_forward(x_in, tokens, c.hidden_size, w.input_layernorm, c.rms_norm_eps,
                                    act.xn1, -1, -1, target);
  if (w.kind == LayerKind::LinearAttention)
    gated_deltanet_cuda_forward(ctx, w.linear, act.xn1, act.x_mid, act.gdn,
                                pass == LayerPass::Recompute);
  else
    full_attention_cuda_forward(ctx, w.attn, act.xn1, act.x_mid, act.attn,
                                pass == LayerPass::Recompute);
  add_rmsnorm_zero_centred_cuda_forward(act.x_mid, x_in, tokens, c.hidden_size,
                                        w.post_attention_layernorm, c.rms_norm_eps, act.xn2,
                                        target);
  if (pass == LayerPass::Recompute) {
    mlp_cuda_forward(ctx, w.mlp, act.xn2, nullptr, act.mlp);
    return;
  }
  mlp_cuda_forward(ctx, w.mlp, act.xn2, x_out, act.mlp);
  add_cuda(x_out, act.x_mid, n, target);
}

// d_in = d_mid + norm1ᵀ mixerᵀ d_mid,  d_mid = d_out + norm2ᵀ mlpᵀ d_out.
void decoder_layer_backward(const DeviceLayerContext& ctx, const DeviceLayer& w, const bf16* x_in,
                            const DeviceDecoderActivations& act, const bf16* d_out, bf16* d_in) {
  const ModelConfig& c = ctx.config;
  const int64_t tokens = ctx.tokens(), n = tokens * c.hidden_size;
  const cuda::Target target = ctx.target();
  const cuda::DeviceArena::Mark mark = ctx.arena.mark();
  bf16* d_xn = ctx.alloc<bf16>(n);
  bf16* d_mid = ctx.alloc<bf16>(n);
  mlp_cuda_backward(ctx, w.mlp, act.xn2, act.mlp, d_out, d_xn);
  rmsnorm_zero_centred_cuda_backward_add(act.x_mid, tokens, c.hidden_size,
                                         w.post_attention_layernorm, c.rms_norm_eps, d_xn, d_mid,
                                         d_out, target);
  if (w.kind == LayerKind::LinearAttention)
    gated_deltanet_cuda_backward(ctx, w.linear, act.xn1, act.gdn, d_mid, d_xn);
  else
    full_attention_cuda_backward(ctx, w.attn, act.xn1, act.attn, d_mid, d_xn);
  rmsnorm_zero_centred_cuda_backward_add(x_in, tokens, c.hidden_size, w.input_layernorm,
                                         c.rms_norm_eps, d_xn, d_in, d_mid, target);
  ctx.arena.reset(mark);
}

double download_loss(const double* loss_sum, const cuda::Target& target) {
  double value = 0;
  cuda::copy_to_host(&value, loss_sum, sizeof(double), target);
  return value;
}

}  // namespace

DeviceBatch::DeviceBatch(const Batch& batch, const ModelConfig& config, cuda::DeviceArena& arena)
    : tokens_(batch.tokens()), host_cu_seqlens_(batch.cu_seqlens) {
  const cuda::Target target = arena.target();
  for (size_t s = 0; s + 1 < host_cu_seqlens_.size(); ++s)
    max_seqlen_ = std::max(max_seqlen_, host_cu_seqlens_[s + 1] - host_cu_seqlens_[s]);
  for (int64_t id : batch.input_ids)
    DT_CHECK(id >= 0 && id < config.vocab_size, "token id ", id, " is outside the vocabulary (",
             config.vocab_size, ")");
  input_ids_ = arena.alloc<int64_t>(tokens_);
  cuda::upload(input_ids_, batch.input_ids, target);
  cu_seqlens_ = arena.alloc<int64_t>(int64_t(host_cu_seqlens_.size()));
  cuda::upload(cu_seqlens_, host_cu_seqlens_, target);
  if (!batch.labels.empty()) {
    const std::vector<int64_t> targets = shifted_targets(batch);
    for (int64_t t : targets) num_targets_ += t != -100;
    targets_ = arena.alloc<int64_t>(tokens_);
    cuda::upload(targets_, targets, target);
  }
  if (config.count_layers(LayerKind::FullAttention) > 0) {
    const int half = config.rotary_dim() / 2;
    int64_t* positions = arena.alloc<int64_t>(tokens_);
    cuda::upload(positions, batch.positions, target);
    rope_cos_ = arena.alloc<float>(tokens_ * half);
    rope_sin_ = arena.alloc<float>(tokens_ * half);
    rope_cuda_table(positions, tokens_, config.rotary_dim(), config.rope_theta, rope_cos_, rope_sin_,
                    target);
  }
  if (!target.emulate && config.count_layers(LayerKind::LinearAttention) > 0) {
    const DeltaRuleShape shape{tokens_, config.linear_num_key_heads, config.linear_num_value_heads,
                               config.linear_key_head_dim, config.linear_value_head_dim};
    delta_rule_plan_ = std::make_unique<DeltaRuleCudaPlan>(shape, host_cu_seqlens_,
                                                           delta_rule_cuda_chunk<bf16>());
  }
}

LossSum model_loss_cuda(const DeviceModel& model, const DeviceLoraRun& lora, const Batch& batch,
                        cuda::DeviceArena& arena, const cuda::Blas& blas) {
  const ModelConfig& c = model.config();
  const cuda::Target target = arena.target();
  const int64_t D = c.hidden_size;
  const cuda::DeviceArena::Mark start = arena.mark();
  const DeviceBatch db(batch, c, arena);
  DT_CHECK(db.targets(), "model_loss_cuda: the batch has no labels");
  const int64_t tokens = db.tokens(), n = tokens * D;
  bf16* x = arena.alloc<bf16>(n);
  bf16* next = arena.alloc<bf16>(n);
  model.embed(batch.input_ids, db.input_ids(), x, target);
  for (int l = 0; l < c.num_layers; ++l) {
    const cuda::DeviceArena::Mark m = arena.mark();
    DeviceDecoderActivations act{};
    decoder_layer_forward(DeviceLayerContext{c, lora, l, db, arena, blas}, model.layers()[size_t(l)],
                          x, next, act);
    std::swap(x, next);
    arena.reset(m);
  }
  bf16* hidden = arena.alloc<bf16>(n);
  rmsnorm_zero_centred_cuda_forward(x, tokens, D, model.norm(), c.rms_norm_eps, hidden, -1, -1, target);
  double* loss_sum = arena.alloc<double>(1);
  void* workspace = arena.alloc_bytes(
      cross_entropy_cuda_workspace_bytes<bf16>(tokens, D, kLossCudaPanelRows, false));
  cross_entropy_cuda_forward_backward<bf16>(hidden, tokens, model.lm_head(), c.vocab_size, D,
                                            db.targets(), 0.0, loss_sum, nullptr, workspace,
                                            kLossCudaPanelRows, blas);
  LossSum r;
  r.sum = download_loss(loss_sum, target);
  r.targets = db.num_targets();
  arena.reset(start);
  return r;
}

LossSum model_loss_backward_cuda(const DeviceModel& model, const DeviceLoraRun& lora,
                                 const Batch& batch, double grad_scale, bool checkpointing,
                                 cuda::DeviceArena& arena, const cuda::Blas& blas,
                                 int kept_layers) {
  const ModelConfig& c = model.config();
  const cuda::Target target = arena.target();
  const int64_t D = c.hidden_size;
  const int L = c.num_layers;
  auto recomputed = [&](int l) { return checkpointing && l < L - kept_layers; };
  const cuda::DeviceArena::Mark start = arena.mark();
  const DeviceBatch db(batch, c, arena);
  DT_CHECK(db.targets(), "model_loss_backward_cuda: the batch has no labels");
  const int64_t tokens = db.tokens(), n = tokens * D;
  auto context = [&](int layer) { return DeviceLayerContext{c, lora, layer, db, arena, blas}; };

  // Forward: the residual stream before every layer (x[l]) and after the last (x[L]); without
  // checkpointing also every layer's activations.
  std::vector<bf16*> x(static_cast<size_t>(L + 1));
  for (bf16*& p : x) p = arena.alloc<bf16>(n);
  std::vector<DeviceDecoderActivations> acts(static_cast<size_t>(L));
  model.embed(batch.input_ids, db.input_ids(), x[0], target);
  for (int l = 0; l < L; ++l) {
    const DeviceLayer& layer = model.layers()[size_t(l)];
    // A recomputed layer keeps its mixer's core output across the checkpoint: the delta rule's
    // (T × value dim bf16) or the attention's (T × heads × head dim bf16, and its T × heads
    // float lse). The recomputation then skips the delta rule's or the attention's forward, the
    // costliest parts of a layer per byte kept (docs/performance.md).
    if (recomputed(l) && layer.kind == LayerKind::LinearAttention)
      acts[size_t(l)].gdn.core = arena.alloc<bf16>(tokens * c.linear_value_dim());
    if (recomputed(l) && layer.kind == LayerKind::FullAttention) {
      acts[size_t(l)].attn.o = arena.alloc<bf16>(tokens * c.num_heads * c.head_dim);
      acts[size_t(l)].attn.lse = arena.alloc<float>(tokens * c.num_heads);
    }
    const cuda::DeviceArena::Mark m = arena.mark();
    decoder_layer_forward(context(l), layer, x[size_t(l)], x[size_t(l + 1)], acts[size_t(l)]);
    if (recomputed(l)) arena.reset(m);
  }
  bf16* hidden = arena.alloc<bf16>(n);
  rmsnorm_zero_centred_cuda_forward(x[size_t(L)], tokens, D, model.norm(), c.rms_norm_eps, hidden,
                                    -1, -1, target);

  // Loss and d_hidden in one pass over the vocabulary, then back through the final norm.
  bf16* d_hidden = arena.alloc<bf16>(n);
  double* loss_sum = arena.alloc<double>(1);
  {
    const cuda::DeviceArena::Mark m = arena.mark();
    void* workspace = arena.alloc_bytes(
        cross_entropy_cuda_workspace_bytes<bf16>(tokens, D, kLossCudaPanelRows, true));
    cross_entropy_cuda_forward_backward<bf16>(hidden, tokens, model.lm_head(), c.vocab_size, D,
                                              db.targets(), grad_scale, loss_sum, d_hidden,
                                              workspace, kLossCudaPanelRows, blas);
    arena.reset(m);
  }
  bf16* d_x = arena.alloc<bf16>(n);
  bf16* d_prev = arena.alloc<bf16>(n);
  rmsnorm_zero_centred_cuda_backward(x[size_t(L)], tokens, D, model.norm(), c.rms_norm_eps, d_hidden,
                                     d_x, nullptr, nullptr, -1, -1, target);
  for (int l = L - 1; l >= 0; --l) {
    const DeviceLayerContext ctx = context(l);
    const cuda::DeviceArena::Mark m = arena.mark();
    if (recomputed(l))
      decoder_layer_forward(ctx, model.layers()[size_t(l)], x[size_t(l)], nullptr, acts[size_t(l)],
                            LayerPass::Recompute);
    decoder_layer_backward(ctx, model.layers()[size_t(l)], x[size_t(l)], acts[size_t(l)], d_x,
                           d_prev);
    std::swap(d_x, d_prev);
    arena.reset(m);
  }
  LossSum r;
  r.sum = download_loss(loss_sum, target);
  r.targets = db.num_targets();
  arena.reset(start);
  return r;
}

}  // namespace deltatune
