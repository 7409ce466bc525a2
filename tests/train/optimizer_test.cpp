// The step machinery against PyTorch 2.11 and transformers 5.17 (tests/fixtures/
// optimizer_reference.safetensors, made by scripts/make_fixtures.py): torch.optim.AdamW over six
// steps with changing learning rates and a zero-rate step, torch.nn.utils.clip_grad_norm_, and
// transformers' get_scheduler for every schedule we offer (warmup 4, 25 steps).
// Tolerances: float64 1e-13 relative (same formulas, different summation order); float32 2e-6
// (a few float32 roundings per step, six steps).
#include <gtest/gtest.h>

#include "io/safetensors.h"
#include "test_util.h"
#include "train/optimizer.h"
#include "train/schedule.h"

namespace deltatune {
namespace {

using testing_util::describe;
using testing_util::fixture_path;
using testing_util::relative_error;

const SafetensorsFile& reference() {
  static const SafetensorsFile f(fixture_path("optimizer_reference.safetensors"));
  return f;
}

template <class T>
HostTensor copy(const std::string& name) {
  const Tensor t = reference().tensor(name);
  EXPECT_EQ(t.dtype, dtype_of<T>()) << name;
  HostTensor h(t.dtype, t.shape_vector());
  std::memcpy(h.view().data, t.data, t.nbytes());
  return h;
}

template <class T>
void check_adamw(const char* tag, double tol) {
  HostTensor p = copy<T>(std::string("adamw.") + tag + ".initial");
  HostTensor g(p.dtype(), p.view().shape_vector());
  AdamW opt({{&p, &g}}, AdamWConfig{0.9, 0.95, 1e-8, 0.1});
  const double lrs[6] = {1e-2, 5e-3, 2e-2, 1e-2, 0.0, 7e-3};
  for (int step = 0; step < 6; ++step) {
    const HostTensor grad = copy<T>(std::string("adamw.") + tag + ".grad" + std::to_string(step));
    std::memcpy(g.view().data, grad.view().data, grad.view().nbytes());
    opt.step(lrs[step]);
    const Tensor want = reference().tensor(std::string("adamw.") + tag + ".after" + std::to_string(step));
    const auto e = relative_error(p.ptr<T>(), static_cast<const T*>(want.data), size_t(p.numel()));
    EXPECT_LE(e.value, tol) << tag << " after step " << step << ": " << describe(e);
  }
}

TEST(AdamW, MatchesTorchFloat64) { check_adamw<double>("f64", 1e-13); }
TEST(AdamW, MatchesTorchFloat32) { check_adamw<float>("f32", 2e-6); }

TEST(ClipGradNorm, MatchesTorch) {
  HostTensor a = copy<double>("clip.a.grad"), b = copy<double>("clip.b.grad");
  HostTensor pa(DType::F64, a.view().shape_vector()), pb(DType::F64, b.view().shape_vector());
  const double norm = clip_grad_norm({{&pa, &a}, {&pb, &b}}, 0.5);
  EXPECT_NEAR(norm, static_cast<const double*>(reference().tensor("clip.norm").data)[0], 1e-13 * norm);
  for (auto [got, name] : {std::pair{&a, "clip.a.clipped"}, std::pair{&b, "clip.b.clipped"}}) {
    const Tensor want = reference().tensor(name);
    const auto e = relative_error(got->ptr<double>(), static_cast<const double*>(want.data), size_t(want.numel()));
    EXPECT_LE(e.value, 1e-13) << name << ": " << describe(e);
  }
  // Below the threshold nothing changes; a non-finite norm is returned for the caller to skip.
  const double before = a.ptr<double>()[0];
  clip_grad_norm({{&pa, &a}}, 1e9);
  EXPECT_EQ(a.ptr<double>()[0], before);
  a.ptr<double>()[1] = NAN;
  EXPECT_TRUE(std::isnan(clip_grad_norm({{&pa, &a}}, 0.5)));
}

TEST(Schedule, MatchesTransformersGetScheduler) {
  for (const char* name : {"constant", "constant_with_warmup", "linear", "cosine"}) {
    const Tensor want = reference().tensor(std::string("schedule.") + name);
    const Schedule s{parse_schedule_kind(name), 3e-4, 4, 25};
    for (int64_t step = 0; step < want.numel(); ++step)
      EXPECT_NEAR(s.lr(step), static_cast<const double*>(want.data)[step], 1e-15) << name << " step " << step;
  }
  EXPECT_EQ(warmup_steps_for(0, 0.1, 25), 3);  // ceil(2.5)
  EXPECT_EQ(warmup_steps_for(7, 0.1, 25), 7);
  EXPECT_THROW(parse_schedule_kind("polynomial"), Error);
}

}  // namespace
}  // namespace deltatune
