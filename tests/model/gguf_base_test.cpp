// A GGUF as the base model (model/gguf_model.h): the fixture checkpoints written by transformers
// (value heads = key heads and = 2 × key heads, both layouts) exported by export-gguf, loaded
// back, and compared with the checkpoint itself.
//
// Tolerances, relative to the largest |logit| or gradient element:
// - weights: every tensor the converter leaves alone or only reorders comes back bit for bit from
//   an f32 GGUF. The zero-centred norms (stored w + 1) and A_log (stored -exp(A_log)) cannot: the
//   export rounded w + 1 and -exp(A_log) to float32, so w and A_log are back to within that
//   rounding (2^-24 of 1 + w, plus their own float32 step), and the stored values themselves are
//   reproduced exactly (norms) or to 2 float32 steps (-exp of the rounded log).
// - logits and loss in float64: those 1-D values moved by ~1e-7 relative and rms_norm_eps is
//   float32 in the file, so the GGUF base differs from the checkpoint by the float32 rounding of
//   those few values: 1e-6 (measured 4e-8 to 5e-7). LoRA gradients, per factor, move more (see
//   kGradientRounding); a checkpoint of the loaded values themselves matches to 1e-12.
// - f16, bf16, q8_0 (and f32) GGUFs: compared with the checkpoint rounded the same way (each row
//   in the GGUF's order through ggml's encoding, so q8_0 blocks hold the same values; norms, A_log
//   and rms_norm_eps through float32 in the file's form), written as an f32 checkpoint: equal in
//   float64 up to the float64 rounding of log(exp(.)) and 1 + (w - 1): 1e-12.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/arena.h"
#include "core/rng.h"
#include "export/gguf_export.h"
#include "export/gguf_tokenizer.h"
#include "export/qwen35_gguf.h"
#include "io/gguf.h"
#include "io/json_file.h"
#include "io/safetensors.h"
#include "io/test_files.h"
#include "lora/adapter.h"
#include "model/presets.h"
#include "model/qwen35.h"
#include "ops/matmul.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"
#include "test_util.h"

