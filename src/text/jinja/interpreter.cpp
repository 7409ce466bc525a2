#include "text/jinja/interpreter.h"

#include <algorithm>

#include "text/jinja/builtins.h"
#include "text/jinja/operators.h"
#include "text/jinja/repr.h"

namespace deltatune::jinja {

using namespace ast;

namespace {

// An error that already names its place in the template: outer statements pass it on unchanged,
// so the message points at the innermost construct that failed.
class LocatedError : public Error {
 public:
  using Error::Error;
};

class MacroObject : public Object {
 public:
  MacroObject(const MacroDef& def, FramePtr scope) : def_(def), scope_(std::move(scope)) {}
  std::string type_name() const override { return "Macro"; }
  bool callable() const override { return true; }
  Value call(const Arguments& args, RenderState& state) const override { return state.call_macro(def_, scope_, args); }
  std::string repr() const override { return "<Macro " + py_repr_string(def_.name) + ">"; }
  Value attribute(std::string_view name) const override {
    if (name == "name") return Value::string(def_.name);
    if (name == "arguments") {
      std::vector<Value> params;
      for (const std::string& p : def_.params) params.push_back(Value::string(p));
      return Value::tuple(std::move(params));
    }
    if (name == "catch_kwargs") return Value::boolean(def_.uses_kwargs);
    if (name == "catch_varargs") return Value::boolean(def_.uses_varargs);
    if (name == "caller") return Value::boolean(def_.uses_caller);
    return Object::attribute(name);
  }

 private:
  const MacroDef& def_;
  FramePtr scope_;
};

// The `loop` variable of a for loop. One object per loop, advanced each iteration, as jinja2's
// LoopContext.
class LoopObject : public Object, public std::enable_shared_from_this<LoopObject> {
 public:
  LoopObject(ListPtr items, int depth0, const For& node, FramePtr scope)
      : items_(std::move(items)), depth0_(depth0), node_(node), scope_(std::move(scope)) {}
  std::string type_name() const override { return "LoopContext"; }
  bool callable() const override { return true; }
  std::string repr() const override { return str_cat("<LoopContext ", index0 + 1, "/", size(), ">"); }

  Value attribute(std::string_view name) const override {
    const int64_t n = size(), i = int64_t(index0);
    if (name == "index") return Value::integer(i + 1);
    if (name == "index0") return Value::integer(i);
    if (name == "revindex") return Value::integer(n - i);
    if (name == "revindex0") return Value::integer(n - i - 1);
    if (name == "first") return Value::boolean(i == 0);
    if (name == "last") return Value::boolean(i == n - 1);
    if (name == "length") return Value::integer(n);
    if (name == "depth") return Value::integer(depth0_ + 1);
    if (name == "depth0") return Value::integer(depth0_);
    if (name == "previtem") return i > 0 ? items_->items[index0 - 1] : Value::undefined("there is no previous item");
    if (name == "nextitem") return i + 1 < n ? items_->items[index0 + 1] : Value::undefined("there is no next item");
    if (name == "cycle" || name == "changed")
      return bound_method(Value::object(std::const_pointer_cast<LoopObject>(shared_from_this())), std::string(name));
    return Object::attribute(name);
  }

  bool call_method(std::string_view name, const Arguments& args, RenderState&, Value& result) const override {
    if (name == "cycle") {
      DT_CHECK(!args.empty(), "no items for cycling given");
      for (const Argument& a : args) DT_CHECK(a.name.empty(), "cycle() takes no keyword arguments");
      result = args[index0 % args.size()].value;
      return true;
    }
    if (name == "changed") {
      std::vector<Value> now;
      for (const Argument& a : args) now.push_back(a.value);
      const Value v = Value::tuple(std::move(now));
      const bool changed = !last_changed_ || !equals(*last_changed_, v);
      last_changed_ = v;
      result = Value::boolean(changed);
      return true;
    }
    return false;
  }

