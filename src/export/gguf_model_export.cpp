// deltatune export-gguf: the metadata llama.cpp's converter writes for Qwen3.5, then every tensor
// of export/qwen35_gguf.h converted row block by row block (optionally with a LoRA adapter merged).
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "export/gguf_export.h"
#include "export/gguf_tokenizer.h"
#include "export/qwen35_gguf.h"
#include "io/gguf.h"
#include "io/json_file.h"

namespace deltatune {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// gguf-py LlamaFileType for the output types we write.
uint32_t file_type(GgmlType outtype) {
  switch (outtype) {
    case GgmlType::F32: return 0;   // ALL_F32
    case GgmlType::F16: return 1;   // MOSTLY_F16
    case GgmlType::Q8_0: return 7;  // MOSTLY_Q8_0
    case GgmlType::BF16: return 32; // MOSTLY_BF16
    default: fail("export-gguf writes f32, f16, bf16 or q8_0, not ", ggml_type_name(outtype));
  }
}

// The converter's view of config.json: text_config's keys over the top level's
// (conversion/base.py TextModel.__init__).
json merged_hparams(const json& config) {
  json h = config;
  if (config.contains("text_config") && config["text_config"].is_object())
    for (const auto& [k, v] : config["text_config"].items()) h[k] = v;
  return h;
}

// The keys conversion/base.py TextModel.set_gguf_parameters, conversion/qwen.py
// Qwen3NextModel.set_gguf_parameters and _Qwen35MRopeMixin write for a dense Qwen3.5, read back
// by src/models/qwen35.cpp load_arch_hparams and llama_model::load_hparams.
GgufMetadata model_metadata(const ModelConfig& c, const json& hparams, const std::string& name, GgmlType outtype) {
  const json rope = hparams.value("rope_parameters", hparams.value("rope_scaling", json::object()));
  const std::string rope_type = rope.is_object() ? rope.value("rope_type", rope.value("type", std::string())) : "";
  DT_CHECK(rope_type.empty() || rope_type == "default", "rope_type '", rope_type,
           "': the exporter writes no rope scaling (Qwen3.5 uses none)");
  const std::string a = std::string(kQwen35Arch) + ".";
  auto u32 = [](int64_t v) { return GgufValue::scalar<uint32_t>(uint32_t(v)); };
  GgufMetadata m = {
      {"general.architecture", GgufValue::string(kQwen35Arch)},
      {"general.type", GgufValue::string("model")},
      {"general.name", GgufValue::string(name)},
      {a + "block_count", u32(c.num_layers)},
  };
  if (c.max_position_embeddings > 0) m.push_back({a + "context_length", u32(c.max_position_embeddings)});
  m.push_back({a + "embedding_length", u32(c.hidden_size)});
  m.push_back({a + "feed_forward_length", u32(c.intermediate_size)});
  m.push_back({a + "attention.head_count", u32(c.num_heads)});
  m.push_back({a + "attention.head_count_kv", u32(c.num_kv_heads)});
  // mrope_section padded to 4 [time, height, width, extra]; llama.cpp requires the key, so
  // _Qwen35MRopeMixin writes Qwen's [11, 11, 10, 0] when the config has none.
  std::vector<int32_t> sections(c.mrope_section.begin(), c.mrope_section.end());
  if (sections.empty()) sections = {11, 11, 10};
  sections.resize(4, 0);
  m.push_back({a + "rope.dimension_sections", GgufValue::array(sections)});
  m.push_back({a + "rope.freq_base", GgufValue::scalar<float>(float(c.rope_theta))});
  m.push_back({a + "attention.layer_norm_rms_epsilon", GgufValue::scalar<float>(float(c.rms_norm_eps))});
  m.push_back({a + "attention.key_length", u32(c.head_dim)});
  m.push_back({a + "attention.value_length", u32(c.head_dim)});
  m.push_back({"general.file_type", u32(file_type(outtype))});
  m.push_back({a + "ssm.conv_kernel", u32(c.linear_conv_kernel)});
  m.push_back({a + "ssm.state_size", u32(c.linear_key_head_dim)});
  m.push_back({a + "ssm.group_count", u32(c.linear_num_key_heads)});
  m.push_back({a + "ssm.time_step_rank", u32(c.linear_num_value_heads)});
  m.push_back({a + "ssm.inner_size", u32(c.linear_value_dim())});
  if (hparams.contains("layer_types")) {
    std::vector<bool> recurrent;
    for (LayerKind k : c.layer_kinds) recurrent.push_back(k == LayerKind::LinearAttention);
    m.push_back({a + "attention.recurrent_layers", GgufValue::array(recurrent)});
  }
  m.push_back({a + "full_attention_interval", u32(hparams.value("full_attention_interval", 4))});
  m.push_back({a + "rope.dimension_count", u32(c.rotary_dim())});
  m.push_back({"general.quantization_version", u32(2)});  // gguf-py GGML_QUANT_VERSION
  return m;
}

GgmlType tensor_type(const GgufTensorSpec& s, GgmlType outtype) {
  if (s.always_f32) return GgmlType::F32;
  if (outtype == GgmlType::Q8_0 && s.row_length() % kQ8_0BlockSize != 0) return GgmlType::F16;
  return outtype;
}

// Output row `r` of a spec, in float64 before the final rounding: the source row (reordered),
// plus scaling · B[row] · A when an adapter module is merged, then columns reordered and the value
// transform applied.
class RowMaker {
 public:
  RowMaker(const GgufTensorSpec& spec, const LoraModule* lora, double scaling)
      : spec_(spec), scaling_(scaling), length_(spec.row_length()) {
    if (!lora) return;
    DT_CHECK(lora->in == length_ && lora->out == spec.rows(), spec.name, ": adapter module ", lora->name, " is [",
             lora->out, ", ", lora->in, "], the weight ", shape_str(spec.source.shape_vector()));
    rank_ = lora->A.dim(0);
    A_.resize(size_t(lora->A.numel()));
    B_.resize(size_t(lora->B.numel()));
    convert_to<double>(lora->A.view().data, lora->A.dtype(), A_.data(), A_.size());
    convert_to<double>(lora->B.view().data, lora->B.dtype(), B_.data(), B_.size());
  }

