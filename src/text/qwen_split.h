// The split expression of Qwen2, Qwen3 and Qwen3.5's tokenizer.json, matched by hand:
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|
//   \s*[\r\n]+|\s+(?!\S)|\s+
// Each alternative is decided by looking at the class (unicode_classes.h) of a character or two,
// so one pass over the text with a table lookup per character replaces the regex engine. Gives
// the pieces SplitPattern gives for that expression (tests/text/pretokenizer_test.cpp checks).
#pragma once

#include <string_view>
#include <utility>
#include <vector>

namespace deltatune {

extern const char* const kQwenSplitRegex;

// Appends the [begin, end) byte ranges of the matches in valid UTF-8 `text` (they cover it).
void qwen_split(std::string_view text, std::vector<std::pair<size_t, size_t>>& pieces);

}  // namespace deltatune
