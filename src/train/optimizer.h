// AdamW over the LoRA factors, as torch.optim.AdamW computes it (decoupled weight decay, bias
// correction), with state (m, v) in the factors' dtype (float32 for training), and global-norm
// gradient clipping as torch.nn.utils.clip_grad_norm_.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "lora/adapter.h"

namespace deltatune {

// A trainable tensor and its gradient (same shape and dtype: F32 or F64).
struct ParamRef {
  HostTensor* value;
  HostTensor* grad;
};
// Every LoRA factor of the adapter, A then B per module.
std::vector<ParamRef> lora_params(LoraAdapter& adapter);

struct AdamWConfig {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
};

class AdamW {
 public:
  AdamW(std::vector<ParamRef> params, const AdamWConfig& config);
  AdamW(LoraAdapter& adapter, const AdamWConfig& config) : AdamW(lora_params(adapter), config) {}
  // One update of every factor from its gradient, with learning rate lr.
  void step(double lr);
  int64_t steps_done() const { return step_; }
  const AdamWConfig& config() const { return config_; }

  // State for checkpoints: m and v of every parameter, in order.
  std::vector<HostTensor>& moments() { return moments_; }
  void set_steps_done(int64_t n) { step_ = n; }

 private:
  std::vector<ParamRef> params_;
  AdamWConfig config_;
  int64_t step_ = 0;
  std::vector<HostTensor> moments_;  // per factor: m then v
};

// sqrt(sum of squares) of every gradient (NaN or inf when any gradient is).
double grad_norm(const std::vector<ParamRef>& params);
// torch.nn.utils.clip_grad_norm_: if the norm exceeds max_norm (> 0), scale the gradients by
// max_norm / (norm + 1e-6). Returns the norm before clipping.
double clip_grad_norm(const std::vector<ParamRef>& params, double max_norm);

}  // namespace deltatune
