#include "text/jinja/unicode.h"

#include <algorithm>
#include <iterator>

namespace deltatune::jinja {

namespace {

struct CodeRange {
  char32_t first, last;
};
struct SimpleCase {
  char32_t from, to;
};
struct SpecialCase {
  char32_t from;
  const char32_t *upper, *lower, *title;
};

#include "text/jinja/unicode_tables.inc"

template <size_t N>
bool in_ranges(const CodeRange (&table)[N], char32_t c) {
  auto it = std::upper_bound(std::begin(table), std::end(table), c,
                             [](char32_t v, const CodeRange& r) { return v < r.first; });
  return it != std::begin(table) && c <= std::prev(it)->last;
}

template <size_t N>
const SimpleCase* find_simple(const SimpleCase (&table)[N], char32_t c) {
  auto it = std::lower_bound(std::begin(table), std::end(table), c,
                             [](const SimpleCase& m, char32_t v) { return m.from < v; });
  return it != std::end(table) && it->from == c ? it : nullptr;
}

const SpecialCase* find_special(char32_t c) {
  auto it = std::lower_bound(std::begin(kSpecialCase), std::end(kSpecialCase), c,
                             [](const SpecialCase& m, char32_t v) { return m.from < v; });
  return it != std::end(kSpecialCase) && it->from == c ? it : nullptr;
}

enum class Case { Upper, Lower, Title };

void append_mapped(std::u32string& out, char32_t c, Case which) {
  if (const SpecialCase* s = find_special(c)) {
    out += which == Case::Upper ? s->upper : which == Case::Lower ? s->lower : s->title;
    return;
  }
  const SimpleCase* m = nullptr;
  if (which == Case::Lower) m = find_simple(kLower, c);
  else if (which == Case::Title && (m = find_simple(kTitleNotUpper, c))) {}
  else m = find_simple(kUpper, c);
  out += m ? m->to : c;
}

// Python lowers capital sigma to final sigma when a cased letter precedes it (skipping
// case-ignorable ones) and none follows: \p{cased}\p{case-ignorable}* Σ !(\p{case-ignorable}*\p{cased}).
char32_t lower_sigma(const std::u32string& s, size_t i) {
  size_t j = i;
  while (j > 0 && is_case_ignorable(s[j - 1])) --j;
  if (j == 0 || !is_cased(s[j - 1])) return U'σ';
  size_t k = i + 1;
  while (k < s.size() && is_case_ignorable(s[k])) ++k;
  return k == s.size() || !is_cased(s[k]) ? U'ς' : U'σ';
}

void append_lower(std::u32string& out, const std::u32string& s, size_t i) {
  if (s[i] == U'Σ') out += lower_sigma(s, i);
  else append_mapped(out, s[i], Case::Lower);
}

}  // namespace

char32_t next_code_point(std::string_view s, size_t& i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  int extra = b0 >= 0xF0 && b0 <= 0xF4 ? 3 : b0 >= 0xE0 && b0 <= 0xEF ? 2 : b0 >= 0xC2 && b0 <= 0xDF ? 1 : -1;
  if (extra > 0 && i + extra < s.size()) {
    char32_t c = b0 & (0x3F >> extra);
    bool ok = true;
    for (int k = 1; k <= extra && ok; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      ok = (b & 0xC0) == 0x80;
      c = (c << 6) | (b & 0x3F);
    }
    // Reject overlong forms, surrogates and values past U+10FFFF, as Python's decoder does.
    const char32_t smallest = extra == 1 ? 0x80 : extra == 2 ? 0x800 : 0x10000;
    if (ok && c >= smallest && !(c >= 0xD800 && c <= 0xDFFF) && c <= 0x10FFFF) {
      i += extra + 1;
      return c;
    }
  }
  ++i;
  return 0xDC00 + b0;  // surrogateescape
}

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += char(c);
  } else if (c < 0x800) {
    out += char(0xC0 | (c >> 6));
    out += char(0x80 | (c & 0x3F));
  } else if (c >= 0xDC80 && c <= 0xDCFF) {
    out += char(c - 0xDC00);  // a byte that was not UTF-8 goes back out unchanged
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

std::u32string to_code_points(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) out += next_code_point(s, i);
  return out;
}

std::string to_utf8(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) append_utf8(out, c);
  return out;
}

size_t code_point_count(std::string_view s) {
  if (is_ascii(s)) return s.size();
  size_t n = 0;
  for (size_t i = 0; i < s.size(); ++n) next_code_point(s, i);
  return n;
}

bool is_ascii(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  return true;
}

bool is_space(char32_t c) {
  switch (c) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x1C: case 0x1D: case 0x1E:
    case 0x1F: case 0x20: case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029:
    case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}

bool is_printable(char32_t c) { return !in_ranges(kNonPrintable, c); }
bool is_cased(char32_t c) { return in_ranges(kCased, c); }
bool is_case_ignorable(char32_t c) { return in_ranges(kCaseIgnorable, c); }
bool is_ascii_digit(char32_t c) { return c >= '0' && c <= '9'; }

std::string py_upper(std::string_view s) {
  std::u32string out;
  for (char32_t c : to_code_points(s)) append_mapped(out, c, Case::Upper);
  return to_utf8(out);
}

std::string py_lower(std::string_view s) {
  const std::u32string cps = to_code_points(s);
  std::u32string out;
  for (size_t i = 0; i < cps.size(); ++i) append_lower(out, cps, i);
  return to_utf8(out);
}

std::string py_title(std::string_view s) {
  const std::u32string cps = to_code_points(s);
  std::u32string out;
  bool previous_cased = false;
  for (size_t i = 0; i < cps.size(); ++i) {
    if (previous_cased) append_lower(out, cps, i);
    else append_mapped(out, cps[i], Case::Title);
    previous_cased = is_cased(cps[i]);
  }
  return to_utf8(out);
}

std::string py_capitalize(std::string_view s) {
  const std::u32string cps = to_code_points(s);
  std::u32string out;
  for (size_t i = 0; i < cps.size(); ++i) {
    if (i == 0) append_mapped(out, cps[i], Case::Title);
    else append_lower(out, cps, i);
  }
  return to_utf8(out);
}

}  // namespace deltatune::jinja
