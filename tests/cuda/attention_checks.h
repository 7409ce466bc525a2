// Checks of the CUDA attention (ops/attention_cuda.h) against the float64 CPU reference
// (ops/attention.h) on random inputs: packs of several sequences (one-token ones included), GQA,
// head dims that are and are not multiples of 16. The backward runs from the kernel's own out and
// lse, as the model does. Used by tests/cuda (GPU) and tests/cuda_emulated (host emulation).
#pragma once

#include <cmath>
#include <numeric>

#include "core/rng.h"
#include "cuda/op_memory.h"
#include "ops/attention.h"
#include "ops/attention_cuda.h"

namespace deltatune::testing_util {

struct AttentionCase {
  std::vector<int64_t> lengths;  // of the packed sequences
  int heads, kv_heads, head_dim;
};

inline std::string describe_case(const AttentionCase& c) {
  std::string lengths;
  for (int64_t n : c.lengths) lengths += str_cat(lengths.empty() ? "" : ",", n);
  return str_cat("lengths={", lengths, "} heads=", c.heads, " kv_heads=", c.kv_heads,
                 " head_dim=", c.head_dim);
}

template <class T, class Memory>
void check_attention(Memory& mem, const AttentionCase& c, uint64_t seed, double tolerance,
                     WorstErrors& worst) {
  SCOPED_TRACE(describe_case(c));
  Rng rng(seed);
  std::vector<int64_t> cu{0};
  for (int64_t n : c.lengths) cu.push_back(cu.back() + n);
  const int64_t tokens = cu.back();
  const int64_t ldq = int64_t(c.heads) * c.head_dim, ldkv = int64_t(c.kv_heads) * c.head_dim;
  // Scores of a few units: softmaxes neither uniform nor one-hot.
  const auto q = rounded<T>(random_normal(size_t(tokens * ldq), rng, 2.0));
  const auto k = rounded<T>(random_normal(size_t(tokens * ldkv), rng, 2.0));
  const auto v = rounded<T>(random_normal(size_t(tokens * ldkv), rng));
  const auto d_out = rounded<T>(random_normal(size_t(tokens * ldq), rng));
  const AttentionShape shape{tokens, c.heads, c.kv_heads, c.head_dim, 1.0 / std::sqrt(double(c.head_dim))};

  std::vector<double> out(size_t(tokens * ldq)), lse(size_t(tokens * c.heads));
  std::vector<double> dq(q.size()), dk(k.size()), dv(v.size());
  attention_forward<double>(shape, cu, q.data(), ldq, k.data(), v.data(), ldkv, out.data(), lse.data());
  attention_backward<double>(shape, cu, q.data(), ldq, k.data(), v.data(), ldkv, out.data(), lse.data(),
                             d_out.data(), dq.data(), dk.data(), dv.data());

  const auto gq = mem.upload(to_elements<T>(q)), gk = mem.upload(to_elements<T>(k));
  const auto gv = mem.upload(to_elements<T>(v)), gdo = mem.upload(to_elements<T>(d_out));
  const auto gcu = mem.upload(cu);
  auto gout = mem.template poisoned<T>(out.size());
  auto glse = mem.template poisoned<float>(lse.size());
  auto gdq = mem.template poisoned<T>(dq.size()), gdk = mem.template poisoned<T>(dk.size());
  auto gdv = mem.template poisoned<T>(dv.size());
  auto gws = mem.template poisoned<char>(attention_cuda_backward_workspace_bytes(tokens, c.heads));
  const int64_t nseq = int64_t(c.lengths.size());
  attention_cuda_forward<T>(shape, gcu.data(), nseq, gq.data(), ldq, gk.data(), gv.data(), ldkv,
                            gout.data(), glse.data(), mem.target());
  attention_cuda_backward<T>(shape, gcu.data(), nseq, gq.data(), ldq, gk.data(), gv.data(), ldkv,
                             gout.data(), glse.data(), gdo.data(), gdq.data(), gdk.data(),
                             gdv.data(), gws.data(), mem.target());
  expect_close("attention out", mem.download(gout), out, tolerance, worst);
  expect_close("attention lse", mem.download(glse), lse, tolerance, worst);
  expect_close("attention dq", mem.download(gdq), dq, tolerance, worst);
  expect_close("attention dk", mem.download(gdk), dk, tolerance, worst);
  expect_close("attention dv", mem.download(gdv), dv, tolerance, worst);
}

}  // namespace deltatune::testing_util
