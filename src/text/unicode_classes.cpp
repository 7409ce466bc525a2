#include "text/unicode_classes.h"

#include <utf8proc.h>

#include <cstdio>
#include <vector>

namespace deltatune {

namespace {

constexpr CodePointRange kLetters[] = {
    {0x1C89, 0x1C8A},   {0xA7CB, 0xA7CD},   {0xA7DA, 0xA7DC},   {0x105C0, 0x105F3}, {0x10D4A, 0x10D65},
    {0x10D6F, 0x10D85}, {0x10EC2, 0x10EC4}, {0x11380, 0x11389}, {0x1138B, 0x1138B}, {0x1138E, 0x1138E},
    {0x11390, 0x113B5}, {0x113B7, 0x113B7}, {0x113D1, 0x113D1}, {0x113D3, 0x113D3}, {0x11BC0, 0x11BE0},
    {0x13460, 0x143FA}, {0x16100, 0x1611D}, {0x16D40, 0x16D6C}, {0x18CFF, 0x18CFF}, {0x1E5D0, 0x1E5ED},
    {0x1E5F0, 0x1E5F0}, {0x2EBF0, 0x2EE5D}};
constexpr CodePointRange kNumbers[] = {{0x10D40, 0x10D49}, {0x116D0, 0x116E3}, {0x11BF0, 0x11BF9},
                                       {0x16130, 0x16139}, {0x16D70, 0x16D79}, {0x1CCF0, 0x1CCF9},
                                       {0x1E5F1, 0x1E5FA}};
constexpr CodePointRange kWhiteSpace[] = {{0x09, 0x0D},     {0x20, 0x20},     {0x85, 0x85},     {0xA0, 0xA0},
                                          {0x1680, 0x1680}, {0x2000, 0x200A}, {0x2028, 0x2029}, {0x202F, 0x202F},
                                          {0x205F, 0x205F}, {0x3000, 0x3000}};

class ClassTable {
 public:
  ClassTable() : classes_(0x110000, CharClass::Other) {
    for (char32_t c = 0; c < 0x110000; ++c) {
      switch (utf8proc_category(utf8proc_int32_t(c))) {
        case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
        case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO:
          classes_[c] = CharClass::Letter;
          break;
        case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
          classes_[c] = CharClass::Number;
          break;
        default:
          break;
      }
    }
    for (const auto& [a, b] : kLetters)
      for (char32_t c = a; c <= b; ++c) classes_[c] = CharClass::Letter;
    for (const auto& [a, b] : kNumbers)
      for (char32_t c = a; c <= b; ++c) classes_[c] = CharClass::Number;
    for (const auto& [a, b] : kWhiteSpace)
      for (char32_t c = a; c <= b; ++c) classes_[c] = CharClass::Space;
  }
  CharClass operator[](char32_t c) const { return c < 0x110000 ? classes_[c] : CharClass::Other; }

 private:
  std::vector<CharClass> classes_;
};

const ClassTable& class_table() {
  static const ClassTable table;
  return table;
}

}  // namespace

CharClass char_class(char32_t c) { return class_table()[c]; }

std::vector<CodePointRange> ranges_of(CharClass k) {
  const ClassTable& table = class_table();
  std::vector<CodePointRange> out;
  for (char32_t c = 0; c < 0x110000; ++c) {
    if (table[c] != k) continue;
    if (!out.empty() && out.back().second + 1 == c) out.back().second = c;
    else out.emplace_back(c, c);
  }
  return out;
}

bool is_white_space(char32_t c) {
  for (const auto& [a, b] : kWhiteSpace)
    if (c >= a && c <= b) return true;
  return false;
}

std::string class_body(std::span<const CodePointRange> ranges) {
  std::string out;
  char buf[40];
  for (const auto& [a, b] : ranges) {
    if (a == b) std::snprintf(buf, sizeof buf, "\\x{%x}", unsigned(a));
    else std::snprintf(buf, sizeof buf, "\\x{%x}-\\x{%x}", unsigned(a), unsigned(b));
    out += buf;
  }
  return out;
}


}  // namespace deltatune
