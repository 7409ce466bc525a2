// Qwen3.5 as llama.cpp stores it (architecture "qwen35"): the GGUF name and shape of every
// weight, and the transforms llama.cpp's converter applies on the way (spec/llamacpp.md §1-2;
// llama.cpp v0.5.0 conversion/qwen.py `Qwen3NextModel`, `_LinearAttentionVReorderBase`,
// src/llama-arch.cpp tensor names, src/models/qwen35.cpp shapes). Every fact about the layout
// lives here; the model and adapter exporters only follow this table.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "lora/adapter.h"
#include "model/weights.h"

namespace deltatune {

constexpr const char* kQwen35Arch = "qwen35";

// Value-head order. Hugging Face pairs value head j with key head j / (Hv/Hk) ("grouped"); ggml
// broadcasts key heads over value heads tiled (value head j uses key head j % Hk), so the
// converter moves old value head g·R + r to r·Hk + g (R = Hv/Hk). For a run of Hv heads of
// `head_dim` elements each, returns for every new index the old index it takes. Identity when
// Hk == Hv.
std::vector<int64_t> tiled_value_head_order(int64_t key_heads, int64_t value_heads, int64_t head_dim);

// What the converter does to the values themselves.
enum class GgufValueTransform {
  None,
  PlusOne,         // zero-centred RMSNorm weights: llama.cpp multiplies by w, HF by (1 + w)
  NegExp,          // A_log -> -exp(A_log): llama.cpp's ssm_a is A itself
};

// One tensor of the exported model. Its values, row-major over `shape()` = reverse(ne), are
//   out[r][c] = transform(source[row_order[r]][column_order[c]])
// where source is the Hugging Face weight viewed as [rows, row length] (conv1d [C,1,K] as [C,K];
// a 1-D weight as one row) and an empty order means the identity.
struct GgufTensorSpec {
  std::string name;            // llama.cpp's name, e.g. "blk.3.attn_qkv.weight"
  std::string hf_name;         // the checkpoint's name
  Tensor source;               // the Hugging Face weight
  std::vector<int64_t> ne;     // GGUF ne, innermost first
  std::vector<int64_t> row_order, column_order;
  GgufValueTransform transform = GgufValueTransform::None;
  // The converter keeps 1-D tensors (norms, ssm_a, ssm_dt.bias) and ssm_conv1d in F32 whatever
  // the output type (conversion/base.py prepare_tensors).
  bool always_f32 = false;
  // The LoRA-adaptable linear layer this weight is, if any (for merging and adapter export).
  std::optional<std::pair<int, LinearKind>> linear;

  int64_t row_length() const { return ne.empty() ? 1 : ne[0]; }
  int64_t rows() const;
};

// Every tensor of the GGUF in writing order: token_embd, then each block, then output_norm and
// (untied models only: llama.cpp reuses token_embd otherwise) output. Requires dk == dv for the
// linear-attention heads (llama.cpp sizes both from ssm.state_size).
std::vector<GgufTensorSpec> qwen35_gguf_tensors(const ModelConfig& config, const ModelWeights& weights);

// The GGUF base name llama.cpp gives the linear layer `kind` of block `layer`
// ("blk.0.attn_qkv.weight"), which LoRA tensors extend with ".lora_a" / ".lora_b".
std::string qwen35_gguf_linear_name(int layer, LinearKind kind);

}  // namespace deltatune
