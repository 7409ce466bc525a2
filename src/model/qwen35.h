// The Qwen3.5 text model, layer by layer (design.md, "One training step"):
//   x = embed(ids); per layer: x += mixer(norm1(x)); x += mlp(norm2(x)); h = norm(x); logits = h W^T
// The mixer is Gated DeltaNet or gated full attention, by the config's layer kinds. The backward
// walks the layers in reverse; with checkpointing each layer is recomputed from its saved input
// just before its backward, so only one layer's activations live at a time.
#pragma once

#include <vector>

#include "core/arena.h"
#include "lora/lora_linear.h"
#include "model/batch.h"
#include "model/weights.h"

namespace deltatune {

// hidden: [T, D], the final-normed hidden states.
template <class T>
void model_forward_hidden(const Model& model, const LoraRun& lora, const Batch& batch, T* hidden, Arena& arena);

// logits: [T, V].
template <class T>
void model_forward_logits(const Model& model, const LoraRun& lora, const Batch& batch, T* logits, Arena& arena);

// HF labels -> what each position predicts: targets[t] = labels[t + 1] inside the same sequence,
// -100 at each sequence's last token and where the label is -100.
std::vector<int64_t> shifted_targets(const Batch& batch);

struct LossSum {
  double sum = 0;       // sum over targets of -log p(target)
  int64_t targets = 0;  // number of trained targets
};

// The loss of a labelled batch, no gradients.
template <class T>
LossSum model_loss(const Model& model, const LoraRun& lora, const Batch& batch, Arena& arena);

// The loss and the gradient of grad_scale * loss_sum with respect to every LoRA factor, added
// into the adapter's dA / dB. Pass grad_scale = 1 / (targets of the whole step) for the mean.
template <class T>
LossSum model_loss_backward(const Model& model, const LoraRun& lora, const Batch& batch, double grad_scale,
                            bool checkpointing, Arena& arena);

}  // namespace deltatune
