// Choosing the next token from logits: greedy, or sampling with temperature, top-k, top-p and
// min-p applied in that order (as transformers' generate applies its logits warpers), from a
// seeded generator so a seed reproduces a generation.
#pragma once

#include <cstdint>
#include <span>

#include "core/rng.h"

namespace deltatune {

struct SamplingOptions {
  double temperature = 0;  // 0: greedy (argmax)
  int64_t top_k = 0;       // 0: off
  double top_p = 1.0;      // 1: off
  double min_p = 0.0;      // 0: off
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplingOptions& options) : options_(options), rng_(options.seed) {}
  int64_t next(std::span<const float> logits);

 private:
  SamplingOptions options_;
  Rng rng_;
};

}  // namespace deltatune
