#include "text/jinja/expression_parser.h"

#include "text/jinja/builtins.h"

namespace deltatune::jinja {

using namespace ast;

bool ExpressionParser::is_tuple_end(std::initializer_list<std::string_view> extra_end) const {
  if (cur().type == Tok::VariableEnd || cur().type == Tok::BlockEnd || cur().type == Tok::End || is_op(")"))
    return true;
  for (std::string_view n : extra_end)
    if (is_name(n)) return true;
  return false;
}

// Comma-separated expressions: one is itself, several (or a trailing comma) make a tuple.
ExprPtr ExpressionParser::parse_tuple(bool simplified, bool with_condexpr,
                                      std::initializer_list<std::string_view> extra_end, bool explicit_parentheses) {
  const uint32_t at = cur().offset;
  std::vector<ExprPtr> items;
  bool is_tuple = false;
  while (true) {
    if (!items.empty()) expect_op(",");
    if (is_tuple_end(extra_end)) break;
    items.push_back(simplified ? parse_primary() : with_condexpr ? parse_expression() : parse_or());
    if (is_op(",")) is_tuple = true;
    else break;
  }
  if (!is_tuple) {
    if (!items.empty()) return std::move(items[0]);
    if (!explicit_parentheses) expected("an expression");
  }
  auto t = std::make_unique<ast::Sequence>(ExprKind::Tuple, at);
  t->items = std::move(items);
  return t;
}

ExprPtr ExpressionParser::parse_expression() {
  Nest nest(*this);
  return parse_conditional();
}

ExprPtr ExpressionParser::parse_conditional() {
  const uint32_t at = cur().offset;
  ExprPtr expr = parse_or();
  while (is_name("if")) {
    Context c(*this, true, loops_);
    advance();
    ExprPtr test = parse_or();
    ExprPtr otherwise = skip_name("else") ? parse_conditional() : nullptr;
    expr = std::make_unique<Conditional>(at, std::move(test), std::move(expr), std::move(otherwise));
  }
  return expr;
}

ExprPtr ExpressionParser::parse_or() {
  ExprPtr left = parse_and();
  while (is_name("or")) {
    const uint32_t at = cur().offset;
    advance();
    left = std::make_unique<Binary>(ExprKind::Or, at, BinaryOp::Add, std::move(left), parse_and());
  }
  return left;
}

ExprPtr ExpressionParser::parse_and() {
  ExprPtr left = parse_not();
  while (is_name("and")) {
    const uint32_t at = cur().offset;
    advance();
    left = std::make_unique<Binary>(ExprKind::And, at, BinaryOp::Add, std::move(left), parse_not());
  }
  return left;
}

ExprPtr ExpressionParser::parse_not() {
  if (is_name("not")) {
    Nest nest(*this);
    const uint32_t at = cur().offset;
    advance();
    return std::make_unique<Unary>(ExprKind::Not, at, parse_not());
  }
  return parse_compare();
}

ExprPtr ExpressionParser::parse_compare() {
  const uint32_t at = cur().offset;
  ExprPtr first = parse_math1();
  std::vector<std::pair<CompareOp, ExprPtr>> rest;
  while (true) {
    CompareOp op;
    if (is_op("==")) op = CompareOp::Eq;
    else if (is_op("!=")) op = CompareOp::Ne;
    else if (is_op("<")) op = CompareOp::Lt;
    else if (is_op("<=")) op = CompareOp::Le;
    else if (is_op(">")) op = CompareOp::Gt;
    else if (is_op(">=")) op = CompareOp::Ge;
    else if (is_name("in")) op = CompareOp::In;
    else if (is_name("not") && look().type == Tok::Name && look().text == "in") {
      advance();
      op = CompareOp::NotIn;
    } else {
      break;
    }
    advance();
    rest.emplace_back(op, parse_math1());
  }
  if (rest.empty()) return first;
  auto node = std::make_unique<Compare>(at, std::move(first));
  node->rest = std::move(rest);
  return node;
}

ExprPtr ExpressionParser::parse_math1() {
  ExprPtr left = parse_concat();
  while (is_op("+") || is_op("-")) {
    const uint32_t at = cur().offset;
    const BinaryOp op = cur().text == "+" ? BinaryOp::Add : BinaryOp::Sub;
    advance();
    left = std::make_unique<Binary>(ExprKind::Binary, at, op, std::move(left), parse_concat());
  }
  return left;
}

ExprPtr ExpressionParser::parse_concat() {
  const uint32_t at = cur().offset;
  ExprPtr first = parse_math2();
  if (!is_op("~")) return first;
  auto node = std::make_unique<ast::Sequence>(ExprKind::Concat, at);
  node->items.push_back(std::move(first));
  while (skip_op("~")) node->items.push_back(parse_math2());
  return node;
}

ExprPtr ExpressionParser::parse_math2() {
  ExprPtr left = parse_pow();
  while (true) {
    BinaryOp op;
    if (is_op("*")) op = BinaryOp::Mul;
    else if (is_op("/")) op = BinaryOp::Div;
    else if (is_op("//")) op = BinaryOp::FloorDiv;
    else if (is_op("%")) op = BinaryOp::Mod;
    else return left;
    const uint32_t at = cur().offset;
    advance();
    left = std::make_unique<Binary>(ExprKind::Binary, at, op, std::move(left), parse_pow());
  }
}

ExprPtr ExpressionParser::parse_pow() {
  ExprPtr left = parse_unary(true);
  while (is_op("**")) {
    const uint32_t at = cur().offset;
    advance();
    left = std::make_unique<Binary>(ExprKind::Binary, at, BinaryOp::Pow, std::move(left), parse_unary(true));
  }
  return left;
}

// jinja2: "-x|f" is "(-x)|f" and "-x.y" is "-(x.y)": the sign takes a postfixed primary.
ExprPtr ExpressionParser::parse_unary(bool with_filter) {
  Nest nest(*this);
  const uint32_t at = cur().offset;
  ExprPtr node;
  if (skip_op("-")) node = std::make_unique<Unary>(ExprKind::Negate, at, parse_unary(false));
  else if (skip_op("+")) node = std::make_unique<Unary>(ExprKind::Plus, at, parse_unary(false));
  else node = parse_primary();
  node = parse_postfix(std::move(node));
  if (with_filter) node = parse_filter_expr(std::move(node));
  return node;
}

ExprPtr ExpressionParser::parse_primary() {
  Nest nest(*this);
  const Token& tok = cur();
  const uint32_t at = tok.offset;
  switch (tok.type) {
    case Tok::Name: {
      const std::string& n = tok.text;
      ExprPtr node;
      if (n == "true" || n == "True") node = std::make_unique<Literal>(at, Value::boolean(true));
      else if (n == "false" || n == "False") node = std::make_unique<Literal>(at, Value::boolean(false));
      else if (n == "none" || n == "None") node = std::make_unique<Literal>(at, Value::none());
      else node = name_node(at, n);
      advance();
      return node;
    }
    case Tok::String: {
      std::string s;
      while (cur().type == Tok::String) {  // adjacent literals concatenate, as in Python
        s += cur().text;
        advance();
      }
      return std::make_unique<Literal>(at, Value::string(std::move(s)));
    }
    case Tok::Integer: advance(); return std::make_unique<Literal>(at, Value::integer(tok.integer));
    case Tok::Float: advance(); return std::make_unique<Literal>(at, Value::number(tok.number));
    case Tok::Operator:
      if (tok.text == "(") {
        advance();
        ExprPtr node = parse_tuple(false, true, {}, true);
        expect_op(")");
        return node;
      }
      if (tok.text == "[") return parse_list();
      if (tok.text == "{") return parse_dict();
      break;
    default: break;
  }
  error(at, "unexpected " + describe_token(tok));
}

ExprPtr ExpressionParser::name_node(uint32_t at, const std::string& n) {
  if (n == "caller" || n == "varargs" || n == "kwargs") {
    for (MacroDef* m : macros_) {
      m->uses_caller |= n == "caller";
      m->uses_varargs |= n == "varargs";
      m->uses_kwargs |= n == "kwargs";
    }
  }
  return std::make_unique<Name>(at, n);
}

ExprPtr ExpressionParser::parse_list() {
  auto node = std::make_unique<ast::Sequence>(ExprKind::List, cur().offset);
  expect_op("[");
  while (!is_op("]")) {
    if (!node->items.empty()) expect_op(",");
    if (is_op("]")) break;
    node->items.push_back(parse_expression());
  }
  expect_op("]");
  return node;
}

ExprPtr ExpressionParser::parse_dict() {
  auto node = std::make_unique<DictLiteral>(cur().offset);
  expect_op("{");
  while (!is_op("}")) {
    if (!node->items.empty()) expect_op(",");
    if (is_op("}")) break;
    ExprPtr key = parse_expression();
    expect_op(":");
    node->items.emplace_back(std::move(key), parse_expression());
  }
  expect_op("}");
  return node;
}

ExprPtr ExpressionParser::parse_postfix(ExprPtr node) {
  while (true) {
    if (is_op(".") || is_op("[")) node = parse_subscript(std::move(node));
    else if (is_op("(")) node = parse_call(std::move(node));
    else return node;
  }
}

ExprPtr ExpressionParser::parse_filter_expr(ExprPtr node) {
  while (true) {
    if (is_op("|")) node = parse_filter(std::move(node), false);
    else if (is_name("is")) node = parse_test(std::move(node));
    else if (is_op("(")) node = parse_call(std::move(node));
    else return node;
  }
}

ExprPtr ExpressionParser::parse_subscript(ExprPtr node) {
  Nest nest(*this);
  const Token& tok = cur();
  advance();
  if (tok.text == ".") {
    const Token& attr = cur();
    if (attr.type == Tok::Name) {
      advance();
      return std::make_unique<GetAttr>(tok.offset, std::move(node), attr.text);
    }
    if (attr.type != Tok::Integer) expected("a name or number after '.'");
    advance();
    return std::make_unique<GetItem>(tok.offset, std::move(node), std::make_unique<Literal>(attr.offset, Value::integer(attr.integer)));
  }
  std::vector<ExprPtr> args;
  while (!is_op("]")) {
    if (!args.empty()) expect_op(",");
    args.push_back(parse_subscribed());
  }
  expect_op("]");
  if (args.size() == 1) return std::make_unique<GetItem>(tok.offset, std::move(node), std::move(args[0]));
  auto t = std::make_unique<ast::Sequence>(ExprKind::Tuple, tok.offset);
  t->items = std::move(args);
  return std::make_unique<GetItem>(tok.offset, std::move(node), std::move(t));
}

// An index or a slice a:b:c, any part optional.
ExprPtr ExpressionParser::parse_subscribed() {
  const uint32_t at = cur().offset;
  ExprPtr start;
  if (!is_op(":")) {
    start = parse_expression();
    if (!is_op(":")) return start;
  }
  advance();  // the first ':'
  auto slice = std::make_unique<Slice>(at);
  slice->start = std::move(start);
  if (!is_op(":") && !is_op("]") && !is_op(",")) slice->stop = parse_expression();
  if (skip_op(":") && !is_op("]") && !is_op(",")) slice->step = parse_expression();
  return slice;
}

void ExpressionParser::parse_call_args(CallArgs& args) {
  const uint32_t at = cur().offset;
  expect_op("(");
  bool need_comma = false;
  auto ensure = [&](bool ok) {
    if (!ok) error(at, "invalid syntax for function call expression");
  };
  while (!is_op(")")) {
    if (need_comma) {
      expect_op(",");
      if (is_op(")")) break;
    }
    if (skip_op("*")) {
      ensure(!args.star_args && !args.star_kwargs);
      args.star_args = parse_expression();
    } else if (skip_op("**")) {
      ensure(!args.star_kwargs);
      args.star_kwargs = parse_expression();
    } else if (cur().type == Tok::Name && look().type == Tok::Operator && look().text == "=") {
      ensure(!args.star_kwargs);
      std::string key = cur().text;
      advance();
      advance();
      args.keyword.emplace_back(std::move(key), parse_expression());
    } else {
      ensure(!args.star_args && !args.star_kwargs && args.keyword.empty());
      args.positional.push_back(parse_expression());
    }
    need_comma = true;
  }
  expect_op(")");
}

ExprPtr ExpressionParser::parse_call(ExprPtr callee) {
  Nest nest(*this);
  auto node = std::make_unique<Call>(cur().offset, std::move(callee));
  parse_call_args(node->args);
  return node;
}

// name(args)|name2...; `node` is null for {% filter %} and {% set x | f %} blocks.
ExprPtr ExpressionParser::parse_filter(ExprPtr node, bool start_inline) {
  while (is_op("|") || start_inline) {
    Nest nest(*this);
    if (!start_inline) advance();
    start_inline = false;
    const uint32_t at = cur().offset;
    std::string name = expect_identifier();
    while (skip_op(".")) name += str_cat(".", expect_identifier());
    const FilterFn fn = find_filter(name);
    // jinja2 checks filter names at compile time, except inside {% if %} and inline if,
    // where a missing filter fails only when reached.
    if (!fn && !soft_) error(at, "no filter named '" + name + "'");
    auto f = std::make_unique<Filter>(at, std::move(node), std::move(name), fn);
    if (is_op("(")) parse_call_args(f->args);
    node = std::move(f);
  }
  return node;
}

ExprPtr ExpressionParser::parse_test(ExprPtr node) {
  Nest nest(*this);
  const uint32_t at = cur().offset;
  advance();  // is
  const bool negated = skip_name("not");
  std::string name = expect_identifier();
  while (skip_op(".")) name += str_cat(".", expect_identifier());
  const TestFn fn = find_test(name);
  if (!fn && !soft_) error(at, "no test named '" + name + "'");
  auto t = std::make_unique<Test>(at, std::move(node), std::move(name), fn);
  if (is_op("(")) {
    parse_call_args(t->args);
  } else if ((cur().type == Tok::Name || cur().type == Tok::String || cur().type == Tok::Integer ||
              cur().type == Tok::Float || is_op("[") || is_op("{")) &&
             !is_name("else") && !is_name("or") && !is_name("and")) {
    // One argument without parentheses: "x is divisibleby 3", "x is sameas none".
    if (is_name("is")) error(cur().offset, "You cannot chain multiple tests with is");
    t->args.positional.push_back(parse_postfix(parse_primary()));
  }
  if (negated) return std::make_unique<Unary>(ExprKind::Not, at, std::move(t));
  return t;
}
}  // namespace deltatune::jinja
