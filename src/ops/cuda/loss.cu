// The chunked cross-entropy of ops/loss_cuda.h, the GPU form of ops/cpu/loss.cpp. Per panel of n
// vocabulary rows W_p (three launches):
//   1. L = H W_pᵀ                     [tokens, n] float: cuBLAS (bf16), the tiled product (float)
//   2. per token (one warp per row): m' = max(m, max_j L_j), r = exp(m − m'), s' = r s + Σ_j E_j
//      with E_j = exp(L_j − m') (stored as T for the next product), acc ← r acc when the max
//      grew (rarely after the first panels), and the target's logit when it falls in this panel
//   3. acc += E W_p                   [tokens, dim] float (beta = 1: the rescale is done in 2)
// Then per token: loss = m + log s − l_target, d_hidden = scale (acc / s − W_target); and the sum
// of the losses in one block, in a fixed order. Every exponent is ≤ 0. One pass over lm_head: two
// products per panel (a second pass recomputing the logits would cost a third). Deterministic:
// cuBLAS gives the same bits run to run, the row kernels reduce in a fixed order, no atomics.
#include <cmath>
#include <type_traits>

#include "ops/cuda/kernel_runner.cuh"
#include "ops/cuda/tiled_product.cuh"
#include "ops/loss_cuda.h"

