// deltatune against llama.cpp itself: the GGUF files `deltatune export-gguf` and
// `deltatune export-gguf-lora` write are loaded by llama.cpp v0.5.0 (node-llama-cpp 3.22.1,
// installed by scripts/fetch-llama.sh, driven by tests/llamacpp/llama_logits.mjs), and its logits
// for a token sequence are compared with deltatune's float64 forward on the Hugging Face
// checkpoint — for value heads = key heads and = 2 × key heads, both checkpoint layouts, f32 and
// bf16 sources, with and without a PEFT adapter.
//
// Tolerances (relative to the largest |logit|, test_util relative_error):
// - f32 GGUF: llama.cpp computes in float32 with its own summation order, against an exact
//   (float64) reference. How far float32 rounding moves a model's logits depends on the model:
//   deltatune's own float32 forward is off by 6.5e-7 to 5.2e-6 on these inputs (and by up to 1.8e-5
//   on others, for causal_tied_f32 with its adapter). So the check is 4 times deltatune's float32
//   error on the same input, and at least 1e-5 (measured for llama.cpp: 5.1e-7 to 9.3e-6). The caches are f32 and
//   flash attention off (llama_logits.mjs); llama.cpp's default f16 K/V cache alone costs ~6e-5.
// - bf16 / f16 / q8_0 GGUF: the weights are rounded, and ggml's CPU products round the
//   activations to the weight's dot-product type too (bf16, f16, q8_0). With ε the format's
//   relative step (bf16 2^-8, f16 2^-11, q8_0 1/254 of a block's largest value) these random tiny
//   models move their logits by about 15-25 ε (measured: f16 7.2e-3, bf16 8.5e-2, q8_0 9.9e-2;
//   deltatune's own float64 logits move 5.8e-2 when every matrix is rounded to bf16, so most of it
//   is the weights' rounding), so the check is 40 ε, and the same argmax wherever the exact top
//   two differ by more than twice that error.
//
// Skipped when llama.cpp is not installed, unless DELTATUNE_REQUIRE_LLAMA=1 (scripts/test.sh sets
// it, so CI cannot skip silently).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/arena.h"
#include "core/rng.h"
#include "io/gguf.h"
#include "lora/adapter.h"
#include "model/qwen35.h"
#include "test_util.h"

