// Text generation from token ids: the prompt through an inference session (infer/session.h) in one
// call, then one token at a time until a stop token or the length limit, each token streamed to a
// callback.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "infer/sampler.h"
#include "lora/lora_linear.h"
#include "model/weights.h"

namespace deltatune {

struct GenerateOptions {
  int64_t max_new_tokens = 64;
  std::vector<int64_t> stop_ids;  // generation ends after emitting one of these
  SamplingOptions sampling;
};

// Returns the generated ids (the stop token included when one ended it). on_token, when set, is
// called with each id as it is produced.
std::vector<int64_t> generate(const Model& model, const LoraRun& lora, const std::vector<int64_t>& prompt,
                              const GenerateOptions& options, const std::function<void(int64_t)>& on_token = {});

}  // namespace deltatune
