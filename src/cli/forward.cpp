// deltatune forward MODEL --input IN.safetensors --output OUT.safetensors (design.md, "The
// inspection interface"). IN: input_ids int64 [T], optional cu_seqlens int64 [n+1].
// OUT: logits float32 [T, vocab]. --adapter DIR applies a PEFT LoRA adapter.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "cli/batch_file.h"
#include "cli/commands.h"
#include "core/arena.h"
#include "io/safetensors.h"
#include "lora/adapter.h"
#include "model/qwen35.h"

namespace deltatune::cli {

namespace {

struct ForwardArgs {
  std::string model, input, output, adapter, precision = "float32";
  int show = 0;
};

template <class T>
void forward_to_file(const Model& model, const Batch& batch, const ForwardArgs& args) {
  const int64_t V = model.config().vocab_size, tokens = batch.tokens();
  std::vector<T> logits(static_cast<size_t>(tokens * V));
  LoraAdapter adapter;
  LoraRun lora;
  if (!args.adapter.empty()) {
    adapter = LoraAdapter::load_peft(args.adapter, model.config(), dtype_of<T>());
    lora.adapter = &adapter;
  }
  Arena arena;
  model_forward_logits(model, lora, batch, logits.data(), arena);
  HostTensor out(DType::F32, {tokens, V});
  convert_from<T>(logits.data(), out.view().data, DType::F32, logits.size());
  write_safetensors(args.output, {{"logits", out.view()}}, {{"producer", "deltatune forward"}});
  for (int64_t t = 0; t < std::min<int64_t>(args.show, tokens); ++t) {
    const float* row = out.ptr<float>() + t * V;
    int64_t best = 0;
    for (int64_t v = 1; v < V; ++v)
      if (row[v] > row[best]) best = v;
    std::printf("token %lld: id %lld -> argmax %lld (logit %.4f)\n", (long long)t,
                (long long)batch.input_ids[size_t(t)], (long long)best, row[best]);
  }
}

int run_forward(const ForwardArgs& args) {
  const Model model = Model::load(args.model);
  const Batch batch = read_batch_file(args.input, false);
  if (args.precision == "float64") forward_to_file<double>(model, batch, args);
  else forward_to_file<float>(model, batch, args);
  std::fprintf(stderr, "wrote logits [%lld, %lld] to %s\n", (long long)batch.tokens(),
               (long long)model.config().vocab_size, args.output.c_str());
  return 0;
}

}  // namespace

Action add_forward(CLI::App& app) {
  auto* sub = app.add_subcommand("forward", "Run the model over token ids and write the logits");
  auto args = std::make_shared<ForwardArgs>();
  sub->add_option("model", args->model, "Hugging Face checkpoint folder or qwen35 GGUF file")->required();
  sub->add_option("--input", args->input, "safetensors with input_ids int64 [T], optional cu_seqlens")->required();
  sub->add_option("--output", args->output, "safetensors to write: logits float32 [T, vocab]")->required();
  sub->add_option("--adapter", args->adapter, "PEFT LoRA adapter folder to apply");
  sub->add_option("--precision", args->precision, "compute type: float32 or float64")
      ->check(CLI::IsMember({"float32", "float64"}));
  sub->add_option("--show", args->show, "print the argmax of the first N positions");
  return [args] { return run_forward(*args); };
}

}  // namespace deltatune::cli
