// deltatune export-gguf-lora ADAPTER OUT.gguf --base MODEL [--outtype f32|f16|bf16]: a PEFT adapter
// as a llama.cpp GGUF LoRA adapter for the GGUF that export-gguf writes from MODEL
// (src/export/gguf_export.h); load it with llama.cpp's --lora.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/commands.h"
#include "export/gguf_export.h"

namespace deltatune::cli {

Action add_export_gguf_lora(CLI::App& app) {
  auto* sub = app.add_subcommand("export-gguf-lora", "Write a PEFT LoRA adapter as a llama.cpp GGUF adapter");
  struct Args {
    std::string adapter, out, base, outtype = "f32", name = "LoRA adapter";
  };
  auto args = std::make_shared<Args>();
  sub->add_option("adapter", args->adapter, "PEFT LoRA adapter folder")->required();
  sub->add_option("output", args->out, "GGUF file to write")->required();
  sub->add_option("--base", args->base, "the adapter's base model (Hugging Face checkpoint folder or GGUF file)")->required();
  sub->add_option("--outtype", args->outtype, "type of the LoRA factors")->check(CLI::IsMember({"f32", "f16", "bf16"}));
  sub->add_option("--name", args->name, "general.name");
  return [args] {
    const Model base = Model::load(args->base);
    const LoraAdapter adapter = LoraAdapter::load_peft(args->adapter, base.config(), DType::F64);
    GgufLoraExport options;
    options.type = *ggml_type_from_name(args->outtype);
    options.name = args->name;
    export_gguf_lora(adapter, base, args->out, options);
    std::fprintf(stderr, "wrote %s: %zu modules, alpha/r = %g\n", args->out.c_str(), adapter.modules().size(),
                 adapter.config().scaling());
    return 0;
  };
}

}  // namespace deltatune::cli
