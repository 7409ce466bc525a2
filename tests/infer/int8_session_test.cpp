// A float32 session on a q8_0 GGUF base with int8 activations (the default; Int8ActivationScope in
// ops/matmul.h) against the same session on the dequantized-weight product (Off), on the same
// quantized activations through the float product (Emulated), and a float64 session (control).
//
// The bounds.
// - Per product: quantizing a block of 32 activations with step d = max|x| / 127 leaves an error
//   uniform in ±d/2, rms d/√12; for roughly Gaussian blocks max|x| ≈ 2.1σ, so each quantized
//   product's output moves by ≈ 2.1 / (127·√12) ≈ 0.5% of its rms. This tiny model (4 layers,
//   hidden 64) runs ~20 quantized products per token; added in quadrature, ≈ 2.2% of the logits'
//   scale if the model passed perturbations on undamped (gain 1).
// - This random model does not: its float32 session differs from the float64 one by ~1.4e-5
//   (largest logit difference over largest |logit|), where one float32 product of 64..128 terms
//   rounds by ~2^-24·√128 ≈ 7e-7 — a gain of ~20 on incoherent per-product errors. The control is
//   asserted (kFloat32Control), and the int8 bound is the 2.2% estimate times that gain, rounded
//   up: kInt8Logits = 0.5 (measured worst 0.31, typical 0.02-0.07). On a trained model the gain is
//   near 1 (llama.cpp runs every q8_0 product this way).
// - Int8 vs Emulated: the same quantized activations, so where every activation quantizes alike
//   they agree to float32 rounding (measured 7e-7 on the shortest prompt); but rounding to int8 is
//   discontinuous, and float32-level differences upstream can move a value across a rounding
//   boundary (one step d), so the longer runs differ by up to ~1e-2. A flipped value moves by one
//   step, less than quantization moves all of them: int8-vs-emulated ≤ int8-vs-dequantized, per feed.
// Generation (one token per feed) keeps the row dots; those feeds differ only through the carried
// state. A float64 session ignores the switch.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "core/rng.h"
#include "export/gguf_export.h"
#include "infer/session.h"
#include "io/test_files.h"
#include "model/presets.h"
#include "ops/cpu/q8_product.h"
#include "ops/matmul.h"
#include "test_util.h"

namespace deltatune {
namespace {

constexpr double kInt8Logits = 0.5;
constexpr double kFloat32Control = 3e-5;

TEST(Int8Session, LogitsStayNearTheDequantizedProduct) {
  if (q8_default_isa() != Q8Isa::Vnni) GTEST_SKIP() << "no AVX-512 VNNI: the int8 path is off on this CPU";
  test::ScratchDir dir;
  const std::filesystem::path source = std::filesystem::path(DELTATUNE_FIXTURES).parent_path().parent_path();
  const std::string tokenizer = dir.file("tokenizer");
  ASSERT_EQ(std::system(("python3 " + (source / "scripts/make_tiny_tokenizer.py").string() + " " + tokenizer).c_str()), 0);
  ModelConfig c = preset_config("tiny");
  c.linear_key_head_dim = c.linear_value_head_dim = 32;  // q8_0 blocks move whole (gguf_base_test.cpp)
  GgufModelExport options;
  options.outtype = GgmlType::Q8_0;
  options.tokenizer_dir = tokenizer;
  Model::random(c, DType::F32, 12).save(dir.file("random"));
  export_gguf_model(Model::load(dir.file("random")), dir.file("m.gguf"), options);
  const Model model = Model::load(dir.file("m.gguf"));
  ASSERT_EQ(model.weights().layers[0].mlp.gate_proj.dtype, DType::Q8_0);

  InferenceSession<float> int8(model), emulated(model), exact(model);
  InferenceSession<double> f64(model);
  EXPECT_TRUE(int8.int8_activations());
  emulated.set_int8_mode(Int8Activations::Emulated);
  exact.set_int8_activations(false);
  Rng rng(5);
  double worst_kernel = 0, worst_quant = 0, worst_f32 = 0;
  for (int64_t prompt : {5, 17, 40, 100}) {
    std::vector<int64_t> ids(size_t(prompt + 3));
    for (auto& id : ids) id = int64_t(rng.next_u64() % uint64_t(c.vocab_size));
    int8.reset(), emulated.reset(), exact.reset(), f64.reset();
    for (int64_t t = 0; t < int64_t(ids.size());) {
      const int64_t n = t == 0 ? prompt : 1;  // the prompt, then a token at a time
      const std::span<const int64_t> piece(ids.data() + t, size_t(n));
      const std::vector<float> a = int8.feed(piece, {}), e = emulated.feed(piece, {}), x = exact.feed(piece, {});
      const std::vector<double> r = f64.feed(piece, {});
      const auto kernel = testing_util::relative_error(a.data(), e.data(), a.size());
      const auto quant = testing_util::relative_error(a.data(), x.data(), a.size());
      const auto f32 = testing_util::relative_error(x.data(), r.data(), x.size());
      worst_kernel = std::max(worst_kernel, kernel.value);
      worst_quant = std::max(worst_quant, quant.value);
      worst_f32 = std::max(worst_f32, f32.value);
      SCOPED_TRACE(str_cat("prompt ", prompt, ", feed at ", t));
      EXPECT_GT(quant.value, 0) << "the int8 path did not run";
      EXPECT_LE(quant.value, kInt8Logits) << testing_util::describe(quant);
      EXPECT_LE(kernel.value, quant.value) << testing_util::describe(kernel);
      EXPECT_LE(f32.value, kFloat32Control) << testing_util::describe(f32);
      t += n;
    }
  }
  testing_util::report("int8 vs emulated (same quantized activations through the float product), worst", worst_kernel);
  testing_util::report("int8 vs dequantized weights, worst", worst_quant);
  testing_util::report("float32 vs float64 sessions, worst", worst_f32);

  InferenceSession<double> reference(model);
  reference.set_int8_activations(true);
  EXPECT_FALSE(reference.int8_activations());
}

}  // namespace
}  // namespace deltatune