namespace deltatune {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using testing_util::describe;
using testing_util::fixture_path;
using testing_util::relative_error;
using testing_util::report;

constexpr double kF32Tolerance = 1e-5;  // at least; see f32_tolerance
constexpr double kLowPrecisionAmplification = 40;
constexpr int64_t kVocab = 256;  // every fixture's

const fs::path kSource = fs::path(DELTATUNE_FIXTURES).parent_path().parent_path();

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

int shell(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

class LlamaCppTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const bool installed = fs::exists(npm_prefix() / "node_modules/node-llama-cpp/package.json") &&
                           shell("node --version > /dev/null 2>&1") == 0;
    if (!installed) {
      const char* require = std::getenv("DELTATUNE_REQUIRE_LLAMA");
      if (require && std::string(require) == "1") FAIL() << "llama.cpp is not installed: run scripts/fetch-llama.sh";
      GTEST_SKIP() << "llama.cpp is not installed: run scripts/fetch-llama.sh";
    }
    const char* test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    dir_ = fs::temp_directory_path() / str_cat("deltatune_llamacpp_", test, "_", ::getpid());
    fs::create_directories(dir_);
    ASSERT_EQ(shell("python3 " + (kSource / "scripts/make_tiny_tokenizer.py").string() + " " + path("tokenizer")), 0);
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  static fs::path npm_prefix() { return kSource / ".cache/npm"; }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  void tool(const std::string& args) {
    const std::string log = path("tool.log");
    const int code = shell(std::string(DELTATUNE_BINARY) + " --threads 2 " + args + " > " + log + " 2>&1");
    ASSERT_EQ(code, 0) << args << "\n" << read_file(log);
  }
  std::string export_model(const std::string& variant, const std::string& outtype = "f32", const std::string& extra = "") {
    const std::string out = path(variant + "." + outtype + (extra.empty() ? "" : ".merged") + ".gguf");
    tool("export-gguf " + fixture_path(variant) + " " + out + " --outtype " + outtype + " --tokenizer " +
         path("tokenizer") + " " + extra);
    return out;
  }

  struct Run {
    Run(std::vector<int64_t> t, std::string l = "", double s = 1.0) : tokens(std::move(t)), lora(std::move(l)), scale(s) {}
    std::vector<int64_t> tokens;
    std::string lora;  // adapter GGUF, or none
    double scale;
  };
  struct ModelJob {
    std::string path;
    std::vector<Run> runs;
    std::vector<std::string> tokenize = {};
  };
  struct Result {
    std::vector<std::vector<std::vector<float>>> logits;  // [model][run]: [tokens, vocab]
    json info;                                            // llama_logits.mjs's summary
  };
  // One llama.cpp process: each model loaded in turn, each run in a fresh context.
  Result llama(const std::vector<ModelJob>& models) {
    json job = {{"vocab", kVocab}, {"threads", 1}, {"models", json::array()}};
    for (size_t m = 0; m < models.size(); ++m) {
      json spec = {{"path", models[m].path}, {"runs", json::array()}, {"tokenize", models[m].tokenize}};
      for (size_t i = 0; i < models[m].runs.size(); ++i) {
        const Run& run = models[m].runs[i];
        json r = {{"tokens", run.tokens}, {"out", path(str_cat("model", m, ".run", i, ".f32"))}};
        if (!run.lora.empty()) r["lora"] = json::array({{{"path", run.lora}, {"scale", run.scale}}});
        spec["runs"].push_back(r);
      }
      job["models"].push_back(spec);
    }
    std::ofstream(path("job.json")) << job.dump();
    const std::string script = (kSource / "tests/llamacpp/llama_logits.mjs").string();
    const int code = shell("node " + script + " " + npm_prefix().string() + " " + path("job.json") + " > " +
                           path("llama.out") + " 2> " + path("llama.err"));
    Result r;
    EXPECT_EQ(code, 0) << "llama.cpp failed:\n" << read_file(path("llama.err"));
    if (code != 0) return r;
    std::string last, line;
    std::istringstream out(read_file(path("llama.out")));
    while (std::getline(out, line))
      if (!line.empty()) last = line;
    r.info = json::parse(last);
    for (size_t m = 0; m < models.size(); ++m) {
      r.logits.emplace_back();
      for (size_t i = 0; i < models[m].runs.size(); ++i) {
        const std::string bytes = read_file(path(str_cat("model", m, ".run", i, ".f32")));
        std::vector<float> logits(bytes.size() / 4);
        std::memcpy(logits.data(), bytes.data(), bytes.size());
        EXPECT_EQ(int64_t(logits.size()), int64_t(models[m].runs[i].tokens.size()) * kVocab);
        r.logits.back().push_back(std::move(logits));
      }
    }
    return r;
  }

  fs::path dir_;
};

// deltatune's logits in T (float64: the reference), optionally with the fixture's PEFT adapter.
template <class T = double>
std::vector<T> deltatune_logits(const std::string& variant, const std::vector<int64_t>& tokens, bool adapter) {
  const Model model = Model::load(fixture_path(variant));
  LoraAdapter lora;
  LoraRun run;
  if (adapter) {
    lora = LoraAdapter::load_peft(fixture_path(variant + "/adapter"), model.config(), dtype_of<T>());
    run.adapter = &lora;
  }
  std::vector<T> logits(tokens.size() * size_t(kVocab));
  Arena arena;
  model_forward_logits(model, run, make_batch(tokens), logits.data(), arena);
  return logits;
}

// 4 × how far deltatune's own float32 forward is from float64 here, and at least kF32Tolerance.
double f32_tolerance(const std::string& variant, const std::vector<int64_t>& tokens, bool adapter,
                     const std::vector<double>& exact) {
  const std::vector<float> f32 = deltatune_logits<float>(variant, tokens, adapter);
  const double own = relative_error(f32.data(), exact.data(), exact.size()).value;
  report(variant + (adapter ? " + adapter" : "") + ": deltatune float32 vs float64", own);
  return std::max(kF32Tolerance, 4 * own);
}

// A fixed sequence over the whole vocabulary, special tokens included.
std::vector<int64_t> test_tokens() {
  Rng rng(2024);
  std::vector<int64_t> ids = {254, 117, 115, 101, 114, 10, 255};
  while (ids.size() < 24) ids.push_back(int64_t(rng.next_u64() % uint64_t(kVocab)));
  return ids;
}

// The largest difference of next-token probabilities (softmax of each row).
double max_probability_difference(const std::vector<float>& got, const std::vector<double>& want) {
  double worst = 0;
  for (size_t row = 0; row < want.size() / kVocab; ++row) {
    const float* g = got.data() + row * kVocab;
    const double* w = want.data() + row * kVocab;
    double gm = -INFINITY, wm = -INFINITY, gs = 0, ws = 0;
    for (int64_t v = 0; v < kVocab; ++v) gm = std::max(gm, double(g[v])), wm = std::max(wm, w[v]);
    for (int64_t v = 0; v < kVocab; ++v) gs += std::exp(g[v] - gm), ws += std::exp(w[v] - wm);
    for (int64_t v = 0; v < kVocab; ++v)
      worst = std::max(worst, std::fabs(std::exp(g[v] - gm) / gs - std::exp(w[v] - wm) / ws));
  }
  return worst;
}

// The same argmax at every position whose exact top two logits differ by more than `margin`.
void expect_same_argmax(const std::vector<float>& got, const std::vector<double>& want, double margin,
                        const std::string& what) {
  for (size_t row = 0; row < want.size() / kVocab; ++row) {
    const float* g = got.data() + row * kVocab;
    const double* w = want.data() + row * kVocab;
    std::vector<double> sorted(w, w + kVocab);
    std::sort(sorted.rbegin(), sorted.rend());
    if (sorted[0] - sorted[1] <= margin) continue;
    EXPECT_EQ(std::max_element(g, g + kVocab) - g, std::max_element(w, w + kVocab) - w) << what << " position " << row;
  }
}

void expect_close(const std::vector<float>& got, const std::vector<double>& want, double tolerance, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  const auto e = relative_error(got.data(), want.data(), want.size());
  report(what + ": logits", e.value);
  report(what + ": probabilities (max abs)", max_probability_difference(got, want));
  EXPECT_LE(e.value, tolerance) << what << ": " << describe(e);
}

// The base model: every fixture (Hv = Hk and Hv = 2 Hk; CausalLM and ConditionalGeneration
// layouts; tied and untied; f32 and bf16 checkpoints; sharded).
TEST_F(LlamaCppTest, ExportedModelGivesDeltatuneLogits) {
  const std::vector<int64_t> tokens = test_tokens();
  const std::vector<std::string> variants = {"causal_tied_f32", "causal_v2x_untied_bf16", "cond_tied_bf16",
                                             "cond_v2x_untied_f32_sharded"};
  std::vector<ModelJob> jobs;
  for (const std::string& v : variants) jobs.push_back({export_model(v), {Run(tokens)}});
  const Result r = llama(jobs);
  ASSERT_EQ(r.logits.size(), variants.size());
  EXPECT_EQ(r.info["llama_cpp"], "v0.5.0");
  for (size_t i = 0; i < variants.size(); ++i) {
    const std::vector<double> want = deltatune_logits(variants[i], tokens, false);
    expect_close(r.logits[i][0], want, f32_tolerance(variants[i], tokens, false, want), variants[i] + " f32 GGUF");
  }
}

// bf16, f16 and q8_0 files load (with the converter's F32 and F16-fallback tensors) and stay close.
TEST_F(LlamaCppTest, LowPrecisionOutTypesStayClose) {
  const std::vector<int64_t> tokens = test_tokens();
  const std::string variant = "cond_v2x_untied_f32_sharded";
  const std::vector<std::string> outtypes = {"bf16", "f16", "q8_0"};
  const std::vector<double> steps = {std::ldexp(1.0, -8), std::ldexp(1.0, -11), 1.0 / 254};
  std::vector<ModelJob> jobs;
  for (const std::string& outtype : outtypes) {
    const std::string file = export_model(variant, outtype);
    const GgufFile gguf(file);
    EXPECT_EQ(gguf.get_tensor("blk.0.ssm_conv1d.weight").type, GgmlType::F32);
    EXPECT_EQ(gguf.get_tensor("blk.0.ssm_a").type, GgmlType::F32);
    EXPECT_EQ(gguf.get_tensor("output_norm.weight").type, GgmlType::F32);
    // Rows of 64 (value_dim) are whole q8_0 blocks; rows of 48 (hidden) fall back to f16.
    const GgmlType wide = *ggml_type_from_name(outtype);
    EXPECT_EQ(gguf.get_tensor("blk.0.ssm_out.weight").type, wide);
    EXPECT_EQ(gguf.get_tensor("blk.0.attn_qkv.weight").type, outtype == "q8_0" ? GgmlType::F16 : wide);
    jobs.push_back({file, {Run(tokens)}});
  }
  const Result r = llama(jobs);
  ASSERT_EQ(r.logits.size(), outtypes.size());
  const std::vector<double> want = deltatune_logits(variant, tokens, false);
  const double largest = testing_util::max_abs(want);
  for (size_t i = 0; i < outtypes.size(); ++i) {
    const double tolerance = kLowPrecisionAmplification * steps[i];
    expect_close(r.logits[i][0], want, tolerance, variant + " " + outtypes[i] + " GGUF");
    expect_same_argmax(r.logits[i][0], want, 2 * tolerance * largest, outtypes[i]);
  }
}

// The PEFT adapters of the fixtures (every linear layer, GDN in_proj_qkv/z/a/b and out_proj
// included; rsLoRA in the v2x one) as llama.cpp LoRA adapters over the exported base: llama.cpp
// gives deltatune's logits with the adapter, the same as the merged export, and the base's again
// when the adapter is switched off; bf16 factors load and stay close.
TEST_F(LlamaCppTest, LoraAdapterGivesPeftLogits) {
  const std::vector<int64_t> tokens = test_tokens();
  const std::vector<std::string> variants = {"causal_tied_f32", "cond_v2x_untied_f32_sharded"};
  std::vector<ModelJob> jobs;
  for (const std::string& v : variants) {
    const std::string adapter = path(v + ".lora.gguf"), adapter_bf16 = path(v + ".lora.bf16.gguf");
    tool("export-gguf-lora " + fixture_path(v + "/adapter") + " " + adapter + " --base " + fixture_path(v));
    tool("export-gguf-lora " + fixture_path(v + "/adapter") + " " + adapter_bf16 + " --base " + fixture_path(v) +
         " --outtype bf16");
    jobs.push_back({export_model(v), {Run(tokens), Run(tokens, adapter), Run(tokens, adapter, 0.0), Run(tokens),
                                      Run(tokens, adapter_bf16)}});
    jobs.push_back({export_model(v, "f32", "--adapter " + fixture_path(v + "/adapter")), {Run(tokens)}});
  }
  const Result r = llama(jobs);
  ASSERT_EQ(r.logits.size(), 2 * variants.size());
  for (size_t i = 0; i < variants.size(); ++i) {
    const std::string& v = variants[i];
    const auto& base = r.logits[2 * i];
    const auto& merged = r.logits[2 * i + 1];
    const std::vector<double> with = deltatune_logits(v, tokens, true);
    const std::vector<double> without = deltatune_logits(v, tokens, false);
    const double tolerance_with = f32_tolerance(v, tokens, true, with);
    expect_close(base[1], with, tolerance_with, v + " base + LoRA GGUF");
    expect_close(merged[0], with, tolerance_with, v + " merged GGUF");
    expect_close(base[0], without, f32_tolerance(v, tokens, false, without), v + " base GGUF");
    // bf16 factors (step 2^-8): these random adapters are strong (they move the logits by 1.4-1.7),
    // and deltatune's own float64 logits move by 0.12 with causal_tied_f32's factors rounded to
    // bf16; llama.cpp measured 0.12 and 0.096.
    expect_close(base[4], with, kLowPrecisionAmplification * std::ldexp(1.0, -8), v + " base + bf16 LoRA GGUF");
    // Scale 0 and a context without the adapter are the base again, bit for bit.
    EXPECT_EQ(base[2], base[0]) << v << ": adapter at scale 0";
    EXPECT_EQ(base[3], base[0]) << v << ": adapter switched off";
    // The adapter matters far beyond the tolerance (else the comparisons above prove nothing).
    const auto effect = relative_error(with.data(), without.data(), with.size());
    report(v + ": adapter's effect on the logits", effect.value);
    EXPECT_GE(effect.value, 100 * kF32Tolerance);
  }
}

// The tokenizer keys: llama.cpp tokenizes with the exported vocabulary, merges and added tokens
// as the BPE rules say, and reads the chat template back.
TEST_F(LlamaCppTest, TokenizerWorksInLlamaCpp) {
  const Result r = llama({{export_model("causal_tied_f32"), {}, {"the cat", " the<think>x<|im_end|>"}}});
  ASSERT_EQ(r.info["models"].size(), 1u);
  const json& m = r.info["models"][0];
  // "the cat" -> "the", " cat" (Qwen's split) -> t + he (merge "h e"), Ġ + c + at (merge "a t").
  EXPECT_EQ(m["tokenize"][0], json({116, 244, 32, 99, 251}));
  // " the" merges to Ġthe (Ġ t -> Ġt, h e -> he, Ġt he -> Ġthe); added tokens stay whole.
  EXPECT_EQ(m["tokenize"][1], json({245, 252, 120, 255}));
  EXPECT_NE(m["chat_template"].get<std::string>().find("<|im_start|>"), std::string::npos);
}

}  // namespace
}  // namespace deltatune
