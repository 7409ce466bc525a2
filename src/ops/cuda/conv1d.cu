// The causal conv1d + SiLU of ops/conv1d_cuda.h. One thread per (channel, slice of tokens):
// consecutive threads on consecutive channels (coalesced rows), each walking its slice's tokens
// in order with the last K values in registers, so every input is read once (plus K−1 at a slice
// edge) instead of K times. The walk goes segment by segment of the packed sequences, each found
// in cu_seqlens by a binary search (the table is tiny and cached): packing costs nothing up front.
//   forward   y = silu(p), p from the K taps inside the sequence
//   backward  dp = dy · silu'(p) recomputed, dx[t, c] = Σ_j w[c, j] dp[t + K−1−j, c] over outputs
//             inside the sequence, dw[c, j] = Σ_t dp[t, c] x[t − (K−1) + j, c]: per slice in
//             registers, then over slices in order (deterministic, no atomics)
#include <algorithm>
#include <type_traits>

#include "ops/conv1d_cuda.h"
#include "ops/cuda/kernel_runner.cuh"

namespace deltatune {

namespace {

using cuda::Block;
using cuda::from_float;
using cuda::to_float;

constexpr int kThreads = 256;
// Slices of at least 64 tokens, at most 64 of them: 4096 tokens × 8192 channels are 512 K threads
// (about two waves of an H100), and dw's partial sums stay [64, C, K].
constexpr int64_t kTokensPerSlice = 64;
constexpr int64_t kMaxSlices = 64;
// The windows' width kW: Qwen3.5's conv has 4 taps, so kernels up to 4 run with windows of 4
// (every per-token loop is kW long: windows of the largest kernel, 8, doubled the arithmetic),
// longer ones with windows of kConv1dCudaMaxKernel.
constexpr int kNarrowWindow = 4;

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

// One channel's sliding window, shared by the forward and backward walks: the taps right-aligned in
// kW slots with zeros before them (every loop has a fixed trip count, the arrays stay in
// registers), and the last kW inputs, xw[kW − 1 − i] = x[o − i] once output o's input is in.
template <int kW>
struct ConvWindow {
  float wp[kW];  // wp[kW − K + j] = w[c, j]
  float xw[kW];

