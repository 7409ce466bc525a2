#include "train/optimizer.h"

#include <cmath>

namespace deltatune {

namespace {

template <class T>
void adamw_update(T* p, const T* g, T* m, T* v, int64_t n, double lr, const AdamWConfig& c, int64_t step) {
  const double bias1 = 1.0 - std::pow(c.beta1, double(step));
  const double bias2 = 1.0 - std::pow(c.beta2, double(step));
  const double step_size = lr / bias1;
  const double bias2_sqrt = std::sqrt(bias2);
  const T decay = T(1.0 - lr * c.weight_decay);
  const T b1 = T(c.beta1), b2 = T(c.beta2);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    // torch.optim.AdamW (single-tensor path): decay, moments, p -= step_size * m / (sqrt(v)/sqrt(bias2) + eps)
    p[i] *= decay;
    m[i] = b1 * m[i] + (T(1) - b1) * g[i];
    v[i] = b2 * v[i] + (T(1) - b2) * g[i] * g[i];
    const T denom = T(std::sqrt(double(v[i])) / bias2_sqrt + c.eps);
    p[i] -= T(step_size) * m[i] / denom;
  }
}

}  // namespace

std::vector<ParamRef> lora_params(LoraAdapter& adapter) {
  std::vector<ParamRef> params;
  for (LoraModule& m : adapter.modules()) {
    params.push_back({&m.A, &m.dA});
    params.push_back({&m.B, &m.dB});
  }
  return params;
}

AdamW::AdamW(std::vector<ParamRef> params, const AdamWConfig& config) : params_(std::move(params)), config_(config) {
  for (const ParamRef& p : params_) {
    DT_CHECK(p.value->dtype() == p.grad->dtype() && p.value->numel() == p.grad->numel() &&
                 (p.value->dtype() == DType::F32 || p.value->dtype() == DType::F64),
             "AdamW: a parameter and its gradient must be F32 or F64 tensors of one shape");
    moments_.emplace_back(p.value->dtype(), p.value->view().shape_vector());
    moments_.emplace_back(p.value->dtype(), p.value->view().shape_vector());
  }
}

void AdamW::step(double lr) {
  ++step_;
  for (size_t i = 0; i < params_.size(); ++i) {
    const HostTensor& p = *params_[i].value;
    const HostTensor& g = *params_[i].grad;
    HostTensor& m = moments_[2 * i];
    HostTensor& v = moments_[2 * i + 1];
    if (p.dtype() == DType::F64)
      adamw_update(p.ptr<double>(), g.ptr<double>(), m.ptr<double>(), v.ptr<double>(), p.numel(), lr, config_, step_);
    else
      adamw_update(p.ptr<float>(), g.ptr<float>(), m.ptr<float>(), v.ptr<float>(), p.numel(), lr, config_, step_);
  }
}

double grad_norm(const std::vector<ParamRef>& params) {
  double sum = 0;
  for (const ParamRef& p : params) {
    const HostTensor& g = *p.grad;
    const int64_t n = g.numel();
    if (g.dtype() == DType::F64) {
      const double* x = g.ptr<double>();
      for (int64_t i = 0; i < n; ++i) sum += x[i] * x[i];
    } else {
      const float* x = g.ptr<float>();
      for (int64_t i = 0; i < n; ++i) sum += double(x[i]) * double(x[i]);
    }
  }
  return std::sqrt(sum);
}

double clip_grad_norm(const std::vector<ParamRef>& params, double max_norm) {
  const double norm = grad_norm(params);
  const double coef = max_norm / (norm + 1e-6);
  if (max_norm <= 0 || !(coef < 1.0)) return norm;  // also leaves NaN/inf gradients for the caller
  for (const ParamRef& p : params) {
    const HostTensor& g = *p.grad;
    const int64_t n = g.numel();
    if (g.dtype() == DType::F64) {
      double* x = g.ptr<double>();
      for (int64_t i = 0; i < n; ++i) x[i] *= coef;
    } else {
      float* x = g.ptr<float>();
      for (int64_t i = 0; i < n; ++i) x[i] = float(double(x[i]) * coef);
    }
  }
  return norm;
}

}  // namespace deltatune
