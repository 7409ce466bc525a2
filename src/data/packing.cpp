#include "data/packing.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"
#include "core/rng.h"

namespace deltatune {

std::vector<std::vector<int64_t>> pack_first_fit_decreasing(const std::vector<int64_t>& lengths, int64_t capacity) {
  std::vector<int64_t> order(lengths.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return lengths[size_t(a)] > lengths[size_t(b)]; });
  std::vector<std::vector<int64_t>> bins;
  std::vector<int64_t> free_space;
  // Bins fill up over time; a max segment tree over free space would make this O(n log n), but
  // the linear scan from the first bin with room is fast enough for datasets of this size and
  // keeps first-fit's exact order.
  size_t first_open = 0;
  for (int64_t i : order) {
    const int64_t len = lengths[size_t(i)];
    DT_CHECK(len <= capacity, "sample of ", len, " tokens does not fit a row of ", capacity);
    while (first_open < free_space.size() && free_space[first_open] == 0) ++first_open;
    size_t b = first_open;
    while (b < bins.size() && free_space[b] < len) ++b;
    if (b == bins.size()) {
      bins.emplace_back();
      free_space.push_back(capacity);
    }
    bins[b].push_back(i);
    free_space[b] -= len;
  }
  return bins;
}

double PackingReport::efficiency() const {
  return rows > 0 && sequence_len > 0 ? double(tokens) / double(rows * sequence_len) : 0.0;
}

namespace {
template <class V>
void shuffle(V& v, Rng& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[size_t(rng.next_u64() % i)]);
}
}  // namespace

std::vector<std::vector<int64_t>> plan_epoch(const std::vector<Sample>& samples, const BatchingOptions& o,
                                             int64_t epoch, PackingReport* report) {
  DT_CHECK(!samples.empty(), "no samples to train on");
  Rng rng(o.seed * 0x9e3779b97f4a7c15ull + uint64_t(epoch) + 1);
  std::vector<int64_t> order(samples.size());
  std::iota(order.begin(), order.end(), 0);
  if (o.shuffle) shuffle(order, rng);
  std::vector<std::vector<int64_t>> units;  // rows (packing) or single samples
  if (o.sample_packing) {
    std::vector<int64_t> lengths;
    for (int64_t i : order) lengths.push_back(samples[size_t(i)].length());
    for (auto& bin : pack_first_fit_decreasing(lengths, o.sequence_len)) {
      for (int64_t& j : bin) j = order[size_t(j)];
      units.push_back(std::move(bin));
    }
    if (o.shuffle) shuffle(units, rng);  // FFD orders rows by size; mix them again
  } else {
    for (int64_t i : order) units.push_back({i});
  }
  if (report) {
    report->rows = int64_t(units.size());
    report->sequence_len = o.sequence_len;
    report->tokens = 0;
    for (const Sample& s : samples) report->tokens += s.length();
  }
  std::vector<std::vector<int64_t>> batches;
  for (size_t u = 0; u < units.size(); u += size_t(o.micro_batch_size)) {
    std::vector<int64_t> batch;
    for (size_t k = u; k < std::min(units.size(), u + size_t(o.micro_batch_size)); ++k)
      batch.insert(batch.end(), units[k].begin(), units[k].end());
    batches.push_back(std::move(batch));
  }
  return batches;
}

Batch make_sample_batch(const std::vector<Sample>& samples, const std::vector<int64_t>& indices) {
  std::vector<int64_t> ids, labels, cu = {0};
  for (int64_t i : indices) {
    const Sample& s = samples[size_t(i)];
    ids.insert(ids.end(), s.input_ids.begin(), s.input_ids.end());
    labels.insert(labels.end(), s.labels.begin(), s.labels.end());
    cu.push_back(int64_t(ids.size()));
  }
  return make_batch(std::move(ids), std::move(cu), std::move(labels));
}

}  // namespace deltatune
