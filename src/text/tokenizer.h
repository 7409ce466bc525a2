// The Hugging Face tokenizer of the Qwen family (Qwen2, Qwen3, Qwen3.5): tokenizer.json with NFC,
// a Split regex and ByteLevel pre-tokenization, a byte-level BPE model, added tokens and the
// ByteLevel decoder. Encoding gives the ids and offsets tokenizers 0.23 gives (checked against it
// on a corpus: tests/text/tokenizer_test.cpp). Anything else a tokenizer.json may say is refused
// with an Error naming the file, the JSON path and the value.
//
// Text that is not valid UTF-8 is encoded as if each invalid sequence were U+FFFD, the way a
// Python caller would hand it to tokenizers after bytes.decode(errors="replace"); offsets still
// point into the bytes given (docs/design-notes.md, "Tokenizer").
//
// Copies share one immutable model; encode and decode may run on many threads at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace deltatune {

class Tokenizer {
 public:
  // A tokenizer.json file, a folder holding tokenizer.json, or a GGUF model whose tokenizer.*
  // keys describe a Qwen byte-level BPE tokenizer (export/gguf_tokenizer.h).
  static Tokenizer load(const std::string& path);
  // The text of a tokenizer.json; `name` stands for the file in error messages.
  static Tokenizer from_json(std::string_view json_text, const std::string& name = "tokenizer.json");

  std::vector<int32_t> encode(std::string_view text) const;  // added/special tokens recognised
  // Same, plus for each id the byte range [first, second) of `text` it came from (added tokens
  // included; a token produced from part of a multi-byte character covers the whole character).
  std::vector<int32_t> encode_with_offsets(std::string_view text, std::vector<std::pair<size_t, size_t>>* offsets) const;
  // Ids that name no token are skipped, as tokenizers does (a model's padded vocabulary may
  // produce them). Bytes that do not form UTF-8 come out as U+FFFD (String::from_utf8_lossy).
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;
  std::optional<int32_t> token_to_id(std::string_view token) const;
  // The token's spelling in the vocabulary ("Ġthe"); throws Error when no token has this id.
  std::string id_to_token(int32_t id) const;
  int32_t vocab_size() const;  // highest id + 1, added tokens included
  bool is_special(int32_t id) const;

  struct Impl;

 private:
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

}  // namespace deltatune
