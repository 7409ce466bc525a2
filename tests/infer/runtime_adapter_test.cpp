// Runtime adapters: applied unmerged, with scales, switched between requests on one loaded base;
// the logits equal those of the checkpoint with the adapters merged in (float64 weights, so the
// merged checkpoint is exact: 1e-12).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "infer/session.h"
#include "io/json_file.h"
#include "lora/merge.h"
#include "model/presets.h"
#include "test_util.h"

namespace deltatune {
namespace {

namespace fs = std::filesystem;

LoraAdapter random_adapter(const ModelConfig& c, std::vector<std::string> targets, uint64_t seed) {
  LoraConfig lc;
  lc.r = 3;
  lc.alpha = 6;
  lc.target_modules = std::move(targets);
  LoraAdapter a = LoraAdapter::create(c, lc, DType::F64, seed);
  Rng rng(seed + 100);
  for (LoraModule& m : a.modules())
    for (int64_t i = 0; i < m.B.numel(); ++i) m.B.ptr<double>()[i] = 0.2 * rng.normal();
  return a;
}

std::vector<double> logits_of(const Model& model, const LoraRun& lora, const std::vector<int64_t>& ids) {
  InferenceSession<double> s(model);
  return s.feed(ids, lora);
}

TEST(RuntimeAdapters, EqualTheMergedCheckpointAndSwitchWithoutReload) {
  const fs::path dir = fs::temp_directory_path() / ("deltatune_runtime_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  const ModelConfig c = preset_config("tiny");
  const Model base = Model::random(c, DType::F64, 5);
  base.save((dir / "base").string());
  const LoraAdapter a1 = random_adapter(c, {"in_proj_qkv", "out_proj", "q_proj", "down_proj"}, 1);
  const LoraAdapter a2 = random_adapter(c, {"in_proj_z", "in_proj_qkv", "gate_proj", "o_proj"}, 2);
  merge_adapter_into_checkpoint((dir / "base").string(), a1, (dir / "m1").string());
  merge_adapter_into_checkpoint((dir / "m1").string(), a2, (dir / "m12").string());
  // a1 at half strength = a1 with alpha halved, merged.
  a1.save_peft((dir / "a1_half").string(), "base", DType::F64);
  auto cfg = read_json_file((dir / "a1_half/adapter_config.json").string());
  cfg["lora_alpha"] = 3.0;
  write_json_file_atomic((dir / "a1_half/adapter_config.json").string(), cfg);
  merge_adapter_into_checkpoint((dir / "base").string(), LoraAdapter::load_peft((dir / "a1_half").string(), c, DType::F64),
                                (dir / "m1_half").string());

  const std::vector<int64_t> ids = {3, 14, 15, 92, 65, 35, 89, 79, 32, 38, 46, 26, 43};
  const std::vector<double> plain = logits_of(base, LoraRun{}, ids);
  auto expect_equal = [](const std::vector<double>& got, const std::vector<double>& want, const char* what) {
    const auto e = testing_util::relative_error(got.data(), want.data(), want.size());
    EXPECT_LE(e.value, 1e-12) << what << ": " << testing_util::describe(e);
  };
  LoraRun both;
  both.runtime = {{&a1, 1.0}, {&a2, 1.0}};
  expect_equal(logits_of(base, both, ids), logits_of(Model::load((dir / "m12").string()), LoraRun{}, ids), "a1 + a2");
  LoraRun half;
  half.runtime = {{&a1, 0.5}};
  expect_equal(logits_of(base, half, ids), logits_of(Model::load((dir / "m1_half").string()), LoraRun{}, ids), "a1 x 0.5");
  // Back to no adapter on the same loaded base: exactly the original logits.
  EXPECT_EQ(logits_of(base, LoraRun{}, ids), plain);
  // An adapter really changes the logits.
  EXPECT_GT(testing_util::relative_error(logits_of(base, both, ids).data(), plain.data(), plain.size()).value, 1e-3);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace deltatune
