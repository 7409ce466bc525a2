// The CUDA kernels of the ops other than the delta rule, emulated on the host (one thread per
// block: src/ops/cuda/kernel_runner.cuh), against their float64 CPU references: the same checks
// as tests/cuda/ops_cuda_test.cpp on smaller shapes. Runs in CI, which has no GPU: it checks the
// kernels' indexing, padding, sequence boundaries and equations; the GPU test adds the tensor
// cores, warp shuffles and races.
//
// Tolerances as in tests/cuda/ops_cuda_test.cpp: float 1e-5, bf16 1e-2 (every bf16 rounding the
// GPU makes, the emulation makes too), AdamW exact.
#include <gtest/gtest.h>

#include "cuda/attention_checks.h"
#include "cuda/conv1d_checks.h"
#include "cuda/lora_checks.h"
#include "cuda/loss_checks.h"
#include "cuda/norm_checks.h"
#include "cuda/pointwise_checks.h"

namespace deltatune {
namespace {

using namespace testing_util;
using bf16 = __nv_bfloat16;

template <class T>
constexpr double tolerance() {
  return std::is_same_v<T, float> ? 1e-5 : 1e-2;
}
template <class T>
const char* type_name() {
  return std::is_same_v<T, float> ? "float" : "bf16";
}

template <class T>
void norms_emulated() {
  HostMemory mem;
  WorstErrors worst(str_cat(type_name<T>(), " emulated norms vs float64 reference"));
  uint64_t seed = 10;
  for (const NormShape& s : std::vector<NormShape>{
           {1, 1000, 1000}, {37, 1024, 1024}, {5, 2560, 2560, 30.0}, {40, 256, 512, 1e-3}})
    check_zero_centred_rmsnorm<T>(mem, s, seed++, tolerance<T>(), worst);
  for (const NormShape& s : std::vector<NormShape>{{1, 128, 128}, {77, 100, 100}, {600, 128, 128}})
    check_gated_rmsnorm<T>(mem, s, seed++, tolerance<T>(), worst);
  for (const NormShape& s :
       std::vector<NormShape>{{1, 1000, 1000}, {33, 128, 384}, {20, 100, 100, 1e-4}})
    check_l2norm<T>(mem, s, seed++, tolerance<T>(), worst);
}
TEST(OpsCudaEmulated, NormsFloat) { norms_emulated<float>(); }
TEST(OpsCudaEmulated, NormsBf16) {
  norms_emulated<bf16>();
  HostMemory mem;
  check_l2norm_scale_folded(mem, 300, 128, 41);
  check_residual_norm_fused(mem, 37, 2560, 42);
  check_residual_norm_fused(mem, 33, 1001, 43);  // odd rows: one element a lane
}

template <class T>
void pointwise_emulated() {
  HostMemory mem;
  WorstErrors worst(str_cat(type_name<T>(), " emulated SwiGLU and RoPE vs float64 reference"));
  uint64_t seed = 20;
  for (int64_t n : {1, 1000, 5000}) check_swiglu<T>(mem, n, seed++, tolerance<T>(), worst);
  for (const RopeShape& s : std::vector<RopeShape>{{30, 4, 256, 64, 4 * 512, 512, 30000},
                                                   {77, 3, 100, 26, 300, 100, 5},
                                                   {5, 2, 128, 128, 256, 128, 1000}})
    check_rope<T>(mem, s, seed++, tolerance<T>(), worst);
}
TEST(OpsCudaEmulated, PointwiseFloat) { pointwise_emulated<float>(); }
TEST(OpsCudaEmulated, PointwiseBf16) { pointwise_emulated<bf16>(); }

template <class T>
void conv1d_emulated() {
  HostMemory mem;
  WorstErrors worst(str_cat(type_name<T>(), " emulated causal conv1d vs float64 reference"));
  uint64_t seed = 30;
  for (const Conv1dShape& s : std::vector<Conv1dShape>{{{0, 1}, 1000, 1000, 4},
                                                       {{0, 2, 5, 5, 40, 300}, 77, 80, 4},
                                                       {{0, 1, 2, 3, 100, 301}, 40, 40, 2},
                                                       {{0, 7, 200}, 33, 33, 8},
                                                       // slices end at 44 and 88: sequences
                                                       // end 1 past one (inside its K−1 extra
                                                       // outputs), at the other, 2 past it;
                                                       // 300 channels: 2 blocks of 256
                                                       {{0, 45, 88, 90, 130}, 300, 300, 4}})
    check_conv1d<T>(mem, s, seed++, tolerance<T>(), worst);
}
template <class T>
void conv1d_split_emulated() {
  HostMemory mem;
  check_conv1d_split_columns<T>(mem, {0, 45, 88, 90, 130}, {64, 64, 128}, 4, 256, 51);
  check_conv1d_split_columns<T>(mem, {0, 3, 40, 41, 100}, {33, 33, 70}, 4, 150, 52);
}
TEST(OpsCudaEmulated, Conv1dFloat) {
  conv1d_emulated<float>();
  conv1d_split_emulated<float>();
}
TEST(OpsCudaEmulated, Conv1dBf16) {
  conv1d_emulated<bf16>();
  conv1d_split_emulated<bf16>();
}

TEST(OpsCudaEmulated, AdamWBitIdenticalToCpu) {
  HostMemory mem;
  for (int64_t n : {1, 1000, 12345}) {
    check_adamw(mem, n, AdamWConfig{}, 50 + n);
    check_adamw(mem, n, AdamWConfig{0.9, 0.95, 1e-6, 0.01}, 60 + n);
  }
}

template <class T>
void cross_entropy_emulated() {
  HostMemory mem;
  WorstErrors worst(
      str_cat(type_name<T>(), " emulated chunked cross-entropy vs float64 reference"));
  uint64_t seed = 60;
  for (const LossShape& s : std::vector<LossShape>{
           {1, 1000, 1000, 4096}, {37, 264, 700, 256}, {20, 100, 151, 64}, {130, 72, 1001, 300}})
    check_cross_entropy<T>(mem, s, seed++, tolerance<T>(), worst);
}
TEST(OpsCudaEmulated, CrossEntropyFloat) { cross_entropy_emulated<float>(); }
TEST(OpsCudaEmulated, CrossEntropyBf16) { cross_entropy_emulated<bf16>(); }

template <class T>
void attention_emulated() {
  HostMemory mem;
  WorstErrors worst(str_cat(type_name<T>(), " emulated causal attention vs float64 reference"));
  uint64_t seed = 70;
  // A one-token sequence (its dq, dk are zero), a pack with an empty sequence and tiles cut by
  // boundaries, an odd head dim (padded to 112), a small one.
  for (const AttentionCase& c : std::vector<AttentionCase>{{{0, 1, 40}, 2, 1, 256},
                                                           {{0, 5, 5, 70, 135}, 4, 2, 256},
                                                           {{0, 33, 100}, 3, 1, 100},
                                                           {{0, 64, 65}, 2, 2, 64}})
    check_attention<T>(mem, c, seed++, tolerance<T>(), worst);
}
TEST(OpsCudaEmulated, AttentionFloat) { attention_emulated<float>(); }
TEST(OpsCudaEmulated, AttentionBf16) { attention_emulated<bf16>(); }

TEST(OpsCudaEmulated, LoraProducts) {
  HostMemory mem;
  WorstErrors worst("emulated LoRA products vs float64 reference");
  uint64_t seed = 90;
  for (const LoraProductShape& s : std::vector<LoraProductShape>{{300, 1024, 16, 1024},
                                                                 {1000, 136, 16, 144},
                                                                 {64, 16, 16, 16},
                                                                 {1, 100, 16, 100},
                                                                 {77, 100, 8, 100},
                                                                 {130, 200, 80, 208}})
    check_lora_products(mem, s, seed++, 1e-2, 1e-5, worst);
}

TEST(OpsCudaEmulated, RejectsBadArguments) {
  const auto host = cuda::Target::host_emulation();
  std::vector<float> x(16), w(16);
  const std::vector<int64_t> cu = {0, 2};
  EXPECT_THROW(causal_conv1d_silu_cuda_forward<float>(x.data(), 2, 1, w.data(), 9, cu.data(), 1,
                                                      x.data(), -1, host),
               Error);  // kernel > 8
  EXPECT_THROW(rope_cuda_forward<float>(x.data(), 1, 1, 8, 8, 3, w.data(), w.data(), host),
               Error);  // odd rotary_dim
  EXPECT_THROW(
      adamw_cuda_step(x.data(), x.data(), x.data(), x.data(), 1, 1e-3, AdamWConfig{}, 0, host),
      Error);  // steps count from 1
}

}  // namespace
}  // namespace deltatune
