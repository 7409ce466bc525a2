// The parsed template: expressions and statements as jinja2's parser builds them (jinja2/nodes.py),
// each with the source offset it came from, for error messages.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "text/jinja/value.h"

namespace deltatune::jinja {

class RenderState;
using FilterFn = Value (*)(const Value& operand, const Arguments& args, RenderState& state);
using TestFn = bool (*)(const Value& operand, const Arguments& args, RenderState& state);

namespace ast {

enum class ExprKind : uint8_t {
  Literal, Name, GetAttr, GetItem, Slice, Call, Filter, Test, Negate, Plus, Not, Binary, And, Or,
  Compare, Conditional, List, Tuple, Dict, Concat
};

struct Expr {
  Expr(ExprKind k, uint32_t at) : kind(k), offset(at) {}
  virtual ~Expr() = default;
  ExprKind kind;
  uint32_t offset;
};
using ExprPtr = std::unique_ptr<Expr>;

struct Literal : Expr {
  Literal(uint32_t at, Value v) : Expr(ExprKind::Literal, at), value(std::move(v)) {}
  Value value;
};

struct Name : Expr {
  Name(uint32_t at, std::string n) : Expr(ExprKind::Name, at), name(std::move(n)) {}
  std::string name;
};

struct GetAttr : Expr {  // x.name
  GetAttr(uint32_t at, ExprPtr o, std::string n) : Expr(ExprKind::GetAttr, at), object(std::move(o)), name(std::move(n)) {}
  ExprPtr object;
  std::string name;
};

struct GetItem : Expr {  // x[index], x[a:b:c]
  GetItem(uint32_t at, ExprPtr o, ExprPtr i) : Expr(ExprKind::GetItem, at), object(std::move(o)), index(std::move(i)) {}
  ExprPtr object, index;
};

struct Slice : Expr {  // only as a GetItem index; absent parts are null
  explicit Slice(uint32_t at) : Expr(ExprKind::Slice, at) {}
  ExprPtr start, stop, step;
};

struct CallArgs {
  std::vector<ExprPtr> positional;
  std::vector<std::pair<std::string, ExprPtr>> keyword;
  ExprPtr star_args, star_kwargs;  // *args, **kwargs
};

struct Call : Expr {
  Call(uint32_t at, ExprPtr c) : Expr(ExprKind::Call, at), callee(std::move(c)) {}
  ExprPtr callee;
  CallArgs args;
};

struct Filter : Expr {  // operand | name(args); a {% filter %} block's filter has no operand
  Filter(uint32_t at, ExprPtr o, std::string n, FilterFn f)
      : Expr(ExprKind::Filter, at), operand(std::move(o)), name(std::move(n)), fn(f) {}
  ExprPtr operand;
  std::string name;
  FilterFn fn;
  CallArgs args;
};

struct Test : Expr {  // operand is name(args); "is not" wraps it in Not
  Test(uint32_t at, ExprPtr o, std::string n, TestFn f) : Expr(ExprKind::Test, at), operand(std::move(o)), name(std::move(n)), fn(f) {}
  ExprPtr operand;
  std::string name;
  TestFn fn;
  CallArgs args;
};

struct Unary : Expr {  // -x, +x, not x
  Unary(ExprKind k, uint32_t at, ExprPtr o) : Expr(k, at), operand(std::move(o)) {}
  ExprPtr operand;
};

enum class BinaryOp : uint8_t { Add, Sub, Mul, Div, FloorDiv, Mod, Pow };

struct Binary : Expr {  // arithmetic; And/Or reuse it with their own kinds
  Binary(ExprKind k, uint32_t at, BinaryOp o, ExprPtr l, ExprPtr r)
      : Expr(k, at), op(o), left(std::move(l)), right(std::move(r)) {}
  BinaryOp op;
  ExprPtr left, right;
};

enum class CompareOp : uint8_t { Eq, Ne, Lt, Le, Gt, Ge, In, NotIn };

struct Compare : Expr {  // a < b < c compares pairwise, as in Python
  Compare(uint32_t at, ExprPtr f) : Expr(ExprKind::Compare, at), first(std::move(f)) {}
  ExprPtr first;
  std::vector<std::pair<CompareOp, ExprPtr>> rest;
};

struct Conditional : Expr {  // then if test else otherwise; no else: undefined
  Conditional(uint32_t at, ExprPtr t, ExprPtr th, ExprPtr o)
      : Expr(ExprKind::Conditional, at), test(std::move(t)), then(std::move(th)), otherwise(std::move(o)) {}
  ExprPtr test, then, otherwise;
};

struct Sequence : Expr {  // [a, b], (a, b), a ~ b ~ c
  Sequence(ExprKind k, uint32_t at) : Expr(k, at) {}
  std::vector<ExprPtr> items;
};

struct DictLiteral : Expr {
  explicit DictLiteral(uint32_t at) : Expr(ExprKind::Dict, at) {}
  std::vector<std::pair<ExprPtr, ExprPtr>> items;
};

// Where {% set %}, {% for %} and {% with %} put values: a name, ns.attr, or a tuple to unpack.
struct Target {
  enum Kind : uint8_t { Name, NamespaceAttr, Tuple } kind = Name;
  uint32_t offset = 0;
  std::string name, attr;
  std::vector<Target> items;
};

enum class StmtKind : uint8_t {
  Text, Print, If, For, Set, SetBlock, Macro, CallBlock, FilterBlock, With, Scope, Break, Continue
};

struct Stmt {
  Stmt(StmtKind k, uint32_t at) : kind(k), offset(at) {}
  virtual ~Stmt() = default;
  StmtKind kind;
  uint32_t offset;
};
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Text : Stmt {
  Text(uint32_t at, std::string t) : Stmt(StmtKind::Text, at), text(std::move(t)) {}
  std::string text;
};

struct Print : Stmt {  // {{ expr }}
  Print(uint32_t at, ExprPtr e) : Stmt(StmtKind::Print, at), expr(std::move(e)) {}
  ExprPtr expr;
};

struct If : Stmt {
  explicit If(uint32_t at) : Stmt(StmtKind::If, at) {}
  std::vector<std::pair<ExprPtr, Body>> branches;  // if, elif, ...
  Body otherwise;
};

struct For : Stmt {
  explicit For(uint32_t at) : Stmt(StmtKind::For, at) {}
  Target target;
  ExprPtr iterable, filter;  // {% for x in xs if filter %}
  bool recursive = false;
  Body body, otherwise;
};

struct Set : Stmt {
  Set(uint32_t at, Target t, ExprPtr v) : Stmt(StmtKind::Set, at), target(std::move(t)), value(std::move(v)) {}
  Target target;
  ExprPtr value;
};

struct SetBlock : Stmt {  // {% set x | filters %}body{% endset %}
  explicit SetBlock(uint32_t at) : Stmt(StmtKind::SetBlock, at) {}
  Target target;
  ExprPtr filter;  // a Filter chain whose innermost operand is null, or null
  Body body;
};

struct MacroDef {
  std::string name;
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults;  // for the last defaults.size() params
  Body body;
  // Whether the body reads these names: jinja2 then collects extra arguments into them.
  bool uses_caller = false, uses_varargs = false, uses_kwargs = false;
};

struct Macro : Stmt {
  explicit Macro(uint32_t at) : Stmt(StmtKind::Macro, at), def(std::make_shared<MacroDef>()) {}
  std::shared_ptr<MacroDef> def;
};

struct CallBlock : Stmt {  // {% call(params) macro(args) %}body{% endcall %}: body is `caller`
  explicit CallBlock(uint32_t at) : Stmt(StmtKind::CallBlock, at), caller(std::make_shared<MacroDef>()) {}
  std::shared_ptr<MacroDef> caller;
  ExprPtr call;
};

struct FilterBlock : Stmt {
  explicit FilterBlock(uint32_t at) : Stmt(StmtKind::FilterBlock, at) {}
  ExprPtr filter;
  Body body;
};

struct With : Stmt {
  explicit With(uint32_t at) : Stmt(StmtKind::With, at) {}
  std::vector<std::pair<Target, ExprPtr>> assignments;
  Body body;
};

struct Scope : Stmt {  // a body in its own scope: transformers' {% generation %} block
  explicit Scope(uint32_t at) : Stmt(StmtKind::Scope, at) {}
  Body body;
};

struct LoopControl : Stmt {  // {% break %}, {% continue %}
  LoopControl(StmtKind k, uint32_t at) : Stmt(k, at) {}
};

}  // namespace ast
}  // namespace deltatune::jinja
