#include "train/schedule.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace deltatune {

double Schedule::lr(int64_t step) const {
  if (kind == ScheduleKind::Constant) return base_lr;
  if (step < warmup_steps) return base_lr * double(step) / double(std::max<int64_t>(1, warmup_steps));
  switch (kind) {
    case ScheduleKind::Constant:
    case ScheduleKind::ConstantWithWarmup:
      return base_lr;
    case ScheduleKind::Linear:
      return base_lr * std::max(0.0, double(total_steps - step) / double(std::max<int64_t>(1, total_steps - warmup_steps)));
    case ScheduleKind::Cosine: {
      const double progress = double(step - warmup_steps) / double(std::max<int64_t>(1, total_steps - warmup_steps));
      return base_lr * std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * progress)));
    }
  }
  return base_lr;
}

ScheduleKind parse_schedule_kind(const std::string& name) {
  if (name == "constant") return ScheduleKind::Constant;
  if (name == "constant_with_warmup") return ScheduleKind::ConstantWithWarmup;
  if (name == "linear") return ScheduleKind::Linear;
  if (name == "cosine") return ScheduleKind::Cosine;
  fail("lr_scheduler '", name, "' is not supported; use constant, constant_with_warmup, linear or cosine");
}

int64_t warmup_steps_for(int64_t warmup_steps, double warmup_ratio, int64_t total_steps) {
  if (warmup_steps > 0) return warmup_steps;
  return int64_t(std::ceil(double(total_steps) * warmup_ratio));
}

}  // namespace deltatune
