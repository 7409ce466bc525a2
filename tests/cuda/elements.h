// Element types of the CUDA calls (float, bf16) to and from the float64 values the tests and the
// CPU references compute with.
#pragma once

#include <cuda_bf16.h>

#include <vector>

namespace deltatune::testing_util {

inline float as_element(double x, float*) { return float(x); }
inline __nv_bfloat16 as_element(double x, __nv_bfloat16*) { return __float2bfloat16(float(x)); }
inline double as_double(double x) { return x; }
inline double as_double(float x) { return x; }
inline double as_double(__nv_bfloat16 x) { return __bfloat162float(x); }

template <class T>
std::vector<T> to_elements(const std::vector<double>& x) {
  std::vector<T> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = as_element(x[i], static_cast<T*>(nullptr));
  return y;
}
template <class T>
std::vector<double> to_doubles(const std::vector<T>& x) {
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = as_double(x[i]);
  return y;
}

// x as the element type T would hold it: the inputs a reference must see to compute on exactly
// what the kernels receive.
template <class T>
std::vector<double> rounded(const std::vector<double>& x) {
  return to_doubles(to_elements<T>(x));
}

}  // namespace deltatune::testing_util
