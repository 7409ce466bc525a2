#include "train/cuda/step_cuda.h"

#include <cmath>

#include "core/cuda/gpu_profile.h"
#include "model/cuda/qwen35_cuda.h"
#include "train/adamw_cuda.h"
#include "train/grad_norm_cuda.h"

namespace deltatune {

CudaTrainingRun::CudaTrainingRun(const Model& model, const LoraAdapter& adapter, AdamW& optimizer,
                                 cuda::Target target)
    : target_(target),
      blas_(target),
      model_(model, target),
      adapter_(adapter, target),
      m_(size_t(adapter_.flat_size()) * sizeof(float), target),
      v_(size_t(adapter_.flat_size()) * sizeof(float), target),
      adamw_(optimizer.config()),
      arena_(target) {
  cuda::fill_zero(m_.data(), m_.bytes(), target);
  cuda::fill_zero(v_.data(), v_.bytes(), target);
  push(adapter, optimizer);
}

StepResult CudaTrainingRun::step(const Schedule& schedule, int64_t step,
                                 std::span<const Batch> micro_batches, const StepOptions& options) {
  StepResult r;
  for (const Batch& b : micro_batches) {
    for (int64_t t : shifted_targets(b)) r.targets += t != -100;
    r.tokens += b.tokens();
  }
  adapter_.zero_grad();
  if (r.targets == 0) {  // nothing to learn from: no update, but not an error
    r.skipped = true;
    return r;
  }
  DeviceLoraRun lora;
  lora.adapter = &adapter_;
  lora.training = true;
  double loss_sum = 0;
  for (const Batch& b : micro_batches) {
    // The CPU step's masks (train/step.cpp): the same seed per micro-batch.
    lora.dropout_seed = options.dropout_seed * 1000003ull + uint64_t(&b - micro_batches.data());
    loss_sum += model_loss_backward_cuda(model_, lora, b, 1.0 / double(r.targets),
                                         options.checkpointing, arena_, blas_, options.kept_layers)
                    .sum;
  }
  r.loss = loss_sum / double(r.targets);
  r.grad_norm = clip_grad_norm_cuda(adapter_.grads(), adapter_.flat_size(), options.max_grad_norm, target_);
  cuda::gpu_profile_flush();  // the norm came back: the step's events are done (DELTATUNE_PROFILE=1)
  r.lr = schedule.lr(step);
  if (!std::isfinite(r.loss) || !std::isfinite(r.grad_norm)) {
    r.skipped = true;
    adapter_.zero_grad();
    return r;
  }
  ++steps_done_;
  adamw_cuda_step(adapter_.params(), adapter_.grads(), m_.as<float>(), v_.as<float>(),
                  adapter_.flat_size(), r.lr, adamw_, steps_done_, target_);
  adapter_.refresh_bf16();
  // The first step grew the arena as it went; from now on one block of its peak serves.
  if (!arena_consolidated_) {
    arena_.consolidate();
    arena_consolidated_ = true;
  }
  return r;
}

LossSum CudaTrainingRun::loss(const Batch& batch) {
  DeviceLoraRun lora;
  lora.adapter = &adapter_;
  const LossSum r = model_loss_cuda(model_, lora, batch, arena_, blas_);
  cuda::gpu_profile_flush();
  return r;
}

void CudaTrainingRun::pull(LoraAdapter& adapter, AdamW& optimizer) const {
  adapter_.download(adapter);
  std::vector<HostTensor>& moments = optimizer.moments();
  for (size_t i = 0; 2 * i < moments.size(); ++i) {
    const int64_t at = adapter_.factor_offset(i);
    for (int which = 0; which < 2; ++which) {
      HostTensor& h = moments[2 * i + size_t(which)];
      const float* src = (which == 0 ? m_ : v_).as<float>() + at;
      cuda::copy_to_host(h.ptr<float>(), src, size_t(h.numel()) * sizeof(float), target_);
    }
  }
  optimizer.set_steps_done(steps_done_);
}

void CudaTrainingRun::push(const LoraAdapter& adapter, AdamW& optimizer) {
  adapter_.upload(adapter);
  std::vector<HostTensor>& moments = optimizer.moments();
  for (size_t i = 0; 2 * i < moments.size(); ++i) {
    const int64_t at = adapter_.factor_offset(i);
    for (int which = 0; which < 2; ++which) {
      const HostTensor& h = moments[2 * i + size_t(which)];
      float* dst = (which == 0 ? m_ : v_).as<float>() + at;
      cuda::copy_to_target(dst, h.ptr<float>(), size_t(h.numel()) * sizeof(float), target_);
    }
  }
  steps_done_ = optimizer.steps_done();
}

CudaMemoryReport CudaTrainingRun::memory() const {
  CudaMemoryReport m;
  m.weights = model_.bytes();
  m.adapter = adapter_.bytes() + m_.bytes() + v_.bytes();
  m.activations_peak = arena_.peak_bytes();
  m.activations_reserved = arena_.capacity_bytes();
  m.workspace = blas_.workspace_bytes();
  return m;
}

}  // namespace deltatune
