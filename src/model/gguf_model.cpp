#include "model/gguf_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <set>

#include "export/qwen35_gguf.h"
#include "model/weights.h"

namespace deltatune {

namespace {

// Typed reads of the `qwen35.*` keys; every error names the file and the key.
class Hparams {
 public:
  Hparams(const GgufFile& f, std::string arch) : f_(f), prefix_(std::move(arch) + ".") {}

  const GgufValue* find(const std::string& key) const { return f_.find_key(prefix_ + key); }
  std::string name(const std::string& key) const { return prefix_ + key; }

  int64_t integer(const std::string& key) const {
    const GgufValue* v = find(key);
    DT_CHECK(v, "missing metadata key '", name(key), "'");
    return with_context(str_cat("metadata key '", name(key), "'"), [&] {
      DT_CHECK(!v->is_array() && v->type() != GgufType::BOOL && v->type() != GgufType::STRING &&
                   v->type() != GgufType::F32 && v->type() != GgufType::F64,
               "expected an integer, got ", v->describe());
      return v->get_integer();
    });
  }
  int64_t positive(const std::string& key) const {
    const int64_t v = integer(key);
    DT_CHECK(v > 0, "metadata key '", name(key), "' must be positive, got ", v);
    return v;
  }
  int64_t positive_or(const std::string& key, int64_t fallback) const { return find(key) ? positive(key) : fallback; }
  double number(const std::string& key) const {
    const GgufValue* v = find(key);
    DT_CHECK(v, "missing metadata key '", name(key), "'");
    if (v->type() == GgufType::F32) return double(v->get<float>());
    if (v->type() == GgufType::F64) return v->get<double>();
    return double(integer(key));
  }
  double number_or(const std::string& key, double fallback) const { return find(key) ? number(key) : fallback; }
  // An array of integers of any integer element type.
  std::vector<int64_t> integers(const std::string& key) const {
    const GgufValue* v = find(key);
    DT_CHECK(v, "missing metadata key '", name(key), "'");
    DT_CHECK(v->is_array(), "metadata key '", name(key), "' must be an array, got ", v->describe());
    std::vector<int64_t> out;
    switch (v->element_type()) {
      case GgufType::I32: for (int32_t x : v->get_array<int32_t>()) out.push_back(x); break;
      case GgufType::U32: for (uint32_t x : v->get_array<uint32_t>()) out.push_back(x); break;
      case GgufType::I64: for (int64_t x : v->get_array<int64_t>()) out.push_back(x); break;
      case GgufType::U64: for (uint64_t x : v->get_array<uint64_t>()) out.push_back(int64_t(x)); break;
      case GgufType::I16: for (int16_t x : v->get_array<int16_t>()) out.push_back(x); break;
      case GgufType::U16: for (uint16_t x : v->get_array<uint16_t>()) out.push_back(x); break;
      case GgufType::I8: for (int8_t x : v->get_array<int8_t>()) out.push_back(x); break;
      case GgufType::U8: for (uint8_t x : v->get_array<uint8_t>()) out.push_back(x); break;
      default: fail("metadata key '", name(key), "' must be an array of integers, got ", v->describe());
    }
    return out;
  }

