#include "cli/commands.h"

#include <CLI/CLI.hpp>

#include "core/threads.h"

namespace deltatune::cli {

int run(int argc, char** argv) {
  CLI::App app{"deltatune: LoRA fine-tuning for Qwen3.5"};
  app.require_subcommand(1);
  int threads = 0;
  app.add_option("--threads", threads, "CPU threads (default: all cores)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  set_num_threads(threads);
  return 0;
}

}  // namespace deltatune::cli
