// Inference speed through the library's session API (src/infer/session.h) on a GGUF base, the
// deltatune side of scripts/bench_llama.sh (its peer: bench/llama_bench.mjs, llama.cpp through
// node-llama-cpp, on the same file):
//
//   infer_bench MODEL.gguf [--adapter PEFT_DIR] [--prompt 512] [--gen 128] [--threads N] [--int8 on|off]
//     prompt processing: one feed of `prompt` token ids (id_i = (i·7919 + 17) mod 150000, the
//     peer's too), timed; then generation: `gen` feeds of one token each, greedy (the argmax of
//     the last logits, starting from token 42 after the prompt), timed. With --adapter the PEFT
//     adapter is applied at run time (unmerged, scale 1). Prints one JSON line.
//
//   infer_bench --make-adapter MODEL.gguf OUT_DIR [--rank 16]
//     a random PEFT adapter on every linear layer (A as PEFT initialises it, B ~ N(0, 0.02²),
//     alpha = 2·rank), for the with-adapter runs; export it for llama.cpp with
//     `deltatune export-gguf-lora OUT_DIR adapter.gguf --base MODEL.gguf`.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "core/threads.h"
#include "infer/session.h"
#include "ops/cpu/q8_product.h"
#include "lora/adapter.h"
#include "model/weights.h"

namespace deltatune {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double peak_rss_gib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / (1024.0 * 1024.0);
}

int64_t argmax(const std::vector<float>& v) { return int64_t(std::max_element(v.begin(), v.end()) - v.begin()); }

int make_adapter(const std::string& model_path, const std::string& out, int rank) {
  const Model model = Model::load(model_path);
  LoraConfig config;
  config.r = rank;
  config.alpha = 2.0 * rank;
  config.target_all_linear = true;
  LoraAdapter adapter = LoraAdapter::create(model.config(), config, DType::F32, 1);
  Rng rng(2);
  for (LoraModule& m : adapter.modules())
    for (int64_t i = 0; i < m.B.numel(); ++i) m.B.ptr<float>()[i] = float(0.02 * rng.normal());
  adapter.save_peft(out, model_path);
  std::fprintf(stderr, "wrote %s: %zu modules, r = %d, %.2f M parameters\n", out.c_str(), adapter.modules().size(),
               rank, double(adapter.num_parameters()) / 1e6);
  return 0;
}

int run(const std::string& model_path, const std::string& adapter_path, int64_t prompt_tokens, int64_t gen_tokens,
        bool int8) {
  auto t0 = std::chrono::steady_clock::now();
  const Model model = Model::load(model_path);
  LoraAdapter adapter;
  LoraRun lora;
  if (!adapter_path.empty()) {
    adapter = LoraAdapter::load_peft(adapter_path, model.config(), DType::F32);
    lora.runtime.push_back({&adapter, 1.0});
  }
  const double load_s = seconds_since(t0);
  std::vector<int64_t> prompt(static_cast<size_t>(prompt_tokens));
  const int64_t vocab = std::min<int64_t>(150000, model.config().vocab_size);
  for (int64_t i = 0; i < prompt_tokens; ++i) prompt[size_t(i)] = (i * 7919 + 17) % vocab;

  InferenceSession<float> session(model);
  session.set_int8_activations(int8);
  t0 = std::chrono::steady_clock::now();
  std::vector<float> logits = session.feed(prompt, lora);
  const double prompt_s = seconds_since(t0);

  int64_t next = 42;
  t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < gen_tokens; ++i) {
    logits = session.feed(std::span<const int64_t>(&next, 1), lora);
    next = argmax(logits);
  }
  const double gen_s = seconds_since(t0);
  std::printf(
      "{\"engine\": \"deltatune\", \"model\": \"%s\", \"adapter\": \"%s\", \"threads\": %d, \"load_s\": %.3f, "
      "\"prompt_tokens\": %lld, \"prompt_s\": %.3f, \"prompt_tok_s\": %.2f, \"gen_tokens\": %lld, \"gen_s\": %.3f, "
      "\"gen_tok_s\": %.2f, \"last_token\": %lld, \"peak_rss_GiB\": %.2f, \"int8_q8_0\": \"%s\"}\n",
      model_path.c_str(), adapter_path.c_str(), num_threads(), load_s, (long long)prompt_tokens, prompt_s,
      double(prompt_tokens) / prompt_s, (long long)gen_tokens, gen_s, gen_tokens > 0 ? double(gen_tokens) / gen_s : 0.0, (long long)next,
      peak_rss_gib(), int8 ? q8_isa_name(q8_default_isa()) : "off");
  return 0;
}

}  // namespace
}  // namespace deltatune

int main(int argc, char** argv) {
  using namespace deltatune;
  std::vector<std::string> args(argv + 1, argv + argc);
  auto option = [&](const char* name, const std::string& fallback) {
    for (size_t i = 0; i + 1 < args.size(); ++i)
      if (args[i] == name) {
        std::string v = args[i + 1];
        args.erase(args.begin() + long(i), args.begin() + long(i) + 2);
        return v;
      }
    return fallback;
  };
  try {
    const int threads = std::stoi(option("--threads", "0"));
    set_num_threads(threads);
    if (!args.empty() && args[0] == "--make-adapter") {
      const int rank = std::stoi(option("--rank", "16"));
      DT_CHECK(args.size() == 3, "usage: infer_bench --make-adapter MODEL OUT_DIR [--rank R]");
      return make_adapter(args[1], args[2], rank);
    }
    const std::string adapter = option("--adapter", "");
    const int64_t prompt = std::stoll(option("--prompt", "512"));
    const int64_t gen = std::stoll(option("--gen", "128"));
    const std::string int8 = option("--int8", "on");
    DT_CHECK(int8 == "on" || int8 == "off", "--int8 takes on or off");
    DT_CHECK(args.size() == 1, "usage: infer_bench MODEL [--adapter DIR] [--prompt N] [--gen N] [--threads N] [--int8 on|off]");
    return run(args[0], adapter, prompt, gen, int8 == "on");
  } catch (const Error& e) {
    std::fprintf(stderr, "infer_bench: error: %s\n", e.what());
    return 1;
  }
}
