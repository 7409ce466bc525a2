#include "train/train_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "core/error.h"

namespace deltatune {

namespace {

struct Context {
  const std::string& source;
  std::string where(const YAML::Node& node, const std::string& key) const {
    const YAML::Mark m = node.Mark();
    return m.line >= 0 ? str_cat(source, ":", m.line + 1, ": '", key, "'") : str_cat(source, ": '", key, "'");
  }
};

template <class T>
T as(const Context& ctx, const YAML::Node& node, const std::string& key, const char* what) {
  try {
    return node.as<T>();
  } catch (const YAML::Exception&) {
    fail(ctx.where(node, key), " must be ", what);
  }
}

std::string as_string(const Context& c, const YAML::Node& n, const std::string& k) {
  DT_CHECK(n.IsScalar(), c.where(n, k), " must be a string");
  return n.as<std::string>();
}
bool as_bool(const Context& c, const YAML::Node& n, const std::string& k) { return as<bool>(c, n, k, "true or false"); }
double as_double(const Context& c, const YAML::Node& n, const std::string& k) { return as<double>(c, n, k, "a number"); }
int64_t as_int(const Context& c, const YAML::Node& n, const std::string& k) { return as<int64_t>(c, n, k, "an integer"); }
std::vector<std::string> as_strings(const Context& c, const YAML::Node& n, const std::string& k) {
  if (n.IsScalar()) return {n.as<std::string>()};
  DT_CHECK(n.IsSequence(), c.where(n, k), " must be a list of strings");
  std::vector<std::string> out;
  for (const auto& item : n) out.push_back(as_string(c, item, k));
  return out;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string nearest(const std::string& key, const std::vector<std::string>& known) {
  std::string best;
  size_t best_d = SIZE_MAX;
  for (const std::string& k : known) {
    const size_t d = edit_distance(key, k);
    if (d < best_d) best_d = d, best = k;
  }
  return best;
}

using Setter = std::function<void(const Context&, const YAML::Node&, const std::string&, TrainConfig&)>;

// Keys whose features exist.
const std::map<std::string, Setter>& supported_keys() {
  static const std::map<std::string, Setter> keys = {
      {"base_model", [](auto& c, auto& n, auto& k, TrainConfig& t) { t.base_model = as_string(c, n, k); }},
      {"tokenizer_config", [](auto& c, auto& n, auto& k, TrainConfig& t) { t.tokenizer_config = as_string(c, n, k); }},
      {"chat_template", [](auto& c, auto& n, auto& k, TrainConfig& t) { t.chat_template = as_string(c, n, k); }},
      {"dataset_prepared_path", [](auto& c, auto& n, auto& k, TrainConfig& t) { t.dataset_prepared_path = as_string(c, n, k); }},
      {"val_set_size", [](auto& c, auto& n, auto& k, TrainConfig& t) { t.val_set_size = as_double(c, n, k); }},
      {"shuffle_merged_datasets", [](auto& c, auto& n, auto& k, TrainConfig& t) { t.shuffle = as_bool(c, n, k); }},
      {"sequence_len", [](auto& c, auto& n, auto& k, TrainConfig& t) { t.sequence_len = as_int(c, n, k); }},
      {"sample_packing", [](auto& c, auto& n, auto& k, TrainConfig& t) { t.sample_packing = as_bool(c, n, k); }},
      {"excess_length_strategy", [](auto& c, auto& n, auto& k, TrainConfig& t) { t.excess_length_strategy = as_string(c, n, k); }},
      {"train_on_inputs", [](auto& c, auto& n, auto& k, TrainConfig& t) { t.train_on_inputs = as_bool(c, n, k); }},
      {"skip_bad_rows", [](auto& c, auto& n, auto& k, TrainConfig& t) { t.skip_bad_rows = as_bool(c, n, k); }},
      {"adapter", [](auto& c, auto& n, auto& k, TrainConfig& t) { t.adapter = as_string(c, n, k); }},
      {"lora_r", [](auto& c, auto& n, auto& k, TrainConfig& t) { t.lora_r = int(as_int(c, n, k)); }},
      {"lora_alpha", [](auto& c, auto& n, auto& k, TrainConfig& t) { t.lora_alpha = as_double(c, n, k); }},
      {"lora_dropout", [](auto& c, auto& n, auto& k, TrainConfig& t) { t.lora_dropout = as_double(c, n, k); }},
      {"lora_target_modules", [](auto& c, auto& n, auto& k, TrainConfig& t) { t.lora_target_modules = as_strings(c, n, k); }},
      {"lora_target_linear", [](auto& c, auto& n, auto& k, TrainConfig& t) { t.lora_target_linear = as_bool(c, n, k); }},
      {"peft_use_rslora", [](auto& c, auto& n, auto& k, TrainConfig& t) { t.peft_use_rslora = as_bool(c, n, k); }},
      {"lora_model_dir", [](auto& c, auto& n, auto& k, TrainConfig& t) { t.lora_model_dir = as_string(c, n, k); }},
      {"micro_batch_size", [](auto& c, auto& n, auto& k, TrainConfig& t) { t.micro_batch_size = as_int(c, n, k); }},
      {"gradient_accumulation_steps", [](auto& c, auto& n, auto& k, TrainConfig& t) { t.gradient_accumulation_steps = as_int(c, n, k); }},
      {"num_epochs", [](auto& c, auto& n, auto& k, TrainConfig& t) { t.num_epochs = as_double(c, n, k); }},
      {"max_steps", [](auto& c, auto& n, auto& k, TrainConfig& t) { t.max_steps = as_int(c, n, k); }},
      {"learning_rate", [](auto& c, auto& n, auto& k, TrainConfig& t) { t.learning_rate = as_double(c, n, k); }},
      {"lr_scheduler", [](auto& c, auto& n, auto& k, TrainConfig& t) { t.lr_scheduler = as_string(c, n, k); }},
      {"warmup_steps", [](auto& c, auto& n, auto& k, TrainConfig& t) { t.warmup_steps = as_int(c, n, k); }},
      {"warmup_ratio", [](auto& c, auto& n, auto& k, TrainConfig& t) { t.warmup_ratio = as_double(c, n, k); }},
      {"weight_decay", [](auto& c, auto& n, auto& k, TrainConfig& t) { t.weight_decay = as_double(c, n, k); }},
      {"optimizer", [](auto& c, auto& n, auto& k, TrainConfig& t) { t.optimizer = as_string(c, n, k); }},
      {"adam_beta1", [](auto& c, auto& n, auto& k, TrainConfig& t) { t.adam_beta1 = as_double(c, n, k); }},
      {"adam_beta2", [](auto& c, auto& n, auto& k, TrainConfig& t) { t.adam_beta2 = as_double(c, n, k); }},
      {"adam_epsilon", [](auto& c, auto& n, auto& k, TrainConfig& t) { t.adam_epsilon = as_double(c, n, k); }},
      {"max_grad_norm", [](auto& c, auto& n, auto& k, TrainConfig& t) { t.max_grad_norm = as_double(c, n, k); }},
      {"gradient_checkpointing", [](auto& c, auto& n, auto& k, TrainConfig& t) { t.gradient_checkpointing = as_bool(c, n, k); }},
      {"checkpointing_kept_layers", [](auto& c, auto& n, auto& k, TrainConfig& t) {
         const int64_t v = as_int(c, n, k);
         DT_CHECK(v >= 0 && v <= 100000, c.where(n, k), " must be a number of layers >= 0, got ", v);
         t.checkpointing_kept_layers = int(v);
       }},
      {"seed", [](auto& c, auto& n, auto& k, TrainConfig& t) { t.seed = uint64_t(as_int(c, n, k)); }},
      {"output_dir", [](auto& c, auto& n, auto& k, TrainConfig& t) { t.output_dir = as_string(c, n, k); }},
      {"save_steps", [](auto& c, auto& n, auto& k, TrainConfig& t) { t.save_steps = as_int(c, n, k); }},
      {"save_total_limit", [](auto& c, auto& n, auto& k, TrainConfig& t) { t.save_total_limit = as_int(c, n, k); }},
      {"eval_steps", [](auto& c, auto& n, auto& k, TrainConfig& t) { t.eval_steps = as_int(c, n, k); }},
      {"logging_steps", [](auto& c, auto& n, auto& k, TrainConfig& t) { t.logging_steps = as_int(c, n, k); }},
      {"resume_from_checkpoint", [](auto& c, auto& n, auto& k, TrainConfig& t) { t.resume_from_checkpoint = as_string(c, n, k); }},
      {"max_bad_steps", [](auto& c, auto& n, auto& k, TrainConfig& t) { t.max_bad_steps = as_int(c, n, k); }},
      {"device", [](auto& c, auto& n, auto& k, TrainConfig& t) { t.device = as_string(c, n, k); }},
      {"threads", [](auto& c, auto& n, auto& k, TrainConfig& t) { t.threads = int(as_int(c, n, k)); }},
  };
  return keys;
}

// Keys that change nothing here, with why (printed once, so nothing is silently ignored).
const std::map<std::string, std::string>& noop_keys() {
  static const std::map<std::string, std::string> keys = {
      {"bf16", "the CPU path computes in float32 (bf16 weights stay bf16 in memory), the GPU path always in bf16"},
      {"fp16", "the CPU path computes in float32"},
      {"tf32", "the CPU path computes in float32"},
      {"flash_attention", "attention is always tiled (no [T x T] scores)"},
      {"sdp_attention", "attention is always tiled (no [T x T] scores)"},
      {"eager_attention", "attention is always tiled (no [T x T] scores)"},
      {"pad_to_sequence_len", "batches are variable-length (cu_seqlens): padding would only add work"},
      {"strict", "weights are always checked against the config"},
      {"base_model_config", "the config is read from base_model"},
      {"model_type", "the architecture is read from config.json"},
      {"tokenizer_type", "the tokenizer is read from tokenizer.json"},
      {"trust_remote_code", "no remote code is ever run"},
      {"eval_sample_packing", "evaluation uses the same batching as training"},
      {"gradient_checkpointing_kwargs", "checkpointing recomputes each layer from its input"},
      {"torch_compile", "there is no torch here"},
      {"dataloader_num_workers", "data is tokenized once into the prepared cache"},
      {"dataloader_pin_memory", "data is tokenized once into the prepared cache"},
      {"dataloader_prefetch_factor", "data is tokenized once into the prepared cache"},
      {"wandb_project", "W&B logging is not built: metrics go to output_dir/metrics.jsonl"},
      {"wandb_entity", "W&B logging is not built: metrics go to output_dir/metrics.jsonl"},
      {"wandb_name", "W&B logging is not built: metrics go to output_dir/metrics.jsonl"},
      {"wandb_watch", "W&B logging is not built: metrics go to output_dir/metrics.jsonl"},
      {"wandb_log_model", "W&B logging is not built: metrics go to output_dir/metrics.jsonl"},
      {"wandb_mode", "W&B logging is not built: metrics go to output_dir/metrics.jsonl"},
      {"hub_model_id", "nothing is uploaded: the adapter is written to output_dir"},
  };
  return keys;
}

// Keys of features not built yet: an error when set to anything but off.
const std::map<std::string, std::string>& unbuilt_keys() {
  static const std::map<std::string, std::string> keys = {
      {"load_in_4bit", "QLoRA (4-bit base weights)"},
      {"load_in_8bit", "8-bit base weights"},
      {"gptq", "GPTQ base weights"},
      {"peft_use_dora", "DoRA"},
      {"lora_modules_to_save", "full training of extra modules (modules_to_save)"},
      {"unfrozen_parameters", "full fine-tuning of selected parameters"},
      {"deepspeed", "DeepSpeed"},
      {"fsdp", "FSDP (several GPUs)"},
      {"fsdp_config", "FSDP (several GPUs)"},
      {"rl", "preference training (DPO, ORPO, ...)"},
      {"special_tokens", "adding special tokens (it resizes the embeddings)"},
      {"tokens", "adding tokens (it resizes the embeddings)"},
      {"neftune_noise_alpha", "NEFTune"},
      {"relora_steps", "ReLoRA"},
      {"evals_per_epoch", "evals_per_epoch (use eval_steps)"},
      {"saves_per_epoch", "saves_per_epoch (use save_steps)"},
  };
  return keys;
}

bool is_off(const YAML::Node& n) {
  if (!n || n.IsNull()) return true;
  if (n.IsScalar()) {
    const std::string v = n.as<std::string>();
    return v == "false" || v == "False" || v == "0" || v == "" || v == "null" || v == "~";
  }
  if (n.IsSequence() || n.IsMap()) return n.size() == 0;
  return false;
}

DatasetConfig parse_dataset(const Context& ctx, const YAML::Node& node, size_t index) {
  const std::string what = "datasets[" + std::to_string(index) + "]";
  DT_CHECK(node.IsMap(), ctx.where(node, what), " must be a mapping with at least 'path'");
  DatasetConfig d;
  d.train_on_eos = "turn";
  d.field = "text";
  for (const auto& kv : node) {
    const std::string key = kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    const std::string k = what + "." + key;
    if (key == "path" || key == "data_files") d.path = as_string(ctx, v, k);
    else if (key == "type") d.type = as_string(ctx, v, k);
    else if (key == "split") d.split = as_string(ctx, v, k);
    else if (key == "field_messages") d.field_messages = as_string(ctx, v, k);
    else if (key == "field") d.field = as_string(ctx, v, k);
    else if (key == "chat_template") d.chat_template = as_string(ctx, v, k);
    else if (key == "roles_to_train") d.roles_to_train = as_strings(ctx, v, k);
    else if (key == "train_on_eos") d.train_on_eos = as_string(ctx, v, k);
    else if (key == "message_field_role") d.message_property_role = as_string(ctx, v, k);
    else if (key == "message_field_content") d.message_property_content = as_string(ctx, v, k);
    else if (key == "message_property_mappings") {
      DT_CHECK(v.IsMap(), ctx.where(v, k), " must map 'role' and 'content' to field names");
      for (const auto& m : v) {
        const std::string which = m.first.as<std::string>();
        if (which == "role") d.message_property_role = as_string(ctx, m.second, k + ".role");
        else if (which == "content") d.message_property_content = as_string(ctx, m.second, k + ".content");
        else fail(ctx.where(m.second, k + "." + which), " is not supported (only role and content are mapped)");
      }
    } else if (key == "roles") {
      DT_CHECK(v.IsMap(), ctx.where(v, k), " must map each role to a list of names used in the data");
      for (const auto& m : v) d.roles.push_back({m.first.as<std::string>(), as_strings(ctx, m.second, k)});
    } else if (key == "ds_type") {
      const std::string t = as_string(ctx, v, k);
      DT_CHECK(t == "json" || t == "jsonl", ctx.where(v, k), " '", t, "' is not supported: datasets are JSON or JSONL files");
    } else {
      fail(ctx.where(v, k), " is not a dataset setting deltatune knows (path, type, split, field_messages, ",
           "message_property_mappings, roles, roles_to_train, train_on_eos, field, chat_template)");
    }
  }
  DT_CHECK(!d.path.empty(), ctx.where(node, what), " needs a 'path' (a local JSON or JSONL file)");
  if (d.type == "sharegpt") {  // Axolotl's older name: conversations with from/value
    d.type = "chat_template";
    if (d.field_messages == "messages") d.field_messages = "conversations";
    if (d.message_property_role == "role") d.message_property_role = "from";
    if (d.message_property_content == "content") d.message_property_content = "value";
  }
  const std::set<std::string> types = {"", "chat_template", "alpaca", "completion", "pretokenized"};
  DT_CHECK(types.count(d.type), ctx.where(node, what + ".type"), " '", d.type,
           "' is not supported; use chat_template, sharegpt, alpaca, completion, or leave it out for ",
           "pre-tokenized rows (input_ids, optional labels)");
  if (d.type == "pretokenized") d.type = "";
  if (d.roles_to_train.empty()) d.roles_to_train = {"assistant"};
  const std::set<std::string> eos = {"turn", "last", "all", "none"};
  DT_CHECK(eos.count(d.train_on_eos), ctx.where(node, what + ".train_on_eos"), " must be turn, last, all or none");
  return d;
}

void validate(const TrainConfig& t) {
  const std::string& s = t.source;
  DT_CHECK(!t.base_model.empty(), s, ": 'base_model' is required (a Hugging Face checkpoint folder or a qwen35 GGUF file)");
  DT_CHECK(!t.datasets.empty(), s, ": 'datasets' is required (a list of local data files)");
  DT_CHECK(t.adapter == "lora", s, ": adapter '", t.adapter, "' is not supported",
           t.adapter == "qlora" ? " yet (QLoRA comes later)" : "", "; use lora");
  DT_CHECK(t.lora_r > 0, s, ": lora_r must be positive, got ", t.lora_r);
  DT_CHECK(t.lora_alpha > 0, s, ": lora_alpha must be positive, got ", t.lora_alpha);
  DT_CHECK(t.lora_dropout >= 0 && t.lora_dropout < 1, s, ": lora_dropout must be in [0, 1), got ", t.lora_dropout);
  DT_CHECK(t.lora_target_linear || !t.lora_target_modules.empty() || !t.lora_model_dir.empty(), s,
           ": set lora_target_modules or lora_target_linear: true");
  DT_CHECK(t.sequence_len > 1, s, ": sequence_len must be at least 2, got ", t.sequence_len);
  DT_CHECK(t.micro_batch_size > 0, s, ": micro_batch_size must be positive, got ", t.micro_batch_size);
  DT_CHECK(t.gradient_accumulation_steps > 0, s, ": gradient_accumulation_steps must be positive");
  DT_CHECK(t.num_epochs > 0 || t.max_steps > 0, s, ": num_epochs or max_steps must be positive");
  DT_CHECK(t.max_steps >= 0, s, ": max_steps must not be negative");
  DT_CHECK(t.learning_rate > 0, s, ": learning_rate must be positive, got ", t.learning_rate);
  const std::set<std::string> scheds = {"constant", "constant_with_warmup", "linear", "cosine"};
  DT_CHECK(scheds.count(t.lr_scheduler), s, ": lr_scheduler '", t.lr_scheduler,
           "' is not supported; use constant, constant_with_warmup, linear or cosine");
  DT_CHECK(t.warmup_steps >= 0 && t.warmup_ratio >= 0 && t.warmup_ratio < 1, s,
           ": warmup_steps must be >= 0 and warmup_ratio in [0, 1)");
  DT_CHECK(t.weight_decay >= 0, s, ": weight_decay must not be negative");
  const std::set<std::string> opts = {"adamw_torch", "adamw_torch_fused", "adamw_hf", "adamw", "adamw_apex_fused"};
  DT_CHECK(opts.count(t.optimizer), s, ": optimizer '", t.optimizer,
           "' is not supported; AdamW is (adamw_torch, adamw_torch_fused, adamw_hf, adamw)");
  DT_CHECK(t.adam_beta1 >= 0 && t.adam_beta1 < 1 && t.adam_beta2 >= 0 && t.adam_beta2 < 1 && t.adam_epsilon > 0, s,
           ": adam_beta1, adam_beta2 must be in [0, 1) and adam_epsilon positive");
  DT_CHECK(t.val_set_size >= 0, s, ": val_set_size must not be negative");
  DT_CHECK(t.save_steps >= 0 && t.eval_steps >= 0 && t.save_total_limit >= 0 && t.logging_steps >= 0, s,
           ": save_steps, eval_steps, save_total_limit and logging_steps must not be negative");
  DT_CHECK(t.excess_length_strategy == "drop" || t.excess_length_strategy == "truncate", s,
           ": excess_length_strategy must be drop or truncate");
  DT_CHECK(t.device == "auto" || t.device == "cpu" || t.device == "cuda", s,
           ": device must be auto, cpu or cuda");
#if !DELTATUNE_CUDA
  DT_CHECK(t.device != "cuda", s, ": device 'cuda': this build of deltatune has no CUDA (build it where ",
           "nvcc is found, or with -DDELTATUNE_CUDA=ON)");
#endif
  DT_CHECK(t.max_bad_steps > 0, s, ": max_bad_steps must be positive");
}

}  // namespace

std::vector<std::string> known_train_config_keys() {
  std::vector<std::string> keys = {"datasets"};
  for (const auto& [k, v] : supported_keys()) keys.push_back(k);
  for (const auto& [k, v] : noop_keys()) keys.push_back(k);
  for (const auto& [k, v] : unbuilt_keys()) keys.push_back(k);
  std::sort(keys.begin(), keys.end());
  return keys;
}

TrainConfig parse_train_config(const std::string& yaml_text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    fail(source, ":", e.mark.line + 1, ": invalid YAML: ", e.msg);
  }
  DT_CHECK(root.IsMap(), source, ": the top level must be a mapping of settings");
  TrainConfig t;
  t.source = source;
  const Context ctx{source};
  const std::vector<std::string> known = known_train_config_keys();
  for (const auto& kv : root) {
    const std::string key = kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    if (key == "datasets") {
      DT_CHECK(v.IsSequence(), ctx.where(v, key), " must be a list");
      for (size_t i = 0; i < v.size(); ++i) t.datasets.push_back(parse_dataset(ctx, v[i], i));
    } else if (auto s = supported_keys().find(key); s != supported_keys().end()) {
      if (!v.IsNull()) s->second(ctx, v, key, t);
    } else if (auto n = noop_keys().find(key); n != noop_keys().end()) {
      if (!is_off(v)) std::fprintf(stderr, "note: %s: not used: %s\n", ctx.where(v, key).c_str(), n->second.c_str());
    } else if (auto u = unbuilt_keys().find(key); u != unbuilt_keys().end()) {
      DT_CHECK(is_off(v), ctx.where(v, key), ": ", u->second, " is not built yet; remove the key or set it off");
    } else {
      std::fprintf(stderr, "warning: %s is not a setting deltatune knows (did you mean '%s'?); it is ignored\n",
                   ctx.where(v, key).c_str(), nearest(key, known).c_str());
    }
  }
  if (t.tokenizer_config.empty()) t.tokenizer_config = t.base_model;
  if (t.chat_template.empty()) t.chat_template = "tokenizer_default";
  validate(t);
  return t;
}

TrainConfig load_train_config(const std::string& path) {
  std::ifstream in(path);
  DT_CHECK(in, path, ": cannot open");
  std::stringstream s;
  s << in.rdbuf();
  return parse_train_config(s.str(), path);
}

}  // namespace deltatune
