// Checks of the CUDA causal conv1d + SiLU (ops/conv1d_cuda.h) against the float64 CPU reference
// (ops/conv1d.h) on packed sequences: a tap reaching across a sequence boundary would show as an
// error at the first K−1 tokens of the next sequence. Used by tests/cuda and tests/cuda_emulated.
#pragma once

#include <array>

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

// The conv with its output and output gradient split by channel into three arrays (ConvColumns:
// the Gated DeltaNet's q, k, v) against the same conv on one dense [T, C] array: the same bits in
// y, dx and dw. Odd widths take the one-channel path, even ones the two-channel one.
template <class T, class Memory>
void check_conv1d_split_columns(Memory& mem, const std::vector<int64_t>& cu_seqlens,
                                std::array<int64_t, 3> widths, int kernel, int64_t ldx,
                                uint64_t seed) {
  const int64_t C = widths[0] + widths[1] + widths[2], tokens = cu_seqlens.back();
  SCOPED_TRACE(str_cat("conv split into ", widths[0], " | ", widths[1], " | ", widths[2],
                       " channels, ldx=", ldx, " kernel=", kernel, " tokens=", tokens));
  Rng rng(seed);
  const std::vector<T> x = to_elements<T>(random_normal(size_t(tokens * ldx), rng));
  const std::vector<T> w = to_elements<T>(random_normal(size_t(C * kernel), rng, 0.5));
  const std::vector<T> dy = to_elements<T>(random_normal(size_t(tokens * C), rng));
  // dy's columns of part i as a dense [tokens, widths[i]] array.
  auto columns = [&](const std::vector<T>& m, int i) {
    const int64_t first = i == 0 ? 0 : i == 1 ? widths[0] : widths[0] + widths[1];
    std::vector<T> out(size_t(tokens * widths[size_t(i)]));
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t c = 0; c < widths[size_t(i)]; ++c)
        out[size_t(t * widths[size_t(i)] + c)] = m[size_t(t * C + first + c)];
    return out;
  };
  const auto gx = mem.upload(x), gw = mem.upload(w), gdy = mem.upload(dy);
  const auto gcu = mem.upload(cu_seqlens);
  const int64_t nseq = int64_t(cu_seqlens.size()) - 1;
  auto workspace =
      mem.template poisoned<char>(causal_conv1d_cuda_dw_workspace_bytes(tokens, C, kernel));

  auto gy = mem.template poisoned<T>(size_t(tokens * C));
  auto gdx = mem.template poisoned<T>(x.size());
  auto gdw = mem.upload(std::vector<float>(size_t(C * kernel), 0.0f));
  causal_conv1d_silu_cuda_forward<T>(gx.data(), tokens, C, gw.data(), kernel, gcu.data(), nseq,
                                     gy.data(), ldx, mem.target());
  causal_conv1d_silu_cuda_backward<T>(gx.data(), tokens, C, gw.data(), kernel, gcu.data(), nseq,
                                      gdy.data(), gdx.data(), gdw.data(), workspace.data(), ldx,
                                      mem.target());
  const std::vector<T> y = mem.download(gy);

  auto y0 = mem.template poisoned<T>(size_t(tokens * widths[0]));
  auto y1 = mem.template poisoned<T>(size_t(tokens * widths[1]));
  auto y2 = mem.template poisoned<T>(size_t(tokens * widths[2]));
  const auto d0 = mem.upload(columns(dy, 0)), d1 = mem.upload(columns(dy, 1)),
             d2 = mem.upload(columns(dy, 2));
  auto sdx = mem.template poisoned<T>(x.size());
  auto sdw = mem.upload(std::vector<float>(size_t(C * kernel), 0.0f));
  causal_conv1d_silu_cuda_forward<T>(
      gx.data(), tokens, C, gw.data(), kernel, gcu.data(), nseq,
      ConvColumns<T*>::split3(y0.data(), widths[0], y1.data(), widths[1], y2.data(), widths[2]),
      ldx, mem.target());
  causal_conv1d_silu_cuda_backward<T>(
      gx.data(), tokens, C, gw.data(), kernel, gcu.data(), nseq,
      ConvColumns<const T*>::split3(d0.data(), widths[0], d1.data(), widths[1], d2.data(),
                                    widths[2]),
      sdx.data(), sdw.data(), workspace.data(), ldx, mem.target());
  expect_same_bits("y part 0", mem.download(y0), columns(y, 0));
  expect_same_bits("y part 1", mem.download(y1), columns(y, 1));
  expect_same_bits("y part 2", mem.download(y2), columns(y, 2));
  expect_same_bits("dx", dense_rows(mem.download(sdx), tokens, C, ldx),
            dense_rows(mem.download(gdx), tokens, C, ldx));
  expect_same_bits("dw", mem.download(sdw), mem.download(gdw));
}

}  // namespace deltatune::testing_util
