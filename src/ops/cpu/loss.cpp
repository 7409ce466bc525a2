#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/profile.h"
#include "ops/loss.h"
#include "ops/matmul.h"

namespace deltatune {

namespace {

// A view of rows [row0, row0 + n) of a 2-D weight.
Tensor weight_rows(const Tensor& w, int64_t row0, int64_t n) {
  Tensor t = w;
  t.data = static_cast<std::byte*>(w.data) + dtype_bytes(w.dtype, row0 * w.shape[1]);
  t.shape[0] = n;
  return t;
}

}  // namespace

// One pass over the vocabulary, as flash attention does for its output: per token a running max m,
// a running sum s = sum exp(l - m), and a running acc = sum exp(l - m) W_v ([D]); when a panel
// raises m, s and acc are rescaled by exp(m_old - m_new). At the end softmax · W = acc / s, so
//   d_hidden = grad_scale * (acc / s - W_target),   loss = m + log s - l_target.
// Each panel's logits are computed once and used for both the loss and the gradient.
template <class T>
double cross_entropy_forward_backward(const T* hidden, int64_t tokens, const Tensor& lm_head,
                                      const int64_t* targets, double grad_scale, T* d_hidden,
                                      int64_t panel_rows) {
  DT_PROFILE("cross_entropy_forward_backward");
  const int64_t V = lm_head.shape[0], D = lm_head.shape[1];
  for (int64_t t = 0; t < tokens; ++t)
    DT_CHECK(targets[t] == -100 || (targets[t] >= 0 && targets[t] < V), "label ", targets[t],
             " at position ", t, " is outside the vocabulary [0, ", V, ")");
  const int64_t P = std::min(panel_rows, V);
  std::vector<T> logits(static_cast<size_t>(tokens * P));
  std::vector<double> running_max(static_cast<size_t>(tokens), -std::numeric_limits<double>::infinity());
  std::vector<double> running_sum(static_cast<size_t>(tokens), 0.0);
  std::vector<double> target_logit(static_cast<size_t>(tokens), 0.0);
  std::vector<T> acc;
  if (d_hidden) acc.assign(static_cast<size_t>(tokens * D), T(0));

  for (int64_t v0 = 0; v0 < V; v0 += P) {
    const int64_t n = std::min(P, V - v0);
    const Tensor w_panel = weight_rows(lm_head, v0, n);
    linear_forward(hidden, tokens, w_panel, logits.data(), false, P);
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < tokens; ++t) {
      T* row = logits.data() + t * P;
      if (targets[t] == -100) {
        std::fill(row, row + n, T(0));  // no gradient from ignored positions
        continue;
      }
      const double old_max = running_max[size_t(t)];
      double m = old_max;
      for (int64_t j = 0; j < n; ++j) m = std::max(m, double(row[j]));
      const double rescale = std::exp(old_max - m);  // 0 on the first panel (old_max = -inf)
      double s = running_sum[size_t(t)] * rescale;
      if (targets[t] >= v0 && targets[t] < v0 + n) target_logit[size_t(t)] = double(row[targets[t] - v0]);
      for (int64_t j = 0; j < n; ++j) {
        const double e = std::exp(double(row[j]) - m);
        s += e;
        row[j] = T(e);  // the panel's weights for acc
      }
      running_max[size_t(t)] = m;
      running_sum[size_t(t)] = s;
      if (d_hidden && rescale != 1.0)
        for (int64_t i = 0; i < D; ++i) acc[size_t(t * D + i)] *= T(rescale);
    }
    if (d_hidden) linear_backward_input(logits.data(), tokens, w_panel, acc.data(), true, P);
  }

  double loss = 0;
  for (int64_t t = 0; t < tokens; ++t)
    if (targets[t] != -100)
      loss += running_max[size_t(t)] + std::log(running_sum[size_t(t)]) - target_logit[size_t(t)];
  if (!d_hidden) return loss;

  // d_hidden = scale * (acc / s - W[target]).
  std::vector<T> target_row(static_cast<size_t>(D));
  for (int64_t t = 0; t < tokens; ++t) {
    T* dh = d_hidden + t * D;
    if (targets[t] == -100) {
      std::fill(dh, dh + D, T(0));
      continue;
    }
    convert_to<T>(static_cast<const std::byte*>(lm_head.data) + dtype_bytes(lm_head.dtype, targets[t] * D),
                  lm_head.dtype, target_row.data(), size_t(D));
    const T inv_sum = T(1.0 / running_sum[size_t(t)]);
    for (int64_t i = 0; i < D; ++i) dh[i] = T(grad_scale) * (acc[size_t(t * D + i)] * inv_sum - target_row[size_t(i)]);
  }
  return loss;
}

template double cross_entropy_forward_backward<float>(const float*, int64_t, const Tensor&, const int64_t*,
                                                      double, float*, int64_t);
template double cross_entropy_forward_backward<double>(const double*, int64_t, const Tensor&,
                                                       const int64_t*, double, double*, int64_t);

}  // namespace deltatune
