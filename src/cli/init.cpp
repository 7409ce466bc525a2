// deltatune init --preset tiny DIR --tokenizer TOKDIR: a small random Qwen3.5 checkpoint with a
// real tokenizer (the built-in default's base model). The vocabulary is the tokenizer's; the
// tokenizer files are copied beside the weights so the folder is a complete Hugging Face model.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "io/json_file.h"
#include "model/presets.h"
#include "model/weights.h"
#include "text/tokenizer.h"

namespace deltatune::cli {

namespace fs = std::filesystem;

Action add_init(CLI::App& app) {
  auto* sub = app.add_subcommand("init", "Write a small random Qwen3.5 checkpoint with a real tokenizer");
  struct Args {
    std::string preset = "tiny", tokenizer, out, dtype = "f32";
    uint64_t seed = 0;
  };
  auto args = std::make_shared<Args>();
  sub->add_option("output", args->out, "folder to write")->required();
  sub->add_option("--preset", args->preset, "model shape: tiny, 0.8b, 2b, 4b, 9b");
  sub->add_option("--tokenizer", args->tokenizer, "folder with tokenizer.json and tokenizer_config.json")->required();
  sub->add_option("--dtype", args->dtype, "weight dtype")->check(CLI::IsMember({"f32", "bf16"}));
  sub->add_option("--seed", args->seed, "random seed");
  return [args] {
    const Tokenizer tokenizer = Tokenizer::load(args->tokenizer);
    ModelConfig c = preset_config(args->preset);
    c.vocab_size = tokenizer.vocab_size();
    c.eos_token_ids.clear();
    const fs::path tc = fs::path(args->tokenizer) / "tokenizer_config.json";
    if (fs::exists(tc)) {
      const auto j = read_json_file(tc.string());
      if (j.contains("eos_token") && j["eos_token"].is_string())
        if (const auto id = tokenizer.token_to_id(j["eos_token"].get<std::string>())) c.eos_token_ids.push_back(*id);
    }
    const Model model = Model::random(c, args->dtype == "bf16" ? DType::BF16 : DType::F32, args->seed);
    model.save(args->out);
    for (const char* f : {"tokenizer.json", "tokenizer_config.json", "chat_template.jinja"}) {
      const fs::path src = fs::path(args->tokenizer) / f;
      if (fs::exists(src)) fs::copy_file(src, fs::path(args->out) / f, fs::copy_options::overwrite_existing);
    }
    std::fprintf(stderr, "wrote a random '%s' Qwen3.5 with a %d-token vocabulary and its tokenizer to %s\n",
                 args->preset.c_str(), tokenizer.vocab_size(), args->out.c_str());
    return 0;
  };
}

}  // namespace deltatune::cli