 private:
  const GgufFile& f_;
  std::string prefix_;
};

// The GGUF tensor types a base may hold, as the dtypes the model computes from.
std::optional<DType> weight_dtype(GgmlType t) {
  switch (t) {
    case GgmlType::F32: return DType::F32;
    case GgmlType::F16: return DType::F16;
    case GgmlType::BF16: return DType::BF16;
    case GgmlType::Q8_0: return DType::Q8_0;
    default: return std::nullopt;
  }
}

// Copies of the tensors the loader rebuilds, kept with the model.
struct Rebuilt {
  std::vector<HostTensor> owned;
  Tensor keep(HostTensor t) {
    owned.push_back(std::move(t));
    return owned.back().view();
  }
};

// Does the column order move whole Q8_0 blocks (each run of 32 new columns taken from one
// aligned run of 32 old ones, in order)?
bool moves_whole_blocks(const std::vector<int64_t>& order) {
  for (size_t c = 0; c < order.size(); ++c) {
    const int64_t start = order[c - c % size_t(kQ8_0BlockValues)];
    if (start % kQ8_0BlockValues != 0 || order[c] != start + int64_t(c % size_t(kQ8_0BlockValues))) return false;
  }
  return true;
}

// The Hugging Face tensor of `spec` (shape `shape`) from the GGUF tensor `info`: the inverse of
//   out[r][c] = transform(source[row_order[r]][column_order[c]])  (export/qwen35_gguf.h).
Tensor rebuild(const GgufFile& f, const GgufTensorInfo& info, const GgufTensorSpec& spec,
               const std::vector<int64_t>& shape, Rebuilt& rebuilt) {
  const DType dtype = *weight_dtype(info.type);
  const auto* bytes = f.tensor_bytes(info).data();
  const int64_t rows = spec.rows(), cols = spec.row_length();
  const bool plain = spec.transform == GgufValueTransform::None;
  if (plain && spec.row_order.empty() && spec.column_order.empty()) {
    if (dtype != DType::Q8_0) {
      Tensor t = f.tensor(info);  // checks the alignment of in-place elements
      return Tensor::contiguous(t.data, dtype, shape);
    }
    return Tensor::contiguous(const_cast<std::byte*>(bytes), dtype, shape);  // read-only, never written
  }
  // Transformed 1-D values: through float64, stored as F32.
  if (!plain) {
    std::vector<float> g = f.tensor_to_float(info);
    HostTensor out(DType::F32, shape);
    float* hf = out.ptr<float>();
    for (int64_t c = 0; c < cols; ++c) {
      const int64_t to = spec.column_order.empty() ? c : spec.column_order[size_t(c)];
      const double v = double(g[size_t(c)]);
      if (spec.transform == GgufValueTransform::PlusOne) {
        hf[to] = float(v - 1.0);
      } else {
        DT_CHECK(v < 0 && std::isfinite(v), "element ", c, " is ", v, "; ssm_a holds A = -exp(A_log), which is negative");
        hf[to] = float(std::log(-v));
      }
    }
    return rebuilt.keep(std::move(out));
  }
  // Reordered: same type, rows (whole rows of blocks) or columns moved back.
  if (!spec.column_order.empty() && dtype == DType::Q8_0 && !moves_whole_blocks(spec.column_order)) {
    // Value heads narrower than a block: the reorder would cut blocks apart; dequantize (exact).
    std::vector<float> g = f.tensor_to_float(info);
    HostTensor out(DType::F32, shape);
    float* hf = out.ptr<float>();
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) hf[r * cols + spec.column_order[size_t(c)]] = g[size_t(r * cols + c)];
    return rebuilt.keep(std::move(out));
  }
  HostTensor out(dtype, shape);
  auto* hf = static_cast<std::byte*>(out.view().data);
  const size_t row_bytes = dtype_bytes(dtype, cols);
  const int64_t unit = dtype == DType::Q8_0 ? kQ8_0BlockValues : 1;  // columns moved as one piece
  const size_t unit_bytes = dtype_bytes(dtype, unit);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t to = spec.row_order.empty() ? r : spec.row_order[size_t(r)];
    const std::byte* src = bytes + size_t(r) * row_bytes;
    std::byte* dst = hf + size_t(to) * row_bytes;
    if (spec.column_order.empty()) {
      std::memcpy(dst, src, row_bytes);
      continue;
    }
    for (int64_t c = 0; c < cols; c += unit)
      std::memcpy(dst + size_t(spec.column_order[size_t(c)] / unit) * unit_bytes, src + size_t(c / unit) * unit_bytes,
                  unit_bytes);
  }
  return rebuilt.keep(std::move(out));
}

