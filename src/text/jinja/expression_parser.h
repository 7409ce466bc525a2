// The expression half of the template parser, and the token stream both halves read: jinja2's
// expression grammar (see parser.h for the precedence). parser.cpp adds the statements.
#pragma once

#include <algorithm>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "text/jinja/ast.h"
#include "text/jinja/lexer.h"
#include "text/jinja/parser.h"

namespace deltatune::jinja {

class ExpressionParser {
 public:
  ExpressionParser(const std::vector<Token>& tokens, std::string_view source) : t_(tokens), lines_(source) {}

 protected:
  using Body = ast::Body;
  using ExprPtr = ast::ExprPtr;
  using MacroDef = ast::MacroDef;

  const Token& cur() const { return t_[pos_]; }
  const Token& look() const { return t_[std::min(pos_ + 1, t_.size() - 1)]; }
  void advance() {
    if (pos_ + 1 < t_.size()) ++pos_;
  }
  bool is_op(std::string_view op) const { return cur().type == Tok::Operator && cur().text == op; }
  bool is_name(std::string_view n) const { return cur().type == Tok::Name && cur().text == n; }
  bool skip_op(std::string_view op) {
    if (!is_op(op)) return false;
    advance();
    return true;
  }
  bool skip_name(std::string_view n) {
    if (!is_name(n)) return false;
    advance();
    return true;
  }

  [[noreturn]] void error(uint32_t offset, const std::string& what) const {
    fail(lines_.describe(offset), ": ", what);
  }
  [[noreturn]] void expected(const std::string& what) const {
    error(cur().offset, str_cat("expected ", what, ", got ", describe_token(cur())));
  }
  void expect_op(std::string_view op) {
    if (!skip_op(op)) expected(str_cat("'", op, "'"));
  }
  void expect_name(std::string_view n) {
    if (!skip_name(n)) expected(str_cat("'", n, "'"));
  }
  std::string expect_identifier() {
    if (cur().type != Tok::Name) expected("a name");
    std::string n = cur().text;
    advance();
    return n;
  }
  void expect(Tok type, const char* what) {
    if (cur().type != type) expected(what);
    advance();
  }

  // Bounds the recursion of parsing (and so of rendering, which walks the same tree).
  struct Nest {
    explicit Nest(ExpressionParser& p) : p(p) {
      if (++p.depth_ > kMaxNesting) p.error(p.cur().offset, str_cat("the template nests deeper than ", kMaxNesting, " levels"));
    }
    ~Nest() { --p.depth_; }
    ExpressionParser& p;
  };

  // Saves and sets parser context for a nested body; restores it after.
  struct Context {
    Context(ExpressionParser& p, bool soft, int loops) : p(p), soft(p.soft_), loops(p.loops_) {
      p.soft_ = soft;
      p.loops_ = loops;
    }
    ~Context() {
      p.soft_ = soft;
      p.loops_ = loops;
    }
    ExpressionParser& p;
    bool soft;
    int loops;
  };

  // ---- expressions ------------------------------------------------------------------------

  bool is_tuple_end(std::initializer_list<std::string_view> extra_end) const;
  // Comma-separated expressions: one is itself, several (or a trailing comma) make a tuple.
  ExprPtr parse_tuple(bool simplified, bool with_condexpr, std::initializer_list<std::string_view> extra_end,
                      bool explicit_parentheses);
  ExprPtr parse_expression();
  ExprPtr parse_conditional();
  ExprPtr parse_or();
  ExprPtr parse_and();
  ExprPtr parse_not();
  ExprPtr parse_compare();
  ExprPtr parse_math1();
  ExprPtr parse_concat();
  ExprPtr parse_math2();
  ExprPtr parse_pow();
  // jinja2: "-x|f" is "(-x)|f" and "-x.y" is "-(x.y)": the sign takes a postfixed primary.
  ExprPtr parse_unary(bool with_filter);
  ExprPtr parse_primary();
  ExprPtr name_node(uint32_t at, const std::string& n);
  ExprPtr parse_list();
  ExprPtr parse_dict();
  ExprPtr parse_postfix(ExprPtr node);
  ExprPtr parse_filter_expr(ExprPtr node);
  ExprPtr parse_subscript(ExprPtr node);
  // An index or a slice a:b:c, any part optional.
  ExprPtr parse_subscribed();
  void parse_call_args(ast::CallArgs& args);
  ExprPtr parse_call(ExprPtr callee);
  // name(args)|name2...; `node` is null for {% filter %} and {% set x | f %} blocks.
  ExprPtr parse_filter(ExprPtr node, bool start_inline);
  ExprPtr parse_test(ExprPtr node);

  const std::vector<Token>& t_;
  SourceLines lines_;
  size_t pos_ = 0;
  int depth_ = 0;
  bool soft_ = false;  // inside {% if %} or an inline if, where unknown filters fail only at run time
  int loops_ = 0;      // enclosing for loops of the current macro or template body
  std::vector<MacroDef*> macros_;  // macros being parsed, innermost last
};

}  // namespace deltatune::jinja
