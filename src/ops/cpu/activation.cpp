#include "ops/activation.h"

namespace deltatune {

template <class T>
void swiglu_forward(const T* gate, const T* up, int64_t n, T* h) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) h[i] = silu(gate[i]) * up[i];
}

template <class T>
void swiglu_backward(const T* gate, const T* up, const T* dh, int64_t n, T* dgate, T* dup) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    dgate[i] = dh[i] * up[i] * silu_grad(gate[i]);
    dup[i] = dh[i] * silu(gate[i]);
  }
}

template void swiglu_forward<float>(const float*, const float*, int64_t, float*);
template void swiglu_forward<double>(const double*, const double*, int64_t, double*);
template void swiglu_backward<float>(const float*, const float*, const float*, int64_t, float*, float*);
template void swiglu_backward<double>(const double*, const double*, const double*, int64_t, double*, double*);

}  // namespace deltatune
