// Tokens to statements, following jinja2's grammar (jinja2/parser.py), with its operator
// precedence from loosest to tightest:
//   x if c else y  |  or  |  and  |  not  |  == != < <= > >= in, not in  |  + -  |  ~  |
//   * / // %  |  **  |  unary - +  |  .attr [index] (call) |filter is test
// Tags: if/elif/else, for/else (with loop filters and recursive), set (and set blocks, ns.attr),
// macro, call, filter, with, print, break/continue (the loopcontrols extension transformers
// enables) and transformers' generation. Anything else (include, extends, block, import, ...) is
// an error naming the tag and its line.
#pragma once

#include <string_view>
#include <vector>

#include "text/jinja/ast.h"
#include "text/jinja/lexer.h"

namespace deltatune::jinja {

// Nesting of expressions and statements: deeper templates are refused, so that parsing and
// rendering recurse a bounded number of times.
constexpr int kMaxNesting = 100;

ast::Body parse(const std::vector<Token>& tokens, std::string_view source);

}  // namespace deltatune::jinja
