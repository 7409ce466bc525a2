// The GPU model path with every kernel emulated on the host and the cuBLAS products as loops
// (core/cuda/target.h): the loss and every LoRA gradient against the CPU float32 path on the
// fixtures and on random tiny models of both value-head layouts, a pack against its sequences one
// by one, LoRA dropout, and training steps. Runs in CI, which has no GPU:
// it checks the model path's wiring (layouts, strides, which buffer feeds which op); the GPU test
// (tests/cuda/model_cuda_test.cpp) adds the real kernels, cuBLAS and bigger shapes.
// Tolerances: tests/cuda/model_checks.h.
#include <gtest/gtest.h>

#include "cuda/model_checks.h"
#include "train/cuda/step_cuda.h"
#include "train/schedule.h"

namespace deltatune {
namespace {

using namespace testing_util;
using bf16 = __nv_bfloat16;

const cuda::Target kHost = cuda::Target::host_emulation();

TEST(ModelCudaEmulated, FixturesMatchCpu) {
  WorstErrors worst("emulated GPU model vs CPU float32");
  const Batch batch = random_batch({37, 1, 70, 20}, 256, 11);
  for (const char* variant : {"causal_tied_f32", "cond_v2x_untied_f32_sharded"}) {
    const Model model = Model::load(fixture_path(variant));
    LoraAdapter adapter = LoraAdapter::load_peft(fixture_path(std::string(variant) + "/adapter"), model.config(), DType::F32);
    check_model_against_cpu(variant, model, adapter, batch, kHost, true, worst);
  }
  for (const char* variant : {"causal_v2x_untied_bf16", "cond_tied_bf16"}) {
    const Model model = Model::load(fixture_path(variant));
    LoraAdapter adapter = random_adapter(model.config(), 4, 0.0, 5);
    check_model_against_cpu(variant, model, adapter, batch, kHost, true, worst);
  }
}

TEST(ModelCudaEmulated, RandomModelsBothLayouts) {
  WorstErrors worst("emulated GPU model vs CPU float32");
  const Batch batch = random_batch({50, 90, 1, 30}, 512, 12);
  for (auto [k_heads, v_heads] : {std::pair{2, 2}, std::pair{2, 4}}) {
    const Model model = Model::random(tiny_config(k_heads, v_heads), DType::BF16, 7);
    LoraAdapter adapter = random_adapter(model.config(), 8, 0.0, 3);
    const std::string what = str_cat("random Hk=", k_heads, " Hv=", v_heads);
    check_model_against_cpu(what, model, adapter, batch, kHost, true, worst);
    check_model_against_cpu(what + " no checkpointing", model, adapter, batch, kHost, false, worst);
    check_packed_equals_unpacked(what, model, adapter, batch, kHost, worst);
    check_kept_layers_equal_recomputed(what, model, adapter, batch, kHost, worst);
  }
}

// Models whose CPU gradients stay put under bf16 perturbations (model_checks.h): all attention
// layers, and one Gated DeltaNet layer with transformers' slow decays.
TEST(ModelCudaEmulated, WellConditionedModels) {
  WorstErrors worst("emulated GPU model vs CPU float32, well-conditioned models");
  check_well_conditioned_models(kHost, worst);
}

// The real model's head sizes (attention head_dim 256, Gated DeltaNet heads of 128), smaller than
// the GPU test's pack.
TEST(ModelCudaEmulated, RealHeadSizes) {
  WorstErrors worst("emulated GPU model vs CPU float32, real head sizes");
  ModelConfig c = tiny_config(2, 4, 256, 128);
  c.hidden_size = 64;
  c.intermediate_size = 128;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.num_layers = 2;
  c.layer_kinds = {LayerKind::LinearAttention, LayerKind::FullAttention};
  const Model model = Model::random(c, DType::BF16, 21);
  set_slow_decays(model, 22);
  LoraAdapter adapter = random_adapter(model.config(), 8, 0.0, 23);
  const Batch batch = random_batch({40, 1, 30}, c.vocab_size, 24);
  check_model_against_cpu("real head sizes", model, adapter, batch, kHost, true, worst);
  check_packed_equals_unpacked("real head sizes", model, adapter, batch, kHost, worst);
}

TEST(ModelCudaEmulated, DropoutMasksMatchCpu) {
  WorstErrors worst("emulated GPU model vs CPU float32, LoRA dropout 0.1 (same masks)");
  for (auto [k_heads, v_heads] : {std::pair{2, 2}, std::pair{2, 4}}) {
    const Model model = well_conditioned_mixed_model(k_heads, v_heads, 8);
    LoraAdapter adapter = random_adapter(model.config(), 8, 0.1, 4);
    check_model_against_cpu(str_cat("dropout Hk=", k_heads, " Hv=", v_heads), model, adapter,
                            random_batch({64, 33}, 512, 13), kHost, true, worst, true, 1234);
  }
}

}  // namespace
}  // namespace deltatune

namespace deltatune {
namespace {

using namespace testing_util;

// The GPU training step, emulated: steps lower the loss of a repeated batch, and pull/push carry
// the factors and AdamW's state to the host objects and back.
TEST(ModelCudaEmulated, TrainingStepsLowerTheLoss) {
  ModelConfig c = tiny_config(2, 4);
  c.vocab_size = 64;
  const Model model = Model::random(c, DType::BF16, 3);
  LoraConfig lc;
  lc.r = 4;
  lc.alpha = 8;
  lc.dropout = 0.1;
  lc.target_all_linear = true;
  LoraAdapter adapter = LoraAdapter::create(c, lc, DType::F32, 1);
  AdamW optimizer(adapter, AdamWConfig{});
  CudaTrainingRun run(model, adapter, optimizer, cuda::Target::host_emulation());
  std::vector<int64_t> ids, labels;
  for (int64_t i = 0; i < 40; ++i) ids.push_back(10 + i % 32), labels.push_back(ids.back());
  const std::vector<Batch> micro{make_batch(ids, {0, 17, 40}, labels)};
  const Schedule schedule{ScheduleKind::Constant, 0.01, 0, 20};
  StepOptions options;
  options.dropout_seed = 5;
  const double before = run.loss(micro[0]).sum;
  for (int64_t s = 0; s < 20; ++s) {
    const StepResult r = run.step(schedule, s, micro, options);
    EXPECT_FALSE(r.skipped);
    EXPECT_GT(r.grad_norm, 0);
  }
  const double after = run.loss(micro[0]).sum;
  std::printf("[ measured ] emulated GPU training: loss sum %.4f before, %.4f after 20 steps\n", before, after);
  EXPECT_LT(after, 0.8 * before);
  run.pull(adapter, optimizer);
  EXPECT_EQ(optimizer.steps_done(), 20);
  // A second run from the pulled state continues where the first stopped.
  CudaTrainingRun again(model, adapter, optimizer, cuda::Target::host_emulation());
  EXPECT_NEAR(again.loss(micro[0]).sum, after, 1e-6 * after);
}

}  // namespace
}  // namespace deltatune
