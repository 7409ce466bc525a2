// LoRA on the GPU: the trained adapter's factors in device memory, and the LoRA linear layer of
// lora/lora_linear.h (same equations, same dropout masks) on cuBLAS products:
//   forward   y = x Wᵀ + s · (dropout(x) Aᵀ) Bᵀ
//   backward  u = dropout(x) Aᵀ;  dB += s · dyᵀ u;  du = s · dy B;  dA += duᵀ dropout(x);
//             dx = dy W + dropout'(du A)
// The factors, their gradients and AdamW's moments are float32; the products read bf16 copies of
// A and B (refreshed after every optimizer update, as mixed-precision training keeps float master
// weights), take bf16 activations, accumulate in float, and write dA, dB straight into float.
// u and du are bf16 [rows, r]. Built only with -DDELTATUNE_CUDA=ON.
#pragma once

#include <cuda_bf16.h>

#include <array>
#include <cstdint>
#include <vector>

#include "core/cuda/device_arena.h"
#include "lora/adapter.h"
#include "ops/matmul_cuda.h"

namespace deltatune {

// A frozen linear layer's weight [out, in] on the device, row-major bf16.
struct DeviceLinear {
  const __nv_bfloat16* w = nullptr;
  int64_t out = 0, in = 0;
};

struct DeviceLoraModule {
  int layer = 0;
  LinearKind kind = LinearKind::QProj;
  int64_t in = 0, out = 0, r = 0;
  float *A = nullptr, *B = nullptr;    // [r, in], [out, r]
  float *dA = nullptr, *dB = nullptr;  // gradients, same shapes
  __nv_bfloat16 *A16 = nullptr, *B16 = nullptr;
};

// The trained adapter on the device. Every factor lies in one float buffer, in lora_params order
// (A then B per module, each padded to 64 elements so every factor starts 256-byte aligned);
// gradients and the bf16 copies use the same layout, so the optimizer and the clipping see one
// flat array (padding is zero and stays zero).
class DeviceAdapter {
 public:
  DeviceAdapter(const LoraAdapter& host, const cuda::Target& target);

  const LoraConfig& config() const { return config_; }
  const DeviceLoraModule* find(int layer, LinearKind kind) const;
  DeviceLoraModule* find(int layer, LinearKind kind);
  const std::vector<DeviceLoraModule>& modules() const { return modules_; }

  float* params() const { return params_.as<float>(); }
  float* grads() const { return grads_.as<float>(); }
  int64_t flat_size() const { return flat_size_; }  // elements of params(), padding included
  // Where factor i (in lora_params order) starts in the flat arrays, and its size.
  int64_t factor_offset(size_t i) const { return factor_offsets_[i]; }
  size_t bytes() const { return params_.bytes() + grads_.bytes() + params16_.bytes(); }

  void upload(const LoraAdapter& host);           // factors host -> device, bf16 copies refreshed
  void download(LoraAdapter& host) const;         // factors device -> host
  void download_grads(LoraAdapter& host) const;   // gradients device -> host dA, dB
  void refresh_bf16();                            // after the factors changed on the device
  void zero_grad();

 private:
  cuda::Target target_;
  LoraConfig config_;
  int64_t flat_size_ = 0;
  std::vector<int64_t> factor_offsets_;
  cuda::Memory params_, grads_, params16_;
  std::vector<DeviceLoraModule> modules_;
  std::vector<std::array<int, kLinearKinds>> by_layer_;  // index into modules_, or -1
};

// The adapter of one pass (GPU twin of LoraRun; runtime adapters are not supported here).
struct DeviceLoraRun {
  DeviceAdapter* adapter = nullptr;  // null: none
  bool training = false;             // dropout only while training
  uint64_t dropout_seed = 0;
  DeviceLoraModule* module(int layer, LinearKind kind) const {
    return adapter ? adapter->find(layer, kind) : nullptr;
  }
};

// The adapter's down-projections u = dropout(x) Aᵀ ([rows, r]) of one layer's linear layers, kept
// from the forward for the backward, which otherwise recomputes them (one thin product, a pass
// over x, per module). Null where the layer has no module of that kind or u was not kept.
struct DeviceLoraDowns {
  std::array<__nv_bfloat16*, kLinearKinds> u{};
  __nv_bfloat16** keep(LinearKind kind) { return &u[size_t(kind)]; }
  const __nv_bfloat16* kept(LinearKind kind) const { return u[size_t(kind)]; }
};

// y [rows, out] (row stride ldy, default out) overwritten. Scratch from the arena, given back;
// with keep_u, u is allocated from the arena before the scratch and left there, *keep_u set (the
// caller's mark and reset give it back).
void lora_linear_cuda_forward(const cuda::Blas& blas, cuda::DeviceArena& arena,
                              const __nv_bfloat16* x, int64_t rows, const DeviceLinear& weight,
                              const DeviceLoraRun& run, int layer, LinearKind kind,
                              __nv_bfloat16* y, int64_t ldy = -1,
                              __nv_bfloat16** keep_u = nullptr);

// dx [rows, in] overwritten (or added to when accumulate_dx); the module's dA, dB accumulated.
// dy has row stride lddy (default out). kept_u: the forward's u of this module (same x, same
// dropout mask), or null to recompute it.
void lora_linear_cuda_backward(const cuda::Blas& blas, cuda::DeviceArena& arena,
                               const __nv_bfloat16* x, int64_t rows, const DeviceLinear& weight,
                               const DeviceLoraRun& run, int layer, LinearKind kind,
                               const __nv_bfloat16* dy, __nv_bfloat16* dx, bool accumulate_dx,
                               int64_t lddy = -1, const __nv_bfloat16* kept_u = nullptr);

}  // namespace deltatune
