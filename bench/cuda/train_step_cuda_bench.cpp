// LoRA training on the GPU at a real model shape (issue 7 item 4): the optimizer step of
// CudaTrainingRun (train/cuda/step_cuda.h) on a random model of a preset's shape in bf16 (what
// `deltatune make-model --preset 0.8b --dtype bf16` writes: the same Model::random), one packed
// row of `tokens` tokens (several sequences, every target trained), LoRA on every linear layer,
// micro-batch 1, gradient checkpointing on. Prints tokens/s and the GPU memory as a table.
//
//   train_step_cuda_bench [preset=0.8b] [tokens=4096] [steps=5] [r=16] [checkpointing=1]
//
// Time: wall clock over `steps` optimizer steps after 2 warm-up steps (each step ends waiting for
// the GPU: the gradient norm comes back to the host). Memory: every allocation the run holds
// (weights, adapter + AdamW, the activation arena's peak, cuBLAS's workspace) — the figure
// torch.cuda.max_memory_allocated gives for a PyTorch peer — and the device's used memory
// (cudaMemGetInfo, CUDA context included). DELTATUNE_PROFILE=1 adds each kernel's and each cuBLAS
// product's GPU time at exit (the calls then wait for each other: time without it).
#include <cuda_runtime.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/cuda/cuda_check.h"
#include "core/rng.h"
#include "lora/adapter.h"
#include "model/presets.h"
#include "model/weights.h"
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

}  // namespace

int main(int argc, char** argv) {
  const std::string preset = argc > 1 ? argv[1] : "0.8b";
  const int64_t tokens = argc > 2 ? std::atoll(argv[2]) : 4096;
  const int steps = argc > 3 ? std::atoi(argv[3]) : 5;
  const int r = argc > 4 ? std::atoi(argv[4]) : 16;
  const bool checkpointing = argc > 5 ? std::atoi(argv[5]) != 0 : true;
  try {
    cuda::require_device();
    cudaDeviceProp prop{};
    DT_CUDA(cudaGetDeviceProperties(&prop, 0));
    const ModelConfig config = preset_config(preset);
    std::fprintf(stderr, "making a random %s model (bf16)\n", preset.c_str());
    const Model model = Model::random(config, DType::BF16, 1);
    LoraConfig lc;
    lc.r = r;
    lc.alpha = 2.0 * r;
    lc.target_all_linear = true;
    LoraAdapter adapter = LoraAdapter::create(config, lc, DType::F32, 2);
    AdamW optimizer(adapter, AdamWConfig{});
    const Schedule schedule{ScheduleKind::Constant, 1e-4, 0, 1000};
    const std::vector<Batch> micro{packed_row(tokens, config.vocab_size, 3)};
    StepOptions options;
    options.checkpointing = checkpointing;

    CudaTrainingRun run(model, adapter, optimizer);
    for (int s = 0; s < 2; ++s) run.step(schedule, s, micro, options);
    DT_CUDA(cudaDeviceSynchronize());
    const auto start = std::chrono::steady_clock::now();
    double loss = 0;
    for (int s = 0; s < steps; ++s) loss = run.step(schedule, 2 + s, micro, options).loss;
    DT_CUDA(cudaDeviceSynchronize());
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    size_t free_bytes = 0, total_bytes = 0;
    DT_CUDA(cudaMemGetInfo(&free_bytes, &total_bytes));
    const CudaMemoryReport m = run.memory();

    std::printf("GPU: %s (%d SMs)\n", prop.name, prop.multiProcessorCount);
    std::printf("model: random %s (%d layers, hidden %lld, vocab %lld), bf16; LoRA r=%d alpha=%d on every "
                "linear layer (%.2f M parameters); one packed row of %lld tokens in %zu sequences; "
                "micro-batch 1; checkpointing %s; loss %.4f\n\n",
                preset.c_str(), config.num_layers, (long long)config.hidden_size, (long long)config.vocab_size, r,
                2 * r, double(adapter.num_parameters()) / 1e6, (long long)tokens, micro[0].cu_seqlens.size() - 1,
                checkpointing ? "on" : "off", loss);
    std::printf("| tokens/s | step | peak GPU memory allocated | of which weights | adapter + AdamW | activations (peak) | cuBLAS workspace | device memory used (cudaMemGetInfo) |\n");
    std::printf("|---|---|---|---|---|---|---|---|\n");
    std::printf("| %.0f | %.1f ms | %.2f GiB | %.2f GiB | %.3f GiB | %.2f GiB | %.3f GiB | %.2f GiB |\n",
                double(tokens) * steps / seconds, 1e3 * seconds / steps, gib(m.total_peak()), gib(m.weights),
                gib(m.adapter), gib(m.activations_peak), gib(m.workspace), gib(total_bytes - free_bytes));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
