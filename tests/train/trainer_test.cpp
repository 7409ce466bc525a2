// `deltatune train` end to end through the binary, on a tiny random model and pre-tokenized rows:
// outputs, bit-identical resume, Ctrl-C, non-finite steps, bad data.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/rng.h"
#include "test_util.h"
#include "io/json_file.h"
#include "io/safetensors.h"
#include "model/presets.h"
#include "model/weights.h"

namespace deltatune {
namespace {

namespace fs = std::filesystem;

struct ToolRun {
  int exit_code;
  std::string output;
};

class TrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("deltatune_trainer_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    ModelConfig c = preset_config("tiny");
    c.vocab_size = 64;
    Model::random(c, DType::BF16, 3).save(path("model"));
    testing_util::write_counting_dataset(path("data.jsonl"), 40);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  std::string write_config(const std::string& name, const std::string& extra) {
    std::ofstream f(path(name));
    f << "base_model: " << path("model") << "\n"
      << "datasets:\n  - path: " << path("data.jsonl") << "\n"
      << "lora_target_linear: true\nlora_r: 4\nlora_alpha: 8\nlora_dropout: 0.1\n"
      << "sequence_len: 64\nsample_packing: true\nmicro_batch_size: 1\ngradient_accumulation_steps: 2\n"
      << "learning_rate: 0.01\nlr_scheduler: cosine\nwarmup_steps: 2\nval_set_size: 4\nseed: 7\n"
      << "device: cpu\n"  // these tests pin the CPU path's outputs; tests/cuda trains on the GPU
      << extra;
    return path(name);
  }

  ToolRun train(const std::string& config) {
    const std::string log = path("log.txt");
    const int status = std::system((std::string(DELTATUNE_BINARY) + " --threads 2 train " + config + " > " + log + " 2>&1").c_str());
    std::ifstream in(log);
    std::stringstream s;
    s << in.rdbuf();
    return {WEXITSTATUS(status), s.str()};
  }

  static std::string bytes_of(const std::string& file) {
    std::ifstream in(file, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  fs::path dir_;
};

TEST_F(TrainerTest, TrainsAndWritesEverything) {
  const ToolRun r = train(write_config("a.yaml", "output_dir: " + path("out") + "\nmax_steps: 12\nsave_steps: 5\neval_steps: 6\n"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* f : {"adapter_config.json", "adapter_model.safetensors", "metrics.jsonl", "loss.svg",
                        "checkpoint-5/adapter_model.safetensors", "checkpoint-10/optimizer.safetensors",
                        "checkpoint-12/trainer_state.json"})
    EXPECT_TRUE(fs::exists(path("out/") + f)) << f << "\n" << r.output;
  const auto cfg = read_json_file(path("out/adapter_config.json"));
  EXPECT_EQ(cfg["base_model_name_or_path"], path("model"));
  EXPECT_EQ(cfg["r"], 4);
  EXPECT_NE(r.output.find("trainable parameters"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("eval at step 6"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("packing efficiency"), std::string::npos) << r.output;
  // Loss goes down on this learnable data.
  std::ifstream m(path("out/metrics.jsonl"));
  std::string line;
  double first = -1, last = -1;
  while (std::getline(m, line)) {
    const auto j = nlohmann::json::parse(line);
    if (!j.contains("loss")) continue;
    if (first < 0) first = j["loss"].get<double>();
    last = j["loss"].get<double>();
  }
  EXPECT_LT(last, first - 0.5) << "first " << first << " last " << last;
}

TEST_F(TrainerTest, TokenizedCacheIsReusedAndMissedWhenDataChanges) {
  const std::string cfg = write_config("a.yaml", "output_dir: " + path("out") + "\nmax_steps: 1\n");
  ToolRun r = train(cfg);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("data: prepared and cached in"), std::string::npos) << r.output;
  r = train(cfg);
  EXPECT_NE(r.output.find("data: using the prepared cache"), std::string::npos) << r.output;
  {
    std::ofstream data(path("data.jsonl"), std::ios::app);
    data << "{\"input_ids\": [10, 11, 12, 13, 14, 15]}\n";
  }
  r = train(cfg);
  EXPECT_NE(r.output.find("data: prepared and cached in"), std::string::npos) << r.output;
}

TEST_F(TrainerTest, ResumeIsBitIdentical) {
  // 2N steps straight, against N steps + resume from checkpoint-N + N more.
  const ToolRun straight = train(write_config("a.yaml", "output_dir: " + path("straight") + "\nmax_steps: 8\nsave_steps: 4\n"));
  ASSERT_EQ(straight.exit_code, 0) << straight.output;
  fs::create_directories(path("resumed"));
  fs::copy(path("straight/checkpoint-4"), path("resumed/checkpoint-4"), fs::copy_options::recursive);
  const ToolRun resumed = train(write_config("b.yaml", "output_dir: " + path("resumed") +
                                                       "\nmax_steps: 8\nsave_steps: 4\nresume_from_checkpoint: true\n"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resuming from"), std::string::npos);
  const std::string a = bytes_of(path("straight/adapter_model.safetensors"));
  const std::string b = bytes_of(path("resumed/adapter_model.safetensors"));
  ASSERT_FALSE(a.empty());
  EXPECT_TRUE(a == b) << "the resumed adapter differs from the straight run's";
  EXPECT_TRUE(bytes_of(path("straight/checkpoint-8/optimizer.safetensors")) ==
              bytes_of(path("resumed/checkpoint-8/optimizer.safetensors")));
}

TEST_F(TrainerTest, CtrlCSavesACheckpointAndSaysHowToResume) {
  const std::string config = write_config("a.yaml", "output_dir: " + path("out") + "\nmax_steps: 100000\n");
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::string log = path("log.txt");
    freopen(log.c_str(), "w", stderr);
    execl(DELTATUNE_BINARY, DELTATUNE_BINARY, "--threads", "1", "train", config.c_str(), (char*)nullptr);
    _exit(127);
  }
  // Wait until training has started (the first metrics line), then interrupt.
  for (int i = 0; i < 600 && !fs::exists(path("out/metrics.jsonl")); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  kill(pid, SIGINT);
  int status = 0;
  waitpid(pid, &status, 0);
  const std::string log = bytes_of(path("log.txt"));
  ASSERT_TRUE(WIFEXITED(status)) << log;
  EXPECT_EQ(WEXITSTATUS(status), 130) << log;
  EXPECT_NE(log.find("stopped by Ctrl-C"), std::string::npos) << log;
  EXPECT_NE(log.find("resume_from_checkpoint"), std::string::npos) << log;
  bool found = false;
  for (const auto& e : fs::directory_iterator(path("out")))
    found = found || e.path().filename().string().rfind("checkpoint-", 0) == 0;
  EXPECT_TRUE(found) << log;
}

TEST_F(TrainerTest, NonFiniteStepsAreSkippedThenAbort) {
  const ToolRun r = train(write_config("a.yaml", "output_dir: " + path("out") +
                                                 "\nmax_steps: 50\nmax_grad_norm: 0\nmax_bad_steps: 3\nlearning_rate: 1.0e+30\n"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("non-finite"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("aborting: 3 steps had non-finite"), std::string::npos) << r.output;
}

TEST_F(TrainerTest, BadRowsNameFileAndLine) {
  {
    std::ofstream data(path("data.jsonl"), std::ios::app);
    data << "{\"input_ids\": [1, 2, \"three\"]}\n";
  }
  ToolRun r = train(write_config("a.yaml", "output_dir: " + path("out") + "\nmax_steps: 1\n"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find(path("data.jsonl") + ":41: 'input_ids' must hold integers"), std::string::npos) << r.output;
  r = train(write_config("b.yaml", "output_dir: " + path("out") + "\nmax_steps: 1\nskip_bad_rows: true\n"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("skipped: 1 malformed"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace deltatune
