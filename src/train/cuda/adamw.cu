// AdamW (train/adamw_cuda.h), one thread per element. nvcc contracts a*b + c into one fused
// multiply-add by default, which rounds once where the CPU rounds twice; the _rn intrinsics are
// never contracted, so every operation rounds exactly as in train/optimizer.cpp.
#include <cmath>

#include "ops/cuda/kernel_runner.cuh"
#include "train/adamw_cuda.h"

namespace deltatune {

namespace {

using cuda::Block;

constexpr int kThreads = 256;
constexpr int64_t kPerBlock = 4 * kThreads;

DT_HD float mul(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
DT_HD float add(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
DT_HD float div(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}
DT_HD double sqrt_div_add(double v, double divisor, double addend) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(__ddiv_rn(__dsqrt_rn(v), divisor), addend);
#else
  return std::sqrt(v) / divisor + addend;
#endif
}

// The scalars of one step, as AdamW::step derives them (double, then rounded where the CPU rounds).
struct AdamWScalars {
  float decay, b1, b2, step_size;
  double bias2_sqrt, eps;
};

struct AdamWBody {
  float* p;
  const float* g;
  float *m, *v;
  int64_t n;
  AdamWScalars s;
  DT_HD void operator()(const Block& b, int bx, int, int, char*) const {
    const int64_t end = cuda::min_of(n, (int64_t(bx) + 1) * kPerBlock);
    for (int64_t i = int64_t(bx) * kPerBlock + b.thread; i < end; i += b.threads) {
      // p *= decay; m = b1 m + (1 − b1) g; v = b2 v + (1 − b2) g g;
      // p −= step_size · m / (sqrt(v) / sqrt(bias2) + eps)
      const float gi = g[i];
      float pi = mul(p[i], s.decay);
      const float mi = add(mul(s.b1, m[i]), mul(add(1.0f, -s.b1), gi));
      const float vi = add(mul(s.b2, v[i]), mul(mul(add(1.0f, -s.b2), gi), gi));
      const float denom = float(sqrt_div_add(double(vi), s.bias2_sqrt, s.eps));
      pi = add(pi, -div(mul(s.step_size, mi), denom));
      p[i] = pi;
      m[i] = mi;
      v[i] = vi;
    }
  }
};

}  // namespace

void adamw_cuda_step(float* params, const float* grads, float* m, float* v, int64_t n, double lr,
                     const AdamWConfig& c, int64_t step, cuda::Target target) {
  DT_CHECK(step >= 1, "AdamW (CUDA): step counts from 1, got ", step);
  const double bias1 = 1.0 - std::pow(c.beta1, double(step));
  const double bias2 = 1.0 - std::pow(c.beta2, double(step));
  const AdamWScalars s{.decay = float(1.0 - lr * c.weight_decay), .b1 = float(c.beta1),
                       .b2 = float(c.beta2), .step_size = float(lr / bias1),
                       .bias2_sqrt = std::sqrt(bias2), .eps = c.eps};
  cuda::launch<kThreads>(target, "AdamW step", AdamWBody{params, grads, m, v, n, s},
                         cuda::blocks_for(n, kPerBlock));
}

}  // namespace deltatune
