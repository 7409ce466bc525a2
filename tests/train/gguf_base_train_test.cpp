// `deltatune train` with a GGUF as base_model: the same run (tiny random bf16 model, pre-tokenized
// counting rows, LoRA on every linear layer with dropout, 6 AdamW steps) from the checkpoint
// folder and from its bf16 GGUF. The bf16 matrices and the norms (bf16 w: 1 + w is exact in
// float32) come back exactly; only A_log (through float32 -exp) and rms_norm_eps (float32 in the
// file) move, by ~1e-7 relative, so the losses agree to 1e-4 (a wide margin), and a run from a
// checkpoint of the GGUF base's own values gives the GGUF run's losses and adapter bit for bit.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/rng.h"
#include "io/safetensors.h"
#include "model/presets.h"
#include "model/weights.h"
#include "test_util.h"

namespace deltatune {
namespace {

namespace fs = std::filesystem;

constexpr double kTolerance = 1e-4;

class GgufBaseTrain : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("deltatune_gguf_train_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    ModelConfig c = preset_config("tiny");
    c.vocab_size = 64;
    Model::random(c, DType::BF16, 3).save(path("model"));
    // A 64-token tokenizer for the export's tokenizer keys (training reads pre-tokenized rows).
    nlohmann::json vocab = nlohmann::json::object();
    for (int i = 0; i < 64; ++i) vocab[std::string(1, char('!' + i))] = i;
    const nlohmann::json tokenizer = {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", nlohmann::json::array()}}},
                                      {"added_tokens", nlohmann::json::array()}};
    fs::create_directories(path("tok"));
    std::ofstream(path("tok/tokenizer.json")) << tokenizer.dump();
    testing_util::write_counting_dataset(path("data.jsonl"), 30);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  int run(const std::string& args) const {
    const int status = std::system((std::string(DELTATUNE_BINARY) + " --threads 2 " + args + " > " + path("log.txt") + " 2>&1").c_str());
    return WEXITSTATUS(status);
  }
  std::string log() const {
    std::ifstream in(path("log.txt"));
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  void train(const std::string& base, const std::string& out) const {
    const std::string config = path(out + ".yaml");
    std::ofstream(config) << "base_model: " << base << "\n"
                          << "datasets:\n  - path: " << path("data.jsonl") << "\n"
                          << "lora_target_linear: true\nlora_r: 4\nlora_alpha: 8\nlora_dropout: 0.1\n"
                          << "sequence_len: 64\nsample_packing: true\nmicro_batch_size: 1\n"
                          << "gradient_accumulation_steps: 2\nlearning_rate: 0.01\nwarmup_steps: 2\nseed: 7\n"
                          << "val_set_size: 0\nmax_steps: 6\noutput_dir: " << path(out) << "\n";
    ASSERT_EQ(run("train " + config), 0) << log();
  }
  std::vector<double> losses(const std::string& out) const {
    std::ifstream m(path(out + "/metrics.jsonl"));
    std::string line;
    std::vector<double> l;
    while (std::getline(m, line)) {
      const auto j = nlohmann::json::parse(line);
      if (j.contains("loss")) l.push_back(j["loss"].get<double>());
    }
    return l;
  }
  fs::path dir_;
};

TEST_F(GgufBaseTrain, TrainsAsTheCheckpointDoes) {
  ASSERT_EQ(run("export-gguf " + path("model") + " " + path("m.gguf") + " --outtype bf16 --tokenizer " + path("tok")), 0)
      << log();
  train(path("model"), "from_folder");
  train(path("m.gguf"), "from_gguf");
  // The values the GGUF base holds, written as a checkpoint folder: the very same run.
  Model::load(path("m.gguf")).save(path("gguf_values"));
  train(path("gguf_values"), "from_gguf_values");

  const std::vector<double> a = losses("from_folder"), b = losses("from_gguf"), c = losses("from_gguf_values");
  ASSERT_EQ(a.size(), 6u);
  ASSERT_EQ(b.size(), a.size());
  double worst_loss = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    worst_loss = std::max(worst_loss, std::fabs(b[i] - a[i]) / a[i]);
    EXPECT_NEAR(b[i], a[i], kTolerance * a[i]) << "step " << i + 1;
  }
  EXPECT_EQ(b, c);
  testing_util::report("training losses, GGUF base vs checkpoint (worst step)", worst_loss);

  const SafetensorsFile fa(path("from_folder/adapter_model.safetensors")), fb(path("from_gguf/adapter_model.safetensors")),
      fc(path("from_gguf_values/adapter_model.safetensors"));
  ASSERT_EQ(fa.entries().size(), fb.entries().size());
  double worst = 0;
  for (const SafetensorsEntry& e : fb.entries()) {
    const Tensor x = fa.tensor(e.name), y = fb.tensor(e), z = fc.tensor(e.name);  // the same names: both CausalLM
    ASSERT_EQ(y.nbytes(), z.nbytes());
    EXPECT_EQ(std::memcmp(y.data, z.data, y.nbytes()), 0) << e.name;
    worst = std::max(worst, testing_util::relative_error(static_cast<const float*>(y.data),
                                                         static_cast<const float*>(x.data), size_t(x.numel())).value);
  }
  // Not asserted: AdamW's first steps move each element by about lr·sign(gradient), so elements
  // whose gradient is near zero turn the ~1e-7 differences into differences of ~1e-3 of the factor.
  testing_util::report("adapter after 6 steps, GGUF base vs checkpoint (worst factor)", worst);
}

}  // namespace
}  // namespace deltatune
