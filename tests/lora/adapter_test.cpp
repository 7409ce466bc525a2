// LoRA adapters with PEFT's semantics: target matching, init, scaling, PEFT folders written and
// read back, and clear errors for what we cannot load.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/json_file.h"
#include "io/safetensors.h"
#include "lora/adapter.h"
#include "model/presets.h"

namespace deltatune {
namespace {

namespace fs = std::filesystem;

ModelConfig tiny() { return preset_config("tiny"); }  // layers L L L A

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(LoraTargets, SuffixRulesOfPeft) {
  LoraConfig c;
  c.target_modules = {"q_proj"};
  EXPECT_TRUE(lora_target_matches(c, "model.layers.3.self_attn.q_proj"));
  EXPECT_FALSE(lora_target_matches(c, "model.layers.3.self_attn.k_proj"));
  c.target_modules = {"proj"};  // a suffix must start at a dot
  EXPECT_FALSE(lora_target_matches(c, "model.layers.3.self_attn.q_proj"));
  c.target_modules = {"linear_attn.in_proj_qkv"};
  EXPECT_TRUE(lora_target_matches(c, "model.layers.0.linear_attn.in_proj_qkv"));
  c.target_modules = {"out_proj"};
  EXPECT_TRUE(lora_target_matches(c, "model.layers.0.linear_attn.out_proj"));
  c.target_modules.clear();
  c.target_regex = R"(.*\.layers\.[01]\.mlp\.(up|down)_proj)";
  EXPECT_TRUE(lora_target_matches(c, "model.layers.1.mlp.down_proj"));
  EXPECT_FALSE(lora_target_matches(c, "model.layers.2.mlp.down_proj"));
  EXPECT_FALSE(lora_target_matches(c, "xmodel.layers.1.mlp.down_proj.extra"));
}

TEST(LoraTargets, AllLinearCoversEveryProjectionOfEveryLayer) {
  LoraConfig c;
  c.target_all_linear = true;
  const LoraAdapter a = LoraAdapter::create(tiny(), c, DType::F32, 1);
  // 3 GDN layers x (5 + 3 MLP) + 1 attention layer x (4 + 3 MLP)
  EXPECT_EQ(a.modules().size(), 3u * 8 + 7);
  EXPECT_NE(a.find(0, LinearKind::InProjQkv), nullptr);
  EXPECT_EQ(a.find(0, LinearKind::QProj), nullptr);
  EXPECT_NE(a.find(3, LinearKind::QProj), nullptr);
}

TEST(LoraTargets, ATargetThatMatchesNothingListsTheModules) {
  LoraConfig c;
  c.target_modules = {"q_proj", "qkv_proj"};
  const std::string e = error_of([&] { LoraAdapter::create(tiny(), c, DType::F32, 1); });
  EXPECT_NE(e.find("LoRA target 'qkv_proj' matches no module"), std::string::npos) << e;
  EXPECT_NE(e.find("linear_attn.in_proj_qkv"), std::string::npos) << e;
  EXPECT_NE(e.find("self_attn.q_proj"), std::string::npos) << e;
}

TEST(LoraInit, KaimingUniformAAndZeroB) {
  LoraConfig c;
  c.r = 8;
  c.target_modules = {"down_proj"};
  const LoraAdapter a = LoraAdapter::create(tiny(), c, DType::F64, 42);
  const LoraModule& m = a.modules().front();
  EXPECT_EQ(m.A.dim(0), 8);
  EXPECT_EQ(m.A.dim(1), tiny().intermediate_size);
  const double bound = 1.0 / std::sqrt(double(m.in));
  double max_abs = 0, sum_sq = 0;
  for (int64_t i = 0; i < m.A.numel(); ++i) {
    max_abs = std::max(max_abs, std::fabs(m.A.ptr<double>()[i]));
    sum_sq += m.A.ptr<double>()[i] * m.A.ptr<double>()[i];
  }
  EXPECT_LE(max_abs, bound);
  // Uniform(-b, b) has variance b^2/3; 1024 samples put the estimate within ~10%.
  EXPECT_NEAR(sum_sq / double(m.A.numel()), bound * bound / 3, 0.15 * bound * bound / 3);
  for (int64_t i = 0; i < m.B.numel(); ++i) ASSERT_EQ(m.B.ptr<double>()[i], 0.0);
  // Same seed, same factors.
  const LoraAdapter b = LoraAdapter::create(tiny(), c, DType::F64, 42);
  EXPECT_EQ(std::memcmp(m.A.view().data, b.modules().front().A.view().data, m.A.view().nbytes()), 0);
}

TEST(LoraConfig, Scaling) {
  LoraConfig c;
  c.r = 16;
  c.alpha = 32;
  EXPECT_DOUBLE_EQ(c.scaling(), 2.0);
  c.use_rslora = true;
  EXPECT_DOUBLE_EQ(c.scaling(), 8.0);
}

class PeftFolderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("deltatune_peft_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(PeftFolderTest, SaveAndLoadRoundTrip) {
  LoraConfig c;
  c.r = 4;
  c.alpha = 8;
  c.target_modules = {"in_proj_qkv", "out_proj", "o_proj"};
  LoraAdapter a = LoraAdapter::create(tiny(), c, DType::F32, 3);
  for (LoraModule& m : a.modules())
    for (int64_t i = 0; i < m.B.numel(); ++i) m.B.ptr<float>()[i] = float(i % 7) * 0.125f - 0.25f;
  a.save_peft(dir_.string(), "Qwen/Qwen3.5-0.8B");
  const nlohmann::json j = read_json_file((dir_ / "adapter_config.json").string());
  EXPECT_EQ(j["peft_type"], "LORA");
  EXPECT_EQ(j["r"], 4);
  EXPECT_EQ(j["base_model_name_or_path"], "Qwen/Qwen3.5-0.8B");
  const SafetensorsFile f((dir_ / "adapter_model.safetensors").string());
  EXPECT_NE(f.find("base_model.model.model.layers.0.linear_attn.in_proj_qkv.lora_A.weight"), nullptr);
  EXPECT_NE(f.find("base_model.model.model.layers.3.self_attn.o_proj.lora_B.weight"), nullptr);
  const LoraAdapter b = LoraAdapter::load_peft(dir_.string(), tiny(), DType::F32);
  ASSERT_EQ(b.modules().size(), a.modules().size());
  EXPECT_DOUBLE_EQ(b.config().scaling(), 2.0);
  for (const LoraModule& m : a.modules()) {
    const LoraModule* n = b.find(m.layer, m.kind);
    ASSERT_NE(n, nullptr) << m.name;
    EXPECT_EQ(std::memcmp(m.A.view().data, n->A.view().data, m.A.view().nbytes()), 0) << m.name;
    EXPECT_EQ(std::memcmp(m.B.view().data, n->B.view().data, m.B.view().nbytes()), 0) << m.name;
  }
  // bf16 factors on disk are read into float32.
  a.save_peft(dir_.string(), "x", DType::BF16);
  EXPECT_EQ(SafetensorsFile((dir_ / "adapter_model.safetensors").string()).entries()[0].dtype, DType::BF16);
  EXPECT_EQ(LoraAdapter::load_peft(dir_.string(), tiny(), DType::F32).modules().size(), a.modules().size());
}

TEST_F(PeftFolderTest, ClearErrors) {
  LoraConfig c;
  c.r = 4;
  c.target_modules = {"gate_proj"};
  const LoraAdapter a = LoraAdapter::create(tiny(), c, DType::F32, 3);
  a.save_peft(dir_.string(), "x");
  const std::string st = (dir_ / "adapter_model.safetensors").string();
  std::vector<NamedTensor> tensors;
  for (const LoraModule& m : a.modules()) {
    tensors.push_back({LoraAdapter::peft_name(m.name, 'A'), m.A.view()});
    tensors.push_back({LoraAdapter::peft_name(m.name, 'B'), m.B.view()});
  }
  auto load_error = [&] { return error_of([&] { LoraAdapter::load_peft(dir_.string(), tiny(), DType::F32); }); };

  write_safetensors(st, {tensors[0]});
  EXPECT_NE(load_error().find("has lora_A but no lora_B"), std::string::npos) << load_error();

  HostTensor wrong(DType::F32, {5, 64});
  write_safetensors(st, {{tensors[0].name, wrong.view()}, tensors[1]});
  EXPECT_NE(load_error().find("has shape [5, 64], expected [4, 64]"), std::string::npos) << load_error();

  write_safetensors(st, {{"base_model.model.model.layers.9.mlp.gate_proj.lora_A.weight", tensors[0].tensor},
                         {"base_model.model.model.layers.9.mlp.gate_proj.lora_B.weight", tensors[1].tensor}});
  EXPECT_NE(load_error().find("adapts 'model.layers.9.mlp.gate_proj', which is not a linear module"), std::string::npos)
      << load_error();

  write_safetensors(st, tensors);
  nlohmann::json j = read_json_file((dir_ / "adapter_config.json").string());
  j["use_dora"] = true;
  write_json_file_atomic((dir_ / "adapter_config.json").string(), j);
  EXPECT_NE(load_error().find("'use_dora' (DoRA) is not supported"), std::string::npos) << load_error();
}

}  // namespace
}  // namespace deltatune
