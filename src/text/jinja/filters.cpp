// jinja2's filters on strings and single values (jinja2/filters.py), with transformers' tojson,
// and the table of every filter; sequence_filters.cpp has the filters over sequences.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "text/jinja/builtins.h"
#include "text/jinja/filter_support.h"
#include "text/jinja/interpreter.h"
#include "text/jinja/json_dumps.h"
#include "text/jinja/operators.h"
#include "text/jinja/py_str.h"
#include "text/jinja/repr.h"
#include "text/jinja/string_format.h"
#include "text/jinja/unicode.h"

namespace deltatune::jinja {

namespace filters {

// The items a filter goes through, counted as work against the render's step limit.
ListPtr items_of(const Value& v, RenderState& state) {
  ListPtr items = iterate(v);
  state.charge(items->items.size());
  return items;
}

Value generator(std::vector<Value> items) { return Value::sequence(std::move(items), SeqKind::Generator); }

// soft_str: str(value), keeping a Markup a Markup.
Value soft_str(const Value& v, const RenderState& state) { return v.is_string() ? v : Value::string(state.str(v)); }

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

// An attribute path as jinja2's make_attrgetter reads it: "a.b.0" looks up a, then b, then item 0.
std::vector<Value> attribute_path(const Value& attribute) {
  std::vector<Value> parts;
  if (attribute.is_none()) return parts;
  if (!attribute.is_string()) return {attribute};
  for (std::string& p : py_split(attribute.str(), std::string("."), -1)) {
    const bool digits = !p.empty() && p.find_first_not_of("0123456789") == std::string::npos;
    parts.push_back(digits ? Value::integer(std::stoll(p)) : Value::string(std::move(p)));
  }
  return parts;
}

Value follow(Value item, const std::vector<Value>& path, const Value* fallback) {
  for (const Value& part : path) {
    item = get_item(item, part);
    if (fallback && item.is_undefined()) item = *fallback;
  }
  return item;
}

// Sort and uniqueness keys ignore case unless asked not to (jinja2's ignore_case).
Value case_key(const Value& v, bool case_sensitive) {
  return !case_sensitive && v.is_string() ? Value::string(py_lower(v.str())) : v;
}

int64_t int_param(const Value& v, const char* what) {
  DT_CHECK(v.is_int() || v.is_bool(), what, " must be an integer, not ", type_name(v));
  return v.as_int();
}


FILTER(length) {
  ArgReader(args, "length").finish();
  return Value::integer(length(v));
}

FILTER(string) {
  ArgReader(args, "string").finish();
  return soft_str(v, state);
}

FILTER(safe) {
  ArgReader(args, "safe").finish();
  return Value::string(state.str(v), true);
}

FILTER(escape) {
  ArgReader(args, "escape").finish();
  if (v.is_markup()) return v;
  return Value::string(html_escape(state.str(v)), true);
}

FILTER(forceescape) {
  ArgReader(args, "forceescape").finish();
  return Value::string(html_escape(state.str(v)), true);
}

FILTER(trim) {
  ArgReader r(args, "trim");
  const Value chars = r.next("chars", Value::none());
  r.finish();
  const Value s = soft_str(v, state);
  std::optional<std::string> set;
  if (!chars.is_none()) {
    DT_CHECK(chars.is_string(), "strip arg must be None or str");
    set = chars.str();
  }
  return Value::string(py_strip(s.str(), set, true, true), s.is_markup());
}

FILTER(upper) {
  ArgReader(args, "upper").finish();
  const Value s = soft_str(v, state);
  return Value::string(py_upper(s.str()), s.is_markup());
}

FILTER(lower) {
  ArgReader(args, "lower").finish();
  const Value s = soft_str(v, state);
  return Value::string(py_lower(s.str()), s.is_markup());
}

FILTER(capitalize) {
  ArgReader(args, "capitalize").finish();
  const Value s = soft_str(v, state);
  return Value::string(py_capitalize(s.str()), s.is_markup());
}

// jinja2's title: each piece after a run of "-", whitespace or an opening bracket gets its first
// character upper-cased and the rest lower-cased.
FILTER(title) {
  ArgReader(args, "title").finish();
  const Value s = soft_str(v, state);
  const std::u32string cps = to_code_points(s.str());
  auto is_separator = [](char32_t c) { return c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || is_space(c); };
  std::string out;
  size_t i = 0;
  while (i < cps.size()) {
    const size_t start = i;
    const bool sep = is_separator(cps[i]);
    while (i < cps.size() && is_separator(cps[i]) == sep) ++i;
    const std::string piece = to_utf8(std::u32string_view(cps).substr(start, i - start));
    if (sep) {
      out += piece;
    } else {
      size_t first_end = 0;
      next_code_point(piece, first_end);
      out += py_upper(piece.substr(0, first_end)) + py_lower(piece.substr(first_end));
    }
  }
  return Value::string(std::move(out), s.is_markup());
}

FILTER(replace) {
  ArgReader r(args, "replace");
  const std::string old = state.str(r.required("old"));
  const std::string rep = state.str(r.required("new"));
  const Value count = r.next("count", Value::none());
  r.finish();
  std::string out = py_replace(state.str(v), old, rep, count.is_none() ? -1 : int_param(count, "count"),
                               state.limits().max_string_bytes);
  return Value::string(std::move(out));
}

FILTER(default) {
  ArgReader r(args, "default");
  const Value fallback = r.next("default_value", Value::string(""));
  const bool boolean = truthy(r.next("boolean", Value::boolean(false)));
  r.finish();
  return v.is_undefined() || (boolean && !truthy(v)) ? fallback : v;
}

FILTER(attr) {
  ArgReader r(args, "attr");
  const Value name = r.required("name");
  r.finish();
  DT_CHECK(name.is_string(), "attribute name must be string");
  if (v.is_undefined()) fail_undefined(v);
  if (v.is_object()) return v.object().attribute(name.str());  // no fallback to items
  if (std::optional<Value> a = builtin_attribute(v, name.str())) return *a;
  return Value::undefined(py_repr_string(type_name(v) + " object") + " has no attribute " + py_repr_string(name.str()));
}

FILTER(int) {
  ArgReader r(args, "int");
  const Value fallback = r.next("default", Value::integer(0));
  const int64_t base = int_param(r.next("base", Value::integer(10)), "base");
  r.finish();
  if (v.is_undefined()) fail_undefined(v);  // Python's int() asks the value, and Undefined refuses
  // int(value, base) for strings, then int(float(value)), then the default: "42.23"|int is 42.
  if (auto i = to_int(v, v.is_string() ? int(base) : 10)) return Value::integer(*i);
  if (auto d = to_float(v); d && std::isfinite(*d)) return Value::integer(*to_int(Value::number(*d)));
  return fallback;
}

FILTER(float) {
  ArgReader r(args, "float");
  const Value fallback = r.next("default", Value::number(0.0));
  r.finish();
  if (v.is_undefined()) fail_undefined(v);
  if (auto d = to_float(v)) return Value::number(*d);
  return fallback;
}

FILTER(abs) {
  ArgReader(args, "abs").finish();
  if (v.is_float()) return Value::number(std::fabs(v.as_float()));
  if (v.is_number()) {
    DT_CHECK(v.as_int() != INT64_MIN, "integer overflow: deltatune's Jinja integers are 64-bit");
    return Value::integer(std::llabs(v.as_int()));
  }
  fail("bad operand type for abs(): '", type_name(v), "'");
}

// round(value, precision): Python rounds the exact binary value half to even, as printf does.
FILTER(round) {
  ArgReader r(args, "round");
  const int64_t precision = int_param(r.next("precision", Value::integer(0)), "precision");
  const Value method = r.next("method", Value::string("common"));
  r.finish();
  DT_CHECK(method.is_string() && (method.str() == "common" || method.str() == "ceil" || method.str() == "floor"),
           "method must be common, ceil or floor");
  DT_CHECK(v.is_number(), "type ", type_name(v), " doesn't define __round__ method");
  DT_CHECK(precision >= 0 && precision <= 300, "round: precision ", precision, " is not supported");
  if (method.str() != "common") {
    const double scale = std::pow(10.0, double(precision));
    const double x = v.as_float() * scale;
    return Value::number((method.str() == "ceil" ? std::ceil(x) : std::floor(x)) / scale);
  }
  if (!v.is_float()) return Value::integer(v.as_int());  // round(int, n) stays an int
  const double x = v.as_float();
  if (!std::isfinite(x)) return Value::number(x);
  char buf[400];
  std::snprintf(buf, sizeof buf, "%.*f", int(precision), x);
  return Value::number(std::strtod(buf, nullptr));
}

FILTER(center) {
  ArgReader r(args, "center");
  const int64_t width = int_param(r.next("width", Value::integer(80)), "width");
  r.finish();
  state.check_size(size_t(std::max<int64_t>(width, 0)));
  return Value::string(py_center(state.str(v), width, " "));
}

FILTER(indent) {
  ArgReader r(args, "indent");
  const Value width = r.next("width", Value::integer(4));
  const bool first = truthy(r.next("first", Value::boolean(false)));
  const bool blank = truthy(r.next("blank", Value::boolean(false)));
  r.finish();
  if (v.is_undefined()) fail_undefined(v);  // jinja2 appends "\n" to the value itself
  DT_CHECK(v.is_string(), "unsupported operand type(s) for +=: '", type_name(v), "' and 'str'");
  std::string indentation;
  if (width.is_string()) {
    indentation = width.str();
  } else {
    const int64_t n = int_param(width, "width");
    state.check_size(size_t(std::max<int64_t>(n, 0)));
    indentation = std::string(size_t(std::max<int64_t>(n, 0)), ' ');
  }
  // jinja2 appends a newline before splitting lines, so a trailing newline leaves an empty line.
  const std::vector<std::string> lines = py_splitlines(state.str(v) + "\n", false);
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i) out += '\n';
    if (i && (blank || !lines[i].empty())) out += indentation;
    out += lines[i];
    state.check_size(out.size());
  }
  if (first) out = indentation + out;
  return Value::string(std::move(out), v.is_markup());
}

