// A llama.cpp GGUF (architecture "qwen35") as a base model: the settings from its metadata keys and
// every weight brought back to the Hugging Face layout the model code computes with, by undoing
// the converter's transforms listed in export/qwen35_gguf.h (spec/llamacpp.md §1-2):
//   - value heads: the tiled order (Hv > Hk only) moved back to Hugging Face's grouped order on
//     attn_qkv's V rows, attn_gate, ssm_alpha/ssm_beta rows, ssm_conv1d's V channels, ssm_a,
//     ssm_dt.bias and ssm_out's columns;
//   - ssm_a = -exp(A_log) back to A_log = log(-ssm_a);
//   - zero-centred norms (attn_norm, post_attention_norm, attn_q_norm/attn_k_norm, output_norm)
//     w + 1 back to w (ssm_norm has no +1);
//   - ssm_conv1d {K, C} viewed as [C, 1, K]; GGUF ne {in, out} is the [out, in] weight as is.
// Tensors the converter left alone are views into the mapped file (zero copy, any of F32, F16,
// BF16, Q8_0); reordered ones are copies in the same type (Q8_0 blocks move whole; a column
// reorder that would split blocks dequantizes that tensor to F32); the transformed 1-D tensors
// are F32. The model takes the Qwen3_5ForCausalLM names (`model.layers.N.*`).
#pragma once

#include <string>

#include "io/gguf.h"
#include "model/config.h"

namespace deltatune {

// The model settings a qwen35 GGUF's metadata gives (llama.cpp src/models/qwen35.cpp
// load_arch_hparams, llama_model::load_hparams), checked; errors name the file and the key.
ModelConfig qwen35_config_from_gguf(const GgufFile& file);

// The type a GGUF model's matrices were written in: general.file_type when it names F32, F16,
// BF16 or Q8_0 (what export-gguf and llama.cpp's converter write), else the type of the first
// block's ffn_up. For writing a merged model back in its base's type.
GgmlType gguf_model_matrix_type(const GgufFile& file);

}  // namespace deltatune
