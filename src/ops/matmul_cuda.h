// Matrix products of the GPU model path (ops/matmul.h's gemm, on the GPU): bf16 operands, float
// accumulation, the result written as bf16 (activations) or float (LoRA factor gradients), through
// cuBLAS (cublasGemmEx, CUBLAS_COMPUTE_32F). Row-major like the CPU gemm:
//   C[m, n] = alpha · op(A) op(B) + beta · C,   op = transpose when the flag is set.
// cuBLAS is column-major: a row-major C is a column-major Cᵀ = op(B)ᵀ op(A)ᵀ, so the call swaps the
// operands instead of transposing anything.
// Under cuda::Target::host_emulation() the same product runs as plain loops on host memory
// (float accumulation, the same rounding of the result), so the model path can be tested on a
// machine without a GPU.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "core/cuda/device_arena.h"
#include "core/cuda/target.h"

struct cublasContext;

namespace deltatune::cuda {

// A cuBLAS handle bound to the target's stream (none under emulation), with its workspace.
class Blas {
 public:
  explicit Blas(const Target& target);
  Blas(const Blas&) = delete;
  Blas& operator=(const Blas&) = delete;
  ~Blas();
  const Target& target() const { return target_; }
  cublasContext* handle() const { return handle_; }
  size_t workspace_bytes() const { return workspace_.bytes(); }
  // cuBLAS needs its workspace only while a product runs: between products, kernels queued on the
  // same stream may use it as scratch (none under emulation: workspace_bytes() is 0).
  void* workspace() const { return workspace_.data(); }

 private:
  Target target_;
  cublasContext* handle_ = nullptr;
  Memory workspace_;
};

}  // namespace deltatune::cuda

namespace deltatune {

// C is __nv_bfloat16 or float. lda, ldb, ldc: row strides of the stored (untransposed) matrices.
template <class C>
void gemm_cuda(const cuda::Blas& blas, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
               float alpha, const __nv_bfloat16* a, int64_t lda, const __nv_bfloat16* b,
               int64_t ldb, float beta, C* c, int64_t ldc);

}  // namespace deltatune
