// The frozen base model on the GPU: every weight of model/weights.h copied once to device memory
// as bf16 (whatever its file dtype), except the Gated DeltaNet's A_log and dt_bias, which stay
// float (they enter exp and softplus). One allocation holds them all; a tied lm_head is the
// embedding itself. An untied embedding stays in host memory: a step needs only its batch's rows
// (tokens × hidden, gathered on the host and copied), while the table is vocab × hidden (1.2 GiB
// at the 4B shape, an eighth of its weights). Built only with -DDELTATUNE_CUDA=ON.
#pragma once

#include <cuda_bf16.h>

#include <span>
#include <vector>

#include "core/cuda/device_arena.h"
#include "lora/cuda/lora_linear_cuda.h"
#include "model/weights.h"

namespace deltatune {

struct DeviceLinearAttention {
  DeviceLinear in_proj_qkv, in_proj_z, in_proj_b, in_proj_a, out_proj;
  const __nv_bfloat16* conv1d = nullptr;  // [C, K]
  const float* A_log = nullptr;           // [Hv]
  const float* dt_bias = nullptr;         // [Hv]
  const __nv_bfloat16* norm = nullptr;    // [dv]
};

struct DeviceFullAttention {
  DeviceLinear q_proj, k_proj, v_proj, o_proj;
  const __nv_bfloat16* q_norm = nullptr;  // [hd]
  const __nv_bfloat16* k_norm = nullptr;  // [hd]
};

struct DeviceMlp {
  DeviceLinear gate_proj, up_proj, down_proj;
};

struct DeviceLayer {
  LayerKind kind;
  const __nv_bfloat16* input_layernorm = nullptr;
  const __nv_bfloat16* post_attention_layernorm = nullptr;
  DeviceLinearAttention linear;
  DeviceFullAttention attn;
  DeviceMlp mlp;
};

class DeviceModel {
 public:
  // Copies (and converts) every weight of `model` to the target's memory.
  DeviceModel(const Model& model, const cuda::Target& target);

  const ModelConfig& config() const { return config_; }
  const std::vector<DeviceLayer>& layers() const { return layers_; }
  // x[t] = embedding row of ids[t], x in target memory ([tokens, D] bf16); the same ids on the
  // host and in target memory, already checked against the vocabulary (DeviceBatch does). The host
  // model this DeviceModel was made from must outlive it when the embedding is untied.
  void embed(std::span<const int64_t> ids, const int64_t* target_ids, __nv_bfloat16* x,
             const cuda::Target& target) const;
  bool embedding_on_device() const { return embed_tokens_ != nullptr; }
  const __nv_bfloat16* norm() const { return norm_; }                  // [D]
  const __nv_bfloat16* lm_head() const { return lm_head_; }            // [V, D]
  size_t bytes() const { return memory_.bytes(); }

 private:
  ModelConfig config_;
  cuda::Memory memory_;
  std::vector<DeviceLayer> layers_;
  const __nv_bfloat16* embed_tokens_ = nullptr;  // [V, D] on the device, or null:
  const Tensor* host_embed_tokens_ = nullptr;     // the host model's (untied) table
  const __nv_bfloat16* norm_ = nullptr;
  const __nv_bfloat16* lm_head_ = nullptr;
};

}  // namespace deltatune
