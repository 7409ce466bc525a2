#include "train/optimizer.h"

#include <cmath>

namespace deltatune {

namespace {

// Calls f(param, grad) with typed pointers for every factor of the adapter.
template <class F>
void for_each_factor(const LoraAdapter& adapter, F&& f) {
  for (const LoraModule& m : adapter.modules()) {
    f(m.A, m.dA);
    f(m.B, m.dB);
  }
}

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

AdamW::AdamW(LoraAdapter& adapter, const AdamWConfig& config) : adapter_(adapter), config_(config) {
  for_each_factor(adapter, [&](const HostTensor& p, const HostTensor&) {
    moments_.emplace_back(p.dtype(), p.view().shape_vector());
    moments_.emplace_back(p.dtype(), p.view().shape_vector());
  });
}

void AdamW::step(double lr) {
  ++step_;
  size_t i = 0;
  for_each_factor(adapter_, [&](const HostTensor& p, const HostTensor& g) {
    HostTensor& m = moments_[i++];
    HostTensor& v = moments_[i++];
    if (p.dtype() == DType::F64)
      adamw_update(p.ptr<double>(), g.ptr<double>(), m.ptr<double>(), v.ptr<double>(), p.numel(), lr, config_, step_);
    else
      adamw_update(p.ptr<float>(), g.ptr<float>(), m.ptr<float>(), v.ptr<float>(), p.numel(), lr, config_, step_);
  });
}

double lora_grad_norm(const LoraAdapter& adapter) {
  double sum = 0;
  for_each_factor(adapter, [&](const HostTensor&, const HostTensor& g) {
    const int64_t n = g.numel();
    double s = 0;
    if (g.dtype() == DType::F64) {
      const double* p = g.ptr<double>();
      for (int64_t i = 0; i < n; ++i) s += p[i] * p[i];
    } else {
      const float* p = g.ptr<float>();
      for (int64_t i = 0; i < n; ++i) s += double(p[i]) * double(p[i]);
    }
    sum += s;
  });
  return std::sqrt(sum);
}

void scale_lora_grads(LoraAdapter& adapter, double factor) {
  for_each_factor(adapter, [&](const HostTensor&, const HostTensor& g) {
    const int64_t n = g.numel();
    if (g.dtype() == DType::F64) {
      double* p = g.ptr<double>();
      for (int64_t i = 0; i < n; ++i) p[i] *= factor;
    } else {
      float* p = g.ptr<float>();
      for (int64_t i = 0; i < n; ++i) p[i] = float(double(p[i]) * factor);
    }
  });
}

double clip_lora_grad_norm(LoraAdapter& adapter, double max_norm) {
  const double norm = lora_grad_norm(adapter);
  if (max_norm > 0) {
    const double coef = max_norm / (norm + 1e-6);
    if (coef < 1.0) scale_lora_grads(adapter, coef);
  }
  return norm;
}

bool lora_grads_finite(const LoraAdapter& adapter) { return std::isfinite(lora_grad_norm(adapter)); }

}  // namespace deltatune
