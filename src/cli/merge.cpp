// deltatune merge MODEL ADAPTER OUT: a Hugging Face checkpoint with the adapter folded into the
// weights (src/lora/merge.h).
#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/commands.h"
#include "lora/merge.h"

namespace deltatune::cli {

Action add_merge(CLI::App& app) {
  auto* sub = app.add_subcommand("merge", "Fold a LoRA adapter into the base weights (a new checkpoint folder)");
  struct Args {
    std::string model, adapter, out;
  };
  auto args = std::make_shared<Args>();
  sub->add_option("model", args->model, "base Hugging Face checkpoint folder")->required();
  sub->add_option("adapter", args->adapter, "PEFT LoRA adapter folder")->required();
  sub->add_option("output", args->out, "folder to write the merged checkpoint into")->required();
  return [args] {
    const Model model = Model::load(args->model);
    const LoraAdapter adapter = LoraAdapter::load_peft(args->adapter, model.config(), DType::F64);
    merge_adapter_into_checkpoint(args->model, adapter, args->out);
    std::fprintf(stderr, "merged %zu modules into %s\n", adapter.modules().size(), args->out.c_str());
    return 0;
  };
}

}  // namespace deltatune::cli