namespace deltatune {
namespace {

namespace fs = std::filesystem;
using test::ScratchDir;
using testing_util::describe;
using testing_util::fixture_path;
using testing_util::relative_error;
using testing_util::report;

constexpr double kFloat32Rounding = 1e-6;   // float64 compute, GGUF base vs checkpoint
// LoRA gradients, per factor: this random fixture's attention factors amplify the ~1e-7 changes
// (measured up to 1.8e-5; EqualsItsOwnWeightsAsACheckpoint shows nothing else differs).
constexpr double kGradientRounding = 1e-4;
constexpr double kRoundedAlike = 1e-12;     // float64 compute, GGUF base vs checkpoint rounded alike
constexpr double kFloat32Forward = 1e-4;    // float32 compute vs transformers' float64 (fixture_test.cpp)

const fs::path kSource = fs::path(DELTATUNE_FIXTURES).parent_path().parent_path();

std::string make_tokenizer(const ScratchDir& dir) {
  const std::string out = dir.file("tokenizer");
  EXPECT_EQ(std::system(("python3 " + (kSource / "scripts/make_tiny_tokenizer.py").string() + " " + out).c_str()), 0);
  return out;
}

std::string export_gguf(const Model& model, const ScratchDir& dir, const std::string& tokenizer, GgmlType type,
                        const std::string& name) {
  GgufModelExport options;
  options.outtype = type;
  options.tokenizer_dir = tokenizer;
  const std::string path = dir.file(name);
  export_gguf_model(model, path, options);
  return path;
}

std::vector<double> values(const Tensor& t) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  tensor_to(t, v.data());
  return v;
}

std::vector<int64_t> ints(const SafetensorsFile& f, const std::string& name) {
  const Tensor t = f.tensor(name);
  const int64_t* p = static_cast<const int64_t*>(t.data);
  return {p, p + t.numel()};
}

template <class T>
std::vector<T> logits_of(const Model& model, const Batch& batch, const LoraRun& lora = {}) {
  std::vector<T> out(static_cast<size_t>(batch.tokens() * model.config().vocab_size));
  Arena arena;
  model_forward_logits(model, lora, batch, out.data(), arena);
  return out;
}

Batch reference_pack(const std::string& variant) {
  const SafetensorsFile ref(fixture_path(variant) + "/reference.safetensors");
  return make_batch(ints(ref, "pack.input_ids"), ints(ref, "pack.cu_seqlens"));
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

const char* const kVariants[] = {"causal_tied_f32", "causal_v2x_untied_bf16", "cond_tied_bf16",
                                 "cond_v2x_untied_f32_sharded"};

TEST(GgufBase, F32RoundTripGivesTheCheckpointsWeights) {
  ScratchDir dir;
  const std::string tokenizer = make_tokenizer(dir);
  for (const char* variant : kVariants) {
    SCOPED_TRACE(variant);
    const Model hf = Model::load(fixture_path(variant));
    const std::string path = export_gguf(hf, dir, tokenizer, GgmlType::F32, std::string(variant) + ".gguf");
    const Model gguf = Model::load(path);
    EXPECT_EQ(gguf.config().num_layers, hf.config().num_layers);
    EXPECT_EQ(gguf.config().layer_kinds, hf.config().layer_kinds);
    EXPECT_EQ(gguf.config().tie_word_embeddings, hf.config().tie_word_embeddings);
    EXPECT_EQ(gguf.config().linear_num_value_heads, hf.config().linear_num_value_heads);
    EXPECT_EQ(gguf.config().rotary_dim(), hf.config().rotary_dim());
    EXPECT_EQ(gguf.config().mrope_section, hf.config().mrope_section);
    const auto a = hf.named_tensors(), b = gguf.named_tensors();
    ASSERT_EQ(a.size(), b.size());
    double norm_error = 0, a_log_error = 0;
    size_t exact = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      const std::string& name = b[i].first;
      ASSERT_TRUE(ends_with(a[i].first, name.substr(std::string("model.").size())) || a[i].first == name) << name;
      ASSERT_EQ(a[i].second.shape_vector(), b[i].second.shape_vector()) << name;
      const std::vector<double> want = values(a[i].second), got = values(b[i].second);
      const bool zero_centred = ends_with(name, "layernorm.weight") || ends_with(name, "q_norm.weight") ||
                                ends_with(name, "k_norm.weight") || name == "model.norm.weight";
      for (size_t k = 0; k < want.size(); ++k) {
        if (zero_centred) {
          // The file holds float(w + 1); the model computes with 1 + w: that value comes back exactly.
          ASSERT_EQ(float(got[k] + 1.0), float(want[k] + 1.0)) << name << "[" << k << "]";
          norm_error = std::max(norm_error, std::fabs(got[k] - want[k]));
        } else if (ends_with(name, "A_log")) {
          const float stored = float(-std::exp(want[k]));
          ASSERT_LE(std::fabs(float(-std::exp(got[k])) - stored), 2 * std::fabs(stored) * 0x1p-23) << name;
          a_log_error = std::max(a_log_error, std::fabs(got[k] - want[k]));
        } else {
          ASSERT_EQ(got[k], want[k]) << name << "[" << k << "]";
        }
      }
      exact += !zero_centred && !ends_with(name, "A_log");
    }
    report(str_cat(variant, " norms |w - w_checkpoint| max"), norm_error);
    report(str_cat(variant, " A_log |a - a_checkpoint| max"), a_log_error);
    EXPECT_LE(norm_error, 0x1p-23);
    EXPECT_LE(a_log_error, 4e-7);
    EXPECT_GT(exact, a.size() / 2);
  }
}

TEST(GgufBase, F32LogitsEqualTheCheckpoints) {
  ScratchDir dir;
  const std::string tokenizer = make_tokenizer(dir);
  for (const char* variant : kVariants) {
    SCOPED_TRACE(variant);
    const Model hf = Model::load(fixture_path(variant));
    const Model gguf = Model::load(export_gguf(hf, dir, tokenizer, GgmlType::F32, "m.gguf"));
    const Batch batch = reference_pack(variant);
    const auto e64 = relative_error(logits_of<double>(gguf, batch).data(), logits_of<double>(hf, batch).data(),
                                    size_t(batch.tokens() * hf.config().vocab_size));
    report(str_cat(variant, " f32 GGUF vs checkpoint, float64 logits"), e64.value);
    EXPECT_LE(e64.value, kFloat32Rounding) << describe(e64);
    const SafetensorsFile ref(fixture_path(variant) + "/reference.safetensors");
    const std::vector<float> f32 = logits_of<float>(gguf, batch);
    const auto e32 = relative_error(f32.data(), static_cast<const double*>(ref.tensor("pack.logits").data), f32.size());
    report(str_cat(variant, " f32 GGUF float32 logits vs transformers"), e32.value);
    EXPECT_LE(e32.value, kFloat32Forward) << describe(e32);
  }
}

// The checkpoint rounded as export-gguf rounds it into `type`, written as an f32 checkpoint: each
// GGUF row, taken from the checkpoint in the GGUF's order (out[r][c] =
// source[row_order[r]][column_order[c]]), through ggml's encoding and back; the norms (w + 1) and
// A_log (-exp) through float32 in the file's form; rms_norm_eps as float32.
std::string write_rounded_checkpoint(const Model& hf, GgmlType type, const std::string& folder) {
  std::vector<HostTensor> keep;
  std::vector<NamedTensor> tensors;
  for (const GgufTensorSpec& spec : qwen35_gguf_tensors(hf.config(), hf.weights())) {
    const std::vector<double> src = values(spec.source);
    HostTensor out(DType::F32, spec.source.shape_vector());
    float* dst = out.ptr<float>();
    const int64_t rows = spec.rows(), cols = spec.row_length();
    GgmlType t = spec.always_f32 ? GgmlType::F32 : type;
    if (t == GgmlType::Q8_0 && cols % 32 != 0) t = GgmlType::F16;
    std::vector<float> row(static_cast<size_t>(cols)), back(row.size());
    std::vector<uint8_t> encoded(size_t(ggml_row_bytes(t, cols)));
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t from = spec.row_order.empty() ? r : spec.row_order[size_t(r)];
      auto col = [&](int64_t c) { return spec.column_order.empty() ? c : spec.column_order[size_t(c)]; };
      for (int64_t c = 0; c < cols; ++c) row[size_t(c)] = float(src[size_t(from * cols + col(c))]);
      ggml_encode(row.data(), cols, t, encoded.data());
      ggml_decode(encoded.data(), cols, t, back.data());
      for (int64_t c = 0; c < cols; ++c) {
        // The 1-D values the file stores transformed, rounded there as float32 too.
        double v = back[size_t(c)];
        if (spec.transform == GgufValueTransform::PlusOne) v = double(float(v + 1.0)) - 1.0;
        if (spec.transform == GgufValueTransform::NegExp) v = std::log(double(float(std::exp(v))));
        dst[from * cols + col(c)] = float(v);
      }
    }
    tensors.push_back({spec.hf_name, out.view()});
    keep.push_back(std::move(out));
  }
  fs::create_directories(folder);
  write_safetensors(folder + "/model.safetensors", tensors);
  ModelConfig config = hf.config();
  config.rms_norm_eps = double(float(config.rms_norm_eps));  // GGUF keeps it as float32
  write_json_file_atomic(folder + "/config.json", model_config_to_json(config));
  return folder;
}

