#include "model/config.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/json_file.h"

namespace deltatune {

using json = nlohmann::json;

namespace {

// Typed access to a JSON object with errors that name the file and the key.
class Fields {
 public:
  Fields(const json& obj, std::string where) : obj_(obj), where_(std::move(where)) {}

  bool has(const char* key) const { return obj_.contains(key) && !obj_.at(key).is_null(); }

  int64_t integer(const char* key) const {
    need(key);
    const json& v = obj_.at(key);
    DT_CHECK(v.is_number_integer(), where_, ": '", key, "' must be an integer, got ", v.dump());
    return v.get<int64_t>();
  }
  int64_t positive(const char* key) const {
    const int64_t v = integer(key);
    DT_CHECK(v > 0, where_, ": '", key, "' must be positive, got ", v);
    return v;
  }
  int64_t positive_or(const char* key, int64_t fallback) const {
    return has(key) ? positive(key) : fallback;
  }
  double number(const char* key) const {
    need(key);
    const json& v = obj_.at(key);
    DT_CHECK(v.is_number(), where_, ": '", key, "' must be a number, got ", v.dump());
    return v.get<double>();
  }
  double number_or(const char* key, double fallback) const { return has(key) ? number(key) : fallback; }
  bool boolean_or(const char* key, bool fallback) const {
    if (!has(key)) return fallback;
    const json& v = obj_.at(key);
    DT_CHECK(v.is_boolean(), where_, ": '", key, "' must be true or false, got ", v.dump());
    return v.get<bool>();
  }
  std::string string_or(const char* key, const std::string& fallback) const {
    if (!has(key)) return fallback;
    const json& v = obj_.at(key);
    DT_CHECK(v.is_string(), where_, ": '", key, "' must be a string, got ", v.dump());
    return v.get<std::string>();
  }
  const json& at(const char* key) const { return obj_.at(key); }
  const std::string& where() const { return where_; }

