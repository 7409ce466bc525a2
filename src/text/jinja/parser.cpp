#include "text/jinja/parser.h"

#include <algorithm>
#include <initializer_list>

#include "core/error.h"
#include "text/jinja/builtins.h"

namespace deltatune::jinja {

namespace {

using namespace ast;

class Parser {
 public:
  Parser(const std::vector<Token>& tokens, std::string_view source) : t_(tokens), lines_(source) {}

  Body parse_template() {
    Body body = subparse({});
    if (cur().type != Tok::End) error(cur().offset, "unexpected " + describe_token(cur()));
    return body;
  }

 private:
  // ---- tokens -----------------------------------------------------------------------------

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
    error(cur().offset, "expected " + what + ", got " + describe_token(cur()));
  }
  void expect_op(std::string_view op) {
    if (!skip_op(op)) expected("'" + std::string(op) + "'");
  }
  void expect_name(std::string_view n) {
    if (!skip_name(n)) expected("'" + std::string(n) + "'");
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
    explicit Nest(Parser& p) : p(p) {
      if (++p.depth_ > kMaxNesting) p.error(p.cur().offset, str_cat("the template nests deeper than ", kMaxNesting, " levels"));
    }
    ~Nest() { --p.depth_; }
    Parser& p;
  };

  // Saves and sets parser context for a nested body; restores it after.
  struct Context {
    Context(Parser& p, bool soft, int loops) : p(p), soft(p.soft_), loops(p.loops_) {
      p.soft_ = soft;
      p.loops_ = loops;
    }
    ~Context() {
      p.soft_ = soft;
      p.loops_ = loops;
    }
    Parser& p;
    bool soft;
    int loops;
  };

  // ---- statements -------------------------------------------------------------------------

  Body subparse(std::initializer_list<std::string_view> end_tags) {
    Body body;
    while (cur().type != Tok::End) {
      const Token& tok = cur();
      if (tok.type == Tok::Data) {
        body.push_back(std::make_unique<Text>(tok.offset, tok.text));
        advance();
      } else if (tok.type == Tok::VariableBegin) {
        advance();
        body.push_back(std::make_unique<Print>(tok.offset, parse_tuple(false, true, {}, false)));
        expect(Tok::VariableEnd, "end of print statement '}}'");
      } else if (tok.type == Tok::BlockBegin) {
        advance();
        if (cur().type == Tok::Name && std::find(end_tags.begin(), end_tags.end(), cur().text) != end_tags.end())
          return body;
        parse_statement(body);
        expect(Tok::BlockEnd, "end of statement block '%}'");
      } else {
        error(tok.offset, "unexpected " + describe_token(tok));
      }
    }
    return body;
  }

  // After a tag's arguments: its %}, its body, up to one of the end tags (left as the current
  // token unless drop_end).
  Body parse_body(std::initializer_list<std::string_view> end_tags, const Token& opener, bool drop_end) {
    skip_op(":");  // jinja2 accepts a Python-style colon after the arguments
    expect(Tok::BlockEnd, "end of statement block '%}'");
    Body body = subparse(end_tags);
    if (cur().type == Tok::End) {
      std::string expected;
      for (std::string_view t : end_tags) expected += str_cat(expected.empty() ? "" : " or ", "'", t, "'");
      error(opener.offset, "unexpected end of template: the '" + opener.text + "' tag here needs " + expected);
    }
    if (drop_end) advance();
    return body;
  }

