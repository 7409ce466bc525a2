// Products with frozen weights stored as f32, f16, bf16 or q8_0 (ops/matmul.h): against a float64
// product with the weight's decoded values, for few rows (one weight row at a time, the
// generation path) and many (converted panels through the BLAS), forward and input gradient.
// float32 compute over k = 96 .. 1000 terms of O(1) values: 1e-5 relative is ~100 float32 steps.
#include <gtest/gtest.h>

#include <vector>

#include "core/rng.h"
#include "core/tensor.h"
#include "ops/matmul.h"
#include "test_util.h"

namespace deltatune {
namespace {

using testing_util::describe;
using testing_util::relative_error;

constexpr double kTolerance = 1e-5;

TEST(Matmul, EveryWeightTypeFewAndManyRows) {
  Rng rng(11);
  for (DType dtype : {DType::F32, DType::F16, DType::BF16, DType::Q8_0}) {
    for (auto [out, in] : {std::pair<int64_t, int64_t>{37, 96}, {300, 1024}}) {
      std::vector<float> w = testing_util::random_vector<float>(size_t(out * in), rng);
      HostTensor stored(dtype, {out, in});
      convert_from<float>(w.data(), stored.view().data, dtype, w.size());
      std::vector<double> decoded(w.size());
      tensor_to(stored.view(), decoded.data());
      for (int64_t rows : {1, 3, 4, 5, 17}) {
        SCOPED_TRACE(str_cat(dtype_name(dtype), " [", out, ", ", in, "] rows ", rows));
        const std::vector<float> x = testing_util::random_vector<float>(size_t(rows * in), rng);
        std::vector<double> want(size_t(rows * out), 0.0);
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t o = 0; o < out; ++o)
            for (int64_t i = 0; i < in; ++i) want[size_t(r * out + o)] += double(x[size_t(r * in + i)]) * decoded[size_t(o * in + i)];
        // Accumulating into y that already holds 1.
        std::vector<float> y(size_t(rows * out), 1.0f);
        linear_forward(x.data(), rows, stored.view(), y.data(), true);
        for (double& v : want) v += 1.0;
        const auto e = relative_error(y.data(), want.data(), y.size());
        EXPECT_LE(e.value, kTolerance) << describe(e);

        const std::vector<float> dy = testing_util::random_vector<float>(size_t(rows * out), rng);
        std::vector<double> want_dx(size_t(rows * in), 0.0);
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t o = 0; o < out; ++o)
            for (int64_t i = 0; i < in; ++i)
              want_dx[size_t(r * in + i)] += double(dy[size_t(r * out + o)]) * decoded[size_t(o * in + i)];
        std::vector<float> dx(size_t(rows * in));
        linear_backward_input(dy.data(), rows, stored.view(), dx.data());
        const auto ed = relative_error(dx.data(), want_dx.data(), dx.size());
        EXPECT_LE(ed.value, kTolerance) << "input gradient: " << describe(ed);
      }
    }
  }
}

TEST(Matmul, F16RowsDecodeEveryHalf) {
  // The one-token path decodes f16 without the table-free converter: every finite half, normal
  // and subnormal, both signs, read through a product with a one-hot x.
  const int64_t in = 64;
  std::vector<float> x(in, 0.0f);
  x[5] = 1.0f;
  HostTensor w(DType::F16, {1, in});
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00u) == 0x7c00u) continue;  // inf / nan
    static_cast<uint16_t*>(w.view().data)[5] = uint16_t(h);
    float y = 0;
    linear_forward(x.data(), 1, w.view(), &y);
    ASSERT_EQ(y, f16_to_f32(uint16_t(h))) << "half bits " << h;
  }
}

TEST(Matmul, Q8_0TensorsCountBlocks) {
  HostTensor t(DType::Q8_0, {3, 64});
  EXPECT_EQ(t.view().nbytes(), 3u * 2 * 34);
  EXPECT_EQ(dtype_bytes(DType::Q8_0, 32), 34u);
  EXPECT_THROW(dtype_size(DType::Q8_0), Error);
  EXPECT_THROW(dtype_bytes(DType::Q8_0, 33), Error);
  EXPECT_FALSE(dtype_from_name("Q8_0").has_value());  // not a safetensors dtype
}

}  // namespace
}  // namespace deltatune
