// The gated delta rule alone on the GPU, forward + backward (src/ops/delta_rule_cuda.h), timed the
// way issue 7 quotes flash-linear-attention: bf16, median of 20 after warm-up, CUDA events around
// the region. Also the GPU memory it holds: inputs, outputs, gradients and the workspace (every
// allocation this program makes), the figure torch.cuda.max_memory_allocated gives for a peer.
//
//   delta_rule_cuda_bench [tokens=4096] [key_heads=16] [value_heads=16] [head_dim=128] [reps=20]
//                         [warmup=5] [value_block key_split: the configurations below]
// prints one line per configuration of the sequential kernels (DeltaRuleCudaPlan::value_block and
// key_split; 0 = the default): the default, then without the key split, then other blocks. With
// DELTATUNE_PROFILE=1 each kernel's GPU time is printed at exit (the calls then wait for each
// kernel: time the totals without it).
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <utility>
#include <vector>

#include "core/cuda/gpu_profile.h"
#include "core/cuda/device_buffer.h"
#include "core/rng.h"
#include "ops/delta_rule_cuda.h"

using namespace deltatune;
using cuda::DeviceBuffer;
using bf16 = __nv_bfloat16;

namespace {

std::vector<bf16> to_bf16(const std::vector<float>& x) {
  std::vector<bf16> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = __float2bfloat16(x[i]);
  return y;
}

// Rows of unit length (times scale), as the model feeds q and k.
std::vector<float> unit_rows(int64_t rows, int dim, float scale, Rng& rng) {
  std::vector<float> x(size_t(rows * dim));
  for (int64_t r = 0; r < rows; ++r) {
    double norm = 0;
    for (int i = 0; i < dim; ++i) norm += double(x[size_t(r * dim + i)] = float(rng.normal())) * x[size_t(r * dim + i)];
    for (int i = 0; i < dim; ++i) x[size_t(r * dim + i)] *= scale / float(std::sqrt(norm));
  }
  return x;
}

double median(std::vector<double> x) {
  std::sort(x.begin(), x.end());
  return x.size() % 2 ? x[x.size() / 2] : 0.5 * (x[x.size() / 2 - 1] + x[x.size() / 2]);
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t T = argc > 1 ? std::atoll(argv[1]) : 4096;
  const int Hk = argc > 2 ? std::atoi(argv[2]) : 16;
  const int Hv = argc > 3 ? std::atoi(argv[3]) : 16;
  const int D = argc > 4 ? std::atoi(argv[4]) : 128;
  const int reps = argc > 5 ? std::atoi(argv[5]) : 20;
  const int warmup = argc > 6 ? std::atoi(argv[6]) : 5;
  std::vector<std::pair<int, int>> configs = {{0, 0}, {0, 1}, {64, 1}, {32, 2}, {16, 1}};
  if (argc > 8) configs = {{std::atoi(argv[7]), std::atoi(argv[8])}};
  try {
    cuda::require_device();
    cudaDeviceProp prop{};
    DT_CUDA(cudaGetDeviceProperties(&prop, 0));
    std::printf("device: %s, %d SMs; tokens %lld, key heads %d, value heads %d, dk = dv = %d, bf16\n",
                prop.name, prop.multiProcessorCount, (long long)T, Hk, Hv, D);

    Rng rng(1);
    const DeltaRuleShape shape{T, Hk, Hv, D, D};
    const std::vector<int64_t> cu = {0, T};
    std::vector<float> g(size_t(T * Hv)), beta(g.size()), v(size_t(T * Hv * D)), d_out(v.size());
    for (size_t i = 0; i < g.size(); ++i) {
      const double a_log = (i % Hv) % 3 == 0 ? 0.0 : (i % Hv) % 3 == 1 ? -3.0 : -6.0;
      g[i] = float(-std::exp(a_log + 0.5 * rng.normal()) * std::log1p(std::exp(rng.normal())));
      beta[i] = float(1 / (1 + std::exp(-rng.normal())));
    }
    for (auto& x : v) x = float(rng.normal());
    for (auto& x : d_out) x = float(rng.normal());
    DeviceBuffer<bf16> q(to_bf16(unit_rows(T * Hk, D, 1 / std::sqrt(float(D)), rng)));
    DeviceBuffer<bf16> k(to_bf16(unit_rows(T * Hk, D, 1, rng)));
    DeviceBuffer<bf16> dv_in(to_bf16(v)), dO(to_bf16(d_out));
    DeviceBuffer<float> dg_in(g), dbeta_in(beta);
    DeviceBuffer<bf16> out(size_t(T * Hv * D)), dq(q.size()), dk(k.size()), dv(dv_in.size());
    DeviceBuffer<float> dg(g.size()), dbeta(beta.size());

    cuda::Stream stream;
    cudaEvent_t start, mid, stop;
    DT_CUDA(cudaEventCreate(&start));
    DT_CUDA(cudaEventCreate(&mid));
    DT_CUDA(cudaEventCreate(&stop));
    for (auto [value_block, key_split] : configs) {
      DeltaRuleCudaPlan plan(shape, cu, delta_rule_cuda_chunk<bf16>());
      plan.value_block = value_block;
      plan.key_split = key_split;
      DeviceBuffer<char> workspace(
          std::max(plan.forward_workspace_bytes(), plan.backward_workspace_bytes()));
      const size_t bytes = q.bytes() + k.bytes() + dv_in.bytes() + dO.bytes() + dg_in.bytes() +
                           dbeta_in.bytes() + out.bytes() + dq.bytes() + dk.bytes() + dv.bytes() +
                           dg.bytes() + dbeta.bytes() + workspace.bytes();
      auto forward = [&] {
        gated_delta_rule_cuda_forward<bf16>(plan, q.data(), k.data(), dv_in.data(), dg_in.data(),
                                            dbeta_in.data(), nullptr, out.data(), nullptr,
                                            workspace.data(), stream.get());
      };
      auto backward = [&] {
        gated_delta_rule_cuda_backward<bf16>(plan, q.data(), k.data(), dv_in.data(), dg_in.data(),
                                             dbeta_in.data(), nullptr, dO.data(), nullptr,
                                             dq.data(), dk.data(), dv.data(), dg.data(),
                                             dbeta.data(), nullptr, workspace.data(), stream.get());
      };
      for (int i = 0; i < warmup; ++i) {
        forward();
        backward();
      }
      stream.synchronize();
      std::vector<double> fwd_ms, bwd_ms, total_ms;
      for (int i = 0; i < reps; ++i) {
        DT_CUDA(cudaEventRecord(start, stream.get()));
        forward();
        DT_CUDA(cudaEventRecord(mid, stream.get()));
        backward();
        DT_CUDA(cudaEventRecord(stop, stream.get()));
        DT_CUDA(cudaEventSynchronize(stop));
        float a = 0, b = 0;
        DT_CUDA(cudaEventElapsedTime(&a, start, mid));
        DT_CUDA(cudaEventElapsedTime(&b, mid, stop));
        fwd_ms.push_back(a);
        bwd_ms.push_back(b);
        total_ms.push_back(a + b);
      }
      std::printf(
          "deltatune value_block=%d key_split=%d: forward %.3f ms, backward %.3f ms, "
          "forward+backward %.3f ms (median of %d); GPU memory %.1f MiB (workspace %.1f MiB)\n",
          value_block, key_split, median(fwd_ms), median(bwd_ms), median(total_ms), reps,
          double(bytes) / (1 << 20), double(workspace.bytes()) / (1 << 20));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "delta_rule_cuda_bench: %s\n", e.what());
    return 1;
  }
  cuda::gpu_profile_flush();  // DELTATUNE_PROFILE=1: the last events, before the report at exit
  return 0;
}