FILTER(truncate) {
  ArgReader r(args, "truncate");
  const int64_t max_length = int_param(r.next("length", Value::integer(255)), "length");
  const bool killwords = truthy(r.next("killwords", Value::boolean(false)));
  const std::string end = state.str(r.next("end", Value::string("...")));
  const Value leeway_v = r.next("leeway", Value::none());
  r.finish();
  const int64_t leeway = leeway_v.is_none() ? 5 : int_param(leeway_v, "leeway");  // jinja2's truncate.leeway
  const int64_t end_len = int64_t(code_point_count(end));
  DT_CHECK(max_length >= end_len, "expected length >= ", end_len, ", got ", max_length);
  DT_CHECK(leeway >= 0, "expected leeway >= 0, got ", leeway);
  // jinja2 measures the value itself: a short list comes back as it is, a long one cannot be cut.
  if (length(v) <= max_length + leeway) return v;
  DT_CHECK(v.is_string(), "'", type_name(v), "' object has no attribute 'rsplit'");
  const std::u32string s = to_code_points(v.str());
  std::string head = to_utf8(s.substr(0, size_t(max_length - end_len)));
  if (!killwords) head = py_rsplit(head, std::string(" "), 1)[0];
  return Value::string(head + end);
}

FILTER(format) {
  std::vector<Value> positional;
  DictData named;
  for (const Argument& a : args) {
    if (a.name.empty()) positional.push_back(a.value);
    else named.set(Value::string(a.name), a.value);
  }
  DT_CHECK(positional.empty() || named.items.empty(), "can't handle positional and keyword arguments at the same time");
  const Value s = soft_str(v, state);
  const Value format_args = named.items.empty() ? Value::tuple(std::move(positional)) : Value::dict(std::move(named));
  return Value::string(percent_format(s.str(), format_args, s.is_markup(), state), s.is_markup());
}

