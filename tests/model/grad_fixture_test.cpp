// Loss and every LoRA factor's gradient against transformers 5.17 + PEFT 0.21 in float64
// (tests/fixtures/*/grad_reference.safetensors, a pack built one sequence at a time): 1e-9
// relative per tensor in float64, 1e-3 in float32 (the bounds). Also the logits with the
// adapter applied.
#include <gtest/gtest.h>

#include <vector>

#include "core/arena.h"
#include "io/safetensors.h"
#include "lora/adapter.h"
#include "model/qwen35.h"
#include "test_util.h"

namespace deltatune {
namespace {

using testing_util::describe;
using testing_util::fixture_path;
using testing_util::relative_error;

std::vector<int64_t> ints(const SafetensorsFile& f, const std::string& name) {
  const Tensor t = f.tensor(name);
  const int64_t* p = static_cast<const int64_t*>(t.data);
  return {p, p + t.numel()};
}

class GradFixtureTest : public ::testing::TestWithParam<std::string> {};

template <class T>
void check(const std::string& variant, double tol, bool checkpointing, int kept_layers = 0) {
  const std::string dir = fixture_path(variant);
  const Model model = Model::load(dir);
  const SafetensorsFile ref(dir + "/grad_reference.safetensors");
  LoraAdapter adapter = LoraAdapter::load_peft(dir + "/adapter", model.config(), dtype_of<T>());
  const Batch batch = make_batch(ints(ref, "input_ids"), ints(ref, "cu_seqlens"), ints(ref, "labels"));
  LoraRun lora;
  lora.adapter = &adapter;
  const char* mode = sizeof(T) == 8 ? "float64" : "float32";

  Arena arena;
  std::vector<T> logits(static_cast<size_t>(batch.tokens() * model.config().vocab_size));
  model_forward_logits(model, lora, batch, logits.data(), arena);
  const Tensor ref_logits = ref.tensor("logits");
  const auto le = relative_error(logits.data(), static_cast<const double*>(ref_logits.data), logits.size());
  testing_util::report(variant + " " + mode + " logits with adapter", le.value);
  EXPECT_LE(le.value, tol) << mode << " logits with adapter: " << describe(le);

  adapter.zero_grad();
  const int64_t targets = [&] {
    int64_t n = 0;
    for (int64_t t : shifted_targets(batch)) n += t != -100;
    return n;
  }();
  const LossSum loss = model_loss_backward<T>(model, lora, batch, 1.0 / double(targets), checkpointing, arena,
                                                kept_layers);
  const double ref_loss = static_cast<const double*>(ref.tensor("loss").data)[0];
  EXPECT_LE(std::fabs(loss.sum / double(loss.targets) - ref_loss) / ref_loss, tol) << mode << " loss";

  testing_util::report(variant + " " + mode + " loss", std::fabs(loss.sum / double(loss.targets) - ref_loss) / ref_loss);
  size_t checked = 0;
  double worst = 0;
  for (const LoraModule& m : adapter.modules()) {
    for (auto [grad, factor] : {std::pair{&m.dA, 'A'}, std::pair{&m.dB, 'B'}}) {
      const std::string name = "grad." + LoraAdapter::peft_name(m.name, factor);
      const Tensor r = ref.tensor(name);
      ASSERT_EQ(r.numel(), grad->numel()) << name;
      const auto e = relative_error(grad->template ptr<T>(), static_cast<const double*>(r.data), size_t(r.numel()));
      worst = std::max(worst, e.value);
      EXPECT_LE(e.value, tol) << mode << " " << name << ": " << describe(e);
      ++checked;
    }
  }
  testing_util::report(variant + " " + mode + " worst LoRA gradient (" + std::to_string(checked) + " factors)", worst);
  // Every gradient in the reference was compared.
  size_t in_reference = 0;
  for (const auto& e : ref.entries()) in_reference += e.name.rfind("grad.", 0) == 0;
  EXPECT_EQ(checked, in_reference);
}

TEST_P(GradFixtureTest, Float64MatchesPeft) { check<double>(GetParam(), 1e-9, true); }
TEST_P(GradFixtureTest, Float32MatchesPeft) { check<float>(GetParam(), 1e-3, true); }
TEST_P(GradFixtureTest, Float64WithoutCheckpointing) { check<double>(GetParam(), 1e-9, false); }
// Checkpointing with the last layer's activations kept from the forward (checkpointing_kept_layers).
TEST_P(GradFixtureTest, Float64KeepingTheLastLayer) { check<double>(GetParam(), 1e-9, true, 1); }

INSTANTIATE_TEST_SUITE_P(Peft, GradFixtureTest, ::testing::Values("causal_tied_f32", "cond_v2x_untied_f32_sharded"));

}  // namespace
}  // namespace deltatune
