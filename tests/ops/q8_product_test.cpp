// The int8 product with q8_0 weights (ops/cpu/q8_product.h, inference only).
//
// Quantization: every |q| ≤ 127 and |x - q·d| ≤ d/2 (round to nearest; d = max|block| / 127, so
// the block's largest value maps to ±127 exactly up to one float rounding).
//
// Product, every variant this CPU runs (forced in turn): against float64 sums of the SAME int8
// values and scales. Each block's integer dot is exact (|Σ| ≤ 32·127·128 < 2^24, exact in int32 and
// as a float); what rounds is the float32 part: the scale d_x·d_w (1 rounding), the running sum of
// nb = in/32 block terms per lane (nb roundings), the 8-lane horizontal sum (3) and the final
// store / accumulate (1). So |y - y_64| ≤ γ_(nb+5)·(Σ_b |d_x d_w| Σ_j |q_x q_w| + |y_0|) with
// γ_n ≈ n·2^-24; the test allows (nb + 6)·2^-24 times that sum.
//
// The switch: linear_forward<float> with a q8_0 weight takes this path only inside an
// Int8ActivationScope, for more than 4 rows and with AVX-512 VNNI; outside it the result is
// bit-for-bit the dequantized-weight product, and Emulated is bit-for-bit the float product of
// the dequantized int8 activations.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"
#include "ops/cpu/q8_product.h"
#include "ops/matmul.h"
#include "test_util.h"