  template <class T>
  DT_HD void load_taps(const ConvArgs<T>& a, int64_t c) {
    for (int i = 0; i < kW; ++i)
      wp[i] = i >= kW - a.K ? to_float(a.w[c * a.K + i - (kW - a.K)]) : 0.0f;
  }
  // Before output t of a sequence starting at `start`: the K − 1 inputs before t inside it.
  template <class T>
  DT_HD void begin(const ConvArgs<T>& a, int64_t c, int64_t t, int64_t start) {
    for (int i = 0; i < kW; ++i) {
      const int64_t src = t - kW + i;
      xw[i] = src >= start && src > t - a.K ? to_float(a.x[src * a.ldx + c]) : 0.0f;
    }
  }
  // Shifts in the input of the next output and returns that output's pre-activation.
  DT_HD float shift_in(float x) {
    for (int i = 0; i + 1 < kW; ++i) xw[i] = xw[i + 1];
    xw[kW - 1] = x;
    float p = 0.0f;
    for (int i = 0; i < kW; ++i) p += wp[i] * xw[i];
    return p;
  }
};

// The forward, the same walk as the backward below (one thread per channel and slice of tokens,
// a sliding window of the last K inputs, loads kAhead tokens ahead): each x is read once.
template <class T, int kW>
struct ConvForwardBody {
  static constexpr int kAhead = 8;
  ConvArgs<T> a;
  T* y;
  int64_t slice_tokens;
  DT_HD void operator()(const Block& b, int bx, int by, int, char*) const {
    const int64_t slice_begin = int64_t(by) * slice_tokens;
    const int64_t slice_end = cuda::min_of(a.tokens, slice_begin + slice_tokens);
    for (int e = b.thread; e < kThreads; e += b.threads) {
      const int64_t c = int64_t(bx) * kThreads + e;
      if (c >= a.C) continue;
      ConvWindow<kW> win;
      win.load_taps(a, c);
      for (int64_t t = slice_begin; t < slice_end;) {
        int64_t start, end;
        sequence_of(a, t, &start, &end);
        const int64_t rows_end = cuda::min_of(end, slice_end);
        win.begin(a, c, t, start);
        for (int64_t o0 = t; o0 < rows_end; o0 += kAhead) {
          float xs[kAhead];
#pragma unroll
          for (int u = 0; u < kAhead; ++u)
            xs[u] = o0 + u < rows_end ? to_float(a.x[(o0 + u) * a.ldx + c]) : 0.0f;
#pragma unroll
          for (int u = 0; u < kAhead; ++u) {
            const int64_t o = o0 + u;
            if (o >= rows_end) break;
            y[o * a.C + c] = from_float<T>(cuda::siluf(win.shift_in(xs[u])));
          }
        }
        t = rows_end;
      }
    }
  }
};

// The backward, dx and dw in one kernel. Thread (channel c, slice of tokens) walks its tokens
// once, sequence segment by segment, with sliding registers: the last K inputs (x window) and
// the last K output gradients dp = dy · silu'(p) (p recomputed from the window: K FMAs, no
// [T, C] buffer). Once dp of output o is known, dx of token o − (K−1) is complete:
//   dx[t] = Σ_j w[c, j] dp[t + K−1−j]     (outputs past the sequence end count as dp = 0)
// and dp[o] times the window adds to the thread's dw[c, ·] for the outputs o of its slice. A
// slice also recomputes the K−1 outputs after it (their dp feeds its last rows of dx): a few %
// more reads instead of a second pass. Loads run kAhead tokens ahead of the arithmetic, so that
// enough independent loads are in flight to cover memory latency. The windows are
// kConv1dCudaMaxKernel wide with the taps right-aligned and zeros before them: every loop has a
// fixed trip count and the arrays stay in registers.
template <class T, int kW>
struct ConvBackwardBody {
  static constexpr int kAhead = 8;
  ConvArgs<T> a;
  const T* dy;
  T* dx;
  int64_t slice_tokens;
  float* partials;  // [slices][C][K], null when dw is not wanted
  DT_HD void operator()(const Block& b, int bx, int by, int, char*) const {
    const int K = a.K;
    const int64_t slice_begin = int64_t(by) * slice_tokens;
    const int64_t slice_end = cuda::min_of(a.tokens, slice_begin + slice_tokens);
    for (int e = b.thread; e < kThreads; e += b.threads) {
      const int64_t c = int64_t(bx) * kThreads + e;
      if (c >= a.C) continue;
      // The taps right-aligned with the x window, and wr[j] = w[c, j] left-aligned with the dp ring.
      ConvWindow<kW> win;
      win.load_taps(a, c);
      float wr[kW];
      for (int i = 0; i < kW; ++i) wr[i] = i < K ? to_float(a.w[c * K + i]) : 0.0f;
      float dw[kW] = {};  // dw[kW − K + j]: tap j
      for (int64_t t = slice_begin; t < slice_end;) {
        int64_t start, end;
        sequence_of(a, t, &start, &end);
        const int64_t rows_end = cuda::min_of(end, slice_end);         // dx rows [t, rows_end)
        const int64_t outputs_end = cuda::min_of(end, slice_end + K - 1);  // real dp [t, ..)
        const int64_t steps_end = rows_end + K - 1;  // the last row's dx is complete here
        win.begin(a, c, t, start);
        float dq[kW] = {};  // dq[i] = dp[o − i]
        for (int64_t o0 = t; o0 < steps_end; o0 += kAhead) {
          float xs[kAhead], dys[kAhead];
#pragma unroll
          for (int u = 0; u < kAhead; ++u) {
            const int64_t o = o0 + u;
            const bool real = o < outputs_end;
            xs[u] = real ? to_float(a.x[o * a.ldx + c]) : 0.0f;
            dys[u] = real ? to_float(dy[o * a.C + c]) : 0.0f;
          }
#pragma unroll
          for (int u = 0; u < kAhead; ++u) {
            const int64_t o = o0 + u;
            if (o >= steps_end) break;
            const float p = win.shift_in(xs[u]);
            const float dp = o < outputs_end ? dys[u] * cuda::silu_gradf(p) : 0.0f;
            if (partials && o < rows_end)
              for (int i = 0; i < kW; ++i) dw[i] += dp * win.xw[i];
            for (int i = kW - 1; i > 0; --i) dq[i] = dq[i - 1];
            dq[0] = dp;
            const int64_t row = o - (K - 1);
            if (row >= t) {
              float s = 0.0f;
              for (int i = 0; i < kW; ++i) s += wr[i] * dq[i];
              dx[row * a.ldx + c] = from_float<T>(s);
            }
          }
        }
        t = rows_end;
      }
      if (partials)
        for (int i = 0; i < kW; ++i)
          if (i >= kW - K) partials[(int64_t(by) * a.C + c) * K + i - (kW - K)] = dw[i];
    }
  }
};

int64_t slices_for(int64_t tokens) {
  return std::clamp<int64_t>((tokens + kTokensPerSlice - 1) / kTokensPerSlice, 1, kMaxSlices);
}

dim3 grid_for(int64_t tokens, int64_t channels) {
  return dim3(unsigned((channels + kThreads - 1) / kThreads), unsigned(slices_for(tokens)));
}

int64_t tokens_per_slice(int64_t tokens) {
  const int64_t slices = slices_for(tokens);
  return (tokens + slices - 1) / slices;
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
  return size_t(slices_for(tokens)) * size_t(channels) * size_t(kernel) * sizeof(float);
}

template <class T>
void causal_conv1d_silu_cuda_forward(const T* x, int64_t tokens, int64_t channels, const T* w,
                                     int kernel, const int64_t* cu_seqlens, int64_t num_sequences,
                                     T* y, int64_t ldx, cuda::Target target) {
  const ConvArgs<T> a = make_args(x, tokens, channels, w, kernel, cu_seqlens, num_sequences, ldx);
  if (tokens == 0) return;
  auto run = [&](auto window) {
    cuda::launch<kThreads>(target, "causal conv1d forward",
                           ConvForwardBody<T, decltype(window)::value>{a, y, tokens_per_slice(tokens)},
                           grid_for(tokens, channels));
  };
  if (kernel <= kNarrowWindow)
    run(std::integral_constant<int, kNarrowWindow>{});
  else
    run(std::integral_constant<int, kConv1dCudaMaxKernel>{});
}

template <class T>
void causal_conv1d_silu_cuda_backward(const T* x, int64_t tokens, int64_t channels, const T* w,
                                      int kernel, const int64_t* cu_seqlens, int64_t num_sequences,
                                      const T* dy, T* dx, float* dw, void* workspace, int64_t ldx,
                                      cuda::Target target) {
  const ConvArgs<T> a = make_args(x, tokens, channels, w, kernel, cu_seqlens, num_sequences, ldx);
  if (tokens == 0) return;
  DT_CHECK(!dw || workspace,
           "causal conv1d (CUDA): dw needs causal_conv1d_cuda_dw_workspace_bytes");
  float* partials = dw ? static_cast<float*>(workspace) : nullptr;
  auto run = [&](auto window) {
    cuda::launch<kThreads>(
        target, "causal conv1d backward (dx, dw per slice)",
        ConvBackwardBody<T, decltype(window)::value>{a, dy, dx, tokens_per_slice(tokens), partials},
        grid_for(tokens, channels));
  };
  if (kernel <= kNarrowWindow)
    run(std::integral_constant<int, kNarrowWindow>{});
  else
    run(std::integral_constant<int, kConv1dCudaMaxKernel>{});
  if (dw)
    cuda::sum_partials(target, "causal conv1d backward: dw over slices", partials,
                       slices_for(tokens), channels * kernel, dw);
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
