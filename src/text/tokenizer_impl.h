// What a loaded tokenizer holds; tokenizer_file.cpp fills it from tokenizer.json and
// tokenizer.cpp runs it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "text/added_tokens.h"
#include "text/bpe.h"
#include "text/pretokenizer.h"
#include "text/tokenizer.h"

namespace deltatune {

struct Tokenizer::Impl {
  std::string path;
  bool nfc = false;
  std::vector<SplitPattern> splits;  // applied in order, each refining the pieces of the last
  AddedTokenMatcher raw_tokens;      // added tokens with normalized=false
  AddedTokenMatcher normalized_tokens;
  std::unique_ptr<BpeModel> bpe;
  TokenIds vocab;  // the model's vocabulary
  TokenIds added;  // added tokens by content
  // By id (size vocab_size): the spelling, whether the id names a token, whether it is special,
  // whether decode(skip_special_tokens) drops it, and the bytes it decodes to.
  std::vector<std::string> spelling;
  std::vector<uint8_t> known, special, skipped;
  std::vector<std::string> decoded;
};

}  // namespace deltatune
