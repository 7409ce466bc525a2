// The causal conv1d + SiLU of ops/conv1d_cuda.h. One thread per (channel, slice of tokens), or two
// channels for bf16 (4-byte accesses): consecutive threads on consecutive channels (coalesced
// rows), each walking its slice's tokens in order with the last K values in registers, so every
// input is read once (plus K−1 at a slice edge) instead of K times. The walk goes segment by
// segment of the packed sequences, each found in cu_seqlens by a binary search (the table is tiny
// and cached): packing costs nothing up front.
//   forward   y = silu(p), p from the K taps inside the sequence
//   backward  dp = dy · silu'(p) recomputed, dx[t, c] = Σ_j w[c, j] dp[t + K−1−j, c] over outputs
//             inside the sequence, dw[c, j] = Σ_t dp[t, c] x[t − (K−1) + j, c]: per slice in
//             registers, then over slices in order (deterministic, no atomics)
#include <algorithm>
#include <cstdint>
#include <initializer_list>
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

// The part of `cols` holding channel c: its first channel's address, offset to c, and its row
// stride. V channels c.. lie in one part (vector_channels checks the boundaries).
template <class P>
struct ColumnsAt {
  P at;
  int64_t ld;
  DT_HD ColumnsAt(const ConvColumns<P>& cols, int64_t c) {
    int s = 0;
    while (s + 1 < cols.parts && c >= cols.first[s + 1]) ++s;
    at = cols.part[s] + (c - cols.first[s]);
    ld = cols.first[s + 1] - cols.first[s];
  }
};

// The forward, the same walk as the backward below (one thread per V channels and slice of
// tokens, a sliding window of the last K inputs, loads kAhead tokens ahead): each x is read once.
template <class T, int kW, int V>
struct ConvForwardBody {
  static constexpr int kAhead = 4;  // as the backward's (8 measured the same here)
  ConvArgs<T> a;
  ConvColumns<T*> y;
  int64_t slice_tokens;
  DT_HD void operator()(const Block& b, int bx, int by, int, char*) const {
    const int64_t slice_begin = int64_t(by) * slice_tokens;
    const int64_t slice_end = cuda::min_of(a.tokens, slice_begin + slice_tokens);
    for (int e = b.thread; e < kThreads; e += b.threads) {
      const int64_t c = (int64_t(bx) * kThreads + e) * V;
      if (c >= a.C) continue;
      const ColumnsAt<T*> out_c(y, c);
      ConvWindow<kW> win[V];
#pragma unroll
      for (int v = 0; v < V; ++v) win[v].load_taps(a, c + v);
      for (int64_t t = slice_begin; t < slice_end;) {
        int64_t start, end;
        sequence_of(a, t, &start, &end);
        const int64_t rows_end = cuda::min_of(end, slice_end);
#pragma unroll
        for (int v = 0; v < V; ++v) win[v].begin(a, c + v, t, start);
        int64_t x_at = t * a.ldx + c, y_at = t * out_c.ld;  // row o0's
        for (int64_t o0 = t; o0 < rows_end; o0 += kAhead) {
          const int n = int(cuda::min_of(kAhead, rows_end - o0));
          float xs[kAhead][V];
#pragma unroll
          for (int u = 0; u < kAhead; ++u)
            if (u < n) cuda::load_n<V>(a.x + x_at + u * a.ldx, xs[u]);
#pragma unroll
          for (int u = 0; u < kAhead; ++u) {
            if (u >= n) break;
            float out[V];
#pragma unroll
            for (int v = 0; v < V; ++v) out[v] = cuda::siluf(win[v].shift_in(xs[u][v]));
            cuda::store_n<V>(out_c.at + y_at + u * out_c.ld, out);
          }
          x_at += kAhead * a.ldx;
          y_at += kAhead * out_c.ld;
        }
        t = rows_end;
      }
    }
  }
};

