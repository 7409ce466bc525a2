// Added tokens (<|im_start|>, <think>, ...): found in the text before the model sees it, as
// tokenizers' AddedVocabulary does. Tokens with normalized=false are looked for in the raw text;
// those with normalized=true in the normalized pieces between them. Among tokens of one kind the
// search is leftmost-longest (an Aho-Corasick automaton in tokenizers), resuming after each match;
// then each match is weighed by its flags:
//   single_word  the match is dropped unless no word character (\w) touches it on either side;
//   lstrip       the piece grows left over whitespace (\s), but not into the previous piece;
//   rstrip       the piece grows right over whitespace.
// \w and \s are Rust regex's Unicode classes (Alphabetic, marks, decimal digits, connector
// punctuation, joiners; White_Space). The whitespace an lstrip/rstrip token takes is part of it:
// no other token stands for it, and its offsets cover it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace deltatune {

struct AddedToken {
  std::string content;
  int32_t id = 0;
  bool single_word = false, lstrip = false, rstrip = false, normalized = true, special = false;
};

class AddedTokenMatcher {
 public:
  // `patterns[i]` is what to look for for `tokens[i]` (its content, or its normalized form).
  AddedTokenMatcher() = default;
  AddedTokenMatcher(std::vector<AddedToken> tokens, std::vector<std::string> patterns);

  bool empty() const { return tokens_.empty(); }

  struct Piece {
    size_t begin, end;
    int32_t id;  // -1: plain text
  };
  // Appends the pieces of `text` in order: plain text (non-empty) and matched tokens. As in
  // tokenizers, an rstrip token followed by a token that starts inside its whitespace yields
  // overlapping pieces; nothing else overlaps.
  void split(std::string_view text, std::vector<Piece>& pieces) const;

 private:
  std::vector<AddedToken> tokens_;
  std::vector<std::string> patterns_;
  // Candidates by first byte, longest first: the leftmost-longest search tries them in order.
  std::vector<std::vector<uint32_t>> by_first_byte_ = std::vector<std::vector<uint32_t>>(256);
};

// Rust regex's \w (Unicode), as tokenizers' single_word sees it; its \s is is_white_space
// (unicode_classes.h).
bool is_word_char(char32_t c);

}  // namespace deltatune
