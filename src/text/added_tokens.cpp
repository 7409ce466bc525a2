#include "text/added_tokens.h"

#include <utf8proc.h>

#include <algorithm>

#include "text/unicode_classes.h"
#include "text/utf8.h"

namespace deltatune {

bool is_word_char(char32_t c) {
  if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  if (c == 0x200C || c == 0x200D) return true;  // Join_Control
  if (char_class(c) == CharClass::Letter) return true;  // letters of any Unicode version
  // Other_Alphabetic symbols outside the letter and mark categories: circled and squared letters.
  if ((c >= 0x24B6 && c <= 0x24E9) || (c >= 0x1F130 && c <= 0x1F149) || (c >= 0x1F150 && c <= 0x1F169) ||
      (c >= 0x1F170 && c <= 0x1F189))
    return true;
  switch (utf8proc_category(utf8proc_int32_t(c))) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME: case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_PC:
      return true;
    default:
      return false;
  }
}

namespace {

// The character ending just before byte `end` of valid UTF-8 `s` (end > 0).
char32_t char_before(std::string_view s, size_t end) {
  size_t start = end - 1;
  while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
  return utf8::decode_valid(s, start);
}

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(std::vector<AddedToken> tokens, std::vector<std::string> patterns)
    : tokens_(std::move(tokens)), patterns_(std::move(patterns)) {
  for (uint32_t i = 0; i < patterns_.size(); ++i)
    if (!patterns_[i].empty()) by_first_byte_[static_cast<unsigned char>(patterns_[i][0])].push_back(i);
  for (auto& list : by_first_byte_)
    std::stable_sort(list.begin(), list.end(),
                     [&](uint32_t a, uint32_t b) { return patterns_[a].size() > patterns_[b].size(); });
}

void AddedTokenMatcher::split(std::string_view text, std::vector<Piece>& pieces) const {
  size_t covered = 0;  // end of the last piece
  size_t at = 0;       // where the search resumes
  while (at < text.size()) {
    // Leftmost-longest: the first position where some pattern matches, the longest one there.
    size_t start = at;
    int found = -1;
    for (; start < text.size() && found < 0; ++start) {
      for (uint32_t i : by_first_byte_[static_cast<unsigned char>(text[start])]) {
        if (text.compare(start, patterns_[i].size(), patterns_[i]) == 0) {
          found = int(i);
          break;
        }
      }
      if (found >= 0) break;
    }
    if (found < 0) break;
    const AddedToken& token = tokens_[size_t(found)];
    size_t stop = start + patterns_[size_t(found)].size();
    at = stop;
    if (token.single_word) {
      const bool space_before = start == 0 || !is_word_char(char_before(text, start));
      size_t after = stop;
      const bool space_after = stop == text.size() || !is_word_char(utf8::decode_valid(text, after));
      if (!space_before || !space_after) continue;
    }
    if (token.lstrip) {
      size_t s = start;
      while (s > 0) {
        size_t prev = s - 1;
        while (prev > 0 && (static_cast<unsigned char>(text[prev]) & 0xC0) == 0x80) --prev;
        size_t probe = prev;
        if (!is_white_space(utf8::decode_valid(text, probe))) break;
        s = prev;
      }
      start = std::max(s, covered);
    }
    if (token.rstrip) {
      while (stop < text.size()) {
        size_t next = stop;
        if (!is_white_space(utf8::decode_valid(text, next))) break;
        stop = next;
      }
    }
    if (covered < start) pieces.push_back({covered, start, -1});
    pieces.push_back({start, stop, token.id});
    covered = stop;
  }
  if (covered < text.size()) pieces.push_back({covered, text.size(), -1});
}

}  // namespace deltatune