// The backward, dx and dw in one kernel. Thread (V channels, slice of tokens) walks its tokens
// once, sequence segment by segment, with sliding registers: the last K inputs (x window) and
// the last K output gradients dp = dy · silu'(p) (p recomputed from the window: K FMAs, no
// [T, C] buffer). Once dp of output o is known, dx of token o − (K−1) is complete:
//   dx[t] = Σ_j w[c, j] dp[t + K−1−j]     (outputs past the sequence end count as dp = 0)
// and dp[o] times the window adds to the thread's dw[c, ·] for the outputs o of its slice. A
// slice also recomputes the K−1 outputs after it (their dp feeds its last rows of dx): a few %
// more reads instead of a second pass. Loads run kAhead tokens ahead of the arithmetic, so that
// enough independent loads are in flight to cover memory latency; two bf16 channels a thread
// halve the load and store instructions (each a 4-byte access). The windows are kW wide with the
// taps right-aligned and zeros before them: every loop has a fixed trip count and the arrays stay
// in registers. kDw: dw wanted (the model's conv weights are frozen: its backward skips the
// window sums).
template <class T, int kW, int V, bool kDw>
struct ConvBackwardBody {
  // 4 tokens ahead: 0.170 ms at [4096, 8192] on the H100 against 0.189 with 8 (fewer registers,
  // more threads resident); one channel a thread took 0.211 (docs/performance.md).
  static constexpr int kAhead = 4;
  ConvArgs<T> a;
  ConvColumns<const T*> dy;
  T* dx;
  int64_t slice_tokens;
  float* partials;  // [slices][C][K] when kDw
  DT_HD void operator()(const Block& b, int bx, int by, int, char*) const {
    const int K = a.K;
    const int64_t slice_begin = int64_t(by) * slice_tokens;
    const int64_t slice_end = cuda::min_of(a.tokens, slice_begin + slice_tokens);
    for (int e = b.thread; e < kThreads; e += b.threads) {
      const int64_t c = (int64_t(bx) * kThreads + e) * V;
      if (c >= a.C) continue;
      const ColumnsAt<const T*> dy_c(dy, c);
      // The taps right-aligned with the x window, and wr[j] = w[c, j] left-aligned with the dp ring.
      ConvWindow<kW> win[V];
      float wr[V][kW];
      float dw[V][kW] = {};  // dw[v][kW − K + j]: tap j of channel c + v
#pragma unroll
      for (int v = 0; v < V; ++v) {
        win[v].load_taps(a, c + v);
        for (int i = 0; i < kW; ++i) wr[v][i] = i < K ? to_float(a.w[(c + v) * K + i]) : 0.0f;
      }
      for (int64_t t = slice_begin; t < slice_end;) {
        int64_t start, end;
        sequence_of(a, t, &start, &end);
        const int64_t rows_end = cuda::min_of(end, slice_end);         // dx rows [t, rows_end)
        const int64_t outputs_end = cuda::min_of(end, slice_end + K - 1);  // real dp [t, ..)
        const int64_t steps_end = rows_end + K - 1;  // the last row's dx is complete here
#pragma unroll
        for (int v = 0; v < V; ++v) win[v].begin(a, c + v, t, start);
        float dq[V][kW] = {};  // dq[v][i] = dp[o − i] of channel c + v
        // Offsets of row o0 in x and dy, and of row o0 − (K−1) in dx (the row o0 completes).
        int64_t x_at = t * a.ldx + c, dy_at = t * dy_c.ld, dx_at = (t - (K - 1)) * a.ldx + c;
        for (int64_t o0 = t; o0 < steps_end; o0 += kAhead) {
          // Steps of this group, and how many of them have a real output (the rest: dp = 0).
          const int n = int(cuda::min_of(kAhead, steps_end - o0));
          const int real = int(cuda::min_of(n, cuda::min_of(kAhead, outputs_end - o0)));
          const int first_row = int(t - o0) + K - 1;  // steps u >= first_row write dx
          const int64_t dw_steps = rows_end - o0;       // and u < dw_steps add to dw
          float xs[kAhead][V], dys[kAhead][V];
#pragma unroll
          for (int u = 0; u < kAhead; ++u)
            if (u < real) {
              cuda::load_n<V>(a.x + x_at + u * a.ldx, xs[u]);  // V channels: one access
              cuda::load_n<V>(dy_c.at + dy_at + u * dy_c.ld, dys[u]);
            } else {
#pragma unroll
              for (int v = 0; v < V; ++v) xs[u][v] = dys[u][v] = 0.0f;
            }
#pragma unroll
          for (int u = 0; u < kAhead; ++u) {
            if (u >= n) break;
            float out[V];
#pragma unroll
            for (int v = 0; v < V; ++v) {
              const float p = win[v].shift_in(xs[u][v]);
              const float dp = u < real ? dys[u][v] * cuda::silu_gradf(p) : 0.0f;
              if (kDw && u < dw_steps)
                for (int i = 0; i < kW; ++i) dw[v][i] += dp * win[v].xw[i];
              for (int i = kW - 1; i > 0; --i) dq[v][i] = dq[v][i - 1];
              dq[v][0] = dp;
              float s = 0.0f;
              for (int i = 0; i < kW; ++i) s += wr[v][i] * dq[v][i];
              out[v] = s;
            }
            if (u >= first_row) cuda::store_n<V>(dx + dx_at + u * a.ldx, out);
          }
          x_at += kAhead * a.ldx;
          dy_at += kAhead * dy_c.ld;
          dx_at += kAhead * a.ldx;
        }
        t = rows_end;
      }
      if constexpr (kDw)
        for (int v = 0; v < V; ++v)
          for (int i = 0; i < kW; ++i)
            if (i >= kW - K)
              partials[(int64_t(by) * a.C + c + v) * K + i - (kW - K)] = dw[v][i];
    }
  }
};

