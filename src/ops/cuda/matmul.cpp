#include <cublas_v2.h>

#include <algorithm>
#include <type_traits>

#include "core/cuda/cuda_check.h"
#include "core/cuda/gpu_profile.h"
#include "core/profile.h"
#include "ops/matmul_cuda.h"

namespace deltatune {

namespace {

void check_cublas(cublasStatus_t status, const char* call) {
  if (status != CUBLAS_STATUS_SUCCESS)
    fail(call, " failed: ", cublasGetStatusName(status), ": ", cublasGetStatusString(status));
}

// cuBLAS's own advice for Hopper: a 32 MiB workspace per handle.
constexpr size_t kCublasWorkspaceBytes = size_t(32) << 20;

using bf16 = __nv_bfloat16;

float as_float(bf16 x) { return __bfloat162float(x); }
float as_float(float x) { return x; }
template <class C>
C from_float(float x) {
  if constexpr (std::is_same_v<C, float>)
    return x;
  else
    return __float2bfloat16(x);
}

// The emulation: one float sum per element, in k order.
template <class C>
void gemm_on_host(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                  const bf16* a, int64_t lda, const bf16* b, int64_t ldb, float beta, C* c,
                  int64_t ldc) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      float sum = 0.0f;
      for (int64_t p = 0; p < k; ++p)
        sum += as_float(trans_a ? a[p * lda + i] : a[i * lda + p]) *
               as_float(trans_b ? b[j * ldb + p] : b[p * ldb + j]);
      C& out = c[i * ldc + j];
      out = from_float<C>(alpha * sum + (beta != 0.0f ? beta * as_float(out) : 0.0f));
    }
}

}  // namespace

namespace cuda {

Blas::Blas(const Target& target) : target_(target) {
  if (target.emulate) return;
  cublasHandle_t h = nullptr;
  check_cublas(cublasCreate(&h), "cublasCreate");
  handle_ = h;
  check_cublas(cublasSetStream(h, target.stream), "cublasSetStream");
  workspace_ = Memory(kCublasWorkspaceBytes, target);
  check_cublas(cublasSetWorkspace(h, workspace_.data(), workspace_.bytes()), "cublasSetWorkspace");
}

Blas::~Blas() {
  if (handle_) cublasDestroy(handle_);
}

}  // namespace cuda

template <class C>
void gemm_cuda(const cuda::Blas& blas, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
               float alpha, const bf16* a, int64_t lda, const bf16* b, int64_t ldb, float beta, C* c,
               int64_t ldc) {
  if (m == 0 || n == 0) return;
  DT_CHECK(m < (int64_t(1) << 31) && n < (int64_t(1) << 31) && k < (int64_t(1) << 31),
           "gemm_cuda: sizes beyond int32 (", m, " x ", n, " x ", k, ")");
  if (blas.target().emulate) {
    gemm_on_host(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  // A row-major matrix stored with row stride ld is, read column-major, its transpose with the
  // same ld. So row-major C = op(A) op(B) is column-major Cᵀ = op(B)ᵀ op(A)ᵀ: the operands swap
  // places and keep their own transpose flags.
  const cublasOperation_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  constexpr cudaDataType_t c_type = std::is_same_v<C, float> ? CUDA_R_32F : CUDA_R_16BF;
  // DELTATUNE_PROFILE=1: each product timed with events, like the kernels (core/cuda/gpu_profile.h).
  const cuda::GpuProfileMark mark = cuda::gpu_profile_begin(blas.target().stream);
  check_cublas(cublasGemmEx(blas.handle(), op_b, op_a, int(n), int(m), int(k), &alpha, b,
                            CUDA_R_16BF, int(ldb), a, CUDA_R_16BF, int(lda), &beta, c, c_type,
                            int(ldc), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
               "cublasGemmEx");
  if (mark.start) {
    // Thin products (a side of at most 64: LoRA's, in_proj_a/b's) apart from the wide ones.
    const bool thin = std::min({m, n, k}) <= 64;
    cuda::gpu_profile_end(std::is_same_v<C, float> ? "cuBLAS products (float out: LoRA dA, dB; the loss)"
                          : thin                   ? "cuBLAS products (bf16 out, thin: a side <= 64)"
                                                   : "cuBLAS products (bf16 out)",
                          mark, blas.target().stream);
  }
}

template void gemm_cuda<bf16>(const cuda::Blas&, bool, bool, int64_t, int64_t, int64_t, float,
                              const bf16*, int64_t, const bf16*, int64_t, float, bf16*, int64_t);
template void gemm_cuda<float>(const cuda::Blas&, bool, bool, int64_t, int64_t, int64_t, float,
                               const bf16*, int64_t, const bf16*, int64_t, float, float*, int64_t);

}  // namespace deltatune
