// An inference session: one sequence fed in pieces — the prompt at once (chunked delta rule), then
// a token at a time — with each linear layer's conv and delta-rule state and each attention
// layer's KV cache carried between calls, so a new token costs one token's work, not the whole
// sequence's. The adapters (LoraRun) may change between calls without touching the base.
#pragma once

#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

#include "core/arena.h"
#include "lora/lora_linear.h"
#include "model/qwen35.h"
#include "ops/matmul.h"

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
  // Whether feed multiplies q8_0 weights by int8-quantized activations (Int8ActivationScope in
  // ops/matmul.h; prompt-sized feeds, more than 4 tokens): on by default for float sessions, off
  // (and ignored) for float64 ones, which stay the reference. Other weight types are unaffected.
  void set_int8_activations(bool on) { set_int8_mode(on ? Int8Activations::On : Int8Activations::Off); }
  bool int8_activations() const { return int8_mode_ == Int8Activations::On; }
  // Off, On, or Emulated (the float reference of On: ops/matmul.h).
  void set_int8_mode(Int8Activations mode) { int8_mode_ = std::is_same_v<T, float> ? mode : Int8Activations::Off; }

 private:
  const Model& model_;
  ModelState<T> state_;
  Arena arena_;
  Int8Activations int8_mode_ = std::is_same_v<T, float> ? Int8Activations::On : Int8Activations::Off;
};

}  // namespace deltatune
