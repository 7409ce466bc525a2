// The chunked cross-entropy: the same loss as full logits + log-softmax, with panels of the
// vocabulary that do not divide it evenly, ignored targets, and d_hidden against float64 finite
// differences (tests/fd_gradcheck.h).
#include <gtest/gtest.h>

#include <cmath>

#include "ops/loss.h"
#include "ops/matmul.h"
#include "test_util.h"

namespace deltatune {
namespace {

using Vec = std::vector<double>;

TEST(ChunkedCrossEntropy, MatchesFullLogitsAndFiniteDifferences) {
  Rng rng(21);
  const int64_t tokens = 6, D = 5, V = 30;
  HostTensor w(DType::BF16, {V, D});
  const Vec wv = testing_util::random_vector<double>(size_t(V * D), rng, 2.0);
  convert_from<double>(wv.data(), w.view().data, DType::BF16, wv.size());
  Vec hidden = testing_util::random_vector<double>(size_t(tokens * D), rng);
  const std::vector<int64_t> targets = {3, -100, 29, 0, 17, -100};
  const double scale = 0.25;

  // Reference: all logits at once.
  Vec logits(size_t(tokens * V));
  linear_forward(hidden.data(), tokens, w.view(), logits.data());
  double expected = 0;
  for (int64_t t = 0; t < tokens; ++t) {
    if (targets[size_t(t)] < 0) continue;
    double m = -INFINITY, s = 0;
    for (int64_t v = 0; v < V; ++v) m = std::max(m, logits[size_t(t * V + v)]);
    for (int64_t v = 0; v < V; ++v) s += std::exp(logits[size_t(t * V + v)] - m);
    expected += m + std::log(s) - logits[size_t(t * V + targets[size_t(t)])];
  }
  for (int64_t panel : {7, 30, 64}) {
    Vec d_hidden(hidden.size());
    const double loss = cross_entropy_forward_backward(hidden.data(), tokens, w.view(), targets.data(), scale,
                                                       d_hidden.data(), panel);
    EXPECT_NEAR(loss, expected, 1e-12 * expected) << "panel " << panel;
    auto f = [&] {
      return scale * cross_entropy_forward_backward(hidden.data(), tokens, w.view(), targets.data(), 0,
                                                    static_cast<double*>(nullptr), panel);
    };
    testing_util::expect_gradient("d_hidden, panel " + std::to_string(panel), hidden.data(), hidden.size(), f, d_hidden);
    // Ignored positions get no gradient.
    for (int64_t i = 0; i < D; ++i) EXPECT_EQ(d_hidden[size_t(1 * D + i)], 0.0);
  }
}

TEST(ChunkedCrossEntropy, RejectsLabelsOutsideTheVocabulary) {
  HostTensor w(DType::F32, {4, 2});
  const Vec hidden = {1, 2};
  const std::vector<int64_t> targets = {4};
  try {
    cross_entropy_forward_backward(hidden.data(), 1, w.view(), targets.data(), 1.0, static_cast<double*>(nullptr));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("label 4 at position 0 is outside the vocabulary [0, 4)"), std::string::npos);
  }
}

}  // namespace
}  // namespace deltatune
