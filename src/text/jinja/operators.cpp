#include "text/jinja/operators.h"

#include <cmath>
#include <cstdlib>
#include <limits>

#include "text/jinja/builtins.h"
#include "text/jinja/interpreter.h"
#include "text/jinja/repr.h"
#include "text/jinja/string_format.h"
#include "text/jinja/unicode.h"

namespace deltatune::jinja {

using ast::BinaryOp;
using ast::CompareOp;

void fail_undefined(const Value& v) {
  const std::string& reason = v.undefined_reason();
  fail(reason.empty() ? "undefined value" : reason);
}

namespace {

const char* symbol(BinaryOp op) {
  switch (op) {
    case BinaryOp::Add: return "+";
    case BinaryOp::Sub: return "-";
    case BinaryOp::Mul: return "*";
    case BinaryOp::Div: return "/";
    case BinaryOp::FloorDiv: return "//";
    case BinaryOp::Mod: return "%";
    case BinaryOp::Pow: return "** or pow()";
  }
  return "?";
}

const char* symbol(CompareOp op) {
  switch (op) {
    case CompareOp::Lt: return "<";
    case CompareOp::Le: return "<=";
    case CompareOp::Gt: return ">";
    case CompareOp::Ge: return ">=";
    default: return "==";
  }
}

[[noreturn]] void unsupported(BinaryOp op, const Value& a, const Value& b) {
  fail("unsupported operand type(s) for ", symbol(op), ": '", type_name(a), "' and '", type_name(b), "'");
}

void check_overflow(bool overflow) { DT_CHECK(!overflow, "integer overflow: deltatune's Jinja integers are 64-bit"); }

double checked_float(double r, double a, double b) {
  DT_CHECK(std::isfinite(r) || !std::isfinite(a) || !std::isfinite(b), "(34, 'Numerical result out of range')");
  return r;
}

// Markup (a string marked safe) escapes the plain strings added to it.
std::string html_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

Value int_pow(int64_t base, int64_t exp) {
  if (exp < 0) {
    DT_CHECK(base != 0, "0.0 cannot be raised to a negative power");
    return Value::number(std::pow(double(base), double(exp)));
  }
  int64_t result = 1;
  while (exp > 0) {
    if (exp & 1) check_overflow(__builtin_mul_overflow(result, base, &result));
    exp >>= 1;
    if (exp) check_overflow(__builtin_mul_overflow(base, base, &base));
  }
  return Value::integer(result);
}

double float_mod(double a, double b) {
  DT_CHECK(b != 0, "float modulo");
  double mod = std::fmod(a, b);
  if (mod != 0) {
    if ((b < 0) != (mod < 0)) mod += b;
  } else {
    mod = std::copysign(0.0, b);
  }
  return mod;
}

double float_floordiv(double a, double b) {
  DT_CHECK(b != 0, "float floor division by zero");
  const double mod = std::fmod(a, b);
  double div = (a - mod) / b;
  if (mod != 0 && (b < 0) != (mod < 0)) div -= 1.0;
  if (div == 0) return std::copysign(0.0, a / b);
  double floordiv = std::floor(div);
  if (div - floordiv > 0.5) floordiv += 1.0;
  return floordiv;
}

Value numeric(BinaryOp op, const Value& a, const Value& b) {
  if (!a.is_float() && !b.is_float()) {
    const int64_t x = a.as_int(), y = b.as_int();
    int64_t r = 0;
    switch (op) {
      case BinaryOp::Add: check_overflow(__builtin_add_overflow(x, y, &r)); return Value::integer(r);
      case BinaryOp::Sub: check_overflow(__builtin_sub_overflow(x, y, &r)); return Value::integer(r);
      case BinaryOp::Mul: check_overflow(__builtin_mul_overflow(x, y, &r)); return Value::integer(r);
      case BinaryOp::Div:
        DT_CHECK(y != 0, "division by zero");
        return Value::number(double(x) / double(y));
      case BinaryOp::FloorDiv: {
        DT_CHECK(y != 0, "integer division or modulo by zero");
        DT_CHECK(!(x == INT64_MIN && y == -1), "integer overflow: deltatune's Jinja integers are 64-bit");
        int64_t q = x / y;
        if (x % y != 0 && ((x < 0) != (y < 0))) --q;
        return Value::integer(q);
      }
      case BinaryOp::Mod: {
        DT_CHECK(y != 0, "integer modulo by zero");
        if (y == -1) return Value::integer(0);
        int64_t m = x % y;
        if (m != 0 && ((m < 0) != (y < 0))) m += y;
        return Value::integer(m);
      }
      case BinaryOp::Pow: return int_pow(x, y);
    }
  }
  const double x = a.as_float(), y = b.as_float();
  switch (op) {
    case BinaryOp::Add: return Value::number(x + y);
    case BinaryOp::Sub: return Value::number(x - y);
    case BinaryOp::Mul: return Value::number(x * y);
    case BinaryOp::Div:
      DT_CHECK(y != 0, "float division by zero");
      return Value::number(checked_float(x / y, x, y));
    case BinaryOp::FloorDiv: return Value::number(float_floordiv(x, y));
    case BinaryOp::Mod: return Value::number(float_mod(x, y));
    case BinaryOp::Pow:
      DT_CHECK(!(x == 0 && y < 0), "0.0 cannot be raised to a negative power");
      DT_CHECK(!(x < 0 && std::isfinite(y) && y != std::floor(y)), "complex numbers are not supported");
      return Value::number(checked_float(std::pow(x, y), x, y));
  }
  return Value();
}

size_t saturating_mul(size_t a, uint64_t b) {
  size_t r;
  return __builtin_mul_overflow(a, b, &r) ? SIZE_MAX : r;
}

Value repeat(const Value& seq, int64_t n, RenderState& state) {
  if (seq.is_string()) {
    if (n <= 0 || seq.str().empty()) return Value::string("", seq.is_markup());
    state.check_size(saturating_mul(seq.str().size(), uint64_t(n)));
    std::string out;
    out.reserve(seq.str().size() * size_t(n));
    for (int64_t i = 0; i < n; ++i) out += seq.str();
    return Value::string(std::move(out), seq.is_markup());
  }
  std::vector<Value> items;
  const auto& src = seq.seq().items;
  if (n > 0 && !src.empty()) {
    state.check_size(saturating_mul(src.size() * sizeof(Value), uint64_t(n)));
    for (int64_t i = 0; i < n; ++i) items.insert(items.end(), src.begin(), src.end());
  }
  return Value::sequence(std::move(items), seq.seq().kind);
}

bool is_repeatable(const Value& v) { return v.is_string() || v.is_list_like(); }

}  // namespace

Value binary_op(BinaryOp op, const Value& a, const Value& b, RenderState& state) {
  if (a.is_undefined()) fail_undefined(a);
  // str % x formats x itself (str() of an undefined value is ""); any other use of one fails.
  if (b.is_undefined() && !(op == BinaryOp::Mod && a.is_string())) fail_undefined(b);
  if (a.is_number() && b.is_number()) return numeric(op, a, b);
  switch (op) {
    case BinaryOp::Add:
      if (a.is_string() && b.is_string()) {
        const bool markup = a.is_markup() || b.is_markup();
        std::string out = markup && !a.is_markup() ? html_escape(a.str()) : a.str();
        out += markup && !b.is_markup() ? html_escape(b.str()) : b.str();
        state.check_size(out.size());
        return Value::string(std::move(out), markup);
      }
      if (a.is_string()) fail("can only concatenate str (not \"", type_name(b), "\") to str");
      if (a.is_list_like() && b.is_list_like() && a.seq().kind == b.seq().kind) {
        std::vector<Value> items = a.seq().items;
        items.insert(items.end(), b.seq().items.begin(), b.seq().items.end());
        state.check_size(items.size() * sizeof(Value));
        return Value::sequence(std::move(items), a.seq().kind);
      }
      if (a.is_list_like()) fail("can only concatenate ", type_name(a), " (not \"", type_name(b), "\") to ", type_name(a));
      unsupported(op, a, b);
    case BinaryOp::Mul:
      if (is_repeatable(a) && (b.is_int() || b.is_bool())) return repeat(a, b.as_int(), state);
      if (is_repeatable(b) && (a.is_int() || a.is_bool())) return repeat(b, a.as_int(), state);
      if (is_repeatable(a) || is_repeatable(b))
        fail("can't multiply sequence by non-int of type '", type_name(is_repeatable(a) ? b : a), "'");
      unsupported(op, a, b);
    case BinaryOp::Mod:
      if (a.is_string()) return Value::string(percent_format(a.str(), b, a.is_markup(), state), a.is_markup());
      unsupported(op, a, b);
    default: unsupported(op, a, b);
  }
}

Value negate(const Value& v) {
  if (v.is_undefined()) fail_undefined(v);
  if (v.is_float()) return Value::number(-v.as_float());
  if (v.is_number()) {
    DT_CHECK(v.as_int() != INT64_MIN, "integer overflow: deltatune's Jinja integers are 64-bit");
    return Value::integer(-v.as_int());
  }
  fail("bad operand type for unary -: '", type_name(v), "'");
}

Value unary_plus(const Value& v) {
  if (v.is_undefined()) fail_undefined(v);
  if (v.is_float()) return v;
  if (v.is_number()) return Value::integer(v.as_int());
  fail("bad operand type for unary +: '", type_name(v), "'");
}

namespace {

// Python's rich comparison for the ordering operators.
bool ordered(CompareOp op, const Value& a, const Value& b) {
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
  auto apply = [op](auto x, auto y) {
    switch (op) {
      case CompareOp::Lt: return x < y;
      case CompareOp::Le: return x <= y;
      case CompareOp::Gt: return x > y;
      default: return x >= y;
    }
  };
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return apply(a.as_float(), b.as_float());
    return apply(a.as_int(), b.as_int());
  }
  if (a.is_string() && b.is_string()) return apply(a.str().compare(b.str()), 0);
  if (a.is_list_like() && b.is_list_like() && a.seq().kind == b.seq().kind) {
    const auto &x = a.seq().items, &y = b.seq().items;
    const size_t n = std::min(x.size(), y.size());
    for (size_t i = 0; i < n; ++i)
      if (!equals(x[i], y[i])) return ordered(op, x[i], y[i]);
    return apply(x.size(), y.size());
  }
  fail("'", symbol(op), "' not supported between instances of '", type_name(a), "' and '", type_name(b), "'");
}

}  // namespace

