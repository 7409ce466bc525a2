// The command-line tool end to end: `deltatune forward` and `deltatune grad` on checkpoints written
// by transformers (both layouts) give transformers' logits and PEFT's gradients through files, as
// design.md's inspection interface promises; bad input gives a clear error and a non-zero exit.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "lora/adapter.h"
#include "text/tokenizer.h"
#include "test_util.h"

namespace deltatune {
namespace {

namespace fs = std::filesystem;
using testing_util::describe;
using testing_util::fixture_path;
using testing_util::relative_error;

struct Result {
  int exit_code;
  std::string output;
};

Result run_tool(const std::string& args) {
  const std::string log = (fs::temp_directory_path() / ("deltatune_cli_" + std::to_string(::getpid()) + ".log")).string();
  const int status = std::system((std::string(DELTATUNE_BINARY) + " --threads 2 " + args + " > " + log + " 2>&1").c_str());
  std::ifstream in(log);
  std::stringstream s;
  s << in.rdbuf();
  fs::remove(log);
  return {WEXITSTATUS(status), s.str()};
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("deltatune_cli_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // Copies the named int64 tensors of a reference file into an input file for the tool.
  void write_input(const SafetensorsFile& ref, const std::vector<std::pair<std::string, std::string>>& names,
                   const std::string& out) {
    std::vector<NamedTensor> tensors;
    for (const auto& [from, to] : names) tensors.push_back({to, ref.tensor(from)});
    write_safetensors(out, tensors);
  }
  fs::path dir_;
};

TEST_F(CliTest, ForwardGivesTransformersLogitsForBothLayouts) {
  for (const std::string variant : {"causal_v2x_untied_bf16", "cond_v2x_untied_f32_sharded"}) {
    const std::string model = fixture_path(variant);
    const SafetensorsFile ref(model + "/reference.safetensors");
    write_input(ref, {{"pack.input_ids", "input_ids"}, {"pack.cu_seqlens", "cu_seqlens"}}, path("in.safetensors"));
    const Result r = run_tool("forward " + model + " --input " + path("in.safetensors") + " --output " + path("out.safetensors"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const SafetensorsFile out(path("out.safetensors"));
    const Tensor logits = out.tensor("logits");
    const Tensor expected = ref.tensor("pack.logits");
    ASSERT_EQ(logits.dtype, DType::F32);
    ASSERT_EQ(logits.shape_vector(), expected.shape_vector());
    const auto e = relative_error(static_cast<const float*>(logits.data), static_cast<const double*>(expected.data),
                                 size_t(logits.numel()));
    EXPECT_LE(e.value, 1e-4) << variant << ": " << describe(e);
  }
}

TEST_F(CliTest, GradGivesPeftGradients) {
  const std::string model = fixture_path("causal_tied_f32");
  const SafetensorsFile ref(model + "/grad_reference.safetensors");
  write_input(ref, {{"input_ids", "input_ids"}, {"cu_seqlens", "cu_seqlens"}, {"labels", "labels"}}, path("in.safetensors"));
  const Result r = run_tool("grad " + model + " --adapter " + model + "/adapter --input " + path("in.safetensors") +
                            " --output " + path("grads.safetensors") + " --precision float64");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const SafetensorsFile out(path("grads.safetensors"));
  const double loss = static_cast<const float*>(out.tensor("loss").data)[0];
  const double ref_loss = static_cast<const double*>(ref.tensor("loss").data)[0];
  EXPECT_NEAR(loss, ref_loss, 1e-6 * ref_loss);  // float32 output of a float64 computation
  size_t grads = 0;
  for (const SafetensorsEntry& e : ref.entries()) {
    if (e.name.rfind("grad.", 0) != 0) continue;
    const Tensor got = out.tensor(e.name);
    const Tensor want = ref.tensor(e);
    const auto err = relative_error(static_cast<const float*>(got.data), static_cast<const double*>(want.data),
                                   size_t(want.numel()));
    EXPECT_LE(err.value, 1e-6) << e.name << ": " << describe(err);
    ++grads;
  }
  EXPECT_EQ(grads, out.entries().size() - 1);  // every gradient written was checked
}

TEST_F(CliTest, InfoDescribesACheckpoint) {
  const Result r = run_tool("info " + fixture_path("cond_tied_bf16"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Qwen3_5ForConditionalGeneration"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("pattern      LLLA"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("BF16"), std::string::npos) << r.output;
}

TEST_F(CliTest, BadInputsFailWithAClearMessage) {
  // An input without input_ids.
  HostTensor wrong(DType::I64, {3});
  write_safetensors(path("bad.safetensors"), {{"tokens", wrong.view()}});
  Result r = run_tool("forward " + fixture_path("causal_tied_f32") + " --input " + path("bad.safetensors") +
                      " --output " + path("out.safetensors"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("input_ids"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(path("out.safetensors")));
  // A token id outside the vocabulary.
  HostTensor ids(DType::I64, {2});
  ids.ptr<int64_t>()[0] = 1;
  ids.ptr<int64_t>()[1] = 100000;
  write_safetensors(path("ids.safetensors"), {{"input_ids", ids.view()}});
  r = run_tool("forward " + fixture_path("causal_tied_f32") + " --input " + path("ids.safetensors") + " --output " +
               path("out.safetensors"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("token id 100000 at position 1 is outside the vocabulary"), std::string::npos) << r.output;
  // Not a model folder.
  r = run_tool("info " + path("nothing-here"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("nothing-here"), std::string::npos) << r.output;
}

// deltatune tokenize: one JSON array of ids a line, the library's ids; --jsonl reads JSON strings,
// so a text may hold newlines.
TEST_F(CliTest, TokenizePrintsTheIdsOfEachLine) {
  const std::string tokenizer = fixture_path("tokenizer/tiny");
  const Tokenizer t = Tokenizer::load(tokenizer);
  auto ids_line = [&](const std::string& text) {
    std::string s = "[";
    for (int32_t id : t.encode(text)) s += (s.size() > 1 ? ", " : "") + std::to_string(id);
    return s + "]\n";
  };
  std::ofstream(path("plain.txt")) << "the word is cafe\xCC\x81\n<s>a  [LS] b\n";
  Result r = run_tool("tokenize " + tokenizer + " --file " + path("plain.txt"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, ids_line("the word is cafe\xCC\x81") + ids_line("<s>a  [LS] b"));
  r = run_tool("tokenize " + tokenizer + " < " + path("plain.txt"));
  EXPECT_EQ(r.output, ids_line("the word is cafe\xCC\x81") + ids_line("<s>a  [LS] b"));

  std::ofstream(path("texts.jsonl")) << "\"the\\nword\"\n\"\"\n";
  r = run_tool("tokenize " + tokenizer + " --jsonl --file " + path("texts.jsonl"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, ids_line("the\nword") + "[]\n");

  std::ofstream(path("bad.jsonl")) << "\"fine\"\nnot json\n";
  r = run_tool("tokenize " + tokenizer + " --jsonl --file " + path("bad.jsonl"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("bad.jsonl:2: not JSON"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace deltatune

namespace deltatune {
namespace {

// merge: same files and shard layout as the base, and its logits are PEFT's logits with the
// adapter: computed in float64 from the merged checkpoint, the only difference left is the one
// float32 rounding of each merged weight (2^-24 relative), so 1e-5 of the logits' scale.
TEST_F(CliTest, MergeEqualsRuntimeAdapter) {
  const std::string model = fixture_path("cond_v2x_untied_f32_sharded");
  const Result r = run_tool("merge " + model + " " + model + "/adapter " + path("merged"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // Every shard and every other file of the base (the fixture's reference files are not shards).
  for (const auto& e : fs::directory_iterator(model)) {
    const std::string name = e.path().filename().string();
    if (e.is_regular_file() && (e.path().extension() != ".safetensors" || name.rfind("model-", 0) == 0)) {
      EXPECT_TRUE(fs::exists(path("merged/" + name))) << name;
    }
  }
  const SafetensorsFile ref(model + "/grad_reference.safetensors");  // PEFT's logits with the adapter
  write_input(ref, {{"input_ids", "input_ids"}, {"cu_seqlens", "cu_seqlens"}}, path("in.safetensors"));
  ASSERT_EQ(run_tool("forward " + path("merged") + " --precision float64 --input " + path("in.safetensors") +
                     " --output " + path("merged.safetensors")).exit_code, 0);
  const SafetensorsFile merged(path("merged.safetensors"));
  const Tensor got = merged.tensor("logits");
  const Tensor want = ref.tensor("logits");
  const auto e = relative_error(static_cast<const float*>(got.data), static_cast<const double*>(want.data), size_t(want.numel()));
  testing_util::report("merged checkpoint vs PEFT logits with the adapter", e.value);
  EXPECT_LE(e.value, 1e-5) << describe(e);
  // Merging into the base folder itself is refused.
  EXPECT_NE(run_tool("merge " + model + " " + model + "/adapter " + model).exit_code, 0);
}

}  // namespace
}  // namespace deltatune
