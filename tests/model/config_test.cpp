// config.json parsing: both layouts, layer kinds from layer_types or full_attention_interval, rope
// in rope_parameters or at top level, and a clear error for each bad or unsupported config.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/config.h"
#include "model/presets.h"

namespace deltatune {
namespace {

using json = nlohmann::json;

json text_config() {
  return json{{"model_type", "qwen3_5_text"},
              {"vocab_size", 256},
              {"hidden_size", 48},
              {"intermediate_size", 64},
              {"num_hidden_layers", 8},
              {"num_attention_heads", 4},
              {"num_key_value_heads", 2},
              {"head_dim", 32},
              {"linear_num_key_heads", 2},
              {"linear_num_value_heads", 4},
              {"linear_key_head_dim", 16},
              {"linear_value_head_dim", 16},
              {"rope_parameters", {{"rope_type", "default"}, {"rope_theta", 1e7}, {"partial_rotary_factor", 0.25}}}};
}

std::string error_of(const json& j) {
  try {
    parse_model_config(j, "config.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Config, CausalLmDefaults) {
  const ModelConfig c = parse_model_config(text_config(), "config.json");
  EXPECT_EQ(c.layout, CheckpointLayout::CausalLM);
  EXPECT_EQ(c.text_prefix(), "model.");
  EXPECT_EQ(c.rotary_dim(), 8);
  EXPECT_EQ(c.linear_conv_dim(), 2 * 2 * 16 + 4 * 16);
  // full_attention_interval defaults to 4: layers 3 and 7 are full attention.
  ASSERT_EQ(c.layer_kinds.size(), 8u);
  for (int i = 0; i < 8; ++i)
    EXPECT_EQ(c.layer_kinds[size_t(i)], i % 4 == 3 ? LayerKind::FullAttention : LayerKind::LinearAttention) << i;
  EXPECT_FALSE(c.tie_word_embeddings);
}

TEST(Config, ConditionalGenerationNestsTextConfig) {
  json j = {{"model_type", "qwen3_5"}, {"text_config", text_config()}, {"tie_word_embeddings", true},
            {"vision_config", {{"depth", 1}}}};
  j["text_config"]["tie_word_embeddings"] = true;
  const ModelConfig c = parse_model_config(j, "config.json");
  EXPECT_EQ(c.layout, CheckpointLayout::ConditionalGeneration);
  EXPECT_EQ(c.text_prefix(), "model.language_model.");
  EXPECT_TRUE(c.tie_word_embeddings);
}

TEST(Config, LayerTypesAndIntervalAndOldRopeKeys) {
  json j = text_config();
  j["num_hidden_layers"] = 3;
  j["layer_types"] = {"full_attention", "linear_attention", "full_attention"};
  EXPECT_EQ(parse_model_config(j, "c").layer_kinds[0], LayerKind::FullAttention);
  j.erase("layer_types");
  j["full_attention_interval"] = 2;
  EXPECT_EQ(parse_model_config(j, "c").layer_kinds[1], LayerKind::FullAttention);
  j.erase("rope_parameters");
  j["rope_theta"] = 5e6;
  j["partial_rotary_factor"] = 0.5;
  const ModelConfig c = parse_model_config(j, "c");
  EXPECT_EQ(c.rope_theta, 5e6);
  EXPECT_EQ(c.rotary_dim(), 16);
}

TEST(Config, ErrorsNameTheProblem) {
  json moe = text_config();
  moe["model_type"] = "qwen3_5_moe";
  EXPECT_NE(error_of(moe).find("MoE"), std::string::npos) << error_of(moe);

  json other = text_config();
  other["model_type"] = "llama";
  EXPECT_NE(error_of(other).find("'llama' is not a Qwen3.5 model"), std::string::npos);

  json missing = text_config();
  missing.erase("hidden_size");
  EXPECT_NE(error_of(missing).find("missing required field 'hidden_size'"), std::string::npos);

  json typed = text_config();
  typed["num_attention_heads"] = "four";
  EXPECT_NE(error_of(typed).find("'num_attention_heads' must be an integer"), std::string::npos);

  json heads = text_config();
  heads["num_key_value_heads"] = 3;
  EXPECT_NE(error_of(heads).find("multiple of num_key_value_heads"), std::string::npos);

  json lt = text_config();
  lt["layer_types"] = {"linear_attention"};
  EXPECT_NE(error_of(lt).find("'layer_types' has 1 entries but num_hidden_layers is 8"), std::string::npos);

  json bad_kind = text_config();
  bad_kind["num_hidden_layers"] = 1;
  bad_kind["layer_types"] = {"sliding_attention"};
  EXPECT_NE(error_of(bad_kind).find("layer_types[0] is 'sliding_attention'"), std::string::npos);

  json tie = {{"model_type", "qwen3_5"}, {"text_config", text_config()}, {"tie_word_embeddings", true}};
  tie["text_config"]["tie_word_embeddings"] = false;
  EXPECT_NE(error_of(tie).find("tie_word_embeddings is 1 at the top level but 0 in text_config"),
            std::string::npos) << error_of(tie);

  json no_text = {{"model_type", "qwen3_5"}};
  EXPECT_NE(error_of(no_text).find("needs a 'text_config'"), std::string::npos);

  json yarn = text_config();
  yarn["rope_parameters"]["rope_type"] = "yarn";
  EXPECT_NE(error_of(yarn).find("'yarn' is not supported"), std::string::npos);

  json mrope = text_config();
  mrope["rope_parameters"]["mrope_section"] = {2, 2, 2};
  EXPECT_NE(error_of(mrope).find("mrope_section sums to 6"), std::string::npos);
}

TEST(Config, PresetsRoundTripThroughJson) {
  for (const std::string& name : preset_names()) {
    const ModelConfig a = preset_config(name);
    const ModelConfig b = parse_model_config(model_config_to_json(a), name);
    EXPECT_EQ(a.hidden_size, b.hidden_size) << name;
    EXPECT_EQ(a.layer_kinds, b.layer_kinds) << name;
    EXPECT_EQ(a.mrope_section, b.mrope_section) << name;
    EXPECT_EQ(a.tie_word_embeddings, b.tie_word_embeddings) << name;
    EXPECT_EQ(a.linear_num_value_heads, b.linear_num_value_heads) << name;
  }
  // The released 0.8B shape (spec/qwen35.md).
  const ModelConfig c = preset_config("0.8b");
  EXPECT_EQ(c.rotary_dim(), 64);
  EXPECT_EQ(c.mrope_section, (std::vector<int>{11, 11, 10}));
  EXPECT_EQ(c.linear_conv_dim(), 6144);
}

}  // namespace
}  // namespace deltatune
