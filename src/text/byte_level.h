// GPT-2's byte-level alphabet: every byte value has a printable stand-in character, so a BPE
// vocabulary of strings can spell any byte sequence. Bytes that are printable in Latin-1
// ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves; the other 68 (controls, space, soft hyphen)
// take U+0100, U+0101, ... in byte order, which is why a space shows as 'Ġ' (U+0120) in the
// vocabulary. (openai/gpt-2 encoder.py bytes_to_unicode; tokenizers' ByteLevel uses the same.)
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace deltatune::byte_level {

// The stand-in character of each byte.
const std::array<char32_t, 256>& byte_to_char();

// The bytes a vocabulary token spells; false (out untouched) when some character of `token` is
// not in the alphabet, as for added tokens such as "<|im_start|>" written with other characters.
bool decode(std::string_view token, std::string& out);

}  // namespace deltatune::byte_level
