// Helpers shared by the tests: random inputs, error measures that name the worst element, fixture
// paths.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <string>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"

namespace deltatune::testing_util {

inline std::string fixture_path(const std::string& rel) { return std::string(DELTATUNE_FIXTURES) + "/" + rel; }

template <class T>
std::vector<T> random_vector(size_t n, Rng& rng, double scale = 1.0) {
  std::vector<T> v(n);
  for (auto& x : v) x = T(scale * rng.normal());
  return v;
}

// max |a - b| / max |b|, with the index of the worst element, for messages.
struct RelError {
  double value = 0;
  size_t worst = 0;
  double a = 0, b = 0;
};

template <class A, class B>
RelError max_rel_error(const A* a, const B* b, size_t n) {
  double max_ref = 0;
  for (size_t i = 0; i < n; ++i) max_ref = std::max(max_ref, std::fabs(double(b[i])));
  RelError e;
  double worst_diff = -1;
  for (size_t i = 0; i < n; ++i) {
    const double d = std::fabs(double(a[i]) - double(b[i]));
    if (!(d <= worst_diff)) {  // NaN counts as worst
      worst_diff = d;
      e.worst = i;
    }
  }
  e.value = max_ref > 0 ? worst_diff / max_ref : worst_diff;
  if (std::isnan(worst_diff)) e.value = INFINITY;
  e.a = double(a[e.worst]);
  e.b = double(b[e.worst]);
  return e;
}

// Prints a measured error so test logs carry the numbers the notes quote.
inline void report(const std::string& what, double value) { std::printf("[ measured ] %s: %.3e\n", what.c_str(), value); }

inline std::string describe(const RelError& e) {
  return "max rel error " + std::to_string(e.value) + " (" + std::to_string(e.value * 1e12) +
         "e-12) at index " + std::to_string(e.worst) + ": got " + std::to_string(e.a) +
         ", expected " + std::to_string(e.b);
}

}  // namespace deltatune::testing_util
