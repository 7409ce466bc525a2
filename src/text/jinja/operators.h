// Python's operators on Values, as jinja2 evaluates them (it compiles templates to Python):
// arithmetic with Python's int/float rules (// and % round toward minus infinity, / always gives
// a float), + and * on strings and lists, comparisons, `in`, indexing and slicing by code point,
// and jinja2's attribute/item lookup, which turns a missing attribute into an undefined value.
// Integers are 64-bit here; a result that does not fit is an error rather than a Python bigint.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "text/jinja/ast.h"
#include "text/jinja/value.h"

namespace deltatune::jinja {

// Fails with the reason the value is undefined ("'x' is undefined").
[[noreturn]] void fail_undefined(const Value& v);

Value binary_op(ast::BinaryOp op, const Value& a, const Value& b, RenderState& state);
Value negate(const Value& v);
Value unary_plus(const Value& v);
bool compare(ast::CompareOp op, const Value& a, const Value& b, RenderState& state);
bool contains(const Value& container, const Value& item, RenderState& state);  // `item in container`
// Python's a < b (TypeError across kinds); used by comparisons, sort, min and max.
bool less_than(const Value& a, const Value& b);

// jinja2's environment.getattr: obj.name, falling back to obj[name].
Value get_attr(const Value& obj, std::string_view name);
// jinja2's environment.getitem: obj[key], falling back to obj.key for string keys.
Value get_item(const Value& obj, const Value& key);
Value get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step);

// The items a for loop visits: a list's items, a dict's keys, a string's characters; nothing for
// an undefined value. Iterating a generator uses it up.
ListPtr iterate(const Value& v);
// len(v); an undefined value has length 0.
int64_t length(const Value& v);
// Python's int(v) and float(v) conversions that filters use; nullopt when Python would raise.
std::optional<int64_t> to_int(const Value& v, int base = 10);
std::optional<double> to_float(const Value& v);
// Keys of dicts must be hashable: not lists, dicts or namespaces.
void check_hashable(const Value& key);

}  // namespace deltatune::jinja
