#include "lora/adapter.h"

#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "core/rng.h"
#include "io/json_file.h"
#include "io/safetensors.h"

namespace deltatune {

namespace fs = std::filesystem;
using json = nlohmann::json;

const char* linear_kind_path(LinearKind kind) {
  static const char* names[kLinearKinds] = {
      "self_attn.q_proj",        "self_attn.k_proj",      "self_attn.v_proj",
      "self_attn.o_proj",        "linear_attn.in_proj_qkv", "linear_attn.in_proj_z",
      "linear_attn.in_proj_a",   "linear_attn.in_proj_b", "linear_attn.out_proj",
      "mlp.gate_proj",           "mlp.up_proj",           "mlp.down_proj"};
  return names[int(kind)];
}

bool linear_kind_in_layer(LinearKind kind, LayerKind layer) {
  const int k = int(kind);
  if (k <= int(LinearKind::OProj)) return layer == LayerKind::FullAttention;
  if (k <= int(LinearKind::OutProj)) return layer == LayerKind::LinearAttention;
  return true;
}

double LoraConfig::scaling() const { return use_rslora ? alpha / std::sqrt(double(r)) : alpha / double(r); }

namespace {

std::pair<int64_t, int64_t> linear_shape(const ModelConfig& c, LinearKind kind) {  // {out, in}
  const int64_t D = c.hidden_size, q = int64_t(c.num_heads) * c.head_dim,
                kv = int64_t(c.num_kv_heads) * c.head_dim, Hv = c.linear_num_value_heads;
  switch (kind) {
    case LinearKind::QProj: return {2 * q, D};
    case LinearKind::KProj: return {kv, D};
    case LinearKind::VProj: return {kv, D};
    case LinearKind::OProj: return {D, q};
    case LinearKind::InProjQkv: return {c.linear_conv_dim(), D};
    case LinearKind::InProjZ: return {c.linear_value_dim(), D};
    case LinearKind::InProjA: return {Hv, D};
    case LinearKind::InProjB: return {Hv, D};
    case LinearKind::OutProj: return {D, c.linear_value_dim()};
    case LinearKind::GateProj: return {c.intermediate_size, D};
    case LinearKind::UpProj: return {c.intermediate_size, D};
    case LinearKind::DownProj: return {D, c.intermediate_size};
  }
  return {0, 0};
}

bool suffix_matches(const std::string& name, const std::string& target) {
  return name == target || (name.size() > target.size() &&
                            name.compare(name.size() - target.size(), target.size(), target) == 0 &&
                            name[name.size() - target.size() - 1] == '.');
}

std::string existing_modules_message(const ModelConfig& model) {
  std::set<std::string> kinds;
  for (const auto& [name, where] : model_linear_modules(model)) kinds.insert(linear_kind_path(where.second));
  std::string s;
  for (const auto& k : kinds) s += (s.empty() ? "" : ", ") + k;
  return "the model's linear modules are " + s + " in each of " + std::to_string(model.num_layers) +
         " layers (full names like '" + model.text_prefix() + "layers.0." +
         linear_kind_path(LinearKind::GateProj) + "')";
}

LoraModule make_module(const ModelConfig& model, const std::string& name, int layer, LinearKind kind,
                       int r, DType dtype) {
  LoraModule m;
  m.name = name;
  m.layer = layer;
  m.kind = kind;
  std::tie(m.out, m.in) = linear_shape(model, kind);
  m.A = HostTensor(dtype, {r, m.in});
  m.B = HostTensor(dtype, {m.out, r});
  m.dA = HostTensor(dtype, {r, m.in});
  m.dB = HostTensor(dtype, {m.out, r});
  return m;
}

}  // namespace

std::vector<std::pair<std::string, std::pair<int, LinearKind>>> model_linear_modules(const ModelConfig& c) {
  std::vector<std::pair<std::string, std::pair<int, LinearKind>>> out;
  for (int i = 0; i < c.num_layers; ++i)
    for (int k = 0; k < kLinearKinds; ++k) {
      const LinearKind kind = LinearKind(k);
      if (!linear_kind_in_layer(kind, c.layer_kinds[size_t(i)])) continue;
      out.push_back({c.text_prefix() + "layers." + std::to_string(i) + "." + linear_kind_path(kind), {i, kind}});
    }
  return out;
}

bool lora_target_matches(const LoraConfig& config, const std::string& module) {
  if (config.target_all_linear) return true;
  if (!config.target_regex.empty()) return std::regex_match(module, std::regex(config.target_regex));
  for (const std::string& t : config.target_modules)
    if (suffix_matches(module, t)) return true;
  return false;
}

void LoraAdapter::index_modules(int num_layers) {
  by_layer_.assign(size_t(num_layers), {});
  for (auto& row : by_layer_) row.fill(-1);
  for (size_t i = 0; i < modules_.size(); ++i)
    by_layer_[size_t(modules_[i].layer)][size_t(modules_[i].kind)] = int(i);
}

const LoraModule* LoraAdapter::find(int layer, LinearKind kind) const {
  if (layer < 0 || size_t(layer) >= by_layer_.size()) return nullptr;
  const int i = by_layer_[size_t(layer)][size_t(kind)];
  return i < 0 ? nullptr : &modules_[size_t(i)];
}

LoraModule* LoraAdapter::find(int layer, LinearKind kind) {
  return const_cast<LoraModule*>(std::as_const(*this).find(layer, kind));
}

void LoraAdapter::zero_grad() {
  for (LoraModule& m : modules_) {
    std::memset(m.dA.view().data, 0, m.dA.view().nbytes());
    std::memset(m.dB.view().data, 0, m.dB.view().nbytes());
  }
}

int64_t LoraAdapter::num_parameters() const {
  int64_t n = 0;
  for (const LoraModule& m : modules_) n += m.A.numel() + m.B.numel();
  return n;
}

std::string LoraAdapter::peft_name(const std::string& module, char factor) {
  return "base_model.model." + module + ".lora_" + std::string(1, factor) + ".weight";
}

LoraAdapter LoraAdapter::create(const ModelConfig& model, const LoraConfig& config, DType param_dtype,
                                uint64_t seed) {
  DT_CHECK(config.r > 0, "LoRA rank r must be positive, got ", config.r);
  DT_CHECK(config.dropout >= 0 && config.dropout < 1, "lora_dropout must be in [0, 1), got ", config.dropout);
  DT_CHECK(param_dtype == DType::F32 || param_dtype == DType::F64, "LoRA parameters are F32 or F64");
  DT_CHECK(config.target_all_linear || !config.target_modules.empty() || !config.target_regex.empty(),
           "no LoRA targets: set lora_target_modules or lora_target_linear");
  LoraAdapter a;
  a.config_ = config;
  a.param_dtype_ = param_dtype;
  const auto all = model_linear_modules(model);
  // PEFT refuses a target that matches nothing; so do we, naming it.
  for (const std::string& t : config.target_modules) {
    bool any = false;
    for (const auto& [name, where] : all) any = any || suffix_matches(name, t);
    DT_CHECK(any, "LoRA target '", t, "' matches no module: ", existing_modules_message(model));
  }
  Rng rng(seed);
  for (const auto& [name, where] : all) {
    if (!lora_target_matches(config, name)) continue;
    LoraModule m = make_module(model, name, where.first, where.second, config.r, param_dtype);
    // PEFT: nn.init.kaiming_uniform_(A, a=sqrt(5)) -> bound = sqrt(6 / ((1 + 5) fan_in)) = 1/sqrt(in).
    const double bound = 1.0 / std::sqrt(double(m.in));
    std::vector<double> values(size_t(m.A.numel()));
    for (double& v : values) v = rng.uniform(-bound, bound);
    convert_from<double>(values.data(), m.A.view().data, param_dtype, values.size());
    a.modules_.push_back(std::move(m));  // B, dA, dB start at zero
  }
  DT_CHECK(!a.modules_.empty(), "LoRA target regex '", config.target_regex, "' matches no module: ",
           existing_modules_message(model));
  a.index_modules(model.num_layers);
  return a;
}

LoraAdapter LoraAdapter::load_peft(const std::string& folder, const ModelConfig& model, DType param_dtype) {
  return with_context("loading adapter " + folder, [&] {
    const std::string config_path = (fs::path(folder) / "adapter_config.json").string();
    const json j = read_json_file(config_path);
    DT_CHECK(j.is_object(), config_path, ": the top level must be an object");
    auto get = [&](const char* key) -> const json* {
      return j.contains(key) && !j.at(key).is_null() ? &j.at(key) : nullptr;
    };
    const json* type = get("peft_type");
    DT_CHECK(type && type->is_string() && type->get<std::string>() == "LORA", config_path,
             ": peft_type must be \"LORA\"");
    auto refuse_if = [&](const char* key, bool present, const char* what) {
      DT_CHECK(!present, config_path, ": '", key, "' ", what, " is not supported");
    };
    refuse_if("use_dora", get("use_dora") && get("use_dora")->is_boolean() && get("use_dora")->get<bool>(), "(DoRA)");
    refuse_if("bias", get("bias") && get("bias")->is_string() && get("bias")->get<std::string>() != "none", "other than \"none\"");
    refuse_if("fan_in_fan_out", get("fan_in_fan_out") && get("fan_in_fan_out")->is_boolean() && get("fan_in_fan_out")->get<bool>(), "true");
    refuse_if("rank_pattern", get("rank_pattern") && !get("rank_pattern")->empty(), "(per-module ranks)");
    refuse_if("alpha_pattern", get("alpha_pattern") && !get("alpha_pattern")->empty(), "(per-module alphas)");
    refuse_if("modules_to_save", get("modules_to_save") && !get("modules_to_save")->empty(), "(full copies of modules)");
    refuse_if("target_parameters", get("target_parameters") && !get("target_parameters")->empty(), "(LoRA on parameters)");

    LoraConfig cfg;
    DT_CHECK(get("r") && get("r")->is_number_integer(), config_path, ": missing integer 'r'");
    cfg.r = get("r")->get<int>();
    DT_CHECK(cfg.r > 0, config_path, ": 'r' must be positive");
    DT_CHECK(get("lora_alpha") && get("lora_alpha")->is_number(), config_path, ": missing number 'lora_alpha'");
    cfg.alpha = get("lora_alpha")->get<double>();
    if (get("lora_dropout") && get("lora_dropout")->is_number()) cfg.dropout = get("lora_dropout")->get<double>();
    if (get("use_rslora") && get("use_rslora")->is_boolean()) cfg.use_rslora = get("use_rslora")->get<bool>();
    if (const json* tm = get("target_modules")) {
      if (tm->is_string()) cfg.target_regex = tm->get<std::string>();
      else if (tm->is_array())
        for (const json& t : *tm) cfg.target_modules.push_back(t.get<std::string>());
    }

    LoraAdapter a;
    a.config_ = cfg;
    a.param_dtype_ = param_dtype;
    std::map<std::string, std::pair<int, LinearKind>> known;
    for (const auto& [name, where] : model_linear_modules(model)) known[name] = where;
    const SafetensorsFile file((fs::path(folder) / "adapter_model.safetensors").string());
    struct Factors {
      const SafetensorsEntry* a = nullptr;
      const SafetensorsEntry* b = nullptr;
      std::pair<int, LinearKind> where;
    };
    std::map<std::string, Factors> found;
    const std::string head = "base_model.model.";
    for (const SafetensorsEntry& e : file.entries()) {
      const std::string& n = e.name;
      char factor = 0;
      for (char f : {'A', 'B'}) {
        const std::string tail = std::string(".lora_") + f + ".weight";
        if (n.size() > head.size() + tail.size() && n.rfind(head, 0) == 0 &&
            n.compare(n.size() - tail.size(), tail.size(), tail) == 0)
          factor = f;
      }
      DT_CHECK(factor, file.path(), ": tensor '", n, "' is not a LoRA factor (expected ",
               "base_model.model.<module>.lora_A.weight / lora_B.weight)");
      const std::string module = n.substr(head.size(), n.size() - head.size() - std::string(".lora_A.weight").size());
      // The two layouts of the same text model name its layers model.layers.N (Qwen3_5ForCausalLM,
      // and a GGUF base) and model.language_model.layers.N (Qwen3_5ForConditionalGeneration): an
      // adapter saved for one applies to the other; it keeps its own names.
      std::string here = module;
      if (!known.count(here)) {
        const std::string causal = "model.layers.", cond = "model.language_model.layers.";
        if (module.rfind(cond, 0) == 0) here = causal + module.substr(cond.size());
        else if (module.rfind(causal, 0) == 0) here = cond + module.substr(causal.size());
      }
      DT_CHECK(known.count(here), file.path(), ": tensor '", n, "' adapts '", module,
               "', which is not a linear module of this model; ", existing_modules_message(model));
      auto& slot = found[module];
      slot.where = known[here];
      (factor == 'A' ? slot.a : slot.b) = &e;
    }
    DT_CHECK(!found.empty(), file.path(), ": holds no LoRA factors");
    for (const auto& [module, slot] : found) {
      DT_CHECK(slot.a && slot.b, file.path(), ": module '", module, "' has lora_", slot.a ? "A" : "B", " but no lora_",
               slot.a ? "B" : "A");
      const auto [layer, kind] = slot.where;
      LoraModule m = make_module(model, module, layer, kind, cfg.r, param_dtype);
      for (auto [entry, dst, factor] : {std::tuple{slot.a, &m.A, 'A'}, std::tuple{slot.b, &m.B, 'B'}}) {
        const Tensor t = file.tensor(*entry);
        DT_CHECK(dtype_is_float(t.dtype), file.path(), ": '", entry->name, "' has dtype ", dtype_name(t.dtype));
        DT_CHECK(t.shape_vector() == dst->view().shape_vector(), file.path(), ": '", entry->name,
                 "' has shape ", t.shape_str(), ", expected ", dst->view().shape_str(), " (lora_", factor,
                 " with r = ", cfg.r, ")");
        if (param_dtype == DType::F64) convert_to<double>(t.data, t.dtype, dst->ptr<double>(), size_t(t.numel()));
        else convert_to<float>(t.data, t.dtype, dst->ptr<float>(), size_t(t.numel()));
      }
      a.modules_.push_back(std::move(m));
    }
    a.index_modules(model.num_layers);
    return a;
  });
}

void LoraAdapter::save_peft(const std::string& folder, const std::string& base_model, DType file_dtype) const {
  fs::create_directories(folder);
  std::vector<HostTensor> converted;
  std::vector<NamedTensor> tensors;
  std::set<std::string> leaf_targets;
  for (const LoraModule& m : modules_) {
    for (auto [src, factor] : {std::pair{&m.A, 'A'}, std::pair{&m.B, 'B'}}) {
      HostTensor t(file_dtype, src->view().shape_vector());
      if (param_dtype_ == DType::F64) convert_from<double>(src->ptr<double>(), t.view().data, file_dtype, size_t(t.numel()));
      else convert_from<float>(src->ptr<float>(), t.view().data, file_dtype, size_t(t.numel()));
      tensors.push_back({peft_name(m.name, factor), t.view()});
      converted.push_back(std::move(t));
    }
    const std::string path = linear_kind_path(m.kind);
    leaf_targets.insert(path.substr(path.find('.') + 1));
  }
  write_safetensors((fs::path(folder) / "adapter_model.safetensors").string(), tensors, {{"format", "pt"}});
  json targets;
  if (!config_.target_regex.empty()) targets = config_.target_regex;
  else if (!config_.target_modules.empty()) targets = config_.target_modules;
  else targets = std::vector<std::string>(leaf_targets.begin(), leaf_targets.end());
  json j = {{"peft_type", "LORA"},
            {"task_type", "CAUSAL_LM"},
            {"base_model_name_or_path", base_model},
            {"r", config_.r},
            {"lora_alpha", config_.alpha},
            {"lora_dropout", config_.dropout},
            {"use_rslora", config_.use_rslora},
            {"target_modules", targets},
            {"use_dora", false},
            {"bias", "none"},
            {"fan_in_fan_out", false},
            {"init_lora_weights", true},
            {"inference_mode", true},
            {"modules_to_save", nullptr},
            {"rank_pattern", json::object()},
            {"alpha_pattern", json::object()},
            {"layers_to_transform", nullptr},
            {"layers_pattern", nullptr},
            {"target_parameters", nullptr},
            {"lora_bias", false}};
  write_json_file_atomic((fs::path(folder) / "adapter_config.json").string(), j);
}

}  // namespace deltatune
