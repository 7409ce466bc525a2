#include "text/utf8.h"

namespace deltatune::utf8 {

size_t valid_sequence_length(std::string_view s, size_t i, size_t* invalid_len) {
  const auto b = static_cast<unsigned char>(s[i]);
  if (b < 0x80) return 1;
  // Table 3-7 of the Unicode standard: the lead byte fixes the length and the range allowed for
  // the second byte; later bytes are plain continuation bytes 80..BF.
  size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;
  if (b >= 0xC2 && b <= 0xDF) n = 2;
  else if (b >= 0xE0 && b <= 0xEF) {
    n = 3;
    if (b == 0xE0) lo = 0xA0;
    if (b == 0xED) hi = 0x9F;  // no surrogates
  } else if (b >= 0xF0 && b <= 0xF4) {
    n = 4;
    if (b == 0xF0) lo = 0x90;
    if (b == 0xF4) hi = 0x8F;  // nothing past U+10FFFF
  } else {
    *invalid_len = 1;
    return 0;
  }
  for (size_t k = 1; k < n; ++k) {
    const size_t j = i + k;
    if (j >= s.size()) {
      *invalid_len = k;
      return 0;
    }
    const auto c = static_cast<unsigned char>(s[j]);
    const unsigned char min = k == 1 ? lo : 0x80, max = k == 1 ? hi : 0xBF;
    if (c < min || c > max) {
      *invalid_len = k;
      return 0;
    }
  }
  return n;
}

void append(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += char(c);
  } else if (c < 0x800) {
    out += char(0xC0 | (c >> 6));
    out += char(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += char(0xE0 | (c >> 12));
    out += char(0x80 | ((c >> 6) & 0x3F));
    out += char(0x80 | (c & 0x3F));
  } else {
    out += char(0xF0 | (c >> 18));
    out += char(0x80 | ((c >> 12) & 0x3F));
    out += char(0x80 | ((c >> 6) & 0x3F));
    out += char(0x80 | (c & 0x3F));
  }
}

bool is_valid(std::string_view s) {
  size_t i = 0, bad = 0;
  while (i < s.size()) {
    // ASCII runs are the common case: skip them eight bytes at a time.
    while (i + 8 <= s.size()) {
      uint64_t word;
      __builtin_memcpy(&word, s.data() + i, 8);
      if (word & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= s.size()) break;
    const size_t n = valid_sequence_length(s, i, &bad);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string replace_invalid(std::string_view s, std::vector<size_t>* original_offset) {
  std::string out;
  out.reserve(s.size() + 16);
  if (original_offset) {
    original_offset->clear();
    original_offset->reserve(s.size() + 16);
  }
  size_t i = 0;
  while (i < s.size()) {
    size_t bad = 0;
    const size_t n = valid_sequence_length(s, i, &bad);
    if (n > 0) {
      out.append(s.data() + i, n);
      if (original_offset)
        for (size_t k = 0; k < n; ++k) original_offset->push_back(i + k);
      i += n;
    } else {
      append(out, kReplacement);
      if (original_offset)
        for (int k = 0; k < 3; ++k) original_offset->push_back(i);
      i += bad;
    }
  }
  if (original_offset) original_offset->push_back(s.size());
  return out;
}

}  // namespace deltatune::utf8
