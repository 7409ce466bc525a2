#include "export/qwen35_gguf.h"

#include <numeric>

namespace deltatune {

namespace {

// llama.cpp's names for the linear layers (src/llama-arch.cpp LLM_TENSOR_NAMES; the HF -> GGUF map
// is gguf-py tensor_mapping.py): in_proj_qkv -> ATTN_QKV, in_proj_z -> ATTN_GATE,
// in_proj_a -> SSM_ALPHA, in_proj_b -> SSM_BETA, out_proj -> SSM_OUT.
const char* linear_gguf_name(LinearKind kind) {
  switch (kind) {
    case LinearKind::QProj: return "attn_q";
    case LinearKind::KProj: return "attn_k";
    case LinearKind::VProj: return "attn_v";
    case LinearKind::OProj: return "attn_output";
    case LinearKind::InProjQkv: return "attn_qkv";
    case LinearKind::InProjZ: return "attn_gate";
    case LinearKind::InProjA: return "ssm_alpha";
    case LinearKind::InProjB: return "ssm_beta";
    case LinearKind::OutProj: return "ssm_out";
    case LinearKind::GateProj: return "ffn_gate";
    case LinearKind::UpProj: return "ffn_up";
    case LinearKind::DownProj: return "ffn_down";
  }
  return "";
}

std::vector<int64_t> identity(int64_t n) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  return order;
}

// ne of a Hugging Face [out, in] (or [n]) weight: the same bytes, dimensions reversed.
std::vector<int64_t> reversed(const Tensor& t) {
  std::vector<int64_t> s = t.shape_vector();
  return {s.rbegin(), s.rend()};
}

}  // namespace

std::vector<int64_t> tiled_value_head_order(int64_t key_heads, int64_t value_heads, int64_t head_dim) {
  DT_CHECK(key_heads > 0 && value_heads % key_heads == 0, "value heads (", value_heads,
           ") must be a multiple of key heads (", key_heads, ")");
  const int64_t per_key = value_heads / key_heads;
  std::vector<int64_t> order(static_cast<size_t>(value_heads * head_dim));
  for (int64_t g = 0; g < key_heads; ++g)
    for (int64_t r = 0; r < per_key; ++r)
      for (int64_t e = 0; e < head_dim; ++e)
        order[size_t((r * key_heads + g) * head_dim + e)] = (g * per_key + r) * head_dim + e;
  return order;
}

int64_t GgufTensorSpec::rows() const {
  int64_t n = 1;
  for (size_t d = 1; d < ne.size(); ++d) n *= ne[d];
  return n;
}

std::string qwen35_gguf_linear_name(int layer, LinearKind kind) {
  return str_cat("blk.", layer, ".", linear_gguf_name(kind), ".weight");
}

