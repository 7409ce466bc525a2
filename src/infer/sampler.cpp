#include "infer/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace deltatune {

int64_t Sampler::next(std::span<const float> logits) {
  const int64_t V = int64_t(logits.size());
  if (options_.temperature <= 0) return int64_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
  std::vector<int64_t> order(static_cast<size_t>(V));
  std::iota(order.begin(), order.end(), 0);
  // Candidates by descending logit; top-k keeps the first k.
  int64_t keep = options_.top_k > 0 ? std::min(options_.top_k, V) : V;
  std::partial_sort(order.begin(), order.begin() + keep, order.end(),
                    [&](int64_t a, int64_t b) { return logits[size_t(a)] > logits[size_t(b)]; });
  std::vector<double> p(static_cast<size_t>(keep));
  const double top = double(logits[size_t(order[0])]) / options_.temperature;
  double sum = 0;
  for (int64_t i = 0; i < keep; ++i) sum += p[size_t(i)] = std::exp(double(logits[size_t(order[size_t(i)])]) / options_.temperature - top);
  for (double& x : p) x /= sum;
  // top-p: the smallest prefix whose probability reaches top_p (at least one token).
  if (options_.top_p < 1.0) {
    double cumulative = 0;
    int64_t n = 0;
    while (n < keep && cumulative < options_.top_p) cumulative += p[size_t(n++)];
    keep = std::max<int64_t>(1, n);
  }
  // min-p: tokens at least min_p times as likely as the most likely one.
  if (options_.min_p > 0) {
    int64_t n = 0;
    while (n < keep && p[size_t(n)] >= options_.min_p * p[0]) ++n;
    keep = std::max<int64_t>(1, n);
  }
  double total = 0;
  for (int64_t i = 0; i < keep; ++i) total += p[size_t(i)];
  double u = rng_.uniform() * total;
  for (int64_t i = 0; i < keep; ++i) {
    u -= p[size_t(i)];
    if (u <= 0) return order[size_t(i)];
  }
  return order[size_t(keep - 1)];
}

}  // namespace deltatune
