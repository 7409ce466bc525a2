// Learning-rate schedules with Hugging Face transformers' semantics (get_scheduler): the rate for
// optimizer step `step` (0-based: the first update uses step 0) is base_lr * lambda(step).
//   warmup (step < warmup):  step / warmup
//   constant:                1, and no warmup at all (HF's "constant" ignores warmup steps)
//   constant_with_warmup:    1 after the warmup
//   linear:                  max(0, (total - step) / (total - warmup))
//   cosine:                  0.5 * (1 + cos(pi * progress)), progress = (step - warmup) / (total - warmup)
#pragma once

#include <cstdint>
#include <string>

namespace deltatune {

enum class ScheduleKind { Constant, ConstantWithWarmup, Linear, Cosine };

struct Schedule {
  ScheduleKind kind = ScheduleKind::Cosine;
  double base_lr = 2e-4;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;

  double lr(int64_t step) const;
};

// "constant", "constant_with_warmup", "linear", "cosine"; throws otherwise.
ScheduleKind parse_schedule_kind(const std::string& name);
// transformers' get_warmup_steps: warmup_steps when > 0, else ceil(total * ratio).
int64_t warmup_steps_for(int64_t warmup_steps, double warmup_ratio, int64_t total_steps);

}  // namespace deltatune
