// jinja2's tests (`x is defined`, `x is string`, ...), with Python's type checks behind them.
#include <map>

#include "text/jinja/builtins.h"
#include "text/jinja/interpreter.h"
#include "text/jinja/operators.h"
#include "text/jinja/unicode.h"

namespace deltatune::jinja {

namespace {

using ast::CompareOp;

Value one_arg(const Arguments& args, const char* test) {
  ArgReader r(args, test);
  Value v = r.required("other");
  r.finish();
  return v;
}

void no_args(const Arguments& args, const char* test) { ArgReader(args, test).finish(); }

bool is_dict_view_or_generator(const Value& v) {
  if (!v.is_sequence()) return false;
  const SeqKind k = v.seq().kind;
  return k == SeqKind::Generator || k == SeqKind::DictKeys || k == SeqKind::DictValues || k == SeqKind::DictItems;
}

bool is_loop_object(const Value& v) { return v.is_object() && v.object().type_name() == "LoopContext"; }

bool remainder_is(const Value& v, const Value& divisor, int64_t want, RenderState& state) {
  return equals(binary_op(ast::BinaryOp::Mod, v, divisor, state), Value::integer(want));
}

// str(value).islower()/isupper(): some cased character, and none of the other case.
bool case_test(const Value& v, bool lower, const RenderState& state) {
  bool cased = false;
  const std::string s = state.str(v);
  for (size_t i = 0; i < s.size();) {
    const size_t at = i;
    const char32_t c = next_code_point(s, i);
    if (!is_cased(c)) continue;
    const std::string one = s.substr(at, i - at);
    const bool is_lower_char = py_lower(one) == one && py_upper(one) != one;
    const bool is_upper_char = py_upper(one) == one && py_lower(one) != one;
    if (lower ? !is_lower_char : !is_upper_char) return false;
    cased = true;
  }
  return cased;
}

#define TEST(name) bool test_##name(const Value& v, const Arguments& args, RenderState& state)

TEST(defined) { no_args(args, "defined"); return !v.is_undefined(); }
TEST(undefined) { no_args(args, "undefined"); return v.is_undefined(); }
TEST(none) { no_args(args, "none"); return v.is_none(); }
TEST(boolean) { no_args(args, "boolean"); return v.is_bool(); }
TEST(false) { no_args(args, "false"); return v.is_bool() && !v.as_bool(); }
TEST(true) { no_args(args, "true"); return v.is_bool() && v.as_bool(); }
TEST(integer) { no_args(args, "integer"); return v.is_int(); }
TEST(float) { no_args(args, "float"); return v.is_float(); }
TEST(number) { no_args(args, "number"); return v.is_number(); }
TEST(string) { no_args(args, "string"); return v.is_string(); }
TEST(mapping) { no_args(args, "mapping"); return v.is_dict(); }
TEST(escaped) { no_args(args, "escaped"); return v.is_markup(); }
TEST(lower) { no_args(args, "lower"); return case_test(v, true, state); }
TEST(upper) { no_args(args, "upper"); return case_test(v, false, state); }
// Python: len(v) and v.__getitem__ both exist (jinja2's Undefined has both).
TEST(sequence) {
  no_args(args, "sequence");
  return v.is_string() || v.is_dict() || v.is_undefined() || (v.is_sequence() && !is_dict_view_or_generator(v));
}
// Python: iter(v) works.
TEST(iterable) {
  no_args(args, "iterable");
  return v.is_string() || v.is_dict() || v.is_sequence() || v.is_undefined() || is_loop_object(v);
}
// Python's callable(); jinja2's Undefined defines __call__ (to fail), so it counts.
TEST(callable) {
  no_args(args, "callable");
  return v.is_undefined() || (v.is_object() && v.object().callable());
}
TEST(odd) { no_args(args, "odd"); return remainder_is(v, Value::integer(2), 1, state); }
TEST(even) { no_args(args, "even"); return remainder_is(v, Value::integer(2), 0, state); }
TEST(divisibleby) { return remainder_is(v, one_arg(args, "divisibleby"), 0, state); }
TEST(filter) { no_args(args, "filter"); return v.is_string() && find_filter(v.str()) != nullptr; }
TEST(test) { no_args(args, "test"); return v.is_string() && find_test(v.str()) != nullptr; }
TEST(in) { return contains(one_arg(args, "in"), v, state); }
TEST(eq) { return compare(CompareOp::Eq, v, one_arg(args, "eq"), state); }
TEST(ne) { return compare(CompareOp::Ne, v, one_arg(args, "ne"), state); }
TEST(lt) { return compare(CompareOp::Lt, v, one_arg(args, "lt"), state); }
TEST(le) { return compare(CompareOp::Le, v, one_arg(args, "le"), state); }
TEST(gt) { return compare(CompareOp::Gt, v, one_arg(args, "gt"), state); }
TEST(ge) { return compare(CompareOp::Ge, v, one_arg(args, "ge"), state); }
// Python's `is`: the same object. Scalars are compared by value, as CPython shares small ints,
// None, True, False and equal constants.
TEST(sameas) {
  const Value other = one_arg(args, "sameas");
  if (v.type() != other.type()) return false;
  switch (v.type()) {
    case Value::Type::Sequence: return v.seq_ptr() == other.seq_ptr();
    case Value::Type::Dict: return &v.dict() == &other.dict();
    case Value::Type::Object: return v.object_ptr() == other.object_ptr();
    default: return equals(v, other);
  }
}

#undef TEST

}  // namespace

TestFn find_test(std::string_view name) {
  static const std::map<std::string, TestFn, std::less<>> tests = {
      {"defined", test_defined}, {"undefined", test_undefined}, {"none", test_none},
      {"boolean", test_boolean}, {"false", test_false}, {"true", test_true},
      {"integer", test_integer}, {"float", test_float}, {"number", test_number},
      {"string", test_string}, {"mapping", test_mapping}, {"sequence", test_sequence},
      {"iterable", test_iterable}, {"callable", test_callable}, {"escaped", test_escaped},
      {"lower", test_lower}, {"upper", test_upper}, {"odd", test_odd},
      {"even", test_even}, {"divisibleby", test_divisibleby}, {"filter", test_filter},
      {"test", test_test}, {"in", test_in}, {"sameas", test_sameas},
      {"eq", test_eq}, {"==", test_eq}, {"equalto", test_eq},
      {"ne", test_ne}, {"!=", test_ne}, {"lt", test_lt},
      {"<", test_lt}, {"lessthan", test_lt}, {"le", test_le},
      {"<=", test_le}, {"gt", test_gt}, {">", test_gt},
      {"greaterthan", test_gt}, {"ge", test_ge}, {">=", test_ge},
  };
  auto it = tests.find(name);
  return it == tests.end() ? nullptr : it->second;
}

}  // namespace deltatune::jinja