  // loop(children) in a recursive loop renders the loop body over them, one level deeper.
  Value call(const Arguments& args, RenderState& state) const override {
    DT_CHECK(node_.recursive, "Tried to call non recursive loop. Maybe you forgot the 'recursive' modifier.");
    DT_CHECK(args.size() == 1 && args[0].name.empty(), "loop() takes exactly one argument");
    return state.call_loop(node_, scope_, args[0].value, depth0_ + 1);
  }

  size_t index0 = 0;

 private:
  int64_t size() const { return int64_t(items_->items.size()); }
  ListPtr items_;
  int depth0_;
  const For& node_;
  FramePtr scope_;
  mutable std::optional<Value> last_changed_;
};

}  // namespace

const Value* Frame::find(std::string_view name) const {
  for (const auto& [k, v] : vars)
    if (k == name) return &v;
  return nullptr;
}

void Frame::set(std::string_view name, Value value) {
  for (auto& [k, v] : vars) {
    if (k == name) {
      v = std::move(value);
      return;
    }
  }
  vars.emplace_back(std::string(name), std::move(value));
}

struct RenderState::Nested {
  explicit Nested(RenderState& s) : s(s) {
    if (++s.nesting_ > s.limits_.max_nesting) {
      --s.nesting_;
      fail("the template nests or recurses deeper than ", s.limits_.max_nesting, " levels");
    }
  }
  ~Nested() { --s.nesting_; }
  RenderState& s;
};

RenderState::~RenderState() {
  // Empty every namespace and captured scope first, so that freeing what they held never meets a
  // cycle or a long chain.
  std::vector<Value> released;
  for (auto& ns : namespaces_) {
    for (auto& [k, v] : ns->attrs) released.push_back(std::move(v));
    ns->attrs.clear();
  }
  for (auto& frame : captured_) {
    for (auto& [k, v] : frame->vars) released.push_back(std::move(v));
    frame->vars.clear();
    frame->parent.reset();
  }
}

std::string RenderState::render(const Body& body, FramePtr variables) {
  std::string out;
  exec(body, variables, out);
  return out;
}

void RenderState::check_size(size_t bytes) const {
  DT_CHECK(bytes <= limits_.max_string_bytes, "the template builds a string or list larger than ",
           limits_.max_string_bytes, " bytes");
}

std::string RenderState::str(const Value& v) const { return py_str(v, limits_.max_string_bytes); }
std::string RenderState::repr(const Value& v) const { return py_repr(v, limits_.max_string_bytes); }

void RenderState::charge(size_t work) {
  if (limits_.max_steps == 0) return;
  steps_ += work;
  DT_CHECK(steps_ <= limits_.max_steps, "the template ran more than ", limits_.max_steps, " steps");
}

void RenderState::step() {
  DT_CHECK(limits_.max_steps == 0 || ++steps_ <= limits_.max_steps, "the template ran more than ", limits_.max_steps,
           " steps");
}

std::shared_ptr<Namespace> RenderState::new_namespace() {
  namespaces_.push_back(std::make_shared<Namespace>());
  return namespaces_.back();
}

FramePtr RenderState::capture(const FramePtr& frame) {
  if (captured_.empty() || captured_.back() != frame) captured_.push_back(frame);
  return frame;
}

void RenderState::fail_at(uint32_t offset, const std::string& what) const {
  throw LocatedError(lines_.describe(offset) + ": " + what);
}

void RenderState::append(std::string& out, std::string_view text) const {
  out += text;
  check_size(out.size());
}

// ---- statements ---------------------------------------------------------------------------

RenderState::Flow RenderState::exec(const Body& body, const FramePtr& frame, std::string& out) {
  for (const StmtPtr& s : body) {
    const Flow flow = exec_stmt(*s, frame, out);
    if (flow != Flow::Normal) return flow;
  }
  return Flow::Normal;
}

std::string RenderState::render_scoped(const Body& body, const FramePtr& frame) {
  std::string out;
  exec(body, std::make_shared<Frame>(frame), out);
  return out;
}

RenderState::Flow RenderState::exec_stmt(const Stmt& s, const FramePtr& frame, std::string& out) {
  try {
    Nested nested(*this);
    step();
    switch (s.kind) {
      case StmtKind::Text: append(out, static_cast<const Text&>(s).text); break;
      case StmtKind::Print: append(out, str(eval(*static_cast<const Print&>(s).expr, frame))); break;
      case StmtKind::If: {
        const auto& n = static_cast<const If&>(s);
        for (const auto& [test, body] : n.branches)
          if (truthy(eval(*test, frame))) return exec(body, frame, out);
        return exec(n.otherwise, frame, out);
      }
      case StmtKind::For: {
        const auto& n = static_cast<const For&>(s);
        return exec_for(n, frame, out, eval(*n.iterable, frame), 0);
      }
      case StmtKind::Set: {
        const auto& n = static_cast<const Set&>(s);
        assign(n.target, eval(*n.value, frame), frame);
        break;
      }
      case StmtKind::SetBlock: {
        const auto& n = static_cast<const SetBlock&>(s);
        Value v = Value::string(render_scoped(n.body, frame));
        if (n.filter) v = eval_filter(static_cast<const Filter&>(*n.filter), frame, &v);
        assign(n.target, v, frame);
        break;
      }
      case StmtKind::Macro: {
        const MacroDef& def = *static_cast<const Macro&>(s).def;
        frame->set(def.name, Value::object(std::make_shared<MacroObject>(def, capture(frame))));
        break;
      }
      case StmtKind::CallBlock: exec_call_block(static_cast<const CallBlock&>(s), frame, out); break;
      case StmtKind::FilterBlock: {
        const auto& n = static_cast<const FilterBlock&>(s);
        std::string body;
        const Flow flow = exec(n.body, std::make_shared<Frame>(frame), body);
        if (flow != Flow::Normal) return flow;  // jinja2 never outputs a block left by break
        const Value v = Value::string(std::move(body));
        append(out, str(eval_filter(static_cast<const Filter&>(*n.filter), frame, &v)));
        break;
      }
      case StmtKind::With: {
        const auto& n = static_cast<const With&>(s);
        std::vector<Value> values;  // all evaluated in the outer scope first
        for (const auto& [target, expr] : n.assignments) values.push_back(eval(*expr, frame));
        auto inner = std::make_shared<Frame>(frame);
        for (size_t i = 0; i < values.size(); ++i) assign(n.assignments[i].first, values[i], inner);
        return exec(n.body, inner, out);
      }
      case StmtKind::Scope: return exec(static_cast<const Scope&>(s).body, std::make_shared<Frame>(frame), out);
      case StmtKind::Break: return Flow::Break;
      case StmtKind::Continue: return Flow::Continue;
    }
    return Flow::Normal;
  } catch (const LocatedError&) {
    throw;
  } catch (const Error& e) {
    fail_at(s.offset, e.what());
  }
}

RenderState::Flow RenderState::exec_for(const For& s, const FramePtr& frame, std::string& out, const Value& iterable,
                                        int depth0) {
  ListPtr items = iterate(iterable);
  if (s.filter) {
    // {% for x in xs if test %}: the test sees the loop variable but not `loop`.
    auto kept = std::make_shared<ListData>();
    for (const Value& item : items->items) {
      step();
      auto f = std::make_shared<Frame>(frame);
      assign(s.target, item, f);
      if (truthy(eval(*s.filter, f))) kept->items.push_back(item);
    }
    items = kept;
  }
  // jinja2 runs the else block unless some iteration ran its body to the end (one that left by
  // break or continue does not count), so a loop that always continues also gets its else.
  bool completed = false;
  if (!items->items.empty()) {
    auto loop = std::make_shared<LoopObject>(items, depth0, s, s.recursive ? capture(frame) : nullptr);
    const Value loop_value = Value::object(loop);
    for (size_t i = 0; i < items->items.size(); ++i) {
      step();
      loop->index0 = i;
      auto f = std::make_shared<Frame>(frame);
      assign(s.target, items->items[i], f);
      f->set("loop", loop_value);
      const Flow flow = exec(s.body, f, out);
      if (flow == Flow::Normal) completed = true;
      else if (flow == Flow::Break) break;
    }
  }
  if (!completed) return exec(s.otherwise, std::make_shared<Frame>(frame), out);
  return Flow::Normal;
}

Value RenderState::call_loop(const For& loop, const FramePtr& scope, const Value& iterable, int depth0) {
  Nested nested(*this);
  std::string out;
  exec_for(loop, scope, out, iterable, depth0);
  return Value::string(std::move(out));
}

void RenderState::exec_call_block(const CallBlock& s, const FramePtr& frame, std::string& out) {
  const Value caller = Value::object(std::make_shared<MacroObject>(*s.caller, capture(frame)));
  append(out, str(eval_call(static_cast<const Call&>(*s.call), frame, &caller)));
}

void RenderState::assign(const Target& t, const Value& v, const FramePtr& frame) {
  switch (t.kind) {
    case Target::Name: frame->set(t.name, v); return;
    case Target::NamespaceAttr: {
      const Value ns = lookup(t.name, frame);
      auto* target = ns.is_object() ? dynamic_cast<Namespace*>(&ns.object()) : nullptr;
      DT_CHECK(target, "cannot assign attribute on non-namespace object");
      target->set(t.attr, v);
      return;
    }
    case Target::Tuple: {
      DT_CHECK(v.is_string() || v.is_sequence() || v.is_dict() || v.is_undefined(), "cannot unpack non-iterable ",
               type_name(v), " object");
      const ListPtr items = iterate(v);
      const size_t want = t.items.size(), got = items->items.size();
      DT_CHECK(got >= want, "not enough values to unpack (expected ", want, ", got ", got, ")");
      DT_CHECK(got <= want, "too many values to unpack (expected ", want, ")");
      for (size_t i = 0; i < want; ++i) assign(t.items[i], items->items[i], frame);
      return;
    }
  }
}

Value RenderState::call_macro(const MacroDef& def, const FramePtr& scope, const Arguments& args) {
  Nested nested(*this);
  step();
  auto frame = std::make_shared<Frame>(scope);
  std::vector<const Value*> positional;
  std::vector<const Argument*> keywords;
  for (const Argument& a : args) {
    if (a.name.empty()) positional.push_back(&a.value);
    else keywords.push_back(&a);
  }
  auto take_keyword = [&](std::string_view name) -> const Value* {
    for (auto it = keywords.begin(); it != keywords.end(); ++it) {
      if ((*it)->name == name) {
        const Value* v = &(*it)->value;
        keywords.erase(it);
        return v;
      }
    }
    return nullptr;
  };
  const size_t n = def.params.size(), first_default = n - def.defaults.size();
  for (size_t i = 0; i < n; ++i) {
    const std::string& p = def.params[i];
    if (i < positional.size()) {
      frame->set(p, *positional[i]);
    } else if (const Value* kw = take_keyword(p)) {
      frame->set(p, *kw);
    } else if (i >= first_default) {
      frame->set(p, eval(*def.defaults[i - first_default], frame));  // sees the parameters before it
    } else {
      frame->set(p, Value::undefined("parameter " + py_repr_string(p) + " was not provided"));
    }
  }
  if (def.uses_caller && !frame->find("caller")) {
    const Value* caller = take_keyword("caller");
    frame->set("caller", caller ? *caller : Value::undefined("No caller defined"));
  }
  if (def.uses_kwargs) {
    DictData extra;
    for (const Argument* a : keywords) extra.set(Value::string(a->name), a->value);
    frame->set("kwargs", Value::dict(std::move(extra)));
  } else if (!keywords.empty()) {
    fail("macro ", py_repr_string(def.name), " takes no keyword argument ", py_repr_string(keywords[0]->name));
  }
  if (def.uses_varargs) {
    std::vector<Value> extra;
    for (size_t i = n; i < positional.size(); ++i) extra.push_back(*positional[i]);
    frame->set("varargs", Value::tuple(std::move(extra)));
  } else if (positional.size() > n) {
    fail("macro ", py_repr_string(def.name), " takes not more than ", n, " argument(s)");
  }
  std::string out;
  exec(def.body, frame, out);
  return Value::string(std::move(out));
}

// ---- expressions --------------------------------------------------------------------------

Value RenderState::lookup(const std::string& name, const FramePtr& frame) const {
  for (const Frame* f = frame.get(); f; f = f->parent.get())
    if (const Value* v = f->find(name)) return *v;
  return find_global(name);
}

Value RenderState::call(const Value& callee, const Arguments& args) {
  if (callee.is_object() && callee.object().callable()) return callee.object().call(args, *this);
  if (callee.is_undefined()) fail_undefined(callee);
  fail("'", type_name(callee), "' object is not callable");
}

Arguments RenderState::eval_args(const CallArgs& a, const FramePtr& frame) {
  Arguments args;
  for (const ExprPtr& e : a.positional) args.push_back({"", eval(*e, frame)});
  if (a.star_args) {
    const ListPtr iterated = iterate(eval(*a.star_args, frame));
    for (const Value& v : iterated->items) args.push_back({"", v});
  }
  for (const auto& [name, e] : a.keyword) args.push_back({name, eval(*e, frame)});
  if (a.star_kwargs) {
    const Value d = eval(*a.star_kwargs, frame);
    DT_CHECK(d.is_dict(), "argument after ** must be a mapping, not ", type_name(d));
    for (const auto& [k, v] : d.dict().items) {
      DT_CHECK(k.is_string(), "keywords must be strings");
      args.push_back({k.str(), v});
    }
  }
  return args;
}

Value RenderState::eval_call(const Call& c, const FramePtr& frame, const Value* caller) {
  step();
  if (c.callee->kind == ExprKind::GetAttr) {
    // obj.method(args) without building the bound method.
    const auto& g = static_cast<const GetAttr&>(*c.callee);
    const Value obj = eval(*g.object, frame);
    Arguments args = eval_args(c.args, frame);
    if (caller) args.push_back({"caller", *caller});
    Value result;
    if (!obj.is_undefined() && call_builtin_method(obj, g.name, args, *this, result)) return result;
    return call(get_attr(obj, g.name), args);
  }
  const Value callee = eval(*c.callee, frame);
  Arguments args = eval_args(c.args, frame);
  if (caller) args.push_back({"caller", *caller});
  return call(callee, args);
}

Value RenderState::eval_filter(const Filter& f, const FramePtr& frame, const Value* block_input) {
  Value operand;
  if (!f.operand) operand = *block_input;
  else if (f.operand->kind == ExprKind::Filter) operand = eval_filter(static_cast<const Filter&>(*f.operand), frame, block_input);
  else operand = eval(*f.operand, frame);
  const Arguments args = eval_args(f.args, frame);
  if (!f.fn) fail_at(f.offset, "no filter named '" + f.name + "'");
  try {
    return f.fn(operand, args, *this);
  } catch (const LocatedError&) {
    throw;
  } catch (const Error& e) {
    fail_at(f.offset, "filter '" + f.name + "': " + e.what());
  }
}

Value RenderState::eval(const Expr& e, const FramePtr& frame) {
  try {
    Nested nested(*this);
    return eval_inner(e, frame);
  } catch (const LocatedError&) {
    throw;
  } catch (const Error& err) {
    fail_at(e.offset, err.what());
  }
}

Value RenderState::eval_inner(const Expr& e, const FramePtr& frame) {
  switch (e.kind) {
    case ExprKind::Literal: return static_cast<const Literal&>(e).value;
    case ExprKind::Name: return lookup(static_cast<const Name&>(e).name, frame);
    case ExprKind::GetAttr: {
      const auto& n = static_cast<const GetAttr&>(e);
      return get_attr(eval(*n.object, frame), n.name);
    }
    case ExprKind::GetItem: {
      const auto& n = static_cast<const GetItem&>(e);
      const Value obj = eval(*n.object, frame);
      if (n.index->kind == ExprKind::Slice) {
        const auto& sl = static_cast<const Slice&>(*n.index);
        auto part = [&](const ExprPtr& p) { return p ? eval(*p, frame) : Value::none(); };
        return get_slice(obj, part(sl.start), part(sl.stop), part(sl.step));
      }
      return get_item(obj, eval(*n.index, frame));
    }
    case ExprKind::Slice: fail("a slice is only allowed inside [ ]");
    case ExprKind::Call: return eval_call(static_cast<const Call&>(e), frame, nullptr);
    case ExprKind::Filter: return eval_filter(static_cast<const Filter&>(e), frame, nullptr);
    case ExprKind::Test: {
      const auto& t = static_cast<const Test&>(e);
      const Value operand = eval(*t.operand, frame);
      const Arguments args = eval_args(t.args, frame);
      if (!t.fn) fail("no test named '" + t.name + "'");
      try {
        return Value::boolean(t.fn(operand, args, *this));
      } catch (const LocatedError&) {
        throw;
      } catch (const Error& err) {
        fail("test '" + t.name + "': " + err.what());
      }
    }
    case ExprKind::Negate: return negate(eval(*static_cast<const Unary&>(e).operand, frame));
    case ExprKind::Plus: return unary_plus(eval(*static_cast<const Unary&>(e).operand, frame));
    case ExprKind::Not: return Value::boolean(!truthy(eval(*static_cast<const Unary&>(e).operand, frame)));
    case ExprKind::Binary: {
      const auto& b = static_cast<const Binary&>(e);
      const Value left = eval(*b.left, frame);
      return binary_op(b.op, left, eval(*b.right, frame), *this);
    }
    case ExprKind::And:
    case ExprKind::Or: {  // Python's: the deciding operand itself, not a bool
      const auto& b = static_cast<const Binary&>(e);
      Value left = eval(*b.left, frame);
      if (truthy(left) == (e.kind == ExprKind::Or)) return left;
      return eval(*b.right, frame);
    }
    case ExprKind::Compare: {
      const auto& c = static_cast<const Compare&>(e);
      Value left = eval(*c.first, frame);
      for (const auto& [op, expr] : c.rest) {
        Value right = eval(*expr, frame);
        if (!compare(op, left, right, *this)) return Value::boolean(false);
        left = std::move(right);
      }
      return Value::boolean(true);
    }
    case ExprKind::Conditional: {
      const auto& c = static_cast<const Conditional&>(e);
      if (truthy(eval(*c.test, frame))) return eval(*c.then, frame);
      if (c.otherwise) return eval(*c.otherwise, frame);
      return Value::undefined("the inline if-expression on " + lines_.describe(c.offset) +
                              " evaluated to false and no else section was defined.");
    }
    case ExprKind::List:
    case ExprKind::Tuple: {
      const auto& s = static_cast<const ast::Sequence&>(e);
      std::vector<Value> items;
      items.reserve(s.items.size());
      for (const ExprPtr& item : s.items) items.push_back(eval(*item, frame));
      return Value::sequence(std::move(items), e.kind == ExprKind::List ? SeqKind::List : SeqKind::Tuple);
    }
    case ExprKind::Dict: {
      DictData d;
      for (const auto& [k, v] : static_cast<const DictLiteral&>(e).items) {
        Value key = eval(*k, frame);
        check_hashable(key);
        d.set(std::move(key), eval(*v, frame));
      }
      return Value::dict(std::move(d));
    }
    case ExprKind::Concat: {  // a ~ b: str() of each, undefined as ""
      std::string out;
      for (const ExprPtr& item : static_cast<const ast::Sequence&>(e).items) {
        out += str(eval(*item, frame));
        check_size(out.size());
      }
      return Value::string(std::move(out));
    }
  }
  return Value();
}

}  // namespace deltatune::jinja
