// The Qwen3.5 text model, layer by layer (design.md, "One training step"):
//   x = embed(ids); per layer: x += mixer(norm1(x)); x += mlp(norm2(x)); h = norm(x); logits = h W^T
// The mixer is Gated DeltaNet or gated full attention, by the config's layer kinds. The backward
// walks the layers in reverse; with checkpointing each layer is recomputed from its saved input
// just before its backward, so only one layer's activations live at a time.
#pragma once

#include <vector>

#include "core/arena.h"
#include "lora/lora_linear.h"
#include "model/attention.h"
#include "model/batch.h"
#include "model/gated_deltanet.h"
#include "model/weights.h"

namespace deltatune {

// What an inference session carries between calls for one sequence: each linear layer's conv and
// delta-rule state, each attention layer's KV cache, and how many tokens came before.
template <class T>
struct ModelState {
  std::vector<GatedDeltaNetState<T>> linear;  // by layer index (empty for attention layers)
  std::vector<AttentionCache<T>> attention;   // by layer index (unused for linear layers)
  int64_t length = 0;
};
template <class T>
ModelState<T> initial_model_state(const ModelConfig& config);

// hidden: [T, D], the final-normed hidden states. With `state`, the batch (one sequence) continues
// the tokens the state has seen: positions start at state->length, and the state is updated.
template <class T>
void model_forward_hidden(const Model& model, const LoraRun& lora, const Batch& batch, T* hidden, Arena& arena,
                          ModelState<T>* state = nullptr);

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
// With checkpointing, the last `kept_layers` layers keep their activations from the forward
// (more memory, no recomputation for them); the others are recomputed from their inputs.
template <class T>
LossSum model_loss_backward(const Model& model, const LoraRun& lora, const Batch& batch, double grad_scale,
                            bool checkpointing, Arena& arena, int kept_layers = 0);

}  // namespace deltatune
