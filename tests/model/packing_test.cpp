// A pack of sequences gives exactly the logits of its sequences run alone: attention, the conv1d,
// the delta-rule state and positions all restart at each boundary. float64, 1e-12 relative (only
// the chunk boundaries of the delta rule differ between the two runs).
#include <gtest/gtest.h>

#include <vector>

#include "core/arena.h"
#include "model/presets.h"
#include "model/qwen35.h"
#include "test_util.h"

namespace deltatune {
namespace {

TEST(Packing, PackEqualsSequencesAlone) {
  ModelConfig c = preset_config("tiny");  // Hv = 2 Hk, tied
  const Model model = Model::random(c, DType::F32, 7);
  const std::vector<int64_t> lengths = {5, 64, 70, 1, 130};
  Rng rng(3);
  std::vector<int64_t> ids, cu = {0};
  for (int64_t n : lengths) {
    for (int64_t i = 0; i < n; ++i) ids.push_back(int64_t(rng.next_u64() % uint64_t(c.vocab_size)));
    cu.push_back(cu.back() + n);
  }
  const int64_t V = c.vocab_size;
  Arena arena;
  std::vector<double> packed(ids.size() * size_t(V));
  model_forward_logits(model, LoraRun{}, make_batch(ids, cu), packed.data(), arena);
  for (size_t s = 0; s < lengths.size(); ++s) {
    std::vector<int64_t> one(ids.begin() + cu[s], ids.begin() + cu[s + 1]);
    std::vector<double> alone(one.size() * size_t(V));
    model_forward_logits(model, LoraRun{}, make_batch(one), alone.data(), arena);
    const auto err = testing_util::relative_error(packed.data() + cu[s] * V, alone.data(), alone.size());
    EXPECT_LE(err.value, 1e-12) << "sequence " << s << " (length " << lengths[s] << "): "
                                << testing_util::describe(err);
  }
}

}  // namespace
}  // namespace deltatune