// transformers' tojson: json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False).
FILTER(tojson) {
  ArgReader r(args, "tojson");
  JsonDumpsOptions o;
  o.ensure_ascii = truthy(r.next("ensure_ascii", Value::boolean(false)));
  const Value indent = r.next("indent", Value::none());
  const Value separators = r.next("separators", Value::none());
  o.sort_keys = truthy(r.next("sort_keys", Value::boolean(false)));
  r.finish();
  if (indent.is_string()) {
    o.indent = indent.str();
  } else if (indent.is_number() && !indent.is_float()) {
    o.indent = std::string(size_t(std::clamp<int64_t>(indent.as_int(), 0, 1000)), ' ');
  } else {
    DT_CHECK(indent.is_none(), "tojson: indent must be an integer or a string, not ", type_name(indent));
  }
  if (!separators.is_none()) {
    const ListPtr seps = iterate(separators);
    DT_CHECK(seps->items.size() == 2 && seps->items[0].is_string() && seps->items[1].is_string(),
             "tojson: separators must be two strings");
    o.item_separator = seps->items[0].str();
    o.key_separator = seps->items[1].str();
  }
  o.max_bytes = state.limits().max_string_bytes;
  std::string out = py_json_dumps(v, o);
  return Value::string(std::move(out));
}

