// The gated delta rule (src/ops/delta_rule.h): the chunked form against the recurrent reference,
// forward and backward, and both backwards against central finite differences of their forwards.
//
// Tolerances, from float64 precision (eps ≈ 1.1e-16) unless stated:
//   chunked vs recurrent: 1e-10 of the largest magnitude of the reference. Both are exact
//     rewritings of one function; their rounding differs by a few eps per term of sums over at
//     most a chunk of tokens and dk·dv state entries (measured ~1e-14). A wrong term shows up at
//     ~1e-3 or more.
//   finite differences: with h = 1e-6 the truncation error h²·|f'''|/6 is ~1e-13 and the roundoff
//     eps·Σ|terms of L|/h is ~3e-9 (L sums a few hundred products of size ~1). Each element's error
//     is taken relative to max(|its gradient|, 1e-2 · the largest gradient element of the test,
//     ≈ 0.1), so roundoff stays below ~5e-8; we assert 1e-6.
//   float32 chunked vs float64 recurrent: float32 eps ≈ 6e-8 grows through sums of up to 64 terms
//     per chunk and through the triangular solve; 1e-4 of the largest magnitude leaves a wide
//     margin while still catching any mixed-precision slip (bfloat16 rounding is ~4e-3).
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "ops/delta_rule.h"
#include "test_util.h"

