// Cross-entropy over the vocabulary without the [tokens x vocab] logits ever existing in full.
//
// logits = hidden · Wᵀ (W = lm_head [V, D], any float dtype). The vocabulary is walked in panels of
// `panel_rows` rows of W: the first pass keeps a running max and sum of exponentials per token
// (online log-sum-exp) and picks out each target's logit; the second pass recomputes each panel's
// logits, turns them into softmax - onehot(target), scaled by grad_scale, and accumulates
// d_hidden += d_logits · W_panel. Each panel of W is converted to the compute type once per pass.
// Peak memory: panel_rows x (D + tokens) values + O(tokens) (docs/performance.md, "Loss memory").
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace deltatune {

constexpr int64_t kLossPanelRows = 4096;

// targets[t]: the class token t predicts, or -100 (ignored). Returns the SUM of -log p(target)
// over non-ignored tokens (callers divide by the number of targets). When d_hidden is not null it
// is overwritten with grad_scale * dLoss_sum/d_hidden.
template <class T>
double cross_entropy_forward_backward(const T* hidden, int64_t tokens, const Tensor& lm_head,
                                      const int64_t* targets, double grad_scale, T* d_hidden,
                                      int64_t panel_rows = kLossPanelRows);

}  // namespace deltatune
