// A frozen linear layer with an optional LoRA adapter on it (PEFT's forward):
//   y = x Wᵀ + s · (dropout(x) Aᵀ) Bᵀ,   s = alpha / r (or alpha / sqrt(r))
// and its backward:
//   u = dropout(x) Aᵀ [rows, r];  dB += s · dyᵀ u;  du = s · dy B;  dA += duᵀ dropout(x);
//   dx = dy W + dropout'(du A)
// Dropout masks come from a counter-based hash of (seed, module, element), so the backward (and
// a checkpointed recompute) regenerates exactly the forward's mask without storing it.
#pragma once

#include <cstdint>
#include <vector>

#include "core/arena.h"
#include "core/tensor.h"
#include "lora/adapter.h"

namespace deltatune {

// An adapter applied at inference, unmerged, with a user scale (1 = as trained).
struct RuntimeAdapter {
  const LoraAdapter* adapter;
  double scale = 1.0;
};

// What one forward/backward pass needs to know about adapters: the one being trained (gradients,
// dropout) and any number of frozen ones applied on top, each with its scale. Switching the active
// set between requests changes nothing in the base model.
struct LoraRun {
  LoraAdapter* adapter = nullptr;       // trained (or applied at scale 1); null: none
  bool training = false;                // dropout only while training
  uint64_t dropout_seed = 0;            // changes every step
  std::vector<RuntimeAdapter> runtime;  // applied, never trained

  LoraModule* module(int layer, LinearKind kind) const {
    return adapter ? adapter->find(layer, kind) : nullptr;
  }
};

// y [rows, out] (row stride ldy, default out) overwritten: the frozen weight, the trained adapter's
// module for (layer, kind) if any, and every runtime adapter's.
template <class T>
void lora_linear_forward(const T* x, int64_t rows, const Tensor& weight, const LoraRun& run, int layer,
                         LinearKind kind, T* y, Arena& arena, int64_t ldy = -1);

// dx [rows, in] overwritten (or added to when accumulate_dx), through the frozen weight and every
// adapter path; the trained module's dA, dB accumulated. dy has row stride lddy (default out).
template <class T>
void lora_linear_backward(const T* x, int64_t rows, const Tensor& weight, const LoraRun& run, int layer,
                          LinearKind kind, const T* dy, T* dx, bool accumulate_dx, Arena& arena,
                          int64_t lddy = -1);

}  // namespace deltatune
