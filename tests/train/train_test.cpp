// Training on a tiny random Qwen3.5: it learns a synthetic task; packed and unpacked batches of
// the same samples train the same adapter; checkpointing changes memory, not gradients.
#include <gtest/gtest.h>

#include <cstring>

#include "model/presets.h"
#include "model/qwen35.h"
#include "test_util.h"
#include "train/step.h"

namespace deltatune {
namespace {

// Sequences that count upward modulo 32 from a random start: every next token is determined by
// the current one, so a model that learned the rule predicts it with near certainty.
std::vector<std::vector<int64_t>> counting_sequences(int n, int length, Rng& rng) {
  std::vector<std::vector<int64_t>> seqs;
  for (int s = 0; s < n; ++s) {
    std::vector<int64_t> seq;
    int64_t x = int64_t(rng.next_u64() % 32);
    for (int i = 0; i < length; ++i) seq.push_back(10 + (x + i) % 32);
    seqs.push_back(seq);
  }
  return seqs;
}

Batch pack(const std::vector<std::vector<int64_t>>& seqs) {
  std::vector<int64_t> ids, cu = {0};
  for (const auto& s : seqs) {
    ids.insert(ids.end(), s.begin(), s.end());
    cu.push_back(int64_t(ids.size()));
  }
  std::vector<int64_t> labels = ids;
  return make_batch(ids, cu, labels);
}

LoraConfig all_linear(int r, double alpha) {
  LoraConfig c;
  c.r = r;
  c.alpha = alpha;
  c.target_all_linear = true;
  return c;
}

TEST(Training, LoraLearnsACountingTask) {
  ModelConfig config = preset_config("tiny");
  config.vocab_size = 64;  // tokens 10..41 are used
  const Model model = Model::random(config, DType::BF16, 5);
  LoraAdapter adapter = LoraAdapter::create(config, all_linear(8, 16), DType::F32, 1);
  AdamW optimizer(adapter, AdamWConfig{});
  const int steps = 60;
  const Schedule schedule{ScheduleKind::Cosine, 1e-2, 5, steps};
  Rng rng(2);
  Arena arena;
  double first = 0, last = 0;
  for (int step = 0; step < steps; ++step) {
    const Batch batch = pack(counting_sequences(4, 24, rng));
    StepOptions options;
    options.dropout_seed = uint64_t(step);
    const StepResult r = train_step<float>(model, adapter, optimizer, schedule, step, std::span(&batch, 1), options, arena);
    ASSERT_FALSE(r.skipped) << "step " << step;
    if (step == 0) first = r.loss;
    last = r.loss;
  }
  // Fresh held-out sequences.
  const Batch held_out = pack(counting_sequences(8, 24, rng));
  LoraRun lora;
  lora.adapter = &adapter;
  const LossSum eval = model_loss<float>(model, lora, held_out, arena);
  const double eval_loss = eval.sum / double(eval.targets);
  testing_util::report("counting task: first step loss", first);
  testing_util::report("counting task: last step loss", last);
  testing_util::report("counting task: held-out loss", eval_loss);
  EXPECT_GT(first, 3.5);        // about ln(64) = 4.2 for the untrained model
  EXPECT_LT(eval_loss, 0.5);    // the rule learned: p(next) > 0.6 on average
}

TEST(Training, PackedAndUnpackedGiveTheSameAdapter) {
  const ModelConfig config = preset_config("tiny");
  const Model model = Model::random(config, DType::F32, 8);
  LoraAdapter packed = LoraAdapter::create(config, all_linear(4, 8), DType::F64, 3);
  LoraAdapter unpacked = LoraAdapter::create(config, all_linear(4, 8), DType::F64, 3);
  AdamW opt_packed(packed, AdamWConfig{0.9, 0.999, 1e-8, 0.01});
  AdamW opt_unpacked(unpacked, AdamWConfig{0.9, 0.999, 1e-8, 0.01});
  const Schedule schedule{ScheduleKind::Linear, 5e-3, 1, 4};
  Rng rng(4);
  Arena arena;
  for (int step = 0; step < 4; ++step) {
    // Lengths across the delta rule's chunk boundary, and one shorter than the conv kernel.
    auto seqs = counting_sequences(3, 70, rng);
    seqs[1].resize(3);
    seqs[2].resize(65);
    const Batch one_pack = pack(seqs);
    std::vector<Batch> singles;
    for (const auto& s : seqs) singles.push_back(pack({s}));
    StepOptions options;
    train_step<double>(model, packed, opt_packed, schedule, step, std::span(&one_pack, 1), options, arena);
    train_step<double>(model, unpacked, opt_unpacked, schedule, step, singles, options, arena);
  }
  double worst = 0;
  for (size_t i = 0; i < packed.modules().size(); ++i)
    for (auto [a, b] : {std::pair{&packed.modules()[i].A, &unpacked.modules()[i].A},
                        std::pair{&packed.modules()[i].B, &unpacked.modules()[i].B}}) {
      const auto e = testing_util::relative_error(a->ptr<double>(), b->ptr<double>(), size_t(a->numel()));
      worst = std::max(worst, e.value);
      EXPECT_LE(e.value, 1e-9) << packed.modules()[i].name << ": " << testing_util::describe(e);
    }
  testing_util::report("packed vs unpacked adapter after 4 steps", worst);
}

TEST(Training, CheckpointingChangesMemoryNotGradients) {
  const ModelConfig config = preset_config("tiny");
  const Model model = Model::random(config, DType::BF16, 9);
  Rng rng(6);
  const Batch batch = pack(counting_sequences(2, 100, rng));
  size_t peak[2];
  std::vector<std::vector<float>> grads(2);
  for (int checkpointing = 0; checkpointing < 2; ++checkpointing) {
    LoraAdapter adapter = LoraAdapter::create(config, all_linear(4, 8), DType::F32, 3);
    for (LoraModule& m : adapter.modules())
      for (int64_t i = 0; i < m.B.numel(); ++i) m.B.ptr<float>()[i] = 0.01f * float(i % 5);
    LoraRun lora;
    lora.adapter = &adapter;
    Arena arena(1 << 16);
    adapter.zero_grad();
    model_loss_backward<float>(model, lora, batch, 0.01, checkpointing == 1, arena);
    peak[checkpointing] = arena.peak_bytes();
    for (const LoraModule& m : adapter.modules()) {
      grads[size_t(checkpointing)].insert(grads[size_t(checkpointing)].end(), m.dA.ptr<float>(), m.dA.ptr<float>() + m.dA.numel());
      grads[size_t(checkpointing)].insert(grads[size_t(checkpointing)].end(), m.dB.ptr<float>(), m.dB.ptr<float>() + m.dB.numel());
    }
  }
  ASSERT_EQ(grads[0].size(), grads[1].size());
  EXPECT_EQ(std::memcmp(grads[0].data(), grads[1].data(), grads[0].size() * sizeof(float)), 0)
      << "recomputing a layer from its input must give bit-identical gradients";
  testing_util::report("activation arena peak without checkpointing (bytes)", double(peak[0]));
  testing_util::report("activation arena peak with checkpointing (bytes)", double(peak[1]));
  EXPECT_LT(peak[1], peak[0]);
}

}  // namespace
}  // namespace deltatune
