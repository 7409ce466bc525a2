// UTF-8 as the tokenizer needs it: one code point at a time, and the replacement of invalid
// bytes with U+FFFD the way Rust's String::from_utf8_lossy (and so Hugging Face tokenizers'
// decode) and Python's bytes.decode(errors="replace") do it: each maximal prefix of a valid
// sequence that cannot be completed ("maximal subpart", Unicode 15 §3.9, Table 3-8) becomes one
// U+FFFD, and a byte that can begin no sequence becomes one U+FFFD.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace deltatune::utf8 {

constexpr char32_t kReplacement = 0xFFFD;

// Length of the valid sequence starting at s[i], or 0 when the bytes there do not start one; in
// that case *invalid_len is the length of the maximal subpart to replace (at least 1).
size_t valid_sequence_length(std::string_view s, size_t i, size_t* invalid_len);

// Decodes the valid sequence at s[i] (the caller knows it is valid) and advances i past it.
inline char32_t decode_valid(std::string_view s, size_t& i) {
  const auto b = static_cast<unsigned char>(s[i]);
  if (b < 0x80) {
    ++i;
    return b;
  }
  int n = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;
  char32_t c = b & (0x7F >> n);
  for (int k = 1; k < n; ++k) c = (c << 6) | (static_cast<unsigned char>(s[i + size_t(k)]) & 0x3F);
  i += size_t(n);
  return c;
}

inline size_t encoded_length(char32_t c) { return c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4; }

void append(std::string& out, char32_t c);

// True when every byte of s belongs to a valid sequence.
bool is_valid(std::string_view s);

// s with every invalid subsequence replaced by U+FFFD. When `original_offset` is given it receives,
// for each byte position of the result plus one past the end, the byte position of s it came from
// (the start of the replaced subsequence for the three bytes of a replacement), so ranges of the
// result map back to ranges of s.
std::string replace_invalid(std::string_view s, std::vector<size_t>* original_offset = nullptr);

}  // namespace deltatune::utf8
