#include "model/weights.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "core/rng.h"
#include "io/gguf.h"
#include "io/json_file.h"
#include "io/safetensors.h"
#include "model/gguf_model.h"

namespace deltatune {

namespace fs = std::filesystem;

std::vector<WeightSlot> weight_table(const ModelConfig& c, ModelWeights& w) {
  const std::string p = c.text_prefix();
  const int64_t D = c.hidden_size, I = c.intermediate_size;
  const int64_t hd = c.head_dim, H = c.num_heads, Hkv = c.num_kv_heads;
  const int64_t Hv = c.linear_num_value_heads;
  std::vector<WeightSlot> t;
  w.layers.resize(size_t(c.num_layers));
  t.push_back({p + "embed_tokens.weight", {c.vocab_size, D}, &w.embed_tokens});
  for (int i = 0; i < c.num_layers; ++i) {
    LayerWeights& l = w.layers[size_t(i)];
    l.kind = c.layer_kinds[size_t(i)];
    const std::string n = p + "layers." + std::to_string(i) + ".";
    t.push_back({n + "input_layernorm.weight", {D}, &l.input_layernorm});
    t.push_back({n + "post_attention_layernorm.weight", {D}, &l.post_attention_layernorm});
    if (l.kind == LayerKind::LinearAttention) {
      const std::string a = n + "linear_attn.";
      t.push_back({a + "in_proj_qkv.weight", {c.linear_conv_dim(), D}, &l.linear.in_proj_qkv});
      t.push_back({a + "in_proj_z.weight", {c.linear_value_dim(), D}, &l.linear.in_proj_z});
      t.push_back({a + "in_proj_b.weight", {Hv, D}, &l.linear.in_proj_b});
      t.push_back({a + "in_proj_a.weight", {Hv, D}, &l.linear.in_proj_a});
      t.push_back({a + "conv1d.weight", {c.linear_conv_dim(), 1, c.linear_conv_kernel}, &l.linear.conv1d});
      t.push_back({a + "A_log", {Hv}, &l.linear.A_log});
      t.push_back({a + "dt_bias", {Hv}, &l.linear.dt_bias});
      t.push_back({a + "norm.weight", {c.linear_value_head_dim}, &l.linear.norm});
      t.push_back({a + "out_proj.weight", {D, c.linear_value_dim()}, &l.linear.out_proj});
    } else {
      const std::string a = n + "self_attn.";
      t.push_back({a + "q_proj.weight", {2 * H * hd, D}, &l.attn.q_proj});
      t.push_back({a + "k_proj.weight", {Hkv * hd, D}, &l.attn.k_proj});
      t.push_back({a + "v_proj.weight", {Hkv * hd, D}, &l.attn.v_proj});
      t.push_back({a + "o_proj.weight", {D, H * hd}, &l.attn.o_proj});
      t.push_back({a + "q_norm.weight", {hd}, &l.attn.q_norm});
      t.push_back({a + "k_norm.weight", {hd}, &l.attn.k_norm});
    }
    t.push_back({n + "mlp.gate_proj.weight", {I, D}, &l.mlp.gate_proj});
    t.push_back({n + "mlp.up_proj.weight", {I, D}, &l.mlp.up_proj});
    t.push_back({n + "mlp.down_proj.weight", {D, I}, &l.mlp.down_proj});
  }
  t.push_back({p + "norm.weight", {D}, &w.norm});
  if (!c.tie_word_embeddings) t.push_back({"lm_head.weight", {c.vocab_size, D}, &w.lm_head});
  return t;
}

namespace {

bool is_skipped_tensor(const ModelConfig& c, const std::string& name) {
  // Vision tower and multi-token-prediction head: not part of the text model we train.
  if (name.rfind("mtp.", 0) == 0) return true;
  if (c.layout == CheckpointLayout::ConditionalGeneration &&
      (name.rfind("model.visual.", 0) == 0 || name.rfind("visual.", 0) == 0))
    return true;
  return false;
}

}  // namespace

Model Model::load(const std::string& path) {
  if (fs::is_regular_file(path) && (fs::path(path).extension() == ".gguf" || is_gguf_file(path))) return load_gguf(path);
  return with_context("loading model " + path, [&] {
    Model m;
    m.source_ = path;
    DT_CHECK(fs::is_directory(path), path, " is neither a folder (a Hugging Face checkpoint folder with ",
             "config.json and *.safetensors) nor a GGUF file", fs::exists(path) ? "" : " (it does not exist)");
    m.config_ = load_model_config((fs::path(path) / "config.json").string());
    auto store = std::make_shared<TensorStore>(path);
    m.store_ = store;
    std::set<std::string> expected;
    for (const WeightSlot& slot : weight_table(m.config_, m.weights_)) {
      expected.insert(slot.name);
      std::optional<Tensor> t = store->find(slot.name);
      DT_CHECK(t.has_value(), "missing tensor '", slot.name, "' (", m.config_.model_type,
               " layout expects it under '", m.config_.text_prefix(), "')");
      DT_CHECK(dtype_is_float(t->dtype), "tensor '", slot.name, "' in ", store->file_of(slot.name),
               " has dtype ", dtype_name(t->dtype), "; weights must be F32, F16, BF16 or F64");
      const auto want = std::span<const int64_t>(slot.shape);
      DT_CHECK(t->shape_vector() == slot.shape, "tensor '", slot.name, "' in ",
               store->file_of(slot.name), " has shape ", t->shape_str(), ", the config implies ",
               shape_str(want));
      *slot.tensor = *t;
    }
    if (m.config_.tie_word_embeddings) {
      m.weights_.lm_head = m.weights_.embed_tokens;
      expected.insert("lm_head.weight");  // some tied checkpoints still carry a copy: unused
    }
    for (const std::string& name : store->names()) {
      if (expected.count(name) || is_skipped_tensor(m.config_, name)) continue;
      fail("unexpected tensor '", name, "' in ", store->file_of(name), ": not part of a ",
           m.config_.model_type, " text model with this config (layer kinds and names are ",
           "checked against config.json)");
    }
    return m;
  });
}

Model Model::random(const ModelConfig& config, DType dtype, uint64_t seed) {
  validate_model_config(config, "random model config");
  Model m;
  m.config_ = config;
  m.source_ = "random(seed=" + std::to_string(seed) + ")";
  std::vector<WeightSlot> table = weight_table(m.config_, m.weights_);
  m.owned_.reserve(table.size());
  for (size_t i = 0; i < table.size(); ++i) {
    const WeightSlot& slot = table[i];
    HostTensor host(dtype, slot.shape);
    const int64_t n = host.numel();
    const std::string& name = slot.name;
    auto ends_with = [&](const char* s) {
      const size_t k = std::strlen(s);
      return name.size() >= k && name.compare(name.size() - k, k, s) == 0;
    };
    // Values in the ranges real checkpoints hold: A in (1, 16) as exp(A_log), dt_bias near 0,
    // embeddings of norm about 1 (so tied logits start near unit scale),
    // zero-centred norms near 0, the gated norm near 1, matrices scaled by 1/sqrt(fan_in).
    double mean = 0, stddev = 0;
    bool uniform_a_log = false;
    if (ends_with("A_log")) uniform_a_log = true;
    else if (ends_with("linear_attn.norm.weight")) { mean = 1.0; stddev = 0.1; }
    else if (slot.shape.size() == 1) { stddev = ends_with("dt_bias") ? 0.5 : 0.1; }
    else if (ends_with("conv1d.weight")) stddev = 0.5;
    else if (ends_with("embed_tokens.weight")) stddev = 1.0 / std::sqrt(double(config.hidden_size));
    else stddev = 1.0 / std::sqrt(double(slot.shape.back()));
    const int64_t block = 1 << 16;
#pragma omp parallel for schedule(dynamic)
    for (int64_t b0 = 0; b0 < n; b0 += block) {
      Rng rng(seed * 1000003ull + i * 7919ull + uint64_t(b0 / block));
      const int64_t len = std::min(block, n - b0);
      std::vector<double> values(static_cast<size_t>(len));
      for (double& v : values)
        v = uniform_a_log ? std::log(rng.uniform(1.0, 16.0)) : mean + stddev * rng.normal();
      convert_from<double>(values.data(),
                           static_cast<std::byte*>(host.view().data) + dtype_bytes(dtype, b0),
                           dtype, size_t(len));
    }
    *slot.tensor = host.view();
    m.owned_.push_back(std::move(host));
  }
  if (config.tie_word_embeddings) m.weights_.lm_head = m.weights_.embed_tokens;
  return m;
}

std::vector<std::pair<std::string, Tensor>> Model::named_tensors() const {
  ModelWeights copy = weights_;
  std::vector<std::pair<std::string, Tensor>> out;
  for (const WeightSlot& slot : weight_table(config_, copy)) out.emplace_back(slot.name, *slot.tensor);
  return out;
}

void Model::save(const std::string& folder) const {
  fs::create_directories(folder);
  std::vector<NamedTensor> tensors;
  for (auto& [name, t] : named_tensors()) tensors.push_back({name, t});
  write_safetensors((fs::path(folder) / "model.safetensors").string(), tensors, {{"format", "pt"}});
  write_json_file_atomic((fs::path(folder) / "config.json").string(), model_config_to_json(config_));
}

}  // namespace deltatune
