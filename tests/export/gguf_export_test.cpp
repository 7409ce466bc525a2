// The GGUF files deltatune exports, read back with our GGUF reader (llama.cpp itself loads them in
// tests/llamacpp): llama.cpp's names and shapes, the converter's transforms value by value (the
// value-head reorder on in_proj_qkv's V rows, in_proj_z/a/b rows, conv1d V channels, A_log and
// dt_bias, out_proj columns; -exp(A_log); +1 on zero-centred norms only), the metadata and
// tokenizer keys, the output types, and the LoRA adapter's factors permuted, never reshaped.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "export/gguf_export.h"
#include "export/gguf_tokenizer.h"
#include "export/qwen35_gguf.h"
#include "io/gguf.h"
#include "io/test_files.h"
#include "model/presets.h"
#include "test_util.h"

namespace deltatune {
namespace {

namespace fs = std::filesystem;
using test::error_of;
using test::ScratchDir;
using testing::HasSubstr;
using testing_util::fixture_path;

const fs::path kSource = fs::path(DELTATUNE_FIXTURES).parent_path().parent_path();

std::string make_tokenizer(const ScratchDir& dir) {
  const std::string out = dir.file("tokenizer");
  EXPECT_EQ(std::system(("python3 " + (kSource / "scripts/make_tiny_tokenizer.py").string() + " " + out).c_str()), 0);
  return out;
}

// Element [r][c] of a 2-D (or [C,1,K]) checkpoint tensor as float64.
double at(const Tensor& t, int64_t r, int64_t c) {
  const int64_t cols = t.numel() / t.dim(0);
  double v;
  convert_to<double>(static_cast<const std::byte*>(t.data) + size_t(r * cols + c) * dtype_size(t.dtype), t.dtype, &v, 1);
  return v;
}
double at(const Tensor& t, int64_t i) { return at(t, 0, i); }

TEST(GgufExport, TiledValueHeadOrder) {
  // Hk = 2, Hv = 4 (R = 2): new head r·Hk + g takes old head g·R + r.
  EXPECT_EQ(tiled_value_head_order(2, 4, 1), (std::vector<int64_t>{0, 2, 1, 3}));
  EXPECT_EQ(tiled_value_head_order(2, 4, 2), (std::vector<int64_t>{0, 1, 4, 5, 2, 3, 6, 7}));
  EXPECT_EQ(tiled_value_head_order(1, 3, 1), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(tiled_value_head_order(3, 3, 1), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(tiled_value_head_order(2, 6, 1), (std::vector<int64_t>{0, 3, 1, 4, 2, 5}));
  EXPECT_THAT(error_of([] { tiled_value_head_order(2, 3, 1); }), HasSubstr("multiple of key heads"));
}

// Hv = 2 Hk, ConditionalGeneration layout, untied: every transform, value by value.
TEST(GgufExport, ModelLayoutAndTransforms) {
  ScratchDir dir;
  const Model model = Model::load(fixture_path("cond_v2x_untied_f32_sharded"));
  GgufModelExport options;
  options.tokenizer_dir = make_tokenizer(dir);
  export_gguf_model(model, dir.file("m.gguf"), options);
  const GgufFile f(dir.file("m.gguf"));
  const ModelConfig& c = model.config();
  const LayerWeights& l0 = model.weights().layers[0];
  const int64_t key_dim = c.linear_key_dim(), dv = c.linear_value_head_dim;  // 32, 16
  const std::vector<int64_t> heads = tiled_value_head_order(2, 4, 1);

  EXPECT_EQ(f.tensors().size(), 1 + 3 * 14 + 1 * 11 + 2u);  // embedding, 3 GDN + 1 attention block, norm, output
  EXPECT_EQ(f.get_tensor("token_embd.weight").ne, (std::vector<int64_t>{48, 256}));
  EXPECT_EQ(f.get_tensor("output.weight").ne, (std::vector<int64_t>{48, 256}));
  EXPECT_EQ(f.get_tensor("blk.0.attn_qkv.weight").ne, (std::vector<int64_t>{48, 128}));
  EXPECT_EQ(f.get_tensor("blk.0.attn_gate.weight").ne, (std::vector<int64_t>{48, 64}));
  EXPECT_EQ(f.get_tensor("blk.0.ssm_alpha.weight").ne, (std::vector<int64_t>{48, 4}));
  EXPECT_EQ(f.get_tensor("blk.0.ssm_conv1d.weight").ne, (std::vector<int64_t>{4, 128}));
  EXPECT_EQ(f.get_tensor("blk.0.ssm_a").ne, (std::vector<int64_t>{4}));
  EXPECT_EQ(f.get_tensor("blk.0.ssm_norm.weight").ne, (std::vector<int64_t>{16}));
  EXPECT_EQ(f.get_tensor("blk.0.ssm_out.weight").ne, (std::vector<int64_t>{64, 48}));
  EXPECT_EQ(f.get_tensor("blk.3.attn_q.weight").ne, (std::vector<int64_t>{48, 256}));
  EXPECT_EQ(f.get_tensor("blk.3.attn_output.weight").ne, (std::vector<int64_t>{128, 48}));
  EXPECT_EQ(f.find_tensor("blk.3.attn_qkv.weight"), nullptr);

  const Tensor qkv = f.tensor("blk.0.attn_qkv.weight");  // [128, 48]
  for (int64_t r : {int64_t(0), key_dim * 2 - 1}) EXPECT_EQ(at(qkv, r, 5), at(l0.linear.in_proj_qkv, r, 5)) << r;
  for (int64_t h = 0; h < 4; ++h)
    for (int64_t e : {int64_t(0), dv - 1})
      EXPECT_EQ(at(qkv, 2 * key_dim + h * dv + e, 7), at(l0.linear.in_proj_qkv, 2 * key_dim + heads[size_t(h)] * dv + e, 7));
  const Tensor gate = f.tensor("blk.0.attn_gate.weight");
  EXPECT_EQ(at(gate, 1 * dv + 3, 2), at(l0.linear.in_proj_z, 2 * dv + 3, 2));  // new head 1 = old head 2
  EXPECT_EQ(at(f.tensor("blk.0.ssm_beta.weight"), 2, 9), at(l0.linear.in_proj_b, 1, 9));
  EXPECT_EQ(at(f.tensor("blk.0.ssm_alpha.weight"), 1, 9), at(l0.linear.in_proj_a, 2, 9));
  const Tensor conv = f.tensor("blk.0.ssm_conv1d.weight");  // [128, 4]
  EXPECT_EQ(at(conv, 3, 2), at(l0.linear.conv1d, 3, 2));
  EXPECT_EQ(at(conv, 2 * key_dim + 1 * dv + 4, 1), at(l0.linear.conv1d, 2 * key_dim + 2 * dv + 4, 1));
  for (int64_t h = 0; h < 4; ++h) {
    EXPECT_EQ(at(f.tensor("blk.0.ssm_a"), h), float(-std::exp(at(l0.linear.A_log, heads[size_t(h)]))));
    EXPECT_EQ(at(f.tensor("blk.0.ssm_dt.bias"), h), at(l0.linear.dt_bias, heads[size_t(h)]));
  }
  const Tensor out = f.tensor("blk.0.ssm_out.weight");  // [48, 64]
  EXPECT_EQ(at(out, 5, 1 * dv + 2), at(l0.linear.out_proj, 5, 2 * dv + 2));
  EXPECT_EQ(at(out, 5, 3 * dv + 2), at(l0.linear.out_proj, 5, 3 * dv + 2));
  // +1 on the zero-centred norms, not on the gated norm.
  EXPECT_EQ(at(f.tensor("blk.0.attn_norm.weight"), 7), float(at(l0.input_layernorm, 7) + 1));
  EXPECT_EQ(at(f.tensor("blk.0.post_attention_norm.weight"), 7), float(at(l0.post_attention_layernorm, 7) + 1));
  EXPECT_EQ(at(f.tensor("blk.3.attn_q_norm.weight"), 3), float(at(model.weights().layers[3].attn.q_norm, 3) + 1));
  EXPECT_EQ(at(f.tensor("output_norm.weight"), 0), float(at(model.weights().norm, 0) + 1));
  EXPECT_EQ(at(f.tensor("blk.0.ssm_norm.weight"), 4), at(l0.linear.norm, 4));
  // Attention q_proj keeps HF's per-head [query | gate] rows.
  EXPECT_EQ(at(f.tensor("blk.3.attn_q.weight"), 40, 11), at(model.weights().layers[3].attn.q_proj, 40, 11));
}

TEST(GgufExport, ModelMetadata) {
  ScratchDir dir;
  GgufModelExport options;
  options.tokenizer_dir = make_tokenizer(dir);
  export_gguf_model(Model::load(fixture_path("causal_tied_f32")), dir.file("m.gguf"), options);
  const GgufFile f(dir.file("m.gguf"));
  auto u32 = [&](const char* key) { return f.get_key(key).get<uint32_t>(); };
  EXPECT_EQ(f.get_key("general.architecture").get_string(), "qwen35");
  EXPECT_EQ(f.get_key("general.type").get_string(), "model");
  EXPECT_EQ(f.get_key("general.name").get_string(), "causal_tied_f32");
  EXPECT_EQ(u32("general.file_type"), 0u);
  EXPECT_EQ(u32("qwen35.block_count"), 4u);
  EXPECT_EQ(u32("qwen35.context_length"), 4096u);
  EXPECT_EQ(u32("qwen35.embedding_length"), 48u);
  EXPECT_EQ(u32("qwen35.feed_forward_length"), 64u);
  EXPECT_EQ(u32("qwen35.attention.head_count"), 4u);
  EXPECT_EQ(u32("qwen35.attention.head_count_kv"), 2u);
  EXPECT_EQ(u32("qwen35.attention.key_length"), 32u);
  EXPECT_EQ(u32("qwen35.attention.value_length"), 32u);
  EXPECT_EQ(u32("qwen35.rope.dimension_count"), 8u);  // 32 · 0.25
  EXPECT_EQ(f.get_key("qwen35.rope.dimension_sections").get_array<int32_t>(), (std::vector<int32_t>{2, 1, 1, 0}));
  EXPECT_EQ(f.get_key("qwen35.rope.freq_base").get<float>(), 10000.0f);
  EXPECT_EQ(f.get_key("qwen35.attention.layer_norm_rms_epsilon").get<float>(), 1e-6f);
  EXPECT_EQ(u32("qwen35.ssm.conv_kernel"), 4u);
  EXPECT_EQ(u32("qwen35.ssm.state_size"), 16u);
  EXPECT_EQ(u32("qwen35.ssm.group_count"), 2u);
  EXPECT_EQ(u32("qwen35.ssm.time_step_rank"), 2u);
  EXPECT_EQ(u32("qwen35.ssm.inner_size"), 32u);
  EXPECT_EQ(f.get_key("qwen35.attention.recurrent_layers").get_array<bool>(), (std::vector<bool>{true, true, true, false}));
  EXPECT_EQ(u32("qwen35.full_attention_interval"), 4u);
  EXPECT_EQ(u32("general.quantization_version"), 2u);
  EXPECT_EQ(f.find_tensor("output.weight"), nullptr);  // tied: llama.cpp reuses token_embd

  // Tokenizer keys, as the converter's _set_vocab_gpt2 + SpecialVocab write them.
  EXPECT_EQ(f.get_key("tokenizer.ggml.model").get_string(), "gpt2");
  EXPECT_EQ(f.get_key("tokenizer.ggml.pre").get_string(), "qwen35");
  const auto& tokens = f.get_key("tokenizer.ggml.tokens").get_string_array();
  ASSERT_EQ(tokens.size(), 256u);
  EXPECT_EQ(tokens[32], "\xc4\xa0");  // the space byte in GPT-2's alphabet, "Ġ"
  EXPECT_EQ(tokens[245], "\xc4\xa0the");
  EXPECT_EQ(tokens[255], "<|im_end|>");
  const std::vector<int32_t> types = f.get_key("tokenizer.ggml.token_type").get_array<int32_t>();
  EXPECT_EQ(types[0], 1);    // NORMAL
  EXPECT_EQ(types[252], 4);  // "<think>": added, not special -> USER_DEFINED
  EXPECT_EQ(types[253], 3);  // CONTROL
  EXPECT_EQ(f.get_key("tokenizer.ggml.merges").get_string_array()[2], "\xc4\xa0t he");
  EXPECT_EQ(u32("tokenizer.ggml.eos_token_id"), 255u);     // tokenizer_config.json's eos_token
  EXPECT_EQ(u32("tokenizer.ggml.padding_token_id"), 253u);
  EXPECT_EQ(u32("tokenizer.ggml.bos_token_id"), 1u);       // config.json's bos_token_id
  EXPECT_FALSE(f.get_key("tokenizer.ggml.add_bos_token").get<bool>());
  EXPECT_THAT(f.get_key("tokenizer.chat_template").get_string(), HasSubstr("<|im_start|>assistant"));
}

// Tokenizer variants: string merges, a vocabulary smaller than the model's, chat_template.jinja
// with named extra templates, and a token id beyond the model's vocabulary.
TEST(GgufExport, TokenizerVariants) {
  ScratchDir dir;
  const fs::path tok = dir.path() / "tok";
  fs::create_directories(tok / "additional_chat_templates");
  std::ofstream(tok / "tokenizer.json") << R"({"added_tokens": [{"id": 3, "content": "<|x|>", "special": false}],
    "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}})";
  std::ofstream(tok / "tokenizer_config.json") << R"({"eos_token": {"content": "<|x|>"}, "add_eos_token": true})";
  std::ofstream(tok / "chat_template.jinja") << "main";
  std::ofstream(tok / "additional_chat_templates/tool use.jinja") << "tools";
  std::ofstream(dir.file("config.json")) << R"({"text_config": {"eos_token_id": 0, "pad_token_id": 1}})";
  GgufMetadata m;
  add_gguf_tokenizer(tok.string(), dir.file("config.json"), 6, m);
  EXPECT_EQ(find_key(m, "tokenizer.ggml.tokens")->get_string_array(),
            (std::vector<std::string>{"a", "b", "ab", "<|x|>", "[PAD4]", "[PAD5]"}));
  EXPECT_EQ(find_key(m, "tokenizer.ggml.token_type")->get_array<int32_t>(), (std::vector<int32_t>{1, 1, 1, 3, 5, 5}));
  EXPECT_EQ(find_key(m, "tokenizer.ggml.merges")->get_string_array(), std::vector<std::string>{"a b"});
  EXPECT_EQ(find_key(m, "tokenizer.ggml.eos_token_id")->get<uint32_t>(), 3u);  // tokenizer_config wins
  EXPECT_EQ(find_key(m, "tokenizer.ggml.padding_token_id")->get<uint32_t>(), 1u);
  EXPECT_TRUE(find_key(m, "tokenizer.ggml.add_eos_token")->get<bool>());
  EXPECT_EQ(find_key(m, "tokenizer.chat_template")->get_string(), "main");
  EXPECT_EQ(find_key(m, "tokenizer.chat_template.tool_use")->get_string(), "tools");
  EXPECT_EQ(find_key(m, "tokenizer.chat_templates")->get_string_array(), std::vector<std::string>{"tool_use"});
  GgufMetadata small;
  EXPECT_THAT(error_of([&] { add_gguf_tokenizer(tok.string(), dir.file("config.json"), 3, small); }),
              HasSubstr("token id 3 is outside the model's vocabulary of 3"));
  EXPECT_THAT(error_of([&] { add_gguf_tokenizer(dir.file("nowhere"), dir.file("config.json"), 3, small); }),
              HasSubstr("no tokenizer.json in"));
}

// bf16, f16 and q8_0 files hold exactly the f32 file's values encoded as ggml encodes them; 1-D
// tensors and conv1d stay f32, q8_0 rows of 48 fall back to f16.
TEST(GgufExport, OutTypesEncodeTheF32Values) {
  ScratchDir dir;
  const Model model = Model::load(fixture_path("causal_v2x_untied_bf16"));
  GgufModelExport options;
  options.tokenizer_dir = make_tokenizer(dir);
  export_gguf_model(model, dir.file("f32.gguf"), options);
  const GgufFile f32(dir.file("f32.gguf"));
  for (GgmlType type : {GgmlType::BF16, GgmlType::F16, GgmlType::Q8_0}) {
    options.outtype = type;
    const std::string path = dir.file(str_cat(ggml_type_name(type), ".gguf"));
    export_gguf_model(model, path, options);
    const GgufFile f(path);
    EXPECT_EQ(f.get_key("general.file_type").get<uint32_t>(), type == GgmlType::BF16 ? 32u : type == GgmlType::F16 ? 1u : 7u);
    for (const GgufTensorInfo& t : f.tensors()) {
      const GgufTensorInfo& ref = f32.get_tensor(t.name);
      GgmlType want = type;
      if (t.ne.size() == 1 || t.name.find("ssm_conv1d") != std::string::npos) want = GgmlType::F32;
      else if (type == GgmlType::Q8_0 && t.ne[0] % 32 != 0) want = GgmlType::F16;
      EXPECT_EQ(t.type, want) << t.name;
      const std::vector<float> values = f32.tensor_to_float(ref);
      std::vector<uint8_t> encoded(t.nbytes);
      ggml_encode(values.data(), int64_t(values.size()), t.type, encoded.data());
      EXPECT_EQ(0, std::memcmp(encoded.data(), f.tensor_bytes(t).data(), t.nbytes)) << ggml_type_name(type) << " " << t.name;
    }
  }
}

// The adapter: names, PEFT-layout shapes, alpha so that alpha / r is the scaling (rsLoRA too), and
// B's rows / A's columns permuted exactly where the base weight's rows / columns are.
TEST(GgufExport, LoraAdapterLayout) {
  ScratchDir dir;
  const Model base = Model::load(fixture_path("cond_v2x_untied_f32_sharded"));
  const LoraAdapter adapter = LoraAdapter::load_peft(fixture_path("cond_v2x_untied_f32_sharded/adapter"), base.config(), DType::F64);
  export_gguf_lora(adapter, base, dir.file("a.gguf"), {});
  const GgufFile f(dir.file("a.gguf"));
  EXPECT_EQ(f.get_key("general.type").get_string(), "adapter");
  EXPECT_EQ(f.get_key("general.architecture").get_string(), "qwen35");
  EXPECT_EQ(f.get_key("adapter.type").get_string(), "lora");
  EXPECT_FLOAT_EQ(f.get_key("adapter.lora.alpha").get<float>(), 32.0f);  // rsLoRA: 16 / sqrt(4) = 32 / 4
  EXPECT_EQ(f.tensors().size(), 2u * 31u);  // 3 GDN layers x 8 modules + 1 attention layer x 7
  EXPECT_EQ(f.get_tensor("blk.0.attn_qkv.weight.lora_a").ne, (std::vector<int64_t>{48, 4}));
  EXPECT_EQ(f.get_tensor("blk.0.attn_qkv.weight.lora_b").ne, (std::vector<int64_t>{4, 128}));
  EXPECT_EQ(f.get_tensor("blk.0.ssm_out.weight.lora_a").ne, (std::vector<int64_t>{64, 4}));
  EXPECT_EQ(f.get_tensor("blk.3.attn_q.weight.lora_b").ne, (std::vector<int64_t>{4, 256}));

  const LoraModule& qkv = *adapter.find(0, LinearKind::InProjQkv);
  const Tensor b = f.tensor("blk.0.attn_qkv.weight.lora_b");  // [128, 4]
  EXPECT_EQ(at(b, 10, 2), float(at(qkv.B.view(), 10, 2)));                        // q rows stay
  EXPECT_EQ(at(b, 64 + 1 * 16 + 5, 3), float(at(qkv.B.view(), 64 + 2 * 16 + 5, 3)));  // V head 1 <- 2
  EXPECT_EQ(at(f.tensor("blk.0.attn_qkv.weight.lora_a"), 1, 7), float(at(qkv.A.view(), 1, 7)));  // A as is
  const LoraModule& out = *adapter.find(0, LinearKind::OutProj);
  const Tensor a = f.tensor("blk.0.ssm_out.weight.lora_a");  // [4, 64]
  EXPECT_EQ(at(a, 2, 1 * 16 + 9), float(at(out.A.view(), 2, 2 * 16 + 9)));  // input head 1 <- 2
  EXPECT_EQ(at(f.tensor("blk.0.ssm_out.weight.lora_b"), 30, 1), float(at(out.B.view(), 30, 1)));
  EXPECT_EQ(at(f.tensor("blk.0.ssm_beta.weight.lora_b"), 2, 0), float(at(adapter.find(0, LinearKind::InProjB)->B.view(), 1, 0)));

  // Without rsLoRA: alpha stays PEFT's lora_alpha (8 at r = 4).
  const Model tied = Model::load(fixture_path("causal_tied_f32"));
  export_gguf_lora(LoraAdapter::load_peft(fixture_path("causal_tied_f32/adapter"), tied.config(), DType::F64), tied,
                   dir.file("b.gguf"), {GgmlType::BF16, "x"});
  const GgufFile g(dir.file("b.gguf"));
  EXPECT_EQ(g.get_key("adapter.lora.alpha").get<float>(), 8.0f);
  EXPECT_EQ(g.get_tensor("blk.0.attn_qkv.weight.lora_a").type, GgmlType::BF16);
}

TEST(GgufExport, RefusesWhatLlamaCppCannotLoad) {
  ScratchDir dir;
  ModelConfig c = preset_config("tiny");
  c.linear_value_head_dim = 2 * c.linear_key_head_dim;
  const Model uneven = Model::random(c, DType::F32, 1);
  EXPECT_THAT(error_of([&] { qwen35_gguf_tensors(uneven.config(), uneven.weights()); }),
              HasSubstr("needs equal linear-attention key and value head dims"));
  const Model random = Model::random(preset_config("tiny"), DType::F32, 1);
  EXPECT_THAT(error_of([&] { export_gguf_model(random, dir.file("r.gguf"), {}); }),
              HasSubstr("the model must come from a checkpoint folder"));
  const Model base = Model::load(fixture_path("causal_tied_f32"));
  const LoraAdapter adapter = LoraAdapter::load_peft(fixture_path("causal_tied_f32/adapter"), base.config(), DType::F64);
  EXPECT_THAT(error_of([&] { export_gguf_lora(adapter, base, dir.file("q.gguf"), {GgmlType::Q8_0, "x"}); }),
              HasSubstr("LoRA factors are written as f32, f16 or bf16, not q8_0"));
  GgufModelExport no_tokenizer;
  no_tokenizer.tokenizer_dir = dir.file("none");
  EXPECT_THAT(error_of([&] { export_gguf_model(base, dir.file("t.gguf"), no_tokenizer); }),
              HasSubstr("no tokenizer.json in"));
  EXPECT_FALSE(fs::exists(dir.file("t.gguf")));
}

}  // namespace
}  // namespace deltatune
