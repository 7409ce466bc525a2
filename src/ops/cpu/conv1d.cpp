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
// First dp for every token (parallel over tokens, channels innermost), then dx gathers the K
// outputs each input feeds, inside its own sequence; dw (when wanted) is summed per thread.
template <class T>
void causal_conv1d_silu_backward(const T* x, int64_t channels, const T* w, int kernel,
                                 std::span<const int64_t> cu_seqlens, const T* dy, T* dx, T* dw,
                                 int64_t ldx) {
  if (ldx < 0) ldx = channels;
  const int64_t nseq = int64_t(cu_seqlens.size()) - 1;
  const int64_t tokens = cu_seqlens.back();
  std::vector<T> dp(static_cast<size_t>(tokens * channels));
  std::vector<int64_t> start_of(static_cast<size_t>(tokens)), end_of(static_cast<size_t>(tokens));
  for (int64_t s = 0; s < nseq; ++s)
    for (int64_t t = cu_seqlens[size_t(s)]; t < cu_seqlens[size_t(s + 1)]; ++t) {
      start_of[size_t(t)] = cu_seqlens[size_t(s)];
      end_of[size_t(t)] = cu_seqlens[size_t(s + 1)];
    }
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < tokens; ++t) {
    T* dpt = dp.data() + t * channels;
    for (int64_t c = 0; c < channels; ++c) dpt[c] = 0;
    for (int j = 0; j < kernel; ++j) {
      const int64_t src = t - (kernel - 1) + j;
      if (src < start_of[size_t(t)]) continue;
      const T* xs = x + src * ldx;
      for (int64_t c = 0; c < channels; ++c) dpt[c] += w[c * kernel + j] * xs[c];
    }
    const T* dyt = dy + t * channels;
    for (int64_t c = 0; c < channels; ++c) dpt[c] = dyt[c] * silu_grad(dpt[c]);
  }
#pragma omp parallel
  {
    std::vector<T> dw_local(dw ? static_cast<size_t>(channels * kernel) : 0, T(0));
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tokens; ++t) {
      T* dxt = dx + t * ldx;
      for (int64_t c = 0; c < channels; ++c) dxt[c] = 0;
      for (int j = 0; j < kernel; ++j) {
        const int64_t out_t = t + (kernel - 1) - j;  // the output that reads x[t] through tap j
        if (out_t >= end_of[size_t(t)]) continue;
        const T* dpo = dp.data() + out_t * channels;
        for (int64_t c = 0; c < channels; ++c) dxt[c] += w[c * kernel + j] * dpo[c];
        if (dw)
          for (int64_t c = 0; c < channels; ++c) dw_local[size_t(c * kernel + j)] += dpo[c] * x[t * ldx + c];
      }
    }
    if (dw) {
#pragma omp critical
      for (int64_t i = 0; i < channels * kernel; ++i) dw[i] += dw_local[size_t(i)];
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
