// The Qwen3.5 text model's settings, read from a Hugging Face config.json (spec/qwen35.md,
// transformers' configuration_qwen3_5.py): `qwen3_5` (Qwen3_5ForConditionalGeneration, text
// settings under text_config) and `qwen3_5_text` (Qwen3_5ForCausalLM). `qwen3_5_moe` is
// recognised and refused until MoE exists.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace deltatune {

enum class LayerKind { LinearAttention, FullAttention };

// Where the text tensors live in the checkpoint.
enum class CheckpointLayout {
  CausalLM,               // model.{embed_tokens,layers.N.*,norm}, lm_head
  ConditionalGeneration,  // model.language_model.{...}, lm_head; model.visual.*, mtp.* skipped
};

struct ModelConfig {
  std::string model_type;  // "qwen3_5" or "qwen3_5_text"
  CheckpointLayout layout = CheckpointLayout::CausalLM;

  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int num_layers = 0;
  std::vector<LayerKind> layer_kinds;
  double rms_norm_eps = 1e-6;
  bool tie_word_embeddings = false;

  // Gated full attention.
  int num_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  double rope_theta = 0;
  double partial_rotary_factor = 0.25;
  std::vector<int> mrope_section;
  bool mrope_interleaved = false;

  // Gated DeltaNet.
  int linear_num_key_heads = 0;
  int linear_num_value_heads = 0;
  int linear_key_head_dim = 0;
  int linear_value_head_dim = 0;
  int linear_conv_kernel = 4;

  int64_t max_position_embeddings = 0;
  std::vector<int64_t> eos_token_ids;

  int rotary_dim() const { return int(double(head_dim) * partial_rotary_factor); }
  int64_t linear_key_dim() const { return int64_t(linear_num_key_heads) * linear_key_head_dim; }
  int64_t linear_value_dim() const { return int64_t(linear_num_value_heads) * linear_value_head_dim; }
  int64_t linear_conv_dim() const { return 2 * linear_key_dim() + linear_value_dim(); }
  // "model." or "model.language_model."
  std::string text_prefix() const;
  int count_layers(LayerKind kind) const;
};

// Parses and checks a config.json; `where` names it in errors.
ModelConfig parse_model_config(const nlohmann::json& json, const std::string& where);
ModelConfig load_model_config(const std::string& config_json_path);

// A config.json transformers reads back as the same model (layout decides the model_type).
nlohmann::json model_config_to_json(const ModelConfig& config);

// Checks the relations between fields (head counts divide, rotary dim fits, ...).
void validate_model_config(const ModelConfig& config, const std::string& where);

}  // namespace deltatune