bool less_than(const Value& a, const Value& b) { return ordered(CompareOp::Lt, a, b); }

bool compare(CompareOp op, const Value& a, const Value& b, RenderState& state) {
  switch (op) {
    case CompareOp::Eq: return equals(a, b);
    case CompareOp::Ne: return !equals(a, b);
    case CompareOp::In: return contains(b, a, state);
    case CompareOp::NotIn: return !contains(b, a, state);
    default: return ordered(op, a, b);
  }
}

void check_hashable(const Value& key) {
  if (key.is_undefined()) return;  // jinja2's Undefined hashes
  const bool hashable = !(key.is_dict() || (key.is_sequence() && key.seq().kind == SeqKind::List) ||
                          (key.is_object() && dynamic_cast<const Namespace*>(&key.object())));
  DT_CHECK(hashable, "unhashable type: '", type_name(key), "'");
  if (key.is_sequence() && key.seq().kind == SeqKind::Tuple)
    for (const Value& v : key.seq().items) check_hashable(v);
}

bool contains(const Value& container, const Value& item, RenderState& state) {
  switch (container.type()) {
    case Value::Type::String:
      DT_CHECK(item.is_string(), "'in <string>' requires string as left operand, not ", type_name(item));
      return container.str().find(item.str()) != std::string::npos;
    case Value::Type::Sequence: {
      const ListPtr iterated = iterate(container);
      state.charge(iterated->items.size());
      for (const Value& v : iterated->items)
        if (equals(v, item)) return true;
      return false;
    }
    case Value::Type::Dict:
      check_hashable(item);
      return container.dict().find(item) != nullptr;
    case Value::Type::Undefined: return false;  // an undefined value iterates as empty
    default: fail("argument of type '", type_name(container), "' is not iterable");
  }
}

