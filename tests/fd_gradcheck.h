// Central finite differences in float64, for checking analytic backward functions.
//
// For a scalar loss L(x) (the tests use L = sum(R * outputs) with fixed random R, so dL/d(output)
// = R), each element x_i is moved by ±h and dL/dx_i ≈ (L(x + h e_i) - L(x - h e_i)) / 2h. The error
// of that estimate is O(h^2 L''') (truncation) + O(eps |L| / h) (rounding): about 1e-10 relative
// with h = 1e-6 on the O(1) values here. An element's relative error is |analytic - numeric| /
// max(|numeric|, 1e-3 * max_j |numeric_j|) (the floor keeps elements whose gradient is ~0 from
// dividing rounding noise by nothing). kGradTolerance = 1e-6 leaves a wide margin over the
// estimate's error while any real mistake in a backward shows up as O(1).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

namespace deltatune::testing_util {

constexpr double kGradStep = 1e-6;
constexpr double kGradTolerance = 1e-6;

struct GradCheck {
  double worst_rel = 0;
  size_t worst_index = 0;
  double analytic = 0, numeric = 0;
};

// Perturbs x[0..n) in place (restored after) and compares with `analytic` (n values).
inline GradCheck finite_difference_check(double* x, size_t n, const std::function<double()>& loss,
                                         const double* analytic, double h = kGradStep) {
  std::vector<double> numeric(n);
  for (size_t i = 0; i < n; ++i) {
    const double saved = x[i];
    x[i] = saved + h;
    const double up = loss();
    x[i] = saved - h;
    const double down = loss();
    x[i] = saved;
    numeric[i] = (up - down) / (2 * h);
  }
  double scale = 0;
  for (double v : numeric) scale = std::max(scale, std::fabs(v));
  GradCheck r;
  for (size_t i = 0; i < n; ++i) {
    const double rel = std::fabs(analytic[i] - numeric[i]) / std::max(std::fabs(numeric[i]), 1e-3 * scale + 1e-300);
    if (!(rel <= r.worst_rel)) {
      r.worst_rel = rel;
      r.worst_index = i;
      r.analytic = analytic[i];
      r.numeric = numeric[i];
    }
  }
  return r;
}

inline void expect_gradient(const std::string& what, double* x, size_t n, const std::function<double()>& loss,
                            const std::vector<double>& analytic) {
  ASSERT_EQ(analytic.size(), n) << what;
  const GradCheck r = finite_difference_check(x, n, loss, analytic.data());
  EXPECT_LE(r.worst_rel, kGradTolerance) << what << ": worst relative error " << r.worst_rel << " at element "
                                         << r.worst_index << " (analytic " << r.analytic << ", numeric "
                                         << r.numeric << ")";
}

inline double weighted_sum(const std::vector<double>& out, const std::vector<double>& r) {
  double s = 0;
  for (size_t i = 0; i < out.size(); ++i) s += out[i] * r[i];
  return s;
}

}  // namespace deltatune::testing_util
