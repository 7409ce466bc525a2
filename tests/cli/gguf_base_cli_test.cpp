// Every command that takes a MODEL takes a qwen35 GGUF too (model/gguf_model.h): info, forward,
// grad, merge (into a GGUF), export-gguf (re-typing a GGUF), export-gguf-lora --base. The GGUF is
// export-gguf's f32 file of a fixture, so its results are the checkpoint's up to the float32
// rounding of the norms and A_log the file holds (tests/model/gguf_base_test.cpp): compared at
// 1e-5 of the logits (float32 compute, both sides) and 1e-4 of each gradient (float64 compute,
// per factor; this random fixture amplifies those roundings to ~2e-5 there).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "io/gguf.h"
#include "io/safetensors.h"
#include "test_util.h"

namespace deltatune {
namespace {

namespace fs = std::filesystem;
using testing_util::describe;
using testing_util::fixture_path;
using testing_util::relative_error;

const fs::path kSource = fs::path(DELTATUNE_FIXTURES).parent_path().parent_path();

struct Result {
  int exit_code;
  std::string output;
};

class GgufBaseCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("deltatune_gguf_cli_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    ASSERT_EQ(std::system(("python3 " + (kSource / "scripts/make_tiny_tokenizer.py").string() + " " + path("tok")).c_str()), 0);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  Result run(const std::string& args) const {
    const std::string log = path("log.txt");
    const int status = std::system((std::string(DELTATUNE_BINARY) + " --threads 2 " + args + " > " + log + " 2>&1").c_str());
    std::ifstream in(log);
    std::stringstream s;
    s << in.rdbuf();
    return {WEXITSTATUS(status), s.str()};
  }
  void ok(const std::string& args) const {
    const Result r = run(args);
    ASSERT_EQ(r.exit_code, 0) << args << "\n" << r.output;
  }
  // The model's f32 GGUF, written by export-gguf.
  std::string gguf_of(const std::string& variant) const {
    const std::string out = path(variant + ".gguf");
    ok("export-gguf " + fixture_path(variant) + " " + out + " --tokenizer " + path("tok"));
    return out;
  }
  void write_input(const std::string& variant, bool labels) const {
    const SafetensorsFile ref(fixture_path(variant) + "/grad_reference.safetensors");
    std::vector<NamedTensor> t = {{"input_ids", ref.tensor("input_ids")}, {"cu_seqlens", ref.tensor("cu_seqlens")}};
    if (labels) t.push_back({"labels", ref.tensor("labels")});
    write_safetensors(path("in.safetensors"), t);
  }
  static double compare(const std::string& a, const std::string& b, const std::string& name) {
    const SafetensorsFile fa(a), fb(b);
    const Tensor x = fa.tensor(name), y = fb.tensor(name);
    EXPECT_EQ(x.shape_vector(), y.shape_vector()) << name;
    const auto e = relative_error(static_cast<const float*>(x.data), static_cast<const float*>(y.data), size_t(y.numel()));
    return e.value;
  }
  fs::path dir_;
};

TEST_F(GgufBaseCli, InfoForwardGradOnAGguf) {
  const std::string variant = "cond_v2x_untied_f32_sharded", folder = fixture_path(variant);
  const std::string gguf = gguf_of(variant);
  const Result info = run("info " + gguf);
  ASSERT_EQ(info.exit_code, 0) << info.output;
  EXPECT_NE(info.output.find("qwen35 GGUF (matrices f32)"), std::string::npos) << info.output;
  EXPECT_NE(info.output.find("pattern      LLLA"), std::string::npos) << info.output;

  write_input(variant, false);
  for (const std::string& adapter : {std::string(), " --adapter " + folder + "/adapter"}) {
    ok("forward " + folder + adapter + " --input " + path("in.safetensors") + " --output " + path("hf.safetensors"));
    ok("forward " + gguf + adapter + " --input " + path("in.safetensors") + " --output " + path("gguf.safetensors"));
    const double e = compare(path("gguf.safetensors"), path("hf.safetensors"), "logits");
    testing_util::report("forward on the GGUF vs the checkpoint" + adapter.substr(0, 10), e);
    EXPECT_LE(e, 1e-5);
  }

  write_input(variant, true);
  const std::string grad_args = " --adapter " + folder + "/adapter --input " + path("in.safetensors") + " --precision float64";
  ok("grad " + folder + grad_args + " --output " + path("hf_grads.safetensors"));
  ok("grad " + gguf + grad_args + " --output " + path("gguf_grads.safetensors"));
  const SafetensorsFile grads(path("hf_grads.safetensors"));
  size_t n = 0;
  for (const SafetensorsEntry& e : grads.entries()) {
    const double err = compare(path("gguf_grads.safetensors"), path("hf_grads.safetensors"), e.name);
    EXPECT_LE(err, e.name == "loss" ? 1e-6 : 1e-4) << e.name;
    ++n;
  }
  EXPECT_GT(n, 20u);  // the adapter's names (model.language_model.*) came out the same
}

TEST_F(GgufBaseCli, MergeAndExportFromAGguf) {
  const std::string variant = "cond_v2x_untied_f32_sharded", folder = fixture_path(variant);
  const std::string gguf = gguf_of(variant);
  write_input(variant, false);
  // merge into a GGUF = the base GGUF with the adapter applied at run time.
  ok("merge " + gguf + " " + folder + "/adapter " + path("merged.gguf"));
  // In float64 the only difference left is the float32 rounding of each merged weight (as in
  // CliTest.MergeEqualsRuntimeAdapter): 1e-5.
  ok("forward " + path("merged.gguf") + " --precision float64 --input " + path("in.safetensors") + " --output " +
     path("merged.safetensors"));
  ok("forward " + gguf + " --precision float64 --adapter " + folder + "/adapter --input " + path("in.safetensors") +
     " --output " + path("runtime.safetensors"));
  const double e = compare(path("merged.safetensors"), path("runtime.safetensors"), "logits");
  testing_util::report("merged GGUF vs GGUF base + runtime adapter", e);
  EXPECT_LE(e, 1e-5);
  const Result bad = run("merge " + gguf + " " + folder + "/adapter " + path("merged_folder"));
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("name the output *.gguf"), std::string::npos) << bad.output;
  EXPECT_FALSE(fs::exists(path("merged_folder")));

