#include <algorithm>
#include <vector>

#include "ops/activation.h"
#include "ops/conv1d.h"

namespace deltatune {

namespace {
// Pre-activation of token t (absolute index) inside a sequence starting at `start`.
template <class T>
inline T conv_at(const T* x, int64_t ldx, const T* wc, int kernel, int64_t start, int64_t t,
                 int64_t c) {
  T p = 0;
  for (int j = 0; j < kernel; ++j) {
    const int64_t src = t - (kernel - 1) + j;
    if (src >= start) p += wc[j] * x[src * ldx + c];
  }
  return p;
}
}  // namespace

template <class T>
void causal_conv1d_silu_forward(const T* x, int64_t channels, const T* w, int kernel,
                                std::span<const int64_t> cu_seqlens, T* y, int64_t ldx) {
  if (ldx < 0) ldx = channels;
  const int64_t nseq = int64_t(cu_seqlens.size()) - 1;
  for (int64_t s = 0; s < nseq; ++s) {
    const int64_t start = cu_seqlens[size_t(s)], end = cu_seqlens[size_t(s + 1)];
#pragma omp parallel for schedule(static)
    for (int64_t t = start; t < end; ++t) {
      T* yt = y + t * channels;
      if (t - start >= kernel - 1) {
        // Interior token: all K taps inside the sequence; channel-innermost so it vectorises.
        for (int64_t c = 0; c < channels; ++c) yt[c] = 0;
        for (int j = 0; j < kernel; ++j) {
          const T* xs = x + (t - (kernel - 1) + j) * ldx;
          for (int64_t c = 0; c < channels; ++c) yt[c] += w[c * kernel + j] * xs[c];
        }
        for (int64_t c = 0; c < channels; ++c) yt[c] = silu(yt[c]);
      } else {
        for (int64_t c = 0; c < channels; ++c)
          yt[c] = silu(conv_at(x, ldx, w + c * kernel, kernel, start, t, c));
      }
    }
  }
}

// dp = dy * silu'(p);  dx[t - (K-1) + j, c] += w[c, j] dp[t, c];  dw[c, j] += dp[t, c] x[t-(K-1)+j, c]
template <class T>
void causal_conv1d_silu_backward(const T* x, int64_t channels, const T* w, int kernel,
                                 std::span<const int64_t> cu_seqlens, const T* dy, T* dx, T* dw,
                                 int64_t ldx) {
  if (ldx < 0) ldx = channels;
  const int64_t nseq = int64_t(cu_seqlens.size()) - 1;
  // Channels are independent: parallel over channel blocks, each walks every token.
#pragma omp parallel
  {
    std::vector<T> dp;
#pragma omp for schedule(static)
    for (int64_t c = 0; c < channels; ++c) {
      const T* wc = w + c * kernel;
      for (int64_t s = 0; s < nseq; ++s) {
        const int64_t start = cu_seqlens[size_t(s)], end = cu_seqlens[size_t(s + 1)];
        dp.assign(size_t(end - start), T(0));
        for (int64_t t = start; t < end; ++t)
          dp[size_t(t - start)] = dy[t * channels + c] * silu_grad(conv_at(x, ldx, wc, kernel, start, t, c));
        for (int64_t t = start; t < end; ++t) {
          T acc = 0;  // dx[t] collects dp[t + (K-1) - j] w[j] for taps inside the sequence
          for (int j = 0; j < kernel; ++j) {
            const int64_t out_t = t + (kernel - 1) - j;
            if (out_t < end) acc += wc[j] * dp[size_t(out_t - start)];
          }
          dx[t * ldx + c] = acc;
        }
        if (dw) {
          for (int j = 0; j < kernel; ++j) {
            T acc = 0;
            for (int64_t t = start; t < end; ++t) {
              const int64_t src = t - (kernel - 1) + j;
              if (src >= start) acc += dp[size_t(t - start)] * x[src * ldx + c];
            }
            dw[c * kernel + j] += acc;
          }
        }
      }
    }
  }
}

#define INSTANTIATE(T)                                                                          \
  template void causal_conv1d_silu_forward<T>(const T*, int64_t, const T*, int,                 \
                                              std::span<const int64_t>, T*, int64_t);           \
  template void causal_conv1d_silu_backward<T>(const T*, int64_t, const T*, int,                \
                                               std::span<const int64_t>, const T*, T*, T*, int64_t);
INSTANTIATE(float)
INSTANTIATE(double)
#undef INSTANTIATE

}  // namespace deltatune
