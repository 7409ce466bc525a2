// One optimizer step over one or more micro-batches (gradient accumulation):
//   zero the gradients; for each micro-batch add the gradient of loss_sum / (targets of the whole
//   step); clip the global norm; skip the update when any gradient is not finite; AdamW at the
//   schedule's rate for this step.
// The loss is the mean cross-entropy over every trained target of the step, so splitting a batch
// into micro-batches changes nothing but the rounding.
#pragma once

#include <cstdint>
#include <span>

#include "core/arena.h"
#include "lora/adapter.h"
#include "model/batch.h"
#include "model/weights.h"
#include "train/optimizer.h"
#include "train/schedule.h"

namespace deltatune {

struct StepOptions {
  bool checkpointing = true;
  int kept_layers = 0;  // with checkpointing: the last layers that keep their activations
  double max_grad_norm = 1.0;  // <= 0: no clipping
  uint64_t dropout_seed = 0;   // LoRA dropout masks of this step
};

struct StepResult {
  double loss = 0;         // mean over the step's trained targets
  int64_t targets = 0;
  int64_t tokens = 0;
  double grad_norm = 0;    // before clipping
  double lr = 0;
  bool skipped = false;    // non-finite loss or gradient: no update
};

template <class T>
StepResult train_step(const Model& model, LoraAdapter& adapter, AdamW& optimizer, const Schedule& schedule,
                      int64_t step, std::span<const Batch> micro_batches, const StepOptions& options, Arena& arena);

}  // namespace deltatune
