#include "cli/commands.h"

#include <CLI/CLI.hpp>
#include <map>

#include "core/threads.h"

namespace deltatune::cli {

int run(int argc, char** argv) {
  CLI::App app{"deltatune: LoRA fine-tuning for Qwen3.5"};
  app.require_subcommand(1);
  int threads = 0;
  app.add_option("--threads", threads, "CPU threads (default: all cores)");
  std::map<CLI::App*, Action> actions;
  for (auto add : {add_info, add_forward, add_grad, add_train, add_merge, add_export_gguf, add_export_gguf_lora,
                   add_tokenize, add_init, add_preprocess, add_generate, add_chat, add_make_model, add_make_input, add_render_chat}) {
    const size_t before = app.get_subcommands([](CLI::App*) { return true; }).size();
    Action action = add(app);
    auto subs = app.get_subcommands([](CLI::App*) { return true; });
    if (subs.size() > before) actions[subs.back()] = std::move(action);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  set_num_threads(threads);
  for (auto& [sub, action] : actions)
    if (sub->parsed()) return action();
  return 1;
}

}  // namespace deltatune::cli
