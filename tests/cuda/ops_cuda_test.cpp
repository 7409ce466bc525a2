// The CUDA kernels of the ops other than the delta rule, on the GPU, against their float64 CPU
// references: norms, SwiGLU, causal conv1d, partial RoPE, AdamW, chunked cross-entropy, causal
// attention, the thin LoRA products (the checks are in tests/cuda/*_checks.h, shared with tests/cuda_emulated). Shapes
// include the model's (4096 tokens, hidden 2560, heads of 128 and 256) and odd ones (1000, 77,
// 100, tokens not a multiple of any tile, packs with empty and one-token sequences). Skipped
// without a GPU.
//
// Tolerances (relative: max |got − want| / max |want| per output, against the reference run on
// the same rounded inputs):
//   float: 1e-5. Float arithmetic on O(1) values; the longest sums (2560 squares, 2560-term
//     logits, a vocabulary of exponentials) lose a few float eps (6e-8) each.
//   bf16: 1e-2 (issue 7's bound). Writing an output as bf16 alone costs up to 2^-9 ≈ 2e-3 of the
//     largest value; the loss's exponentials and attention's P and dS enter their products as
//     bf16 (2^-9 each).
//   AdamW: exact. The same float operations in the same order as the CPU (train/adamw_cuda.h).
#include <gtest/gtest.h>

#include "cuda/require_gpu.h"
#include "core/cuda/cuda_check.h"
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

constexpr double kFloatTolerance = 1e-5;
constexpr double kBf16Tolerance = 1e-2;


template <class T>
constexpr double tolerance() {
  return std::is_same_v<T, float> ? kFloatTolerance : kBf16Tolerance;
}
template <class T>
const char* type_name() {
  return std::is_same_v<T, float> ? "float" : "bf16";
}

template <class T>
void norms_on_gpu() {
  DeviceMemory mem;
  WorstErrors worst(str_cat(type_name<T>(), " GPU norms vs float64 reference"));
  uint64_t seed = 10;
  for (const NormShape& s : std::vector<NormShape>{{1, 1000, 1000},
                                                   {37, 1024, 1024},
                                                   {300, 2560, 2560, 30.0},
                                                   {4096, 2560, 2560},
                                                   {33, 1000, 1000, 1e-3},
                                                   {4096 * 4, 256, 512},  // q_norm in q+gate rows
                                                   // half-warp rows: a partial block; dw over
                                                   // rows a grid apart
                                                   {45, 128, 128},
                                                   {4096 * 4 + 5, 128, 128},
                                                   {3, 64, 64}})
    check_zero_centred_rmsnorm<T>(mem, s, seed++, tolerance<T>(), worst);
  for (const NormShape& s : std::vector<NormShape>{
           {1, 128, 128}, {77, 100, 100}, {4096 * 16, 128, 128}, {9, 1000, 1000, 1e-3},
           {77, 128, 128}})
    check_gated_rmsnorm<T>(mem, s, seed++, tolerance<T>(), worst);
  for (const NormShape& s : std::vector<NormShape>{
           {1, 1000, 1000}, {513, 128, 384}, {4096 * 16, 128, 128}, {20, 100, 100, 1e-4},
           {13, 64, 64}})
    check_l2norm<T>(mem, s, seed++, tolerance<T>(), worst);
}
TEST(OpsCuda, NormsFloat) {
  DT_REQUIRE_GPU();
  norms_on_gpu<float>();
}
TEST(OpsCuda, NormsBf16) {
  DT_REQUIRE_GPU();
  norms_on_gpu<bf16>();
  DeviceMemory mem;
  check_l2norm_scale_folded(mem, 4096 * 16 + 3, 128, 41);
  check_residual_norm_fused(mem, 4096, 2560, 42);
  check_residual_norm_fused(mem, 33, 1001, 43);  // odd rows: one element a lane
}

template <class T>
void swiglu_on_gpu() {
  DeviceMemory mem;
  WorstErrors worst(str_cat(type_name<T>(), " GPU SwiGLU vs float64 reference"));
  uint64_t seed = 20;
  for (int64_t n : {int64_t(1), int64_t(1000), int64_t(3 * 12345), int64_t(4096) * 3584})
    check_swiglu<T>(mem, n, seed++, tolerance<T>(), worst);
}
TEST(OpsCuda, SwigluFloat) {
  DT_REQUIRE_GPU();
  swiglu_on_gpu<float>();
}
TEST(OpsCuda, SwigluBf16) {
  DT_REQUIRE_GPU();
  swiglu_on_gpu<bf16>();
}

template <class T>
void conv1d_on_gpu() {
  DeviceMemory mem;
  WorstErrors worst(str_cat(type_name<T>(), " GPU causal conv1d vs float64 reference"));
  uint64_t seed = 30;
  for (const Conv1dShape& s : std::vector<Conv1dShape>{
           {{0, 1}, 1000, 1000, 4},
           {{0, 3}, 77, 80, 4},
           {{0, 2, 5, 5, 40, 300}, 1024, 1040, 4},
           {{0, 1, 2, 3, 100, 301}, 1000, 1000, 2},
           {{0, 130, 131, 600}, 100, 100, 1},
           {{0, 7, 500}, 64, 64, 8},
           {{0, 1000, 4096}, 6144, 6144, 4}})  // the 0.8B model's conv channels
    check_conv1d<T>(mem, s, seed++, tolerance<T>(), worst);
}
TEST(OpsCuda, Conv1dFloat) {
  DT_REQUIRE_GPU();
  conv1d_on_gpu<float>();
  DeviceMemory mem;
  // The 4B model's q | k | v (two channels a thread for bf16), then odd widths (one), ldx wider.
  check_conv1d_split_columns<float>(mem, {0, 1000, 4096}, {2048, 2048, 4096}, 4, 8192, 51);
  check_conv1d_split_columns<float>(mem, {0, 3, 130, 131, 600}, {33, 33, 70}, 4, 150, 52);
}
TEST(OpsCuda, Conv1dBf16) {
  DT_REQUIRE_GPU();
  conv1d_on_gpu<bf16>();
  DeviceMemory mem;
  // The 4B model's q | k | v (two channels a thread for bf16), then odd widths (one), ldx wider.
  check_conv1d_split_columns<bf16>(mem, {0, 1000, 4096}, {2048, 2048, 4096}, 4, 8192, 51);
  check_conv1d_split_columns<bf16>(mem, {0, 3, 130, 131, 600}, {33, 33, 70}, 4, 150, 52);
}

