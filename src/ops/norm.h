// Normalisations of Qwen3.5 (spec/qwen35.md, "Norms"), forward and backward, over rows of `dim`
// values. Rows may be strided (`ld*` = distance between row starts, default dim) so a norm can read
// a head out of a wider projection without a copy.
//
//   zero-centred RMSNorm  y = x / sqrt(mean(x^2) + eps) * (1 + w)     decoder norms, q_norm, k_norm
//   gated RMSNorm         y = x / sqrt(mean(x^2) + eps) * w * silu(z) GDN output norm (w around 1)
//   L2 norm               y = x / sqrt(sum(x^2) + eps)                 GDN q and k
//
// Backward functions overwrite dx (and dz) and ACCUMULATE into dw (nullable: not wanted).
#pragma once

#include <cstdint>

namespace deltatune {

template <class T>
void rmsnorm_zero_centred_forward(const T* x, int64_t rows, int64_t dim, const T* w, double eps,
                                  T* y, int64_t ldx = -1, int64_t ldy = -1);
template <class T>
void rmsnorm_zero_centred_backward(const T* x, int64_t rows, int64_t dim, const T* w, double eps,
                                   const T* dy, T* dx, T* dw, int64_t ldx = -1, int64_t ldy = -1);

template <class T>
void gated_rmsnorm_forward(const T* x, const T* z, int64_t rows, int64_t dim, const T* w,
                           double eps, T* y);
template <class T>
void gated_rmsnorm_backward(const T* x, const T* z, int64_t rows, int64_t dim, const T* w,
                            double eps, const T* dy, T* dx, T* dz, T* dw);

template <class T>
void l2norm_forward(const T* x, int64_t rows, int64_t dim, double eps, T* y, int64_t ldx = -1,
                    int64_t ldy = -1);
template <class T>
void l2norm_backward(const T* x, int64_t rows, int64_t dim, double eps, const T* dy, T* dx,
                     int64_t ldx = -1, int64_t lddx = -1);

}  // namespace deltatune
