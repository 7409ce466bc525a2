#include "model/batch.h"

#include "core/error.h"

namespace deltatune {

Batch make_batch(std::vector<int64_t> input_ids, std::vector<int64_t> cu_seqlens,
                 std::vector<int64_t> labels) {
  Batch b;
  b.input_ids = std::move(input_ids);
  const int64_t T = b.tokens();
  DT_CHECK(T > 0, "the batch has no tokens");
  if (cu_seqlens.empty()) cu_seqlens = {0, T};
  DT_CHECK(cu_seqlens.size() >= 2 && cu_seqlens.front() == 0 && cu_seqlens.back() == T,
           "cu_seqlens must start at 0 and end at the token count ", T);
  for (size_t i = 1; i < cu_seqlens.size(); ++i)
    DT_CHECK(cu_seqlens[i] > cu_seqlens[i - 1], "cu_seqlens must be strictly increasing: entry ",
             i, " is ", cu_seqlens[i], " after ", cu_seqlens[i - 1]);
  b.cu_seqlens = std::move(cu_seqlens);
  b.positions.resize(size_t(T));
  for (size_t s = 0; s + 1 < b.cu_seqlens.size(); ++s)
    for (int64_t t = b.cu_seqlens[s]; t < b.cu_seqlens[s + 1]; ++t)
      b.positions[size_t(t)] = t - b.cu_seqlens[s];
  DT_CHECK(labels.empty() || int64_t(labels.size()) == T, "labels has ", labels.size(),
           " entries for ", T, " tokens");
  b.labels = std::move(labels);
  return b;
}

}  // namespace deltatune
