// Inputs and the float64 CPU reference for the tests of the gated delta rule's CUDA kernels
// (tests/cuda on the GPU, tests/cuda_emulated on the CPU). The reference is the CPU chunked form
// (src/ops/cpu/delta_rule_chunked.cpp), itself checked against the recurrent form to 1e-10 and
// against finite differences in tests/ops/delta_rule_test.cpp.
#pragma once

#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "cuda/elements.h"
#include "ops/delta_rule.h"
#include "test_util.h"

namespace deltatune::testing_util {

struct DeltaRuleCase {
  DeltaRuleShape shape;
  std::vector<int64_t> cu_seqlens;
  // Inputs; initial_state / d_final_state empty = not given.
  std::vector<double> q, k, v, g, beta, initial_state, d_out, d_final_state;
};

// Every output of a forward + backward.
struct DeltaRuleResult {
  std::vector<double> out, final_state, dq, dk, dv, dg, dbeta, d_initial_state;
};

inline size_t delta_rule_state_elements(const DeltaRuleCase& c) {
  return (c.cu_seqlens.size() - 1) * size_t(c.shape.num_v_heads) * c.shape.k_dim * c.shape.v_dim;
}

// Inputs as the model makes them (as in tests/ops/delta_rule_test.cpp): q, k rows L2-normalised,
// q scaled by dk^-1/2; beta = sigmoid(.); g = -exp(A_log) softplus(.) with A_log per head so that
// some heads forget within a few tokens and others remember across many chunks.
inline DeltaRuleCase make_delta_rule_case(int Hk, int Hv, int dk, int dv,
                                          std::vector<int64_t> cu_seqlens, bool initial_state,
                                          bool d_final_state, uint64_t seed) {
  Rng rng(seed);
  DeltaRuleCase c;
  c.shape = {cu_seqlens.back(), Hk, Hv, dk, dv};
  c.cu_seqlens = std::move(cu_seqlens);
  const int64_t T = c.shape.tokens;
  auto unit_rows = [&](double scale) {
    std::vector<double> x(size_t(T * Hk * dk));
    for (size_t r = 0; r < x.size(); r += size_t(dk)) {
      double norm = 0;
      for (int i = 0; i < dk; ++i) norm += (x[r + i] = rng.normal()) * x[r + i];
      for (int i = 0; i < dk; ++i) x[r + i] *= scale / std::sqrt(norm);
    }
    return x;
  };
  c.q = unit_rows(1 / std::sqrt(double(dk)));
  c.k = unit_rows(1);
  c.v = random_normal(size_t(T * Hv * dv), rng);
  c.g.resize(size_t(T * Hv));
  c.beta.resize(size_t(T * Hv));
  for (int64_t t = 0; t < T; ++t)
    for (int h = 0; h < Hv; ++h) {
      const double a_log = (h % 3 == 0) ? 0.0 : (h % 3 == 1) ? -3.0 : -6.0;
      c.g[size_t(t * Hv + h)] = -std::exp(a_log + 0.5 * rng.normal()) * std::log1p(std::exp(rng.normal()));
      c.beta[size_t(t * Hv + h)] = 1 / (1 + std::exp(-rng.normal()));
    }
  if (initial_state) c.initial_state = random_normal(delta_rule_state_elements(c), rng, 0.5);
  c.d_out = random_normal(size_t(T * Hv * dv), rng);
  if (d_final_state) c.d_final_state = random_normal(delta_rule_state_elements(c), rng);
  return c;
}

// The case with every input rounded to the element type the CUDA call receives (T for q, k, v,
// d_out; float for the rest): the reference then computes on exactly the GPU's inputs.
template <class T>
DeltaRuleCase rounded_to(const DeltaRuleCase& c) {
  DeltaRuleCase r = c;
  for (auto* x : {&r.q, &r.k, &r.v, &r.d_out}) *x = to_doubles(to_elements<T>(*x));
  for (auto* x : {&r.g, &r.beta, &r.initial_state, &r.d_final_state})
    *x = to_doubles(to_elements<float>(*x));
  return r;
}

template <class T>
const T* data_or_null(const std::vector<T>& x) {
  return x.empty() ? nullptr : x.data();
}

// The CPU chunked form in float64: forward and backward. d_initial_state is always asked for.
inline DeltaRuleResult delta_rule_reference(const DeltaRuleCase& c) {
  DeltaRuleResult r;
  const auto& s = c.shape;
  r.out.resize(size_t(s.tokens * s.num_v_heads * s.v_dim));
  r.final_state.resize(delta_rule_state_elements(c));
  gated_delta_rule_chunked_forward<double>(s, c.cu_seqlens, c.q.data(), c.k.data(), c.v.data(),
                                           c.g.data(), c.beta.data(), data_or_null(c.initial_state),
                                           r.out.data(), r.final_state.data());
  r.dq.resize(size_t(s.tokens * s.num_k_heads * s.k_dim));
  r.dk.resize(r.dq.size());
  r.dv.resize(r.out.size());
  r.dg.resize(size_t(s.tokens * s.num_v_heads));
  r.dbeta.resize(r.dg.size());
  r.d_initial_state.resize(r.final_state.size());
  gated_delta_rule_chunked_backward<double>(
      s, c.cu_seqlens, c.q.data(), c.k.data(), c.v.data(), c.g.data(), c.beta.data(),
      data_or_null(c.initial_state), c.d_out.data(), data_or_null(c.d_final_state), r.dq.data(),
      r.dk.data(), r.dv.data(), r.dg.data(), r.dbeta.data(), r.d_initial_state.data());
  return r;
}

inline std::string describe_case(const DeltaRuleCase& c, const char* type) {
  std::string cu;
  for (size_t i = 0; i < c.cu_seqlens.size(); ++i) {
    if (i) cu += ',';
    cu += std::to_string(c.cu_seqlens[i]);
  }
  return str_cat(type, " Hk=", c.shape.num_k_heads, " Hv=", c.shape.num_v_heads,
                 " dk=", c.shape.k_dim, " dv=", c.shape.v_dim, " cu_seqlens={", cu,
                 "} initial_state=", c.initial_state.empty() ? "no" : "yes",
                 " d_final_state=", c.d_final_state.empty() ? "no" : "yes");
}

// The worst relative error (max |got − want| / max |want|) of each output over a test, printed at
// its end so the log records the margins.
struct DeltaRuleWorst {
  std::string name;
  double out = 0, final_state = 0, dq = 0, dk = 0, dv = 0, dg = 0, dbeta = 0, d_initial_state = 0;
  ~DeltaRuleWorst() {
    std::printf(
        "[ measured ] %s: out %.2e final_state %.2e dq %.2e dk %.2e dv %.2e dg %.2e dbeta %.2e "
        "d_initial_state %.2e\n",
        name.c_str(), out, final_state, dq, dk, dv, dg, dbeta, d_initial_state);
  }
};

inline void expect_delta_rule_close(const DeltaRuleResult& got, const DeltaRuleResult& want,
                                    double tolerance, DeltaRuleWorst& worst) {
  auto check = [&](const char* what, const std::vector<double>& a, const std::vector<double>& b,
                   double& w) {
    ASSERT_EQ(a.size(), b.size()) << what;
    if (b.empty()) return;
    const RelativeError e = relative_error(a.data(), b.data(), b.size());
    w = std::max(w, e.value);
    EXPECT_LE(e.value, tolerance) << what << ": " << describe(e);
  };
  check("out", got.out, want.out, worst.out);
  check("final_state", got.final_state, want.final_state, worst.final_state);
  check("dq", got.dq, want.dq, worst.dq);
  check("dk", got.dk, want.dk, worst.dk);
  check("dv", got.dv, want.dv, worst.dv);
  check("dg", got.dg, want.dg, worst.dg);
  check("dbeta", got.dbeta, want.dbeta, worst.dbeta);
  check("d_initial_state", got.d_initial_state, want.d_initial_state, worst.d_initial_state);
}

}  // namespace deltatune::testing_util
