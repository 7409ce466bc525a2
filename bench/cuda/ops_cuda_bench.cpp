// The CUDA ops other than the delta rule at the shapes of one Qwen3.5-4B layer (hidden 2560, MLP
// 9216, GDN 16 key / 32 value heads of 128, conv over 8192 channels, attention heads of 256 with a
// quarter rotated) and its loss (vocabulary 248320), bf16: median of `reps` after warm-up, CUDA
// events around each call. Prints the time and the rate against the op's floor: bytes it must
// move (GB/s) or, for the loss, the products' FLOPs (TFLOP/s).
//
//   ops_cuda_bench [tokens=4096] [reps=10] [vocab=248320]
// (small tokens and vocab: a quick pass over every kernel, e.g. under compute-sanitizer)
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

#include "core/cuda/gpu_profile.h"
#include "core/cuda/device_buffer.h"
#include "core/rng.h"
#include "ops/activation_cuda.h"
#include "ops/attention_cuda.h"
#include "ops/conv1d_cuda.h"
#include "ops/loss_cuda.h"
#include "ops/matmul_cuda.h"
#include "ops/norm_cuda.h"
#include "ops/rope_cuda.h"
#include "train/adamw_cuda.h"

using namespace deltatune;
using cuda::DeviceBuffer;
using bf16 = __nv_bfloat16;

