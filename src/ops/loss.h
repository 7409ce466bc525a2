// Cross-entropy over the vocabulary without the [tokens x vocab] logits ever existing in full.
//
// logits = hidden · Wᵀ (W = lm_head [V, D], any float dtype). The vocabulary is walked once, in
// panels of `panel_rows` rows of W, keeping per token a running max, a running sum of exponentials
// and a running exp-weighted sum of W's rows (online softmax, rescaled when the max grows): at the
// end they give the loss and d_hidden = softmax · W - W_target without a second pass. Each panel of
// W is converted to the compute type once and used by one forward and one backward product.
// Peak memory: panel_rows x (D + tokens) + 2 x tokens x D values (docs/performance.md, "Loss").
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
