// From samples to micro-batches. With sample_packing, samples are packed into rows of at most
// sequence_len tokens by first-fit decreasing, and a micro-batch is micro_batch_size rows; without
// it a micro-batch is micro_batch_size samples. Either way a micro-batch is one varlen Batch
// (cu_seqlens marks every sample), so no padding tokens are ever computed: the loss and gradients
// are those of padded batches with attention masks, without the wasted work.
// The order is a pure function of (seed, epoch), so a resumed run sees the same batches.
#pragma once

#include <cstdint>
#include <vector>

#include "data/sample.h"
#include "model/batch.h"

namespace deltatune {

struct BatchingOptions {
  int64_t sequence_len = 2048;
  int64_t micro_batch_size = 1;
  bool sample_packing = false;
  bool shuffle = true;
  uint64_t seed = 42;
};

// Bins of sample indices whose lengths sum to at most capacity (first-fit decreasing). Every
// length must be <= capacity.
std::vector<std::vector<int64_t>> pack_first_fit_decreasing(const std::vector<int64_t>& lengths, int64_t capacity);

struct PackingReport {
  int64_t rows = 0;
  int64_t tokens = 0;
  double efficiency() const;  // tokens / (rows * sequence_len)
  int64_t sequence_len = 0;
};

// The micro-batches of one epoch, each a list of sample indices in batch order.
std::vector<std::vector<int64_t>> plan_epoch(const std::vector<Sample>& samples, const BatchingOptions& options,
                                             int64_t epoch, PackingReport* report = nullptr);

// The varlen batch of the given samples (labels included).
Batch make_sample_batch(const std::vector<Sample>& samples, const std::vector<int64_t>& indices);

}  // namespace deltatune
