// The Axolotl-style config: known keys parsed, unknown keys warned about with the nearest known
// one, unbuilt features refused, invalid values refused before any model is loaded.
#include <gtest/gtest.h>

#include "core/error.h"
#include "train/train_config.h"

namespace deltatune {
namespace {

const char* kMinimal = R"(
base_model: ./model
datasets:
  - path: data.jsonl
    type: chat_template
    roles_to_train: [assistant]
lora_target_linear: true
)";

std::string error_of(const std::string& yaml) {
  try {
    parse_train_config(yaml, "cfg.yaml");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(TrainConfig, AxolotlKeysAndDefaults) {
  const TrainConfig t = parse_train_config(std::string(kMinimal) + R"(
lora_r: 16
lora_alpha: 32
lora_dropout: 0.05
peft_use_rslora: true
micro_batch_size: 2
gradient_accumulation_steps: 4
num_epochs: 3
learning_rate: 0.0002
lr_scheduler: linear
warmup_ratio: 0.1
optimizer: adamw_torch_fused
sample_packing: true
sequence_len: 4096
val_set_size: 0.05
save_steps: 50
save_total_limit: 2
bf16: auto
wandb_project:
)", "cfg.yaml");
  EXPECT_EQ(t.base_model, "./model");
  EXPECT_EQ(t.tokenizer_config, "./model");  // defaults to the base
  EXPECT_EQ(t.chat_template, "tokenizer_default");
  ASSERT_EQ(t.datasets.size(), 1u);
  EXPECT_EQ(t.datasets[0].type, "chat_template");
  EXPECT_EQ(t.datasets[0].train_on_eos, "turn");
  EXPECT_EQ(t.lora_r, 16);
  EXPECT_TRUE(t.peft_use_rslora);
  EXPECT_EQ(t.gradient_accumulation_steps, 4);
  EXPECT_EQ(t.lr_scheduler, "linear");
  EXPECT_TRUE(t.sample_packing);
  EXPECT_EQ(t.sequence_len, 4096);
  EXPECT_DOUBLE_EQ(t.val_set_size, 0.05);
}

TEST(TrainConfig, SharegptMapsToChatTemplateWithFromValue) {
  const TrainConfig t = parse_train_config(R"(
base_model: m
lora_target_modules: [q_proj, in_proj_qkv]
datasets:
  - path: d.json
    type: sharegpt
    roles:
      assistant: [gpt, model]
      user: [human]
)", "cfg.yaml");
  EXPECT_EQ(t.datasets[0].type, "chat_template");
  EXPECT_EQ(t.datasets[0].field_messages, "conversations");
  EXPECT_EQ(t.datasets[0].message_property_role, "from");
  EXPECT_EQ(t.datasets[0].message_property_content, "value");
  ASSERT_EQ(t.datasets[0].roles.size(), 2u);
  EXPECT_EQ(t.datasets[0].roles[0].second, (std::vector<std::string>{"gpt", "model"}));
}

TEST(TrainConfig, UnknownKeyWarnsWithNearest) {
  ::testing::internal::CaptureStderr();
  parse_train_config(std::string(kMinimal) + "learnig_rate: 0.001\n", "cfg.yaml");
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("'learnig_rate' is not a setting deltatune knows (did you mean 'learning_rate'?)"),
            std::string::npos) << err;
  EXPECT_NE(err.find("cfg.yaml:8"), std::string::npos) << err;  // the line of the key
}

TEST(TrainConfig, NoOpKeysAreNotedNotSilent) {
  ::testing::internal::CaptureStderr();
  parse_train_config(std::string(kMinimal) + "flash_attention: true\n", "cfg.yaml");
  EXPECT_NE(::testing::internal::GetCapturedStderr().find("'flash_attention': not used"), std::string::npos);
}

TEST(TrainConfig, Errors) {
  EXPECT_NE(error_of(std::string(kMinimal) + "load_in_4bit: true\n").find("QLoRA (4-bit base weights) is not built yet"),
            std::string::npos);
  EXPECT_EQ(error_of(std::string(kMinimal) + "load_in_4bit: false\n"), "");
  EXPECT_NE(error_of(std::string(kMinimal) + "adapter: qlora\n").find("adapter 'qlora' is not supported yet"), std::string::npos);
  EXPECT_NE(error_of(std::string(kMinimal) + "lora_r: 0\n").find("lora_r must be positive"), std::string::npos);
  EXPECT_NE(error_of(std::string(kMinimal) + "learning_rate: fast\n").find("'learning_rate' must be a number"),
            std::string::npos);
  EXPECT_NE(error_of(std::string(kMinimal) + "lr_scheduler: polynomial\n").find("lr_scheduler 'polynomial' is not supported"),
            std::string::npos);
  EXPECT_NE(error_of(std::string(kMinimal) + "optimizer: sgd\n").find("optimizer 'sgd' is not supported"), std::string::npos);
  EXPECT_NE(error_of("datasets: []\nlora_target_linear: true\n").find("'base_model' is required"), std::string::npos);
  EXPECT_NE(error_of("base_model: m\nlora_target_linear: true\ndatasets:\n  - type: alpaca\n").find("needs a 'path'"),
            std::string::npos);
  EXPECT_NE(error_of("base_model: m\nlora_target_linear: true\ndatasets:\n  - path: x\n    type: dpo\n").find("'dpo' is not supported"),
            std::string::npos);
  EXPECT_NE(error_of("base_model: m\ndatasets:\n  - path: x\n").find("set lora_target_modules or lora_target_linear"),
            std::string::npos);
  EXPECT_NE(error_of("base_model: [unclosed\n").find("invalid YAML"), std::string::npos);
  EXPECT_NE(error_of(std::string(kMinimal) + "device: tpu\n").find("device must be auto, cpu or cuda"),
            std::string::npos);
  EXPECT_NE(error_of(std::string(kMinimal) + "checkpointing_kept_layers: -1\n")
                .find("cfg.yaml:8: 'checkpointing_kept_layers' must be a number of layers >= 0, got -1"),
            std::string::npos);
  EXPECT_EQ(parse_train_config(std::string(kMinimal) + "checkpointing_kept_layers: 6\n", "cfg.yaml")
                .checkpointing_kept_layers,
            6);
#if DELTATUNE_CUDA
  EXPECT_EQ(parse_train_config(std::string(kMinimal) + "device: cuda\n", "t.yaml").device, "cuda");
#else
  EXPECT_NE(error_of(std::string(kMinimal) + "device: cuda\n").find("has no CUDA"), std::string::npos);
#endif
}

}  // namespace
}  // namespace deltatune
