// A frozen linear layer with an optional LoRA adapter on it (PEFT's forward):
//   y = x Wᵀ + s · (dropout(x) Aᵀ) Bᵀ,   s = alpha / r (or alpha / sqrt(r))
// and its backward:
//   u = dropout(x) Aᵀ [rows, r];  dB += s · dyᵀ u;  du = s · dy B;  dA += duᵀ dropout(x);
//   dx = dy W + dropout'(du A)
// Dropout masks come from a counter-based hash of (seed, module, element), so the backward (and
// a checkpointed recompute) regenerates exactly the forward's mask without storing it.
#pragma once

#include <cstdint>

#include "core/arena.h"
#include "core/tensor.h"
#include "lora/adapter.h"

namespace deltatune {

// What one forward/backward pass needs to know about the adapter.
struct LoraRun {
  LoraAdapter* adapter = nullptr;  // null: no adapter
  bool training = false;           // dropout only while training
  uint64_t dropout_seed = 0;       // changes every step

  LoraModule* module(int layer, LinearKind kind) const {
    return adapter ? adapter->find(layer, kind) : nullptr;
  }
};

// y [rows, out] (row stride ldy, default out) overwritten.
template <class T>
void lora_linear_forward(const T* x, int64_t rows, const Tensor& weight, const LoraModule* lora,
                         const LoraRun& run, T* y, Arena& arena, int64_t ldy = -1);

// dx [rows, in] overwritten (or added to when accumulate_dx); the module's dA, dB accumulated.
// dy has row stride lddy (default out).
template <class T>
void lora_linear_backward(const T* x, int64_t rows, const Tensor& weight, LoraModule* lora,
                          const LoraRun& run, const T* dy, T* dx, bool accumulate_dx, Arena& arena,
                          int64_t lddy = -1);

}  // namespace deltatune
