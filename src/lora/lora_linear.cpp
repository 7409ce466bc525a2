#include "lora/lora_linear.h"

#include <cstring>

#include "lora/dropout_mask.h"
#include "ops/matmul.h"

namespace deltatune {

namespace {

bool dropout_active(const LoraModule* m, const LoraRun& run) {
  return m && run.training && run.adapter->config().dropout > 0;
}

// x with PEFT's dropout applied (kept elements scaled by 1/(1-p)), or x itself when inactive.
template <class T>
const T* dropped_input(const T* x, int64_t rows, const LoraModule* m, const LoraRun& run, Arena& arena) {
  if (!dropout_active(m, run)) return x;
  const double p = run.adapter->config().dropout;
  const DropoutMask mask = DropoutMask::make(run.dropout_seed, uint64_t(m->layer) * 64 + uint64_t(m->kind) + 1, p);
  const T keep_scale = T(1.0 / (1.0 - p));
  const int64_t n = rows * m->in;
  T* xd = arena.alloc<T>(size_t(n));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) xd[i] = mask.keeps(i) ? x[i] * keep_scale : T(0);
  return xd;
}

template <class T>
T* factor(const HostTensor& t) {
  return t.ptr<T>();  // throws when the adapter's dtype is not the compute type
}

// y += scale · (x Aᵀ) Bᵀ for one module.
template <class T>
void add_adapter_path(const T* x, int64_t rows, const LoraModule& m, double scale, T* y, int64_t ldy, Arena& arena) {
  const int64_t r = m.A.dim(0);
  T* u = arena.alloc<T>(size_t(rows * r));
  gemm<T>(false, true, rows, r, m.in, T(1), x, m.in, factor<T>(m.A), m.in, T(0), u, r);
  gemm<T>(false, true, rows, m.out, r, T(scale), u, r, factor<T>(m.B), r, T(1), y, ldy);
}

}  // namespace

template <class T>
void lora_linear_forward(const T* x, int64_t rows, const Tensor& weight, const LoraRun& run, int layer,
                         LinearKind kind, T* y, Arena& arena, int64_t ldy) {
  linear_forward(x, rows, weight, y, false, ldy);
  if (ldy < 0) ldy = weight.shape[0];
  const Arena::Mark mark = arena.mark();
  if (const LoraModule* m = run.module(layer, kind))
    add_adapter_path(dropped_input(x, rows, m, run, arena), rows, *m, run.adapter->config().scaling(), y, ldy, arena);
  for (const RuntimeAdapter& ra : run.runtime)
    if (const LoraModule* m = ra.adapter->find(layer, kind))
      add_adapter_path(x, rows, *m, ra.scale * ra.adapter->config().scaling(), y, ldy, arena);
  arena.reset(mark);
}

template <class T>
void lora_linear_backward(const T* x, int64_t rows, const Tensor& weight, const LoraRun& run, int layer,
                          LinearKind kind, const T* dy, T* dx, bool accumulate_dx, Arena& arena, int64_t lddy) {
  linear_backward_input(dy, rows, weight, dx, accumulate_dx, lddy);
  if (lddy < 0) lddy = weight.shape[0];
  const int64_t in = weight.shape[1];
  const Arena::Mark mark = arena.mark();
  // Frozen runtime adapters: only their share of dx, dx += s (dy B) A.
  for (const RuntimeAdapter& ra : run.runtime) {
    const LoraModule* m = ra.adapter->find(layer, kind);
    if (!m) continue;
    const int64_t r = m->A.dim(0);
    T* du = arena.alloc<T>(size_t(rows * r));
    gemm<T>(false, false, rows, r, m->out, T(ra.scale * ra.adapter->config().scaling()), dy, lddy, factor<T>(m->B), r,
            T(0), du, r);
    gemm<T>(false, false, rows, in, r, T(1), du, r, factor<T>(m->A), in, T(1), dx, in);
  }
  LoraModule* m = run.module(layer, kind);
  if (!m) {
    arena.reset(mark);
    return;
  }
  const int64_t r = m->A.dim(0);
  const T s = T(run.adapter->config().scaling());
  const T* xd = dropped_input(x, rows, m, run, arena);
  T* u = arena.alloc<T>(size_t(rows * r));
  T* du = arena.alloc<T>(size_t(rows * r));
  gemm<T>(false, true, rows, r, m->in, T(1), xd, m->in, factor<T>(m->A), m->in, T(0), u, r);
  gemm<T>(true, false, m->out, r, rows, s, dy, lddy, u, r, T(1), factor<T>(m->dB), r);        // dB += s dyᵀ u
  gemm<T>(false, false, rows, r, m->out, s, dy, lddy, factor<T>(m->B), r, T(0), du, r);       // du = s dy B
  gemm<T>(true, false, r, m->in, rows, T(1), du, r, xd, m->in, T(1), factor<T>(m->dA), m->in);  // dA += duᵀ xd
  if (!dropout_active(m, run)) {
    gemm<T>(false, false, rows, m->in, r, T(1), du, r, factor<T>(m->A), m->in, T(1), dx, m->in);
  } else {
    // dx += (du A) masked and scaled like the forward's dropout: the mask is regenerated through
    // the same hash on a vector of ones.
    T* g = arena.alloc<T>(size_t(rows * m->in));
    gemm<T>(false, false, rows, m->in, r, T(1), du, r, factor<T>(m->A), m->in, T(0), g, m->in);
    T* ones = arena.alloc<T>(size_t(rows * m->in));
    for (int64_t i = 0; i < rows * m->in; ++i) ones[i] = T(1);
    const T* mask = dropped_input(ones, rows, m, run, arena);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < rows * m->in; ++i) dx[i] += g[i] * mask[i];
  }
  arena.reset(mark);
}

#define INSTANTIATE(T)                                                                                      \
  template void lora_linear_forward<T>(const T*, int64_t, const Tensor&, const LoraRun&, int, LinearKind, T*, \
                                       Arena&, int64_t);                                                    \
  template void lora_linear_backward<T>(const T*, int64_t, const Tensor&, const LoraRun&, int, LinearKind,  \
                                        const T*, T*, bool, Arena&, int64_t);
INSTANTIATE(float)
INSTANTIATE(double)
#undef INSTANTIATE

}  // namespace deltatune
