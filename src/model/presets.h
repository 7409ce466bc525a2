// Model shapes by name: "tiny" (for demos and tests) and the released Qwen3.5 text backbones
// (spec/qwen35.md: 0.8B, 2B, 4B, 9B), for random models in benchmarks.
#pragma once

#include <string>
#include <vector>

#include "model/config.h"

namespace deltatune {

ModelConfig preset_config(const std::string& name);
std::vector<std::string> preset_names();

// Rough peak bytes of the forward's activations for `tokens` tokens in `scalar_bytes`-byte floats:
// the largest layer's buffers plus the residual stream and logits.
size_t forward_activation_bytes(const ModelConfig& c, int64_t tokens, size_t scalar_bytes);

}  // namespace deltatune
