#include <cmath>
#include <vector>

#include "core/cuda/device_arena.h"
#include "ops/cuda/kernel_runner.cuh"
#include "train/grad_norm_cuda.h"

namespace deltatune {

namespace {

using cuda::Block;

constexpr int kThreads = 256;
constexpr int kBlocks = 264;  // two per SM of an H100; each sums one contiguous slice

// partials[bx] = Σ g² over slice bx (thread sums in shared memory, added in thread order).
struct SumSquaresBody {
  const float* g;
  int64_t n;
  double* partials;
  DT_HD void operator()(const Block& b, int bx, int, int, char* shared) const {
    double* sums = reinterpret_cast<double*>(shared);
    const int64_t per = (n + kBlocks - 1) / kBlocks;
    const int64_t begin = int64_t(bx) * per, end = cuda::min_of(n, begin + per);
    double s = 0.0;
    for (int64_t i = begin + b.thread; i < end; i += b.threads) s += double(g[i]) * double(g[i]);
    sums[b.thread] = s;
    b.sync();
    if (b.thread == 0) {
      double total = 0.0;
      for (int t = 0; t < b.threads; ++t) total += sums[t];
      partials[bx] = total;
    }
  }
};

struct ScaleBody {
  float* g;
  int64_t n;
  double coef;
  DT_HD void operator()(const Block& b, int bx, int, int, char*) const {
    const int64_t per = (n + kBlocks - 1) / kBlocks;
    const int64_t begin = int64_t(bx) * per, end = cuda::min_of(n, begin + per);
    for (int64_t i = begin + b.thread; i < end; i += b.threads) g[i] = float(double(g[i]) * coef);
  }
};

}  // namespace

double grad_norm_cuda(const float* grads, int64_t n, cuda::Target target) {
  if (n == 0) return 0.0;
  cuda::Memory partials(kBlocks * sizeof(double), target);
  cuda::launch<kThreads>(target, "gradient sum of squares",
                         SumSquaresBody{grads, n, partials.as<double>()}, dim3(kBlocks),
                         kThreads * sizeof(double));
  const std::vector<double> sums = cuda::download(partials.as<double>(), kBlocks, target);
  double total = 0.0;
  for (double s : sums) total += s;
  return std::sqrt(total);
}

double clip_grad_norm_cuda(float* grads, int64_t n, double max_norm, cuda::Target target) {
  const double norm = grad_norm_cuda(grads, n, target);
  const double coef = max_norm / (norm + 1e-6);
  if (max_norm <= 0 || !(coef < 1.0)) return norm;
  cuda::launch<kThreads>(target, "gradient clipping", ScaleBody{grads, n, coef}, dim3(kBlocks));
  return norm;
}

}  // namespace deltatune