  void parse_statement(Body& out) {
    Nest nest(*this);
    const Token& tok = cur();
    if (tok.type != Tok::Name) error(tok.offset, "tag name expected, got " + describe_token(tok));
    const std::string& name = tok.text;
    if (name == "for") return out.push_back(parse_for());
    if (name == "if") return out.push_back(parse_if());
    if (name == "set") return out.push_back(parse_set());
    if (name == "macro") return out.push_back(parse_macro());
    if (name == "call") return out.push_back(parse_call_block());
    if (name == "filter") return out.push_back(parse_filter_block());
    if (name == "with") return out.push_back(parse_with());
    if (name == "generation" || name == "autoescape") return out.push_back(parse_scope());
    if (name == "print") {
      advance();
      bool first = true;
      while (cur().type != Tok::BlockEnd) {
        if (!first) expect_op(",");
        first = false;
        const uint32_t at = cur().offset;
        out.push_back(std::make_unique<Print>(at, parse_expression()));
      }
      return;
    }
    if (name == "break" || name == "continue") {
      if (loops_ == 0) error(tok.offset, "'" + name + "' outside loop");
      advance();
      return out.push_back(std::make_unique<LoopControl>(name == "break" ? StmtKind::Break : StmtKind::Continue, tok.offset));
    }
    static const char* const unsupported[] = {"block", "extends", "include", "import", "from"};
    for (const char* u : unsupported)
      if (name == u) error(tok.offset, "the '" + name + "' tag is not supported (templates load no other templates here)");
    error(tok.offset, "unknown tag '" + name + "'");
  }

  StmtPtr parse_for() {
    const Token& opener = cur();
    advance();
    auto node = std::make_unique<For>(opener.offset);
    node->target = parse_assign_target(true, false, {"in"}, false);
    expect_name("in");
    node->iterable = parse_tuple(false, false, {"recursive"}, false);
    {
      Context c(*this, false, loops_ + 1);
      if (skip_name("if")) node->filter = parse_expression();
      node->recursive = skip_name("recursive");
      node->body = parse_body({"endfor", "else"}, opener, false);
    }
    if (is_name("else")) {
      advance();
      Context c(*this, false, loops_);
      node->otherwise = parse_body({"endfor"}, opener, true);
    } else {
      advance();
    }
    return node;
  }

  StmtPtr parse_if() {
    const Token& opener = cur();
    advance();
    Context c(*this, true, loops_);
    auto node = std::make_unique<If>(opener.offset);
    while (true) {
      ExprPtr test = parse_tuple(false, false, {}, false);
      Body body = parse_body({"elif", "else", "endif"}, opener, false);
      node->branches.emplace_back(std::move(test), std::move(body));
      if (skip_name("elif")) continue;
      if (skip_name("else")) node->otherwise = parse_body({"endif"}, opener, true);
      else advance();  // endif
      return node;
    }
  }

  StmtPtr parse_set() {
    const Token& opener = cur();
    advance();
    Target target = parse_assign_target(true, false, {}, true);
    if (skip_op("=")) return std::make_unique<Set>(opener.offset, std::move(target), parse_tuple(false, true, {}, false));
    auto node = std::make_unique<SetBlock>(opener.offset);
    node->target = std::move(target);
    Context c(*this, false, 0);
    node->filter = parse_filter(nullptr, false);
    node->body = parse_body({"endset"}, opener, true);
    return node;
  }

  void parse_signature(MacroDef& def) {
    expect_op("(");
    while (!is_op(")")) {
      if (!def.params.empty()) expect_op(",");
      def.params.push_back(expect_identifier());
      if (skip_op("=")) def.defaults.push_back(parse_expression());
      else if (!def.defaults.empty()) error(cur().offset, "non-default argument follows default argument");
    }
    expect_op(")");
  }

  // A macro body's own reads of caller, varargs and kwargs decide which extra arguments it takes.
  Body parse_macro_body(MacroDef& def, const Token& opener, std::string_view end_tag) {
    Context c(*this, false, 0);
    macros_.push_back(&def);
    Body body = parse_body({end_tag}, opener, true);
    macros_.pop_back();
    return body;
  }

  StmtPtr parse_macro() {
    const Token& opener = cur();
    advance();
    auto node = std::make_unique<Macro>(opener.offset);
    node->def->name = expect_identifier();
    parse_signature(*node->def);
    node->def->body = parse_macro_body(*node->def, opener, "endmacro");
    return node;
  }

