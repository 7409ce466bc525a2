// Unicode NFC with the alignment Hugging Face tokenizers keeps: for every byte of the normalized
// text, the byte range of the input it stands for, so token offsets point into the caller's text.
//
// The alignment follows tokenizers' NormalizedString::transform fed by the
// unicode-normalization-alignments crate: each output character carries a change count (0: it
// replaces one input character; -n: it also absorbs the n input characters after it; +1: it is
// new) and takes the range of the input character it replaces, or of the previous input
// character when it is new. So "e" + U+0301 -> "é" maps to the "e" alone, and the combining
// accent is covered by no token. Character data comes from utf8proc (Unicode 15), brought back to
// the Unicode 9.0 that tokenizers' tables have (normalizer.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace deltatune {

using ByteRange = std::pair<uint32_t, uint32_t>;

struct NormalizedText {
  std::string text;
  // For each byte of `text`, the range of input bytes it came from; empty when `identity`.
  std::vector<ByteRange> alignment;
  // Normalization changed nothing: `text` is the input and every byte maps to its own character.
  bool identity = true;
};

// True when NFC leaves `text` (valid UTF-8) unchanged for certain: every character is one that
// never decomposes, reorders or composes. Cheap; lets callers skip normalize_nfc.
bool nfc_is_identity(std::string_view text);

// NFC of valid UTF-8 `text`. With `with_alignment` false only `text`/`identity` are filled.
void normalize_nfc(std::string_view text, bool with_alignment, NormalizedText& out);

}  // namespace deltatune
