// What the tests share: random inputs, the error of a result against a reference (naming the worst
// element), central finite-difference gradient checks, fixture paths, and a line format for the
// errors the notes quote.
//
// Finite differences (float64): dL/dx_i ≈ (L(x + h e_i) - L(x - h e_i)) / 2h. The estimate's error
// is O(h² L''') (truncation) + O(eps |L| / h) (rounding): about 1e-10 relative with h = 1e-6 on the
// O(1) values of these tests. Each element's error is |analytic - numeric| / max(|analytic|, floor),
// where the floor (a fraction of the largest gradient of the test) keeps elements whose gradient is
// ~0 from dividing rounding noise by nothing. expect_gradient asserts 1e-6: a wide margin over the
// estimate's error, while any real mistake in a backward shows up as O(1).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "core/rng.h"

namespace deltatune::testing_util {

// DELTATUNE_FIXTURES_DIR overrides the folder compiled in: test binaries built on one machine and
// run on another (the GPU machine) find their fixtures there.
inline std::string fixture_path(const std::string& rel) {
  const char* dir = std::getenv("DELTATUNE_FIXTURES_DIR");
  return std::string(dir && *dir ? dir : DELTATUNE_FIXTURES) + "/" + rel;
}

// Prints a measured error so test logs carry the numbers the notes quote.
inline void report(const std::string& what, double value) {
  std::printf("[ measured ] %s: %.3e\n", what.c_str(), value);
}

template <class T>
std::vector<T> random_vector(size_t n, Rng& rng, double scale = 1.0) {
  std::vector<T> v(n);
  for (auto& x : v) x = T(scale * rng.normal());
  return v;
}
inline std::vector<double> random_normal(size_t n, Rng& rng, double scale = 1.0) {
  return random_vector<double>(n, rng, scale);
}

inline double max_abs(const std::vector<double>& x) {
  double m = 0;
  for (double v : x) m = std::max(m, std::fabs(v));
  return m;
}

// max |got - want| / max |want|, at the element with the largest difference (NaN counts as worst).
struct RelativeError {
  double value = 0;
  size_t index = 0;
  double got = 0, want = 0;
};

template <class A, class B>
RelativeError relative_error(const A* got, const B* want, size_t n) {
  double largest = 0, worst_diff = -1;
  RelativeError e;
  for (size_t i = 0; i < n; ++i) {
    largest = std::max(largest, std::fabs(double(want[i])));
    const double diff = std::fabs(double(got[i]) - double(want[i]));
    if (!(diff <= worst_diff)) {
      worst_diff = diff;
      e.index = i;
    }
  }
  e.value = std::isnan(worst_diff) ? INFINITY : largest > 0 ? worst_diff / largest : worst_diff;
  if (n > 0) {
    e.got = double(got[e.index]);
    e.want = double(want[e.index]);
  }
  return e;
}

inline std::string describe(const RelativeError& e) {
  char text[200];
  std::snprintf(text, sizeof text, "relative error %.3e at element %zu: got %.12e, want %.12e", e.value, e.index,
                e.got, e.want);
  return text;
}

struct GradCheckResult {
  double worst = 0;  // worst relative error over the elements
  size_t index = 0;  // where it occurs
  double analytic = 0, numeric = 0;
};

// Perturbs x[0..n) one element at a time (restored exactly after each) and compares the central
// difference of loss() with analytic[i], relative to max(|analytic_i|, floor).
template <class Loss>
GradCheckResult finite_difference_check(double* x, size_t n, const double* analytic, Loss&& loss, double h,
                                        double floor) {
  GradCheckResult r;
  r.worst = -1;
  for (size_t i = 0; i < n; ++i) {
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
template <class Loss>
GradCheckResult finite_difference_check(std::vector<double>& x, const std::vector<double>& analytic, Loss&& loss,
                                        double h, double floor) {
  return finite_difference_check(x.data(), x.size(), analytic.data(), loss, h, floor);
}

inline std::string describe(const GradCheckResult& r) {
  char text[160];
  std::snprintf(text, sizeof text, "worst relative error %.3e at element %zu: analytic %.12e, numeric %.12e",
                r.worst, r.index, r.analytic, r.numeric);
  return text;
}

constexpr double kGradStep = 1e-6;
constexpr double kGradFloor = 1e-3;  // of the largest analytic gradient of the check
constexpr double kGradTolerance = 1e-6;

inline void expect_gradient(const std::string& what, double* x, size_t n, const std::function<double()>& loss,
                            const std::vector<double>& analytic) {
  ASSERT_EQ(analytic.size(), n) << what;
  const double floor = std::max(kGradFloor * max_abs(analytic), 1e-300);
  const GradCheckResult r = finite_difference_check(x, n, analytic.data(), loss, kGradStep, floor);
  EXPECT_LE(r.worst, kGradTolerance) << what << ": " << describe(r);
}

inline double weighted_sum(const std::vector<double>& out, const std::vector<double>& r) {
  double s = 0;
  for (size_t i = 0; i < out.size(); ++i) s += out[i] * r[i];
  return s;
}

// A pre-tokenized JSONL dataset the trainer tests learn from: counting sequences (token i+1 follows
// token i, ids 10..41) of 8 to 27 tokens; the first 3 positions are "prompt" (label -100).
inline void write_counting_dataset(const std::string& path, int rows, uint64_t seed = 5) {
  std::ofstream data(path);
  Rng rng(seed);
  for (int row = 0; row < rows; ++row) {
    const int64_t start = int64_t(rng.next_u64() % 32), len = 8 + int64_t(rng.next_u64() % 20);
    std::string ids = "[", labels = "[";
    for (int64_t i = 0; i < len; ++i) {
      const int64_t tok = 10 + (start + i) % 32;
      if (i) ids += ",", labels += ",";
      ids += std::to_string(tok);
      labels += std::to_string(i < 3 ? -100 : tok);
    }
    data << "{\"input_ids\": " << ids << "], \"labels\": " << labels << "]}\n";
  }
}

}  // namespace deltatune::testing_util
