// The gated delta rule on an NVIDIA GPU: the chunked form of ops/delta_rule.h with the same
// layouts, equations and outputs, on device pointers. q, k, v, out and their gradients are bf16
// (training) or float (tests); g, beta, the recurrent states and every accumulation are float.
// The design (stages, tensor cores, what is fused) is described in ops/cuda/delta_rule.cu; the
// backward's kernels are in ops/cuda/delta_rule_backward.cu; tests in tests/cuda.
//
// Limits of this first version: head dims dk, dv <= 128 (any value; multiples of 8 take the fast
// copies). Chunks are 64 tokens for bf16 and 32 for float (a float tile takes twice the shared
// memory; the chunk length changes only the rounding, not the function).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <span>
#include <vector>

#include "core/cuda/device_buffer.h"
#include "ops/delta_rule.h"

namespace deltatune {

template <class T>
constexpr int delta_rule_cuda_chunk() {
  return sizeof(T) == 2 ? 64 : 32;
}
constexpr int kDeltaRuleCudaMaxHeadDim = 128;

// One packed batch cut into chunks (never straddling a sequence), built on the host once per
// batch and copied to the device; every layer's forward and backward reuses it.
class DeltaRuleCudaPlan {
 public:
  // chunk: delta_rule_cuda_chunk<T>() of the element type the calls will use.
  DeltaRuleCudaPlan(const DeltaRuleShape& shape, std::span<const int64_t> cu_seqlens, int chunk);

  const DeltaRuleShape& shape() const { return shape_; }
  int chunk() const { return chunk_; }
  int64_t num_sequences() const { return num_sequences_; }
  int64_t num_chunks() const { return num_chunks_; }
  // Device scratch each call needs, in bytes; the caller owns it (one buffer serves every layer).
  size_t forward_workspace_bytes() const;
  size_t backward_workspace_bytes() const;
  // Columns of the state one block of the sequential kernels owns: 0 = chosen from the shape;
  // 16, 32 or 64 to compare them (benchmarks). bf16 on the GPU: 16 per warp, so 1, 2 or 4 warps
  // (default 2 forward, 4 backward); float and the emulation: 16 or 32 (64 counts as 16).
  int value_block = 0;
  // bf16 on the GPU: warps sharing the key dim of 16 state columns, 1 or 2 (0 = 2).
  int key_split = 0;

  // The chunk table: t0 [chunks], len [chunks], first chunk of each sequence [sequences + 1].
  const std::vector<int32_t>& host_table() const { return table_; }
  const int32_t* device_table() const { return device_table_.data(); }

 private:
  DeltaRuleShape shape_;
  int chunk_;
  int64_t num_sequences_, num_chunks_;
  std::vector<int32_t> table_;
  cuda::DeviceBuffer<int32_t> device_table_;
};

// Forward: out [T, Hv, dv]; final_state [nseq, Hv, dk, dv] (nullable = not wanted) from
// initial_state (nullable = zero). Asynchronous on `stream`.
template <class T>
void gated_delta_rule_cuda_forward(const DeltaRuleCudaPlan& plan, const T* q, const T* k,
                                   const T* v, const float* g, const float* beta,
                                   const float* initial_state, T* out, float* final_state,
                                   void* workspace, cudaStream_t stream);

// Backward: the gradients of ops/delta_rule.h's backward (dq, dk summed over the value heads that
// share a key head), overwritten; d_final_state nullable = zero; d_initial_state nullable = not
// wanted. Recomputes what the forward computed; asynchronous on `stream`.
template <class T>
void gated_delta_rule_cuda_backward(const DeltaRuleCudaPlan& plan, const T* q, const T* k,
                                    const T* v, const float* g, const float* beta,
                                    const float* initial_state, const T* d_out,
                                    const float* d_final_state, T* dq, T* dk, T* dv, float* dg,
                                    float* dbeta, float* d_initial_state, void* workspace,
                                    cudaStream_t stream);

// The same kernels run on the host, one thread per block, on host pointers (the tests' way to
// check the kernels where there is no GPU; see ops/cuda/block_tile.cuh). Slow; no GPU needed.
template <class T>
void gated_delta_rule_cuda_emulated_forward(const DeltaRuleShape& shape,
                                            std::span<const int64_t> cu_seqlens, const T* q,
                                            const T* k, const T* v, const float* g,
                                            const float* beta, const float* initial_state, T* out,
                                            float* final_state);
template <class T>
void gated_delta_rule_cuda_emulated_backward(const DeltaRuleShape& shape,
                                             std::span<const int64_t> cu_seqlens, const T* q,
                                             const T* k, const T* v, const float* g,
                                             const float* beta, const float* initial_state,
                                             const T* d_out, const float* d_final_state, T* dq,
                                             T* dk, T* dv, float* dg, float* dbeta,
                                             float* d_initial_state);

}  // namespace deltatune
