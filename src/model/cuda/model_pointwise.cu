// The elementwise kernels of model/cuda/model_pointwise.h: memory-bound, kPerBlock elements (or
// rows) per block, consecutive threads on consecutive elements.
#include <cmath>

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

struct AddBody {
  bf16* y;
  const bf16* x;
  int64_t n;
  DT_HD void operator()(const Block& b, int bx, int, int, char*) const {
    for_block_share(b, bx, n, [&](int64_t i) { y[i] = from_float<bf16>(to_float(y[i]) + to_float(x[i])); });
  }
};

struct ScaleBody {
  bf16* x;
  int64_t n;
  float s;
  DT_HD void operator()(const Block& b, int bx, int, int, char*) const {
    for_block_share(b, bx, n, [&](int64_t i) { x[i] = from_float<bf16>(to_float(x[i]) * s); });
  }
};

// One element of the [T, C] conv output per thread; the thread of element (t, h) for h < Hv also
// computes head h's β and g of token t, so each is computed once.
struct SplitBody {
  const bf16 *qkv, *b_logit, *a_logit;
  const float *A_log, *dt_bias;
  int64_t tokens, key_dim, value_dim;
  int heads_v;
  bf16 *q, *k, *v;
  float *beta, *g;
  DT_HD void operator()(const Block& blk, int bx, int, int, char*) const {
    const int64_t C = 2 * key_dim + value_dim;
    for_block_share(blk, bx, tokens * C, [&](int64_t i) {
      const int64_t t = i / C, c = i % C;
      const bf16 x = qkv[i];
      if (c < key_dim)
        q[t * key_dim + c] = x;
      else if (c < 2 * key_dim)
        k[t * key_dim + c - key_dim] = x;
      else
        v[t * value_dim + c - 2 * key_dim] = x;
      if (c < heads_v) {
        const int64_t j = t * heads_v + c;
        beta[j] = cuda::sigmoidf(to_float(b_logit[j]));
        g[j] = -expf(A_log[c]) * softplusf(to_float(a_logit[j]) + dt_bias[c]);
      }
    });
  }
};

struct SplitBackwardBody {
  const bf16 *dq, *dk, *dv;
  const float *d_beta, *d_g, *beta;
  const bf16* a_logit;
  const float *A_log, *dt_bias;
  int64_t tokens, key_dim, value_dim;
  int heads_v;
  bf16 *d_qkv, *d_b, *d_a;
  DT_HD void operator()(const Block& blk, int bx, int, int, char*) const {
    const int64_t C = 2 * key_dim + value_dim;
    for_block_share(blk, bx, tokens * C, [&](int64_t i) {
      const int64_t t = i / C, c = i % C;
      d_qkv[i] = c < key_dim       ? dq[t * key_dim + c]
                 : c < 2 * key_dim ? dk[t * key_dim + c - key_dim]
                                   : dv[t * value_dim + c - 2 * key_dim];
      if (c < heads_v) {
        const int64_t j = t * heads_v + c;
        d_b[j] = from_float<bf16>(d_beta[j] * beta[j] * (1.0f - beta[j]));
        d_a[j] = from_float<bf16>(d_g[j] * -expf(A_log[c]) *
                                  softplus_gradf(to_float(a_logit[j]) + dt_bias[c]));
      }
    });
  }
};

struct GateBody {
  const bf16 *o, *qg, *d_gated;
  int64_t tokens;
  int heads, hd;
  bf16 *gated, *d_o, *d_qg;  // forward: gated; backward: d_o, d_qg
  DT_HD void operator()(const Block& b, int bx, int, int, char*) const {
    for_block_share(b, bx, tokens * heads * hd, [&](int64_t i) {
      const int64_t th = i / hd, c = i % hd;  // th = t · H + h
      const int64_t gi = th * 2 * hd + hd + c;
      const float s = cuda::sigmoidf(to_float(qg[gi]));
      if (gated) {
        gated[i] = from_float<bf16>(to_float(o[i]) * s);
      } else {
        const float dg = to_float(d_gated[i]);
        d_o[i] = from_float<bf16>(dg * s);
        d_qg[gi] = from_float<bf16>(dg * to_float(o[i]) * s * (1.0f - s));
      }
    });
  }
};

dim3 blocks(int64_t n) { return cuda::blocks_for(n, kPerBlock); }

}  // namespace

void embedding_cuda_forward(const int64_t* ids, int64_t tokens, const bf16* table, int64_t dim,
                            bf16* x, cuda::Target target) {
  cuda::launch<kThreads>(target, "embedding", EmbeddingBody{ids, table, dim, tokens * dim, x},
                         blocks(tokens * dim));
}

void add_cuda(bf16* y, const bf16* x, int64_t n, cuda::Target target) {
  cuda::launch<kThreads>(target, "residual add", AddBody{y, x, n}, blocks(n));
}

void scale_cuda(bf16* x, int64_t n, float s, cuda::Target target) {
  cuda::launch<kThreads>(target, "scale", ScaleBody{x, n, s}, blocks(n));
}

void gated_deltanet_split_cuda(const bf16* qkv_conv, const bf16* b, const bf16* a,
                               const float* A_log, const float* dt_bias, int64_t tokens,
                               int64_t key_dim, int64_t value_dim, int heads_v, bf16* q_raw,
                               bf16* k_raw, bf16* v, float* beta, float* g, cuda::Target target) {
  DT_CHECK(heads_v <= 2 * key_dim + value_dim, "gated deltanet split: more heads than channels");
  cuda::launch<kThreads>(target, "gated deltanet: split q, k, v; beta, g",
                         SplitBody{qkv_conv, b, a, A_log, dt_bias, tokens, key_dim, value_dim,
                                   heads_v, q_raw, k_raw, v, beta, g},
                         blocks(tokens * (2 * key_dim + value_dim)));
}

void gated_deltanet_split_backward_cuda(const bf16* d_q_raw, const bf16* d_k_raw, const bf16* d_v,
                                        const float* d_beta, const float* d_g, const float* beta,
                                        const bf16* a, const float* A_log, const float* dt_bias,
                                        int64_t tokens, int64_t key_dim, int64_t value_dim,
                                        int heads_v, bf16* d_qkv_conv, bf16* d_b, bf16* d_a,
                                        cuda::Target target) {
  cuda::launch<kThreads>(target, "gated deltanet: split backward",
                         SplitBackwardBody{d_q_raw, d_k_raw, d_v, d_beta, d_g, beta, a, A_log,
                                           dt_bias, tokens, key_dim, value_dim, heads_v,
                                           d_qkv_conv, d_b, d_a},
                         blocks(tokens * (2 * key_dim + value_dim)));
}

void attention_gate_cuda_forward(const bf16* o, const bf16* qg, int64_t tokens, int heads,
                                 int head_dim, bf16* gated, cuda::Target target) {
  cuda::launch<kThreads>(target, "attention output gate",
                         GateBody{o, qg, nullptr, tokens, heads, head_dim, gated, nullptr, nullptr},
                         blocks(tokens * heads * head_dim));
}

void attention_gate_cuda_backward(const bf16* o, const bf16* qg, const bf16* d_gated,
                                  int64_t tokens, int heads, int head_dim, bf16* d_o, bf16* d_qg,
                                  cuda::Target target) {
  cuda::launch<kThreads>(target, "attention output gate backward",
                         GateBody{o, qg, d_gated, tokens, heads, head_dim, nullptr, d_o, d_qg},
                         blocks(tokens * heads * head_dim));
}

}  // namespace deltatune