 private:
  void need(const char* key) const {
    DT_CHECK(has(key), where_, ": missing required field '", key, "'");
  }
  const json& obj_;
  std::string where_;
};

std::vector<LayerKind> parse_layer_types(const Fields& f, int num_layers) {
  std::vector<LayerKind> kinds;
  if (f.has("layer_types")) {
    const json& lt = f.at("layer_types");
    DT_CHECK(lt.is_array(), f.where(), ": 'layer_types' must be a list");
    DT_CHECK(int64_t(lt.size()) == num_layers, f.where(), ": 'layer_types' has ", lt.size(),
             " entries but num_hidden_layers is ", num_layers);
    for (size_t i = 0; i < lt.size(); ++i) {
      const std::string s = lt[i].is_string() ? lt[i].get<std::string>() : lt[i].dump();
      if (s == "linear_attention") kinds.push_back(LayerKind::LinearAttention);
      else if (s == "full_attention") kinds.push_back(LayerKind::FullAttention);
      else fail(f.where(), ": layer_types[", i, "] is '", s,
                "'; expected 'linear_attention' or 'full_attention'");
    }
    return kinds;
  }
  // transformers: layer i is full attention when (i + 1) % full_attention_interval == 0.
  const int64_t interval = f.positive_or("full_attention_interval", 4);
  for (int i = 0; i < num_layers; ++i)
    kinds.push_back((i + 1) % interval == 0 ? LayerKind::FullAttention : LayerKind::LinearAttention);
  return kinds;
}

void parse_rope(const Fields& text, const Fields& top, ModelConfig& c) {
  // rope_parameters (transformers 5) or the older top-level keys.
  if (text.has("rope_parameters")) {
    const json& rp = text.at("rope_parameters");
    DT_CHECK(rp.is_object(), text.where(), ": 'rope_parameters' must be an object");
    Fields r(rp, text.where() + ": rope_parameters");
    const std::string type = r.string_or("rope_type", r.string_or("type", "default"));
    DT_CHECK(type == "default", text.where(), ": rope_parameters.rope_type '", type,
             "' is not supported (only 'default')");
    c.rope_theta = r.number("rope_theta");
    c.partial_rotary_factor = r.number_or("partial_rotary_factor",
                                          text.number_or("partial_rotary_factor", 0.25));
    if (r.has("mrope_section")) {
      const json& ms = rp.at("mrope_section");
      DT_CHECK(ms.is_array(), text.where(), ": rope_parameters.mrope_section must be a list");
      for (const json& v : ms) {
        DT_CHECK(v.is_number_integer(), text.where(), ": rope_parameters.mrope_section must hold integers");
        c.mrope_section.push_back(v.get<int>());
      }
    }
    c.mrope_interleaved = r.boolean_or("mrope_interleaved", false);
  } else {
    const Fields* src = text.has("rope_theta") ? &text : &top;
    c.rope_theta = src->number("rope_theta");
    c.partial_rotary_factor = text.number_or("partial_rotary_factor", 0.25);
    if (text.has("rope_scaling")) {
      const json& rs = text.at("rope_scaling");
      if (rs.is_object() && rs.contains("mrope_section"))
        for (const json& v : rs.at("mrope_section")) c.mrope_section.push_back(v.get<int>());
    }
  }
}

}  // namespace

std::string ModelConfig::text_prefix() const {
  return layout == CheckpointLayout::ConditionalGeneration ? "model.language_model." : "model.";
}

int ModelConfig::count_layers(LayerKind kind) const {
  int n = 0;
  for (LayerKind k : layer_kinds) n += k == kind;
  return n;
}

ModelConfig parse_model_config(const json& root, const std::string& where) {
  DT_CHECK(root.is_object(), where, ": the top level must be a JSON object");
  Fields top(root, where);
  ModelConfig c;
  c.model_type = top.string_or("model_type", "");
  if (c.model_type == "qwen3_5_moe" || c.model_type == "qwen3_5_moe_text")
    fail(where, ": model_type '", c.model_type,
         "' (Qwen3.5 MoE) is recognised but not supported yet: only dense Qwen3.5 models "
         "(qwen3_5, qwen3_5_text) can be loaded");
  DT_CHECK(c.model_type == "qwen3_5" || c.model_type == "qwen3_5_text", where, ": model_type '",
           c.model_type, "' is not a Qwen3.5 model; expected 'qwen3_5' or 'qwen3_5_text'");

  const json* text_json = &root;
  std::string text_where = where;
  if (c.model_type == "qwen3_5") {
    c.layout = CheckpointLayout::ConditionalGeneration;
    DT_CHECK(top.has("text_config") && root.at("text_config").is_object(), where,
             ": model_type 'qwen3_5' needs a 'text_config' object");
    text_json = &root.at("text_config");
    text_where = where + ": text_config";
  } else {
    c.layout = CheckpointLayout::CausalLM;
  }
  Fields t(*text_json, text_where);

  c.vocab_size = t.positive("vocab_size");
  c.hidden_size = t.positive("hidden_size");
  c.intermediate_size = t.positive("intermediate_size");
  c.num_layers = int(t.positive("num_hidden_layers"));
  c.num_heads = int(t.positive("num_attention_heads"));
  c.num_kv_heads = int(t.positive("num_key_value_heads"));
  c.head_dim = int(t.positive_or("head_dim", c.hidden_size / c.num_heads));
  c.rms_norm_eps = t.number_or("rms_norm_eps", 1e-6);
  c.linear_num_key_heads = int(t.positive("linear_num_key_heads"));
  c.linear_num_value_heads = int(t.positive("linear_num_value_heads"));
  c.linear_key_head_dim = int(t.positive("linear_key_head_dim"));
  c.linear_value_head_dim = int(t.positive("linear_value_head_dim"));
  c.linear_conv_kernel = int(t.positive_or("linear_conv_kernel_dim", 4));
  c.max_position_embeddings = t.positive_or("max_position_embeddings", 0);
  c.layer_kinds = parse_layer_types(t, c.num_layers);
  parse_rope(t, top, c);

  const std::string act = t.string_or("hidden_act", "silu");
  DT_CHECK(act == "silu", text_where, ": hidden_act '", act, "' is not supported (only 'silu')");
  DT_CHECK(!t.boolean_or("attention_bias", false), text_where,
           ": attention_bias true is not supported (Qwen3.5 has no attention biases)");

  // tie_word_embeddings may sit at the top level (composite config) and in text_config; when both
  // are present they must agree, since which one wins differs between library versions.
  const bool has_top = c.layout == CheckpointLayout::ConditionalGeneration && top.has("tie_word_embeddings");
  const bool has_text = t.has("tie_word_embeddings");
  if (has_top && has_text) {
    const bool a = top.boolean_or("tie_word_embeddings", false);
    const bool b = t.boolean_or("tie_word_embeddings", false);
    DT_CHECK(a == b, where, ": tie_word_embeddings is ", a, " at the top level but ", b,
             " in text_config");
    c.tie_word_embeddings = a;
  } else if (has_top) {
    c.tie_word_embeddings = top.boolean_or("tie_word_embeddings", false);
  } else {
    c.tie_word_embeddings = t.boolean_or("tie_word_embeddings", false);
  }

  for (const Fields* f : {&t, &top}) {
    if (!f->has("eos_token_id") || !c.eos_token_ids.empty()) continue;
    const json& e = f->at("eos_token_id");
    if (e.is_number_integer()) c.eos_token_ids.push_back(e.get<int64_t>());
    else if (e.is_array())
      for (const json& v : e)
        if (v.is_number_integer()) c.eos_token_ids.push_back(v.get<int64_t>());
  }
  validate_model_config(c, where);
  return c;
}

void validate_model_config(const ModelConfig& c, const std::string& where) {
  DT_CHECK(int(c.layer_kinds.size()) == c.num_layers, where, ": ", c.layer_kinds.size(),
           " layer kinds for ", c.num_layers, " layers");
  DT_CHECK(c.num_heads % c.num_kv_heads == 0, where, ": num_attention_heads (", c.num_heads,
           ") must be a multiple of num_key_value_heads (", c.num_kv_heads, ")");
  DT_CHECK(c.linear_num_value_heads % c.linear_num_key_heads == 0, where,
           ": linear_num_value_heads (", c.linear_num_value_heads,
           ") must be a multiple of linear_num_key_heads (", c.linear_num_key_heads, ")");
  DT_CHECK(c.partial_rotary_factor > 0 && c.partial_rotary_factor <= 1, where,
           ": partial_rotary_factor must be in (0, 1], got ", c.partial_rotary_factor);
  DT_CHECK(c.rotary_dim() % 2 == 0 && c.rotary_dim() > 0, where, ": rotary dimension head_dim * ",
           "partial_rotary_factor = ", c.rotary_dim(), " must be even and positive");
  DT_CHECK(c.rope_theta > 0, where, ": rope_theta must be positive, got ", c.rope_theta);
  if (!c.mrope_section.empty()) {
    int sum = 0;
    for (int s : c.mrope_section) sum += s;
    DT_CHECK(sum == c.rotary_dim() / 2, where, ": mrope_section sums to ", sum,
             " but the rotary dimension has ", c.rotary_dim() / 2, " frequencies");
  }
  DT_CHECK(c.rms_norm_eps > 0, where, ": rms_norm_eps must be positive");
}

ModelConfig load_model_config(const std::string& path) {
  return parse_model_config(read_json_file(path), path);
}

json model_config_to_json(const ModelConfig& c) {
  json layer_types = json::array();
  for (LayerKind k : c.layer_kinds)
    layer_types.push_back(k == LayerKind::FullAttention ? "full_attention" : "linear_attention");
  json rope = {{"rope_type", "default"}, {"rope_theta", c.rope_theta},
               {"partial_rotary_factor", c.partial_rotary_factor}};
  if (!c.mrope_section.empty()) {
    rope["mrope_section"] = c.mrope_section;
    rope["mrope_interleaved"] = c.mrope_interleaved;
  }
  json text = {
      {"model_type", "qwen3_5_text"},
      {"vocab_size", c.vocab_size},
      {"hidden_size", c.hidden_size},
      {"intermediate_size", c.intermediate_size},
      {"num_hidden_layers", c.num_layers},
      {"num_attention_heads", c.num_heads},
      {"num_key_value_heads", c.num_kv_heads},
      {"head_dim", c.head_dim},
      {"hidden_act", "silu"},
      {"rms_norm_eps", c.rms_norm_eps},
      {"tie_word_embeddings", c.tie_word_embeddings},
      {"rope_parameters", rope},
      {"partial_rotary_factor", c.partial_rotary_factor},
      {"layer_types", layer_types},
      {"linear_conv_kernel_dim", c.linear_conv_kernel},
      {"linear_key_head_dim", c.linear_key_head_dim},
      {"linear_value_head_dim", c.linear_value_head_dim},
      {"linear_num_key_heads", c.linear_num_key_heads},
      {"linear_num_value_heads", c.linear_num_value_heads},
      {"attention_bias", false},
      {"attention_dropout", 0.0},
  };
  if (c.max_position_embeddings > 0) text["max_position_embeddings"] = c.max_position_embeddings;
  if (!c.eos_token_ids.empty())
    text["eos_token_id"] = c.eos_token_ids.size() == 1 ? json(c.eos_token_ids[0]) : json(c.eos_token_ids);
  if (c.layout == CheckpointLayout::CausalLM) {
    text["architectures"] = {"Qwen3_5ForCausalLM"};
    return text;
  }
  return json{{"model_type", "qwen3_5"},
              {"architectures", {"Qwen3_5ForConditionalGeneration"}},
              {"tie_word_embeddings", c.tie_word_embeddings},
              {"text_config", text}};
}

}  // namespace deltatune
