#include "lora/cuda/lora_kernels.h"
#include "ops/cuda/kernel_runner.cuh"

namespace deltatune {

namespace {

using cuda::Block;
using cuda::bf16;
using cuda::from_float;
using cuda::to_float;

constexpr int kThreads = 256;
constexpr int64_t kPerBlock = 8 * kThreads;

struct DropoutBody {
  const bf16* x;
  int64_t n;
  DropoutMask mask;
  bf16* y;
  bool accumulate;  // backward: y += masked x
  DT_HD void operator()(const Block& b, int bx, int, int, char*) const {
    const int64_t end = cuda::min_of(n, (int64_t(bx) + 1) * kPerBlock);
    for (int64_t i = int64_t(bx) * kPerBlock + b.thread; i < end; i += b.threads) {
      const float kept = mask.keeps(i) ? to_float(x[i]) * mask.keep_scale : 0.0f;
      y[i] = from_float<bf16>(accumulate ? to_float(y[i]) + kept : kept);
    }
  }
};

struct ToBf16Body {
  const float* x;
  int64_t n;
  bf16* y;
  DT_HD void operator()(const Block& b, int bx, int, int, char*) const {
    const int64_t end = cuda::min_of(n, (int64_t(bx) + 1) * kPerBlock);
    for (int64_t i = int64_t(bx) * kPerBlock + b.thread; i < end; i += b.threads)
      y[i] = from_float<bf16>(x[i]);
  }
};

}  // namespace

void lora_dropout_cuda_forward(const bf16* x, int64_t n, const DropoutMask& mask, bf16* y,
                               cuda::Target target) {
  cuda::launch<kThreads>(target, "lora dropout", DropoutBody{x, n, mask, y, false},
                         cuda::blocks_for(n, kPerBlock));
}

void lora_dropout_cuda_backward_add(const bf16* g, int64_t n, const DropoutMask& mask, bf16* dx,
                                    cuda::Target target) {
  cuda::launch<kThreads>(target, "lora dropout backward", DropoutBody{g, n, mask, dx, true},
                         cuda::blocks_for(n, kPerBlock));
}

void float_to_bf16_cuda(const float* x, int64_t n, bf16* y, cuda::Target target) {
  cuda::launch<kThreads>(target, "float to bf16", ToBf16Body{x, n, y},
                         cuda::blocks_for(n, kPerBlock));
}

}  // namespace deltatune
