// The chunked cross-entropy of ops/loss.h on an NVIDIA GPU: the [tokens x vocab] logits never exist
// in full. The vocabulary is walked once in panels of `panel_rows` rows of lm_head; per token a
// running max, a running sum of exponentials and a running exp-weighted sum of lm_head's rows
// (online softmax, rescaled when the max grows) give the loss and
//   d_hidden = grad_scale · (softmax · W − W_target)
// without a second pass. No gradient for lm_head (the base is frozen). hidden, lm_head and d_hidden
// are bf16 (training) or float (tests); logits, the running values and the accumulation are float.
// The two products per panel run through `blas` (cuBLAS, ops/matmul_cuda.h) for bf16, through a
// tiled product of our own for float; row kernels between them. Device pointers (host pointers
// under cuda::Target::host_emulation(): blas's target). Kernels in ops/cuda/loss.cu.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/cuda/target.h"
#include "ops/matmul_cuda.h"

namespace deltatune {

constexpr int64_t kLossCudaPanelRows = 4096;

// Scratch of one call: per panel the logits [tokens, panel] (float) and their exponentials (T),
// the accumulation [tokens, dim] (float), and a few floats per token. Without the gradient only
// the logits and the per-token values.
template <class T>
size_t cross_entropy_cuda_workspace_bytes(int64_t tokens, int64_t dim, int64_t panel_rows,
                                          bool with_grad);

// hidden [tokens, dim]; lm_head [vocab, dim]; targets [tokens] (int64): the class each token
// predicts, or -100 (ignored). Writes to *loss_sum (one double in the target's memory) the SUM of
// −log p(target) over non-ignored tokens, NaN if a target is outside [0, vocab) and not -100.
// When d_hidden is not null it is overwritten with grad_scale · dLoss_sum/d_hidden (zero rows for
// ignored tokens).
template <class T>
void cross_entropy_cuda_forward_backward(const T* hidden, int64_t tokens, const T* lm_head,
                                         int64_t vocab, int64_t dim, const int64_t* targets,
                                         double grad_scale, double* loss_sum, T* d_hidden,
                                         void* workspace, int64_t panel_rows,
                                         const cuda::Blas& blas);

}  // namespace deltatune
