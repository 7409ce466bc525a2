#include "train/step.h"

#include <cmath>

#include "model/qwen35.h"

namespace deltatune {

template <class T>
StepResult train_step(const Model& model, LoraAdapter& adapter, AdamW& optimizer, const Schedule& schedule,
                      int64_t step, std::span<const Batch> micro_batches, const StepOptions& options, Arena& arena) {
  StepResult r;
  for (const Batch& b : micro_batches) {
    for (int64_t t : shifted_targets(b)) r.targets += t != -100;
    r.tokens += b.tokens();
  }
  adapter.zero_grad();
  if (r.targets == 0) {  // nothing to learn from: no update, but not an error
    r.skipped = true;
    return r;
  }
  LoraRun lora;
  lora.adapter = &adapter;
  lora.training = true;
  lora.dropout_seed = options.dropout_seed;
  double loss_sum = 0;
  for (const Batch& b : micro_batches) {
    lora.dropout_seed = options.dropout_seed * 1000003ull + uint64_t(&b - micro_batches.data());
    loss_sum += model_loss_backward<T>(model, lora, b, 1.0 / double(r.targets), options.checkpointing, arena,
                                       options.kept_layers)
                    .sum;
  }
  r.loss = loss_sum / double(r.targets);
  r.grad_norm = clip_grad_norm(lora_params(adapter), options.max_grad_norm);
  r.lr = schedule.lr(step);
  if (!std::isfinite(r.loss) || !std::isfinite(r.grad_norm)) {
    r.skipped = true;
    adapter.zero_grad();
    return r;
  }
  optimizer.step(r.lr);
  return r;
}

template StepResult train_step<float>(const Model&, LoraAdapter&, AdamW&, const Schedule&, int64_t,
                                      std::span<const Batch>, const StepOptions&, Arena&);
template StepResult train_step<double>(const Model&, LoraAdapter&, AdamW&, const Schedule&, int64_t,
                                       std::span<const Batch>, const StepOptions&, Arena&);

}  // namespace deltatune
