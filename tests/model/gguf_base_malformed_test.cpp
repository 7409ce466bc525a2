// Malformed GGUF bases: a valid export (causal_tied_f32: blocks 0-2 Gated DeltaNet, block 3 full
// attention) rewritten with one thing wrong. Each is refused with an Error that names the file and
// the key or tensor, and says what is wrong.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <functional>

#include "export/gguf_export.h"
#include "io/gguf.h"
#include "io/test_files.h"
#include "model/weights.h"
#include "text/tokenizer.h"
#include "test_util.h"

namespace deltatune {
namespace {

namespace fs = std::filesystem;
using test::error_of;
using test::ScratchDir;
using testing::AllOf;
using testing::HasSubstr;

const fs::path kSource = fs::path(DELTATUNE_FIXTURES).parent_path().parent_path();

struct Tensors {
  std::vector<GgufTensorPlan> plans;
  std::vector<std::vector<uint8_t>> data;
  size_t index(const std::string& name) const {
    for (size_t i = 0; i < plans.size(); ++i)
      if (plans[i].name == name) return i;
    ADD_FAILURE() << "no tensor " << name;
    return 0;
  }
  void erase(const std::string& name) {
    const size_t i = index(name);
    plans.erase(plans.begin() + long(i));
    data.erase(data.begin() + long(i));
  }
};

void set_key(GgufMetadata& m, const std::string& key, GgufValue value) {
  for (GgufKeyValue& kv : m)
    if (kv.key == key) {
      kv.value = std::move(value);
      return;
    }
  m.push_back({key, std::move(value)});
}

void erase_key(GgufMetadata& m, const std::string& key) {
  std::erase_if(m, [&](const GgufKeyValue& kv) { return kv.key == key; });
}

class GgufBaseMalformed : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string tokenizer = dir_.file("tokenizer");
    ASSERT_EQ(std::system(("python3 " + (kSource / "scripts/make_tiny_tokenizer.py").string() + " " + tokenizer).c_str()), 0);
    GgufModelExport options;
    options.tokenizer_dir = tokenizer;
    export_gguf_model(Model::load(testing_util::fixture_path("causal_tied_f32")), dir_.file("good.gguf"), options);
  }

  // good.gguf with edits, written to bad.gguf; returns its path.
  std::string rewrite(const std::function<void(GgufMetadata&, Tensors&)>& edit) {
    const GgufFile good(dir_.file("good.gguf"));
    GgufMetadata metadata = good.metadata();
    Tensors t;
    for (const GgufTensorInfo& info : good.tensors()) {
      t.plans.push_back({info.name, info.type, info.ne});
      const auto bytes = good.tensor_bytes(info);
      t.data.emplace_back(reinterpret_cast<const uint8_t*>(bytes.data()),
                          reinterpret_cast<const uint8_t*>(bytes.data()) + bytes.size());
    }
    edit(metadata, t);
    std::vector<GgufTensorData> tensors;
    for (size_t i = 0; i < t.plans.size(); ++i) tensors.push_back({t.plans[i], t.data[i].data()});
    const std::string path = dir_.file("bad.gguf");
    write_gguf(path, metadata, tensors);
    return path;
  }

  std::string load_error(const std::function<void(GgufMetadata&, Tensors&)>& edit) {
    const std::string path = rewrite(edit);
    const std::string e = error_of([&] { Model::load(path); });
    EXPECT_THAT(e, HasSubstr(path));
    return e;
  }

  ScratchDir dir_;
};

TEST_F(GgufBaseMalformed, TheUnchangedFileLoads) {
  const Model m = Model::load(rewrite([](GgufMetadata&, Tensors&) {}));
  EXPECT_EQ(m.config().num_layers, 4);
}