namespace deltatune {
namespace {

using testing_util::finite_difference_check;
using testing_util::max_abs;
using testing_util::random_normal;
using testing_util::relative_error;

constexpr double kChunkedVsRecurrentTolerance = 1e-10;
constexpr double kFiniteDifferenceStep = 1e-6;
constexpr double kFiniteDifferenceFloor = 1e-2;  // of the largest gradient element
constexpr double kFiniteDifferenceTolerance = 1e-6;
constexpr double kFloat32Tolerance = 1e-4;

const std::vector<int64_t> kLengths = {1, 2, 63, 64, 65, 130, 1000};
// Packs: chunk boundaries restart at each sequence; one pack has an empty sequence and lengths that
// are exact multiples of the chunk.
const std::vector<std::vector<int64_t>> kPacks = {{0, 5, 69, 200, 330}, {0, 64, 64, 192, 193}};

struct Heads {
  int k, v;
};
const Heads kHeadConfigs[] = {{2, 4}, {3, 3}};  // value heads sharing a key head, and Hv == Hk

struct Case {
  DeltaRuleShape shape;
  std::vector<int64_t> cu_seqlens;
  std::vector<double> q, k, v, g, beta, initial_state;  // initial_state empty: start from zero
};

// Inputs as the model makes them (spec/qwen35.md, Gated DeltaNet): q, k rows L2-normalised, q
// scaled by dk^-1/2; beta = sigmoid(b); g = -exp(A_log_h) softplus(a). A_log differs per head so
// that some heads forget within a few tokens (g down to about -10) and others remember across many
// chunks.
Case make_case(Heads heads, int dk, int dv, std::vector<int64_t> cu_seqlens,
               bool with_initial_state, uint64_t seed) {
  Rng rng(seed);
  Case c;
  c.shape = {cu_seqlens.back(), heads.k, heads.v, dk, dv};
  c.cu_seqlens = std::move(cu_seqlens);
  const int64_t T = c.shape.tokens;
  auto unit_rows = [&](double scale) {
    std::vector<double> x(size_t(T * heads.k * dk));
    for (size_t r = 0; r < x.size(); r += size_t(dk)) {
      double norm = 0;
      for (int i = 0; i < dk; ++i) norm += (x[r + i] = rng.normal()) * x[r + i];
      for (int i = 0; i < dk; ++i) x[r + i] *= scale / std::sqrt(norm);
    }
    return x;
  };
  c.q = unit_rows(1 / std::sqrt(double(dk)));
  c.k = unit_rows(1);
  c.v = random_normal(size_t(T * heads.v * dv), rng);
  c.g.resize(size_t(T * heads.v));
  c.beta.resize(size_t(T * heads.v));
  for (int64_t t = 0; t < T; ++t) {
    for (int h = 0; h < heads.v; ++h) {
      const double a_log = (h % 3 == 0) ? 0.0 : (h % 3 == 1) ? -3.0 : -6.0;
      const double a = rng.normal();
      c.g[size_t(t * heads.v + h)] =
          -std::exp(a_log + 0.5 * rng.normal()) * std::log1p(std::exp(a));
      c.beta[size_t(t * heads.v + h)] = 1 / (1 + std::exp(-rng.normal()));
    }
  }
  const int64_t nseq = int64_t(c.cu_seqlens.size()) - 1;
  if (with_initial_state)
    c.initial_state = random_normal(size_t(nseq * heads.v * dk * dv), rng, 0.5);
  return c;
}

size_t state_elements(const Case& c) {
  return size_t((c.cu_seqlens.size() - 1) * c.shape.num_v_heads * c.shape.k_dim * c.shape.v_dim);
}

template <class T>
std::vector<T> as(const std::vector<double>& x) {
  return std::vector<T>(x.begin(), x.end());
}

template <class T>
const T* or_null(const std::vector<T>& x) {
  return x.empty() ? nullptr : x.data();
}
template <class T>
T* or_null(std::vector<T>& x) {
  return x.empty() ? nullptr : x.data();
}

enum class Form { kRecurrent, kChunked };

template <class T>
struct Outputs {
  std::vector<T> out, final_state;
};

template <class T>
Outputs<T> run_forward(const Case& c, Form form, int chunk = kDeltaRuleChunk) {
  const auto q = as<T>(c.q), k = as<T>(c.k), v = as<T>(c.v), g = as<T>(c.g), beta = as<T>(c.beta);
  const auto initial_state = as<T>(c.initial_state);
  Outputs<T> o;
  o.out.resize(size_t(c.shape.tokens * c.shape.num_v_heads * c.shape.v_dim));
  o.final_state.resize(state_elements(c));
  if (form == Form::kRecurrent)
    gated_delta_rule_recurrent_forward<T>(c.shape, c.cu_seqlens, q.data(), k.data(), v.data(),
                                          g.data(), beta.data(), or_null(initial_state),
                                          o.out.data(), o.final_state.data());
  else
    gated_delta_rule_chunked_forward<T>(c.shape, c.cu_seqlens, q.data(), k.data(), v.data(),
                                        g.data(), beta.data(), or_null(initial_state), o.out.data(),
                                        o.final_state.data(), chunk);
  return o;
}

template <class T>
struct Grads {
  std::vector<T> dq, dk, dv, dg, dbeta, d_initial_state;
};

// d_final_state empty: not given (zero). The gradient of the initial state is asked for whenever
// `want_d_initial_state`, also when the forward starts from zero.
template <class T>
Grads<T> run_backward(const Case& c, const std::vector<double>& d_out,
                      const std::vector<double>& d_final_state, Form form,
                      int chunk = kDeltaRuleChunk, bool want_d_initial_state = true) {
  const auto q = as<T>(c.q), k = as<T>(c.k), v = as<T>(c.v), g = as<T>(c.g), beta = as<T>(c.beta);
  const auto initial_state = as<T>(c.initial_state);
  const auto dout = as<T>(d_out), dfinal = as<T>(d_final_state);
  const int64_t tokens = c.shape.tokens;
  Grads<T> r;
  r.dq.resize(size_t(tokens * c.shape.num_k_heads * c.shape.k_dim));
  r.dk.resize(r.dq.size());
  r.dv.resize(size_t(tokens * c.shape.num_v_heads * c.shape.v_dim));
  r.dg.resize(size_t(tokens * c.shape.num_v_heads));
  r.dbeta.resize(r.dg.size());
  if (want_d_initial_state) r.d_initial_state.resize(state_elements(c));
  // Outputs are overwritten, not accumulated: start them from garbage to prove it.
  for (auto* x : {&r.dq, &r.dk, &r.dv, &r.dg, &r.dbeta, &r.d_initial_state})
    std::fill(x->begin(), x->end(), T(1e30));
  if (form == Form::kRecurrent)
    gated_delta_rule_recurrent_backward<T>(
        c.shape, c.cu_seqlens, q.data(), k.data(), v.data(), g.data(), beta.data(),
        or_null(initial_state), dout.data(), or_null(dfinal), r.dq.data(), r.dk.data(), r.dv.data(),
        r.dg.data(), r.dbeta.data(), or_null(r.d_initial_state));
  else
    gated_delta_rule_chunked_backward<T>(
        c.shape, c.cu_seqlens, q.data(), k.data(), v.data(), g.data(), beta.data(),
        or_null(initial_state), dout.data(), or_null(dfinal), r.dq.data(), r.dk.data(), r.dv.data(),
        r.dg.data(), r.dbeta.data(), or_null(r.d_initial_state), chunk);
  return r;
}

std::string describe(const char* what, const testing_util::RelativeError& e) {
  char text[200];
  std::snprintf(text, sizeof text, "%s: max rel error %.3e at index %zu: got %.15e, expected %.15e",
                what, e.value, e.index, e.got, e.want);
  return text;
}

// Worst errors seen by each test, printed once at its end so the log records the margins.
struct WorstError {
  const char* name;
  double value = 0;
  ~WorstError() { std::printf("[ measured ] %s: worst %.3e\n", name, value); }
};

template <class A>
void expect_close(const char* what, const std::vector<A>& got, const std::vector<double>& want,
                  double tolerance, WorstError& worst) {
  ASSERT_EQ(got.size(), want.size()) << what;
  if (want.empty()) return;
  const auto e = relative_error(got.data(), want.data(), want.size());
  worst.value = std::max(worst.value, e.value);
  EXPECT_LE(e.value, tolerance) << describe(what, e);
}

void expect_forward_close(const Outputs<double>& got, const Outputs<double>& want, double tolerance,
                          WorstError& worst) {
  expect_close("out", got.out, want.out, tolerance, worst);
  expect_close("final_state", got.final_state, want.final_state, tolerance, worst);
}

template <class A>
void expect_grads_close(const Grads<A>& got, const Grads<double>& want, double tolerance,
                        WorstError& worst) {
  expect_close("dq", got.dq, want.dq, tolerance, worst);
  expect_close("dk", got.dk, want.dk, tolerance, worst);
  expect_close("dv", got.dv, want.dv, tolerance, worst);
  expect_close("dg", got.dg, want.dg, tolerance, worst);
  expect_close("dbeta", got.dbeta, want.dbeta, tolerance, worst);
  expect_close("d_initial_state", got.d_initial_state, want.d_initial_state, tolerance, worst);
}

std::string label(Heads heads, const std::vector<int64_t>& cu_seqlens, bool initial, int chunk) {
  std::string s =
      "Hk=" + std::to_string(heads.k) + " Hv=" + std::to_string(heads.v) + " cu_seqlens={";
  for (size_t i = 0; i < cu_seqlens.size(); ++i)
    s += (i ? "," : "") + std::to_string(cu_seqlens[i]);
  return s + "} initial_state=" + (initial ? "yes" : "no") + " chunk=" + std::to_string(chunk);
}

// Every sequence layout the chunked-vs-recurrent tests cover: single sequences of each length with
// the default chunk, and the packs with the default chunk and two that do not divide them.
struct Layout {
  std::vector<int64_t> cu_seqlens;
  int chunk;
};
std::vector<Layout> all_layouts() {
  std::vector<Layout> layouts;
  for (int64_t len : kLengths) layouts.push_back({{0, len}, kDeltaRuleChunk});
  for (const auto& pack : kPacks)
    for (int chunk : {kDeltaRuleChunk, 16, 7}) layouts.push_back({pack, chunk});
  return layouts;
}

TEST(GatedDeltaRule, ChunkedForwardMatchesRecurrent) {
  WorstError worst{"chunked vs recurrent forward (float64)"};
  uint64_t seed = 1;
  for (Heads heads : kHeadConfigs)
    for (const Layout& layout : all_layouts())
      for (bool initial : {false, true}) {
        SCOPED_TRACE(label(heads, layout.cu_seqlens, initial, layout.chunk));
        const Case c = make_case(heads, 8, 6, layout.cu_seqlens, initial, seed++);
        expect_forward_close(run_forward<double>(c, Form::kChunked, layout.chunk),
                             run_forward<double>(c, Form::kRecurrent), kChunkedVsRecurrentTolerance,
                             worst);
      }
}

// Model head dims (dk = dv = 128): nearly orthogonal keys, a different regime for the UT transform.
TEST(GatedDeltaRule, ChunkedMatchesRecurrentAtModelHeadDims) {
  WorstError worst{"chunked vs recurrent, dk=dv=128 (float64)"};
  const Case c = make_case({1, 2}, 128, 128, {0, 200}, true, 7);
  expect_forward_close(run_forward<double>(c, Form::kChunked),
                       run_forward<double>(c, Form::kRecurrent), kChunkedVsRecurrentTolerance,
                       worst);
  Rng rng(8);
  const auto d_out = random_normal(size_t(200 * 2 * 128), rng);
  const auto d_final = random_normal(state_elements(c), rng);
  expect_grads_close(run_backward<double>(c, d_out, d_final, Form::kChunked),
                     run_backward<double>(c, d_out, d_final, Form::kRecurrent),
                     kChunkedVsRecurrentTolerance, worst);
}

TEST(GatedDeltaRule, ChunkedBackwardMatchesRecurrent) {
  WorstError worst{"chunked vs recurrent backward (float64)"};
  uint64_t seed = 100;
  for (Heads heads : kHeadConfigs)
    for (const Layout& layout : all_layouts())
      for (bool initial : {false, true})
        for (bool with_d_final : {false, true}) {
          SCOPED_TRACE(label(heads, layout.cu_seqlens, initial, layout.chunk) +
                       " d_final_state=" + (with_d_final ? "yes" : "no"));
          const Case c = make_case(heads, 8, 6, layout.cu_seqlens, initial, seed++);
          Rng rng(seed++);
          const auto d_out = random_normal(size_t(c.shape.tokens * heads.v * 6), rng);
          const auto d_final =
              with_d_final ? random_normal(state_elements(c), rng) : std::vector<double>{};
          expect_grads_close(run_backward<double>(c, d_out, d_final, Form::kChunked, layout.chunk),
                             run_backward<double>(c, d_out, d_final, Form::kRecurrent),
                             kChunkedVsRecurrentTolerance, worst);
        }
}

// The backward leaves d_initial_state alone when it is not wanted and still gives the rest.
TEST(GatedDeltaRule, BackwardWithoutInitialStateGradient) {
  WorstError worst{"backward without d_initial_state"};
  const Case c = make_case({2, 4}, 8, 6, {0, 5, 69, 200}, true, 300);
  Rng rng(301);
  const auto d_out = random_normal(size_t(200 * 4 * 6), rng);
  const auto full = run_backward<double>(c, d_out, {}, Form::kRecurrent);
  for (Form form : {Form::kRecurrent, Form::kChunked}) {
    auto partial = run_backward<double>(c, d_out, {}, form, kDeltaRuleChunk, false);
    partial.d_initial_state.clear();
    Grads<double> want = full;
    want.d_initial_state.clear();
    expect_grads_close(partial, want, kChunkedVsRecurrentTolerance, worst);
  }
}

// Thousands of forwards of a few microseconds each: on one thread, so that waking a team per call
// (slow on a busy shared machine) does not dominate. Restores the thread count on exit.
struct SingleThreaded {
  int saved = omp_get_max_threads();
  SingleThreaded() { omp_set_num_threads(1); }
  ~SingleThreaded() { omp_set_num_threads(saved); }
};

// L = Σ out·R + Σ final_state·R2, so dL/d_out = R and dL/d_final_state = R2.
void check_against_finite_differences(Form form, int chunk, Heads heads,
                                      const std::vector<int64_t>& cu_seqlens, uint64_t seed,
                                      WorstError& worst) {
  Case c = make_case(heads, 8, 6, cu_seqlens, true, seed);
  Rng rng(seed + 1);
  const auto R = random_normal(size_t(c.shape.tokens * heads.v * 6), rng);
  const auto R2 = random_normal(state_elements(c), rng);
  auto loss = [&] {
    const auto o = run_forward<double>(c, form, chunk);
    double L = 0;
    for (size_t i = 0; i < R.size(); ++i) L += o.out[i] * R[i];
    for (size_t i = 0; i < R2.size(); ++i) L += o.final_state[i] * R2[i];
    return L;
  };
  const Grads<double> grads = run_backward<double>(c, R, R2, form, chunk);
  SingleThreaded single_threaded;
  const std::pair<std::vector<double>*, const std::vector<double>*> inputs[] = {
      {&c.q, &grads.dq}, {&c.k, &grads.dk},       {&c.v, &grads.dv},
      {&c.g, &grads.dg}, {&c.beta, &grads.dbeta}, {&c.initial_state, &grads.d_initial_state}};
  const char* names[] = {"q", "k", "v", "g", "beta", "initial_state"};
  double largest = 0;
  for (const auto& [x, dx] : inputs) largest = std::max(largest, max_abs(*dx));
  for (int i = 0; i < 6; ++i) {
    const auto r = finite_difference_check(*inputs[i].first, *inputs[i].second, loss,
                                           kFiniteDifferenceStep, kFiniteDifferenceFloor * largest);
    worst.value = std::max(worst.value, r.worst);
    EXPECT_LE(r.worst, kFiniteDifferenceTolerance) << "d" << names[i] << ": " << describe(r);
  }
}

TEST(GatedDeltaRule, RecurrentBackwardMatchesFiniteDifferences) {
  WorstError worst{"recurrent backward vs finite differences"};
  for (Heads heads : kHeadConfigs)
    for (const auto& cu : std::vector<std::vector<int64_t>>{{0, 7}, {0, 3, 7, 12}}) {
      SCOPED_TRACE(label(heads, cu, true, 0));
      check_against_finite_differences(Form::kRecurrent, 0, heads, cu, 500 + cu.size(), worst);
    }
}

// Chunk 4 on 7 tokens gives a full and a short chunk; on the pack, chunks of 3, 4, then 4 + 1.
TEST(GatedDeltaRule, ChunkedBackwardMatchesFiniteDifferences) {
  WorstError worst{"chunked backward vs finite differences"};
  for (Heads heads : kHeadConfigs)
    for (const auto& cu : std::vector<std::vector<int64_t>>{{0, 7}, {0, 3, 7, 12}}) {
      SCOPED_TRACE(label(heads, cu, true, 4));
      check_against_finite_differences(Form::kChunked, 4, heads, cu, 600 + cu.size(), worst);
    }
}

// The model's path: float32 chunked, against the float64 reference, at the test dims and at the
// model's head dims (dk = dv = 128, where the state sums run over 128 terms).
TEST(GatedDeltaRule, Float32ChunkedMatchesFloat64Recurrent) {
  WorstError worst{"float32 chunked vs float64 recurrent"};
  struct Dims {
    Heads heads;
    int dk, dv;
  };
  for (Dims dims : {Dims{{2, 4}, 8, 6}, Dims{{1, 2}, 128, 128}}) {
    SCOPED_TRACE("dk=" + std::to_string(dims.dk) + " dv=" + std::to_string(dims.dv));
    const Case c = make_case(dims.heads, dims.dk, dims.dv, {0, 1000}, true, 700 + dims.dk);
    const auto want = run_forward<double>(c, Form::kRecurrent);
    const auto got = run_forward<float>(c, Form::kChunked);
    expect_close("out (float32)", got.out, want.out, kFloat32Tolerance, worst);
    expect_close("final_state (float32)", got.final_state, want.final_state, kFloat32Tolerance,
                 worst);

    Rng rng(701 + dims.dk);
    const auto d_out = random_normal(size_t(1000 * dims.heads.v * dims.dv), rng);
    const auto d_final = random_normal(state_elements(c), rng);
    expect_grads_close(run_backward<float>(c, d_out, d_final, Form::kChunked),
                       run_backward<double>(c, d_out, d_final, Form::kRecurrent),
                       kFloat32Tolerance, worst);
  }
}

TEST(GatedDeltaRule, RejectsBadArguments) {
  const Case c = make_case({2, 4}, 8, 6, {0, 10}, false, 800);
  std::vector<double> out(size_t(10 * 4 * 6));
  auto forward = [&](DeltaRuleShape shape, std::vector<int64_t> cu, int chunk) {
    gated_delta_rule_chunked_forward<double>(shape, cu, c.q.data(), c.k.data(), c.v.data(),
                                             c.g.data(), c.beta.data(), nullptr, out.data(),
                                             nullptr, chunk);
  };
  EXPECT_NO_THROW(forward(c.shape, {0, 4, 10}, 64));
  EXPECT_THROW(forward({10, 3, 4, 8, 6}, {0, 10}, 64), Error);  // Hv not a multiple of Hk
  EXPECT_THROW(forward(c.shape, {0, 9}, 64), Error);            // does not cover all tokens
  EXPECT_THROW(forward(c.shape, {0, 6, 4, 10}, 64), Error);     // decreasing
  EXPECT_THROW(forward(c.shape, {0, 10}, 0), Error);            // empty chunks
  EXPECT_THROW(gated_delta_rule_recurrent_forward<double>(
                   {10, 2, 4, 8, 6}, std::vector<int64_t>{1, 10}, c.q.data(), c.k.data(),
                   c.v.data(), c.g.data(), c.beta.data(), nullptr, out.data(), nullptr),
               Error);
}

}  // namespace
}  // namespace deltatune
