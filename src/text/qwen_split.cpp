#include "text/qwen_split.h"

#include "text/unicode_classes.h"
#include "text/utf8.h"

namespace deltatune {

const char* const kQwenSplitRegex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

namespace {

class Scanner {
 public:
  explicit Scanner(std::string_view text) : s_(text) {}

  // The character at byte i and the byte after it.
  char32_t at(size_t i, size_t* next) const {
    const auto b = static_cast<unsigned char>(s_[i]);
    if (b < 0x80) {
      *next = i + 1;
      return b;
    }
    size_t j = i;
    const char32_t c = utf8::decode_valid(s_, j);
    *next = j;
    return c;
  }
  CharClass cls(char32_t c) const { return c < 0x80 ? ascii_class(c) : char_class(c); }

  // End of the run of characters of class k starting at i.
  size_t run(size_t i, CharClass k) const {
    while (i < s_.size()) {
      size_t next;
      if (cls(at(i, &next)) != k) break;
      i = next;
    }
    return i;
  }

  // The end of the leftmost-first match at i (every character starts one).
  size_t match(size_t i) const {
    size_t n1;
    const char32_t c0 = at(i, &n1);
    const CharClass k0 = cls(c0);
    // (?i:'s|'t|'re|'ve|'m|'ll|'d): case-insensitive, so U+017F (long s) counts as s.
    if (c0 == '\'' && n1 < s_.size()) {
      size_t n2;
      const char32_t c1 = lower(at(n1, &n2));
      if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd' || c1 == 0x17F) return n2;
      if ((c1 == 'r' || c1 == 'v' || c1 == 'l') && n2 < s_.size()) {
        size_t n3;
        const char32_t c2 = lower(at(n2, &n3));
        if ((c1 == 'l' && c2 == 'l') || (c1 != 'l' && c2 == 'e')) return n3;
      }
    }
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if (k0 == CharClass::Letter) return run(n1, CharClass::Letter);
    if (c0 != '\r' && c0 != '\n' && k0 != CharClass::Number && n1 < s_.size()) {
      size_t n2;
      if (cls(at(n1, &n2)) == CharClass::Letter) return run(n2, CharClass::Letter);
    }
    // \p{N}: one at a time
    if (k0 == CharClass::Number) return n1;
    // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
    size_t start = k0 == CharClass::Other ? i : c0 == ' ' ? n1 : s_.size();
    if (start < s_.size()) {
      size_t n2;
      if (cls(at(start, &n2)) == CharClass::Other) {
        size_t end = run(n2, CharClass::Other);
        while (end < s_.size() && (s_[end] == '\r' || s_[end] == '\n')) ++end;
        return end;
      }
    }
    // What is left starts with white space: \s*[\r\n]+ | \s+(?!\S) | \s+
    size_t end = i, last_newline = std::string_view::npos, last_start = i;
    while (end < s_.size()) {
      size_t next;
      const char32_t c = at(end, &next);
      if (cls(c) != CharClass::Space) break;
      if (c == '\r' || c == '\n') last_newline = end;
      last_start = end;
      end = next;
    }
    if (end == i) return n1;  // not reached: every character starts some alternative
    if (last_newline != std::string_view::npos) return last_newline + 1;
    if (end == s_.size() || last_start == i) return end;  // (?!\S) holds, or \s+ alone
    return last_start;  // give the last space back so that no \S follows
  }

 private:
  static CharClass ascii_class(char32_t c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return CharClass::Letter;
    if (c >= '0' && c <= '9') return CharClass::Number;
    if (c == ' ' || (c >= 0x09 && c <= 0x0D)) return CharClass::Space;
    return CharClass::Other;
  }
  static char32_t lower(char32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

  std::string_view s_;
};

}  // namespace

void qwen_split(std::string_view text, std::vector<std::pair<size_t, size_t>>& pieces) {
  const Scanner scanner(text);
  size_t i = 0;
  while (i < text.size()) {
    const size_t end = scanner.match(i);
    pieces.emplace_back(i, end);
    i = end;
  }
}

}  // namespace deltatune
