// The frozen weights of a Qwen3.5 text model: views (in their file dtype) into a mapped checkpoint
// or into memory the Model owns. Every tensor's Hugging Face name and expected shape are listed
// once, in weight_table().
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "model/config.h"

namespace deltatune {

class TensorStore;
class GgufFile;

struct LinearAttentionWeights {  // linear_attn.*
  Tensor in_proj_qkv;  // [2*Hk*dk + Hv*dv, D]: all q heads, all k heads, all v heads
  Tensor in_proj_z;    // [Hv*dv, D]
  Tensor in_proj_b;    // [Hv, D]
  Tensor in_proj_a;    // [Hv, D]
  Tensor conv1d;       // [C, 1, K]
  Tensor A_log;        // [Hv]
  Tensor dt_bias;      // [Hv]
  Tensor norm;         // [dv], plain RMSNorm weight (around 1)
  Tensor out_proj;     // [D, Hv*dv]
};

struct FullAttentionWeights {  // self_attn.*
  Tensor q_proj;  // [2*H*hd, D]: per head, hd query rows then hd gate rows
  Tensor k_proj;  // [Hkv*hd, D]
  Tensor v_proj;  // [Hkv*hd, D]
  Tensor o_proj;  // [D, H*hd]
  Tensor q_norm;  // [hd], zero-centred
  Tensor k_norm;  // [hd], zero-centred
};

struct MlpWeights {
  Tensor gate_proj;  // [I, D]
  Tensor up_proj;    // [I, D]
  Tensor down_proj;  // [D, I]
};

struct LayerWeights {
  LayerKind kind;
  Tensor input_layernorm;           // [D], zero-centred
  Tensor post_attention_layernorm;  // [D], zero-centred
  LinearAttentionWeights linear;    // when kind == LinearAttention
  FullAttentionWeights attn;        // when kind == FullAttention
  MlpWeights mlp;
};

struct ModelWeights {
  Tensor embed_tokens;  // [V, D]
  Tensor norm;          // [D], zero-centred
  Tensor lm_head;       // [V, D]; the embedding itself when tied
  std::vector<LayerWeights> layers;
};

// One row of the weight table: the checkpoint name, the expected shape and where it goes.
struct WeightSlot {
  std::string name;  // e.g. "model.language_model.layers.3.self_attn.q_proj.weight"
  std::vector<int64_t> shape;
  Tensor* tensor;
};
std::vector<WeightSlot> weight_table(const ModelConfig& config, ModelWeights& weights);

// A loaded (or generated) model: config, weights, and whatever keeps the weights' memory alive.
class Model {
 public:
  // `path`: a Hugging Face checkpoint folder (config.json + safetensors, sharded or not), or a
  // llama.cpp GGUF file of architecture qwen35 (load_gguf).
  static Model load(const std::string& path);
  // A qwen35 GGUF (f32, f16, bf16 and q8_0 tensors), brought back to the Hugging Face layout
  // (model/gguf_model.h).
  static Model load_gguf(const std::string& path);
  // Random weights (for benchmarks and demos), stored as `dtype`. Norm weights, A_log, dt_bias are
  // drawn around the values real checkpoints hold.
  static Model random(const ModelConfig& config, DType dtype, uint64_t seed);

  // Writes config.json and model.safetensors into `folder` (created if needed), atomically each.
  void save(const std::string& folder) const;

  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  const std::string& source() const { return source_; }
  // The GGUF file the model was loaded from (its metadata and tokenizer), or null.
  const GgufFile* gguf() const { return gguf_.get(); }

  // Each distinct tensor once (a tied lm_head is not counted twice).
  std::vector<std::pair<std::string, Tensor>> named_tensors() const;

 private:
  ModelConfig config_;
  ModelWeights weights_;
  std::string source_;
  std::shared_ptr<const TensorStore> store_;
  std::shared_ptr<const GgufFile> gguf_;
  std::vector<HostTensor> owned_;
};

}  // namespace deltatune