  StmtPtr parse_call_block() {
    const Token& opener = cur();
    advance();
    auto node = std::make_unique<CallBlock>(opener.offset);
    node->caller->name = "caller";
    if (is_op("(")) parse_signature(*node->caller);
    node->call = parse_expression();
    if (node->call->kind != ExprKind::Call) error(opener.offset, "expected call");
    node->caller->body = parse_macro_body(*node->caller, opener, "endcall");
    return node;
  }

  StmtPtr parse_filter_block() {
    const Token& opener = cur();
    advance();
    auto node = std::make_unique<FilterBlock>(opener.offset);
    node->filter = parse_filter(nullptr, true);
    Context c(*this, false, loops_);
    node->body = parse_body({"endfilter"}, opener, true);
    return node;
  }

  StmtPtr parse_with() {
    const Token& opener = cur();
    advance();
    auto node = std::make_unique<With>(opener.offset);
    while (cur().type != Tok::BlockEnd) {
      if (!node->assignments.empty()) expect_op(",");
      Target t = parse_assign_target(true, false, {}, false);
      expect_op("=");
      node->assignments.emplace_back(std::move(t), parse_expression());
    }
    Context c(*this, false, loops_);
    node->body = parse_body({"endwith"}, opener, true);
    return node;
  }

  // {% generation %}: transformers' extension marking assistant text (a call block: own scope).
  // {% autoescape false %}: escaping is off already; true would change every output, so refused.
  StmtPtr parse_scope() {
    const Token& opener = cur();
    advance();
    std::string end = "end" + opener.text;
    if (opener.text == "autoescape") {
      ExprPtr setting = parse_expression();
      const bool off = setting->kind == ExprKind::Literal && !truthy(static_cast<Literal&>(*setting).value);
      if (!off) error(opener.offset, "{% autoescape %} is supported only as {% autoescape false %}");
    }
    auto node = std::make_unique<Scope>(opener.offset);
    Context c(*this, false, opener.text == "generation" ? 0 : loops_);
    if (end == "endgeneration") node->body = parse_body({"endgeneration"}, opener, true);
    else node->body = parse_body({"endautoescape"}, opener, true);
    return node;
  }

  // ---- assignment targets -------------------------------------------------------------------

  Target to_target(const Expr& e) {
    Target t;
    t.offset = e.offset;
    if (e.kind == ExprKind::Name) {
      t.kind = Target::Name;
      t.name = static_cast<const Name&>(e).name;
      return t;
    }
    if (e.kind == ExprKind::Tuple) {
      t.kind = Target::Tuple;
      for (const auto& item : static_cast<const ast::Sequence&>(e).items) t.items.push_back(to_target(*item));
      return t;
    }
    error(e.offset, "can't assign to this expression");
  }

  Target parse_assign_target(bool with_tuple, bool name_only, std::initializer_list<std::string_view> extra_end,
                             bool with_namespace) {
    if (with_namespace && look().type == Tok::Operator && look().text == ".") {
      Target t;
      t.kind = Target::NamespaceAttr;
      t.offset = cur().offset;
      t.name = expect_identifier();
      advance();  // .
      t.attr = expect_identifier();
      return t;
    }
    if (name_only) {
      Target t;
      t.offset = cur().offset;
      t.name = expect_identifier();
      return t;
    }
    ExprPtr e = with_tuple ? parse_tuple(true, true, extra_end, false) : parse_primary();
    return to_target(*e);
  }

  // ---- expressions ------------------------------------------------------------------------

  bool is_tuple_end(std::initializer_list<std::string_view> extra_end) const {
    if (cur().type == Tok::VariableEnd || cur().type == Tok::BlockEnd || cur().type == Tok::End || is_op(")"))
      return true;
    for (std::string_view n : extra_end)
      if (is_name(n)) return true;
    return false;
  }