template <class T>
void rope_on_gpu() {
  DeviceMemory mem;
  WorstErrors worst(str_cat(type_name<T>(), " GPU partial RoPE vs float64 reference"));
  uint64_t seed = 40;
  for (const RopeShape& s : std::vector<RopeShape>{
           {300, 16, 256, 64, 16 * 256, 256, 30000},  // q: rotary 1/4 of head_dim
           {300, 16, 256, 64, 16 * 512, 512, 100},    // the same heads inside q+gate rows
           {77, 3, 100, 26, 300, 100, 5},             // odd sizes
           {50, 2, 128, 128, 256, 128, 1000},         // the whole head turns
           {4096, 4, 256, 64, 4 * 256, 256, 4096}})   // k of the model, one long sequence
    check_rope<T>(mem, s, seed++, tolerance<T>(), worst);
}
TEST(OpsCuda, RopeFloat) {
  DT_REQUIRE_GPU();
  rope_on_gpu<float>();
}
TEST(OpsCuda, RopeBf16) {
  DT_REQUIRE_GPU();
  rope_on_gpu<bf16>();
}

TEST(OpsCuda, AdamWBitIdenticalToCpu) {
  DT_REQUIRE_GPU();
  DeviceMemory mem;
  uint64_t seed = 50;
  for (int64_t n : {int64_t(1), int64_t(1000), int64_t(1000003)}) {
    check_adamw(mem, n, AdamWConfig{}, seed++);
    check_adamw(mem, n, AdamWConfig{0.9, 0.95, 1e-6, 0.01}, seed++);
  }
}

template <class T>
void cross_entropy_on_gpu() {
  DeviceMemory mem;
  WorstErrors worst(str_cat(type_name<T>(), " GPU chunked cross-entropy vs float64 reference"));
  uint64_t seed = 60;
  for (const LossShape& s :
       std::vector<LossShape>{{1, 1000, 1000, 4096},
                              {37, 1024, 5000, 1024},
                              {300, 1000, 151, 64},
                              {130, 2560, 3001, 1000},
                              {256, 1024, 248320, 4096}})  // Qwen3.5's vocabulary
    check_cross_entropy<T>(mem, s, seed++, tolerance<T>(), worst);
}
TEST(OpsCuda, CrossEntropyFloat) {
  DT_REQUIRE_GPU();
  cross_entropy_on_gpu<float>();
}
TEST(OpsCuda, CrossEntropyBf16) {
  DT_REQUIRE_GPU();
  cross_entropy_on_gpu<bf16>();
}

template <class T>
void attention_on_gpu() {
  DeviceMemory mem;
  WorstErrors worst(str_cat(type_name<T>(), " GPU causal attention vs float64 reference"));
  uint64_t seed = 70;
  for (const AttentionCase& c : std::vector<AttentionCase>{
           {{0, 1, 40}, 2, 1, 256},          // a one-token sequence: its dq, dk are zero
           {{0, 5, 5, 70, 135}, 4, 2, 256},  // an empty sequence, tiles cut by boundaries
           {{0, 33, 100}, 3, 1, 100},        // odd head dim, padded to 112
           {{0, 64, 65}, 2, 2, 64},
           {{0, 300, 301, 1000, 2048}, 8, 2, 256},  // the 0.8B model's heads, packed
           {{0, 2048}, 16, 4, 256},                 // the 4B model's heads, one sequence
           // head dim 128 (the bf16 mma kernels' middle size), groups of 3, odd lengths
           {{0, 130, 131, 1130}, 6, 2, 128},
           {{0, 97, 353}, 4, 4, 64}})
    check_attention<T>(mem, c, seed++, tolerance<T>(), worst);
}
TEST(OpsCuda, AttentionFloat) {
  DT_REQUIRE_GPU();
  attention_on_gpu<float>();
}
TEST(OpsCuda, AttentionBf16) {
  DT_REQUIRE_GPU();
  attention_on_gpu<bf16>();
}

// The LoRA thin products at the model's shapes (4096 tokens; 1024, 3584 and 6144 wide, the last
// through a row stride; 16 wide: in_proj_a/b), at ranks 16, 8 (padded to a tile), 24 and 80
// (two groups of rank columns), and odd sizes.
TEST(OpsCuda, LoraProducts) {
  DT_REQUIRE_GPU();
  DeviceMemory mem;
  WorstErrors worst("GPU LoRA products vs float64 reference");
  uint64_t seed = 90;
  for (const LoraProductShape& s : std::vector<LoraProductShape>{{4096, 1024, 16, 1024},
                                                                 {4096, 3584, 16, 3584},
                                                                 {4096, 6144, 16, 6152},
                                                                 {4096, 16, 16, 16},
                                                                 {1, 1024, 16, 1024},
                                                                 {77, 100, 8, 100},
                                                                 {1000, 1000, 24, 1000},
                                                                 {513, 520, 80, 528}})
    check_lora_products(mem, s, seed++, kBf16Tolerance, kFloatTolerance, worst);
}

}  // namespace
}  // namespace deltatune
