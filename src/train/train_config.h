// The fine-tuning job's settings, read from an Axolotl-style YAML file (Axolotl's key names, so an
// Axolotl user's Qwen3.5 LoRA config runs unchanged where the features exist). Every key is
// documented in docs/config.md. Unknown keys get a warning naming the nearest known key; keys of
// features not built yet are errors; invalid values are errors before the model loads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace deltatune {

struct DatasetConfig {
  std::string path;
  std::string type;  // "chat_template", "alpaca", "completion", or "" (pre-tokenized input_ids)
  std::string split;                  // for JSON files holding {split: [...]}; "" = the whole file
  std::string field_messages = "messages";
  std::string message_property_role = "role";       // Axolotl: message_property_mappings.role
  std::string message_property_content = "content"; // Axolotl: message_property_mappings.content
  std::vector<std::pair<std::string, std::vector<std::string>>> roles;  // role -> source names
  std::vector<std::string> roles_to_train;          // default: assistant
  std::string train_on_eos;                         // "turn" (default), "last", "all", "none"
  std::string field;                                // completion: the text field (default "text")
  std::string chat_template;                        // per-dataset override
};

struct TrainConfig {
  std::string source;  // the YAML path, for messages

  // Model and data.
  std::string base_model;
  std::string tokenizer_config;  // default: base_model
  std::string chat_template;     // "tokenizer_default" (default), "chatml", or a .jinja path
  std::vector<DatasetConfig> datasets;
  std::string dataset_prepared_path;  // tokenized cache folder (default: output_dir/prepared)
  double val_set_size = 0;            // fraction (< 1) or count (>= 1)
  bool shuffle = true;
  int64_t sequence_len = 2048;
  bool sample_packing = false;
  std::string excess_length_strategy = "drop";  // "drop" or "truncate"
  bool train_on_inputs = false;
  bool skip_bad_rows = false;

  // Adapter.
  std::string adapter = "lora";
  int lora_r = 8;
  double lora_alpha = 16;
  double lora_dropout = 0;
  std::vector<std::string> lora_target_modules;
  bool lora_target_linear = false;
  bool peft_use_rslora = false;
  std::string lora_model_dir;  // start from an existing PEFT adapter

  // Optimisation.
  int64_t micro_batch_size = 1;
  int64_t gradient_accumulation_steps = 1;
  double num_epochs = 1;
  int64_t max_steps = 0;  // > 0 overrides num_epochs
  double learning_rate = 2e-4;
  std::string lr_scheduler = "cosine";
  int64_t warmup_steps = 0;
  double warmup_ratio = 0;
  double weight_decay = 0;
  std::string optimizer = "adamw_torch";
  double adam_beta1 = 0.9, adam_beta2 = 0.999, adam_epsilon = 1e-8;
  double max_grad_norm = 1.0;
  bool gradient_checkpointing = true;
  // With checkpointing, the last N layers keep their activations (no recomputation for them):
  // faster, at about one layer's activations of memory each.
  int checkpointing_kept_layers = 0;
  uint64_t seed = 42;

  // Outputs and bookkeeping.
  std::string output_dir = "./outputs";
  int64_t save_steps = 0;  // 0: only at the end
  int64_t save_total_limit = 0;  // 0: keep all
  int64_t eval_steps = 0;        // 0: only at the end (when there is a validation split)
  int64_t logging_steps = 1;
  std::string resume_from_checkpoint;  // a checkpoint folder, or "true"/"latest" for the newest
  int64_t max_bad_steps = 10;          // non-finite steps skipped before giving up

  // Runtime.
  std::string device = "auto";  // auto: cuda when built with CUDA and a GPU is present, else cpu
  int threads = 0;
};

// Parses `path`; prints warnings for unknown keys to stderr; throws on errors.
TrainConfig load_train_config(const std::string& path);
TrainConfig parse_train_config(const std::string& yaml_text, const std::string& source);

// All keys the loader knows (for docs and tests).
std::vector<std::string> known_train_config_keys();

}  // namespace deltatune