namespace {

// How jinja2 names an object in "has no attribute" messages.
std::string object_type_repr(const Value& obj) {
  if (obj.is_none()) return "None";
  return type_name(obj) + " object";
}

Value missing_attribute(const Value& obj, std::string_view name) {
  return Value::undefined(py_repr_string(object_type_repr(obj)) + " has no attribute " + py_repr_string(name));
}

}  // namespace

Value get_attr(const Value& obj, std::string_view name) {
  if (obj.is_undefined()) fail_undefined(obj);
  if (obj.is_object()) return obj.object().attribute(name);
  if (std::optional<Value> attr = builtin_attribute(obj, name)) return *attr;
  if (obj.is_dict())
    if (const Value* v = obj.dict().find(name)) return *v;
  return missing_attribute(obj, name);
}

namespace {

// A Python index into a sequence of n items: negative counts from the end; nullopt out of range.
std::optional<size_t> resolve_index(const Value& key, size_t n) {
  int64_t i = key.as_int();
  if (i < 0) i += int64_t(n);
  if (i < 0 || i >= int64_t(n)) return std::nullopt;
  return size_t(i);
}

}  // namespace

Value get_item(const Value& obj, const Value& key) {
  if (obj.is_undefined()) fail_undefined(obj);
  const bool int_key = key.is_int() || key.is_bool();
  if (obj.is_string() && int_key) {
    if (is_ascii(obj.str())) {
      if (auto i = resolve_index(key, obj.str().size())) return Value::string(obj.str().substr(*i, 1));
    } else {
      const std::u32string cps = to_code_points(obj.str());
      if (auto i = resolve_index(key, cps.size())) return Value::string(to_utf8(cps.substr(*i, 1)));
    }
  } else if (obj.is_sequence() && int_key && obj.seq().kind != SeqKind::Generator &&
             obj.seq().kind != SeqKind::DictKeys && obj.seq().kind != SeqKind::DictValues &&
             obj.seq().kind != SeqKind::DictItems) {
    if (auto i = resolve_index(key, obj.seq().items.size())) return obj.seq().items[*i];
  } else if (obj.is_dict()) {
    check_hashable(key);
    if (const Value* v = obj.dict().find(key)) return *v;
  }
  if (key.is_string()) {
    // obj["name"] falls back to obj.name; a namespace has only attributes.
    if (obj.is_object()) return obj.object().attribute(key.str());
    if (std::optional<Value> attr = builtin_attribute(obj, key.str())) return *attr;
    return missing_attribute(obj, key.str());
  }
  return Value::undefined(object_type_repr(obj) + " has no element " + py_repr_short(key));
}

