// The whole text model against transformers 5.17 (tests/fixtures, made by scripts/make_fixtures.py):
// logits of one sequence and of a pack (reference built one sequence at a time), in float64
// (1e-9 relative: both sides are float64, only summation order differs) and float32 (1e-4: the
// float32 rounding of ~20 chained ops, well above what transformers' own float32 path shows,
// 3e-6 .. 1.1e-5 in MANIFEST.json).
#include <gtest/gtest.h>

#include <vector>

#include "core/arena.h"
#include "io/safetensors.h"
#include "model/qwen35.h"
#include "test_util.h"

namespace deltatune {
namespace {

using testing_util::describe;
using testing_util::fixture_path;
using testing_util::relative_error;

constexpr double kFloat64Tolerance = 1e-9;
constexpr double kFloat32Tolerance = 1e-4;

std::vector<int64_t> ints(const SafetensorsFile& f, const std::string& name) {
  const Tensor t = f.tensor(name);
  const int64_t* p = static_cast<const int64_t*>(t.data);
  return {p, p + t.numel()};
}

class FixtureTest : public ::testing::TestWithParam<std::string> {};

template <class T>
void check_logits(const Model& model, const SafetensorsFile& ref, const std::string& which, double tol,
                  const std::string& variant) {
  std::vector<int64_t> cu;
  if (ref.find(which + ".cu_seqlens")) cu = ints(ref, which + ".cu_seqlens");
  const Batch batch = make_batch(ints(ref, which + ".input_ids"), cu);
  const Tensor expected = ref.tensor(which + ".logits");
  ASSERT_EQ(expected.dtype, DType::F64);
  ASSERT_EQ(expected.dim(0), batch.tokens());
  ASSERT_EQ(expected.dim(1), model.config().vocab_size);
  std::vector<T> logits(size_t(expected.numel()));
  Arena arena;
  model_forward_logits(model, LoraRun{}, batch, logits.data(), arena);
  const auto err = relative_error(logits.data(), static_cast<const double*>(expected.data), logits.size());
  testing_util::report(variant + " " + which + std::string(sizeof(T) == 8 ? " float64" : " float32") + " logits", err.value);
  EXPECT_LE(err.value, tol) << which << " (" << (sizeof(T) == 8 ? "float64" : "float32") << "): " << describe(err);
}

TEST_P(FixtureTest, LogitsMatchTransformers) {
  const std::string dir = fixture_path(GetParam());
  const Model model = Model::load(dir);
  const SafetensorsFile ref(dir + "/reference.safetensors");
  for (const char* which : {"single", "pack"}) {
    check_logits<double>(model, ref, which, kFloat64Tolerance, GetParam());
    check_logits<float>(model, ref, which, kFloat32Tolerance, GetParam());
  }
}

INSTANTIATE_TEST_SUITE_P(Transformers, FixtureTest,
                         ::testing::Values("causal_tied_f32", "causal_v2x_untied_bf16",
                                           "cond_v2x_untied_f32_sharded", "cond_tied_bf16"));

}  // namespace
}  // namespace deltatune
