// deltatune grad MODEL --adapter DIR --input IN.safetensors --output OUT.safetensors (design.md,
// "The inspection interface"). IN: input_ids, labels int64 [T], optional cu_seqlens.
// OUT: loss float32 [1] (mean cross-entropy over all trained targets) and, for every LoRA factor,
// grad.<its PEFT tensor name> float32.
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

struct GradArgs {
  std::string model, adapter, input, output, precision = "float32";
  bool no_checkpointing = false;
};

template <class T>
int grad_to_file(const GradArgs& args) {
  const Model model = Model::load(args.model);
  const Batch batch = read_batch_file(args.input, true);
  LoraAdapter adapter = LoraAdapter::load_peft(args.adapter, model.config(), dtype_of<T>());
  LoraRun lora;
  lora.adapter = &adapter;
  int64_t targets = 0;
  for (int64_t t : shifted_targets(batch)) targets += t != -100;
  DT_CHECK(targets > 0, args.input, ": no position has a trained target (every label is -100, or every ",
           "sequence has one token)");
  Arena arena;
  adapter.zero_grad();
  const LossSum loss = model_loss_backward<T>(model, lora, batch, 1.0 / double(targets), !args.no_checkpointing, arena);

  std::vector<HostTensor> keep;
  std::vector<NamedTensor> out;
  HostTensor loss_t(DType::F32, {1});
  loss_t.ptr<float>()[0] = float(loss.sum / double(loss.targets));
  out.push_back({"loss", loss_t.view()});
  for (const LoraModule& m : adapter.modules())
    for (auto [g, factor] : {std::pair{&m.dA, 'A'}, std::pair{&m.dB, 'B'}}) {
      HostTensor t(DType::F32, g->view().shape_vector());
      convert_from<T>(g->template ptr<T>(), t.view().data, DType::F32, size_t(t.numel()));
      out.push_back({"grad." + LoraAdapter::peft_name(m.name, factor), t.view()});
      keep.push_back(std::move(t));
    }
  write_safetensors(args.output, out, {{"producer", "deltatune grad"}});
  std::fprintf(stderr, "loss %.6f over %lld targets; wrote %zu gradients to %s\n", loss.sum / double(loss.targets),
               (long long)loss.targets, keep.size(), args.output.c_str());
  return 0;
}

}  // namespace

Action add_grad(CLI::App& app) {
  auto* sub = app.add_subcommand("grad", "Loss and LoRA gradients of one labelled batch");
  auto args = std::make_shared<GradArgs>();
  sub->add_option("model", args->model, "Hugging Face checkpoint folder or qwen35 GGUF file")->required();
  sub->add_option("--adapter", args->adapter, "PEFT LoRA adapter folder")->required();
  sub->add_option("--input", args->input, "safetensors: input_ids, labels int64 [T], optional cu_seqlens")->required();
  sub->add_option("--output", args->output, "safetensors to write: loss and grad.<factor>")->required();
  sub->add_option("--precision", args->precision, "compute type: float32 or float64")
      ->check(CLI::IsMember({"float32", "float64"}));
  sub->add_flag("--no-checkpointing", args->no_checkpointing, "keep every layer's activations");
  return [args] { return args->precision == "float64" ? grad_to_file<double>(*args) : grad_to_file<float>(*args); };
}

}  // namespace deltatune::cli
