// The LoRA linear layer's backward (input gradient and both factor gradients, with and without
// dropout) against float64 central finite differences of its forward (tests/fd_gradcheck.h).
#include <gtest/gtest.h>

#include "lora/lora_linear.h"
#include "ops/matmul.h"
#include "model/presets.h"
#include "test_util.h"

namespace deltatune {
namespace {

using testing_util::expect_gradient;
using testing_util::random_vector;
using testing_util::weighted_sum;
using Vec = std::vector<double>;

void check_lora_linear(double dropout) {
  const ModelConfig model = preset_config("tiny");
  LoraConfig c;
  c.r = 3;
  c.alpha = 5;
  c.dropout = dropout;
  c.target_modules = {"down_proj"};
  LoraAdapter adapter = LoraAdapter::create(model, c, DType::F64, 9);
  LoraModule& m = adapter.modules().front();
  Rng rng(11);
  for (int64_t i = 0; i < m.B.numel(); ++i) m.B.ptr<double>()[i] = rng.normal();  // non-zero B
  HostTensor w(DType::F32, {m.out, m.in});
  const Vec wv = random_vector<double>(size_t(w.numel()), rng, 0.2);
  convert_from<double>(wv.data(), w.view().data, DType::F32, wv.size());
  const int64_t rows = 4;
  Vec x = random_vector<double>(size_t(rows * m.in), rng);
  const Vec r = random_vector<double>(size_t(rows * m.out), rng);
  LoraRun run;
  run.adapter = &adapter;
  run.training = true;
  run.dropout_seed = 1234;
  Arena arena;
  auto loss = [&] {
    Vec y(size_t(rows * m.out));
    lora_linear_forward(x.data(), rows, w.view(), run, m.layer, m.kind, y.data(), arena);
    return weighted_sum(y, r);
  };
  adapter.zero_grad();
  Vec dx(x.size());
  lora_linear_backward(x.data(), rows, w.view(), run, m.layer, m.kind, r.data(), dx.data(), false, arena);
  const Vec dA(m.dA.ptr<double>(), m.dA.ptr<double>() + m.dA.numel());
  const Vec dB(m.dB.ptr<double>(), m.dB.ptr<double>() + m.dB.numel());
  expect_gradient("dx", x.data(), x.size(), loss, dx);
  expect_gradient("dA", m.A.ptr<double>(), size_t(m.A.numel()), loss, dA);
  expect_gradient("dB", m.B.ptr<double>(), size_t(m.B.numel()), loss, dB);
  if (dropout > 0) {
    // The mask really drops inputs: some of the adapter path's input gradient is exactly the
    // frozen path's alone.
    Vec frozen_only(x.size());
    linear_backward_input(r.data(), rows, w.view(), frozen_only.data());
    size_t same = 0;
    for (size_t i = 0; i < x.size(); ++i) same += dx[i] == frozen_only[i];
    EXPECT_GT(same, x.size() / 10);
  }
}

TEST(LoraLinear, GradientsWithoutDropout) { check_lora_linear(0.0); }
TEST(LoraLinear, GradientsWithDropout) { check_lora_linear(0.3); }

}  // namespace
}  // namespace deltatune
