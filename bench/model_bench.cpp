// CPU benchmarks of the whole model at the real Qwen3.5-0.8B shape (random bf16 weights, 512
// tokens, all threads): the forward (tokens/s), one training step (forward + backward + AdamW,
// LoRA r = 16 on every linear target) with and without checkpointing, each beside the floor set
// by matrix products: their FLOPs divided by the sgemm rate measured in the same process.
// Peak RSS is the process's; run one benchmark per process (scripts/bench.sh does).
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <chrono>
#include <memory>
#include <vector>

#include "core/rng.h"
#include "core/threads.h"
#include "model/presets.h"
#include "model/qwen35.h"
#include "ops/matmul.h"
#include "train/step.h"

namespace deltatune {
namespace {

constexpr int64_t kTokens = 512;

const Model& model_08b() {
  static const std::unique_ptr<Model> model = [] {
    set_num_threads(0);
    return std::make_unique<Model>(Model::random(preset_config("0.8b"), DType::BF16, 1));
  }();
  return *model;
}

Batch random_batch(const ModelConfig& c) {
  Rng rng(7);
  std::vector<int64_t> ids(kTokens);
  for (auto& id : ids) id = int64_t(rng.next_u64() % uint64_t(c.vocab_size));
  return make_batch(ids, {}, ids);
}

// sgemm GFLOP/s on a product of the model's size class (512 x 1024 times 1024 x 4096), best of 5.
double sgemm_gflops() {
  const int64_t m = 512, n = 4096, k = 1024;
  std::vector<float> a(size_t(m * k), 0.5f), b(size_t(n * k), 0.25f), c(size_t(m * n));
  double best = 1e30;
  for (int rep = 0; rep < 6; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    gemm<float>(false, true, m, n, k, 1.0f, a.data(), k, b.data(), k, 0.0f, c.data(), n);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (rep > 0) best = std::min(best, s);
  }
  return 2.0 * double(m * n * k) / best / 1e9;
}

// FLOPs of the forward's matrix products: every linear layer, the lm_head, and attention's two
// causal products per full-attention layer (the delta rule's small per-chunk products, ~4% at
// this shape, are left out, so the floor is a little optimistic).
double forward_matmul_flops(const ModelConfig& c, int64_t T) {
  double params = 0;
  for (const auto& [name, t] : model_08b().named_tensors())
    if (t.ndim == 2 && name.find("embed_tokens") == std::string::npos) params += double(t.numel());
  params += double(c.vocab_size * c.hidden_size);  // lm_head (tied: the embedding again)
  const double attention = 2.0 * 2.0 * double(T) * double(T + 1) / 2.0 * c.head_dim * c.num_heads;
  return 2.0 * double(T) * params + attention * c.count_layers(LayerKind::FullAttention);
}

double peak_rss_gib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / (1024.0 * 1024.0);
}

void report(benchmark::State& state, double floor_flops, double seconds_per_iter, double gflops) {
  state.counters["tokens_per_s"] = double(kTokens) / seconds_per_iter;
  state.counters["floor_tokens_per_s"] = double(kTokens) / (floor_flops / (gflops * 1e9));
  state.counters["sgemm_GFLOPs"] = gflops;
  state.counters["peak_rss_GiB"] = peak_rss_gib();
  state.counters["threads"] = num_threads();
}

void BM_Forward(benchmark::State& state) {
  const Model& model = model_08b();
  const Batch batch = random_batch(model.config());
  std::vector<float> logits(size_t(kTokens * model.config().vocab_size));
  Arena arena;
  model_forward_logits(model, LoraRun{}, batch, logits.data(), arena);  // warm-up
  double seconds = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    model_forward_logits(model, LoraRun{}, batch, logits.data(), arena);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  report(state, forward_matmul_flops(model.config(), kTokens), seconds / double(state.iterations()), sgemm_gflops());
}
BENCHMARK(BM_Forward)->Name("forward/0.8b/512_tokens")->Iterations(3)->Unit(benchmark::kSecond)->UseRealTime();

void BM_TrainStep(benchmark::State& state) {
  const Model& model = model_08b();
  const bool checkpointing = state.range(0) == 1;
  const Batch batch = random_batch(model.config());
  LoraConfig lc;
  lc.r = 16;
  lc.alpha = 32;
  lc.target_all_linear = true;
  LoraAdapter adapter = LoraAdapter::create(model.config(), lc, DType::F32, 1);
  AdamW optimizer(adapter, AdamWConfig{});
  const Schedule schedule{ScheduleKind::Constant, 1e-4, 0, 100};
  StepOptions options;
  options.checkpointing = checkpointing;
  Arena arena;
  int64_t step = 0;
  train_step<float>(model, adapter, optimizer, schedule, step++, std::span(&batch, 1), options, arena);  // warm-up
  double seconds = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    train_step<float>(model, adapter, optimizer, schedule, step++, std::span(&batch, 1), options, arena);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  // Floor: the forward's products once more for the input gradients through every frozen weight
  // (attention's backward has twice its forward's products), LoRA's own products being ~1%.
  const ModelConfig& c = model.config();
  const double attention = 2.0 * 2.0 * double(kTokens) * double(kTokens + 1) / 2.0 * c.head_dim * c.num_heads *
                           c.count_layers(LayerKind::FullAttention);
  const double floor = 2.0 * forward_matmul_flops(c, kTokens) + attention;
  report(state, floor, seconds / double(state.iterations()), sgemm_gflops());
  state.counters["lora_params_M"] = double(adapter.num_parameters()) / 1e6;
  state.counters["arena_peak_GiB"] = double(arena.peak_bytes()) / double(1 << 30);
}
BENCHMARK(BM_TrainStep)->Name("train_step/0.8b/512_tokens/checkpointing")->Arg(1)->Arg(0)->Iterations(2)
    ->Unit(benchmark::kSecond)->UseRealTime();

}  // namespace
}  // namespace deltatune

BENCHMARK_MAIN();