TEST(GgufBase, RoundedTypesGiveTheRoundedCheckpointsLogits) {
  ScratchDir dir;
  const std::string tokenizer = make_tokenizer(dir);
  // Besides the fixtures (value heads of 16: a q8_0 column reorder would cut blocks, so ssm_out is
  // dequantized), a random model with value heads of 32, whose q8_0 blocks move whole.
  ModelConfig wide = preset_config("tiny");
  wide.linear_key_head_dim = wide.linear_value_head_dim = 32;
  Model::random(wide, DType::F32, 5).save(dir.file("wide_v2x"));
  for (const std::string variant : {"causal_tied_f32", "cond_v2x_untied_f32_sharded", "wide_v2x"}) {
    const bool fixture = variant != "wide_v2x";
    const Model hf = Model::load(fixture ? fixture_path(variant) : dir.file(variant));
    Rng rng(3);
    std::vector<int64_t> ids(19);
    for (int64_t& id : ids) id = int64_t(rng.next_u64() % 256);
    const Batch batch = fixture ? reference_pack(variant) : make_batch(ids, {0, 7, 19});
    const std::vector<double> exact = logits_of<double>(hf, batch);
    for (GgmlType type : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0}) {
      const std::string what = str_cat(variant, " ", ggml_type_name(type));
      SCOPED_TRACE(what);
      const Model gguf = Model::load(export_gguf(hf, dir, tokenizer, type, what + ".gguf"));
      if (type == GgmlType::Q8_0) {
        // The fixtures' rows of 48 are no whole blocks (export-gguf writes those f16).
        const LinearAttentionWeights& l0 = gguf.weights().layers[0].linear;
        if (!fixture) {
          EXPECT_EQ(l0.in_proj_qkv.dtype, DType::Q8_0);  // rows moved, blocks kept
        }
        EXPECT_EQ(l0.out_proj.dtype, variant == "cond_v2x_untied_f32_sharded" ? DType::F32 : DType::Q8_0);
      }
      const Model rounded = Model::load(write_rounded_checkpoint(hf, type, dir.file(what)));
      const std::vector<double> got = logits_of<double>(gguf, batch);
      const auto e = relative_error(got.data(), logits_of<double>(rounded, batch).data(), got.size());
      report(what + " GGUF vs checkpoint rounded alike, float64 logits", e.value);
      EXPECT_LE(e.value, kRoundedAlike) << describe(e);
      report(what + " GGUF vs exact checkpoint (the format's rounding)", relative_error(got.data(), exact.data(), got.size()).value);
      // The float32 path through the quantized weights (panels for many rows, row dots for few).
      const std::vector<float> f32 = logits_of<float>(gguf, batch);
      const auto e32 = relative_error(f32.data(), got.data(), got.size());
      report(what + " float32 vs float64 on the GGUF", e32.value);
      EXPECT_LE(e32.value, kFloat32Forward) << describe(e32);
    }
  }
}

