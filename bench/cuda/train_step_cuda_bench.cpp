// LoRA training on the GPU at a real model shape (issue 7 items 4 and 5): the optimizer step of
// CudaTrainingRun (train/cuda/step_cuda.h) on a random model of a preset's shape in bf16 (what
// `deltatune make-model --preset 0.8b --dtype bf16` writes: the same Model::random), a row of
// `tokens` tokens, LoRA on every linear layer, micro-batch 1, gradient checkpointing on. The row
// is either one sequence of `tokens` tokens (`one`: the transformers + PEFT peer's setting,
// scripts/bench_peft_baseline.py) or a packed row of several sequences (`packed`: 200 to 1500
// tokens each), every target trained; `both` runs one, then packed, each with a fresh
// CudaTrainingRun (its own memory peak). Prints tokens/s, the GPU memory and the model-FLOPs
// utilisation as a table, plus one `RESULT` line a row for scripts/gpu_bench_table.py.
//
//   train_step_cuda_bench [preset=0.8b] [tokens=4096] [steps=5] [r=16] [checkpointing=1]
//                         [rows=packed|one|both] [kept=0|N|fit:GiB]
//
// kept: with checkpointing, the last N layers keep their activations (StepOptions::kept_layers);
// `fit:GiB` takes the largest N whose peak memory stays within GiB: a step with N = 0 and one with
// N = 4 give the memory of a layer's activations, a guess follows, then N goes down until one
// step's peak fits (the rows then say `one_kept`, `packed_kept`).
//
// Model FLOPs (issue 7 item 5): 4 × the frozen matrix parameters per token (the forward product
// and the input-gradient product, 2 FLOPs a multiply-add each; the base is frozen, so no weight
// gradient), lm_head included, the embedding lookup not; plus the causal attention products
// (QKᵀ and PV forward, their four backward products: 6 · heads · head_dim · L² per sequence of L
// tokens, a layer); the LoRA products, the delta rule and recomputation are not counted. The
// rate they are divided by is cuBLAS's bf16 product 8192×8192×8192 measured in the same process
// (random operands, median of 10 after 3 warm-ups, CUDA events).
//
// Time: wall clock over `steps` optimizer steps after 2 warm-up steps (each step ends waiting for
// the GPU: the gradient norm comes back to the host). Memory: every allocation the run holds
// (weights, adapter + AdamW, the activation arena's peak, cuBLAS's workspace) — the figure
// torch.cuda.max_memory_allocated gives for a PyTorch peer — and the device's used memory
// (cudaMemGetInfo, CUDA context included). DELTATUNE_PROFILE=1 adds each kernel's and each cuBLAS
// product's GPU time at exit (the calls then wait for each other: time without it).
#include <cuda_profiler_api.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "core/cuda/gpu_profile.h"
#include "core/cuda/cuda_check.h"
#include "core/error.h"
#include "core/rng.h"
#include "lora/adapter.h"
#include "model/presets.h"
#include "model/weights.h"
#include "ops/matmul_cuda.h"
#include "train/cuda/step_cuda.h"

using namespace deltatune;