  // Comma-separated expressions: one is itself, several (or a trailing comma) make a tuple.
  ExprPtr parse_tuple(bool simplified, bool with_condexpr, std::initializer_list<std::string_view> extra_end,
                      bool explicit_parentheses) {
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

  ExprPtr parse_expression() {
    Nest nest(*this);
    return parse_conditional();
  }

  ExprPtr parse_conditional() {
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

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (is_name("or")) {
      const uint32_t at = cur().offset;
      advance();
      left = std::make_unique<Binary>(ExprKind::Or, at, BinaryOp::Add, std::move(left), parse_and());
    }
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (is_name("and")) {
      const uint32_t at = cur().offset;
      advance();
      left = std::make_unique<Binary>(ExprKind::And, at, BinaryOp::Add, std::move(left), parse_not());
    }
    return left;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      Nest nest(*this);
      const uint32_t at = cur().offset;
      advance();
      return std::make_unique<Unary>(ExprKind::Not, at, parse_not());
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
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

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      const uint32_t at = cur().offset;
      const BinaryOp op = cur().text == "+" ? BinaryOp::Add : BinaryOp::Sub;
      advance();
      left = std::make_unique<Binary>(ExprKind::Binary, at, op, std::move(left), parse_concat());
    }
    return left;
  }

  ExprPtr parse_concat() {
    const uint32_t at = cur().offset;
    ExprPtr first = parse_math2();
    if (!is_op("~")) return first;
    auto node = std::make_unique<ast::Sequence>(ExprKind::Concat, at);
    node->items.push_back(std::move(first));
    while (skip_op("~")) node->items.push_back(parse_math2());
    return node;
  }

  ExprPtr parse_math2() {
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

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    while (is_op("**")) {
      const uint32_t at = cur().offset;
      advance();
      left = std::make_unique<Binary>(ExprKind::Binary, at, BinaryOp::Pow, std::move(left), parse_unary(true));
    }
    return left;
  }

  // jinja2: "-x|f" is "(-x)|f" and "-x.y" is "-(x.y)": the sign takes a postfixed primary.
  ExprPtr parse_unary(bool with_filter) {
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

  ExprPtr parse_primary() {
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

  ExprPtr name_node(uint32_t at, const std::string& n) {
    if (n == "caller" || n == "varargs" || n == "kwargs") {
      for (MacroDef* m : macros_) {
        m->uses_caller |= n == "caller";
        m->uses_varargs |= n == "varargs";
        m->uses_kwargs |= n == "kwargs";
      }
    }
    return std::make_unique<Name>(at, n);
  }

  ExprPtr parse_list() {
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

  ExprPtr parse_dict() {
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

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (is_op(".") || is_op("[")) node = parse_subscript(std::move(node));
      else if (is_op("(")) node = parse_call(std::move(node));
      else return node;
    }
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    while (true) {
      if (is_op("|")) node = parse_filter(std::move(node), false);
      else if (is_name("is")) node = parse_test(std::move(node));
      else if (is_op("(")) node = parse_call(std::move(node));
      else return node;
    }
  }

  ExprPtr parse_subscript(ExprPtr node) {
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
  ExprPtr parse_subscribed() {
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

  void parse_call_args(CallArgs& args) {
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

  ExprPtr parse_call(ExprPtr callee) {
    Nest nest(*this);
    auto node = std::make_unique<Call>(cur().offset, std::move(callee));
    parse_call_args(node->args);
    return node;
  }

  // name(args)|name2...; `node` is null for {% filter %} and {% set x | f %} blocks.
  ExprPtr parse_filter(ExprPtr node, bool start_inline) {
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

  ExprPtr parse_test(ExprPtr node) {
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

  const std::vector<Token>& t_;
  SourceLines lines_;
  size_t pos_ = 0;
  int depth_ = 0;
  bool soft_ = false;  // inside {% if %} or an inline if, where unknown filters fail only at run time
  int loops_ = 0;      // enclosing for loops of the current macro or template body
  std::vector<MacroDef*> macros_;  // macros being parsed, innermost last
};

}  // namespace

ast::Body parse(const std::vector<Token>& tokens, std::string_view source) {
  return Parser(tokens, source).parse_template();
}

}  // namespace deltatune::jinja
