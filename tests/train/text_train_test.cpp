// The text path end to end through the binary: a chat dataset in OpenAI messages format, the real
// Qwen3 tokenizer and its chat template on a tiny random model. `preprocess --show` marks what is
// trained (the assistant replies and their end-of-turn token, nothing of the prompts), writes the
// cache, and `train` reuses it and writes the adapter.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace deltatune {
namespace {

namespace fs = std::filesystem;

struct ToolRun {
  int exit_code;
  std::string output;
};

class TextTrainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("deltatune_text_train_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    const std::string tokenizer = fs::path(DELTATUNE_QWEN3_TOKENIZER).parent_path().string();
    ASSERT_TRUE(fs::exists(tokenizer + "/tokenizer_config.json")) << tokenizer << ": run scripts/fetch-tokenizer.sh";
    ASSERT_EQ(run("init --preset tiny --seed 5 --tokenizer " + tokenizer + " " + path("model")).exit_code, 0);
    std::ofstream data(path("chat.jsonl"));
    for (int i = 0; i < 12; ++i)
      data << R"({"messages": [{"role": "user", "content": "Question number )" << i
           << R"(?"}, {"role": "assistant", "content": "Arr, answer )" << i << R"( it be."}]})" << "\n";
    std::ofstream(path("config.yaml")) << "base_model: " << path("model") << "\n"
                                       << "datasets:\n  - path: " << path("chat.jsonl") << "\n    type: chat_template\n"
                                       << "sequence_len: 128\nsample_packing: true\nlora_target_linear: true\n"
                                       << "lora_r: 4\nlora_alpha: 8\nmax_steps: 2\nlearning_rate: 0.001\n"
                                       << "shuffle_merged_datasets: false\nsave_steps: 0\noutput_dir: " << path("out") << "\n";
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  ToolRun run(const std::string& args) const {
    const std::string log = path("log.txt");
    const int status = std::system((std::string(DELTATUNE_BINARY) + " --threads 2 " + args + " > " + log + " 2>&1").c_str());
    std::ifstream in(log);
    std::stringstream s;
    s << in.rdbuf();
    return {WEXITSTATUS(status), s.str()};
  }

  fs::path dir_;
};

TEST_F(TextTrainTest, PreprocessShowsTrainedTokensAndTrainReusesTheCache) {
  const ToolRun pre = run("preprocess " + path("config.yaml") + " --show 2");
  ASSERT_EQ(pre.exit_code, 0) << pre.output;
  // The first sample, exactly: the prompt untrained, the reply (after the template's empty think
  // block, which the model also learns to write) and its <|im_end|> trained, the newline not.
  EXPECT_NE(pre.output.find("<|im_start|>user\nQuestion number 0?<|im_end|>\n<|im_start|>assistant\n"
                            "⟦<think>\n\n</think>\n\nArr, answer 0 it be.<|im_end|>⟧\n"),
            std::string::npos)
      << pre.output;
  EXPECT_NE(pre.output.find("12 rows:"), std::string::npos) << pre.output;
  EXPECT_NE(pre.output.find("data: prepared and cached in"), std::string::npos) << pre.output;

  const ToolRun train = run("train " + path("config.yaml"));
  ASSERT_EQ(train.exit_code, 0) << train.output;
  EXPECT_NE(train.output.find("data: using the prepared cache"), std::string::npos) << train.output;
  EXPECT_TRUE(fs::exists(path("out") + "/adapter_model.safetensors"));
  EXPECT_TRUE(fs::exists(path("out") + "/adapter_config.json"));
}

}  // namespace
}  // namespace deltatune
