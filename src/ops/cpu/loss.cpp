#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "ops/loss.h"
#include "ops/matmul.h"

namespace deltatune {

namespace {

// A view of rows [row0, row0 + n) of a 2-D weight.
Tensor weight_rows(const Tensor& w, int64_t row0, int64_t n) {
  Tensor t = w;
  t.data = static_cast<std::byte*>(w.data) + size_t(row0 * w.shape[1]) * dtype_size(w.dtype);
  t.shape[0] = n;
  return t;
}

}  // namespace

template <class T>
double cross_entropy_forward_backward(const T* hidden, int64_t tokens, const Tensor& lm_head,
                                      const int64_t* targets, double grad_scale, T* d_hidden,
                                      int64_t panel_rows) {
  const int64_t V = lm_head.shape[0], D = lm_head.shape[1];
  for (int64_t t = 0; t < tokens; ++t)
    DT_CHECK(targets[t] == -100 || (targets[t] >= 0 && targets[t] < V), "label ", targets[t],
             " at position ", t, " is outside the vocabulary [0, ", V, ")");
  const int64_t P = std::min(panel_rows, V);
  std::vector<T> logits(static_cast<size_t>(tokens * P));
  std::vector<double> running_max(size_t(tokens), -std::numeric_limits<double>::infinity());
  std::vector<double> running_sum(size_t(tokens), 0.0);
  std::vector<double> target_logit(size_t(tokens), 0.0);

  // Pass 1: log-sum-exp and the target logit of every token.
  for (int64_t v0 = 0; v0 < V; v0 += P) {
    const int64_t n = std::min(P, V - v0);
    linear_forward(hidden, tokens, weight_rows(lm_head, v0, n), logits.data(), false, P);
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < tokens; ++t) {
      if (targets[t] == -100) continue;
      const T* row = logits.data() + t * P;
      double m = running_max[size_t(t)];
      for (int64_t j = 0; j < n; ++j) m = std::max(m, double(row[j]));
      double s = running_sum[size_t(t)] * std::exp(running_max[size_t(t)] - m);
      for (int64_t j = 0; j < n; ++j) s += std::exp(double(row[j]) - m);
      running_max[size_t(t)] = m;
      running_sum[size_t(t)] = s;
      if (targets[t] >= v0 && targets[t] < v0 + n) target_logit[size_t(t)] = double(row[targets[t] - v0]);
    }
  }
  double loss = 0;
  std::vector<double> lse(static_cast<size_t>(tokens));
  for (int64_t t = 0; t < tokens; ++t) {
    if (targets[t] == -100) continue;
    lse[size_t(t)] = running_max[size_t(t)] + std::log(running_sum[size_t(t)]);
    loss += lse[size_t(t)] - target_logit[size_t(t)];
  }
  if (!d_hidden) return loss;

  // Pass 2: d_logits = grad_scale * (softmax - onehot), d_hidden += d_logits · W_panel.
  std::fill(d_hidden, d_hidden + tokens * D, T(0));
  for (int64_t v0 = 0; v0 < V; v0 += P) {
    const int64_t n = std::min(P, V - v0);
    const Tensor w_panel = weight_rows(lm_head, v0, n);
    linear_forward(hidden, tokens, w_panel, logits.data(), false, P);
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < tokens; ++t) {
      T* row = logits.data() + t * P;
      if (targets[t] == -100) {
        std::fill(row, row + n, T(0));
        continue;
      }
      for (int64_t j = 0; j < n; ++j) row[j] = T(grad_scale * std::exp(double(row[j]) - lse[size_t(t)]));
      if (targets[t] >= v0 && targets[t] < v0 + n) row[targets[t] - v0] -= T(grad_scale);
    }
    linear_backward_input(logits.data(), tokens, w_panel, d_hidden, true, P);
  }
  return loss;
}

template double cross_entropy_forward_backward<float>(const float*, int64_t, const Tensor&, const int64_t*,
                                                      double, float*, int64_t);
template double cross_entropy_forward_backward<double>(const double*, int64_t, const Tensor&,
                                                       const int64_t*, double, double*, int64_t);

}  // namespace deltatune
