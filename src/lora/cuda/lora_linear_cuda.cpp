#include "lora/cuda/lora_linear_cuda.h"

#include <algorithm>
#include <cstdlib>

#include "lora/cuda/lora_kernels.h"
#include "lora/cuda/lora_products.h"

namespace deltatune {

namespace {

using bf16 = __nv_bfloat16;

constexpr int64_t kFactorAlignment = 64;  // elements: 256 bytes of float, 128 of bf16

int64_t padded(int64_t n) { return (n + kFactorAlignment - 1) / kFactorAlignment * kFactorAlignment; }

DropoutMask mask_of(const DeviceLoraModule& m, const DeviceLoraRun& run) {
  return DropoutMask::make(run.dropout_seed, uint64_t(m.layer) * 64 + uint64_t(m.kind) + 1,
                           run.adapter->config().dropout);
}

bool dropout_active(const DeviceLoraModule* m, const DeviceLoraRun& run) {
  return m && run.training && run.adapter->config().dropout > 0;
}

// dropout(x) in arena scratch, or x itself when dropout is off.
const bf16* dropped_input(const bf16* x, int64_t rows, const DeviceLoraModule& m,
                          const DeviceLoraRun& run, cuda::DeviceArena& arena) {
  if (!dropout_active(&m, run)) return x;
  bf16* xd = arena.alloc<bf16>(rows * m.in);
  lora_dropout_cuda_forward(x, rows * m.in, mask_of(m, run), xd, arena.target());
  return xd;
}

// Scratch for a factor gradient's partial sums: cuBLAS's workspace where it is large enough (free
// between products on the stream), so the activation arena's peak does not grow; else the arena.
float* grad_workspace(const cuda::Blas& blas, cuda::DeviceArena& arena, int64_t rows, int64_t n,
                      int64_t r) {
  const size_t bytes = lora_grad_workspace_bytes(rows, n, r);
  if (bytes == 0) return nullptr;
  if (bytes <= blas.workspace_bytes()) return static_cast<float*>(blas.workspace());
  return static_cast<float*>(arena.alloc_bytes(bytes));
}

// Where the thin products run: cuBLAS (the default) or lora_products.h's kernels, chosen per
// product by DELTATUNE_LORA_KERNELS, a bit mask: 1 the down products (u, du), 2 the up products
// (y += s · u Bᵀ, dx += du A), 4 the factor gradients (dA, dB). All three on measured 5% slower
// than cuBLAS for a whole training step on the H100 at 0.8B and 4B; what each pays alone is not
// measured yet (docs/performance.md, "GPU: the thin LoRA products").
int lora_kernel_mask() {
  static const int mask = [] {
    const char* v = std::getenv("DELTATUNE_LORA_KERNELS");
    return v ? std::atoi(v) & 7 : 0;
  }();
  return mask;
}

// out = alpha · x Fᵀ (lora_products.h's lora_down_cuda).
void down_product(const cuda::Blas& blas, const bf16* x, int64_t rows, int64_t k, int64_t ldx,
                  const bf16* factor, bool factor_rk, int64_t r, float alpha, bf16* out) {
  if (lora_kernel_mask() & 1) {
    lora_down_cuda(x, rows, k, ldx, factor, factor_rk, r, alpha, out, blas.target());
    return;
  }
  gemm_cuda<bf16>(blas, false, factor_rk, rows, r, k, alpha, x, ldx, factor, factor_rk ? k : r,
                  0.0f, out, r);
}

// y = alpha · u Gᵀ + beta · y (lora_up_cuda).
void up_product(const cuda::Blas& blas, const bf16* u, int64_t rows, int64_t r, const bf16* factor,
                bool factor_nr, int64_t n, float alpha, float beta, bf16* y, int64_t ldy) {
  if (lora_kernel_mask() & 2) {
    lora_up_cuda(u, rows, r, factor, factor_nr, n, alpha, beta, y, ldy, blas.target());
    return;
  }
  gemm_cuda<bf16>(blas, false, factor_nr, rows, n, r, alpha, u, r, factor, factor_nr ? r : n, beta,
                  y, ldy);
}

// grad += alpha · dᵀ u (lora_grad_cuda).
void factor_grad(const cuda::Blas& blas, cuda::DeviceArena& arena, const bf16* d, int64_t rows,
                 int64_t n, int64_t ldd, const bf16* u, int64_t r, float alpha, float* grad,
                 bool grad_nr) {
  if (lora_kernel_mask() & 4) {
    lora_grad_cuda(d, rows, n, ldd, u, r, alpha, grad, grad_nr,
                   grad_workspace(blas, arena, rows, n, r), blas.target());
    return;
  }
  if (grad_nr)
    gemm_cuda<float>(blas, true, false, n, r, rows, alpha, d, ldd, u, r, 1.0f, grad, r);
  else
    gemm_cuda<float>(blas, true, false, r, n, rows, alpha, u, r, d, ldd, 1.0f, grad, n);
}

}  // namespace

DeviceAdapter::DeviceAdapter(const LoraAdapter& host, const cuda::Target& target)
    : target_(target), config_(host.config()) {
  DT_CHECK(host.param_dtype() == DType::F32, "the GPU path trains float32 LoRA factors, got ",
           dtype_name(host.param_dtype()));
  for (const LoraModule& m : host.modules())
    for (const HostTensor* f : {&m.A, &m.B}) {
      factor_offsets_.push_back(flat_size_);
      flat_size_ += padded(f->numel());
    }
  params_ = cuda::Memory(size_t(flat_size_) * sizeof(float), target);
  grads_ = cuda::Memory(size_t(flat_size_) * sizeof(float), target);
  params16_ = cuda::Memory(size_t(flat_size_) * sizeof(bf16), target);
  cuda::fill_zero(params_.data(), params_.bytes(), target);
  cuda::fill_zero(grads_.data(), grads_.bytes(), target);
  int num_layers = 0;
  size_t factor = 0;
  for (const LoraModule& m : host.modules()) {
    DeviceLoraModule d;
    d.layer = m.layer;
    d.kind = m.kind;
    d.in = m.in;
    d.out = m.out;
    d.r = m.A.dim(0);
    const int64_t a_at = factor_offsets_[factor++], b_at = factor_offsets_[factor++];
    d.A = params() + a_at;
    d.B = params() + b_at;
    d.dA = grads() + a_at;
    d.dB = grads() + b_at;
    d.A16 = params16_.as<bf16>() + a_at;
    d.B16 = params16_.as<bf16>() + b_at;
    modules_.push_back(d);
    num_layers = std::max(num_layers, m.layer + 1);
  }
  by_layer_.assign(size_t(num_layers), {});
  for (auto& row : by_layer_) row.fill(-1);
  for (size_t i = 0; i < modules_.size(); ++i)
    by_layer_[size_t(modules_[i].layer)][size_t(modules_[i].kind)] = int(i);
  upload(host);
}

const DeviceLoraModule* DeviceAdapter::find(int layer, LinearKind kind) const {
  if (layer < 0 || size_t(layer) >= by_layer_.size()) return nullptr;
  const int i = by_layer_[size_t(layer)][size_t(kind)];
  return i < 0 ? nullptr : &modules_[size_t(i)];
}

DeviceLoraModule* DeviceAdapter::find(int layer, LinearKind kind) {
  return const_cast<DeviceLoraModule*>(std::as_const(*this).find(layer, kind));
}

void DeviceAdapter::upload(const LoraAdapter& host) {
  DT_CHECK(host.modules().size() == modules_.size(), "DeviceAdapter::upload: another adapter");
  for (size_t i = 0; i < modules_.size(); ++i) {
    const LoraModule& m = host.modules()[i];
    cuda::copy_to_target(modules_[i].A, m.A.ptr<float>(), size_t(m.A.numel()) * 4, target_);
    cuda::copy_to_target(modules_[i].B, m.B.ptr<float>(), size_t(m.B.numel()) * 4, target_);
  }
  refresh_bf16();
}

void DeviceAdapter::download(LoraAdapter& host) const {
  for (size_t i = 0; i < modules_.size(); ++i) {
    LoraModule& m = host.modules()[i];
    cuda::copy_to_host(m.A.ptr<float>(), modules_[i].A, size_t(m.A.numel()) * 4, target_);
    cuda::copy_to_host(m.B.ptr<float>(), modules_[i].B, size_t(m.B.numel()) * 4, target_);
  }
}

void DeviceAdapter::download_grads(LoraAdapter& host) const {
  for (size_t i = 0; i < modules_.size(); ++i) {
    LoraModule& m = host.modules()[i];
    cuda::copy_to_host(m.dA.ptr<float>(), modules_[i].dA, size_t(m.dA.numel()) * 4, target_);
    cuda::copy_to_host(m.dB.ptr<float>(), modules_[i].dB, size_t(m.dB.numel()) * 4, target_);
  }
}

void DeviceAdapter::refresh_bf16() {
  float_to_bf16_cuda(params(), flat_size_, params16_.as<bf16>(), target_);
}

void DeviceAdapter::zero_grad() { cuda::fill_zero(grads(), size_t(flat_size_) * sizeof(float), target_); }

void lora_linear_cuda_forward(const cuda::Blas& blas, cuda::DeviceArena& arena, const bf16* x,
                              int64_t rows, const DeviceLinear& weight, const DeviceLoraRun& run,
                              int layer, LinearKind kind, bf16* y, int64_t ldy, bf16** keep_u) {
  if (ldy < 0) ldy = weight.out;
  gemm_cuda<bf16>(blas, false, true, rows, weight.out, weight.in, 1.0f, x, weight.in, weight.w,
                  weight.in, 0.0f, y, ldy);
  const DeviceLoraModule* m = run.module(layer, kind);
  if (!m) return;
  bf16* kept = keep_u ? arena.alloc<bf16>(rows * m->r) : nullptr;  // outlives the scratch below
  if (keep_u) *keep_u = kept;
  const cuda::DeviceArena::Mark mark = arena.mark();
  const bf16* xd = dropped_input(x, rows, *m, run, arena);
  bf16* u = kept ? kept : arena.alloc<bf16>(rows * m->r);
  down_product(blas, xd, rows, m->in, m->in, m->A16, true, m->r, 1.0f, u);
  up_product(blas, u, rows, m->r, m->B16, true, m->out, float(run.adapter->config().scaling()),
             1.0f, y, ldy);
  arena.reset(mark);
}

void lora_linear_cuda_backward(const cuda::Blas& blas, cuda::DeviceArena& arena, const bf16* x,
                               int64_t rows, const DeviceLinear& weight, const DeviceLoraRun& run,
                               int layer, LinearKind kind, const bf16* dy, bf16* dx,
                               bool accumulate_dx, int64_t lddy, const bf16* kept_u) {
  if (lddy < 0) lddy = weight.out;
  gemm_cuda<bf16>(blas, false, false, rows, weight.in, weight.out, 1.0f, dy, lddy, weight.w,
                  weight.in, accumulate_dx ? 1.0f : 0.0f, dx, weight.in);
  DeviceLoraModule* m = run.module(layer, kind);
  if (!m) return;
  const cuda::DeviceArena::Mark mark = arena.mark();
  const float s = float(run.adapter->config().scaling());
  const bf16* xd = dropped_input(x, rows, *m, run, arena);
  bf16* du = arena.alloc<bf16>(rows * m->r);
  const bf16* u = kept_u;
  if (!u) {
    bf16* recomputed = arena.alloc<bf16>(rows * m->r);
    down_product(blas, xd, rows, m->in, m->in, m->A16, true, m->r, 1.0f, recomputed);
    u = recomputed;
  }
  factor_grad(blas, arena, dy, rows, m->out, lddy, u, m->r, s, m->dB, true);
  down_product(blas, dy, rows, m->out, lddy, m->B16, false, m->r, s, du);
  factor_grad(blas, arena, xd, rows, m->in, m->in, du, m->r, 1.0f, m->dA, false);
  if (!dropout_active(m, run)) {
    up_product(blas, du, rows, m->r, m->A16, false, m->in, 1.0f, 1.0f, dx, m->in);
  } else {
    // dx += (du A) masked and scaled like the forward's dropout.
    bf16* g = arena.alloc<bf16>(rows * m->in);
    up_product(blas, du, rows, m->r, m->A16, false, m->in, 1.0f, 0.0f, g, m->in);
    lora_dropout_cuda_backward_add(g, rows * m->in, mask_of(*m, run), dx, arena.target());
  }
  arena.reset(mark);
}

}  // namespace deltatune
