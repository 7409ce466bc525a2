// Pointwise functions and their derivatives, as torch defines them (softplus with threshold 20).
#pragma once

#include <cmath>
#include <cstdint>

namespace deltatune {

template <class T>
inline T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}
template <class T>
inline T silu(T x) {
  return x * sigmoid(x);
}
// d silu / dx = s (1 + x (1 - s)), s = sigmoid(x)
template <class T>
inline T silu_grad(T x) {
  const T s = sigmoid(x);
  return s * (T(1) + x * (T(1) - s));
}
// torch.nn.functional.softplus(x) = log(1 + e^x), returning x itself above 20.
template <class T>
inline T softplus(T x) {
  return x > T(20) ? x : std::log1p(std::exp(x));
}
// Its derivative: sigmoid(x) (1 above the threshold, where torch's softplus is the identity).
template <class T>
inline T softplus_grad(T x) {
  return x > T(20) ? T(1) : sigmoid(x);
}

// SwiGLU of the MLP: h = silu(gate) * up, elementwise over n values.
template <class T>
void swiglu_forward(const T* gate, const T* up, int64_t n, T* h);
// dgate, dup from dh (overwritten).
template <class T>
void swiglu_backward(const T* gate, const T* up, const T* dh, int64_t n, T* dgate, T* dup);

}  // namespace deltatune
