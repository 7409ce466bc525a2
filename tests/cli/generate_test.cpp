// `deltatune generate` and `deltatune chat` through the binary, on a tiny random model with the real
// Qwen3 tokenizer: greedy output is deterministic, a zero adapter changes nothing, a real one
// changes the reply, and chat's /adapter switches the active adapter between requests without
// reloading the base (each reply equals what generate gives with the same adapter set).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/rng.h"
#include "lora/adapter.h"
#include "model/config.h"

namespace deltatune {
namespace {

namespace fs = std::filesystem;

struct ToolRun {
  int exit_code;
  std::string out, err;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class GenerateCliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("deltatune_generate_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    const std::string tokenizer = fs::path(DELTATUNE_QWEN3_TOKENIZER).parent_path().string();
    ASSERT_TRUE(fs::exists(tokenizer + "/tokenizer_config.json")) << tokenizer << ": run scripts/fetch-tokenizer.sh";
    ASSERT_EQ(run("init --preset tiny --seed 3 --tokenizer " + tokenizer + " " + path("model")).exit_code, 0);
    const ModelConfig config = load_model_config(path("model") + "/config.json");
    LoraConfig c;
    c.r = 4;
    c.alpha = 8;
    c.target_all_linear = true;
    // PEFT's init leaves B at zero: the adapter is the identity until trained.
    LoraAdapter::create(config, c, DType::F32, 1).save_peft(path("zero"), path("model"));
    // A trained-looking adapter: B random too, large enough to move greedy choices.
    LoraAdapter a = LoraAdapter::create(config, c, DType::F32, 2);
    Rng rng(4);
    for (LoraModule& m : a.modules())
      for (int64_t i = 0; i < m.B.numel(); ++i) m.B.ptr<float>()[i] = float(rng.uniform() * 2 - 1);
    a.save_peft(path("pirate"), path("model"));
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  static std::string path(const std::string& name) { return (dir_ / name).string(); }

  static ToolRun run(const std::string& args, const std::string& stdin_text = "") {
    const fs::path in = dir_ / "stdin.txt", out = dir_ / "stdout.txt", err = dir_ / "stderr.txt";
    std::ofstream(in) << stdin_text;
    const std::string cmd = std::string(DELTATUNE_BINARY) + " --threads 2 " + args + " < " + in.string() + " > " +
                            out.string() + " 2> " + err.string();
    const int status = std::system(cmd.c_str());
    return ToolRun{WEXITSTATUS(status), slurp(out), slurp(err)};
  }

  static std::string generate(const std::string& extra) {
    const ToolRun r = run("generate " + path("model") + " --prompt 'Ahoy, how be the sea?' --max-new-tokens 12 " + extra);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  }

  static inline fs::path dir_;
};

TEST_F(GenerateCliTest, GreedyIsDeterministicAndAZeroAdapterChangesNothing) {
  const std::string base = generate("");
  EXPECT_FALSE(base.empty());
  EXPECT_EQ(generate(""), base);
  EXPECT_EQ(generate("--adapter " + path("zero")), base);
  EXPECT_NE(generate("--adapter " + path("pirate")), base);
  // Scale 0 switches an adapter off.
  EXPECT_EQ(generate("--adapter " + path("pirate") + ":0"), base);
}

TEST_F(GenerateCliTest, SamplingFollowsTheSeed) {
  const std::string a = generate("--temperature 1.0 --top-k 50 --top-p 0.95 --seed 11");
  EXPECT_EQ(generate("--temperature 1.0 --top-k 50 --top-p 0.95 --seed 11"), a);
  EXPECT_NE(generate("--temperature 1.0 --top-k 50 --top-p 0.95 --seed 12"), a);
}

TEST_F(GenerateCliTest, ChatSwitchesAdaptersWithoutReloading) {
  const std::string base = generate(""), pirate = generate("--adapter pirate=" + path("pirate"));
  ASSERT_NE(base, pirate);
  // Each request starts a fresh conversation (/reset), so its reply equals generate's.
  const ToolRun r = run("chat " + path("model") + " --max-new-tokens 12 --adapter pirate=" + path("pirate"),
                    "/adapter off\nAhoy, how be the sea?\n/reset\n/adapter pirate\nAhoy, how be the sea?\n"
                    "/reset\n/adapter off\nAhoy, how be the sea?\n/reset\n/adapter parrot\n/quit\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, base + pirate + base);
  EXPECT_NE(r.err.find("adapter pirate active at scale 1"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("no adapter named parrot; loaded: pirate"), std::string::npos) << r.err;
}

TEST_F(GenerateCliTest, MissingAdapterIsAClearError) {
  const ToolRun r = run("generate " + path("model") + " --prompt hi --adapter " + path("nowhere"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("nowhere"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace deltatune
