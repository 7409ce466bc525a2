// libFuzzer target: encode_with_offsets on arbitrary bytes (invalid UTF-8 included) with the
// tests' tiny tokenizer (every added-token flag, NFC, the Qwen split expression). Offsets must lie
// inside the input with start <= end, encode must agree with encode_with_offsets, and decode must
// give valid UTF-8 (scripts/fuzz.sh tokenizer_encode).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "text/tokenizer.h"
#include "text/utf8.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto tokenizer = deltatune::Tokenizer::load(DELTATUNE_TINY_TOKENIZER);
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<std::pair<size_t, size_t>> offsets;
  const auto ids = tokenizer.encode_with_offsets(text, &offsets);
  if (ids.size() != offsets.size() || ids != tokenizer.encode(text)) __builtin_trap();
  for (const auto& [b, e] : offsets)
    if (b > e || e > size) __builtin_trap();
  if (!deltatune::utf8::is_valid(tokenizer.decode(ids))) __builtin_trap();
  return 0;
}
