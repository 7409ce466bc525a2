// The character classes tokenizer.json's split expressions use, as tokenizers 0.23 sees them:
// its Oniguruma knows Unicode 16.0, utf8proc (our category data) 15.0, and PCRE2 10.42 14.0.
// So the letters and numbers Unicode 15.1 and 16.0 added are listed here, and both our split
// engines (the hand-written Qwen matcher, and PCRE2 with \p{L}, \p{N}, \s rewritten as these
// classes' ranges) use the one table.
// Measured over every code point against tokenizers (scripts/probe_tokenizer_classes.py).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace deltatune {

using CodePointRange = std::pair<char32_t, char32_t>;  // first, last

enum class CharClass : uint8_t { Other, Letter, Number, Space };

// \p{L}, \p{N}, \s (White_Space, as Oniguruma and Rust's regex have it; PCRE2's \s adds U+180E),
// or none of them. A table lookup after the first call.
CharClass char_class(char32_t c);

bool is_white_space(char32_t c);

// The code points of one class, as ranges.
std::vector<CodePointRange> ranges_of(CharClass k);

// PCRE2 syntax for a class body ("\x{9}-\x{d}\x{20}...") holding the ranges.
std::string class_body(std::span<const CodePointRange> ranges);

}  // namespace deltatune
