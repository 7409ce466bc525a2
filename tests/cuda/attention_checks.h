// Checks of the CUDA causal GQA attention (ops/attention_cuda.h) against the float64 CPU reference
// (ops/attention.h, itself checked by finite differences in tests/ops/attention_test.cpp) on packed
// sequences: a score reaching across a sequence boundary or past the diagonal shows as an error.
// q rows are wider than the heads (q sits beside its gate, as in the model). Used by tests/cuda
// (GPU) and tests/cuda_emulated (host emulation).
#pragma once

#include <algorithm>
#include <cmath>

#include "core/rng.h"
#include "cuda/op_memory.h"
#include "ops/attention.h"
#include "ops/attention_cuda.h"

namespace deltatune::testing_util {

struct AttentionCase {
  std::vector<int64_t> cu_seqlens;
  int heads, kv_heads, head_dim;
};

inline std::string describe(const AttentionCase& c) {
  std::string cu;
  for (size_t i = 0; i < c.cu_seqlens.size(); ++i) {
    if (i) cu += ',';
    cu += std::to_string(c.cu_seqlens[i]);
  }
  return str_cat("cu_seqlens={", cu, "} heads=", c.heads, " kv_heads=", c.kv_heads,
                 " head_dim=", c.head_dim);
}

template <class T, class Memory>
void check_attention(Memory& mem, const AttentionCase& c, uint64_t seed, double tolerance,
                     WorstErrors& worst) {
  SCOPED_TRACE(describe(c));
  Rng rng(seed);
  const int64_t T_ = c.cu_seqlens.back();
  const int d = c.head_dim;
  const AttentionShape shape{T_, c.heads, c.kv_heads, d, 1 / std::sqrt(double(d))};
  const int64_t ldq = 2 * int64_t(c.heads) * d, ldkv = int64_t(c.kv_heads) * d;
  const int64_t ldo = int64_t(c.heads) * d;
  // q and k of unit-variance entries after the model's q/k norms: scores of standard deviation 1
  // after the 1/sqrt(d) scale, scaled up here to 3 so that softmax rows are peaked.
  const auto q = rounded<T>(random_normal(size_t(T_ * ldq), rng, 3.0));
  const auto k = rounded<T>(random_normal(size_t(T_ * ldkv), rng));
  const auto v = rounded<T>(random_normal(size_t(T_ * ldkv), rng));
  const auto d_out = rounded<T>(random_normal(size_t(T_ * ldo), rng));
  std::vector<double> out(size_t(T_ * ldo)), lse(size_t(T_ * c.heads));
  attention_forward<double>(shape, c.cu_seqlens, q.data(), ldq, k.data(), v.data(), ldkv,
                            out.data(), lse.data());
  // The backward sees the forward output as the kernels' backward does: rounded to T.
  const auto out_rounded = rounded<T>(out);
  std::vector<double> dq(q.size()), dk(k.size()), dv(v.size());
  attention_backward<double>(shape, c.cu_seqlens, q.data(), ldq, k.data(), v.data(), ldkv,
                             out_rounded.data(), lse.data(), d_out.data(), dq.data(), dk.data(),
                             dv.data());

  int64_t longest = 0;
  for (size_t s = 0; s + 1 < c.cu_seqlens.size(); ++s)
    longest = std::max(longest, c.cu_seqlens[s + 1] - c.cu_seqlens[s]);
  const int64_t nseq = int64_t(c.cu_seqlens.size()) - 1;
  const auto gcu = mem.upload(c.cu_seqlens);
  const auto gq = mem.upload(to_elements<T>(q)), gk = mem.upload(to_elements<T>(k));
  const auto gv = mem.upload(to_elements<T>(v)), gdo = mem.upload(to_elements<T>(d_out));
  auto gout = mem.template poisoned<T>(out.size());
  auto glse = mem.template poisoned<float>(lse.size());
  auto gdq = mem.template poisoned<T>(dq.size()), gdk = mem.template poisoned<T>(dk.size());
  auto gdv = mem.template poisoned<T>(dv.size());
  auto workspace = mem.template poisoned<char>(attention_cuda_backward_workspace_bytes(shape));
  attention_cuda_forward<T>(shape, gcu.data(), nseq, longest, gq.data(), ldq, gk.data(), gv.data(),
                            ldkv, gout.data(), glse.data(), mem.target());
  attention_cuda_backward<T>(shape, gcu.data(), nseq, longest, gq.data(), ldq, gk.data(), gv.data(),
                             ldkv, gout.data(), glse.data(), gdo.data(), gdq.data(), gdk.data(),
                             gdv.data(), workspace.data(), mem.target());
  expect_close("attention out", mem.download(gout), out, tolerance, worst);
  expect_close("attention lse", mem.download(glse), lse, tolerance, worst);
  expect_close("attention dq", dense_rows(mem.download(gdq), T_, ldo, ldq),
               dense_rows(dq, T_, ldo, ldq), tolerance, worst);
  expect_close("attention dk", mem.download(gdk), dk, tolerance, worst);
  expect_close("attention dv", mem.download(gdv), dv, tolerance, worst);
}

}  // namespace deltatune::testing_util
