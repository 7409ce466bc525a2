// deltatune merge MODEL ADAPTER OUT: a Hugging Face checkpoint with the adapter folded into the
// weights (src/lora/merge.h); for a GGUF base, a GGUF of the same matrix type (export-gguf with
// the adapter merged, src/export/gguf_export.h).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "export/gguf_export.h"
#include "io/gguf.h"
#include "lora/merge.h"
#include "model/gguf_model.h"

namespace deltatune::cli {

Action add_merge(CLI::App& app) {
  auto* sub = app.add_subcommand("merge", "Fold a LoRA adapter into the base weights (a new checkpoint folder)");
  struct Args {
    std::string model, adapter, out;
  };
  auto args = std::make_shared<Args>();
  sub->add_option("model", args->model, "base model: Hugging Face checkpoint folder or GGUF file")->required();
  sub->add_option("adapter", args->adapter, "PEFT LoRA adapter folder")->required();
  sub->add_option("output", args->out, "folder to write the merged checkpoint into (a .gguf file for a GGUF base)")
      ->required();
  return [args] {
    namespace fs = std::filesystem;
    if (fs::is_regular_file(args->model) && is_gguf_file(args->model))
      DT_CHECK(fs::path(args->out).extension() == ".gguf", "merge: the base ", args->model,
               " is a GGUF, so the merged model is a GGUF too: name the output *.gguf (got ", args->out, ")");
    const Model model = Model::load(args->model);
    const LoraAdapter adapter = LoraAdapter::load_peft(args->adapter, model.config(), DType::F64);
    if (const GgufFile* gguf = model.gguf()) {
      GgufModelExport options;
      options.outtype = gguf_model_matrix_type(*gguf);
      options.adapter = &adapter;
      export_gguf_model(model, args->out, options);
      std::fprintf(stderr, "merged %zu modules into %s (%s, as the base)\n", adapter.modules().size(),
                   args->out.c_str(), ggml_type_name(options.outtype));
      return 0;
    }
    merge_adapter_into_checkpoint(args->model, adapter, args->out);
    std::fprintf(stderr, "merged %zu modules into %s\n", adapter.modules().size(), args->out.c_str());
    return 0;
  };
}

}  // namespace deltatune::cli
