#include "text/jinja/parser.h"

#include <algorithm>
#include <initializer_list>

#include "core/error.h"
#include "text/jinja/builtins.h"
#include "text/jinja/expression_parser.h"

namespace deltatune::jinja {

namespace {

using namespace ast;

class Parser : public ExpressionParser {
 public:
  using ExpressionParser::ExpressionParser;

  Body parse_template() {
    Body body = subparse({});
    if (cur().type != Tok::End) error(cur().offset, "unexpected " + describe_token(cur()));
    return body;
  }

 private:
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
};

}  // namespace

ast::Body parse(const std::vector<Token>& tokens, std::string_view source) {
  return Parser(tokens, source).parse_template();
}

}  // namespace deltatune::jinja
