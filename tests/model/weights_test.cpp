// Loading a checkpoint checks every tensor against the config: a missing, misshapen, non-float or
// unexpected tensor is an error naming it; vision and MTP tensors are skipped.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <fstream>

#include "core/error.h"
#include "io/safetensors.h"
#include "model/presets.h"
#include "model/weights.h"

namespace deltatune {
namespace {

namespace fs = std::filesystem;

class WeightsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("deltatune_weights_" + std::to_string(::getpid()) + "_" +
                                             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    model_ = std::make_unique<Model>(Model::random(preset_config("tiny"), DType::BF16, 1));
    model_->save(dir_.string());
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Rewrites model.safetensors with `edit` applied to the list of tensors.
  template <class F>
  void rewrite(F edit) {
    std::vector<NamedTensor> tensors;
    for (auto& [name, t] : model_->named_tensors()) tensors.push_back({name, t});
    edit(tensors);
    write_safetensors((dir_ / "model.safetensors").string(), tensors);
  }

  std::string load_error() {
    try {
      Model::load(dir_.string());
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }

  fs::path dir_;
  std::unique_ptr<Model> model_;
};

TEST_F(WeightsTest, SavedModelLoadsBackWithItsDtype) {
  const Model m = Model::load(dir_.string());
  EXPECT_EQ(m.weights().embed_tokens.dtype, DType::BF16);
  EXPECT_EQ(m.weights().layers.size(), 4u);
  EXPECT_EQ(m.weights().lm_head.data, m.weights().embed_tokens.data);  // tied
  EXPECT_EQ(m.weights().layers[3].kind, LayerKind::FullAttention);
}

TEST_F(WeightsTest, MissingTensor) {
  rewrite([](auto& ts) {
    std::erase_if(ts, [](const NamedTensor& t) { return t.name == "model.layers.1.linear_attn.A_log"; });
  });
  EXPECT_NE(load_error().find("missing tensor 'model.layers.1.linear_attn.A_log'"), std::string::npos)
      << load_error();
}

TEST_F(WeightsTest, WrongShape) {
  HostTensor wrong(DType::BF16, {3, 3});
  rewrite([&](auto& ts) {
    for (auto& t : ts)
      if (t.name == "model.layers.3.self_attn.q_norm.weight") t.tensor = wrong.view();
  });
  EXPECT_NE(load_error().find("'model.layers.3.self_attn.q_norm.weight' in"), std::string::npos);
  EXPECT_NE(load_error().find("has shape [3, 3], the config implies [32]"), std::string::npos) << load_error();
}

TEST_F(WeightsTest, NonFloatWeight) {
  HostTensor ints(DType::I32, {32});
  rewrite([&](auto& ts) {
    for (auto& t : ts)
      if (t.name == "model.layers.3.self_attn.k_norm.weight") t.tensor = ints.view();
  });
  EXPECT_NE(load_error().find("has dtype I32"), std::string::npos) << load_error();
}

TEST_F(WeightsTest, UnexpectedTensorIsAnErrorButMtpIsSkipped) {
  HostTensor extra(DType::BF16, {2});
  rewrite([&](auto& ts) { ts.push_back({"mtp.fc.weight", extra.view()}); });
  EXPECT_EQ(load_error(), "");
  rewrite([&](auto& ts) { ts.push_back({"model.layers.0.self_attn.q_proj.weight", extra.view()}); });
  EXPECT_NE(load_error().find("unexpected tensor 'model.layers.0.self_attn.q_proj.weight'"), std::string::npos)
      << load_error();
}

TEST_F(WeightsTest, MissingConfig) {
  fs::remove(dir_ / "config.json");
  EXPECT_NE(load_error().find("config.json: cannot open"), std::string::npos) << load_error();
}

}  // namespace
}  // namespace deltatune