int64_t slices_for(int64_t tokens) {
  return std::clamp<int64_t>((tokens + kTokensPerSlice - 1) / kTokensPerSlice, 1, kMaxSlices);
}

// V channels a thread.
dim3 grid_for(int64_t tokens, int64_t channels, int V) {
  const int64_t per_block = int64_t(kThreads) * V;
  return dim3(unsigned((channels + per_block - 1) / per_block), unsigned(slices_for(tokens)));
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

// Channels a thread: two bf16 (one 4-byte access) where every row of x, dy, dx and y starts
// 4-byte aligned and the channels are even, else one.
template <class T, class P>
int vector_channels(const ConvArgs<T>& a, std::initializer_list<const void*> arrays,
                    const ConvColumns<P>& cols) {
  if constexpr (sizeof(T) != 2) {
    return 1;
  } else {
    bool ok = a.C % 2 == 0 && a.ldx % 2 == 0;
    for (const void* p : arrays) ok = ok && reinterpret_cast<uintptr_t>(p) % 4 == 0;
    for (int i = 0; i < cols.parts; ++i)
      ok = ok && cols.first[i + 1] % 2 == 0 && reinterpret_cast<uintptr_t>(cols.part[i]) % 4 == 0;
    return ok ? 2 : 1;
  }
}

template <class P>
void check_columns(const ConvColumns<P>& cols, int64_t channels) {
  DT_CHECK(cols.parts >= 1 && cols.parts <= 3 && cols.first[0] == 0 &&
               cols.first[cols.parts] == channels,
           "causal conv1d (CUDA): the output's parts cover channels [0, ", cols.first[cols.parts],
           "), not [0, ", channels, ")");
  for (int i = 0; i < cols.parts; ++i)
    DT_CHECK(cols.part[i] && cols.first[i + 1] > cols.first[i],
             "causal conv1d (CUDA): an empty or null part of the output");
}

// Calls run(kW, V) with the window width and channels a thread, as constants.
template <class T, class Run>
void with_shape(const ConvArgs<T>& a, int V, const Run& run) {
  using std::integral_constant;
  auto with_window = [&](auto v) {
    if (a.K <= kNarrowWindow)
      run(integral_constant<int, kNarrowWindow>{}, v);
    else
      run(integral_constant<int, kConv1dCudaMaxKernel>{}, v);
  };
  if constexpr (sizeof(T) == 2)
    if (V == 2) return with_window(integral_constant<int, 2>{});
  with_window(integral_constant<int, 1>{});
}

}  // namespace

size_t causal_conv1d_cuda_dw_workspace_bytes(int64_t tokens, int64_t channels, int kernel) {
  return size_t(slices_for(tokens)) * size_t(channels) * size_t(kernel) * sizeof(float);
}

template <class T>
void causal_conv1d_silu_cuda_forward(const T* x, int64_t tokens, int64_t channels, const T* w,
                                     int kernel, const int64_t* cu_seqlens, int64_t num_sequences,
                                     const ConvColumns<T*>& y, int64_t ldx, cuda::Target target) {
  const ConvArgs<T> a = make_args(x, tokens, channels, w, kernel, cu_seqlens, num_sequences, ldx);
  check_columns(y, channels);
  if (tokens == 0) return;
  const int V = vector_channels(a, {x}, y);
  with_shape(a, V, [&](auto window, auto v) {
    using Body = ConvForwardBody<T, decltype(window)::value, decltype(v)::value>;
    cuda::launch<kThreads>(target, "causal conv1d forward", Body{a, y, tokens_per_slice(tokens)},
                           grid_for(tokens, channels, V));
  });
}

