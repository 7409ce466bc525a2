// Causal softmax attention with grouped KV heads (GQA) on packed sequences: block-diagonal, each
// query sees the keys of its own sequence up to itself. Softmax in the compute type with the max
// subtracted; the log-sum-exp of each row is kept for the backward.
//   q   [T, H, d]  row stride ldq per token (default H*d)
//   k,v [T, Hkv, d] row stride ldkv (default Hkv*d)
//   out [T, H, d]  contiguous;  lse [T, H]
// Query head h reads kv head h / (H / Hkv).
#pragma once

#include <cstdint>
#include <span>

namespace deltatune {

struct AttentionShape {
  int64_t tokens;
  int heads;
  int kv_heads;
  int head_dim;
  double scale;
};

template <class T>
void attention_forward(const AttentionShape& shape, std::span<const int64_t> cu_seqlens,
                       const T* q, int64_t ldq, const T* k, const T* v, int64_t ldkv, T* out,
                       T* lse);

// Queries of the last `tokens` positions of one sequence whose first `past` positions are already
// in k, v (a KV cache): query t sees keys 0 .. past + t. k, v: [past + tokens, Hkv, d] (row stride
// ldkv). For decoding; the training path uses attention_forward.
template <class T>
void attention_forward_with_past(const AttentionShape& shape, int64_t past, const T* q, int64_t ldq, const T* k,
                                 const T* v, int64_t ldkv, T* out);

// dq [T, H, d] (row stride ldq), dk, dv [T, Hkv, d] (row stride ldkv): overwritten.
template <class T>
void attention_backward(const AttentionShape& shape, std::span<const int64_t> cu_seqlens,
                        const T* q, int64_t ldq, const T* k, const T* v, int64_t ldkv,
                        const T* out, const T* lse, const T* d_out, T* dq, T* dk, T* dv);

}  // namespace deltatune
