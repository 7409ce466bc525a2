// The thin products of the LoRA linear layer on the GPU (lora_linear_cuda.h): one side of each is
// the rank r (16 typically), the other a whole [rows × width] activation, so each is bound by
// reading (or writing) that activation once, not by arithmetic. These kernels read the wide
// operand once with 16-byte asynchronous copies, multiply on the tensor cores (bf16, float
// accumulation) and take any r (in groups of 64 where r is larger):
//   down    out = alpha · x Fᵀ                 u = x Aᵀ,  du = s · dy B
//   up      y = alpha · u Gᵀ + beta · y        y += s · u Bᵀ,  dx += du A
//   grad    grad += alpha · dᵀ u               dB += s · dyᵀ u,  dA += duᵀ x
// The gradient is a sum over rows: each block sums a fixed chunk of rows in a fixed order, the
// chunks' partial sums go to a workspace and are added in chunk order: deterministic, no atomics.
// They are the alternative to cuBLAS that lora_linear_cuda.cpp runs on request
// (DELTATUNE_LORA_KERNELS): all three together made a training step 5% slower than cuBLAS on the
// H100 (docs/performance.md, "GPU: the thin LoRA products").
// Device pointers, or host pointers under cuda::Target::host_emulation() (the same kernel bodies;
// products as float loops there). Built only with -DDELTATUNE_CUDA=ON.
#pragma once

#include <cuda_bf16.h>

#include <cstddef>
#include <cstdint>

#include "core/cuda/target.h"

namespace deltatune {

// out [rows, r] (row stride r) = alpha · x Fᵀ, x [rows, k] with row stride ldx. F is [r, k]:
// factor holds F row-major (factor_rk: A [r, in]) or Fᵀ, i.e. [k, r] (B [out, r]).
void lora_down_cuda(const __nv_bfloat16* x, int64_t rows, int64_t k, int64_t ldx,
                    const __nv_bfloat16* factor, bool factor_rk, int64_t r, float alpha,
                    __nv_bfloat16* out, cuda::Target target);

// y [rows, n] (row stride ldy) = alpha · u Gᵀ + beta · y, u [rows, r] (row stride r). G is [n, r]:
// factor holds G row-major (factor_nr: B [out, r]) or Gᵀ, i.e. [r, n] (A [r, in]). y is not read
// when beta is 0.
void lora_up_cuda(const __nv_bfloat16* u, int64_t rows, int64_t r, const __nv_bfloat16* factor,
                  bool factor_nr, int64_t n, float alpha, float beta, __nv_bfloat16* y,
                  int64_t ldy, cuda::Target target);

// grad += alpha · dᵀ u summed over the rows, d [rows, n] (row stride ldd), u [rows, r] (row stride
// r); grad is float [n, r] (grad_nr: dB) or its transpose [r, n] (dA). workspace: at least
// lora_grad_workspace_bytes(rows, n, r) bytes (may be null when that is 0).
size_t lora_grad_workspace_bytes(int64_t rows, int64_t n, int64_t r);
void lora_grad_cuda(const __nv_bfloat16* d, int64_t rows, int64_t n, int64_t ldd,
                    const __nv_bfloat16* u, int64_t r, float alpha, float* grad, bool grad_nr,
                    float* workspace, cuda::Target target);

}  // namespace deltatune
