// Folding a LoRA adapter into the base weights: W' = W + scaling · B A for every adapted linear
// layer, written as a Hugging Face checkpoint with the base's dtypes, shard files and index, and
// every other file of the base folder (config, tokenizer, chat template) copied.
#pragma once

#include <string>

#include "lora/adapter.h"
#include "model/weights.h"

namespace deltatune {

// The merged weight of one module in `dtype` (the base weight's dtype), computed in float64.
HostTensor merged_weight(const Tensor& base, const LoraModule& module, double scaling);

// model_dir: the base checkpoint folder; out_dir: created (must not be the base folder).
void merge_adapter_into_checkpoint(const std::string& model_dir, const LoraAdapter& adapter, const std::string& out_dir);

}  // namespace deltatune