#undef FILTER

// A filter that is a generator function in jinja2 runs only when its result is iterated: an error
// it meets is kept in the generator it returns, and raised if that is ever used up.
template <FilterFn filter>
Value lazily(const Value& v, const Arguments& args, RenderState& state) {
  try {
    return filter(v, args, state);
  } catch (const Error& e) {
    return Value::failed_generator(e.what());
  }
}

// jinja2 filters not implemented here: using one is an error, never silently different output.
Value unsupported_filter(const Value&, const Arguments&, RenderState&) {
  fail("not supported by deltatune's Jinja");
}

}  // namespace filters

FilterFn find_filter(std::string_view name) {
  using namespace filters;
  static const std::map<std::string, FilterFn, std::less<>> table = {
      {"abs", filter_abs}, {"attr", filter_attr}, {"batch", lazily<filter_batch>},
      {"capitalize", filter_capitalize}, {"center", filter_center}, {"count", filter_length},
      {"d", filter_default}, {"default", filter_default}, {"dictsort", filter_dictsort},
      {"e", filter_escape}, {"escape", filter_escape}, {"first", filter_first},
      {"float", filter_float}, {"forceescape", filter_forceescape}, {"format", filter_format},
      {"indent", filter_indent}, {"int", filter_int}, {"items", lazily<filter_items>},
      {"join", filter_join}, {"last", filter_last}, {"length", filter_length},
      {"list", filter_list}, {"lower", filter_lower}, {"map", lazily<filter_map>},
      {"max", filter_max}, {"min", filter_min}, {"reject", lazily<filter_reject>},
      {"rejectattr", lazily<filter_rejectattr>}, {"replace", filter_replace}, {"reverse", filter_reverse},
      {"round", filter_round}, {"safe", filter_safe}, {"select", lazily<filter_select>},
      {"selectattr", lazily<filter_selectattr>}, {"slice", lazily<filter_slice>}, {"sort", filter_sort},
      {"string", filter_string}, {"sum", filter_sum}, {"title", filter_title},
      {"tojson", filter_tojson}, {"trim", filter_trim}, {"truncate", filter_truncate},
      {"unique", lazily<filter_unique>}, {"upper", filter_upper},
      {"filesizeformat", unsupported_filter}, {"groupby", unsupported_filter}, {"pprint", unsupported_filter},
      {"random", unsupported_filter}, {"striptags", unsupported_filter}, {"urlencode", unsupported_filter},
      {"urlize", unsupported_filter}, {"wordcount", unsupported_filter}, {"wordwrap", unsupported_filter},
      {"xmlattr", unsupported_filter},
  };
  auto it = table.find(name);
  return it == table.end() ? nullptr : it->second;
}

}  // namespace deltatune::jinja
