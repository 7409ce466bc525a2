// deltatune train CONFIG.yaml: the fine-tuning job (src/train/trainer.h).
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "train/trainer.h"

namespace deltatune::cli {

Action add_train(CLI::App& app) {
  auto* sub = app.add_subcommand("train", "Fine-tune with LoRA from an Axolotl-style YAML config (docs/config.md)");
  auto path = std::make_shared<std::string>();
  sub->add_option("config", *path, "the YAML config")->required();
  return [path] { return run_training(load_train_config(*path)); };
}

}  // namespace deltatune::cli
