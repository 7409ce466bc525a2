#include <cblas.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#include "core/threads.h"
#include "core/profile.h"
#include "ops/cpu/q8_product.h"
#include "ops/cpu/row_dot.h"
#include "ops/matmul.h"

namespace deltatune {

template <>
void gemm<float>(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                 int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c,
              blasint(ldc));
}

template <>
void gemm<double>(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
                  int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c,
              blasint(ldc));
}

namespace {

// Weight rows converted per panel: big enough for the BLAS to run at speed, small enough
// (a few MB) to stay in cache between the conversion and the product.
int64_t panel_rows(int64_t in) { return std::max<int64_t>(64, (int64_t(1) << 20) / std::max<int64_t>(in, 1)); }

template <class T>
void convert_rows(const Tensor& w, int64_t row0, int64_t nrows, T* out) {
  const int64_t in = w.shape[1];
  const auto* base = static_cast<const std::byte*>(w.data) + dtype_bytes(w.dtype, row0 * in);
  const size_t row_bytes = dtype_bytes(w.dtype, in);
  // Split the conversion across threads; each converts whole rows.
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < nrows; ++r) {
    if constexpr (std::is_same_v<T, float>) decode_weight_row(base + size_t(r) * row_bytes, w.dtype, in, out + r * in);
    else convert_to<T>(base + size_t(r) * row_bytes, w.dtype, out + r * in, size_t(in));
  }
}

// The panel buffer, kept per thread between calls: allocating it anew for each product made the
// kernel clear fresh pages for every layer.
template <class T>
T* panel_buffer(size_t n) {
  thread_local std::vector<T> buffer;
  if (buffer.size() < n) buffer.resize(n);
  return buffer.data();
}

// Few rows (generating one token at a time): the product is bound by reading the weight, so each
// weight row is read once, decoded on the fly and dotted with every x row (ops/cpu/row_dot.h);
// no converted panel is written to memory and read back.
constexpr int64_t kRowsByDot = 4;

void linear_forward_by_rows(const float* x, int64_t rows, const Tensor& w, float* y, bool accumulate, int64_t ldy) {
  const int64_t out = w.shape[0], in = w.shape[1];
  const size_t row_bytes = dtype_bytes(w.dtype, in);
  const auto* base = static_cast<const std::byte*>(w.data);
#pragma omp parallel for schedule(static)
  for (int64_t o = 0; o < out; ++o) {
    float dots[kRowsByDot];
    weight_row_dots(base + size_t(o) * row_bytes, w.dtype, in, x, in, rows, dots);
    for (int64_t r = 0; r < rows; ++r) y[r * ldy + o] = accumulate ? y[r * ldy + o] + dots[r] : dots[r];
  }
}

thread_local Int8Activations t_int8_activations = Int8Activations::Off;

// x quantized to int8 blocks, then the integer product (Int8ActivationScope).
void linear_forward_int8(const float* x, int64_t rows, const Tensor& w, float* y, bool accumulate, int64_t ldy) {
  const int64_t out = w.shape[0], in = w.shape[1];
  thread_local std::vector<int8_t> q;
  thread_local std::vector<float> d;
  q.resize(size_t(rows * in));
  d.resize(size_t(rows * (in / kQ8_0BlockValues)));
  quantize_activations_q8(x, rows, in, in, q.data(), d.data());
  if (t_int8_activations == Int8Activations::Emulated) {
    thread_local std::vector<float> xq;
    xq.resize(size_t(rows * in));
    for (int64_t i = 0; i < rows * in; ++i) xq[size_t(i)] = float(q[size_t(i)]) * d[size_t(i / kQ8_0BlockValues)];
    const Int8ActivationScope off(Int8Activations::Off);
    linear_forward<float>(xq.data(), rows, w, y, accumulate, ldy);
    return;
  }
  q8_product(q.data(), d.data(), rows, static_cast<const std::byte*>(w.data), out, in, y, ldy, accumulate,
             q8_default_isa());
}

void check_weight(const Tensor& w) {
  DT_CHECK(w.ndim == 2 && w.is_contiguous() && w.device == Device::CPU,
           "linear weight must be a contiguous 2-D host tensor, got shape ", w.shape_str());
}

}  // namespace

