#include "text/jinja/lexer.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "text/jinja/repr.h"
#include "text/jinja/unicode.h"

namespace deltatune::jinja {

SourceLines::SourceLines(std::string_view text) : text_(text) {
  line_starts_.push_back(0);
  for (size_t i = 0; i < text.size(); ++i)
    if (text[i] == '\n') line_starts_.push_back(uint32_t(i + 1));
}

std::string SourceLines::describe(uint32_t offset) const {
  offset = std::min<uint32_t>(offset, uint32_t(text_.size()));
  const auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset) - 1;
  const size_t line = size_t(it - line_starts_.begin()) + 1;
  const size_t column = code_point_count(text_.substr(*it, offset - *it)) + 1;
  return str_cat("line ", line, ", column ", column);
}

std::string normalize_newlines(std::string_view source, bool keep_trailing_newline) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
      out += '\n';
    } else {
      out += source[i];
    }
  }
  if (!keep_trailing_newline && !out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::string describe_token(const Token& t) {
  switch (t.type) {
    case Tok::Data: return "template data";
    case Tok::VariableBegin: return "begin of print statement";
    case Tok::VariableEnd: return "end of print statement";
    case Tok::BlockBegin: return "begin of statement block";
    case Tok::BlockEnd: return "end of statement block";
    case Tok::Name: return "'" + t.text + "'";
    case Tok::String: return "string " + py_repr_string(t.text);
    case Tok::Integer: return "integer " + std::to_string(t.integer);
    case Tok::Float: return "float " + py_float_repr(t.number);
    case Tok::Operator: return "'" + t.text + "'";
    case Tok::End: return "end of template";
  }
  return "token";
}

namespace {

bool is_name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool is_name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

class Lexer {
 public:
  Lexer(std::string_view src, const Options& o) : src_(src), o_(o), lines_(src) {}

  std::vector<Token> run() {
    while (pos_ < src_.size()) root();
    tokens_.push_back({Tok::End, uint32_t(src_.size()), {}});
    return std::move(tokens_);
  }

 private:
  [[noreturn]] void error(size_t at, const std::string& what) const {
    fail(lines_.describe(uint32_t(at)), ": ", what);
  }

  void emit(Tok type, size_t at, std::string text = {}) { tokens_.push_back({type, uint32_t(at), std::move(text)}); }

  // Length of the Unicode whitespace run at i (Python's \s).
  size_t space_run(size_t i) const {
    size_t j = i;
    while (j < src_.size()) {
      size_t k = j;
      if (!is_space(next_code_point(src_, k))) break;
      j = k;
    }
    return j - i;
  }

  static std::string rstrip_space(std::string_view s) {
    // Walk forward remembering where the trailing whitespace run starts (UTF-8 is not reversible
    // byte by byte for multi-byte spaces such as U+3000).
    size_t end = 0;
    for (size_t i = 0; i < s.size();) {
      const char32_t c = next_code_point(s, i);
      if (!is_space(c)) end = i;
    }
    return std::string(s.substr(0, end));
  }

  static bool all_space(std::string_view s) {
    if (s.empty()) return false;  // jinja2 matches \s+: at least one character
    for (size_t i = 0; i < s.size();)
      if (!is_space(next_code_point(s, i))) return false;
    return true;
  }

  // Text before a tag, with the tag's whitespace control: '-' strips all whitespace before it;
  // otherwise lstrip_blocks (blocks and comments only, not {{ }}) drops the spaces between the
  // start of the line and the tag.
  void emit_text(size_t at, std::string_view text, char sign, bool lstrip_applies) {
    std::string t;
    if (sign == '-') {
      t = rstrip_space(text);
    } else if (sign != '+' && o_.lstrip_blocks && lstrip_applies) {
      const size_t nl = text.rfind('\n');
      const size_t line_start = nl == std::string_view::npos ? 0 : nl + 1;
      if ((line_start > 0 || line_starting_) && all_space(text.substr(line_start))) t = text.substr(0, line_start);
      else t = text;
    } else {
      t = text;
    }
    if (!t.empty()) emit(Tok::Data, at, std::move(t));
  }

  // At `at`: "{% raw %}" or "{%- raw -%}" etc.; returns the end of the opening tag or npos.
  size_t match_raw_begin(size_t at) const {
    size_t i = at + 2;
    if (i < src_.size() && (src_[i] == '-' || src_[i] == '+')) ++i;
    i += space_run(i);
    if (src_.compare(i, 3, "raw") != 0) return std::string_view::npos;
    i += 3;
    i += space_run(i);
    if (src_.compare(i, 3, "-%}") == 0) return i + 3 + space_run(i + 3);
    if (src_.compare(i, 2, "%}") == 0) return i + 2;
    return std::string_view::npos;
  }

  void root() {
    size_t tag = pos_;
    while (true) {
      tag = src_.find('{', tag);
      if (tag == std::string_view::npos || tag + 1 >= src_.size()) {
        emit(Tok::Data, pos_, std::string(src_.substr(pos_)));
        pos_ = src_.size();
        return;
      }
      const char kind = src_[tag + 1];
      if (kind == '{' || kind == '%' || kind == '#') break;
      ++tag;
    }
    const char kind = src_[tag + 1];
    const char sign = tag + 2 < src_.size() && (src_[tag + 2] == '-' || src_[tag + 2] == '+') ? src_[tag + 2] : 0;
    const std::string_view text = src_.substr(pos_, tag - pos_);
    if (kind == '%') {
      if (const size_t raw_end = match_raw_begin(tag); raw_end != std::string_view::npos) {
        emit_text(pos_, text, sign, true);
        line_starting_ = src_[raw_end - 1] == '\n';
        pos_ = raw_end;
        raw_body();
        return;
      }
    }
    emit_text(pos_, text, sign, kind != '{');
    line_starting_ = false;
    pos_ = tag + 2 + (sign ? 1 : 0);
    if (kind == '#') comment(tag);
    else tag_body(kind == '{' ? Tok::VariableBegin : Tok::BlockBegin, tag);
  }

  // After a closing %} or #}: trim_blocks drops one newline; -%} drops all whitespace.
  void after_tag_end(size_t end, char sign, bool trims) {
    pos_ = end;
    if (sign == '-') pos_ += space_run(pos_);
    else if (sign != '+' && trims && o_.trim_blocks && pos_ < src_.size() && src_[pos_] == '\n') ++pos_;
    line_starting_ = pos_ > end && src_[pos_ - 1] == '\n';
  }

  void comment(size_t begin) {
    const size_t close = src_.find("#}", pos_);
    if (close == std::string_view::npos) {
      // jinja2 reports this only when text follows: a template ending in "{#" just ends.
      if (pos_ < src_.size()) error(begin, "missing end of comment tag");
      pos_ = src_.size();
      return;
    }
    char sign = 0;
    if (close > pos_ && (src_[close - 1] == '-' || src_[close - 1] == '+')) sign = src_[close - 1];
    after_tag_end(close + 2, sign, true);
  }

  void raw_body() {
    // The first "{% endraw %}" (any whitespace control) ends the raw text.
    for (size_t at = src_.find("{%", pos_); at != std::string_view::npos; at = src_.find("{%", at + 1)) {
      size_t i = at + 2;
      char sign = 0;
      if (i < src_.size() && (src_[i] == '-' || src_[i] == '+')) sign = src_[i++];
      i += space_run(i);
      if (src_.compare(i, 6, "endraw") != 0) continue;
      i += 6;
      i += space_run(i);
      char end_sign = 0;
      if (i < src_.size() && (src_[i] == '-' || src_[i] == '+')) end_sign = src_[i++];
      if (src_.compare(i, 2, "%}") != 0) continue;
      emit_text(pos_, src_.substr(pos_, at - pos_), sign, true);
      after_tag_end(i + 2, end_sign, true);
      return;
    }
    if (pos_ < src_.size()) error(pos_, "missing end of raw directive");  // as for comments
  }

  void tag_body(Tok begin, size_t begin_at) {
    emit(begin, begin_at);
    const bool block = begin == Tok::BlockBegin;
    std::vector<char> brackets;  // open brackets: a tag cannot end inside them
    while (true) {
      pos_ += space_run(pos_);
      if (pos_ >= src_.size()) return;  // the parser reports the unclosed tag
      if (brackets.empty() && close_tag(block)) return;
      const char c = src_[pos_];
      if (number()) continue;
      if (is_name_start(c)) {
        size_t end = pos_;
        while (end < src_.size() && is_name_char(src_[end])) ++end;
        emit(Tok::Name, pos_, std::string(src_.substr(pos_, end - pos_)));
        pos_ = end;
        continue;
      }
      if (c == '\'' || c == '"') {
        string_literal();
        continue;
      }
      operator_token(brackets);
    }
  }

  // %} -%} +%} or }} -}} at pos_.
  bool close_tag(bool block) {
    const char* close = block ? "%}" : "}}";
    char sign = 0;
    size_t at = pos_;
    if ((src_[at] == '-' || (block && src_[at] == '+')) && src_.compare(at + 1, 2, close) == 0) sign = src_[at++];
    if (src_.compare(at, 2, close) != 0) return false;
    emit(block ? Tok::BlockEnd : Tok::VariableEnd, pos_);
    after_tag_end(at + 2, sign, block);
    return true;
  }

  bool number() {
    const size_t start = pos_;
    if (!is_digit(src_[start])) return false;
    // Digits with single underscores between them, as Python's literals allow.
    auto digits = [&](size_t i, auto accept) {
      if (i >= src_.size() || !accept(src_[i])) return std::string_view::npos;
      ++i;
      while (i < src_.size()) {
        if (accept(src_[i])) ++i;
        else if (src_[i] == '_' && i + 1 < src_.size() && accept(src_[i + 1])) i += 2;
        else break;
      }
      return i;
    };
    auto dec = [](char c) { return is_digit(c); };
    // Float: digits, then a fraction and/or an exponent (not after a '.', as in x.1.2).
    if (start == 0 || src_[start - 1] != '.') {
      size_t i = digits(start, dec);
      size_t frac = std::string_view::npos;
      if (i < src_.size() && src_[i] == '.') frac = digits(i + 1, dec);
      size_t after = frac != std::string_view::npos ? frac : i;
      size_t exp = std::string_view::npos;
      if (after < src_.size() && (src_[after] == 'e' || src_[after] == 'E')) {
        size_t j = after + 1;
        if (j < src_.size() && (src_[j] == '+' || src_[j] == '-')) ++j;
        exp = digits(j, dec);
      }
      const size_t end = exp != std::string_view::npos ? exp : frac;
      if (end != std::string_view::npos) {
        std::string text;
        for (size_t k = start; k < end; ++k)
          if (src_[k] != '_') text += src_[k];
        Token t{Tok::Float, uint32_t(start), {}};
        t.number = std::strtod(text.c_str(), nullptr);
        tokens_.push_back(std::move(t));
        pos_ = end;
        return true;
      }
    }
    int base = 10;
    size_t end;
    if (src_[start] == '0' && start + 1 < src_.size() && std::strchr("bBoOxX", src_[start + 1]) && src_[start + 1]) {
      const char p = char(std::tolower(static_cast<unsigned char>(src_[start + 1])));
      base = p == 'b' ? 2 : p == 'o' ? 8 : 16;
      // 0x_1f: an underscore may follow the prefix.
      size_t i = start + 2;
      if (i < src_.size() && src_[i] == '_') ++i;
      auto ok = [base](char c) {
        if (base == 2) return c == '0' || c == '1';
        if (base == 8) return c >= '0' && c <= '7';
        return std::isxdigit(static_cast<unsigned char>(c)) != 0;
      };
      end = digits(i, ok);
      if (end == std::string_view::npos) end = start + 1;  // just "0"; the letter lexes as a name
      if (end == start + 1) base = 10;
    } else if (src_[start] == '0') {
      end = digits(start, [](char c) { return c == '0'; });
    } else {
      end = digits(start, dec);
    }
    std::string text;
    for (size_t k = base == 10 ? start : start + 2; k < end; ++k)
      if (src_[k] != '_') text += src_[k];
    errno = 0;
    char* stop = nullptr;
    const unsigned long long v = std::strtoull(text.c_str(), &stop, base);
    if (errno == ERANGE || v > uint64_t(INT64_MAX))
      error(start, "integer literal " + std::string(src_.substr(start, end - start)) + " does not fit in 64 bits");
    Token t{Tok::Integer, uint32_t(start), {}};
    t.integer = int64_t(v);
    tokens_.push_back(std::move(t));
    pos_ = end;
    return true;
  }

  // Python's string escapes (jinja2 decodes literals with 'unicode-escape').
  void string_literal() {
    const size_t start = pos_;
    const char quote = src_[pos_++];
    std::string value;
    while (true) {
      if (pos_ >= src_.size()) error(start, "unterminated string literal");
      const char c = src_[pos_];
      if (c == quote) {
        ++pos_;
        break;
      }
      if (c != '\\') {
        value += c;
        ++pos_;
        continue;
      }
      if (pos_ + 1 >= src_.size()) error(start, "unterminated string literal");
      escape(value, start);
    }
    emit(Tok::String, start, std::move(value));
  }

  void escape(std::string& value, size_t start) {
    const size_t at = pos_;
    const char e = src_[pos_ + 1];
    pos_ += 2;
    auto hex = [&](int n) {
      char32_t v = 0;
      for (int k = 0; k < n; ++k, ++pos_) {
        if (pos_ >= src_.size() || !std::isxdigit(static_cast<unsigned char>(src_[pos_])))
          error(at, str_cat("truncated \\", e, " escape in string literal"));
        const char h = char(std::tolower(static_cast<unsigned char>(src_[pos_])));
        v = v * 16 + char32_t(h <= '9' ? h - '0' : h - 'a' + 10);
      }
      return v;
    };
    switch (e) {
      case '\n': return;  // a line continuation
      case '\\': value += '\\'; return;
      case '\'': value += '\''; return;
      case '"': value += '"'; return;
      case 'a': value += '\a'; return;
      case 'b': value += '\b'; return;
      case 'f': value += '\f'; return;
      case 'n': value += '\n'; return;
      case 'r': value += '\r'; return;
      case 't': value += '\t'; return;
      case 'v': value += '\v'; return;
      case 'x': append_utf8(value, hex(2)); return;
      case 'u': append_utf8(value, hex(4)); return;
      case 'U': {
        const char32_t c = hex(8);
        if (c > 0x10FFFF) error(at, "illegal Unicode character in string literal");
        append_utf8(value, c);
        return;
      }
      case 'N': error(at, "\\N{...} escapes are not supported");
      default: break;
    }
    if (e >= '0' && e <= '7') {
      char32_t v = char32_t(e - '0');
      for (int k = 0; k < 2 && pos_ < src_.size() && src_[pos_] >= '0' && src_[pos_] <= '7'; ++k, ++pos_)
        v = v * 8 + char32_t(src_[pos_] - '0');
      append_utf8(value, v);
      return;
    }
    value += '\\';
    if (static_cast<unsigned char>(e) >= 0x80) {
      // jinja2 turns non-ASCII characters into \x.. escapes before decoding, so a backslash in front
      // of one keeps that escape's text: '\é' reads as the four characters \xe9.
      size_t i = pos_ - 1;
      const char32_t c = next_code_point(src_, i);
      char buf[16];
      if (c < 0x100) std::snprintf(buf, sizeof buf, "x%02x", unsigned(c));
      else if (c < 0x10000) std::snprintf(buf, sizeof buf, "u%04x", unsigned(c));
      else std::snprintf(buf, sizeof buf, "U%08x", unsigned(c));
      value += buf;
      pos_ = i;
      return;
    }
    value += e;  // an unknown escape stays as written
    (void)start;
  }

  void operator_token(std::vector<char>& brackets) {
    static const char* const two[] = {"//", "**", "==", "!=", ">=", "<="};
    for (const char* op : two) {
      if (src_.compare(pos_, 2, op) == 0) {
        emit(Tok::Operator, pos_, op);
        pos_ += 2;
        return;
      }
    }
    const char c = src_[pos_];
    if (!std::strchr("+-/*%~[](){}><=.:|,;", c) || c == 0) {
      size_t i = pos_;
      const char32_t cp = next_code_point(src_, i);
      std::string shown;
      append_utf8(shown, cp);
      error(pos_, "unexpected char " + py_repr_string(shown));
    }
    if (c == '(' || c == '[' || c == '{') {
      brackets.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
    } else if (c == ')' || c == ']' || c == '}') {
      if (brackets.empty()) error(pos_, str_cat("unexpected '", c, "'"));
      if (brackets.back() != c) error(pos_, str_cat("unexpected '", c, "', expected '", brackets.back(), "'"));
      brackets.pop_back();
    }
    emit(Tok::Operator, pos_, std::string(1, c));
    ++pos_;
  }

  std::string_view src_;
  const Options& o_;
  SourceLines lines_;
  size_t pos_ = 0;
  bool line_starting_ = true;  // the previous tag ended a line: lstrip_blocks may strip the next
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> tokenize(std::string_view source, const Options& options) { return Lexer(source, options).run(); }

}  // namespace deltatune::jinja
