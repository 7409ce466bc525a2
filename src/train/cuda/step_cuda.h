// A training run's state on one NVIDIA GPU and its optimizer step (train/step.h's train_step on
// the GPU): the frozen base as bf16, the adapter's float factors and gradients, AdamW's moments,
// the activation arena and cuBLAS, all resident for the whole run. The host LoraAdapter and AdamW
// stay the run's record for checkpoints and the saved adapter: pull() copies the device state into
// them, push() the other way (after resuming from a checkpoint). Built only with
// -DDELTATUNE_CUDA=ON.
#pragma once

#include <span>

#include "core/cuda/device_arena.h"
#include "lora/cuda/lora_linear_cuda.h"
#include "model/cuda/device_model.h"
#include "model/qwen35.h"
#include "ops/matmul_cuda.h"
#include "train/optimizer.h"
#include "train/step.h"

namespace deltatune {

struct CudaMemoryReport {
  size_t weights = 0;            // the frozen base (bf16)
  size_t adapter = 0;            // factors, gradients, bf16 copies, AdamW moments
  size_t activations_peak = 0;   // the arena's peak over the steps so far
  size_t activations_reserved = 0;
  size_t workspace = 0;          // cuBLAS
  size_t total_peak() const { return weights + adapter + activations_peak + workspace; }
};

class CudaTrainingRun {
 public:
  // Uploads the model and the adapter (and the optimizer's moments and step count).
  CudaTrainingRun(const Model& model, const LoraAdapter& adapter, AdamW& optimizer,
                  cuda::Target target = cuda::Target(nullptr));

  // One optimizer step over the micro-batches, as train_step: mean loss over the step's targets,
  // global-norm clipping, skipped when non-finite, AdamW at the schedule's rate.
  StepResult step(const Schedule& schedule, int64_t step, std::span<const Batch> micro_batches,
                  const StepOptions& options);
  // The loss of a labelled batch with the current factors, no gradients, no dropout.
  LossSum loss(const Batch& batch);

  void pull(LoraAdapter& adapter, AdamW& optimizer) const;  // device -> host
  void push(const LoraAdapter& adapter, AdamW& optimizer);  // host -> device
  CudaMemoryReport memory() const;
  const cuda::Target& target() const { return target_; }

 private:
  cuda::Target target_;
  cuda::Blas blas_;
  DeviceModel model_;
  DeviceAdapter adapter_;
  cuda::Memory m_, v_;  // AdamW's moments, in the adapter's flat layout
  AdamWConfig adamw_;
  int64_t steps_done_ = 0;
  cuda::DeviceArena arena_;
  bool arena_consolidated_ = false;
};

}  // namespace deltatune
