// The chunked cross-entropy of ops/loss_cuda.h, the GPU form of ops/cpu/loss.cpp. Per panel of n
// vocabulary rows W_p (three launches):
//   1. L = H W_pᵀ                     [tokens, n] float (tiled product)
//   2. per token (one warp per row): m' = max(m, max_j L_j), r = exp(m − m'), s' = r s + Σ_j E_j
//      with E_j = exp(L_j − m') (stored in T for the next product), and the target's logit when
//      it falls in this panel
//   3. acc' = r acc + E W_p           [tokens, dim] float: the rescale is the product's epilogue
// Then per token: loss = m + log s − l_target, d_hidden = scale (acc / s − W_target); and the sum
// of the losses in one block, in a fixed order. Every exponent is ≤ 0. Deterministic: no atomics.
#include <cmath>

#include "ops/cuda/kernel_runner.cuh"
#include "ops/cuda/tiled_product.cuh"
#include "ops/loss_cuda.h"

namespace deltatune {

namespace {

using cuda::Block;
using cuda::from_float;
using cuda::to_float;
using cuda::Warp;

constexpr int kThreads = 256;
constexpr int kRowsPerBlock = kThreads / 32;  // one warp per token
constexpr int64_t kIgnored = -100;

template <class T>
struct LossWorkspace {
  float* logits;  // [tokens][panel]
  T* weights;     // [tokens][panel] E = exp(L − m'), with the gradient only
  float* acc;     // [tokens][dim], with the gradient only
  float *running_max, *running_sum, *target_logit, *rescale, *token_loss;  // [tokens]
};

template <class T>
LossWorkspace<T> carve_workspace(int64_t tokens, int64_t dim, int64_t panel, bool with_grad,
                                 char* base, size_t* bytes) {
  size_t used = 0;
  auto take = [&](auto* type_tag, int64_t count) {
    using U = std::remove_pointer_t<decltype(type_tag)>;
    used = (used + 255) / 256 * 256;
    U* p = base && count > 0 ? reinterpret_cast<U*>(base + used) : nullptr;
    used += size_t(count) * sizeof(U);
    return p;
  };
  LossWorkspace<T> w{};
  w.logits = take((float*)nullptr, tokens * panel);
  if (with_grad) {
    w.weights = take((T*)nullptr, tokens * panel);
    w.acc = take((float*)nullptr, tokens * dim);
  }
  for (float** p : {&w.running_max, &w.running_sum, &w.target_logit, &w.rescale, &w.token_loss})
    *p = take((float*)nullptr, tokens);
  *bytes = used;
  return w;
}

struct StoreLogits {
  float* logits;
  int64_t ld;
  DT_HD void operator()(int64_t t, int64_t j, float value) const { logits[t * ld + j] = value; }
};

// acc = rescale · acc + value; on the first panel acc holds nothing yet (and rescale is 0).
struct AccumulateWeightedRows {
  float* acc;
  int64_t ld;
  const float* rescale;
  bool first;
  DT_HD void operator()(int64_t t, int64_t i, float value) const {
    float* a = acc + t * ld + i;
    *a = first ? value : rescale[t] * *a + value;
  }
};

// Step 2 for the panel of vocabulary rows v0 .. v0 + n − 1.
template <class T>
struct OnlineSoftmaxBody {
  LossWorkspace<T> ws;
  const int64_t* targets;
  int64_t tokens, panel, v0, n;
  bool first;
  DT_HD void operator()(const Block& b, int bx, int, int, char*) const {
    const Warp warp = cuda::warp_of(b);
    for (int vw = warp.index; vw < kRowsPerBlock; vw += warp.count) {
      const int64_t t = int64_t(bx) * kRowsPerBlock + vw;
      if (t >= tokens) continue;
      const float* row = ws.logits + t * panel;
      T* e = ws.weights ? ws.weights + t * panel : nullptr;
      const int64_t target = targets[t];
      if (target == kIgnored) {  // no gradient from ignored positions: E = 0, acc stays 0
        if (warp.lane == 0) ws.rescale[t] = 0.0f;
        if (e)
          for (int64_t j = warp.lane; j < n; j += warp.lanes) e[j] = from_float<T>(0.0f);
        continue;
      }
      const float old_max = first ? -INFINITY : ws.running_max[t];
      const float old_sum = first ? 0.0f : ws.running_sum[t];
      float m = old_max;
      for (int64_t j = warp.lane; j < n; j += warp.lanes) m = fmaxf(m, row[j]);
      m = cuda::warp_max(m);
      float s = 0.0f;
      for (int64_t j = warp.lane; j < n; j += warp.lanes) {
        const float ej = expf(row[j] - m);
        s += ej;
        if (e) e[j] = from_float<T>(ej);
      }
      s = cuda::warp_sum(s);
      if (warp.lane == 0) {
        const float r = first ? 0.0f : expf(old_max - m);
        ws.running_max[t] = m;
        ws.running_sum[t] = r * old_sum + s;
        ws.rescale[t] = r;
        if (target >= v0 && target < v0 + n) ws.target_logit[t] = row[target - v0];
      }
    }
  }
};

// Per token: the loss and, with the gradient, d_hidden = scale (acc / s − W_target).
template <class T>
struct FinishBody {
  LossWorkspace<T> ws;
  const int64_t* targets;
  const T* lm_head;
  int64_t tokens, vocab, dim;
  float grad_scale;
  T* d_hidden;
  DT_HD void operator()(const Block& b, int bx, int, int, char*) const {
    const Warp warp = cuda::warp_of(b);
    for (int vw = warp.index; vw < kRowsPerBlock; vw += warp.count) {
      const int64_t t = int64_t(bx) * kRowsPerBlock + vw;
      if (t >= tokens) continue;
      const int64_t target = targets[t];
      const bool valid = target >= 0 && target < vocab;
      if (warp.lane == 0)
        ws.token_loss[t] = target == kIgnored ? 0.0f
                           : valid
                               ? ws.running_max[t] + logf(ws.running_sum[t]) - ws.target_logit[t]
                               : NAN;
      if (!d_hidden) continue;
      T* dh = d_hidden + t * dim;
      if (!valid) {
        for (int64_t i = warp.lane; i < dim; i += warp.lanes) dh[i] = from_float<T>(0.0f);
        continue;
      }
      const float inv_sum = 1.0f / ws.running_sum[t];
      const float* acc = ws.acc + t * dim;
      const T* w = lm_head + target * dim;
      for (int64_t i = warp.lane; i < dim; i += warp.lanes)
        dh[i] = from_float<T>(grad_scale * (acc[i] * inv_sum - to_float(w[i])));
    }
  }
};

// One block: per-thread sums in double over a fixed stride, then thread 0 adds them in order.
struct SumLossesBody {
  const float* token_loss;
  int64_t tokens;
  double* loss_sum;
  DT_HD void operator()(const Block& b, int, int, int, char* shared) const {
    double* partial = reinterpret_cast<double*>(shared);
    double s = 0.0;
    for (int64_t t = b.thread; t < tokens; t += b.threads) s += double(token_loss[t]);
    partial[b.thread] = s;
    b.sync();
    if (b.thread != 0) return;
    double total = 0.0;
    for (int i = 0; i < b.threads; ++i) total += partial[i];
    *loss_sum = total;
  }
};

template <class T, bool TransB, class Epilogue>
void product(cuda::Target target, const char* name, const T* a, int64_t lda, const T* b,
             int64_t ldb, int64_t M, int64_t N, int64_t K, Epilogue epilogue) {
  using Body = cuda::TiledProductBody<T, TransB, Epilogue>;
  DT_CHECK((M + Body::BM - 1) / Body::BM <= 65535, name, ": at most ", 65535 * Body::BM,
           " tokens per call, got ", M);
  cuda::launch<kThreads>(target, name, Body{a, lda, b, ldb, M, N, K, epilogue}, Body::grid(M, N),
                         Body::shared_bytes());
}

}  // namespace

template <class T>
size_t cross_entropy_cuda_workspace_bytes(int64_t tokens, int64_t dim, int64_t panel_rows,
                                          bool with_grad) {
  size_t bytes = 0;
  carve_workspace<T>(tokens, dim, panel_rows, with_grad, nullptr, &bytes);
  return bytes;
}

template <class T>
void cross_entropy_cuda_forward_backward(const T* hidden, int64_t tokens, const T* lm_head,
                                         int64_t vocab, int64_t dim, const int64_t* targets,
                                         double grad_scale, double* loss_sum, T* d_hidden,
                                         void* workspace, int64_t panel_rows, cuda::Target target) {
  DT_CHECK(tokens >= 0 && vocab > 0 && dim > 0 && panel_rows > 0,
           "cross-entropy (CUDA): bad sizes: tokens=", tokens, " vocab=", vocab, " dim=", dim,
           " panel_rows=", panel_rows);
  size_t bytes = 0;
  const LossWorkspace<T> ws = carve_workspace<T>(tokens, dim, panel_rows, d_hidden != nullptr,
                                                 static_cast<char*>(workspace), &bytes);
  const dim3 row_blocks = cuda::blocks_for(tokens, kRowsPerBlock);
  if (tokens > 0)
    for (int64_t v0 = 0; v0 < vocab; v0 += panel_rows) {
      const int64_t n = vocab - v0 < panel_rows ? vocab - v0 : panel_rows;
      const T* w_panel = lm_head + v0 * dim;
      product<T, true>(target, "cross-entropy: logits of a panel", hidden, dim, w_panel, dim,
                       tokens, n, dim, StoreLogits{ws.logits, panel_rows});
      cuda::launch<kThreads>(target, "cross-entropy: online softmax",
                             OnlineSoftmaxBody<T>{ws, targets, tokens, panel_rows, v0, n, v0 == 0},
                             row_blocks);
      if (d_hidden)
        product<T, false>(target, "cross-entropy: softmax-weighted rows", ws.weights, panel_rows,
                          w_panel, dim, tokens, dim, n,
                          AccumulateWeightedRows{ws.acc, dim, ws.rescale, v0 == 0});
    }
  cuda::launch<kThreads>(
      target, "cross-entropy: loss and d_hidden",
      FinishBody<T>{ws, targets, lm_head, tokens, vocab, dim, float(grad_scale), d_hidden},
      row_blocks);
  cuda::launch<kThreads>(target, "cross-entropy: sum of losses",
                         SumLossesBody{ws.token_loss, tokens, loss_sum}, dim3(1),
                         kThreads * sizeof(double));
}

#define DT_INSTANTIATE(T)                                                                        \
  template size_t cross_entropy_cuda_workspace_bytes<T>(int64_t, int64_t, int64_t, bool);        \
  template void cross_entropy_cuda_forward_backward<T>(const T*, int64_t, const T*, int64_t,     \
                                                       int64_t, const int64_t*, double, double*, \
                                                       T*, void*, int64_t, cuda::Target);
DT_INSTANTIATE(float)
DT_INSTANTIATE(__nv_bfloat16)
#undef DT_INSTANTIATE

}  // namespace deltatune