// jinja2 compiles x[a:b] to Python's own subscription, not to environment.getitem: a slice of
// something that cannot be sliced fails instead of giving an undefined value.
Value get_slice(const Value& obj, const Value& start_v, const Value& stop_v, const Value& step_v) {
  if (obj.is_undefined()) fail_undefined(obj);
  DT_CHECK(!obj.is_dict(), "unhashable type: 'slice'");
  const bool sliceable = obj.is_string() || (obj.is_sequence() && (obj.is_list_like() || obj.seq().kind == SeqKind::Range));
  DT_CHECK(sliceable, "'", type_name(obj), "' object is not subscriptable");
  auto index = [](const Value& v) -> std::optional<int64_t> {
    if (v.is_none()) return std::nullopt;
    DT_CHECK(v.is_int() || v.is_bool(), "slice indices must be integers or None or have an __index__ method");
    return v.as_int();
  };
  const std::optional<int64_t> start = index(start_v), stop = index(stop_v), step_o = index(step_v);
  const int64_t step = step_o.value_or(1);
  DT_CHECK(step != 0, "slice step cannot be zero");
  std::u32string cps;
  if (obj.is_string()) cps = to_code_points(obj.str());
  const int64_t n = obj.is_string() ? int64_t(cps.size()) : int64_t(obj.seq().items.size());
  // CPython's PySlice_AdjustIndices.
  auto adjust = [&](std::optional<int64_t> v, int64_t fallback) {
    if (!v) return fallback;
    int64_t i = *v;
    if (i < 0) {
      i += n;
      if (i < 0) i = step < 0 ? -1 : 0;
    } else if (i >= n) {
      i = step < 0 ? n - 1 : n;
    }
    return i;
  };
  const int64_t lo = adjust(start, step < 0 ? n - 1 : 0);
  const int64_t hi = adjust(stop, step < 0 ? -1 : n);
  std::vector<int64_t> picks;
  for (int64_t i = lo; step > 0 ? i < hi : i > hi; i += step) picks.push_back(i);
  if (obj.is_string()) {
    std::u32string out;
    for (int64_t i : picks) out += cps[size_t(i)];
    return Value::string(to_utf8(out), obj.is_markup());
  }
  std::vector<Value> items;
  for (int64_t i : picks) items.push_back(obj.seq().items[size_t(i)]);
  const ListData& s = obj.seq();
  if (s.kind == SeqKind::Range)  // a slice of a range is a range: range(4)[1:] is range(1, 4)
    return Value::range(s.range_start + lo * s.range_step, s.range_start + hi * s.range_step, s.range_step * step,
                        std::move(items));
  return Value::sequence(std::move(items), s.kind == SeqKind::Tuple ? SeqKind::Tuple : SeqKind::List);
}