TEST_F(GgufBaseMalformed, MissingTensor) {
  EXPECT_THAT(load_error([](GgufMetadata&, Tensors& t) { t.erase("blk.1.ssm_a"); }),
              AllOf(HasSubstr("missing tensor 'blk.1.ssm_a'"), HasSubstr("block 1 is linear attention")));
  EXPECT_THAT(load_error([](GgufMetadata&, Tensors& t) { t.erase("output_norm.weight"); }),
              HasSubstr("missing tensor 'output_norm.weight'"));
}

TEST_F(GgufBaseMalformed, WrongShape) {
  EXPECT_THAT(load_error([](GgufMetadata&, Tensors& t) {
                const size_t i = t.index("blk.2.attn_gate.weight");  // ne {48, 32}
                t.plans[i].ne = {48, 16};
                t.data[i].resize(48 * 16 * 4);
              }),
              AllOf(HasSubstr("tensor 'blk.2.attn_gate.weight'"), HasSubstr("has ne [48, 16]"),
                    HasSubstr("the metadata implies [48, 32]")));
  // Metadata that disagrees with the tensors: more value heads than the file holds.
  EXPECT_THAT(load_error([](GgufMetadata& m, Tensors&) {
                set_key(m, "qwen35.ssm.time_step_rank", GgufValue::scalar<uint32_t>(4));
                set_key(m, "qwen35.ssm.inner_size", GgufValue::scalar<uint32_t>(64));
              }),
              AllOf(HasSubstr("tensor 'blk.0.attn_qkv.weight'"), HasSubstr("has ne")));
}

TEST_F(GgufBaseMalformed, UnsupportedType) {
  EXPECT_THAT(load_error([](GgufMetadata&, Tensors& t) {
                const size_t i = t.index("blk.0.ffn_down.weight");  // ne {64, 48}
                t.plans[i].type = GgmlType::Q4_0;
                t.data[i].assign(size_t(gguf_tensor_bytes(GgmlType::Q4_0, t.plans[i].ne)), 0);
              }),
              AllOf(HasSubstr("tensor 'blk.0.ffn_down.weight'"), HasSubstr("has type q4_0"),
                    HasSubstr("f32, f16, bf16 and q8_0")));
}

TEST_F(GgufBaseMalformed, WrongArchitectureOrType) {
  EXPECT_THAT(load_error([](GgufMetadata& m, Tensors&) { set_key(m, "general.architecture", GgufValue::string("llama")); }),
              HasSubstr("general.architecture is 'llama'; deltatune loads Qwen3.5 models ('qwen35')"));
  EXPECT_THAT(load_error([](GgufMetadata& m, Tensors&) { set_key(m, "general.architecture", GgufValue::string("qwen35moe")); }),
              HasSubstr("not supported yet"));
  EXPECT_THAT(load_error([](GgufMetadata& m, Tensors&) { erase_key(m, "general.architecture"); }),
              HasSubstr("missing metadata key 'general.architecture'"));
  EXPECT_THAT(load_error([](GgufMetadata& m, Tensors&) { set_key(m, "general.type", GgufValue::string("adapter")); }),
              HasSubstr("general.type is 'adapter'"));
}

TEST_F(GgufBaseMalformed, MissingOrBadKeys) {
  EXPECT_THAT(load_error([](GgufMetadata& m, Tensors&) { erase_key(m, "qwen35.ssm.state_size"); }),
              HasSubstr("missing metadata key 'qwen35.ssm.state_size'"));
  EXPECT_THAT(load_error([](GgufMetadata& m, Tensors&) { set_key(m, "qwen35.block_count", GgufValue::string("4")); }),
              AllOf(HasSubstr("metadata key 'qwen35.block_count'"), HasSubstr("expected an integer")));
  EXPECT_THAT(load_error([](GgufMetadata& m, Tensors&) { set_key(m, "qwen35.attention.head_count_kv", GgufValue::scalar<uint32_t>(3)); }),
              HasSubstr("must be a multiple of num_key_value_heads"));
  EXPECT_THAT(load_error([](GgufMetadata& m, Tensors&) { set_key(m, "qwen35.ssm.inner_size", GgufValue::scalar<uint32_t>(31)); }),
              HasSubstr("metadata key 'qwen35.ssm.inner_size' is 31"));
  // One more block than the tensors hold.
  EXPECT_THAT(load_error([](GgufMetadata& m, Tensors&) {
                set_key(m, "qwen35.block_count", GgufValue::scalar<uint32_t>(5));
                erase_key(m, "qwen35.attention.recurrent_layers");
              }),
              HasSubstr("missing tensor 'blk.4.attn_norm.weight'"));
}

