// Without a GPU, the CUDA path says so clearly instead of failing somewhere inside CUDA.
#include <gtest/gtest.h>

#include <string>

#include "core/cuda/cuda_check.h"
#include "ops/delta_rule_cuda.h"

namespace deltatune {
namespace {

TEST(CudaWithoutGpu, PlanSaysNoGpuPresent) {
  if (cuda::device_present()) GTEST_SKIP() << "a GPU is present";
  const std::vector<int64_t> cu = {0, 10};
  try {
    DeltaRuleCudaPlan plan({10, 1, 1, 64, 64}, cu, delta_rule_cuda_chunk<float>());
    FAIL() << "a plan was made without a GPU";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no CUDA GPU present"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace deltatune
