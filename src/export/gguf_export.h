// Exporting to llama.cpp: a Qwen3.5 checkpoint as a GGUF model (architecture "qwen35"), and a
// PEFT LoRA adapter as a GGUF LoRA adapter for that model (spec/llamacpp.md §3). Both follow the
// layout table of export/qwen35_gguf.h; the model takes its tokenizer from export/gguf_tokenizer.h.
#pragma once

#include <string>

#include "io/ggml_types.h"
#include "lora/adapter.h"
#include "model/weights.h"

namespace deltatune {

struct GgufModelExport {
  // F32, F16, BF16 or Q8_0 for the matrices; 1-D tensors and ssm_conv1d stay F32, and a Q8_0
  // matrix whose rows are not whole 32-value blocks falls back to F16, as llama.cpp's converter
  // does (conversion/base.py prepare_tensors).
  GgmlType outtype = GgmlType::F32;
  std::string tokenizer_dir;              // default: the model's folder
  const LoraAdapter* adapter = nullptr;   // merged into the weights (in float64) first
  std::string name;                       // general.name; default: the model folder's name
};

// model: loaded from a Hugging Face folder (its config.json is read again for what the converter
// takes from it verbatim), or from a GGUF (its settings written again, its tokenizer.* keys
// copied: re-typing a GGUF, or merging an adapter into it). Writes `out_path` atomically; weights
// are converted row block by row block, so memory stays near one block whatever the model's size.
void export_gguf_model(const Model& model, const std::string& out_path, const GgufModelExport& options);

struct GgufLoraExport {
  GgmlType type = GgmlType::F32;  // F32, F16 or BF16 (llama.cpp's export-lora refuses quantized factors)
  std::string name = "LoRA adapter";
};

// An adapter for `base` as llama.cpp loads it: general.type "adapter", adapter.type "lora",
// adapter.lora.alpha = scaling · r (llama.cpp scales by alpha / r, so rsLoRA's alpha / sqrt(r)
// survives), and `<base tensor>.lora_a` ne {in, r} / `.lora_b` ne {r, out} for every module: PEFT's
// A [r, in] and B [out, r] bytes, with B's rows or A's columns permuted wherever the converter
// permutes the base weight's rows or columns (value heads when Hv > Hk) — never a reshaped B·A.
void export_gguf_lora(const LoraAdapter& adapter, const Model& base, const std::string& out_path,
                      const GgufLoraExport& options);

}  // namespace deltatune
