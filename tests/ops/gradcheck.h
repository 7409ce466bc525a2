// Test helpers for ops with a forward and a backward: random inputs, the error of one result
// against a reference (naming the worst element), and central finite-difference gradient checks
// (perturb one input element at a time by ±h, difference a scalar loss, compare with the analytic
// gradient).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <string>
#include <vector>

#include "core/rng.h"

namespace deltatune::gradcheck {

inline std::vector<double> random_normal(size_t n, Rng& rng, double scale = 1.0) {
  std::vector<double> x(n);
  for (auto& e : x) e = scale * rng.normal();
  return x;
}

// max |got − want| / max |want|, at the element with the largest difference (NaN counts as worst).
struct RelativeError {
  double value = 0;
  size_t index = 0;
  double got = 0, want = 0;
};

template <class A>
RelativeError relative_error(const A* got, const double* want, size_t n) {
  double largest = 0, worst_diff = -1;
  RelativeError e;
  for (size_t i = 0; i < n; ++i) {
    largest = std::max(largest, std::fabs(want[i]));
    const double diff = std::fabs(double(got[i]) - want[i]);
    if (!(diff <= worst_diff)) {
      worst_diff = diff;
      e.index = i;
    }
  }
  e.value = std::isnan(worst_diff) ? INFINITY : largest > 0 ? worst_diff / largest : worst_diff;
  e.got = double(got[e.index]);
  e.want = want[e.index];
  return e;
}

struct GradCheckResult {
  double worst = 0;  // worst relative error over the elements
  size_t index = 0;  // where it occurs
  double analytic = 0, numeric = 0;
};

// For every element i of x: numeric_i = (loss(x + h e_i) − loss(x − h e_i)) / 2h, and
//   relative error_i = |numeric_i − analytic_i| / max(|analytic_i|, floor).
// `floor` keeps elements whose gradient is (near) zero from dividing by nothing: below it the error
// is measured against the floor, which callers set from the size of the gradients in the test.
// x is restored exactly after each element.
template <class Loss>
GradCheckResult finite_difference_check(std::vector<double>& x, const std::vector<double>& analytic,
                                        Loss&& loss, double h, double floor) {
  GradCheckResult r;
  r.worst = -1;
  for (size_t i = 0; i < x.size(); ++i) {
    const double saved = x[i];
    x[i] = saved + h;
    const double up = loss();
    x[i] = saved - h;
    const double down = loss();
    x[i] = saved;
    const double numeric = (up - down) / (2 * h);
    const double err = std::fabs(numeric - analytic[i]) / std::max(std::fabs(analytic[i]), floor);
    if (!(err <= r.worst)) {  // NaN counts as worst
      r.worst = std::isnan(err) ? INFINITY : err;
      r.index = i;
      r.analytic = analytic[i];
      r.numeric = numeric;
    }
  }
  if (r.worst < 0) r.worst = 0;
  return r;
}

inline std::string describe(const GradCheckResult& r) {
  char text[160];
  std::snprintf(text, sizeof text,
                "worst relative error %.3e at element %zu: analytic %.12e, numeric %.12e", r.worst,
                r.index, r.analytic, r.numeric);
  return text;
}

inline double max_abs(const std::vector<double>& x) {
  double m = 0;
  for (double v : x) m = std::max(m, std::fabs(v));
  return m;
}

}  // namespace deltatune::gradcheck