namespace deltatune {
namespace {

// Activations with a different scale per block, some blocks all zero (scale 0).
std::vector<float> activations(int64_t rows, int64_t in, Rng& rng) {
  std::vector<float> x(size_t(rows * in));
  for (int64_t b = 0; b < rows * in / 32; ++b) {
    const double scale = (b % 11 == 5) ? 0.0 : std::exp(rng.uniform(-4.0, 4.0));
    for (int64_t j = 0; j < 32; ++j) x[size_t(b * 32 + j)] = float(scale * rng.normal());
  }
  return x;
}

// A q8_0 weight [out, in] with random values, and a few int8 values forced to -128 (ggml's
// quantizer never writes it, a file may).
HostTensor weight(int64_t out, int64_t in, Rng& rng) {
  std::vector<float> w = testing_util::random_vector<float>(size_t(out * in), rng);
  HostTensor stored(DType::Q8_0, {out, in});
  convert_from<float>(w.data(), stored.view().data, DType::Q8_0, w.size());
  auto* bytes = static_cast<std::byte*>(stored.view().data);
  for (int64_t b = 0; b < out * in / 32; b += 7) bytes[size_t(b) * kQ8_0BlockBytes + 2 + size_t(b % 32)] = std::byte(0x80);
  return stored;
}

float f16_scale(const std::byte* block) {
  uint16_t h;
  std::memcpy(&h, block, 2);
  double v;
  convert_to<double>(reinterpret_cast<const std::byte*>(&h), DType::F16, &v, 1);
  return float(v);
}

TEST(Q8Product, QuantizedActivationsRoundToNearest) {
  Rng rng(1);
  const int64_t rows = 9, in = 160;
  const std::vector<float> x = activations(rows, in, rng);
  std::vector<int8_t> q(x.size());
  std::vector<float> d(x.size() / 32);
  quantize_activations_q8(x.data(), rows, in, in, q.data(), d.data());
  for (size_t b = 0; b < d.size(); ++b) {
    double amax = 0;
    for (size_t j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(double(x[b * 32 + j])));
    EXPECT_EQ(d[b], float(amax) / 127.0f);
    for (size_t j = 0; j < 32; ++j) {
      const size_t i = b * 32 + j;
      EXPECT_LE(std::abs(int(q[i])), 127);
      EXPECT_LE(std::fabs(double(x[i]) - double(q[i]) * d[b]), 0.5 * d[b] * (1 + 1e-6)) << i;
    }
  }
}

TEST(Q8Product, EveryVariantEqualsFloat64OnTheSameInt8Values) {
  Rng rng(2);
  struct Shape {
    int64_t rows, out, in;
  };
  const Shape shapes[] = {{1, 1, 32}, {5, 3, 64}, {7, 37, 96}, {67, 129, 1024}, {600, 37, 64},
                          {3, 599, 256}, {33, 17, 3584}, {129, 63, 160}};
  int variants = 0;
  for (Q8Isa isa : {Q8Isa::Vnni, Q8Isa::Avx2, Q8Isa::Scalar}) {
    if (!q8_isa_available(isa)) {
      std::printf("  %s: not on this CPU, skipped\n", q8_isa_name(isa));
      continue;
    }
    ++variants;
    double worst = 0;
    for (const Shape& s : shapes) {
      SCOPED_TRACE(str_cat(q8_isa_name(isa), " rows ", s.rows, " out ", s.out, " in ", s.in));
      const HostTensor w = weight(s.out, s.in, rng);
      const auto* wb = static_cast<const std::byte*>(w.view().data);
      const std::vector<float> x = activations(s.rows, s.in, rng);
      const int64_t nb = s.in / 32;
      std::vector<int8_t> q(x.size());
      std::vector<float> d(size_t(s.rows * nb));
      quantize_activations_q8(x.data(), s.rows, s.in, s.in, q.data(), d.data());
      for (bool accumulate : {false, true}) {
        const float y0 = accumulate ? 1.0f : 0.0f;
        const int64_t ldy = s.out + 3;  // a column block of a wider buffer
        std::vector<float> y(size_t(s.rows * ldy), accumulate ? 1.0f : -7.0f);
        q8_product(q.data(), d.data(), s.rows, wb, s.out, s.in, y.data(), ldy, accumulate, isa);
        for (int64_t t = 0; t < s.rows; ++t) {
          for (int64_t o = 0; o < s.out; ++o) {
            double want = y0, magnitude = std::fabs(y0);
            for (int64_t b = 0; b < nb; ++b) {
              const std::byte* blk = wb + size_t(o * nb + b) * kQ8_0BlockBytes;
              const auto* wq = reinterpret_cast<const int8_t*>(blk + 2);
              const double scale = double(d[size_t(t * nb + b)]) * double(f16_scale(blk));
              int64_t dot = 0, dot_abs = 0;
              for (int64_t j = 0; j < 32; ++j) {
                const int64_t p = int64_t(q[size_t(t * s.in + b * 32 + j)]) * wq[j];
                dot += p;
                dot_abs += p < 0 ? -p : p;
              }
              want += scale * double(dot);
              magnitude += std::fabs(scale) * double(dot_abs);
            }
            const double err = std::fabs(double(y[size_t(t * ldy + o)]) - want);
            const double bound = double(nb + 6) * 0x1p-24 * magnitude;
            ASSERT_LE(err, bound) << "t " << t << " o " << o << " want " << want;
            if (magnitude > 0) worst = std::max(worst, err / (0x1p-24 * magnitude));
          }
          // Columns past `out` untouched.
          for (int64_t o = s.out; o < ldy; ++o) ASSERT_EQ(y[size_t(t * ldy + o)], accumulate ? 1.0f : -7.0f);
        }
      }
    }
    testing_util::report(str_cat(q8_isa_name(isa), ": worst error in units of 2^-24 of the magnitude"), worst);
  }
  EXPECT_GE(variants, 1);
}

TEST(Q8Product, LinearForwardSwitchesOnlyInsideTheScope) {
  Rng rng(3);
  const int64_t rows = 23, out = 45, in = 320;
  const HostTensor w = weight(out, in, rng);
  const std::vector<float> x = activations(rows, in, rng);
  std::vector<float> plain(size_t(rows * out)), off(size_t(rows * out)), on(size_t(rows * out)),
      direct(size_t(rows * out));
  linear_forward(x.data(), rows, w.view(), plain.data());
  EXPECT_FALSE(int8_activations_active());
  {
    const Int8ActivationScope scope(true);
    EXPECT_TRUE(int8_activations_active());
    {
      const Int8ActivationScope inner(false);
      linear_forward(x.data(), rows, w.view(), off.data());
    }
    EXPECT_TRUE(int8_activations_active());
    linear_forward(x.data(), rows, w.view(), on.data());
  }
  EXPECT_FALSE(int8_activations_active());
  EXPECT_EQ(plain, off);
  std::vector<int8_t> q(x.size());
  std::vector<float> d(x.size() / 32);
  quantize_activations_q8(x.data(), rows, in, in, q.data(), d.data());
  q8_product(q.data(), d.data(), rows, static_cast<const std::byte*>(w.view().data), out, in, direct.data(), out,
             false, q8_default_isa());
  if (q8_default_isa() != Q8Isa::Vnni) {  // the int8 path is off without VNNI
    EXPECT_EQ(on, plain);
    return;
  }
  EXPECT_EQ(on, direct);
  EXPECT_NE(on, plain);  // the activations' rounding shows
  // Emulated: the same int8 values dequantized, through the float product.
  std::vector<float> emulated(size_t(rows * out)), xq(x.size());
  for (size_t i = 0; i < x.size(); ++i) xq[i] = float(q[i]) * d[i / 32];
  linear_forward(xq.data(), rows, w.view(), direct.data());
  {
    const Int8ActivationScope scope(Int8Activations::Emulated);
    EXPECT_FALSE(int8_activations_active());
    linear_forward(x.data(), rows, w.view(), emulated.data());
  }
  EXPECT_EQ(emulated, direct);
}

}  // namespace
}  // namespace deltatune
