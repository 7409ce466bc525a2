// An inference session: one sequence fed in pieces — the prompt at once (chunked delta rule), then
// a token at a time — with each linear layer's conv and delta-rule state and each attention
// layer's KV cache carried between calls, so a new token costs one token's work, not the whole
// sequence's. The adapters (LoraRun) may change between calls without touching the base.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/arena.h"
#include "lora/lora_linear.h"
#include "model/qwen35.h"

namespace deltatune {

template <class T>
class InferenceSession {
 public:
  explicit InferenceSession(const Model& model);
  // Forgets every token fed so far.
  void reset();
  // Continues the sequence with `tokens`; returns the logits [V] of the last one.
  std::vector<T> feed(std::span<const int64_t> tokens, const LoraRun& lora);
  int64_t length() const { return state_.length; }

 private:
  const Model& model_;
  ModelState<T> state_;
  Arena arena_;
};

}  // namespace deltatune