TEST(GgufBase, LoraGradientsEqualTheCheckpoints) {
  ScratchDir dir;
  const std::string tokenizer = make_tokenizer(dir);
  for (const char* variant : {"causal_tied_f32", "cond_v2x_untied_f32_sharded"}) {
    SCOPED_TRACE(variant);
    const std::string folder = fixture_path(variant);
    const Model hf = Model::load(folder);
    const Model gguf = Model::load(export_gguf(hf, dir, tokenizer, GgmlType::F32, "m.gguf"));
    const SafetensorsFile ref(folder + "/grad_reference.safetensors");
    const Batch batch = make_batch(ints(ref, "input_ids"), ints(ref, "cu_seqlens"), ints(ref, "labels"));
    // The ConditionalGeneration adapter names model.language_model.layers.N: it applies to the
    // GGUF base (model.layers.N) all the same.
    LoraAdapter on_hf = LoraAdapter::load_peft(folder + "/adapter", hf.config(), DType::F64);
    LoraAdapter on_gguf = LoraAdapter::load_peft(folder + "/adapter", gguf.config(), DType::F64);
    ASSERT_EQ(on_hf.modules().size(), on_gguf.modules().size());
    double worst = 0;
    LossSum losses[2];
    int i = 0;
    for (auto [model, adapter] : {std::pair{&hf, &on_hf}, std::pair{&gguf, &on_gguf}}) {
      LoraRun lora;
      lora.adapter = adapter;
      adapter->zero_grad();
      Arena arena;
      losses[i++] = model_loss_backward<double>(*model, lora, batch, 1.0, true, arena);
    }
    const double loss_error = std::fabs(losses[1].sum - losses[0].sum) / std::fabs(losses[0].sum);
    report(str_cat(variant, " loss, f32 GGUF vs checkpoint"), loss_error);
    EXPECT_LE(loss_error, kFloat32Rounding);
    for (size_t m = 0; m < on_hf.modules().size(); ++m) {
      const LoraModule &a = on_hf.modules()[m], &b = on_gguf.modules()[m];
      ASSERT_EQ(a.layer, b.layer);
      ASSERT_EQ(a.kind, b.kind);
      for (auto [x, y] : {std::pair{&a.dA, &b.dA}, std::pair{&a.dB, &b.dB}}) {
        const auto e = relative_error(y->ptr<double>(), x->ptr<double>(), size_t(x->numel()));
        worst = std::max(worst, e.value);
        EXPECT_LE(e.value, kGradientRounding) << a.name << ": " << describe(e);
      }
    }
    report(str_cat(variant, " LoRA gradients, f32 GGUF vs checkpoint (worst factor)"), worst);
  }
}

