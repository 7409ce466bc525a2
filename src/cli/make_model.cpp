// deltatune make-model: a random Qwen3.5 checkpoint of a named shape (for demos and benchmarks;
// never a substitute for real weights). deltatune make-input: token ids into a safetensors file.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "core/rng.h"
#include "io/safetensors.h"
#include "model/presets.h"
#include "model/weights.h"

namespace deltatune::cli {

namespace {

std::vector<int64_t> parse_int_list(const std::string& s, const std::string& what) {
  std::vector<int64_t> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    try {
      size_t used = 0;
      out.push_back(std::stoll(item, &used));
      DT_CHECK(used == item.size(), "");
    } catch (...) {
      fail(what, ": '", item, "' is not an integer");
    }
  }
  return out;
}

}  // namespace

Action add_make_model(CLI::App& app) {
  auto* sub = app.add_subcommand("make-model", "Write a random Qwen3.5 checkpoint of a named shape");
  struct Args {
    std::string preset = "tiny", dtype = "bf16", out;
    uint64_t seed = 0;
  };
  auto args = std::make_shared<Args>();
  sub->add_option("output", args->out, "folder to write (config.json + model.safetensors)")->required();
  sub->add_option("--preset", args->preset, "tiny, 0.8b, 2b, 4b or 9b");
  sub->add_option("--dtype", args->dtype, "weight dtype on disk")->check(CLI::IsMember({"f32", "bf16", "f16"}));
  sub->add_option("--seed", args->seed, "random seed");
  return [args] {
    const DType dtype = args->dtype == "f32" ? DType::F32 : args->dtype == "f16" ? DType::F16 : DType::BF16;
    const Model model = Model::random(preset_config(args->preset), dtype, args->seed);
    model.save(args->out);
    std::fprintf(stderr, "wrote a random '%s' Qwen3.5 (%s) to %s\n", args->preset.c_str(),
                 args->dtype.c_str(), args->out.c_str());
    return 0;
  };
}

Action add_make_input(CLI::App& app) {
  auto* sub = app.add_subcommand("make-input", "Write token ids (and cu_seqlens) for deltatune forward");
  struct Args {
    std::string tokens, cu_seqlens, output;
    int64_t random = 0, vocab = 0;
    uint64_t seed = 0;
  };
  auto args = std::make_shared<Args>();
  sub->add_option("--tokens", args->tokens, "comma-separated token ids");
  sub->add_option("--random", args->random, "instead: this many random ids below --vocab");
  sub->add_option("--vocab", args->vocab, "vocabulary size for --random");
  sub->add_option("--seed", args->seed, "seed for --random");
  sub->add_option("--cu-seqlens", args->cu_seqlens, "comma-separated sequence boundaries, 0 .. T");
  sub->add_option("--output", args->output, "safetensors file to write")->required();
  return [args] {
    std::vector<int64_t> ids;
    if (args->random > 0) {
      DT_CHECK(args->vocab > 0, "--random needs --vocab");
      Rng rng(args->seed);
      for (int64_t i = 0; i < args->random; ++i) ids.push_back(int64_t(rng.next_u64() % uint64_t(args->vocab)));
    } else {
      ids = parse_int_list(args->tokens, "--tokens");
    }
    DT_CHECK(!ids.empty(), "no tokens: give --tokens or --random");
    std::vector<NamedTensor> tensors;
    HostTensor id_tensor(DType::I64, {int64_t(ids.size())});
    std::copy(ids.begin(), ids.end(), id_tensor.ptr<int64_t>());
    tensors.push_back({"input_ids", id_tensor.view()});
    HostTensor cu_tensor;
    if (!args->cu_seqlens.empty()) {
      const std::vector<int64_t> cu = parse_int_list(args->cu_seqlens, "--cu-seqlens");
      cu_tensor = HostTensor(DType::I64, {int64_t(cu.size())});
      std::copy(cu.begin(), cu.end(), cu_tensor.ptr<int64_t>());
      tensors.push_back({"cu_seqlens", cu_tensor.view()});
    }
    write_safetensors(args->output, tensors);
    return 0;
  };
}

}  // namespace deltatune::cli