  void make(int64_t r, double* scratch, float* out) const {
    const int64_t src = spec_.row_order.empty() ? r : spec_.row_order[size_t(r)];
    convert_to<double>(static_cast<const std::byte*>(spec_.source.data) + dtype_bytes(spec_.source.dtype, src * length_),
                       spec_.source.dtype, scratch, size_t(length_));
    for (int64_t k = 0; k < rank_; ++k) {  // rank_ = 0 without an adapter
      const double b = scaling_ * B_[size_t(src * rank_ + k)];
      const double* a = A_.data() + k * length_;
      for (int64_t j = 0; j < length_; ++j) scratch[j] += b * a[j];
    }
    for (int64_t c = 0; c < length_; ++c) {
      double v = scratch[spec_.column_order.empty() ? c : spec_.column_order[size_t(c)]];
      if (spec_.transform == GgufValueTransform::PlusOne) v = double(float(v)) + 1.0;
      else if (spec_.transform == GgufValueTransform::NegExp) v = -std::exp(double(float(v)));
      out[c] = float(v);
    }
  }

 private:
  const GgufTensorSpec& spec_;
  double scaling_;
  int64_t length_;
  int64_t rank_ = 0;
  std::vector<double> A_, B_;  // the adapter module's factors, PEFT layout
};

void write_tensor(GgufWriter& writer, const GgufTensorSpec& spec, GgmlType type, const LoraModule* lora,
                  double scaling) {
  const RowMaker maker(spec, lora, scaling);
  const int64_t length = spec.row_length(), rows = spec.rows();
  const uint64_t row_bytes = ggml_row_bytes(type, length);
  // About 4 MB of output per block: bounded memory for any model size.
  const int64_t block_rows = std::max<int64_t>(1, int64_t((4u << 20) / std::max<uint64_t>(row_bytes, 1)));
  std::vector<uint8_t> bytes(size_t(std::min(block_rows, rows) * int64_t(row_bytes)));
  for (int64_t r0 = 0; r0 < rows; r0 += block_rows) {
    const int64_t r1 = std::min(rows, r0 + block_rows);
    // Threads only pay off on real matrices; tiny tensors would just wake the pool.
#pragma omp parallel if ((r1 - r0) * length >= (1 << 16))
    {
      std::vector<double> scratch(static_cast<size_t>(length));
      std::vector<float> row(static_cast<size_t>(length));
#pragma omp for schedule(static)
      for (int64_t r = r0; r < r1; ++r) {
        maker.make(r, scratch.data(), row.data());
        ggml_encode(row.data(), length, type, bytes.data() + size_t(r - r0) * row_bytes);
      }
    }
    writer.write_data(bytes.data(), size_t(r1 - r0) * row_bytes);
  }
}

// The converter's view of a GGUF base's settings: what model_metadata reads from config.json.
json hparams_of_gguf(const GgufFile& f) {
  json h = json::object();
  const std::string a = std::string(kQwen35Arch) + ".";
  if (f.find_key(a + "attention.recurrent_layers")) h["layer_types"] = true;  // only its presence matters
  if (const GgufValue* v = f.find_key(a + "full_attention_interval")) h["full_attention_interval"] = v->get_integer();
  return h;
}

}  // namespace