  // The adapter for llama.cpp, from the GGUF base or from the checkpoint: the same file.
  ok("export-gguf-lora " + folder + "/adapter " + path("a_hf.gguf") + " --base " + folder);
  ok("export-gguf-lora " + folder + "/adapter " + path("a_gguf.gguf") + " --base " + gguf);
  std::ifstream a(path("a_hf.gguf"), std::ios::binary), b(path("a_gguf.gguf"), std::ios::binary);
  EXPECT_TRUE(std::equal(std::istreambuf_iterator<char>(a), {}, std::istreambuf_iterator<char>(b), {}));

  // Re-typing a GGUF: its tokenizer keys come along.
  ok("export-gguf " + gguf + " " + path("m_q8.gguf") + " --outtype q8_0");
  const GgufFile q8(path("m_q8.gguf")), f32(gguf);
  EXPECT_EQ(q8.get_key("general.file_type").get<uint32_t>(), 7u);
  EXPECT_TRUE(q8.get_key("tokenizer.ggml.tokens") == f32.get_key("tokenizer.ggml.tokens"));
  EXPECT_EQ(q8.get_key("general.name").get_string(), variant);
}

TEST_F(GgufBaseCli, BrokenGgufFailsNamingTheFile) {
  const std::string gguf = gguf_of("causal_tied_f32");
  // Cut the file short: the header still parses, the tensor data runs past the end.
  fs::resize_file(gguf, fs::file_size(gguf) / 2);
  const Result r = run("info " + gguf);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("deltatune: error: loading model " + gguf), std::string::npos) << r.output;
}

}  // namespace
}  // namespace deltatune
