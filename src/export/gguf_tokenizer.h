// The tokenizer.* metadata of a GGUF, read from a Hugging Face tokenizer folder the way llama.cpp's
// converter writes it for Qwen3.5 (conversion/base.py `_set_vocab_gpt2`, `get_vocab_base`;
// gguf-py vocab.py `SpecialVocab`):
//   tokenizer.ggml.model = "gpt2", tokenizer.ggml.pre = "qwen35" (the name llama-vocab.cpp maps to
//   Qwen3.5's pre-tokenizer; the converter finds it by hashing a tokenization, we name it),
//   tokenizer.ggml.tokens / token_type: one entry per id below the model's vocab_size, added tokens
//   CONTROL (special, or looking special like "<|...|>") or USER_DEFINED, ids the tokenizer does
//   not use "[PAD<id>]" UNUSED;
//   tokenizer.ggml.merges: "a b" (a space inside a part written as U+0120, as gguf-py does);
//   special token ids: tokenizer_config.json's bos/eos/unk/sep/pad/mask tokens looked up among the
//   added tokens, then config.json's *_token_id for those still unset; add_bos/eos/sep_token flags;
//   tokenizer.chat_template from tokenizer_config.json, else chat_template.jinja (plus
//   additional_chat_templates/*.jinja as named templates), else chat_template.json.
// Not reproduced (Qwen's tokenizer uses none of them): SentencePiece vocabularies, normalizer
// flags, TemplateProcessing post-processors, the re-encoding of non-normalized added tokens.
//
// The way back, for a GGUF used as a base model: the tokenizer.json that these keys describe
// (byte-level BPE with "qwen2" or "qwen35" pre-tokenization, the only ones deltatune rebuilds),
// and the chat template and named special tokens a tokenizer_config.json would hold.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "io/gguf.h"

namespace deltatune {

// tokenizer_dir: tokenizer.json (required), tokenizer_config.json and chat templates;
// config_json: the model's config.json (special token ids). Appends the keys to `metadata`.
void add_gguf_tokenizer(const std::string& tokenizer_dir, const std::string& config_json, int64_t vocab_size,
                        GgufMetadata& metadata);

// The Split expression of a Hugging Face tokenizer.json that llama.cpp's `tokenizer.ggml.pre`
// name stands for ("qwen2": Qwen2 and Qwen3; "qwen35": Qwen3.5, which adds \p{M}), or empty.
std::string qwen_split_regex(const std::string& pre);

// tokenizer.json text for a GGUF's tokenizer.* keys: NORMAL tokens form the BPE vocabulary,
// CONTROL tokens become special added tokens and USER_DEFINED ones plain added tokens, UNUSED
// ids ("[PAD<id>]") are left out; merges "a b" become pairs. Throws an Error naming the file and
// the key when a key is missing or describes a tokenizer deltatune cannot rebuild.
std::string tokenizer_json_from_gguf(const GgufFile& file);

// What a tokenizer_config.json would say: {"chat_template": ..., "bos_token": ..., "eos_token":
// ..., ...} from tokenizer.chat_template and the tokenizer.ggml.*_token_id keys (absent keys are
// left out).
nlohmann::ordered_json tokenizer_config_from_gguf(const GgufFile& file);

}  // namespace deltatune