Int8ActivationScope::Int8ActivationScope(Int8Activations mode) : previous_(t_int8_activations) {
  t_int8_activations = mode;
}
Int8ActivationScope::~Int8ActivationScope() { t_int8_activations = previous_; }
Int8Activations int8_activations_mode() { return t_int8_activations; }
bool int8_activations_active() { return t_int8_activations == Int8Activations::On; }

template <class T>
void linear_forward(const T* x, int64_t rows, const Tensor& w, T* y, bool accumulate, int64_t ldy) {
  DT_PROFILE("linear_forward");
  check_weight(w);
  const int64_t out = w.shape[0], in = w.shape[1];
  if (ldy < 0) ldy = out;
  const T beta = accumulate ? T(1) : T(0);
  if constexpr (std::is_same_v<T, float>) {  // float64 is the reference mode, not a fast path
    // Only with VNNI: the AVX2 kernel measured slower than the BLAS on the decoded panel
    // (35 vs 47 GMAC/s on one zen4 core; VNNI: 140).
    if (w.dtype == DType::Q8_0 && t_int8_activations != Int8Activations::Off && rows > kRowsByDot &&
        q8_default_isa() == Q8Isa::Vnni) {
      linear_forward_int8(x, rows, w, y, accumulate, ldy);
      return;
    }
    if (rows <= kRowsByDot) {
      linear_forward_by_rows(x, rows, w, y, accumulate, ldy);
      return;
    }
  }
  if (w.dtype == dtype_of<T>()) {
    gemm<T>(false, true, rows, out, in, T(1), x, in, static_cast<const T*>(w.data), in, beta, y, ldy);
    return;
  }
  const int64_t panel = std::min(out, panel_rows(in));
  T* buffer = panel_buffer<T>(size_t(panel * in));
  for (int64_t r0 = 0; r0 < out; r0 += panel) {
    const int64_t n = std::min(panel, out - r0);
    convert_rows(w, r0, n, buffer);
    gemm<T>(false, true, rows, n, in, T(1), x, in, buffer, in, beta, y + r0, ldy);
  }
}

template <class T>
void linear_backward_input(const T* dy, int64_t rows, const Tensor& w, T* dx, bool accumulate,
                           int64_t lddy) {
  DT_PROFILE("linear_backward_input");
  check_weight(w);
  const int64_t out = w.shape[0], in = w.shape[1];
  if (lddy < 0) lddy = out;
  if (w.dtype == dtype_of<T>()) {
    gemm<T>(false, false, rows, in, out, T(1), dy, lddy, static_cast<const T*>(w.data), in,
            accumulate ? T(1) : T(0), dx, in);
    return;
  }
  // dx = sum over row panels of W: dy[:, panel] · W[panel, :].
  const int64_t panel = std::min(out, panel_rows(in));
  T* buffer = panel_buffer<T>(size_t(panel * in));
  for (int64_t r0 = 0; r0 < out; r0 += panel) {
    const int64_t n = std::min(panel, out - r0);
    convert_rows(w, r0, n, buffer);
    const bool first = r0 == 0 && !accumulate;
    gemm<T>(false, false, rows, in, n, T(1), dy + r0, lddy, buffer, in, first ? T(0) : T(1),
            dx, in);
  }
}

template <class T>
void tensor_to(const Tensor& t, T* out) {
  DT_CHECK(t.is_contiguous() && t.device == Device::CPU, "expected a contiguous host tensor, got ",
           t.shape_str());
  convert_to<T>(t.data, t.dtype, out, size_t(t.numel()));
}

#define INSTANTIATE(T)                                                                        \
  template void linear_forward<T>(const T*, int64_t, const Tensor&, T*, bool, int64_t);       \
  template void linear_backward_input<T>(const T*, int64_t, const Tensor&, T*, bool, int64_t); \
  template void tensor_to<T>(const Tensor&, T*);
INSTANTIATE(float)
INSTANTIATE(double)
#undef INSTANTIATE

}  // namespace deltatune
