// Template text to tokens, as jinja2's lexer does it: text outside tags becomes Data (after the
// whitespace control of the tags around it), {{ }} and {% %} open and close token runs, {# #} and
// {% raw %} are resolved here.
//
// Whitespace control (jinja2 semantics, with transformers' settings as the defaults):
//   {%- / {{- / {#-   strip all whitespace before the tag;  -%} / -}} / -#}  all whitespace after.
//   trim_blocks       the first newline after %} or #} is dropped.
//   lstrip_blocks     spaces and tabs from the start of a line to {% or {# are dropped ({%+ keeps them).
//   keep_trailing_newline  false: one newline at the very end of the template is dropped.
// Newlines (\r\n, \r, \n) are read as \n everywhere.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace deltatune::jinja {

struct Options {
  bool trim_blocks = true;
  bool lstrip_blocks = true;
  bool keep_trailing_newline = false;
};

enum class Tok : uint8_t { Data, VariableBegin, VariableEnd, BlockBegin, BlockEnd, Name, String, Integer, Float, Operator, End };

struct Token {
  Tok type;
  uint32_t offset;   // into the normalized source, for line:column in messages
  std::string text;  // Data text, a name, a string's value, an operator
  int64_t integer = 0;
  double number = 0;
};

// Line:column of offsets into a text, for error messages ("line 12, column 5").
class SourceLines {
 public:
  explicit SourceLines(std::string_view text);
  std::string describe(uint32_t offset) const;

 private:
  std::string_view text_;
  std::vector<uint32_t> line_starts_;
};

// The source with newlines unified, as jinja2 reads it.
std::string normalize_newlines(std::string_view source, bool keep_trailing_newline);

// Tokens of a normalized source, ending with Tok::End. Throws Error naming line and column.
std::vector<Token> tokenize(std::string_view source, const Options& options);

std::string describe_token(const Token& t);

}  // namespace deltatune::jinja
