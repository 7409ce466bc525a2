// libFuzzer target: Tokenizer::from_json on arbitrary bytes must return or throw Error, never
// crash or trip ASan/UBSan; a tokenizer it accepts must encode and decode a fixed text (which
// walks its added tokens, split expressions and merges). Seeded with the tiny tokenizer of the
// tests (scripts/fuzz.sh tokenizer_json).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "text/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const auto tokenizer = deltatune::Tokenizer::from_json(text);
    std::vector<std::pair<size_t, size_t>> offsets;
    const std::string sample = "the word is cafe\xCC\x81 <s><s> [LS]  [RS] ab\xFF 12 ";
    const auto ids = tokenizer.encode_with_offsets(sample, &offsets);
    for (const auto& [b, e] : offsets)
      if (b > e || e > sample.size()) __builtin_trap();
    tokenizer.decode(ids, true);
  } catch (const deltatune::Error&) {
  }
  return 0;
}
