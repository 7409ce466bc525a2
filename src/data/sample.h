// A training sample: token ids and, aligned with them, labels in the Hugging Face convention
// (the token itself where it is trained, -100 where it is not; the shift happens in the loss).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace deltatune {

constexpr int32_t kIgnoreLabel = -100;

struct Sample {
  std::vector<int32_t> input_ids;
  std::vector<int32_t> labels;  // same length as input_ids

  int64_t length() const { return int64_t(input_ids.size()); }
  // Positions whose next token is trained (what the loss counts).
  int64_t trained_targets() const {
    int64_t n = 0;
    for (size_t i = 1; i < labels.size(); ++i) n += labels[i] != kIgnoreLabel;
    return n;
  }
};

}  // namespace deltatune
