// Checks of the CUDA norms (ops/norm_cuda.h) against the float64 CPU reference (ops/norm.h) on
// random inputs rounded to the kernels' element type, forward and backward, dw accumulated onto a
// random start. Used by tests/cuda (GPU) and tests/cuda_emulated (host emulation).
#pragma once

#include <cmath>

#include "core/rng.h"
#include "cuda/op_memory.h"
#include "model/cuda/model_pointwise.h"
#include "ops/norm.h"
#include "ops/norm_cuda.h"

namespace deltatune::testing_util {

constexpr double kNormEps = 1e-6;

// rows of dim values; x (and dx) rows are ld apart (ld >= dim), y and dy rows are dense. The
// values of x are scaled by `scale`, so both tiny and large rows meet eps as the model's do.
struct NormShape {
  int64_t rows, dim, ld;
  double scale = 1.0;
};

inline std::string describe(const NormShape& s) {
  return str_cat("rows=", s.rows, " dim=", s.dim, " ld=", s.ld, " scale=", s.scale);
}

template <class T, class Memory>
void check_zero_centred_rmsnorm(Memory& mem, const NormShape& s, uint64_t seed, double tolerance,
                                WorstErrors& worst) {
  SCOPED_TRACE(describe(s));
  Rng rng(seed);
  const auto x = rounded<T>(random_normal(size_t(s.rows * s.ld), rng, s.scale));
  const auto w = rounded<T>(random_normal(size_t(s.dim), rng, 0.1));  // the model's w is near 0
  const auto dy = rounded<T>(random_normal(size_t(s.rows * s.dim), rng));
  const auto dw0 = rounded<float>(random_normal(size_t(s.dim), rng));
  std::vector<double> y(size_t(s.rows * s.dim)), dx(x.size()), dw = dw0;
  rmsnorm_zero_centred_forward<double>(x.data(), s.rows, s.dim, w.data(), kNormEps, y.data(), s.ld,
                                       s.dim);
  rmsnorm_zero_centred_backward<double>(x.data(), s.rows, s.dim, w.data(), kNormEps, dy.data(),
                                        dx.data(), dw.data(), s.ld, s.dim);

  const auto gx = mem.upload(to_elements<T>(x)), gw = mem.upload(to_elements<T>(w));
  const auto gdy = mem.upload(to_elements<T>(dy));
  auto gy = mem.template poisoned<T>(y.size());
  auto gdx = mem.template poisoned<T>(dx.size());
  auto gdw = mem.upload(to_elements<float>(dw0));
  auto workspace = mem.template poisoned<char>(norm_cuda_dw_workspace_bytes(s.rows, s.dim));
  rmsnorm_zero_centred_cuda_forward<T>(gx.data(), s.rows, s.dim, gw.data(), kNormEps, gy.data(),
                                       s.ld, s.dim, mem.target());
  rmsnorm_zero_centred_cuda_backward<T>(gx.data(), s.rows, s.dim, gw.data(), kNormEps, gdy.data(),
                                        gdx.data(), gdw.data(), workspace.data(), s.ld, s.dim,
                                        mem.target());
  expect_close("rms y", mem.download(gy), y, tolerance, worst);
  expect_close("rms dx", dense_rows(mem.download(gdx), s.rows, s.dim, s.ld),
               dense_rows(dx, s.rows, s.dim, s.ld), tolerance, worst);
  expect_close("rms dw", mem.download(gdw), dw, tolerance, worst);
}

// The gated norm's rows are dense (its CPU reference has no strides).
template <class T, class Memory>
void check_gated_rmsnorm(Memory& mem, const NormShape& s, uint64_t seed, double tolerance,
                         WorstErrors& worst) {
  SCOPED_TRACE(describe(s));
  Rng rng(seed);
  const size_t n = size_t(s.rows * s.dim);
  const auto x = rounded<T>(random_normal(n, rng, s.scale));
  const auto z = rounded<T>(random_normal(n, rng, 2.0));
  auto w = random_normal(size_t(s.dim), rng, 0.1);
  for (double& v : w) v += 1.0;  // the GDN norm's w is near 1
  w = rounded<T>(w);
  const auto dy = rounded<T>(random_normal(n, rng));
  const auto dw0 = rounded<float>(random_normal(size_t(s.dim), rng));
  std::vector<double> y(n), dx(n), dz(n), dw = dw0;
  gated_rmsnorm_forward<double>(x.data(), z.data(), s.rows, s.dim, w.data(), kNormEps, y.data());
  gated_rmsnorm_backward<double>(x.data(), z.data(), s.rows, s.dim, w.data(), kNormEps, dy.data(),
                                 dx.data(), dz.data(), dw.data());

  const auto gx = mem.upload(to_elements<T>(x)), gz = mem.upload(to_elements<T>(z));
  const auto gw = mem.upload(to_elements<T>(w)), gdy = mem.upload(to_elements<T>(dy));
  auto gy = mem.template poisoned<T>(n), gdx = mem.template poisoned<T>(n);
  auto gdz = mem.template poisoned<T>(n);
  auto gdw = mem.upload(to_elements<float>(dw0));
  auto workspace = mem.template poisoned<char>(norm_cuda_dw_workspace_bytes(s.rows, s.dim));
  gated_rmsnorm_cuda_forward<T>(gx.data(), gz.data(), s.rows, s.dim, gw.data(), kNormEps, gy.data(),
                                mem.target());
  gated_rmsnorm_cuda_backward<T>(gx.data(), gz.data(), s.rows, s.dim, gw.data(), kNormEps,
                                 gdy.data(), gdx.data(), gdz.data(), gdw.data(), workspace.data(),
                                 mem.target());
  expect_close("gated y", mem.download(gy), y, tolerance, worst);
  expect_close("gated dx", mem.download(gdx), dx, tolerance, worst);
  expect_close("gated dz", mem.download(gdz), dz, tolerance, worst);
  expect_close("gated dw", mem.download(gdw), dw, tolerance, worst);
}

// x rows ld apart, y dense; backward: dy dense, dx rows ld apart (the GDN reads q and k out of the
// conv output's wider rows).
template <class T, class Memory>
void check_l2norm(Memory& mem, const NormShape& s, uint64_t seed, double tolerance,
                  WorstErrors& worst) {
  SCOPED_TRACE(describe(s));
  Rng rng(seed);
  const double eps = 1e-6;
  const auto x = rounded<T>(random_normal(size_t(s.rows * s.ld), rng, s.scale));
  const auto dy = rounded<T>(random_normal(size_t(s.rows * s.dim), rng));
  std::vector<double> y(dy.size()), dx(x.size());
  l2norm_forward<double>(x.data(), s.rows, s.dim, eps, y.data(), s.ld, s.dim);
  l2norm_backward<double>(x.data(), s.rows, s.dim, eps, dy.data(), dx.data(), s.ld, s.ld);

  const auto gx = mem.upload(to_elements<T>(x)), gdy = mem.upload(to_elements<T>(dy));
  auto gy = mem.template poisoned<T>(y.size()), gdx = mem.template poisoned<T>(dx.size());
  l2norm_cuda_forward<T>(gx.data(), s.rows, s.dim, eps, gy.data(), s.ld, s.dim, mem.target());
  l2norm_cuda_backward<T>(gx.data(), s.rows, s.dim, eps, gdy.data(), gdx.data(), s.ld, s.ld,
                          mem.target());
  expect_close("l2 y", mem.download(gy), y, tolerance, worst);
  expect_close("l2 dx", dense_rows(mem.download(gdx), s.rows, s.dim, s.ld),
               dense_rows(dx, s.rows, s.dim, s.ld), tolerance, worst);
}

// The L2 norm with the Gated DeltaNet's q · dk^-1/2 folded into its pass (out_scale forward,
// dy_scale backward) against the separate scaling pass it replaces (scale_cuda after the forward,
// before the backward): the same bits, in place as the model calls it (dx == dy).
template <class Memory>
void check_l2norm_scale_folded(Memory& mem, int64_t rows, int64_t dim, uint64_t seed) {
  using bf16 = __nv_bfloat16;
  SCOPED_TRACE(str_cat("L2 norm, scale folded: rows=", rows, " dim=", dim));
  Rng rng(seed);
  const int64_t n = rows * dim;
  const float s = float(1.0 / std::sqrt(double(dim)));
  const std::vector<bf16> x = to_elements<bf16>(random_normal(size_t(n), rng, 3.0));
  const std::vector<bf16> dy = to_elements<bf16>(random_normal(size_t(n), rng));
  const auto gx = mem.upload(x);
  auto folded = mem.template poisoned<bf16>(size_t(n));
  auto separate = mem.template poisoned<bf16>(size_t(n));
  l2norm_cuda_forward<bf16>(gx.data(), rows, dim, kNormEps, folded.data(), -1, -1, mem.target(), s);
  l2norm_cuda_forward<bf16>(gx.data(), rows, dim, kNormEps, separate.data(), -1, -1, mem.target());
  scale_cuda(separate.data(), n, s, mem.target());
  auto d_folded = mem.upload(dy), d_separate = mem.upload(dy);
  l2norm_cuda_backward<bf16>(gx.data(), rows, dim, kNormEps, d_folded.data(), d_folded.data(), -1,
                             -1, mem.target(), s);
  scale_cuda(d_separate.data(), n, s, mem.target());
  l2norm_cuda_backward<bf16>(gx.data(), rows, dim, kNormEps, d_separate.data(), d_separate.data(),
                             -1, -1, mem.target());
  expect_same_bits("y", mem.download(folded), mem.download(separate));
  expect_same_bits("dx", mem.download(d_folded), mem.download(d_separate));
}

// The decoder's residual add fused with the norm after it (forward) and with the norm's backward
// (backward) against add_cuda and the plain norm, which they replace: the same bits in
// x + residual, y and dx.
template <class Memory>
void check_residual_norm_fused(Memory& mem, int64_t rows, int64_t dim, uint64_t seed) {
  using bf16 = __nv_bfloat16;
  SCOPED_TRACE(str_cat("residual add + norm fused: rows=", rows, " dim=", dim));
  Rng rng(seed);
  const int64_t n = rows * dim;
  auto random = [&](double scale) {
    return to_elements<bf16>(random_normal(size_t(n), rng, scale));
  };
  const std::vector<bf16> x = random(2.0), residual = random(1.0), dy = random(1.0);
  const std::vector<bf16> w = to_elements<bf16>(random_normal(size_t(dim), rng, 0.1));
  const auto gw = mem.upload(w), gres = mem.upload(residual), gdy = mem.upload(dy);
  auto x_fused = mem.upload(x), x_separate = mem.upload(x);
  auto y_fused = mem.template poisoned<bf16>(size_t(n));
  auto y_separate = mem.template poisoned<bf16>(size_t(n));
  add_rmsnorm_zero_centred_cuda_forward<bf16>(x_fused.data(), gres.data(), rows, dim, gw.data(),
                                              kNormEps, y_fused.data(), mem.target());
  add_cuda(x_separate.data(), gres.data(), n, mem.target());
  rmsnorm_zero_centred_cuda_forward<bf16>(x_separate.data(), rows, dim, gw.data(), kNormEps,
                                          y_separate.data(), -1, -1, mem.target());
  expect_same_bits("x + residual", mem.download(x_fused), mem.download(x_separate));
  expect_same_bits("y", mem.download(y_fused), mem.download(y_separate));
  auto dx_fused = mem.template poisoned<bf16>(size_t(n));
  auto dx_separate = mem.template poisoned<bf16>(size_t(n));
  rmsnorm_zero_centred_cuda_backward_add<bf16>(x_separate.data(), rows, dim, gw.data(), kNormEps,
                                               gdy.data(), dx_fused.data(), gres.data(),
                                               mem.target());
  rmsnorm_zero_centred_cuda_backward<bf16>(x_separate.data(), rows, dim, gw.data(), kNormEps,
                                           gdy.data(), dx_separate.data(), nullptr, nullptr, -1, -1,
                                           mem.target());
  add_cuda(dx_separate.data(), gres.data(), n, mem.target());
  expect_same_bits("dx", mem.download(dx_fused), mem.download(dx_separate));
}

}  // namespace deltatune::testing_util
