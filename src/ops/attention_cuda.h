// Causal softmax attention with grouped KV heads on packed sequences (ops/attention.h) on an
// NVIDIA GPU, flash style: tiles of queries and keys in shared memory, an online softmax, and no
// [T × T] matrix in global memory. Same layouts and equations as the CPU reference; q, k, v, out
// and their gradients are bf16 (training) or float (tests), lse and every sum float. Device
// pointers (host pointers under cuda::Target::host_emulation()). Kernels in
// ops/cuda/attention.cu; head_dim up to kAttentionCudaMaxHeadDim.
//   q   [T, H, d]    row stride ldq per token;   k, v [T, Hkv, d]  row stride ldkv
//   out [T, H, d]    contiguous;                 lse  [T, H] float (natural log, scale included)
// cu_seqlens: num_sequences + 1 int64 token offsets in the target's memory; a query sees the keys
// of its own sequence up to itself. Query head h reads kv head h / (H / Hkv).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/cuda/target.h"
#include "ops/attention.h"

namespace deltatune {

constexpr int kAttentionCudaMaxHeadDim = 256;

template <class T>
void attention_cuda_forward(const AttentionShape& shape, const int64_t* cu_seqlens,
                            int64_t num_sequences, const T* q, int64_t ldq, const T* k,
                            const T* v, int64_t ldkv, T* out, float* lse, cuda::Target target);

// Scratch of the backward: D = rowsum(dO ∘ O) per (token, head), float.
size_t attention_cuda_backward_workspace_bytes(int64_t tokens, int heads);

// dq [T, H, d] (row stride ldq), dk, dv [T, Hkv, d] (row stride ldkv): overwritten.
// Deterministic: dK and dV of a key tile are summed by one block over every query of its group,
// dQ of a query tile by another (the products with Q Kᵀ and dO Vᵀ are recomputed for it).
template <class T>
void attention_cuda_backward(const AttentionShape& shape, const int64_t* cu_seqlens,
                             int64_t num_sequences, const T* q, int64_t ldq, const T* k,
                             const T* v, int64_t ldkv, const T* out, const float* lse,
                             const T* d_out, T* dq, T* dk, T* dv, void* workspace,
                             cuda::Target target);

}  // namespace deltatune
