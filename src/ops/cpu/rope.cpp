#include <cmath>

#include "ops/rope.h"

namespace deltatune {

template <class T>
RopeTable<T> make_rope_table(const int64_t* positions, int64_t tokens, int rotary_dim, double theta) {
  RopeTable<T> table;
  table.rotary_dim = rotary_dim;
  const int half = rotary_dim / 2;
  table.cos.resize(size_t(tokens * half));
  table.sin.resize(size_t(tokens * half));
  std::vector<double> inv_freq(static_cast<size_t>(half));
  for (int i = 0; i < half; ++i) inv_freq[size_t(i)] = std::pow(theta, -2.0 * i / rotary_dim);
  for (int64_t t = 0; t < tokens; ++t)
    for (int i = 0; i < half; ++i) {
      const double angle = double(positions[t]) * inv_freq[size_t(i)];
      table.cos[size_t(t * half + i)] = T(std::cos(angle));
      table.sin[size_t(t * half + i)] = T(std::sin(angle));
    }
  return table;
}

// out1 = x1 cos - x2 sin, out2 = x2 cos + x1 sin (x1, x2 the two halves of the rotary part);
// the backward applies the transpose (sin -> -sin).
template <class T>
static void rotate(T* x, int64_t tokens, int heads, int64_t ld_token, int64_t ld_head,
                   const RopeTable<T>& table, T sign) {
  const int half = table.rotary_dim / 2;
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < tokens; ++t) {
    const T* c = table.cos.data() + t * half;
    const T* s = table.sin.data() + t * half;
    for (int h = 0; h < heads; ++h) {
      T* xh = x + t * ld_token + h * ld_head;
      for (int i = 0; i < half; ++i) {
        const T x1 = xh[i], x2 = xh[i + half];
        xh[i] = x1 * c[i] - sign * x2 * s[i];
        xh[i + half] = x2 * c[i] + sign * x1 * s[i];
      }
    }
  }
}

template <class T>
void rope_forward(T* x, int64_t tokens, int heads, int64_t ld_token, int64_t ld_head,
                  const RopeTable<T>& table) {
  rotate(x, tokens, heads, ld_token, ld_head, table, T(1));
}

template <class T>
void rope_backward(T* dx, int64_t tokens, int heads, int64_t ld_token, int64_t ld_head,
                   const RopeTable<T>& table) {
  rotate(dx, tokens, heads, ld_token, ld_head, table, T(-1));
}

#define INSTANTIATE(T)                                                                            \
  template RopeTable<T> make_rope_table<T>(const int64_t*, int64_t, int, double);                 \
  template void rope_forward<T>(T*, int64_t, int, int64_t, int64_t, const RopeTable<T>&);         \
  template void rope_backward<T>(T*, int64_t, int, int64_t, int64_t, const RopeTable<T>&);
INSTANTIATE(float)
INSTANTIATE(double)
#undef INSTANTIATE

}  // namespace deltatune