template <class T>
void causal_conv1d_silu_cuda_forward(const T* x, int64_t tokens, int64_t channels, const T* w,
                                     int kernel, const int64_t* cu_seqlens, int64_t num_sequences,
                                     T* y, int64_t ldx, cuda::Target target) {
  causal_conv1d_silu_cuda_forward(x, tokens, channels, w, kernel, cu_seqlens, num_sequences,
                                  ConvColumns<T*>::dense(y, channels), ldx, target);
}

template <class T>
void causal_conv1d_silu_cuda_backward(const T* x, int64_t tokens, int64_t channels, const T* w,
                                      int kernel, const int64_t* cu_seqlens, int64_t num_sequences,
                                      const ConvColumns<const T*>& dy, T* dx, float* dw,
                                      void* workspace, int64_t ldx, cuda::Target target) {
  const ConvArgs<T> a = make_args(x, tokens, channels, w, kernel, cu_seqlens, num_sequences, ldx);
  check_columns(dy, channels);
  if (tokens == 0) return;
  DT_CHECK(!dw || workspace,
           "causal conv1d (CUDA): dw needs causal_conv1d_cuda_dw_workspace_bytes");
  float* partials = dw ? static_cast<float*>(workspace) : nullptr;
  const int V = vector_channels(a, {x, dx}, dy);
  with_shape(a, V, [&](auto window, auto v) {
    constexpr int kW = decltype(window)::value, kV = decltype(v)::value;
    const int64_t slice = tokens_per_slice(tokens);
    if (dw)
      cuda::launch<kThreads>(target, "causal conv1d backward (dx, dw per slice)",
                             ConvBackwardBody<T, kW, kV, true>{a, dy, dx, slice, partials},
                             grid_for(tokens, channels, V));
    else
      cuda::launch<kThreads>(target, "causal conv1d backward (dx)",
                             ConvBackwardBody<T, kW, kV, false>{a, dy, dx, slice, nullptr},
                             grid_for(tokens, channels, V));
  });
  if (dw)
    cuda::sum_partials(target, "causal conv1d backward: dw over slices", partials,
                       slices_for(tokens), channels * kernel, dw);
}

template <class T>
void causal_conv1d_silu_cuda_backward(const T* x, int64_t tokens, int64_t channels, const T* w,
                                      int kernel, const int64_t* cu_seqlens, int64_t num_sequences,
                                      const T* dy, T* dx, float* dw, void* workspace, int64_t ldx,
                                      cuda::Target target) {
  causal_conv1d_silu_cuda_backward(x, tokens, channels, w, kernel, cu_seqlens, num_sequences,
                                   ConvColumns<const T*>::dense(dy, channels), dx, dw, workspace,
                                   ldx, target);
}

#define DT_INSTANTIATE(T)                                                                          \
  template void causal_conv1d_silu_cuda_forward<T>(const T*, int64_t, int64_t, const T*, int,      \
                                                   const int64_t*, int64_t, T*, int64_t,           \
                                                   cuda::Target);                                  \
  template void causal_conv1d_silu_cuda_backward<T>(const T*, int64_t, int64_t, const T*, int,     \
                                                    const int64_t*, int64_t, const T*, T*, float*, \
                                                    void*, int64_t, cuda::Target);           \
  template void causal_conv1d_silu_cuda_forward<T>(const T*, int64_t, int64_t, const T*, int,      \
                                                   const int64_t*, int64_t,                        \
                                                   const ConvColumns<T*>&, int64_t, cuda::Target); \
  template void causal_conv1d_silu_cuda_backward<T>(                                               \
      const T*, int64_t, int64_t, const T*, int, const int64_t*, int64_t,                          \
      const ConvColumns<const T*>&, T*, float*, void*, int64_t, cuda::Target);
DT_INSTANTIATE(float)
DT_INSTANTIATE(__nv_bfloat16)
#undef DT_INSTANTIATE

}  // namespace deltatune