namespace {

int reps = 10;

template <class T>
DeviceBuffer<T> random_buffer(size_t n, Rng& rng, double scale = 1.0) {
  std::vector<T> x(n);
  for (auto& v : x) v = T(float(scale * rng.normal()));
  return DeviceBuffer<T>(x);
}

double time_ms(const cuda::Stream& stream, const std::function<void()>& call) {
  for (int i = 0; i < 3; ++i) call();
  cudaEvent_t start, stop;
  DT_CUDA(cudaEventCreate(&start));
  DT_CUDA(cudaEventCreate(&stop));
  std::vector<double> ms;
  for (int i = 0; i < reps; ++i) {
    DT_CUDA(cudaEventRecord(start, stream.get()));
    call();
    DT_CUDA(cudaEventRecord(stop, stream.get()));
    DT_CUDA(cudaEventSynchronize(stop));
    float t = 0;
    DT_CUDA(cudaEventElapsedTime(&t, start, stop));
    ms.push_back(t);
  }
  DT_CUDA(cudaEventDestroy(start));
  DT_CUDA(cudaEventDestroy(stop));
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

void print_bytes(const char* what, double ms, double bytes) {
  std::printf("%-44s %9.3f ms  %7.0f GB/s\n", what, ms, bytes / ms * 1e-6);
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t T = argc > 1 ? std::atoll(argv[1]) : 4096;
  reps = argc > 2 ? std::atoi(argv[2]) : 10;
  const int64_t V = argc > 3 ? std::atoll(argv[3]) : 248320;
  const int64_t D = 2560, I = 9216, C = 8192, K = 4;
  cuda::require_device();
  cuda::Stream stream;
  const cuda::Target on(stream.get());
  Rng rng(1);
  const double b = 2.0;  // bytes per bf16

  {  // decoder norm, [T, 2560]
    auto x = random_buffer<bf16>(static_cast<size_t>(T * D), rng),
         w = random_buffer<bf16>(static_cast<size_t>(D), rng, 0.1);
    auto dy = random_buffer<bf16>(static_cast<size_t>(T * D), rng);
    DeviceBuffer<bf16> y(static_cast<size_t>(T * D)), dx(static_cast<size_t>(T * D));
    DeviceBuffer<float> dw(static_cast<size_t>(D));
    DeviceBuffer<char> ws(norm_cuda_dw_workspace_bytes(T, D));
    print_bytes("zero-centred RMSNorm forward [T, 2560]",
                time_ms(stream,
                        [&] {
                          rmsnorm_zero_centred_cuda_forward<bf16>(x.data(), T, D, w.data(), 1e-6,
                                                                  y.data(), -1, -1, on);
                        }),
                2 * b * T * D);
    print_bytes("zero-centred RMSNorm backward, dw",
                time_ms(stream,
                        [&] {
                          rmsnorm_zero_centred_cuda_backward<bf16>(x.data(), T, D, w.data(), 1e-6,
                                                                   dy.data(), dx.data(), dw.data(),
                                                                   ws.data(), -1, -1, on);
                        }),
                3 * b * T * D);
  }
  {  // GDN output norm, [T x 32 heads, 128]
    const int64_t rows = T * 32, dv = 128;
    auto x = random_buffer<bf16>(static_cast<size_t>(rows * dv), rng),
         z = random_buffer<bf16>(static_cast<size_t>(rows * dv), rng);
    auto w = random_buffer<bf16>(static_cast<size_t>(dv), rng),
         dy = random_buffer<bf16>(static_cast<size_t>(rows * dv), rng);
    DeviceBuffer<bf16> y(static_cast<size_t>(rows * dv)), dx(y.size()), dz(y.size());
    print_bytes("gated RMSNorm forward [T x 32, 128]",
                time_ms(stream,
                        [&] {
                          gated_rmsnorm_cuda_forward<bf16>(x.data(), z.data(), rows, dv, w.data(),
                                                           1e-6, y.data(), on);
                        }),
                3 * b * rows * dv);
    print_bytes("gated RMSNorm backward, no dw",
                time_ms(stream,
                        [&] {
                          gated_rmsnorm_cuda_backward<bf16>(x.data(), z.data(), rows, dv, w.data(),
                                                            1e-6, dy.data(), dx.data(), dz.data(),
                                                            nullptr, nullptr, on);
                        }),
                5 * b * rows * dv);
  }
  {  // GDN q and k L2 norms, [T x 16 heads, 128]
    const int64_t rows = T * 16, dk = 128;
    auto x = random_buffer<bf16>(static_cast<size_t>(rows * dk), rng),
         dy = random_buffer<bf16>(static_cast<size_t>(rows * dk), rng);
    DeviceBuffer<bf16> y(static_cast<size_t>(rows * dk)), dx(y.size());
    print_bytes("L2 norm forward [T x 16, 128]",
                time_ms(stream,
                        [&] {
                          l2norm_cuda_forward<bf16>(x.data(), rows, dk, 1e-6, y.data(), -1, -1,
                                                    on);
                        }),
                2 * b * rows * dk);
    print_bytes("L2 norm backward",
                time_ms(stream,
                        [&] {
                          l2norm_cuda_backward<bf16>(x.data(), rows, dk, 1e-6, dy.data(), dx.data(),
                                                     -1, -1, on);
                        }),
                3 * b * rows * dk);
  }
  {  // MLP activation, [T, 9216]
    const int64_t n = T * I;
    auto g = random_buffer<bf16>(static_cast<size_t>(n), rng),
         u = random_buffer<bf16>(static_cast<size_t>(n), rng);
    auto dh = random_buffer<bf16>(static_cast<size_t>(n), rng);
    DeviceBuffer<bf16> h(static_cast<size_t>(n)), dg(static_cast<size_t>(n)),
        du(static_cast<size_t>(n));
    print_bytes(
        "SwiGLU forward [T, 9216]",
        time_ms(stream, [&] { swiglu_cuda_forward<bf16>(g.data(), u.data(), n, h.data(), on); }),
        3 * b * n);
    print_bytes("SwiGLU backward",
                time_ms(stream,
                        [&] {
                          swiglu_cuda_backward<bf16>(g.data(), u.data(), dh.data(), n, dg.data(),
                                                     du.data(), on);
                        }),
                5 * b * n);
  }
  {  // GDN conv, [T, 8192], 4 sequences
    auto x = random_buffer<bf16>(static_cast<size_t>(T * C), rng),
         w = random_buffer<bf16>(static_cast<size_t>(C * K), rng, 0.5);
    auto dy = random_buffer<bf16>(static_cast<size_t>(T * C), rng);
    DeviceBuffer<bf16> y(static_cast<size_t>(T * C)), dx(static_cast<size_t>(T * C));
    DeviceBuffer<float> dw(static_cast<size_t>(C * K));
    DeviceBuffer<char> ws(causal_conv1d_cuda_dw_workspace_bytes(T, C, int(K)));
    const std::vector<int64_t> cu_host = {0, T / 4, T / 2, 3 * T / 4, T};
    DeviceBuffer<int64_t> cu(cu_host);
    print_bytes("causal conv1d + SiLU forward [T, 8192]",
                time_ms(stream,
                        [&] {
                          causal_conv1d_silu_cuda_forward<bf16>(x.data(), T, C, w.data(), int(K),
                                                                cu.data(), 4, y.data(), -1, on);
                        }),
                2 * b * T * C);
    print_bytes("causal conv1d + SiLU backward, dw",
                time_ms(stream,
                        [&] {
                          causal_conv1d_silu_cuda_backward<bf16>(x.data(), T, C, w.data(), int(K),
                                                                 cu.data(), 4, dy.data(), dx.data(),
                                                                 dw.data(), ws.data(), -1, on);
                        }),
                3 * b * T * C);
    print_bytes("causal conv1d + SiLU backward, no dw (model)",
                time_ms(stream,
                        [&] {
                          causal_conv1d_silu_cuda_backward<bf16>(x.data(), T, C, w.data(), int(K),
                                                                 cu.data(), 4, dy.data(), dx.data(),
                                                                 nullptr, nullptr, -1, on);
                        }),
                3 * b * T * C);
  }
  {  // attention q: 16 heads of 256, 64 dims turn
    const int H = 16, hd = 256, rot = 64;
    auto x = random_buffer<bf16>(static_cast<size_t>(T * H * hd), rng);
    std::vector<int64_t> pos_host(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t) pos_host[static_cast<size_t>(t)] = t;
    DeviceBuffer<int64_t> pos(pos_host);
    DeviceBuffer<float> cos(static_cast<size_t>(T * rot / 2)), sin(cos.size());
    rope_cuda_table(pos.data(), T, rot, 1e7, cos.data(), sin.data(), on);
    print_bytes("partial RoPE forward, q [T, 16 x 256], 64 turn",
                time_ms(stream,
                        [&] {
                          rope_cuda_forward<bf16>(x.data(), T, H, H * hd, hd, rot, cos.data(),
                                                  sin.data(), on);
                        }),
                2 * b * T * H * rot);
  }
  {  // AdamW over 20 M LoRA parameters (at 4096 tokens)
    const int64_t n = 5000 * T;
    auto p = random_buffer<float>(static_cast<size_t>(n), rng),
         g = random_buffer<float>(static_cast<size_t>(n), rng);
    DeviceBuffer<float> m(static_cast<size_t>(n)), v(static_cast<size_t>(n));
    m.fill_bytes(0);
    v.fill_bytes(0);
    int step = 0;
    print_bytes("AdamW step, 5000 x T float parameters",
                time_ms(stream,
                        [&] {
                          adamw_cuda_step(p.data(), g.data(), m.data(), v.data(), n, 1e-4,
                                          AdamWConfig{}, ++step, on);
                        }),
                7 * 4.0 * n);
  }
  {  // attention, 16 query heads and 4 kv heads of 256, one sequence (causal: half the scores)
    const int H = 16, Hkv = 4, hd = 256;
    const AttentionShape shape{T, H, Hkv, hd, 1.0 / 16};
    auto q = random_buffer<bf16>(static_cast<size_t>(T * H * hd), rng);
    auto k = random_buffer<bf16>(static_cast<size_t>(T * Hkv * hd), rng);
    auto v = random_buffer<bf16>(static_cast<size_t>(T * Hkv * hd), rng);
    auto d_out = random_buffer<bf16>(static_cast<size_t>(T * H * hd), rng);
    DeviceBuffer<bf16> out(q.size()), dq(q.size()), dk(k.size()), dv(v.size());
    DeviceBuffer<float> lse(static_cast<size_t>(T * H));
    DeviceBuffer<char> ws(attention_cuda_backward_workspace_bytes(shape));
    DeviceBuffer<int64_t> cu(std::vector<int64_t>{0, T});
    const double flops = 2.0 * double(T) * double(T) * hd * H;  // QKᵀ and PV over half the scores
    const double fwd = time_ms(stream, [&] {
      attention_cuda_forward<bf16>(shape, cu.data(), 1, T, q.data(), H * hd, k.data(), v.data(),
                                   Hkv * hd, out.data(), lse.data(), on);
    });
    std::printf("%-44s %9.3f ms  %7.1f TFLOP/s\n", "attention forward [T, 16/4 x 256]", fwd,
                flops / fwd * 1e-9);
    const double bwd = time_ms(stream, [&] {
      attention_cuda_backward<bf16>(shape, cu.data(), 1, T, q.data(), H * hd, k.data(), v.data(),
                                    Hkv * hd, out.data(), lse.data(), d_out.data(), dq.data(),
                                    dk.data(), dv.data(), ws.data(), on);
    });
    std::printf("%-44s %9.3f ms  %7.1f TFLOP/s\n", "attention backward (dq kernel recomputes)", bwd,
                2.5 * flops / bwd * 1e-9);
  }
  {  // the loss over the whole vocabulary
    auto h = random_buffer<bf16>(static_cast<size_t>(T * D), rng),
         w = random_buffer<bf16>(static_cast<size_t>(V * D), rng, 0.05);
    std::vector<int64_t> targets_host(static_cast<size_t>(T));
    for (auto& t : targets_host) t = int64_t(rng.uniform() * double(V));
    DeviceBuffer<int64_t> targets(targets_host);
    DeviceBuffer<bf16> dh(static_cast<size_t>(T * D));
    DeviceBuffer<double> loss(1);
    const cuda::Blas blas(on);
    for (int64_t panel : {int64_t(2048), int64_t(4096), int64_t(16384)}) {
      DeviceBuffer<char> ws(cross_entropy_cuda_workspace_bytes<bf16>(T, D, panel, true));
      const double ms = time_ms(stream, [&] {
        cross_entropy_cuda_forward_backward<bf16>(h.data(), T, w.data(), V, D, targets.data(),
                                                  1.0 / double(T), loss.data(), dh.data(),
                                                  ws.data(), panel, blas);
      });
      std::printf(
          "cross-entropy + d_hidden [T, 2560] x V, panel %-6lld %9.3f ms  %7.1f TFLOP/s (workspace "
          "%.0f MiB)\n",
          (long long)panel, ms, 4.0 * T * D * V / ms * 1e-9, double(ws.bytes()) / (1 << 20));
    }
  }
  cuda::gpu_profile_flush();  // DELTATUNE_PROFILE=1: the last events, before the report at exit
  return 0;
}