std::vector<GgufTensorSpec> qwen35_gguf_tensors(const ModelConfig& c, const ModelWeights& w) {
  DT_CHECK(c.linear_key_head_dim == c.linear_value_head_dim,
           "llama.cpp's qwen35 needs equal linear-attention key and value head dims (it sizes both ",
           "from ssm.state_size); this model has ", c.linear_key_head_dim, " and ", c.linear_value_head_dim);
  const int64_t Hk = c.linear_num_key_heads, Hv = c.linear_num_value_heads, dv = c.linear_value_head_dim;
  const bool reorder = Hk != Hv;  // the converter reorders only then
  // Rows of in_proj_qkv and channels of conv1d: q and k heads stay, the V block is reordered.
  auto qkv_order = [&] {
    std::vector<int64_t> order = identity(2 * c.linear_key_dim());
    for (int64_t i : tiled_value_head_order(Hk, Hv, dv)) order.push_back(2 * c.linear_key_dim() + i);
    return order;
  };
  auto heads = [&](int64_t head_dim) {
    return reorder ? tiled_value_head_order(Hk, Hv, head_dim) : std::vector<int64_t>{};
  };

  const std::string p = c.text_prefix();
  std::vector<GgufTensorSpec> out;
  auto add = [&](std::string name, const std::string& hf, const Tensor& t) -> GgufTensorSpec& {
    GgufTensorSpec s;
    s.name = std::move(name);
    s.hf_name = hf;
    s.source = t;
    s.ne = reversed(t);
    s.always_f32 = t.ndim <= 1;
    out.push_back(std::move(s));
    return out.back();
  };
  auto add_norm = [&](std::string name, const std::string& hf, const Tensor& t) {
    add(std::move(name), hf, t).transform = GgufValueTransform::PlusOne;
  };
  auto add_linear = [&](int layer, LinearKind kind, const Tensor& t) -> GgufTensorSpec& {
    GgufTensorSpec& s = add(qwen35_gguf_linear_name(layer, kind),
                            str_cat(p, "layers.", layer, ".", linear_kind_path(kind), ".weight"), t);
    s.linear = std::pair(layer, kind);
    return s;
  };

  add("token_embd.weight", p + "embed_tokens.weight", w.embed_tokens);
  for (int i = 0; i < c.num_layers; ++i) {
    const LayerWeights& l = w.layers[size_t(i)];
    const std::string blk = str_cat("blk.", i, ".");
    const std::string hf = str_cat(p, "layers.", i, ".");
    add_norm(blk + "attn_norm.weight", hf + "input_layernorm.weight", l.input_layernorm);
    // HF's post_attention_layernorm is the pre-FFN norm; qwen35 has no FFN_NORM and maps it to
    // ATTN_POST_NORM ("post_attention_norm").
    add_norm(blk + "post_attention_norm.weight", hf + "post_attention_layernorm.weight",
             l.post_attention_layernorm);
    if (l.kind == LayerKind::LinearAttention) {
      const LinearAttentionWeights& a = l.linear;
      const std::string la = hf + "linear_attn.";
      add_linear(i, LinearKind::InProjQkv, a.in_proj_qkv).row_order = reorder ? qkv_order() : std::vector<int64_t>{};
      add_linear(i, LinearKind::InProjZ, a.in_proj_z).row_order = heads(dv);
      add_linear(i, LinearKind::InProjB, a.in_proj_b).row_order = heads(1);
      add_linear(i, LinearKind::InProjA, a.in_proj_a).row_order = heads(1);
      // conv1d [C, 1, K] squeezed to [C, K]: ne {K, C}, always F32 (ssm_conv1d is in the
      // converter's F32 list); V channels reordered like in_proj_qkv's V rows.
      GgufTensorSpec& conv = add(blk + "ssm_conv1d.weight", la + "conv1d.weight", a.conv1d);
      conv.ne = {a.conv1d.dim(2), a.conv1d.dim(0)};
      conv.always_f32 = true;
      if (reorder) conv.row_order = qkv_order();
      // 1-D over value heads: one row, so the head order applies to its columns.
      GgufTensorSpec& dt = add(blk + "ssm_dt.bias", la + "dt_bias", a.dt_bias);
      dt.column_order = heads(1);
      GgufTensorSpec& A = add(blk + "ssm_a", la + "A_log", a.A_log);
      A.column_order = heads(1);
      A.transform = GgufValueTransform::NegExp;
      add(blk + "ssm_norm.weight", la + "norm.weight", a.norm);  // plain RMSNorm weight: no +1
      add_linear(i, LinearKind::OutProj, a.out_proj).column_order = heads(dv);
    } else {
      const FullAttentionWeights& a = l.attn;
      // q_proj keeps HF's per-head [query | gate] rows: llama.cpp views them with stride 2·hd.
      add_linear(i, LinearKind::QProj, a.q_proj);
      add_linear(i, LinearKind::KProj, a.k_proj);
      add_linear(i, LinearKind::VProj, a.v_proj);
      add_linear(i, LinearKind::OProj, a.o_proj);
      add_norm(blk + "attn_q_norm.weight", hf + "self_attn.q_norm.weight", a.q_norm);
      add_norm(blk + "attn_k_norm.weight", hf + "self_attn.k_norm.weight", a.k_norm);
    }
    add_linear(i, LinearKind::GateProj, l.mlp.gate_proj);
    add_linear(i, LinearKind::UpProj, l.mlp.up_proj);
    add_linear(i, LinearKind::DownProj, l.mlp.down_proj);
  }
  add_norm("output_norm.weight", p + "norm.weight", w.norm);
  if (!c.tie_word_embeddings) add("output.weight", "lm_head.weight", w.lm_head);
  return out;
}

}  // namespace deltatune
