// Subcommands of the deltatune tool. Each registers its options on the CLI11 app and returns the
// function that runs it once the command line is parsed.
#pragma once

#include <functional>

namespace CLI {
class App;
}

namespace deltatune::cli {

using Action = std::function<int()>;

Action add_info(CLI::App& app);
Action add_forward(CLI::App& app);
Action add_grad(CLI::App& app);
Action add_train(CLI::App& app);
Action add_merge(CLI::App& app);
Action add_export_gguf(CLI::App& app);
Action add_export_gguf_lora(CLI::App& app);
Action add_make_model(CLI::App& app);
Action add_make_input(CLI::App& app);
Action add_tokenize(CLI::App& app);
Action add_init(CLI::App& app);
Action add_preprocess(CLI::App& app);
Action add_generate(CLI::App& app);
Action add_chat(CLI::App& app);
Action add_render_chat(CLI::App& app);

int run(int argc, char** argv);

}  // namespace deltatune::cli