namespace {

double gib(size_t bytes) { return double(bytes) / double(size_t(1) << 30); }

// A packed row: sequences of 200 to 1500 tokens until `tokens` are filled.
Batch packed_row(int64_t tokens, int64_t vocab, uint64_t seed) {
  Rng rng(seed);
  std::vector<int64_t> ids(static_cast<size_t>(tokens)), cu{0};
  for (int64_t& id : ids) id = int64_t(rng.next_u64() % uint64_t(vocab));
  while (cu.back() < tokens) cu.push_back(std::min(tokens, cu.back() + 200 + int64_t(rng.next_u64() % 1300)));
  return make_batch(ids, cu, ids);
}

// One sequence of `tokens` random tokens, every target trained (the peer's batch).
Batch one_sequence(int64_t tokens, int64_t vocab, uint64_t seed) {
  Rng rng(seed);
  std::vector<int64_t> ids(static_cast<size_t>(tokens));
  for (int64_t& id : ids) id = int64_t(rng.next_u64() % uint64_t(vocab));
  return make_batch(ids, {}, ids);
}

// The frozen matrix parameters a token goes through: every linear layer of the decoder and
// lm_head (the tied embedding counts once, as lm_head; the lookup is no product).
double matmul_parameters(const ModelConfig& c) {
  const double D = double(c.hidden_size);
  double n = double(c.vocab_size) * D;
  for (LayerKind kind : c.layer_kinds) {
    if (kind == LayerKind::LinearAttention) {
      const double kd = double(c.linear_key_dim()), vd = double(c.linear_value_dim());
      const double hv = double(c.linear_num_value_heads);
      n += D * (2 * kd + vd) + D * vd + 2 * D * hv + vd * D;  // in_proj_qkv, _z, _b, _a; out_proj
    } else {
      const double q = double(c.num_heads) * c.head_dim, kv = double(c.num_kv_heads) * c.head_dim;
      n += D * 2 * q + 2 * D * kv + q * D;  // q_proj (query and gate), k_proj, v_proj, o_proj
    }
    n += 3 * D * double(c.intermediate_size);  // gate_proj, up_proj, down_proj
  }
  return n;
}

// Model FLOPs of one training step over `batch` (see the header).
double model_flops(const ModelConfig& c, const Batch& batch) {
  double sum_sq = 0;
  for (size_t i = 0; i + 1 < batch.cu_seqlens.size(); ++i) {
    const double len = double(batch.cu_seqlens[i + 1] - batch.cu_seqlens[i]);
    sum_sq += len * len;
  }
  const double attention =
      6.0 * c.num_heads * c.head_dim * sum_sq * c.count_layers(LayerKind::FullAttention);
  return 4.0 * matmul_parameters(c) * double(batch.tokens()) + attention;
}

// cuBLAS's bf16 rate on this GPU: an 8192³ product of random operands, median of 10 (TFLOP/s).
double measure_bf16_rate() {
  const int64_t n = 8192;
  const size_t count = size_t(n * n);
  std::vector<uint16_t> host(count);
  Rng rng(11);
  for (size_t i = 0; i < count; i += 4) {
    const uint64_t bits = rng.next_u64();
    for (size_t j = 0; j < 4 && i + j < count; ++j) {
      float x = float(int((bits >> (16 * j)) & 0xffff) - 32768) / 32768.0f;  // uniform in [-1, 1)
      uint32_t u;
      std::memcpy(&u, &x, 4);
      host[i + j] = uint16_t(u >> 16);
    }
  }
  const cuda::Target target(nullptr);
  cuda::Blas blas(target);
  cuda::Memory a(count * 2, target), b(count * 2, target), out(count * 2, target);
  DT_CUDA(cudaMemcpy(a.data(), host.data(), count * 2, cudaMemcpyHostToDevice));
  std::reverse(host.begin(), host.end());
  DT_CUDA(cudaMemcpy(b.data(), host.data(), count * 2, cudaMemcpyHostToDevice));
  cudaEvent_t e0, e1;
  DT_CUDA(cudaEventCreate(&e0));
  DT_CUDA(cudaEventCreate(&e1));
  std::vector<float> ms;
  for (int i = 0; i < 13; ++i) {
    DT_CUDA(cudaEventRecord(e0));
    gemm_cuda<__nv_bfloat16>(blas, false, false, n, n, n, 1.0f, a.as<__nv_bfloat16>(), n,
                             b.as<__nv_bfloat16>(), n, 0.0f, out.as<__nv_bfloat16>(), n);
    DT_CUDA(cudaEventRecord(e1));
    DT_CUDA(cudaEventSynchronize(e1));
    float t = 0;
    DT_CUDA(cudaEventElapsedTime(&t, e0, e1));
    if (i >= 3) ms.push_back(t);
  }
  DT_CUDA(cudaEventDestroy(e0));
  DT_CUDA(cudaEventDestroy(e1));
  std::sort(ms.begin(), ms.end());
  const double median = 0.5 * (ms[4] + ms[5]);
  return 2.0 * double(n) * n * n / (median * 1e-3) / 1e12;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string preset = argc > 1 ? argv[1] : "0.8b";
  const int64_t tokens = argc > 2 ? std::atoll(argv[2]) : 4096;
  const int steps = argc > 3 ? std::atoi(argv[3]) : 5;
  const int r = argc > 4 ? std::atoi(argv[4]) : 16;
  const bool checkpointing = argc > 5 ? std::atoi(argv[5]) != 0 : true;
  const std::string rows = argc > 6 ? argv[6] : "packed";
  const std::string kept_arg = argc > 7 ? argv[7] : "0";
  try {
    if (rows != "packed" && rows != "one" && rows != "both") fail("rows must be packed, one or both, not '", rows, "'");
    cuda::require_device();
    cudaDeviceProp prop{};
    DT_CUDA(cudaGetDeviceProperties(&prop, 0));
    const ModelConfig config = preset_config(preset);
    std::fprintf(stderr, "making a random %s model (bf16)\n", preset.c_str());
    const auto made = std::chrono::steady_clock::now();
    const Model model = Model::random(config, DType::BF16, 1);
    std::fprintf(stderr, "made in %.1f s\n",
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - made).count());
    LoraConfig lc;
    lc.r = r;
    lc.alpha = 2.0 * r;
    lc.target_all_linear = true;
    LoraAdapter adapter = LoraAdapter::create(config, lc, DType::F32, 2);
    const Schedule schedule{ScheduleKind::Constant, 1e-4, 0, 1000};
    StepOptions options;
    options.checkpointing = checkpointing;
    // One step's peak memory with N layers kept (a fresh run each, so its own peak).
    auto peak_with = [&](const Batch& batch, int n) {
      StepOptions o = options;
      o.kept_layers = n;
      AdamW optimizer(adapter, AdamWConfig{});
      CudaTrainingRun run(model, adapter, optimizer);
      run.step(schedule, 0, std::span<const Batch>(&batch, 1), o);
      return double(run.memory().total_peak());
    };
    auto kept_for = [&](const Batch& batch) {
      if (kept_arg.rfind("fit:", 0) != 0) return std::atoi(kept_arg.c_str());
      const double budget = std::atof(kept_arg.c_str() + 4) * double(1ull << 30);
      const int L = config.num_layers, probe = std::min(4, L);
      const double p0 = peak_with(batch, 0), per_layer = (peak_with(batch, probe) - p0) / probe;
      int n = per_layer > 0 ? std::min(L, int((budget - p0) / per_layer)) : L;
      while (n > 0 && peak_with(batch, n) > budget) --n;
      std::fprintf(stderr, "kept layers: %d of %d (peak %.3f GiB with none, %.3f GiB a layer, budget %.3f GiB)\n",
                   n, L, p0 / double(1ull << 30), per_layer / double(1ull << 30), budget / double(1ull << 30));
      return std::max(n, 0);
    };

    struct Row {
      std::string kind;
      int kept;
      size_t sequences;
      double loss, seconds, flops;
      CudaMemoryReport m;
      size_t device_used;
    };
    std::vector<Row> done;
    std::vector<std::string> kinds;
    if (rows != "packed") kinds.push_back("one");
    if (rows != "one") kinds.push_back("packed");
    for (const std::string& kind : kinds) {
      const std::vector<Batch> micro{kind == "one" ? one_sequence(tokens, config.vocab_size, 3)
                                                   : packed_row(tokens, config.vocab_size, 3)};
      options.kept_layers = checkpointing ? kept_for(micro[0]) : 0;
      AdamW optimizer(adapter, AdamWConfig{});
      CudaTrainingRun run(model, adapter, optimizer);
      for (int s = 0; s < 2; ++s) run.step(schedule, s, micro, options);
      DT_CUDA(cudaDeviceSynchronize());
      const auto start = std::chrono::steady_clock::now();
      double loss = 0;
      // DELTATUNE_PROFILER_RANGE=1: the first timed step alone is the profiler's range, for
      // `ncu --profile-from-start off` (exact per-kernel times; scripts/ncu_step_profile.sh).
      const bool ranged = std::getenv("DELTATUNE_PROFILER_RANGE") != nullptr;
      for (int s = 0; s < steps; ++s) {
        if (ranged && s == 0) DT_CUDA(cudaProfilerStart());
        loss = run.step(schedule, 2 + s, micro, options).loss;
        if (ranged && s == 0) DT_CUDA(cudaProfilerStop());
      }
      DT_CUDA(cudaDeviceSynchronize());
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      size_t free_bytes = 0, total_bytes = 0;
      DT_CUDA(cudaMemGetInfo(&free_bytes, &total_bytes));
      done.push_back(Row{kind, options.kept_layers, micro[0].cu_seqlens.size() - 1, loss, seconds, model_flops(config, micro[0]),
                         run.memory(), total_bytes - free_bytes});
    }
    const double rate = measure_bf16_rate();

    std::printf("GPU: %s (%d SMs); cuBLAS bf16 8192^3 product: %.0f TFLOP/s (median of 10)\n", prop.name,
                prop.multiProcessorCount, rate);
    std::printf("model: random %s (%d layers, hidden %lld, vocab %lld), bf16; LoRA r=%d alpha=%d on every "
                "linear layer (%.2f M parameters); %lld tokens a row; micro-batch 1; checkpointing %s; "
                "%.3f G matrix parameters (lm_head included)\n\n",
                preset.c_str(), config.num_layers, (long long)config.hidden_size, (long long)config.vocab_size, r,
                2 * r, double(adapter.num_parameters()) / 1e6, (long long)tokens, checkpointing ? "on" : "off",
                matmul_parameters(config) / 1e9);
    std::printf("| row | loss | tokens/s | step | model TFLOP/s | MFU | peak GPU memory allocated | of which weights | "
                "adapter + AdamW | activations (peak) | cuBLAS workspace | device memory used (cudaMemGetInfo) |\n");
    std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (const Row& w : done) {
      const double achieved = w.flops * steps / w.seconds / 1e12;
      std::printf("| %s (%zu sequence%s%s) | %.4f | %.0f | %.1f ms | %.0f | %.1f%% | %.2f GiB | %.2f GiB | %.3f GiB | "
                  "%.2f GiB | %.3f GiB | %.2f GiB |\n",
                  w.kind.c_str(), w.sequences, w.sequences == 1 ? "" : "s",
                  w.kept ? str_cat(", last ", w.kept, " layers kept").c_str() : "", w.loss,
                  double(tokens) * steps / w.seconds, 1e3 * w.seconds / steps, achieved, 100.0 * achieved / rate,
                  gib(w.m.total_peak()), gib(w.m.weights), gib(w.m.adapter), gib(w.m.activations_peak),
                  gib(w.m.workspace), gib(w.device_used));
    }
    for (const Row& w : done)
      std::printf("RESULT side=deltatune path=cuda preset=%s rows=%s%s ckpt=%d kept=%d tokens=%lld steps=%d "
                  "tok_s=%.1f peak_gib=%.3f flops_per_token=%.6e rate_tflops=%.1f loss=%.4f\n",
                  preset.c_str(), w.kind.c_str(), w.kept ? "_kept" : "", checkpointing ? 1 : 0, w.kept, (long long)tokens, steps,
                  double(tokens) * steps / w.seconds, gib(w.m.total_peak()), w.flops / double(tokens), rate, w.loss);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  cuda::gpu_profile_flush();  // DELTATUNE_PROFILE=1: the last events, before the report at exit
  return 0;
}
