// Global functions: jinja2's range, dict, namespace and joiner, and what transformers adds for chat
// templates: raise_exception(message) and strftime_now(format).
#include <ctime>
#include <map>

#include "text/jinja/builtins.h"
#include "text/jinja/interpreter.h"
#include "text/jinja/operators.h"
#include "text/jinja/repr.h"

namespace deltatune::jinja {

const Value* ArgReader::take(std::string_view name) {
  size_t seen = 0;
  for (size_t i = 0; i < args_.size(); ++i) {
    if (!args_[i].name.empty()) continue;
    if (seen++ == positional_used_) {
      ++positional_used_;
      keyword_used_[i] = true;
      return &args_[i].value;
    }
  }
  for (size_t i = 0; i < args_.size(); ++i) {
    if (args_[i].name == name && !keyword_used_[i]) {
      keyword_used_[i] = true;
      return &args_[i].value;
    }
  }
  return nullptr;
}

Value ArgReader::next(std::string_view name, Value fallback) {
  const Value* v = take(name);
  return v ? *v : std::move(fallback);
}

Value ArgReader::required(std::string_view name) {
  const Value* v = take(name);
  DT_CHECK(v, function_, "() missing required argument '", name, "'");
  return *v;
}

std::vector<Value> ArgReader::rest() {
  std::vector<Value> out;
  for (size_t i = 0; i < args_.size(); ++i) {
    if (args_[i].name.empty() && !keyword_used_[i]) {
      keyword_used_[i] = true;
      out.push_back(args_[i].value);
    }
  }
  positional_used_ = args_.size();
  return out;
}

void ArgReader::finish() {
  for (size_t i = 0; i < args_.size(); ++i) {
    if (keyword_used_[i]) continue;
    if (args_[i].name.empty()) fail(function_, "() got too many positional arguments");
    fail(function_, "() got an unexpected keyword argument '", args_[i].name, "'");
  }
}

namespace {

using NativeFn = Value (*)(const Arguments&, RenderState&);

class Function : public Object {
 public:
  Function(std::string name, NativeFn fn) : name_(std::move(name)), fn_(fn) {}
  std::string type_name() const override { return "function"; }
  bool callable() const override { return true; }
  Value call(const Arguments& args, RenderState& state) const override { return fn_(args, state); }
  std::string repr() const override { return "<function " + name_ + ">"; }

 private:
  std::string name_;
  NativeFn fn_;
};

// The sandbox's range: at most 100000 items (jinja2's MAX_RANGE).
Value range(const Arguments& args, RenderState&) {
  ArgReader r(args, "range");
  std::vector<int64_t> n;
  for (const Value& v : r.rest()) {
    DT_CHECK(v.is_int() || v.is_bool(), "'", type_name(v), "' object cannot be interpreted as an integer");
    n.push_back(v.as_int());
  }
  r.finish();
  DT_CHECK(!n.empty() && n.size() <= 3, "range expected 1 to 3 arguments, got ", n.size());
  const int64_t start = n.size() == 1 ? 0 : n[0];
  const int64_t stop = n.size() == 1 ? n[0] : n[1];
  const int64_t step = n.size() == 3 ? n[2] : 1;
  DT_CHECK(step != 0, "range() arg 3 must not be zero");
  std::vector<Value> items;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
    DT_CHECK(items.size() < 100000, "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
    items.push_back(Value::integer(i));
    if ((step > 0 && i > INT64_MAX - step) || (step < 0 && i < INT64_MIN - step)) break;
  }
  return Value::range(start, stop, step, std::move(items));
}

// dict(mapping or pairs, **kwargs).
Value make_dict(const Arguments& args, RenderState&) {
  DictData d;
  for (const Argument& a : args) {
    if (!a.name.empty()) {
      d.set(Value::string(a.name), a.value);
    } else if (a.value.is_undefined()) {
      fail_undefined(a.value);  // Python's dict() looks for .keys, which Undefined refuses
    } else if (a.value.is_dict()) {
      for (const auto& [k, v] : a.value.dict().items) d.set(k, v);
    } else {
      const ListPtr iterated = iterate(a.value);
      for (const Value& pair : iterated->items) {
        const ListPtr kv = iterate(pair);
        DT_CHECK(kv->items.size() == 2, "dictionary update sequence element has length ", kv->items.size(), "; 2 is required");
        check_hashable(kv->items[0]);
        d.set(kv->items[0], kv->items[1]);
      }
    }
  }
  return Value::dict(std::move(d));
}

Value make_namespace(const Arguments& args, RenderState& state) {
  std::shared_ptr<Namespace> ns = state.new_namespace();
  const Value dict = make_dict(args, state);
  for (const auto& [k, v] : dict.dict().items) ns->set(state.str(k), v);
  return Value::object(ns);
}

Value raise_exception(const Arguments& args, RenderState& state) {
  ArgReader r(args, "raise_exception");
  const Value message = r.required("message");
  r.finish();
  fail("the template raised an error: ", state.str(message));
}

// datetime.now().strftime(format), in local time.
Value strftime_now(const Arguments& args, RenderState& state) {
  ArgReader r(args, "strftime_now");
  const Value format = r.required("format");
  r.finish();
  DT_CHECK(format.is_string(), "strftime() argument 1 must be str, not ", type_name(format));
  DT_CHECK(format.str().find("%f") == std::string::npos, "strftime_now: %f is not supported");
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  state.check_size(format.str().size() * 64);
  std::string out(format.str().size() * 64 + 64, '\0');
  const size_t n = std::strftime(out.data(), out.size(), format.str().c_str(), &local);
  out.resize(n);
  return Value::string(std::move(out));
}

// joiner(sep): "" the first time it is called, sep after.
class Joiner : public Object {
 public:
  explicit Joiner(std::string sep) : sep_(std::move(sep)) {}
  std::string type_name() const override { return "Joiner"; }
  bool callable() const override { return true; }
  Value call(const Arguments& args, RenderState&) const override {
    ArgReader(args, "joiner").finish();
    if (!used_) {
      used_ = true;
      return Value::string("");
    }
    return Value::string(sep_);
  }

 private:
  std::string sep_;
  mutable bool used_ = false;  // one joiner belongs to one render
};

Value make_joiner(const Arguments& args, RenderState& state) {
  ArgReader r(args, "joiner");
  const Value sep = r.next("sep", Value::string(", "));
  r.finish();
  return Value::object(std::make_shared<Joiner>(state.str(sep)));
}

}  // namespace

Value find_global(std::string_view name) {
  static const std::map<std::string, Value, std::less<>> globals = [] {
    std::map<std::string, Value, std::less<>> g;
    auto add = [&](const char* n, NativeFn fn) { g[n] = Value::object(std::make_shared<Function>(n, fn)); };
    add("range", range);
    add("dict", make_dict);
    add("namespace", make_namespace);
    add("joiner", make_joiner);
    add("raise_exception", raise_exception);
    add("strftime_now", strftime_now);
    return g;
  }();
  auto it = globals.find(name);
  if (it != globals.end()) return it->second;
  return Value::undefined(str_cat("'", name, "' is undefined"));
}

}  // namespace deltatune::jinja
