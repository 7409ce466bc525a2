// Checks of the CUDA causal conv1d + SiLU (ops/conv1d_cuda.h) against the float64 CPU reference
// (ops/conv1d.h) on packed sequences: a tap reaching across a sequence boundary would show as an
// error at the first K−1 tokens of the next sequence. Used by tests/cuda and tests/cuda_emulated.
#pragma once

#include "core/rng.h"
#include "cuda/op_memory.h"
#include "ops/conv1d.h"
#include "ops/conv1d_cuda.h"

namespace deltatune::testing_util {

struct Conv1dShape {
  std::vector<int64_t> cu_seqlens;
  int64_t channels, ldx;  // x and dx rows are ldx apart (the conv reads part of a wider row)
  int kernel;
};

inline std::string describe(const Conv1dShape& s) {
  std::string cu;
  for (size_t i = 0; i < s.cu_seqlens.size(); ++i) {
    if (i) cu += ',';
    cu += std::to_string(s.cu_seqlens[i]);
  }
  return str_cat("cu_seqlens={", cu, "} channels=", s.channels, " ldx=", s.ldx,
                 " kernel=", s.kernel);
}

template <class T, class Memory>
void check_conv1d(Memory& mem, const Conv1dShape& s, uint64_t seed, double tolerance,
                  WorstErrors& worst) {
  SCOPED_TRACE(describe(s));
  Rng rng(seed);
  const int64_t tokens = s.cu_seqlens.back(), C = s.channels;
  const auto x = rounded<T>(random_normal(size_t(tokens * s.ldx), rng));
  const auto w = rounded<T>(random_normal(size_t(C * s.kernel), rng, 0.5));
  const auto dy = rounded<T>(random_normal(size_t(tokens * C), rng));
  const auto dw0 = rounded<float>(random_normal(size_t(C * s.kernel), rng));
  std::vector<double> y(dy.size()), dx(x.size()), dw = dw0;
  causal_conv1d_silu_forward<double>(x.data(), C, w.data(), s.kernel, s.cu_seqlens, y.data(),
                                     s.ldx);
  causal_conv1d_silu_backward<double>(x.data(), C, w.data(), s.kernel, s.cu_seqlens, dy.data(),
                                      dx.data(), dw.data(), s.ldx);

  const auto gx = mem.upload(to_elements<T>(x)), gw = mem.upload(to_elements<T>(w));
  const auto gdy = mem.upload(to_elements<T>(dy));
  const auto gcu = mem.upload(s.cu_seqlens);
  const int64_t nseq = int64_t(s.cu_seqlens.size()) - 1;
  auto gy = mem.template poisoned<T>(y.size()), gdx = mem.template poisoned<T>(dx.size());
  auto gdw = mem.upload(to_elements<float>(dw0));
  auto workspace =
      mem.template poisoned<char>(causal_conv1d_cuda_dw_workspace_bytes(tokens, C, s.kernel));
  causal_conv1d_silu_cuda_forward<T>(gx.data(), tokens, C, gw.data(), s.kernel, gcu.data(), nseq,
                                     gy.data(), s.ldx, mem.target());
  causal_conv1d_silu_cuda_backward<T>(gx.data(), tokens, C, gw.data(), s.kernel, gcu.data(), nseq,
                                      gdy.data(), gdx.data(), gdw.data(), workspace.data(), s.ldx,
                                      mem.target());
  expect_close("conv y", mem.download(gy), y, tolerance, worst);
  expect_close("conv dx", dense_rows(mem.download(gdx), tokens, C, s.ldx),
               dense_rows(dx, tokens, C, s.ldx), tolerance, worst);
  expect_close("conv dw", mem.download(gdw), dw, tolerance, worst);
}

}  // namespace deltatune::testing_util