TEST(GgufBase, ReexportIsTheSameFile) {
  // HF -> GGUF -> base -> GGUF: the same metadata and tensors; every tensor bit for bit, except
  // the transformed 1-D ones, within a float32 step.
  ScratchDir dir;
  const std::string tokenizer = make_tokenizer(dir);
  for (GgmlType type : {GgmlType::F32, GgmlType::Q8_0}) {
    const std::string first = export_gguf(Model::load(fixture_path("cond_v2x_untied_f32_sharded")), dir, tokenizer,
                                          type, "first.gguf");
    GgufModelExport options;
    options.outtype = type;
    options.name = "cond_v2x_untied_f32_sharded";
    export_gguf_model(Model::load(first), dir.file("second.gguf"), options);
    const GgufFile a(first), b(dir.file("second.gguf"));
    ASSERT_EQ(a.metadata().size(), b.metadata().size());
    for (size_t i = 0; i < a.metadata().size(); ++i) {
      EXPECT_EQ(a.metadata()[i].key, b.metadata()[i].key);
      EXPECT_TRUE(a.metadata()[i].value == b.metadata()[i].value) << a.metadata()[i].key;
    }
    ASSERT_EQ(a.tensors().size(), b.tensors().size());
    for (size_t i = 0; i < a.tensors().size(); ++i) {
      const GgufTensorInfo &x = a.tensors()[i], &y = b.tensors()[i];
      ASSERT_EQ(x.name, y.name);
      ASSERT_EQ(x.type, y.type) << x.name;
      ASSERT_EQ(x.ne, y.ne) << x.name;
      const auto bx = a.tensor_bytes(x), by = b.tensor_bytes(y);
      if (ends_with(x.name, "norm.weight") || ends_with(x.name, "ssm_a")) {
        const std::vector<float> fx = a.tensor_to_float(x), fy = b.tensor_to_float(y);
        for (size_t k = 0; k < fx.size(); ++k)
          EXPECT_LE(std::fabs(fx[k] - fy[k]), 2 * std::fabs(fx[k]) * 0x1p-23) << x.name << "[" << k << "]";
      } else {
        EXPECT_TRUE(std::equal(bx.begin(), bx.end(), by.begin(), by.end())) << x.name << " " << ggml_type_name(type);
      }
    }
  }
}