void export_gguf_model(const Model& model, const std::string& out_path, const GgufModelExport& options) {
  with_context("exporting " + model.source() + " to " + out_path, [&] {
    GgufMetadata metadata;
    if (const GgufFile* source = model.gguf()) {
      // A GGUF base: its settings are the model's config, its tokenizer keys are carried over as
      // they are.
      DT_CHECK(options.tokenizer_dir.empty(), "the tokenizer of a GGUF base is its own tokenizer.* keys; ",
               "a tokenizer folder cannot replace it");
      std::string name = options.name;
      if (name.empty()) {
        const GgufValue* n = source->find_key("general.name");
        name = n && n->type() == GgufType::STRING ? n->get_string() : fs::path(model.source()).stem().string();
      }
      metadata = model_metadata(model.config(), hparams_of_gguf(*source), name, options.outtype);
      for (const GgufKeyValue& kv : source->metadata())
        if (kv.key.rfind("tokenizer.", 0) == 0) metadata.push_back(kv);
    } else {
      const fs::path folder(model.source());
      DT_CHECK(fs::is_directory(folder), "the model must come from a checkpoint folder or a GGUF file");
      const std::string config_path = (folder / "config.json").string();
      const json hparams = merged_hparams(read_json_file(config_path));
      std::string name = options.name;
      if (name.empty()) name = fs::weakly_canonical(folder).filename().string();
      metadata = model_metadata(model.config(), hparams, name, options.outtype);
      add_gguf_tokenizer(options.tokenizer_dir.empty() ? folder.string() : options.tokenizer_dir, config_path,
                         model.config().vocab_size, metadata);
    }

    const std::vector<GgufTensorSpec> specs = qwen35_gguf_tensors(model.config(), model.weights());
    std::vector<GgufTensorPlan> plans;
    for (const GgufTensorSpec& s : specs) plans.push_back({s.name, tensor_type(s, options.outtype), s.ne});
    size_t merged = 0;
    GgufWriter writer(out_path, metadata, plans);
    for (size_t i = 0; i < specs.size(); ++i) {
      const LoraModule* lora = nullptr;
      if (options.adapter && specs[i].linear)
        lora = options.adapter->find(specs[i].linear->first, specs[i].linear->second);
      merged += lora != nullptr;
      const double scaling = options.adapter ? options.adapter->config().scaling() : 0.0;
      with_context(specs[i].name, [&] { write_tensor(writer, specs[i], plans[i].type, lora, scaling); });
    }
    if (options.adapter)
      DT_CHECK(merged == options.adapter->modules().size(), options.adapter->modules().size() - merged,
               " adapter modules have no weight in the model");
    writer.commit();
  });
}

}  // namespace deltatune
