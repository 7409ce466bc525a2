// Checks of the CUDA chunked cross-entropy (ops/loss_cuda.h) against the float64 CPU reference
// (ops/loss.h, itself checked by finite differences in tests/ops/loss_test.cpp), on random hidden
// states and lm_head rows rounded to the kernels' element type, with ignored (-100) targets.
// Used by tests/cuda (GPU) and tests/cuda_emulated (host emulation).
#pragma once

#include <cmath>

#include "core/rng.h"
#include "core/tensor.h"
#include "cuda/op_memory.h"
#include "ops/loss.h"
#include "ops/loss_cuda.h"
#include "ops/matmul_cuda.h"

namespace deltatune::testing_util {

struct LossShape {
  int64_t tokens, dim, vocab, panel_rows;
};

template <class T, class Memory>
void check_cross_entropy(Memory& mem, const LossShape& s, uint64_t seed, double tolerance,
                         WorstErrors& worst) {
  SCOPED_TRACE(str_cat("tokens=", s.tokens, " dim=", s.dim, " vocab=", s.vocab,
                       " panel_rows=", s.panel_rows));
  Rng rng(seed);
  const auto hidden = rounded<T>(random_normal(size_t(s.tokens * s.dim), rng));
  // Logits of standard deviation ~3: a peaked softmax whose maximum moves between panels.
  HostTensor w(DType::F64, {s.vocab, s.dim});
  const auto w_values =
      rounded<T>(random_normal(size_t(s.vocab * s.dim), rng, 3 / std::sqrt(double(s.dim))));
  std::copy(w_values.begin(), w_values.end(), w.ptr<double>());
  std::vector<int64_t> targets(size_t(s.tokens));
  for (auto& t : targets) t = rng.uniform() < 0.2 ? -100 : int64_t(rng.uniform() * double(s.vocab));
  const double scale = 1.0 / double(s.tokens);
  std::vector<double> d_hidden(hidden.size());
  const double loss = cross_entropy_forward_backward<double>(
      hidden.data(), s.tokens, w.view(), targets.data(), scale, d_hidden.data());

  const auto gh = mem.upload(to_elements<T>(hidden)), gw = mem.upload(to_elements<T>(w_values));
  const auto gtargets = mem.upload(targets);
  auto gloss = mem.template poisoned<double>(1), gdh = mem.template poisoned<T>(hidden.size());
  const cuda::Blas blas(mem.target());
  auto workspace = mem.template poisoned<char>(
      cross_entropy_cuda_workspace_bytes<T>(s.tokens, s.dim, s.panel_rows, true));
  cross_entropy_cuda_forward_backward<T>(gh.data(), s.tokens, gw.data(), s.vocab, s.dim,
                                         gtargets.data(), scale, gloss.data(), gdh.data(),
                                         workspace.data(), s.panel_rows, blas);
  expect_close("loss", mem.download(gloss), {loss}, tolerance, worst);
  expect_close("loss d_hidden", mem.download(gdh), d_hidden, tolerance, worst);

  // The loss alone (no gradient, a smaller workspace) gives the same sum.
  auto loss_only = mem.template poisoned<char>(
      cross_entropy_cuda_workspace_bytes<T>(s.tokens, s.dim, s.panel_rows, false));
  cross_entropy_cuda_forward_backward<T>(gh.data(), s.tokens, gw.data(), s.vocab, s.dim,
                                         gtargets.data(), scale, gloss.data(), nullptr,
                                         loss_only.data(), s.panel_rows, blas);
  expect_close("loss without gradient", mem.download(gloss), {loss}, tolerance, worst);
}

}  // namespace deltatune::testing_util
