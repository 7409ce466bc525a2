// Sampling: greedy is the argmax; temperature sampling follows the softmax; top-k, top-p and
// min-p keep exactly the tokens they should.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

#include "infer/generate.h"
#include "infer/sampler.h"
#include "model/presets.h"

namespace deltatune {
namespace {

TEST(Sampler, GreedyIsArgmax) {
  Sampler s(SamplingOptions{});
  const std::vector<float> logits = {0.1f, 2.0f, -1.0f, 1.9f};
  EXPECT_EQ(s.next(logits), 1);
}

TEST(Sampler, TemperatureFollowsTheSoftmax) {
  SamplingOptions o;
  o.temperature = 1.0;
  o.seed = 3;
  Sampler s(o);
  const std::vector<float> logits = {0.0f, std::log(2.0f), std::log(7.0f)};  // p = 0.1, 0.2, 0.7
  std::map<int64_t, int> counts;
  const int n = 20000;
  for (int i = 0; i < n; ++i) ++counts[s.next(logits)];
  // Binomial standard deviation at n = 20000 is at most 0.0035: 5 sigma bounds.
  EXPECT_NEAR(counts[0] / double(n), 0.1, 0.015);
  EXPECT_NEAR(counts[1] / double(n), 0.2, 0.018);
  EXPECT_NEAR(counts[2] / double(n), 0.7, 0.018);
}

TEST(Sampler, TopKTopPMinPKeepTheRightTokens) {
  const std::vector<float> logits = {0.0f, std::log(2.0f), std::log(7.0f)};  // p = 0.1, 0.2, 0.7
  auto seen = [&](SamplingOptions o) {
    o.temperature = 1.0;
    Sampler s(o);
    std::map<int64_t, int> counts;
    for (int i = 0; i < 3000; ++i) ++counts[s.next(logits)];
    return counts;
  };
  SamplingOptions k;
  k.top_k = 2;
  EXPECT_EQ(seen(k).count(0), 0u);
  EXPECT_EQ(seen(k).size(), 2u);
  SamplingOptions p;
  p.top_p = 0.75;  // 0.7 alone is below 0.75: the two most likely
  EXPECT_EQ(seen(p).size(), 2u);
  p.top_p = 0.6;  // 0.7 reaches it alone
  EXPECT_EQ(seen(p).size(), 1u);
  SamplingOptions m;
  m.min_p = 0.25;  // 0.2 >= 0.25 * 0.7, 0.1 is not
  EXPECT_EQ(seen(m).size(), 2u);
}

TEST(Generate, GreedyStopsAtAStopToken) {
  const Model model = Model::random(preset_config("tiny"), DType::F32, 2);
  GenerateOptions o;
  o.max_new_tokens = 6;
  const std::vector<int64_t> prompt = {5, 6, 7};
  const std::vector<int64_t> first = generate(model, LoraRun{}, prompt, o);
  ASSERT_EQ(first.size(), 6u);
  EXPECT_EQ(generate(model, LoraRun{}, prompt, o), first);  // deterministic
  o.stop_ids = {first[2]};
  const std::vector<int64_t> stopped = generate(model, LoraRun{}, prompt, o);
  EXPECT_LE(stopped.size(), 3u);
  EXPECT_EQ(stopped.back(), first[2]);
}

}  // namespace
}  // namespace deltatune