ListPtr iterate(const Value& v) {
  switch (v.type()) {
    case Value::Type::Sequence: {
      const ListData& s = v.seq();
      if (s.kind != SeqKind::Generator) return v.seq_ptr();
      auto rest = std::make_shared<ListData>();
      rest->items.assign(s.items.begin() + std::ptrdiff_t(std::min(s.consumed, s.items.size())), s.items.end());
      s.consumed = s.items.size();
      if (s.error) fail(*s.error);
      return rest;
    }
    case Value::Type::Dict: {
      auto keys = std::make_shared<ListData>();
      for (const auto& [k, val] : v.dict().items) keys->items.push_back(k);
      return keys;
    }
    case Value::Type::String: {
      auto chars = std::make_shared<ListData>();
      const std::string& s = v.str();
      for (size_t i = 0; i < s.size();) {
        const size_t begin = i;
        next_code_point(s, i);
        chars->items.push_back(Value::string(s.substr(begin, i - begin), v.is_markup()));
      }
      return chars;
    }
    case Value::Type::Undefined: return std::make_shared<ListData>();
    default: fail("'", type_name(v), "' object is not iterable");
  }
}

int64_t length(const Value& v) {
  switch (v.type()) {
    case Value::Type::String: return int64_t(code_point_count(v.str()));
    case Value::Type::Sequence:
      DT_CHECK(v.seq().kind != SeqKind::Generator, "object of type 'generator' has no len()");
      return int64_t(v.seq().items.size());
    case Value::Type::Dict: return int64_t(v.dict().items.size());
    case Value::Type::Undefined: return 0;
    default: fail("object of type '", type_name(v), "' has no len()");
  }
}

namespace {

std::string strip_ascii_and_unicode_space(std::string_view s) {
  size_t begin = 0, end = 0;
  bool seen = false;
  for (size_t i = 0; i < s.size();) {
    const size_t at = i;
    if (!is_space(next_code_point(s, i))) {
      if (!seen) begin = at;
      seen = true;
      end = i;
    }
  }
  return seen ? std::string(s.substr(begin, end - begin)) : std::string();
}

// Digits with single underscores between them (Python's numeric literal rule).
bool digits_ok(std::string_view s, int base) {
  if (s.empty() || s.front() == '_' || s.back() == '_') return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '_') {
      if (s[i + 1] == '_') return false;
      continue;
    }
    const int d = std::isdigit(static_cast<unsigned char>(c)) ? c - '0'
                  : std::isalpha(static_cast<unsigned char>(c)) ? std::tolower(static_cast<unsigned char>(c)) - 'a' + 10
                                                                : 99;
    if (d >= base) return false;
  }
  return true;
}

