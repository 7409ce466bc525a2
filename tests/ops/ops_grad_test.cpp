// Every pointwise / normalisation / position / mixing op's backward against float64 central
// finite differences of its forward (tolerance and step: tests/gradcheck.h). Random inputs, never
// zero; packs where the op cares about sequence boundaries.
#include <gtest/gtest.h>

#include <vector>

#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/conv1d.h"
#include "ops/matmul.h"
#include "ops/norm.h"
#include "ops/rope.h"
#include "test_util.h"

namespace deltatune {
namespace {

using testing_util::expect_gradient;
using testing_util::random_vector;
using testing_util::weighted_sum;
using Vec = std::vector<double>;

TEST(OpsGrad, RmsNormZeroCentred) {
  Rng rng(1);
  const int64_t rows = 5, dim = 7, ld = 11;  // strided rows: a head inside a wider projection
  Vec x = random_vector<double>(size_t(rows * ld), rng), w = random_vector<double>(size_t(dim), rng, 0.3);
  const Vec r = random_vector<double>(size_t(rows * dim), rng);
  auto loss = [&] {
    Vec y(size_t(rows * dim));
    rmsnorm_zero_centred_forward(x.data(), rows, dim, w.data(), 1e-6, y.data(), ld, dim);
    return weighted_sum(y, r);
  };
  Vec dx(x.size(), 0.0), dw(size_t(dim), 0.0);
  rmsnorm_zero_centred_backward(x.data(), rows, dim, w.data(), 1e-6, r.data(), dx.data(), dw.data(), ld, dim);
  // Elements between the rows are not inputs: their gradient is 0 and FD agrees.
  expect_gradient("dx", x.data(), x.size(), loss, dx);
  expect_gradient("dw", w.data(), w.size(), loss, dw);
}

TEST(OpsGrad, GatedRmsNorm) {
  Rng rng(2);
  const int64_t rows = 6, dim = 8;
  Vec x = random_vector<double>(size_t(rows * dim), rng), z = random_vector<double>(x.size(), rng, 2.0);
  Vec w = random_vector<double>(size_t(dim), rng);
  for (double& v : w) v += 1.0;
  const Vec r = random_vector<double>(x.size(), rng);
  auto loss = [&] {
    Vec y(x.size());
    gated_rmsnorm_forward(x.data(), z.data(), rows, dim, w.data(), 1e-6, y.data());
    return weighted_sum(y, r);
  };
  Vec dx(x.size()), dz(x.size()), dw(size_t(dim), 0.0);
  gated_rmsnorm_backward(x.data(), z.data(), rows, dim, w.data(), 1e-6, r.data(), dx.data(), dz.data(), dw.data());
  expect_gradient("dx", x.data(), x.size(), loss, dx);
  expect_gradient("dz", z.data(), z.size(), loss, dz);
  expect_gradient("dw", w.data(), w.size(), loss, dw);
}

TEST(OpsGrad, L2Norm) {
  Rng rng(3);
  const int64_t rows = 4, dim = 9;
  Vec x = random_vector<double>(size_t(rows * dim), rng);
  const Vec r = random_vector<double>(x.size(), rng);
  auto loss = [&] {
    Vec y(x.size());
    l2norm_forward(x.data(), rows, dim, 1e-6, y.data());
    return weighted_sum(y, r);
  };
  Vec dx(x.size());
  l2norm_backward(x.data(), rows, dim, 1e-6, r.data(), dx.data());
  expect_gradient("dx", x.data(), x.size(), loss, dx);
}

TEST(OpsGrad, SwiGlu) {
  Rng rng(4);
  const int64_t n = 40;
  Vec gate = random_vector<double>(size_t(n), rng, 3.0), up = random_vector<double>(size_t(n), rng);
  const Vec r = random_vector<double>(size_t(n), rng);
  auto loss = [&] {
    Vec h(static_cast<size_t>(n));
    swiglu_forward(gate.data(), up.data(), n, h.data());
    return weighted_sum(h, r);
  };
  Vec dgate(static_cast<size_t>(n)), dup(static_cast<size_t>(n));
  swiglu_backward(gate.data(), up.data(), r.data(), n, dgate.data(), dup.data());
  expect_gradient("dgate", gate.data(), gate.size(), loss, dgate);
  expect_gradient("dup", up.data(), up.size(), loss, dup);
}

TEST(OpsGrad, SoftplusAndSigmoidDerivatives) {
  for (double x : {-30.0, -3.0, -0.5, 0.0, 0.7, 4.0, 19.5, 25.0}) {
    const double h = 1e-6;
    EXPECT_NEAR(softplus_grad(x), (softplus(x + h) - softplus(x - h)) / (2 * h), 1e-8) << x;
    EXPECT_NEAR(silu_grad(x), (silu(x + h) - silu(x - h)) / (2 * h), 1e-8) << x;
  }
  EXPECT_EQ(softplus(25.0), 25.0);  // torch's threshold: identity above 20
}

TEST(OpsGrad, PartialRope) {
  Rng rng(5);
  const int64_t tokens = 6;
  const int heads = 3, hd = 10, rotary = 4;
  const std::vector<int64_t> pos = {0, 1, 2, 0, 1, 7};
  const auto table = make_rope_table<double>(pos.data(), tokens, rotary, 10000.0);
  Vec x = random_vector<double>(size_t(tokens * heads * hd), rng);
  const Vec r = random_vector<double>(x.size(), rng);
  auto loss = [&] {
    Vec y = x;
    rope_forward(y.data(), tokens, heads, heads * hd, hd, table);
    return weighted_sum(y, r);
  };
  Vec dx = r;
  rope_backward(dx.data(), tokens, heads, heads * hd, hd, table);
  expect_gradient("dx", x.data(), x.size(), loss, dx);
  // Position 0 is the identity; dims past the rotary part are untouched.
  Vec y = x;
  rope_forward(y.data(), tokens, heads, heads * hd, hd, table);
  for (int i = 0; i < heads * hd; ++i) EXPECT_EQ(y[size_t(i)], x[size_t(i)]);
  EXPECT_EQ(y[size_t(5 * heads * hd + rotary)], x[size_t(5 * heads * hd + rotary)]);
}

TEST(OpsGrad, CausalConv1dSiluWithPackBoundaries) {
  Rng rng(6);
  const std::vector<int64_t> cu = {0, 2, 9, 10, 16};  // a sequence shorter than the kernel, one of 1
  const int64_t tokens = cu.back(), channels = 5;
  const int kernel = 4;
  Vec x = random_vector<double>(size_t(tokens * channels), rng), w = random_vector<double>(size_t(channels * kernel), rng, 0.5);
  const Vec r = random_vector<double>(x.size(), rng);
  auto loss = [&] {
    Vec y(x.size());
    causal_conv1d_silu_forward(x.data(), channels, w.data(), kernel, cu, y.data());
    return weighted_sum(y, r);
  };
  Vec dx(x.size()), dw(w.size(), 0.0);
  causal_conv1d_silu_backward(x.data(), channels, w.data(), kernel, cu, r.data(), dx.data(), dw.data());
  expect_gradient("dx", x.data(), x.size(), loss, dx);
  expect_gradient("dw", w.data(), w.size(), loss, dw);
  // No token sees the previous sequence: output of token 2 (a sequence start) depends on x[2] only.
  Vec y0(x.size()), y1(x.size());
  causal_conv1d_silu_forward(x.data(), channels, w.data(), kernel, cu, y0.data());
  x[1 * channels] += 1.0;
  causal_conv1d_silu_forward(x.data(), channels, w.data(), kernel, cu, y1.data());
  EXPECT_EQ(y0[2 * channels], y1[2 * channels]);
}

TEST(OpsGrad, GqaAttentionBlockDiagonal) {
  Rng rng(7);
  const std::vector<int64_t> cu = {0, 3, 4, 9};
  const AttentionShape sh{cu.back(), 4, 2, 6, 0.4};
  const int64_t ldq = 4 * 6, ldkv = 2 * 6;
  Vec q = random_vector<double>(size_t(sh.tokens * ldq), rng), k = random_vector<double>(size_t(sh.tokens * ldkv), rng);
  Vec v = random_vector<double>(k.size(), rng);
  const Vec r = random_vector<double>(q.size(), rng);
  Vec out(q.size()), lse(size_t(sh.tokens * sh.heads));
  auto loss = [&] {
    attention_forward(sh, cu, q.data(), ldq, k.data(), v.data(), ldkv, out.data(), lse.data());
    return weighted_sum(out, r);
  };
  loss();
  Vec dq(q.size()), dk(k.size()), dv(v.size());
  attention_backward(sh, cu, q.data(), ldq, k.data(), v.data(), ldkv, out.data(), lse.data(), r.data(), dq.data(),
                     dk.data(), dv.data());
  expect_gradient("dq", q.data(), q.size(), loss, dq);
  expect_gradient("dk", k.data(), k.size(), loss, dk);
  expect_gradient("dv", v.data(), v.size(), loss, dv);
  // The first token of a sequence attends to itself only: its output is its own v.
  loss();
  for (int h = 0; h < sh.heads; ++h)
    for (int i = 0; i < 6; ++i) EXPECT_NEAR(out[size_t(3 * ldq + h * 6 + i)], v[size_t(3 * ldkv + (h / 2) * 6 + i)], 1e-15);
}

TEST(OpsGrad, LinearInputGradientThroughBf16Weight) {
  Rng rng(8);
  const int64_t rows = 3, in = 7, out = 30;
  HostTensor w(DType::BF16, {out, in});
  const Vec wv = random_vector<double>(size_t(out * in), rng, 0.3);
  convert_from<double>(wv.data(), w.view().data, DType::BF16, wv.size());
  Vec x = random_vector<double>(size_t(rows * in), rng);
  const Vec r = random_vector<double>(size_t(rows * out), rng);
  auto loss = [&] {
    Vec y(size_t(rows * out));
    linear_forward(x.data(), rows, w.view(), y.data());
    return weighted_sum(y, r);
  };
  Vec dx(x.size());
  linear_backward_input(r.data(), rows, w.view(), dx.data());
  expect_gradient("dx", x.data(), x.size(), loss, dx);
  // The forward equals a plain product with the bf16 values.
  Vec y(size_t(rows * out));
  linear_forward(x.data(), rows, w.view(), y.data());
  for (int64_t o = 0; o < out; ++o) {
    double s = 0;
    for (int64_t i = 0; i < in; ++i) s += x[size_t(i)] * double(bf16_to_f32(static_cast<const uint16_t*>(w.view().data)[o * in + i]));
    EXPECT_NEAR(y[size_t(o)], s, 1e-12);
  }
}

// Weights wider than one conversion panel (about 1M elements) go through the BLAS panel by panel;
// forward and input gradient must equal plain products with the bf16 values.
TEST(OpsGrad, LinearPanelsOfABf16Weight) {
  Rng rng(9);
  const int64_t rows = 2, in = 4096, out = 600;  // panels of 256 rows: 256 + 256 + 88
  HostTensor w(DType::BF16, {out, in});
  const Vec wv = random_vector<double>(size_t(out * in), rng, 0.03);
  convert_from<double>(wv.data(), w.view().data, DType::BF16, wv.size());
  const auto* wb = static_cast<const uint16_t*>(w.view().data);
  const Vec x = random_vector<double>(size_t(rows * in), rng), dy = random_vector<double>(size_t(rows * out), rng);
  Vec y(size_t(rows * out)), dx(size_t(rows * in));
  linear_forward(x.data(), rows, w.view(), y.data());
  linear_backward_input(dy.data(), rows, w.view(), dx.data());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t o = 0; o < out; ++o) {
      double s = 0;
      for (int64_t i = 0; i < in; ++i) s += x[size_t(r * in + i)] * double(bf16_to_f32(wb[o * in + i]));
      ASSERT_NEAR(y[size_t(r * out + o)], s, 1e-12) << r << "," << o;
    }
    for (int64_t i = 0; i < in; ++i) {
      double s = 0;
      for (int64_t o = 0; o < out; ++o) s += dy[size_t(r * out + o)] * double(bf16_to_f32(wb[o * in + i]));
      ASSERT_NEAR(dx[size_t(r * in + i)], s, 1e-12) << r << "," << i;
    }
  }
}

}  // namespace
}  // namespace deltatune
