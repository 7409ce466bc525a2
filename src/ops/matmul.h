// Matrix products. Frozen weights stay in their file dtype (bf16, f16, f32, f64); the product
// converts panels of the weight to the compute type on the fly and hands them to the BLAS, so a
// bf16 checkpoint costs 2 bytes per weight in memory, never 4.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace deltatune {

// C[M,N] = alpha * op(A) op(B) + beta * C, row-major, op = transpose when the flag is set.
// A thin wrapper over cblas_{s,d}gemm.
template <class T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
          int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc);

// y[rows, out] (=|+=) x[rows, in] · W^T, W a 2-D [out, in] weight of any float dtype.
// `ldy` is y's row stride (>= out), so a product can write into a column block of a wider buffer.
template <class T>
void linear_forward(const T* x, int64_t rows, const Tensor& weight, T* y, bool accumulate = false,
                    int64_t ldy = -1);

// Inference precision for q8_0 weights. While an Int8ActivationScope(Int8Activations::On) lives on
// the calling thread, linear_forward<float> with a Q8_0 weight quantizes x per block of 32 to int8
// (ggml's q8_0 scheme, float scales) and runs an integer product (ops/cpu/q8_product.h) instead of
// multiplying by the dequantized weight (~3x the BLAS's speed on one zen4 core), at the cost of
// the activations' rounding (|x - x_q| ≤ max|block| / 254 per value). It applies to products of
// more than 4 rows (prompts; generation keeps the row dots) and only where the CPU has AVX-512
// VNNI (the AVX2 kernel is slower than the BLAS, so elsewhere nothing changes). `Emulated` is its
// float reference: the same quantized activations, dequantized, through the float product (for
// tests: it isolates the integer kernel from the quantization). Only inference sets it
// (InferenceSession<float>, unless told otherwise); training, the float64 paths and everything
// outside a scope keep the exact dequantized-weight product. Scopes nest; the setting is per
// thread and read where linear_forward is called, not inside its worker threads.
enum class Int8Activations { Off, On, Emulated };

class Int8ActivationScope {
 public:
  explicit Int8ActivationScope(Int8Activations mode = Int8Activations::On);
  explicit Int8ActivationScope(bool on) : Int8ActivationScope(on ? Int8Activations::On : Int8Activations::Off) {}
  ~Int8ActivationScope();
  Int8ActivationScope(const Int8ActivationScope&) = delete;
  Int8ActivationScope& operator=(const Int8ActivationScope&) = delete;

 private:
  Int8Activations previous_;
};
// The calling thread's setting; whether it is On (Emulated counts as not).
Int8Activations int8_activations_mode();
bool int8_activations_active();

// dx[rows, in] (=|+=) dy[rows, out] · W: the input gradient through a frozen weight.
template <class T>
void linear_backward_input(const T* dy, int64_t rows, const Tensor& weight, T* dx,
                           bool accumulate = false, int64_t lddy = -1);

// Copies a float tensor of any float dtype into a contiguous T array (numel elements).
template <class T>
void tensor_to(const Tensor& t, T* out);

}  // namespace deltatune