std::string layer_kind_name(LayerKind k) {
  return k == LayerKind::LinearAttention ? "linear attention (Gated DeltaNet)" : "full attention";
}

}  // namespace

ModelConfig qwen35_config_from_gguf(const GgufFile& f) {
  return with_context(f.path(), [&] {
    const GgufValue* arch_value = f.find_key("general.architecture");
    DT_CHECK(arch_value, "missing metadata key 'general.architecture'; not a llama.cpp model file");
    DT_CHECK(arch_value->type() == GgufType::STRING, "metadata key 'general.architecture' must be a string, got ",
             arch_value->describe());
    const std::string arch = arch_value->get_string();
    if (arch == "qwen35moe")
      fail("general.architecture is 'qwen35moe' (Qwen3.5 MoE): recognised but not supported yet; only dense ",
           "Qwen3.5 ('", kQwen35Arch, "') can be loaded");
    DT_CHECK(arch == kQwen35Arch, "general.architecture is '", arch, "'; deltatune loads Qwen3.5 models ('",
             kQwen35Arch, "')");
    if (const GgufValue* type = f.find_key("general.type"); type && type->type() == GgufType::STRING)
      DT_CHECK(type->get_string() == "model", "general.type is '", type->get_string(),
               "': this is not a model (a LoRA adapter GGUF cannot be a base)");
    const Hparams h(f, arch);
    ModelConfig c;
    c.model_type = "qwen3_5_text";
    c.layout = CheckpointLayout::CausalLM;
    const int64_t blocks = h.positive("block_count");
    const int64_t nextn = h.find("nextn_predict_layers") ? h.integer("nextn_predict_layers") : 0;
    DT_CHECK(nextn >= 0 && nextn < blocks, "metadata key '", h.name("nextn_predict_layers"), "' is ", nextn,
             " with ", blocks, " blocks");
    c.num_layers = int(blocks - nextn);  // the multi-token-prediction blocks come last and are not loaded
    c.hidden_size = h.positive("embedding_length");
    c.intermediate_size = h.positive("feed_forward_length");
    c.num_heads = int(h.positive("attention.head_count"));
    c.num_kv_heads = int(h.positive("attention.head_count_kv"));
    c.head_dim = int(h.positive_or("attention.key_length", c.hidden_size / c.num_heads));
    const int64_t value_length = h.positive_or("attention.value_length", c.head_dim);
    DT_CHECK(value_length == c.head_dim, "metadata keys '", h.name("attention.key_length"), "' (", c.head_dim,
             ") and '", h.name("attention.value_length"), "' (", value_length, ") differ; Qwen3.5 has one head_dim");
    c.rms_norm_eps = h.number("attention.layer_norm_rms_epsilon");
    c.rope_theta = h.number_or("rope.freq_base", 10000.0);
    if (const GgufValue* scaling = h.find("rope.scaling.type"))
      DT_CHECK(scaling->type() == GgufType::STRING && scaling->get_string() == "none", "metadata key '",
               h.name("rope.scaling.type"), "' is ", scaling->describe(), ": rope scaling is not supported");
    // llama.cpp's n_rot defaults to the head dim; Qwen3.5's converter writes head_dim · 0.25.
    const int64_t rotary = h.positive_or("rope.dimension_count", c.head_dim);
    DT_CHECK(rotary <= c.head_dim, "metadata key '", h.name("rope.dimension_count"), "' is ", rotary,
             ", more than the head dim ", c.head_dim);
    c.partial_rotary_factor = double(rotary) / double(c.head_dim);
    // Text tokens use one position on every mRoPE axis, so the sections change nothing here; they
    // are kept when they describe this rotary size (the converter writes Qwen's default otherwise).
    if (h.find("rope.dimension_sections")) {
      std::vector<int64_t> sections = h.integers("rope.dimension_sections");
      while (!sections.empty() && sections.back() == 0) sections.pop_back();
      int64_t sum = 0;
      for (int64_t s : sections) sum += s;
      if (sum == rotary / 2)
        for (int64_t s : sections) c.mrope_section.push_back(int(s));
    }
    c.mrope_interleaved = true;  // llama.cpp runs qwen35 with LLAMA_ROPE_TYPE_IMROPE
    c.linear_conv_kernel = int(h.positive("ssm.conv_kernel"));
    const int64_t state = h.positive("ssm.state_size");
    c.linear_key_head_dim = c.linear_value_head_dim = int(state);  // llama.cpp: head_v_dim = ssm_d_state
    c.linear_num_key_heads = int(h.positive("ssm.group_count"));
    c.linear_num_value_heads = int(h.positive("ssm.time_step_rank"));
    const int64_t inner = h.positive("ssm.inner_size");
    DT_CHECK(inner == int64_t(c.linear_num_value_heads) * state, "metadata key '", h.name("ssm.inner_size"), "' is ",
             inner, ", but ssm.time_step_rank × ssm.state_size = ", c.linear_num_value_heads, " × ", state);
    if (h.find("attention.recurrent_layers")) {
      const GgufValue& v = *h.find("attention.recurrent_layers");
      DT_CHECK(v.is_array() && v.element_type() == GgufType::BOOL, "metadata key '",
               h.name("attention.recurrent_layers"), "' must be an array of bool, got ", v.describe());
      const std::vector<bool> recurrent = v.get_array<bool>();
      DT_CHECK(int64_t(recurrent.size()) >= c.num_layers, "metadata key '", h.name("attention.recurrent_layers"),
               "' has ", recurrent.size(), " entries for ", c.num_layers, " layers");
      for (int i = 0; i < c.num_layers; ++i)
        c.layer_kinds.push_back(recurrent[size_t(i)] ? LayerKind::LinearAttention : LayerKind::FullAttention);
    } else {
      // llama.cpp: layer i is recurrent iff (i + 1) % full_attention_interval != 0.
      const int64_t interval = h.positive_or("full_attention_interval", 4);
      for (int i = 0; i < c.num_layers; ++i)
        c.layer_kinds.push_back((i + 1) % interval == 0 ? LayerKind::FullAttention : LayerKind::LinearAttention);
    }
    c.max_position_embeddings = h.find("context_length") ? h.positive("context_length") : 0;
    const GgufTensorInfo* embd = f.find_tensor("token_embd.weight");
    DT_CHECK(embd, "missing tensor 'token_embd.weight'");
    DT_CHECK(embd->ne.size() == 2 && embd->ne[0] == c.hidden_size, "tensor 'token_embd.weight' has ne ",
             shape_str(embd->ne), ", expected {", c.hidden_size, ", vocab}");
    c.vocab_size = embd->ne[1];
    c.tie_word_embeddings = f.find_tensor("output.weight") == nullptr;
    for (const char* key : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"})
      if (const GgufValue* v = f.find_key(key); v && !v->is_array() && v->type() != GgufType::STRING &&
                                               v->type() != GgufType::F32 && v->type() != GgufType::F64 &&
                                               v->type() != GgufType::BOOL) {
        const int64_t id = v->get_integer();
        if (std::find(c.eos_token_ids.begin(), c.eos_token_ids.end(), id) == c.eos_token_ids.end())
          c.eos_token_ids.push_back(id);
      }
    validate_model_config(c, "its metadata");
    return c;
  });
}

GgmlType gguf_model_matrix_type(const GgufFile& f) {
  if (const GgufValue* v = f.find_key("general.file_type"); v && !v->is_array() && v->type() != GgufType::STRING) {
    switch (v->get_integer()) {  // gguf-py LlamaFileType
      case 0: return GgmlType::F32;
      case 1: return GgmlType::F16;
      case 7: return GgmlType::Q8_0;
      case 32: return GgmlType::BF16;
      default: break;
    }
  }
  const GgufTensorInfo* t = f.find_tensor("blk.0.ffn_up.weight");
  return t && weight_dtype(t->type) ? t->type : GgmlType::F32;
}

Model Model::load_gguf(const std::string& path) {
  return with_context("loading model " + path, [&] {
    auto file = std::make_shared<const GgufFile>(path);
    const GgufFile& f = *file;
    Model m;
    m.source_ = path;
    m.gguf_ = file;
    m.config_ = qwen35_config_from_gguf(f);
    const ModelConfig& c = m.config_;
    // The layout table needs only shapes: give every Hugging Face slot an empty tensor of its shape.
    std::map<std::string, std::pair<Tensor*, std::vector<int64_t>>> slots;
    for (const WeightSlot& slot : weight_table(c, m.weights_)) {
      *slot.tensor = Tensor::contiguous(nullptr, DType::F32, slot.shape);
      slots[slot.name] = {slot.tensor, slot.shape};
    }
    if (c.tie_word_embeddings) m.weights_.lm_head = m.weights_.embed_tokens;
    Rebuilt rebuilt;
    std::set<std::string> used;
    for (const GgufTensorSpec& spec : qwen35_gguf_tensors(c, m.weights_)) {
      const GgufTensorInfo* info = f.find_tensor(spec.name);
      if (!info) {
        const size_t dot = spec.name.find('.', 4);
        const int layer = spec.name.rfind("blk.", 0) == 0 ? std::stoi(spec.name.substr(4, dot - 4)) : -1;
        if (layer >= 0 && c.layer_kinds[size_t(layer)] == LayerKind::FullAttention &&
            f.find_tensor(str_cat("blk.", layer, ".attn_qkv.weight")))
          fail(path, ": block ", layer, " (full attention) holds a fused 'blk.", layer,
               ".attn_qkv.weight' (converted with --fuse-qkv), which deltatune does not read; convert without it");
        fail(path, ": missing tensor '", spec.name, "'",
             layer >= 0 ? str_cat(" (block ", layer, " is ", layer_kind_name(c.layer_kinds[size_t(layer)]),
                                  " by the file's metadata)")
                        : std::string());
      }
      used.insert(spec.name);
      const auto& [tensor, shape] = slots.at(spec.hf_name);
      *tensor = with_context(str_cat(path, ": tensor '", spec.name, "'"), [&] {
        DT_CHECK(info->ne == spec.ne, "has ne ", shape_str(info->ne), ", the metadata implies ", shape_str(spec.ne));
        DT_CHECK(weight_dtype(info->type).has_value(), "has type ", ggml_type_name(info->type),
                 "; deltatune reads f32, f16, bf16 and q8_0 tensors (llama-quantize --type q8_0, or convert ",
                 "with --outtype f16/bf16/q8_0)");
        return rebuild(f, *info, spec, shape, rebuilt);
      });
    }
    if (c.tie_word_embeddings) m.weights_.lm_head = m.weights_.embed_tokens;
    for (const GgufTensorInfo& t : f.tensors()) {
      if (used.count(t.name)) continue;
      // Blocks past num_layers are the multi-token-prediction head (nextn_predict_layers): unused.
      if (t.name.rfind("blk.", 0) == 0) {
        const size_t dot = t.name.find('.', 4);
        if (dot != std::string::npos && t.name.find_first_not_of("0123456789", 4) == dot && dot > 4 &&
            std::stoll(t.name.substr(4, dot - 4)) >= c.num_layers)
          continue;
      }
      fail(path, ": unexpected tensor '", t.name, "': not part of a ", kQwen35Arch, " model with this metadata (",
           c.num_layers, " blocks; layer kinds from attention.recurrent_layers or full_attention_interval)");
    }
    m.owned_ = std::move(rebuilt.owned);
    return m;
  });
}

}  // namespace deltatune