TEST_F(GgufBaseMalformed, UnexpectedOrFusedTensors) {
  EXPECT_THAT(load_error([](GgufMetadata&, Tensors& t) {
                t.plans.push_back({"blk.0.extra.weight", GgmlType::F32, {4}});
                t.data.emplace_back(16, 0);
              }),
              HasSubstr("unexpected tensor 'blk.0.extra.weight'"));
  EXPECT_THAT(load_error([](GgufMetadata&, Tensors& t) {
                for (size_t i = 0; i < t.plans.size(); ++i)
                  if (t.plans[i].name == "blk.3.attn_q.weight") t.plans[i].name = "blk.3.attn_qkv.weight";
              }),
              HasSubstr("fused 'blk.3.attn_qkv.weight'"));
  // Multi-token-prediction blocks past block_count - nextn_predict_layers are not loaded.
  const Model m = Model::load(rewrite([](GgufMetadata& m, Tensors& t) {
    set_key(m, "qwen35.nextn_predict_layers", GgufValue::scalar<uint32_t>(1));
    set_key(m, "qwen35.block_count", GgufValue::scalar<uint32_t>(5));
    t.plans.push_back({"blk.4.nextn.eh_proj.weight", GgmlType::F32, {4}});
    t.data.emplace_back(16, 0);
  }));
  EXPECT_EQ(m.config().num_layers, 4);
}

TEST_F(GgufBaseMalformed, BadValues) {
  EXPECT_THAT(load_error([](GgufMetadata&, Tensors& t) {
                const float positive = 0.5f;
                std::memcpy(t.data[t.index("blk.0.ssm_a")].data(), &positive, 4);
              }),
              AllOf(HasSubstr("tensor 'blk.0.ssm_a'"), HasSubstr("negative")));
}

TEST_F(GgufBaseMalformed, NotAGgufOrNotThere) {
  test::write_bytes(dir_.file("junk.gguf"), "GGML not really");
  EXPECT_THAT(error_of([&] { Model::load(dir_.file("junk.gguf")); }), HasSubstr(dir_.file("junk.gguf")));
  EXPECT_THAT(error_of([&] { Model::load(dir_.file("absent")); }), HasSubstr("does not exist"));
}

TEST_F(GgufBaseMalformed, TokenizerKeys) {
  const std::string a = rewrite([](GgufMetadata& m, Tensors&) { set_key(m, "tokenizer.ggml.model", GgufValue::string("llama")); });
  EXPECT_THAT(error_of([&] { Tokenizer::load(a); }),
              AllOf(HasSubstr(a), HasSubstr("tokenizer.ggml.model is 'llama'"), HasSubstr("tokenizer folder")));
  const std::string b = rewrite([](GgufMetadata& m, Tensors&) { erase_key(m, "tokenizer.ggml.merges"); });
  EXPECT_THAT(error_of([&] { Tokenizer::load(b); }), AllOf(HasSubstr(b), HasSubstr("'tokenizer.ggml.merges'")));
  const std::string c = rewrite([](GgufMetadata& m, Tensors&) { set_key(m, "tokenizer.ggml.pre", GgufValue::string("llama3")); });
  EXPECT_THAT(error_of([&] { Tokenizer::load(c); }), HasSubstr("tokenizer.ggml.pre is 'llama3'"));
}

}  // namespace
}  // namespace deltatune
