// Checks of the CUDA SwiGLU (ops/activation_cuda.h), partial RoPE (ops/rope_cuda.h) and AdamW
// (train/adamw_cuda.h) against their CPU references, on random inputs. Used by tests/cuda (GPU)
// and tests/cuda_emulated (host emulation).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/rng.h"
#include "cuda/op_memory.h"
#include "ops/activation.h"
#include "ops/activation_cuda.h"
#include "ops/rope.h"
#include "ops/rope_cuda.h"
#include "train/adamw_cuda.h"
#include "train/optimizer.h"

namespace deltatune::testing_util {

template <class T, class Memory>
void check_swiglu(Memory& mem, int64_t n, uint64_t seed, double tolerance, WorstErrors& worst) {
  SCOPED_TRACE(str_cat("n=", n));
  Rng rng(seed);
  const auto gate = rounded<T>(random_normal(size_t(n), rng, 3.0));  // both tails of silu
  const auto up = rounded<T>(random_normal(size_t(n), rng));
  const auto dh = rounded<T>(random_normal(size_t(n), rng));
  const size_t count = static_cast<size_t>(n);
  std::vector<double> h(count), dgate(count), dup(count);
  swiglu_forward<double>(gate.data(), up.data(), n, h.data());
  swiglu_backward<double>(gate.data(), up.data(), dh.data(), n, dgate.data(), dup.data());

  const auto ggate = mem.upload(to_elements<T>(gate)), gup = mem.upload(to_elements<T>(up));
  const auto gdh = mem.upload(to_elements<T>(dh));
  auto gh = mem.template poisoned<T>(size_t(n)), gdgate = mem.template poisoned<T>(size_t(n));
  auto gdup = mem.template poisoned<T>(size_t(n));
  swiglu_cuda_forward<T>(ggate.data(), gup.data(), n, gh.data(), mem.target());
  swiglu_cuda_backward<T>(ggate.data(), gup.data(), gdh.data(), n, gdgate.data(), gdup.data(),
                          mem.target());
  expect_close("swiglu h", mem.download(gh), h, tolerance, worst);
  expect_close("swiglu dgate", mem.download(gdgate), dgate, tolerance, worst);
  expect_close("swiglu dup", mem.download(gdup), dup, tolerance, worst);
}

// heads of head_dim values per token, rows ld_token apart, heads ld_head apart; the first
// rotary_dim dims turn. Positions restart at 0 at each sequence of the pack; the first sequence
// starts at max_position.
struct RopeShape {
  int64_t tokens;
  int heads, head_dim, rotary_dim;
  int64_t ld_token, ld_head;
  int64_t max_position;
};

template <class T, class Memory>
void check_rope(Memory& mem, const RopeShape& s, uint64_t seed, double tolerance,
                WorstErrors& worst) {
  SCOPED_TRACE(str_cat("tokens=", s.tokens, " heads=", s.heads, " head_dim=", s.head_dim,
                       " rotary_dim=", s.rotary_dim, " ld_token=", s.ld_token,
                       " ld_head=", s.ld_head));
  Rng rng(seed);
  const double theta = 1e7;
  std::vector<int64_t> positions(size_t(s.tokens));
  int64_t p = s.max_position;  // the first sequence starts far out, where angles are large
  for (int64_t t = 0; t < s.tokens; ++t) {
    if (t > 0 && rng.uniform() < 0.01) p = 0;  // a new sequence of the pack
    positions[size_t(t)] = p++;
  }
  const size_t size = size_t((s.tokens - 1) * s.ld_token + (s.heads - 1) * s.ld_head + s.head_dim);
  const auto x = rounded<T>(random_normal(size, rng));
  const auto dx = rounded<T>(random_normal(size, rng));
  const RopeTable<double> table =
      make_rope_table<double>(positions.data(), s.tokens, s.rotary_dim, theta);
  std::vector<double> y = x, dy = dx;  // in place, as the kernels
  rope_forward<double>(y.data(), s.tokens, s.heads, s.ld_token, s.ld_head, table);
  rope_backward<double>(dy.data(), s.tokens, s.heads, s.ld_token, s.ld_head, table);

  const auto gpos = mem.upload(positions);
  const size_t half = size_t(s.tokens) * size_t(s.rotary_dim / 2);
  auto gcos = mem.template poisoned<float>(half), gsin = mem.template poisoned<float>(half);
  auto gy = mem.upload(to_elements<T>(x)), gdy = mem.upload(to_elements<T>(dx));
  rope_cuda_table(gpos.data(), s.tokens, s.rotary_dim, theta, gcos.data(), gsin.data(),
                  mem.target());
  rope_cuda_forward<T>(gy.data(), s.tokens, s.heads, s.ld_token, s.ld_head, s.rotary_dim,
                       gcos.data(), gsin.data(), mem.target());
  rope_cuda_backward<T>(gdy.data(), s.tokens, s.heads, s.ld_token, s.ld_head, s.rotary_dim,
                        gcos.data(), gsin.data(), mem.target());
  expect_close("rope cos", mem.download(gcos), table.cos, tolerance, worst);
  expect_close("rope sin", mem.download(gsin), table.sin, tolerance, worst);
  expect_close("rope y", mem.download(gy), y, tolerance, worst);
  expect_close("rope dx", mem.download(gdy), dy, tolerance, worst);
}

// Several AdamW steps on n float parameters against AdamW::step on HostTensors; with the same
// operations in the same order and no fused multiply-adds the results must be bit-identical.
template <class Memory>
void check_adamw(Memory& mem, int64_t n, const AdamWConfig& config, uint64_t seed) {
  SCOPED_TRACE(str_cat("n=", n, " weight_decay=", config.weight_decay));
  Rng rng(seed);
  HostTensor p(DType::F32, {n}), g(DType::F32, {n});
  for (int64_t i = 0; i < n; ++i) p.ptr<float>()[i] = float(rng.normal());
  AdamW cpu({{&p, &g}}, config);
  auto gp = mem.upload(std::vector<float>(p.ptr<float>(), p.ptr<float>() + n));
  auto gm = mem.upload(std::vector<float>(size_t(n), 0.0f));
  auto gv = mem.upload(std::vector<float>(size_t(n), 0.0f));
  for (int step = 1; step <= 4; ++step) {
    std::vector<float> grad(static_cast<size_t>(n));
    for (float& x : grad) x = float(rng.normal() * (step == 3 ? 1e-6 : 1.0));  // tiny v too
    std::copy(grad.begin(), grad.end(), g.ptr<float>());
    const double lr = 1e-3 * step;
    cpu.step(lr);
    const auto gg = mem.upload(grad);
    adamw_cuda_step(gp.data(), gg.data(), gm.data(), gv.data(), n, lr, config, step, mem.target());
  }
  const std::vector<float> got[3] = {mem.download(gp), mem.download(gm), mem.download(gv)};
  const float* want[3] = {p.ptr<float>(), cpu.moments()[0].ptr<float>(),
                          cpu.moments()[1].ptr<float>()};
  const char* names[3] = {"p", "m", "v"};
  for (int k = 0; k < 3; ++k) {
    int64_t count = 0, first = -1;
    for (int64_t i = 0; i < n; ++i)
      if (std::memcmp(&got[k][size_t(i)], &want[k][i], sizeof(float)) != 0) {
        if (first < 0) first = i;
        ++count;
      }
    EXPECT_EQ(count, 0) << names[k] << ": " << count << " elements differ from the CPU's bits; "
                        << "first at " << first << ": got "
                        << (first >= 0 ? got[k][size_t(first)] : 0.0f) << ", want "
                        << (first >= 0 ? want[k][first] : 0.0f);
  }
}

}  // namespace deltatune::testing_util
