// The names a template can use without defining them: jinja2's filters and tests (the subset chat
// templates use, each with jinja2's semantics), the globals transformers provides
// (raise_exception, strftime_now, namespace, range, dict, joiner), and the methods of str, dict
// and list that a sandboxed template may call.
#pragma once

#include <optional>
#include <string_view>

#include "text/jinja/ast.h"
#include "text/jinja/value.h"

namespace deltatune::jinja {

// Null when jinja2 has no filter or test of that name; the parser then fails, as jinja2 does at
// compile time.
FilterFn find_filter(std::string_view name);
TestFn find_test(std::string_view name);

// The global names (functions), or an undefined value.
Value find_global(std::string_view name);

// obj.name for str, dict, list and the other built-in types: a bound method; nullopt when the
// type has no such attribute. Methods that would modify a list or dict are unsafe in
// transformers' immutable sandbox and come back undefined (calling them fails).
std::optional<Value> builtin_attribute(const Value& obj, std::string_view name);
// obj.name as a value: calling it calls call_builtin_method (objects: Object::call_method).
Value bound_method(Value self, std::string name);
// Calls obj.name(args) without building the bound method; false when obj has no such method.
bool call_builtin_method(const Value& obj, std::string_view name, const Arguments& args, RenderState& state,
                         Value& result);

// Binds a call's arguments to parameters one by one, the way Python does for a builtin:
//   ArgReader r(args, "join"); Value sep = r.next("d", Value::string("")); r.finish();
class ArgReader {
 public:
  ArgReader(const Arguments& args, std::string_view function) : args_(args), function_(function) {}
  // The next parameter: the next positional argument, else the keyword argument of that name,
  // else `fallback`.
  Value next(std::string_view name, Value fallback);
  Value required(std::string_view name);
  // Positional arguments not taken yet (*args).
  std::vector<Value> rest();
  // Fails on arguments no parameter took.
  void finish();

 private:
  const Value* take(std::string_view name);
  const Arguments& args_;
  std::string_view function_;
  size_t positional_used_ = 0;
  std::vector<bool> keyword_used_ = std::vector<bool>(args_.size(), false);
};

}  // namespace deltatune::jinja