std::string without_underscores(std::string_view s) {
  std::string out;
  for (char c : s)
    if (c != '_') out += c;
  return out;
}

std::optional<int64_t> parse_int(std::string_view text, int base) {
  std::string s = strip_ascii_and_unicode_space(text);
  std::string_view v = s;
  bool negative = false;
  if (!v.empty() && (v[0] == '+' || v[0] == '-')) {
    negative = v[0] == '-';
    v.remove_prefix(1);
  }
  if (v.size() > 2 && v[0] == '0') {
    const char p = char(std::tolower(static_cast<unsigned char>(v[1])));
    const int prefixed = p == 'x' ? 16 : p == 'o' ? 8 : p == 'b' ? 2 : 0;
    if (prefixed && (base == prefixed || base == 0)) {
      base = prefixed;
      v.remove_prefix(2);
      if (!v.empty() && v[0] == '_') v.remove_prefix(1);
    }
  }
  if (base == 0) base = 10;
  if (base < 2 || base > 36 || !digits_ok(v, base)) return std::nullopt;
  const std::string digits = without_underscores(v);
  errno = 0;
  const unsigned long long u = std::strtoull(digits.c_str(), nullptr, base);
  if (errno == ERANGE || u > uint64_t(INT64_MAX) + (negative ? 1 : 0))
    fail("integer ", text, " does not fit in 64 bits");
  return negative ? int64_t(0 - u) : int64_t(u);
}

std::optional<double> parse_float(std::string_view text) {
  const std::string s = strip_ascii_and_unicode_space(text);
  std::string lower;
  for (char c : s) lower += char(std::tolower(static_cast<unsigned char>(c)));
  std::string_view v = lower;
  double sign = 1;
  if (!v.empty() && (v[0] == '+' || v[0] == '-')) {
    sign = v[0] == '-' ? -1 : 1;
    v.remove_prefix(1);
  }
  if (v == "inf" || v == "infinity") return sign * std::numeric_limits<double>::infinity();
  if (v == "nan") return std::numeric_limits<double>::quiet_NaN();
  // [digits][.digits][e[sign]digits], with a digit somewhere in the mantissa.
  const size_t e = v.find('e');
  const std::string_view mantissa = v.substr(0, e);
  const size_t dot = mantissa.find('.');
  const std::string_view whole = mantissa.substr(0, dot);
  const std::string_view frac = dot == std::string_view::npos ? std::string_view() : mantissa.substr(dot + 1);
  if (whole.empty() && frac.empty()) return std::nullopt;
  if ((!whole.empty() && !digits_ok(whole, 10)) || (!frac.empty() && !digits_ok(frac, 10))) return std::nullopt;
  if (e != std::string_view::npos) {
    std::string_view ex = v.substr(e + 1);
    if (!ex.empty() && (ex[0] == '+' || ex[0] == '-')) ex.remove_prefix(1);
    if (!digits_ok(ex, 10)) return std::nullopt;
  }
  return sign * std::strtod(without_underscores(v).c_str(), nullptr);
}

}  // namespace

std::optional<int64_t> to_int(const Value& v, int base) {
  if (v.is_int() || v.is_bool()) return v.as_int();
  if (v.is_float()) {
    const double d = v.as_float();
    if (!std::isfinite(d)) return std::nullopt;
    DT_CHECK(std::fabs(d) < 9.2e18, "integer ", py_float_repr(d), " does not fit in 64 bits");
    return int64_t(d);
  }
  if (v.is_string()) return parse_int(v.str(), base);
  return std::nullopt;
}

std::optional<double> to_float(const Value& v) {
  if (v.is_number()) return v.as_float();
  if (v.is_string()) return parse_float(v.str());
  return std::nullopt;
}

}  // namespace deltatune::jinja
