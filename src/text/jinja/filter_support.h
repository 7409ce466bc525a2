// Shared by the filter files: how jinja2's filters read their input and arguments.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "text/jinja/interpreter.h"
#include "text/jinja/value.h"

namespace deltatune::jinja::filters {

#define FILTER(name) Value filter_##name(const Value& v, const Arguments& args, RenderState& state)

// The items a filter goes through, counted as work against the render's step limit.
ListPtr items_of(const Value& v, RenderState& state);
Value generator(std::vector<Value> items);
// soft_str: str(value), keeping a Markup a Markup.
Value soft_str(const Value& v, const RenderState& state);
std::string html_escape(std::string_view s);
// An attribute path as jinja2's make_attrgetter reads it: "a.b.0" looks up a, then b, then item 0.
std::vector<Value> attribute_path(const Value& attribute);
Value follow(Value item, const std::vector<Value>& path, const Value* fallback = nullptr);
// Sort and uniqueness keys ignore case unless asked not to (jinja2's ignore_case).
Value case_key(const Value& v, bool case_sensitive);
int64_t int_param(const Value& v, const char* what);

// The filters over sequences (sequence_filters.cpp).
FILTER(first); FILTER(last); FILTER(join); FILTER(list); FILTER(items); FILTER(dictsort); FILTER(sort);
FILTER(unique); FILTER(min); FILTER(max); FILTER(sum); FILTER(reverse); FILTER(map); FILTER(select);
FILTER(reject); FILTER(selectattr); FILTER(rejectattr); FILTER(batch); FILTER(slice);

}  // namespace deltatune::jinja::filters
