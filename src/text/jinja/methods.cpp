// Methods of Python's built-in types that templates call: "text".strip(), d.get(k), d.items(), ...
#include <algorithm>
#include <array>

#include "text/jinja/builtins.h"
#include "text/jinja/interpreter.h"
#include "text/jinja/operators.h"
#include "text/jinja/py_str.h"
#include "text/jinja/repr.h"
#include "text/jinja/string_format.h"
#include "text/jinja/unicode.h"

namespace deltatune::jinja {

namespace {

// obj.name, not yet called.
class BoundMethod : public Object {
 public:
  BoundMethod(Value self, std::string name) : self_(std::move(self)), name_(std::move(name)) {}
  std::string type_name() const override { return "builtin_function_or_method"; }
  bool callable() const override { return true; }
  Value call(const Arguments& args, RenderState& state) const override {
    Value result;
    if (!call_builtin_method(self_, name_, args, state, result))
      fail("'", jinja::type_name(self_), "' object has no attribute '", name_, "'");
    return result;
  }
  std::string repr() const override {
    return "<built-in method " + name_ + " of " + jinja::type_name(self_) + " object>";
  }

 private:
  Value self_;
  std::string name_;
};

// Every method of str, dict, list and tuple in Python 3.11: a name here that is not implemented
// below fails when called, rather than reading as a missing attribute.
constexpr std::array kStrMethods = {
    "capitalize", "casefold", "center", "count", "encode", "endswith", "expandtabs", "find", "format",
    "format_map", "index", "isalnum", "isalpha", "isascii", "isdecimal", "isdigit", "isidentifier", "islower",
    "isnumeric", "isprintable", "isspace", "istitle", "isupper", "join", "ljust", "lower", "lstrip", "maketrans",
    "partition", "removeprefix", "removesuffix", "replace", "rfind", "rindex", "rjust", "rpartition", "rsplit",
    "rstrip", "split", "splitlines", "startswith", "strip", "swapcase", "title", "translate", "upper", "zfill"};
constexpr std::array kDictMethods = {"clear", "copy", "fromkeys", "get", "items", "keys", "pop", "popitem",
                                     "setdefault", "update", "values"};
constexpr std::array kListMethods = {"append", "clear", "copy", "count", "extend", "index", "insert", "pop",
                                     "remove", "reverse", "sort"};
// What transformers' ImmutableSandboxedEnvironment refuses: methods that change a list or dict.
constexpr std::array kMutating = {"append", "clear", "extend", "insert", "pop", "popitem", "remove", "reverse",
                                  "setdefault", "sort", "update"};

template <size_t N>
bool in(const std::array<const char*, N>& names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

bool has_method(const Value& obj, std::string_view name) {
  if (obj.is_string()) return in(kStrMethods, name);
  if (obj.is_dict()) return in(kDictMethods, name);
  if (obj.is_sequence() && obj.seq().kind == SeqKind::List) return in(kListMethods, name);
  if (obj.is_sequence() && obj.seq().kind == SeqKind::Tuple) return name == "count" || name == "index";
  return false;
}

bool is_mutating(const Value& obj, std::string_view name) {
  return (obj.is_dict() || (obj.is_sequence() && obj.seq().kind == SeqKind::List)) && in(kMutating, name);
}

std::optional<std::string> optional_str(const Value& v, std::string_view method) {
  if (v.is_none()) return std::nullopt;
  DT_CHECK(v.is_string(), method, " arg must be None or str");
  return v.str();
}

const std::string& str_arg(const Value& v, std::string_view method) {
  DT_CHECK(v.is_string(), method, "() argument must be str, not ", type_name(v));
  return v.str();
}

int64_t int_arg(const Value& v, std::string_view method) {
  DT_CHECK(v.is_int() || v.is_bool(), "'", type_name(v), "' object cannot be interpreted as an integer (in ", method,
           "())");
  return v.as_int();
}

Value string_list(std::vector<std::string> parts, bool markup) {
  std::vector<Value> items;
  items.reserve(parts.size());
  for (auto& p : parts) items.push_back(Value::string(std::move(p), markup));
  return Value::sequence(std::move(items));
}

// startswith/endswith: a string or a tuple of strings.
bool affix_matches(const std::string& s, const Value& affix, bool start, std::string_view method) {
  auto one = [&](const Value& a) {
    DT_CHECK(a.is_string(), method, " first arg must be str or a tuple of str, not ", type_name(a));
    const std::string& p = a.str();
    return p.size() <= s.size() && (start ? s.compare(0, p.size(), p) == 0 : s.compare(s.size() - p.size(), p.size(), p) == 0);
  };
  if (affix.is_sequence() && affix.seq().kind == SeqKind::Tuple) {
    for (const Value& a : affix.seq().items)
      if (one(a)) return true;
    return false;
  }
  return one(affix);
}

Value str_method(const Value& self, std::string_view name, const Arguments& args, RenderState& state) {
  const std::string& s = self.str();
  const bool m = self.is_markup();
  ArgReader r(args, name);
  auto done = [&](Value v) {
    r.finish();
    return v;
  };
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    const auto chars = optional_str(r.next("chars", Value::none()), name);
    return done(Value::string(py_strip(s, chars, name != "rstrip", name != "lstrip"), m));
  }
  if (name == "split" || name == "rsplit") {
    const auto sep = optional_str(r.next("sep", Value::none()), name);
    const int64_t max_split = int_arg(r.next("maxsplit", Value::integer(-1)), name);
    return done(string_list(name == "split" ? py_split(s, sep, max_split) : py_rsplit(s, sep, max_split), m));
  }
  if (name == "startswith" || name == "endswith") {
    const Value affix = r.required("prefix");
    return done(Value::boolean(affix_matches(s, affix, name == "startswith", name)));
  }
  if (name == "replace") {
    const std::string& old = str_arg(r.required("old"), name);
    const std::string& rep = str_arg(r.required("new"), name);
    const int64_t count = int_arg(r.next("count", Value::integer(-1)), name);
    std::string out = py_replace(s, old, rep, count, state.limits().max_string_bytes);
    return done(Value::string(std::move(out), m));
  }
  if (name == "upper") return done(Value::string(py_upper(s), m));
  if (name == "lower") return done(Value::string(py_lower(s), m));
  if (name == "title") return done(Value::string(py_title(s), m));
  if (name == "capitalize") return done(Value::string(py_capitalize(s), m));
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex") {
    const int64_t at = py_find(s, str_arg(r.required("sub"), name), name[0] == 'r');
    DT_CHECK(at >= 0 || name == "find" || name == "rfind", "substring not found");
    return done(Value::integer(at));
  }
  if (name == "count") return done(Value::integer(py_count(s, str_arg(r.required("sub"), name))));
  if (name == "join") {
    const ListPtr items = iterate(r.required("iterable"));
    std::string out;
    for (size_t i = 0; i < items->items.size(); ++i) {
      const Value& v = items->items[i];
      DT_CHECK(v.is_string(), "sequence item ", i, ": expected str instance, ", type_name(v), " found");
      if (i) out += s;
      out += v.str();
      state.check_size(out.size());
    }
    return done(Value::string(std::move(out), m));
  }
  if (name == "format") return Value::string(brace_format(s, args, state), m);
  if (name == "splitlines") return done(string_list(py_splitlines(s, truthy(r.next("keepends", Value::boolean(false)))), m));
  if (name == "center" || name == "ljust" || name == "rjust") {
    const int64_t width = int_arg(r.required("width"), name);
    const Value fill = r.next("fillchar", Value::string(" "));
    DT_CHECK(fill.is_string() && code_point_count(fill.str()) == 1,
             "The fill character must be exactly one character long");
    state.check_size(size_t(std::max<int64_t>(width, 0)) * fill.str().size());
    return done(Value::string(name == "center" ? py_center(s, width, fill.str()) : py_ljust(s, width, fill.str(), name == "rjust"), m));
  }
  if (name == "zfill") {
    const int64_t width = int_arg(r.required("width"), name);
    state.check_size(size_t(std::max<int64_t>(width, 0)));
    const int64_t len = int64_t(code_point_count(s));
    if (width <= len) return done(self);
    const size_t sign = !s.empty() && (s[0] == '+' || s[0] == '-') ? 1 : 0;
    return done(Value::string(s.substr(0, sign) + std::string(size_t(width - len), '0') + s.substr(sign), m));
  }
  if (name == "removeprefix" || name == "removesuffix") {
    const std::string& a = str_arg(r.required("affix"), name);
    const bool prefix = name == "removeprefix";
    if (affix_matches(s, Value::string(a), prefix, name))
      return done(Value::string(prefix ? s.substr(a.size()) : s.substr(0, s.size() - a.size()), m));
    return done(self);
  }
  if (name == "partition" || name == "rpartition") {
    const std::string& sep = str_arg(r.required("sep"), name);
    DT_CHECK(!sep.empty(), "empty separator");
    const size_t at = name == "partition" ? s.find(sep) : s.rfind(sep);
    std::vector<Value> parts;
    if (at == std::string::npos) {
      const bool left = name == "partition";
      parts = {Value::string(left ? s : "", m), Value::string("", m), Value::string(left ? "" : s, m)};
    } else {
      parts = {Value::string(s.substr(0, at), m), Value::string(sep, m), Value::string(s.substr(at + sep.size()), m)};
    }
    return done(Value::tuple(std::move(parts)));
  }
  if (name == "isspace") {
    bool all = !s.empty();
    for (size_t i = 0; i < s.size() && all;) all = is_space(next_code_point(s, i));
    return done(Value::boolean(all));
  }
  if (name == "isascii") return done(Value::boolean(is_ascii(s)));
  fail("str.", name, "() is not supported by deltatune's Jinja");
}

Value dict_method(const Value& self, std::string_view name, const Arguments& args) {
  const DictData& d = self.dict();
  ArgReader r(args, name);
  auto view = [&](SeqKind kind) {
    r.finish();
    std::vector<Value> items;
    for (const auto& [k, v] : d.items)
      items.push_back(kind == SeqKind::DictKeys ? k : kind == SeqKind::DictValues ? v : Value::tuple({k, v}));
    return Value::sequence(std::move(items), kind);
  };
  if (name == "get") {
    const Value key = r.required("key");
    const Value fallback = r.next("default", Value::none());
    r.finish();
    check_hashable(key);
    const Value* v = d.find(key);
    return v ? *v : fallback;
  }
  if (name == "items") return view(SeqKind::DictItems);
  if (name == "keys") return view(SeqKind::DictKeys);
  if (name == "values") return view(SeqKind::DictValues);
  if (name == "copy") {
    r.finish();
    return self;  // dicts are immutable here, so the copy may share
  }
  fail("dict.", name, "() is not supported by deltatune's Jinja");
}

Value sequence_method(const Value& self, std::string_view name, const Arguments& args) {
  const auto& items = self.seq().items;
  ArgReader r(args, name);
  if (name == "count") {
    const Value x = r.required("value");
    r.finish();
    return Value::integer(std::count_if(items.begin(), items.end(), [&](const Value& v) { return equals(v, x); }));
  }
  if (name == "index") {
    const Value x = r.required("value");
    r.finish();
    for (size_t i = 0; i < items.size(); ++i)
      if (equals(items[i], x)) return Value::integer(int64_t(i));
    fail(py_repr_short(x), " is not in ", type_name(self));
  }
  if (name == "copy") {
    r.finish();
    return self;
  }
  fail("list.", name, "() is not supported by deltatune's Jinja");
}

}  // namespace

Value bound_method(Value self, std::string name) {
  return Value::object(std::make_shared<BoundMethod>(std::move(self), std::move(name)));
}

std::optional<Value> builtin_attribute(const Value& obj, std::string_view name) {
  if (is_mutating(obj, name))
    return Value::undefined("access to attribute '" + std::string(name) + "' of '" + type_name(obj) + "' object is unsafe.");
  if (has_method(obj, name)) return bound_method(obj, std::string(name));
  return std::nullopt;
}

bool call_builtin_method(const Value& obj, std::string_view name, const Arguments& args, RenderState& state,
                         Value& result) {
  if (obj.is_object()) return obj.object().call_method(name, args, state, result);
  if (is_mutating(obj, name))
    fail("access to attribute '", name, "' of '", type_name(obj), "' object is unsafe.");
  if (!has_method(obj, name)) return false;
  if (obj.is_string()) result = str_method(obj, name, args, state);
  else if (obj.is_dict()) result = dict_method(obj, name, args);
  else result = sequence_method(obj, name, args);
  return true;
}

}  // namespace deltatune::jinja
