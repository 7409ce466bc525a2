// Checks of the LoRA thin products (lora/cuda/lora_products.h) against float64 products on the
// same bf16 inputs, for both layouts of each: down (u = x Aᵀ, du = s · dy B), up (y = s · u Bᵀ
// + beta · y, dx = du A + beta · dx) and the factor gradients (dB += s · dyᵀ u, dA += duᵀ x).
// Used by tests/cuda (GPU) and tests/cuda_emulated (host emulation).
#pragma once

#include <algorithm>

#include "core/rng.h"
#include "cuda/op_memory.h"
#include "lora/cuda/lora_products.h"

namespace deltatune::testing_util {

// rows of an activation `width` wide (row stride ld ≥ width), rank r.
struct LoraProductShape {
  int64_t rows, width, r, ld;
};

template <class Memory>
void check_lora_products(Memory& mem, const LoraProductShape& s, uint64_t seed,
                         double bf16_tolerance, double float_tolerance, WorstErrors& worst) {
  using bf16 = __nv_bfloat16;
  SCOPED_TRACE(str_cat("rows=", s.rows, " width=", s.width, " r=", s.r, " ld=", s.ld));
  Rng rng(seed);
  const int64_t R = s.rows, W = s.width, r = s.r, ld = s.ld;
  const float alpha = 2.5f;
  // The wide operand with junk between rows (ld > width): it must not be read as data.
  const auto wide = rounded<bf16>(random_normal(size_t(R * ld), rng));
  const auto thin = rounded<bf16>(random_normal(size_t(R * r), rng));
  const auto factor = rounded<bf16>(random_normal(size_t(W * r), rng, 0.1));  // [r, W] or [W, r]
  const auto y0 = rounded<bf16>(random_normal(size_t(R * ld), rng));
  const auto g0 = random_normal(size_t(W * r), rng);
  const std::vector<float> g0f(g0.begin(), g0.end());
  auto wide_at = [&](int64_t t, int64_t c) { return wide[size_t(t * ld + c)]; };
  auto f_rw = [&](int64_t j, int64_t c) { return factor[size_t(j * W + c)]; };  // stored [r, W]
  auto f_wr = [&](int64_t c, int64_t j) { return factor[size_t(c * r + j)]; };  // stored [W, r]

  const auto gwide = mem.upload(to_elements<bf16>(wide));
  const auto gthin = mem.upload(to_elements<bf16>(thin));
  const auto gfactor = mem.upload(to_elements<bf16>(factor));

  for (bool factor_rw : {true, false}) {
    const char* layout = factor_rw ? " [r, width]" : " [width, r]";
    // down: out[t, j] = alpha · Σ_c wide[t, c] F[j, c]
    std::vector<double> down(size_t(R * r));
    for (int64_t t = 0; t < R; ++t)
      for (int64_t j = 0; j < r; ++j) {
        double sum = 0;
        for (int64_t c = 0; c < W; ++c) sum += wide_at(t, c) * (factor_rw ? f_rw(j, c) : f_wr(c, j));
        down[size_t(t * r + j)] = alpha * sum;
      }
    auto gdown = mem.template poisoned<bf16>(size_t(R * r));
    lora_down_cuda(gwide.data(), R, W, ld, gfactor.data(), factor_rw, r, alpha, gdown.data(),
                   mem.target());
    expect_close(str_cat("down", layout), mem.download(gdown), down, bf16_tolerance, worst);

    // up: y[t, c] = alpha · Σ_j thin[t, j] G[c, j] + beta · y0[t, c]; G [W, r] is stored as
    // [W, r] (factor_nr) or [r, W].
    for (float beta : {0.0f, 1.0f}) {
      std::vector<double> up(size_t(R * W));
      for (int64_t t = 0; t < R; ++t)
        for (int64_t c = 0; c < W; ++c) {
          double sum = 0;
          for (int64_t j = 0; j < r; ++j)
            sum += thin[size_t(t * r + j)] * (factor_rw ? f_rw(j, c) : f_wr(c, j));
          up[size_t(t * W + c)] = alpha * sum + beta * y0[size_t(t * ld + c)];
        }
      auto gy = beta != 0 ? mem.upload(to_elements<bf16>(y0))
                          : mem.template poisoned<bf16>(size_t(R * ld));
      lora_up_cuda(gthin.data(), R, r, gfactor.data(), !factor_rw, W, alpha, beta, gy.data(), ld,
                   mem.target());
      expect_close(str_cat("up", layout, " beta ", beta), dense_rows(mem.download(gy), R, W, ld),
                   up, bf16_tolerance, worst);
    }

    // grad = g0 + alpha · Σ_t wide[t, :]ᵀ thin[t, :], stored [W, r] (grad_nr) or [r, W].
    std::vector<double> grad(g0f.begin(), g0f.end());
    for (int64_t c = 0; c < W; ++c)
      for (int64_t j = 0; j < r; ++j) {
        double sum = 0;
        for (int64_t t = 0; t < R; ++t) sum += wide_at(t, c) * thin[size_t(t * r + j)];
        grad[size_t(factor_rw ? j * W + c : c * r + j)] += alpha * sum;
      }
    auto ggrad = mem.upload(g0f);
    const size_t ws = lora_grad_workspace_bytes(R, W, r) / sizeof(float);
    auto gws = mem.template poisoned<float>(std::max<size_t>(ws, 1));
    lora_grad_cuda(gwide.data(), R, W, ld, gthin.data(), r, alpha, ggrad.data(), !factor_rw,
                   ws ? gws.data() : nullptr, mem.target());
    expect_close(str_cat("grad", layout), mem.download(ggrad), grad, float_tolerance, worst);
  }
}

}  // namespace deltatune::testing_util
