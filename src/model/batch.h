// A packed batch: one token stream holding several sequences back to back (design.md, "One
// training step"). Positions restart at 0 in each sequence; attention, the conv1d and the
// delta-rule state never cross a boundary.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace deltatune {

struct Batch {
  std::vector<int64_t> input_ids;   // [T]
  std::vector<int64_t> cu_seqlens;  // [n + 1], 0 .. T
  std::vector<int64_t> positions;   // [T]
  std::vector<int64_t> labels;      // [T] or empty; -100 = not trained (HF convention)

  int64_t tokens() const { return int64_t(input_ids.size()); }
  int64_t num_sequences() const { return int64_t(cu_seqlens.size()) - 1; }
};

// Checks cu_seqlens (starts at 0, strictly increasing, ends at the token count)
// and fills positions. An empty cu_seqlens means one sequence.
Batch make_batch(std::vector<int64_t> input_ids, std::vector<int64_t> cu_seqlens = {},
                 std::vector<int64_t> labels = {});

}  // namespace deltatune
