// Causal softmax attention with grouped KV heads (ops/attention.h) on an NVIDIA GPU, flash-style:
// scores exist one tile at a time in shared memory, never as a [T x T] matrix; packed sequences
// are block-diagonal (each query sees the keys of its own sequence up to itself). Same layouts as
// the CPU reference, on device pointers (or host pointers under cuda::Target::host_emulation()):
//   q   [T, H, d]  row stride ldq;   k, v [T, Hkv, d]  row stride ldkv
//   out [T, H, d]  contiguous;       lse  [T, H] float (the log-sum-exp of each scaled score row)
// q, k, v, out and the gradients are bf16 (training) or float (tests); scores, softmax and every
// accumulation are float. head_dim <= 256 (the model's); query head h reads kv head h / (H / Hkv).
// cu_seqlens: num_sequences + 1 token offsets in the memory the target reads; max_seqlen: the
// longest sequence (sizes the grid). Kernels in ops/cuda/attention.cu.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/cuda/target.h"
#include "ops/attention.h"

namespace deltatune {

constexpr int kAttentionCudaMaxHeadDim = 256;

template <class T>
void attention_cuda_forward(const AttentionShape& shape, const int64_t* cu_seqlens,
                            int64_t num_sequences, int64_t max_seqlen, const T* q, int64_t ldq,
                            const T* k, const T* v, int64_t ldkv, T* out, float* lse,
                            cuda::Target target);

// Scratch of the backward: D = rowsum(dO ⊙ O), one float per (token, head).
size_t attention_cuda_backward_workspace_bytes(const AttentionShape& shape);

// dq [T, H, d] (row stride ldq), dk, dv [T, Hkv, d] (row stride ldkv): overwritten. Recomputes the
// scores from q, k and lse. Deterministic: each gradient row is summed by one block, no atomics.
template <class T>
void attention_cuda_backward(const AttentionShape& shape, const int64_t* cu_seqlens,
                             int64_t num_sequences, int64_t max_seqlen, const T* q, int64_t ldq,
                             const T* k, const T* v, int64_t ldkv, const T* out, const float* lse,
                             const T* d_out, T* dq, T* dk, T* dv, void* workspace,
                             cuda::Target target);

}  // namespace deltatune
