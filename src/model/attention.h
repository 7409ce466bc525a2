// Gated full attention (`self_attn`, spec/qwen35.md), forward and backward:
//   [q | gate] per head = x W_q^T;  k = x W_k^T;  v = x W_v^T
//   q, k: zero-centred RMSNorm per head, then RoPE on the first rotary_dim dims
//   o = causal GQA softmax attention (block-diagonal in a pack), scale hd^-1/2
//   out = (o * sigmoid(gate)) W_o^T
#pragma once

#include <vector>

#include "model/layer_context.h"
#include "model/weights.h"
#include "ops/rope.h"

namespace deltatune {

template <class T>
struct FullAttentionActivations {
  T* qg;     // [T, H, 2*hd] q_proj output: per head the query, then the gate
  T* k_raw;  // [T, Hkv, hd] k_proj output
  T* v;      // [T, Hkv, hd]
  T* q;      // [T, H, hd] normed and rotated
  T* k;      // [T, Hkv, hd] normed and rotated
  T* o;      // [T, H, hd] attention output
  T* lse;    // [T, H]
  T* gated;  // [T, H*hd] o * sigmoid(gate), the o_proj input
};

// An inference session's KV cache for one attention layer (one sequence): keys after norm and
// RoPE, and values, of every position so far.
template <class T>
struct AttentionCache {
  std::vector<T> k;  // [length, Hkv, hd]
  std::vector<T> v;  // [length, Hkv, hd]
  int64_t length = 0;
};

template <class T>
struct FullAttentionParams {
  T* q_norm;  // [hd]
  T* k_norm;  // [hd]
  const RopeTable<T>* rope;
};

template <class T>
FullAttentionParams<T> full_attention_params(const LayerContext& ctx, const FullAttentionWeights& w,
                                             const RopeTable<T>& rope);

// With `cache` (inference: one sequence continuing earlier calls) the new keys and values are
// appended to it and the queries attend to all of it; the rope table must hold the new tokens'
// absolute positions.
template <class T>
void full_attention_forward(const LayerContext& ctx, const FullAttentionWeights& w,
                            const FullAttentionParams<T>& p, const T* x, T* out,
                            FullAttentionActivations<T>& act, AttentionCache<T>* cache = nullptr);

template <class T>
void full_attention_backward(const LayerContext& ctx, const FullAttentionWeights& w,
                             const FullAttentionParams<T>& p, const T* x,
                             const FullAttentionActivations<T>& act, const T* d_out, T* dx);

}  // namespace deltatune
