// What every GPU layer function of one pass shares (the GPU twin of model/layer_context.h): the
// packed batch in device memory, the adapter, the layer index, the arena its buffers come from and
// the cuBLAS handle. Built only with -DDELTATUNE_CUDA=ON.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "core/cuda/device_arena.h"
#include "lora/cuda/lora_linear_cuda.h"
#include "model/batch.h"
#include "model/config.h"
#include "ops/delta_rule_cuda.h"
#include "ops/matmul_cuda.h"

namespace deltatune {

// One packed batch on the device, made once per micro-batch and read by every layer: token ids,
// sequence offsets, the shifted targets, the RoPE table, and the delta rule's chunk plan. Its
// arrays come from the arena (the caller's mark/reset around the pass gives them back).
class DeviceBatch {
 public:
  DeviceBatch(const Batch& batch, const ModelConfig& config, cuda::DeviceArena& arena);

  int64_t tokens() const { return tokens_; }
  int64_t num_sequences() const { return int64_t(host_cu_seqlens_.size()) - 1; }
  int64_t max_seqlen() const { return max_seqlen_; }  // the longest sequence
  const int64_t* input_ids() const { return input_ids_; }
  const int64_t* cu_seqlens() const { return cu_seqlens_; }         // device
  std::span<const int64_t> host_cu_seqlens() const { return host_cu_seqlens_; }
  const int64_t* targets() const { return targets_; }               // device; null without labels
  int64_t num_targets() const { return num_targets_; }
  const float* rope_cos() const { return rope_cos_; }               // [T, rotary_dim / 2]
  const float* rope_sin() const { return rope_sin_; }
  // The chunk plan of the bf16 delta rule (GPU only; null under emulation or without
  // Gated DeltaNet layers).
  const DeltaRuleCudaPlan* delta_rule_plan() const { return delta_rule_plan_.get(); }

 private:
  int64_t tokens_ = 0, num_targets_ = 0, max_seqlen_ = 0;
  std::vector<int64_t> host_cu_seqlens_;
  int64_t *input_ids_ = nullptr, *cu_seqlens_ = nullptr, *targets_ = nullptr;
  float *rope_cos_ = nullptr, *rope_sin_ = nullptr;
  std::unique_ptr<DeltaRuleCudaPlan> delta_rule_plan_;
};

struct DeviceLayerContext {
  const ModelConfig& config;
  const DeviceLoraRun& lora;
  int layer;
  const DeviceBatch& batch;
  cuda::DeviceArena& arena;
  const cuda::Blas& blas;

  int64_t tokens() const { return batch.tokens(); }
  cuda::Target target() const { return arena.target(); }
  template <class T>
  T* alloc(int64_t n) const {
    return arena.alloc<T>(n);
  }
};

}  // namespace deltatune
