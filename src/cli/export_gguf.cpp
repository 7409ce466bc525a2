// deltatune export-gguf MODEL OUT.gguf [--outtype f32|f16|bf16|q8_0] [--adapter DIR]: a GGUF model
// llama.cpp loads as its Qwen3.5 architecture (src/export/gguf_export.h), optionally with a PEFT
// adapter merged into the weights first.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/commands.h"
#include "export/gguf_export.h"

namespace deltatune::cli {

Action add_export_gguf(CLI::App& app) {
  auto* sub = app.add_subcommand("export-gguf", "Write a model (Hugging Face folder or GGUF) as a llama.cpp GGUF model");
  struct Args {
    std::string model, out, outtype = "f32", adapter, tokenizer, name;
  };
  auto args = std::make_shared<Args>();
  sub->add_option("model", args->model, "Hugging Face checkpoint folder or qwen35 GGUF file")->required();
  sub->add_option("output", args->out, "GGUF file to write")->required();
  sub->add_option("--outtype", args->outtype, "type of the weight matrices (norms and conv1d stay f32)")
      ->check(CLI::IsMember({"f32", "f16", "bf16", "q8_0"}));
  sub->add_option("--adapter", args->adapter, "PEFT LoRA adapter folder to merge into the weights first");
  sub->add_option("--tokenizer", args->tokenizer, "folder with tokenizer.json (default: the model folder)");
  sub->add_option("--name", args->name, "general.name (default: the model folder's name)");
  return [args] {
    const Model model = Model::load(args->model);
    LoraAdapter adapter;
    GgufModelExport options;
    options.outtype = *ggml_type_from_name(args->outtype);
    options.tokenizer_dir = args->tokenizer;
    options.name = args->name;
    if (!args->adapter.empty()) {
      adapter = LoraAdapter::load_peft(args->adapter, model.config(), DType::F64);
      options.adapter = &adapter;
    }
    export_gguf_model(model, args->out, options);
    std::fprintf(stderr, "wrote %s (%s%s)\n", args->out.c_str(), args->outtype.c_str(),
                 args->adapter.empty() ? "" : ", adapter merged");
    return 0;
  };
}

}  // namespace deltatune::cli
