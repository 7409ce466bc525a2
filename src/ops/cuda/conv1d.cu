// The causal conv1d + SiLU of ops/conv1d_cuda.h. One thread per (token, channel), consecutive
// threads on consecutive channels (coalesced rows). Each thread finds its token's sequence in
// cu_seqlens (a binary search: the table is tiny and cached), so packing costs nothing up front.
//   forward  y = silu(p), p from the K taps inside the sequence
//   dx       dx[t, c] = Σ_j w[c, j] dp[t + K−1−j, c] over outputs inside the sequence, where
//            dp = dy · silu'(p) is recomputed (K² FMAs per element instead of a [T, C] buffer)
//   dw       dw[c, j] = Σ_t dp[t, c] x[t − (K−1) + j, c]: 32 channels × 8 token lanes per block,
//            each block over one slice of the tokens; partial sums per block, then over blocks in
//            order (deterministic).
#include <algorithm>

#include "ops/conv1d_cuda.h"
#include "ops/cuda/kernel_runner.cuh"

namespace deltatune {

namespace {

using cuda::Block;
using cuda::from_float;
using cuda::to_float;

constexpr int kThreads = 256;
constexpr int64_t kPerBlock = 4 * kThreads;
constexpr int kDwChannels = 32, kDwTokenLanes = kThreads / kDwChannels;
constexpr int64_t kDwTokensPerSlice = 128;
constexpr int64_t kDwMaxSlices = 64;

template <class T>
struct ConvArgs {
  const T* x;
  int64_t tokens, C, ldx;
  const T* w;
  int K;
  const int64_t* cu;
  int64_t nseq;
};

// [start, end) of the sequence holding token t: the last s with cu[s] <= t.
template <class T>
DT_HD void sequence_of(const ConvArgs<T>& a, int64_t t, int64_t* start, int64_t* end) {
  int64_t lo = 0, hi = a.nseq - 1;
  while (lo < hi) {
    const int64_t mid = (lo + hi + 1) / 2;
    if (a.cu[mid] <= t)
      lo = mid;
    else
      hi = mid - 1;
  }
  *start = a.cu[lo];
  *end = a.cu[lo + 1];
}

// Pre-activation of output token t (inside a sequence starting at `start`), channel c.
template <class T>
DT_HD float preactivation(const ConvArgs<T>& a, int64_t start, int64_t t, int64_t c) {
  float p = 0.0f;
  for (int j = 0; j < a.K; ++j) {
    const int64_t src = t - (a.K - 1) + j;
    if (src >= start) p += to_float(a.w[c * a.K + j]) * to_float(a.x[src * a.ldx + c]);
  }
  return p;
}

template <class T>
struct ConvForwardBody {
  ConvArgs<T> a;
  T* y;
  DT_HD void operator()(const Block& b, int bx, int, int, char*) const {
    const int64_t end = cuda::min_of(a.tokens * a.C, (int64_t(bx) + 1) * kPerBlock);
    for (int64_t e = int64_t(bx) * kPerBlock + b.thread; e < end; e += b.threads) {
      const int64_t t = e / a.C, c = e % a.C;
      int64_t start, stop;
      sequence_of(a, t, &start, &stop);
      y[e] = from_float<T>(cuda::siluf(preactivation(a, start, t, c)));
    }
  }
};

template <class T>
struct ConvInputGradBody {
  ConvArgs<T> a;
  const T* dy;
  T* dx;
  DT_HD void operator()(const Block& b, int bx, int, int, char*) const {
    const int64_t end = cuda::min_of(a.tokens * a.C, (int64_t(bx) + 1) * kPerBlock);
    for (int64_t e = int64_t(bx) * kPerBlock + b.thread; e < end; e += b.threads) {
      const int64_t t = e / a.C, c = e % a.C;
      int64_t start, stop;
      sequence_of(a, t, &start, &stop);
      float s = 0.0f;
      for (int j = 0; j < a.K; ++j) {
        const int64_t out = t + (a.K - 1) - j;  // the output that reads x[t] through tap j
        if (out >= stop) continue;
        const float dp =
            to_float(dy[out * a.C + c]) * cuda::silu_gradf(preactivation(a, start, out, c));
        s += to_float(a.w[c * a.K + j]) * dp;
      }
      dx[t * a.ldx + c] = from_float<T>(s);
    }
  }
};

// Block (bx, by): channels bx·32 .. +32, output tokens of slice by. Virtual thread e = token lane
// · 32 + channel lane sums its tokens' K products in registers, then the block sums its 8 token
// lanes into partials[by][c][j].
template <class T>
struct ConvWeightGradBody {
  ConvArgs<T> a;
  const T* dy;
  int64_t slice_tokens;
  float* partials;  // [slices][C][K]
  static size_t shared_bytes(int K) {
    return size_t(kDwTokenLanes) * kDwChannels * size_t(K) * sizeof(float);
  }
  DT_HD void operator()(const Block& b, int bx, int by, int, char* shared) const {
    float* lane_sums = reinterpret_cast<float*>(shared);  // [token lane][channel lane][K]
    const int64_t t0 = int64_t(by) * slice_tokens;
    const int64_t t1 = cuda::min_of(a.tokens, t0 + slice_tokens);
    for (int e = b.thread; e < kDwTokenLanes * kDwChannels; e += b.threads) {
      const int lane_t = e / kDwChannels, lane_c = e % kDwChannels;
      const int64_t c = int64_t(bx) * kDwChannels + lane_c;
      float acc[kConv1dCudaMaxKernel] = {};
      if (c < a.C)
        for (int64_t t = t0 + lane_t; t < t1; t += kDwTokenLanes) {
          int64_t start, stop;
          sequence_of(a, t, &start, &stop);
          const float dp =
              to_float(dy[t * a.C + c]) * cuda::silu_gradf(preactivation(a, start, t, c));
          for (int j = 0; j < a.K; ++j) {
            const int64_t src = t - (a.K - 1) + j;
            if (src >= start) acc[j] += dp * to_float(a.x[src * a.ldx + c]);
          }
        }
      for (int j = 0; j < a.K; ++j) lane_sums[(lane_t * kDwChannels + lane_c) * a.K + j] = acc[j];
    }
    b.sync();
    for (int e = b.thread; e < kDwChannels * a.K; e += b.threads) {
      const int lane_c = e / a.K, j = e % a.K;
      const int64_t c = int64_t(bx) * kDwChannels + lane_c;
      if (c >= a.C) continue;
      float s = 0.0f;
      for (int lane_t = 0; lane_t < kDwTokenLanes; ++lane_t)
        s += lane_sums[(lane_t * kDwChannels + lane_c) * a.K + j];
      partials[(int64_t(by) * a.C + c) * a.K + j] = s;
    }
  }
};

int64_t dw_slices(int64_t tokens) {
  return std::clamp<int64_t>((tokens + kDwTokensPerSlice - 1) / kDwTokensPerSlice, 1, kDwMaxSlices);
}

template <class T>
ConvArgs<T> make_args(const T* x, int64_t tokens, int64_t channels, const T* w, int kernel,
                      const int64_t* cu_seqlens, int64_t num_sequences, int64_t ldx) {
  DT_CHECK(kernel >= 1 && kernel <= kConv1dCudaMaxKernel, "causal conv1d (CUDA): kernel size ",
           kernel, " outside [1, ", kConv1dCudaMaxKernel, "]");
  DT_CHECK(channels > 0 && tokens >= 0 && (tokens == 0 || num_sequences >= 1),
           "causal conv1d (CUDA): bad sizes: tokens=", tokens, " channels=", channels,
           " sequences=", num_sequences);
  DT_CHECK(channels < (int64_t(1) << 31), "causal conv1d (CUDA): too many channels (", channels,
           ")");
  return {x, tokens, channels, ldx < 0 ? channels : ldx, w, kernel, cu_seqlens, num_sequences};
}

}  // namespace

size_t causal_conv1d_cuda_dw_workspace_bytes(int64_t tokens, int64_t channels, int kernel) {
  return size_t(dw_slices(tokens)) * size_t(channels) * size_t(kernel) * sizeof(float);
}

template <class T>
void causal_conv1d_silu_cuda_forward(const T* x, int64_t tokens, int64_t channels, const T* w,
                                     int kernel, const int64_t* cu_seqlens, int64_t num_sequences,
                                     T* y, int64_t ldx, cuda::Target target) {
  const ConvArgs<T> a = make_args(x, tokens, channels, w, kernel, cu_seqlens, num_sequences, ldx);
  cuda::launch<kThreads>(target, "causal conv1d forward", ConvForwardBody<T>{a, y},
                         cuda::blocks_for(tokens * channels, kPerBlock));
}

template <class T>
void causal_conv1d_silu_cuda_backward(const T* x, int64_t tokens, int64_t channels, const T* w,
                                      int kernel, const int64_t* cu_seqlens, int64_t num_sequences,
                                      const T* dy, T* dx, float* dw, void* workspace, int64_t ldx,
                                      cuda::Target target) {
  const ConvArgs<T> a = make_args(x, tokens, channels, w, kernel, cu_seqlens, num_sequences, ldx);
  cuda::launch<kThreads>(target, "causal conv1d backward: dx", ConvInputGradBody<T>{a, dy, dx},
                         cuda::blocks_for(tokens * channels, kPerBlock));
  if (!dw || tokens == 0) return;
  DT_CHECK(workspace, "causal conv1d (CUDA): dw needs causal_conv1d_cuda_dw_workspace_bytes");
  const int64_t slices = dw_slices(tokens);
  const int64_t slice_tokens = (tokens + slices - 1) / slices;
  float* partials = static_cast<float*>(workspace);
  using Body = ConvWeightGradBody<T>;
  cuda::launch<kThreads>(
      target, "causal conv1d backward: dw", Body{a, dy, slice_tokens, partials},
      dim3(unsigned((channels + kDwChannels - 1) / kDwChannels), unsigned(slices)),
      Body::shared_bytes(kernel));
  cuda::sum_partials(target, "causal conv1d backward: dw over slices", partials, slices,
                     channels * kernel, dw);
}

#define DT_INSTANTIATE(T)                                                                          \
  template void causal_conv1d_silu_cuda_forward<T>(const T*, int64_t, int64_t, const T*, int,      \
                                                   const int64_t*, int64_t, T*, int64_t,           \
                                                   cuda::Target);                                  \
  template void causal_conv1d_silu_cuda_backward<T>(const T*, int64_t, int64_t, const T*, int,     \
                                                    const int64_t*, int64_t, const T*, T*, float*, \
                                                    void*, int64_t, cuda::Target);
DT_INSTANTIATE(float)
DT_INSTANTIATE(__nv_bfloat16)
#undef DT_INSTANTIATE

}  // namespace deltatune