TEST(GgufBase, EmbeddedTokenizerAndChatTemplate) {
  // The real Qwen3 tokenizer (scripts/fetch-tokenizer.sh) through GGUF's tokenizer keys and back:
  // the same ids on the multilingual corpus, the same chat template and special tokens.
  ScratchDir dir;
  const fs::path folder = fs::path(DELTATUNE_QWEN3_TOKENIZER).parent_path();
  ASSERT_TRUE(fs::exists(DELTATUNE_QWEN3_TOKENIZER)) << "run scripts/fetch-tokenizer.sh";
  const Tokenizer from_json = Tokenizer::load(folder.string());
  test::write_bytes(dir.file("config.json"), "{}");
  GgufMetadata metadata = {{"general.architecture", GgufValue::string("qwen35")}};
  add_gguf_tokenizer(folder.string(), dir.file("config.json"), from_json.vocab_size(), metadata);
  write_gguf(dir.file("tokenizer.gguf"), metadata, {});
  const Tokenizer from_gguf = Tokenizer::load(dir.file("tokenizer.gguf"));
  EXPECT_EQ(from_gguf.vocab_size(), from_json.vocab_size());
  std::ifstream corpus(fixture_path("tokenizer/corpus.jsonl"));
  std::string line;
  size_t lines = 0;
  while (std::getline(corpus, line)) {
    const std::string text = nlohmann::json::parse(line).get<std::string>();
    ASSERT_EQ(from_gguf.encode(text), from_json.encode(text)) << text;
    ++lines;
  }
  EXPECT_GT(lines, 200u);
  const std::string text = "<|im_start|>user\nhi <think>x</think><|im_end|>";
  EXPECT_EQ(from_gguf.encode(text), from_json.encode(text));
  EXPECT_EQ(from_gguf.decode(from_gguf.encode(text)), text);

  const nlohmann::json conversation = {{"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"add_generation_prompt", true}};
  EXPECT_EQ(ChatTemplate::from_tokenizer_dir(dir.file("tokenizer.gguf")).render(conversation),
            ChatTemplate::from_tokenizer_dir(folder.string()).render(conversation));
  EXPECT_EQ(ChatTemplate::special_tokens_in(dir.file("tokenizer.gguf"))["eos_token"],
            ChatTemplate::special_tokens_in(folder.string())["eos_token"]);
}

TEST(GgufBase, EqualsItsOwnWeightsAsACheckpoint) {
  // The GGUF base against a checkpoint of the very values it loaded (Model::save): float64 logits
  // and LoRA gradients the same to float64 rounding, so every difference from the original
  // checkpoint above comes from the float32 rounding of the norms, A_log and rms_norm_eps in the
  // file (gradients of this random fixture amplify those ~1e-7 changes up to ~2e-5).
  ScratchDir dir;
  const std::string tokenizer = make_tokenizer(dir);
  const std::string folder = fixture_path("cond_v2x_untied_f32_sharded");
  const Model gguf = Model::load(export_gguf(Model::load(folder), dir, tokenizer, GgmlType::F32, "m.gguf"));
  gguf.save(dir.file("saved"));
  const Model saved = Model::load(dir.file("saved"));
  const SafetensorsFile ref(folder + "/grad_reference.safetensors");
  const Batch batch = make_batch(ints(ref, "input_ids"), ints(ref, "cu_seqlens"), ints(ref, "labels"));
  std::vector<LoraAdapter> adapters;
  for (const Model* m : {&gguf, &saved}) adapters.push_back(LoraAdapter::load_peft(folder + "/adapter", m->config(), DType::F64));
  for (size_t i = 0; i < 2; ++i) {
    LoraRun lora;
    lora.adapter = &adapters[i];
    Arena arena;
    model_loss_backward<double>(i == 0 ? gguf : saved, lora, batch, 1.0, true, arena);
  }
  double worst = 0;
  for (size_t m = 0; m < adapters[0].modules().size(); ++m)
    for (auto f : {&LoraModule::dA, &LoraModule::dB}) {
      const HostTensor &a = adapters[0].modules()[m].*f, &b = adapters[1].modules()[m].*f;
      worst = std::max(worst, relative_error(a.ptr<double>(), b.ptr<double>(), size_t(a.numel())).value);
    }
  report("LoRA gradients, f32 GGUF base vs its own weights saved as a checkpoint", worst);
  EXPECT_LE(worst, 1e-12);
}

}  // namespace
}  // namespace deltatune
