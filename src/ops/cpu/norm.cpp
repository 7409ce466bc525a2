#include <cmath>
#include <vector>

#include "ops/activation.h"
#include "ops/norm.h"

namespace deltatune {

namespace {
template <class T>
double sum_squares(const T* x, int64_t dim) {
  double s = 0;
  for (int64_t i = 0; i < dim; ++i) s += double(x[i]) * double(x[i]);
  return s;
}
template <class T>
double dot(const T* a, const T* b, int64_t dim) {
  double s = 0;
  for (int64_t i = 0; i < dim; ++i) s += double(a[i]) * double(b[i]);
  return s;
}
}  // namespace

template <class T>
void rmsnorm_zero_centred_forward(const T* x, int64_t rows, int64_t dim, const T* w, double eps,
                                  T* y, int64_t ldx, int64_t ldy) {
  if (ldx < 0) ldx = dim;
  if (ldy < 0) ldy = dim;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * ldx;
    T* yr = y + r * ldy;
    const T rstd = T(1.0 / std::sqrt(sum_squares(xr, dim) / double(dim) + eps));
    for (int64_t i = 0; i < dim; ++i) yr[i] = xr[i] * rstd * (T(1) + w[i]);
  }
}

// Rows are independent; dw (when wanted) is summed per thread and added once at the end.
template <class T, class RowFn>
void backward_rows(int64_t rows, int64_t dim, T* dw, RowFn&& row) {
#pragma omp parallel
  {
    std::vector<double> local(dw ? static_cast<size_t>(dim) : 0, 0.0);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) row(r, dw ? local.data() : nullptr);
    if (dw) {
#pragma omp critical
      for (int64_t i = 0; i < dim; ++i) dw[i] += T(local[size_t(i)]);
    }
  }
}

// With xhat = x * rstd and g = dy * (1 + w):  dx = rstd * (g - xhat * mean(g * xhat)),
// dw += sum over rows of dy * xhat.
template <class T>
void rmsnorm_zero_centred_backward(const T* x, int64_t rows, int64_t dim, const T* w, double eps,
                                   const T* dy, T* dx, T* dw, int64_t ldx, int64_t ldy) {
  if (ldx < 0) ldx = dim;
  if (ldy < 0) ldy = dim;
  backward_rows(rows, dim, dw, [&](int64_t r, double* dw_local) {
    const T* xr = x + r * ldx;
    const T* dyr = dy + r * ldy;
    T* dxr = dx + r * ldx;
    const double rstd = 1.0 / std::sqrt(sum_squares(xr, dim) / double(dim) + eps);
    double mean_gx = 0;
    for (int64_t i = 0; i < dim; ++i) mean_gx += double(dyr[i]) * (1.0 + double(w[i])) * double(xr[i]) * rstd;
    mean_gx /= double(dim);
    for (int64_t i = 0; i < dim; ++i) {
      const double xhat = double(xr[i]) * rstd;
      dxr[i] = T(rstd * (double(dyr[i]) * (1.0 + double(w[i])) - xhat * mean_gx));
      if (dw_local) dw_local[i] += double(dyr[i]) * xhat;
    }
  });
}

template <class T>
void gated_rmsnorm_forward(const T* x, const T* z, int64_t rows, int64_t dim, const T* w,
                           double eps, T* y) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * dim;
    const T* zr = z + r * dim;
    T* yr = y + r * dim;
    const T rstd = T(1.0 / std::sqrt(sum_squares(xr, dim) / double(dim) + eps));
    for (int64_t i = 0; i < dim; ++i) yr[i] = xr[i] * rstd * w[i] * silu(zr[i]);
  }
}

// y = xhat * w * silu(z): the norm part sees g = dy * w * silu(z); dz = dy * xhat * w * silu'(z).
template <class T>
void gated_rmsnorm_backward(const T* x, const T* z, int64_t rows, int64_t dim, const T* w,
                            double eps, const T* dy, T* dx, T* dz, T* dw) {
  backward_rows(rows, dim, dw, [&](int64_t r, double* dw_local) {
    const T* xr = x + r * dim;
    const T* zr = z + r * dim;
    const T* dyr = dy + r * dim;
    T* dxr = dx + r * dim;
    T* dzr = dz + r * dim;
    const double rstd = 1.0 / std::sqrt(sum_squares(xr, dim) / double(dim) + eps);
    double mean_gx = 0;
    for (int64_t i = 0; i < dim; ++i)
      mean_gx += double(dyr[i]) * double(w[i]) * double(silu(zr[i])) * double(xr[i]) * rstd;
    mean_gx /= double(dim);
    for (int64_t i = 0; i < dim; ++i) {
      const double xhat = double(xr[i]) * rstd;
      const double gate = double(silu(zr[i]));
      dxr[i] = T(rstd * (double(dyr[i]) * double(w[i]) * gate - xhat * mean_gx));
      dzr[i] = T(double(dyr[i]) * xhat * double(w[i]) * double(silu_grad(zr[i])));
      if (dw_local) dw_local[i] += double(dyr[i]) * xhat * gate;
    }
  });
}

template <class T>
void l2norm_forward(const T* x, int64_t rows, int64_t dim, double eps, T* y, int64_t ldx,
                    int64_t ldy) {
  if (ldx < 0) ldx = dim;
  if (ldy < 0) ldy = dim;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * ldx;
    T* yr = y + r * ldy;
    const T inv = T(1.0 / std::sqrt(sum_squares(xr, dim) + eps));
    for (int64_t i = 0; i < dim; ++i) yr[i] = xr[i] * inv;
  }
}

// y = x / n, n = sqrt(sum x^2 + eps):  dx = (dy - y * sum(dy * y)) / n.
template <class T>
void l2norm_backward(const T* x, int64_t rows, int64_t dim, double eps, const T* dy, T* dx,
                     int64_t ldx, int64_t lddx) {
  if (ldx < 0) ldx = dim;
  if (lddx < 0) lddx = dim;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * ldx;
    const T* dyr = dy + r * dim;
    T* dxr = dx + r * lddx;
    const double inv = 1.0 / std::sqrt(sum_squares(xr, dim) + eps);
    const double dy_dot_y = dot(dyr, xr, dim) * inv;
    for (int64_t i = 0; i < dim; ++i) dxr[i] = T((double(dyr[i]) - double(xr[i]) * inv * dy_dot_y) * inv);
  }
}

#define INSTANTIATE(T)                                                                          \
  template void rmsnorm_zero_centred_forward<T>(const T*, int64_t, int64_t, const T*, double, T*, \
                                                int64_t, int64_t);                              \
  template void rmsnorm_zero_centred_backward<T>(const T*, int64_t, int64_t, const T*, double,   \
                                                 const T*, T*, T*, int64_t, int64_t);            \
  template void gated_rmsnorm_forward<T>(const T*, const T*, int64_t, int64_t, const T*, double, \
                                         T*);                                                   \
  template void gated_rmsnorm_backward<T>(const T*, const T*, int64_t, int64_t, const T*, double, \
                                          const T*, T*, T*, T*);                                \
  template void l2norm_forward<T>(const T*, int64_t, int64_t, double, T*, int64_t, int64_t);    \
  template void l2norm_backward<T>(const T*, int64_t, int64_t, double, const T*, T*, int64_t,   \
                                   int64_t);
INSTANTIATE(float)
INSTANTIATE(double)
#undef INSTANTIATE

}  // namespace deltatune
