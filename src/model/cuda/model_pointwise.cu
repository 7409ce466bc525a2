// The elementwise kernels of model/cuda/model_pointwise.h: memory-bound, kPerBlock elements (or
// rows) per block, consecutive threads on consecutive elements.
#include <cmath>
#include <initializer_list>

#include "model/cuda/model_pointwise.h"
#include "ops/cuda/kernel_runner.cuh"

namespace deltatune {

namespace {

using cuda::Block;
using cuda::bf16;
using cuda::from_float;
using cuda::to_float;

constexpr int kThreads = 256;
constexpr int64_t kPerBlock = 8 * kThreads;

// Calls f(i) for every i of this block's share of [0, n).
template <class F>
DT_HD void for_block_share(const Block& b, int bx, int64_t n, const F& f) {
  const int64_t end = cuda::min_of(n, (int64_t(bx) + 1) * kPerBlock);
  for (int64_t i = int64_t(bx) * kPerBlock + b.thread; i < end; i += b.threads) f(i);
}

// torch's softplus (threshold 20) and its derivative, as ops/activation.h.
DT_HD float softplusf(float x) { return x > 20.0f ? x : log1pf(expf(x)); }
DT_HD float softplus_gradf(float x) { return x > 20.0f ? 1.0f : cuda::sigmoidf(x); }

struct EmbeddingBody {
  const int64_t* ids;
  const bf16* table;
  int64_t dim, n;
  bf16* x;
  DT_HD void operator()(const Block& b, int bx, int, int, char*) const {
    for_block_share(b, bx, n, [&](int64_t i) { x[i] = table[ids[i / dim] * dim + i % dim]; });
  }
};

template <int N>
struct AddBody {
  bf16* y;
  const bf16* x;
  int64_t n;
  DT_HD void operator()(const Block& b, int bx, int, int, char*) const {
    cuda::for_vectors<N>(b, bx, kPerBlock, n, [&](int64_t i) {
      float yv[N], xv[N];
      cuda::load_n<N>(y + i, yv);
      cuda::load_n<N>(x + i, xv);
#pragma unroll
      for (int k = 0; k < N; ++k) yv[k] += xv[k];
      cuda::store_n<N>(y + i, yv);
    });
  }
};

template <int N>
struct ScaleBody {
  bf16* x;
  int64_t n;
  float s;
  DT_HD void operator()(const Block& b, int bx, int, int, char*) const {
    cuda::for_vectors<N>(b, bx, kPerBlock, n, [&](int64_t i) {
      float v[N];
      cuda::load_n<N>(x + i, v);
#pragma unroll
      for (int k = 0; k < N; ++k) v[k] *= s;
      cuda::store_n<N>(x + i, v);
    });
  }
};

// β and the decay of each (token, value head): one element a thread.
struct GatesBody {
  const bf16 *b_logit, *a_logit;
  const float *A_log, *dt_bias;
  int64_t n;
  int heads_v;
  float *beta, *g;
  DT_HD void operator()(const Block& blk, int bx, int, int, char*) const {
    for_block_share(blk, bx, n, [&](int64_t j) {
      const int h = int(j % heads_v);
      beta[j] = cuda::sigmoidf(to_float(b_logit[j]));
      g[j] = -expf(A_log[h]) * softplusf(to_float(a_logit[j]) + dt_bias[h]);
    });
  }
};

struct GatesBackwardBody {
  const float *d_beta, *d_g, *beta;
  const bf16* a_logit;
  const float *A_log, *dt_bias;
  int64_t n;
  int heads_v;
  bf16 *d_b, *d_a;
  DT_HD void operator()(const Block& blk, int bx, int, int, char*) const {
    for_block_share(blk, bx, n, [&](int64_t j) {
      const int h = int(j % heads_v);
      d_b[j] = from_float<bf16>(d_beta[j] * beta[j] * (1.0f - beta[j]));
      d_a[j] = from_float<bf16>(d_g[j] * -expf(A_log[h]) *
                                softplus_gradf(to_float(a_logit[j]) + dt_bias[h]));
    });
  }
};

// o, gated [T, H, hd]; qg [T, H, 2 hd] (the gate is each head's second half).
template <int N>
struct GateBody {
  const bf16 *o, *qg, *d_gated;
  int64_t tokens;
  int heads, hd;
  bf16 *gated, *d_o, *d_qg;  // forward: gated; backward: d_o, d_qg
  DT_HD void operator()(const Block& b, int bx, int, int, char*) const {
    cuda::for_vectors<N>(b, bx, kPerBlock, tokens * heads * hd, [&](int64_t i) {
      const int64_t th = i / hd, c = i % hd;  // th = t · H + h
      const int64_t gi = th * 2 * hd + hd + c;
      float s[N], ov[N];
      cuda::load_n<N>(qg + gi, s);
      cuda::load_n<N>(o + i, ov);
#pragma unroll
      for (int k = 0; k < N; ++k) s[k] = cuda::sigmoidf(s[k]);
      if (gated) {
#pragma unroll
        for (int k = 0; k < N; ++k) ov[k] *= s[k];
        cuda::store_n<N>(gated + i, ov);
      } else {
        float dg[N], d_ov[N], d_gv[N];
        cuda::load_n<N>(d_gated + i, dg);
#pragma unroll
        for (int k = 0; k < N; ++k) {
          d_ov[k] = dg[k] * s[k];
          d_gv[k] = dg[k] * ov[k] * s[k] * (1.0f - s[k]);
        }
        cuda::store_n<N>(d_o + i, d_ov);
        cuda::store_n<N>(d_qg + gi, d_gv);
      }
    });
  }
};

// Launches Body<8> (16-byte vectors) when every array is 16-byte aligned and each extent a
// multiple of 8 elements, else Body<1>.
template <template <int> class Body, class... Args>
void launch_vectorized(cuda::Target target, const char* name, bool vectorizable, int64_t n,
                       Args... args) {
  if (vectorizable)
    cuda::launch<kThreads>(target, name, Body<8>{args...}, cuda::blocks_for(n, kPerBlock));
  else
    cuda::launch<kThreads>(target, name, Body<1>{args...}, cuda::blocks_for(n, kPerBlock));
}

dim3 blocks(int64_t n) { return cuda::blocks_for(n, kPerBlock); }

}  // namespace

void embedding_cuda_forward(const int64_t* ids, int64_t tokens, const bf16* table, int64_t dim,
                            bf16* x, cuda::Target target) {
  cuda::launch<kThreads>(target, "embedding", EmbeddingBody{ids, table, dim, tokens * dim, x},
                         blocks(tokens * dim));
}

void add_cuda(bf16* y, const bf16* x, int64_t n, cuda::Target target) {
  launch_vectorized<AddBody>(target, "residual add", n % 8 == 0 && cuda::aligned_16({y, x}), n, y,
                             x, n);
}

void scale_cuda(bf16* x, int64_t n, float s, cuda::Target target) {
  launch_vectorized<ScaleBody>(target, "scale", n % 8 == 0 && cuda::aligned_16({x}), n, x, n, s);
}

void gated_deltanet_gates_cuda(const bf16* b, const bf16* a, const float* A_log,
                               const float* dt_bias, int64_t tokens, int heads_v, float* beta,
                               float* g, cuda::Target target) {
  const int64_t n = tokens * heads_v;
  cuda::launch<kThreads>(target, "gated deltanet: beta, g",
                         GatesBody{b, a, A_log, dt_bias, n, heads_v, beta, g},
                         cuda::blocks_for(n, kPerBlock));
}

void gated_deltanet_gates_backward_cuda(const float* d_beta, const float* d_g, const float* beta,
                                        const bf16* a, const float* A_log, const float* dt_bias,
                                        int64_t tokens, int heads_v, bf16* d_b, bf16* d_a,
                                        cuda::Target target) {
  const int64_t n = tokens * heads_v;
  const GatesBackwardBody body{d_beta, d_g, beta, a, A_log, dt_bias, n, heads_v, d_b, d_a};
  cuda::launch<kThreads>(target, "gated deltanet: beta, g backward", body,
                         cuda::blocks_for(n, kPerBlock));
}

void attention_gate_cuda_forward(const bf16* o, const bf16* qg, int64_t tokens, int heads,
                                 int head_dim, bf16* gated, cuda::Target target) {
  launch_vectorized<GateBody>(target, "attention output gate",
                              head_dim % 8 == 0 && cuda::aligned_16({o, qg, gated}),
                              tokens * heads * head_dim, o, qg, nullptr, tokens, heads, head_dim,
                              gated, nullptr, nullptr);
}

void attention_gate_cuda_backward(const bf16* o, const bf16* qg, const bf16* d_gated,
                                  int64_t tokens, int heads, int head_dim, bf16* d_o, bf16* d_qg,
                                  cuda::Target target) {
  launch_vectorized<GateBody>(target, "attention output gate backward",
                              head_dim % 8 == 0 && cuda::aligned_16({o, qg, d_gated, d_o, d_qg}),
                              tokens * heads * head_dim, o, qg, d_gated, tokens, heads, head_dim,
                              nullptr, d_o, d_qg);
}

}  // namespace deltatune