namespace deltatune {

namespace {

using bf16 = __nv_bfloat16;
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
  float *running_max, *running_sum, *target_logit, *token_loss;  // [tokens]
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
  for (float** p : {&w.running_max, &w.running_sum, &w.target_logit, &w.token_loss})
    *p = take((float*)nullptr, tokens);
  *bytes = used;
  return w;
}

// Epilogues of the tiled product (the float path): C = value, or C += value.
struct StoreC {
  float* c;
  int64_t ld;
  bool accumulate;
  DT_HD void operator()(int64_t t, int64_t j, float value) const {
    float* p = c + t * ld + j;
    *p = accumulate ? *p + value : value;
  }
};

// C[M, N] (float, row stride ldc) = A[M, K] op(B) (+ C when accumulate), op(B) = Bᵀ with B
// stored [N, K] when trans_b. bf16 operands go to cuBLAS; float operands (the tests' exact path)
// to the tiled product.
template <class T>
void panel_product(const cuda::Blas& blas, const char* name, bool trans_b, const T* a,
                   int64_t lda, const T* b, int64_t ldb, int64_t M, int64_t N, int64_t K,
                   bool accumulate, float* c, int64_t ldc) {
  if constexpr (std::is_same_v<T, bf16>) {
    gemm_cuda<float>(blas, false, trans_b, M, N, K, 1.0f, a, lda, b, ldb, accumulate ? 1.0f : 0.0f,
                     c, ldc);
  } else {
    auto run = [&](auto trans_tag) {
      using Body = cuda::TiledProductBody<T, decltype(trans_tag)::value, StoreC>;
      DT_CHECK((M + Body::BM - 1) / Body::BM <= 65535, name, ": at most ", 65535 * Body::BM,
               " tokens per call, got ", M);
      cuda::launch<kThreads>(blas.target(), name,
                             Body{a, lda, b, ldb, M, N, K, StoreC{c, ldc, accumulate}},
                             Body::grid(M, N), Body::shared_bytes());
    };
    if (trans_b)
      run(std::true_type{});
    else
      run(std::false_type{});
  }
}

// Step 2 for the panel of vocabulary rows v0 .. v0 + n − 1. A lane takes N consecutive logits
// at a time (N = 4: 16-byte loads; the vectors cover the first n − n % N, the rest one by one).
// The second pass over the row reads what the warp has just read (from L2).
template <class T, int N>
struct OnlineSoftmaxBody {
  LossWorkspace<T> ws;
  const int64_t* targets;
  int64_t tokens, panel, dim, v0, n;
  bool first;
  DT_HD void operator()(const Block& b, int bx, int, int, char*) const {
    const Warp warp = cuda::warp_of(b);
    const int64_t n_vec = n - n % N, step = int64_t(warp.lanes) * N;
    for (int vw = warp.index; vw < kRowsPerBlock; vw += warp.count) {
      const int64_t t = int64_t(bx) * kRowsPerBlock + vw;
      if (t >= tokens) continue;
      const float* row = ws.logits + t * panel;
      T* e = ws.weights ? ws.weights + t * panel : nullptr;
      const int64_t target = targets[t];
      if (target == kIgnored) {  // no gradient from ignored positions: E = 0, acc stays 0
        if (e)
          for (int64_t j = warp.lane; j < n; j += warp.lanes) e[j] = from_float<T>(0.0f);
        continue;
      }
      const float old_max = first ? -INFINITY : ws.running_max[t];
      const float old_sum = first ? 0.0f : ws.running_sum[t];
      float m = old_max;
      for (int64_t j = int64_t(warp.lane) * N; j < n_vec; j += step) {
        float x[N];
        cuda::load_n<N>(row + j, x);
#pragma unroll
        for (int k = 0; k < N; ++k) m = fmaxf(m, x[k]);
      }
      for (int64_t j = n_vec + warp.lane; j < n; j += warp.lanes) m = fmaxf(m, row[j]);
      m = cuda::warp_max(m);
      float s = 0.0f;
      for (int64_t j = int64_t(warp.lane) * N; j < n_vec; j += step) {
        float x[N];
        cuda::load_n<N>(row + j, x);
#pragma unroll
        for (int k = 0; k < N; ++k) {
          x[k] = expf(x[k] - m);
          s += x[k];
        }
        if (e) cuda::store_n<N>(e + j, x);
      }
      for (int64_t j = n_vec + warp.lane; j < n; j += warp.lanes) {
        const float ej = expf(row[j] - m);
        s += ej;
        if (e) e[j] = from_float<T>(ej);
      }
      s = cuda::warp_sum(s);
      // m is the same in every lane (butterfly), so is the branch: the whole warp rescales.
      const float r = first ? 0.0f : expf(old_max - m);
      if (e && !first && m != old_max) {
        float* acc = ws.acc + t * dim;
        const int64_t dim_vec = dim - dim % N;
        for (int64_t i = int64_t(warp.lane) * N; i < dim_vec; i += step) {
          float a[N];
          cuda::load_n<N>(acc + i, a);
#pragma unroll
          for (int k = 0; k < N; ++k) a[k] *= r;
          cuda::store_n<N>(acc + i, a);
        }
        for (int64_t i = dim_vec + warp.lane; i < dim; i += warp.lanes) acc[i] *= r;
      }
      if (warp.lane == 0) {
        ws.running_max[t] = m;
        ws.running_sum[t] = r * old_sum + s;
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
                                         void* workspace, int64_t panel_rows,
                                         const cuda::Blas& blas) {
  DT_CHECK(tokens >= 0 && vocab > 0 && dim > 0 && panel_rows > 0,
           "cross-entropy (CUDA): bad sizes: tokens=", tokens, " vocab=", vocab, " dim=", dim,
           " panel_rows=", panel_rows);
  const cuda::Target& target = blas.target();
  size_t bytes = 0;
  const LossWorkspace<T> ws = carve_workspace<T>(tokens, dim, panel_rows, d_hidden != nullptr,
                                                 static_cast<char*>(workspace), &bytes);
  const dim3 row_blocks = cuda::blocks_for(tokens, kRowsPerBlock);
  if (tokens > 0)
    for (int64_t v0 = 0; v0 < vocab; v0 += panel_rows) {
      const int64_t n = vocab - v0 < panel_rows ? vocab - v0 : panel_rows;
      const T* w_panel = lm_head + v0 * dim;
      const bool first = v0 == 0;
      panel_product<T>(blas, "cross-entropy: logits of a panel", true, hidden, dim, w_panel, dim,
                       tokens, n, dim, false, ws.logits, panel_rows);
      // Vectors of 4 when every row starts 16-byte aligned (the workspace's arrays do).
      if (panel_rows % 4 == 0 && dim % 4 == 0)
        cuda::launch<kThreads>(
            target, "cross-entropy: online softmax",
            OnlineSoftmaxBody<T, 4>{ws, targets, tokens, panel_rows, dim, v0, n, first}, row_blocks);
      else
        cuda::launch<kThreads>(
            target, "cross-entropy: online softmax",
            OnlineSoftmaxBody<T, 1>{ws, targets, tokens, panel_rows, dim, v0, n, first}, row_blocks);
      if (d_hidden)
        panel_product<T>(blas, "cross-entropy: softmax-weighted rows", false, ws.weights,
                         panel_rows, w_panel, dim, tokens, dim, n, !first, ws.acc, dim);
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
                                                       T*, void*, int64_t, const cuda::Blas&);
DT_INSTANTIATE(float)
DT_INSTANTIATE(__nv_bfloat16)
#undef DT_INSTANTIATE

}  // namespace deltatune
