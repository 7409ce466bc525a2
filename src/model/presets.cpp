#include "model/presets.h"

#include <algorithm>

#include "core/error.h"

namespace deltatune {

namespace {
struct Preset {
  const char* name;
  int64_t hidden, intermediate;
  int layers, heads, kv_heads, head_dim, k_heads, v_heads, linear_head_dim;
  int64_t vocab;
  bool tied;
};
// Released text backbones (spec/qwen35.md table) and a tiny one.
constexpr Preset kPresets[] = {
    {"tiny", 64, 128, 4, 4, 2, 32, 2, 4, 16, 512, true},
    {"0.8b", 1024, 3584, 24, 8, 2, 256, 16, 16, 128, 248320, true},
    {"2b", 2048, 6144, 24, 8, 2, 256, 16, 16, 128, 248320, true},
    {"4b", 2560, 9216, 32, 16, 4, 256, 16, 32, 128, 248320, false},
    {"9b", 4096, 12288, 32, 16, 4, 256, 16, 32, 128, 248320, false},
};
}  // namespace

ModelConfig preset_config(const std::string& name) {
  for (const Preset& p : kPresets) {
    if (name != p.name) continue;
    ModelConfig c;
    c.model_type = "qwen3_5_text";
    c.layout = CheckpointLayout::CausalLM;
    c.vocab_size = p.vocab;
    c.hidden_size = p.hidden;
    c.intermediate_size = p.intermediate;
    c.num_layers = p.layers;
    c.num_heads = p.heads;
    c.num_kv_heads = p.kv_heads;
    c.head_dim = p.head_dim;
    c.linear_num_key_heads = p.k_heads;
    c.linear_num_value_heads = p.v_heads;
    c.linear_key_head_dim = p.linear_head_dim;
    c.linear_value_head_dim = p.linear_head_dim;
    c.linear_conv_kernel = 4;
    c.tie_word_embeddings = p.tied;
    c.rms_norm_eps = 1e-6;
    c.rope_theta = 1e7;
    c.partial_rotary_factor = 0.25;
    c.mrope_interleaved = true;
    const int half = c.rotary_dim() / 2;  // split like the released [11, 11, 10] of 32
    c.mrope_section = {(half + 2) / 3, (half + 1) / 3, half / 3};
    c.max_position_embeddings = 262144;
    c.eos_token_ids = {p.vocab > 248044 ? 248044 : 2};
    for (int i = 0; i < c.num_layers; ++i)
      c.layer_kinds.push_back((i + 1) % 4 == 0 ? LayerKind::FullAttention : LayerKind::LinearAttention);
    return c;
  }
  std::string names;
  for (const auto& n : preset_names()) names += (names.empty() ? "" : ", ") + n;
  fail("unknown model preset '", name, "'; known: ", names);
}

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const Preset& p : kPresets) names.push_back(p.name);
  return names;
}

size_t forward_activation_bytes(const ModelConfig& c, int64_t tokens, size_t scalar_bytes) {
  const int64_t D = c.hidden_size;
  const int64_t gdn = 2 * c.linear_conv_dim() + 4 * c.linear_value_dim() + 2 * c.linear_key_dim() +
                      6 * c.linear_num_value_heads;
  const int64_t q_width = int64_t(c.num_heads) * c.head_dim, kv = int64_t(c.num_kv_heads) * c.head_dim;
  const int64_t attn = 5 * q_width + 3 * kv + c.num_heads;
  const int64_t mlp = 3 * c.intermediate_size;
  const int64_t per_token = 4 * D + std::max({gdn, attn, mlp}) + c.vocab_size;
  return size_t(tokens * per_token) * scalar_bytes;
}

}  // namespace deltatune
