#include "text/byte_level.h"

#include "text/utf8.h"

namespace deltatune::byte_level {

namespace {

bool stands_for_itself(int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE); }

struct Tables {
  std::array<char32_t, 256> to_char{};
  std::array<int16_t, 512> to_byte{};  // every stand-in is below U+0200
  Tables() {
    to_byte.fill(-1);
    char32_t next = 0x100;
    for (int b = 0; b < 256; ++b) {
      to_char[size_t(b)] = stands_for_itself(b) ? char32_t(b) : next++;
      to_byte[to_char[size_t(b)]] = int16_t(b);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

// The byte a stand-in character spells, or -1 when c is not one.
int char_to_byte(char32_t c) { return c < 512 ? tables().to_byte[c] : -1; }

}  // namespace

const std::array<char32_t, 256>& byte_to_char() { return tables().to_char; }

bool decode(std::string_view token, std::string& out) {
  const size_t start = out.size();
  size_t i = 0;
  while (i < token.size()) {
    size_t bad = 0;
    if (utf8::valid_sequence_length(token, i, &bad) == 0) {
      out.resize(start);
      return false;
    }
    const int b = char_to_byte(utf8::decode_valid(token, i));
    if (b < 0) {
      out.resize(start);
      return false;
    }
    out += char(b);
  }
  return true;
}

}  // namespace deltatune::byte_level
