// The inference session: a prompt fed at once and then token by token gives the logits of one
// forward over the whole sequence (float64, 1e-12: only the delta rule's chunk boundaries and the
// attention's summation order differ). Hv = 2 Hk and a prompt longer than one chunk.
#include <gtest/gtest.h>

#include "infer/session.h"
#include "model/presets.h"
#include "test_util.h"

namespace deltatune {
namespace {

TEST(InferenceSession, TokenByTokenEqualsOneForward) {
  const ModelConfig c = preset_config("tiny");
  const Model model = Model::random(c, DType::F32, 4);
  Rng rng(9);
  std::vector<int64_t> ids(90);
  for (auto& id : ids) id = int64_t(rng.next_u64() % uint64_t(c.vocab_size));
  const int64_t prompt = 70, V = c.vocab_size;
  std::vector<double> full(ids.size() * size_t(V));
  Arena arena;
  model_forward_logits(model, LoraRun{}, make_batch(ids), full.data(), arena);

  InferenceSession<double> session(model);
  double worst = 0;
  auto check = [&](const std::vector<double>& got, int64_t position) {
    const auto e = testing_util::relative_error(got.data(), full.data() + position * V, size_t(V));
    worst = std::max(worst, e.value);
    EXPECT_LE(e.value, 1e-12) << "position " << position << ": " << testing_util::describe(e);
  };
  check(session.feed(std::span<const int64_t>(ids.data(), prompt), LoraRun{}), prompt - 1);
  for (int64_t t = prompt; t < int64_t(ids.size()); ++t) check(session.feed(std::span(&ids[size_t(t)], 1), LoraRun{}), t);
  // Uneven pieces too.
  session.reset();
  session.feed(std::span<const int64_t>(ids.data(), 3), LoraRun{});
  check(session.feed(std::span<const int64_t>(ids.data() + 3, 80), LoraRun{}), 82);
  EXPECT_EQ(session.length(), 83);
  testing_util::report("session vs one forward, worst over positions", worst);
}

}  // namespace
}  // namespace deltatune
