// jinja2's filters over sequences: join, sort, unique, map, select, batch, ... Those that are
// generator functions in jinja2 (map, select, reject, selectattr, rejectattr, unique, items,
// reverse, batch, slice) return generators here too: always true, no len(), used up once iterated.
#include <algorithm>

#include "text/jinja/builtins.h"
#include "text/jinja/filter_support.h"
#include "text/jinja/operators.h"
#include "text/jinja/py_str.h"
#include "text/jinja/unicode.h"

namespace deltatune::jinja::filters {

FILTER(first) {
  ArgReader(args, "first").finish();
  if (v.is_sequence() && v.seq().kind == SeqKind::Generator) {
    const ListData& g = v.seq();
    if (g.consumed < g.items.size()) return g.items[g.consumed++];
    if (g.error) fail(*g.error);
    return Value::undefined("No first item, sequence was empty.");
  }
  const ListPtr items = items_of(v, state);
  return items->items.empty() ? Value::undefined("No first item, sequence was empty.") : items->items.front();
}

FILTER(last) {
  ArgReader(args, "last").finish();
  DT_CHECK(!(v.is_sequence() && v.seq().kind == SeqKind::Generator), "'generator' object is not reversible");
  const ListPtr items = items_of(v, state);
  return items->items.empty() ? Value::undefined("No last item, sequence was empty.") : items->items.back();
}

FILTER(join) {
  ArgReader r(args, "join");
  const std::string sep = state.str(r.next("d", Value::string("")));
  const std::vector<Value> path = attribute_path(r.next("attribute", Value::none()));
  r.finish();
  std::string out;
  bool first = true;
  const ListPtr iterated = items_of(v, state);
  for (const Value& item : iterated->items) {
    if (!first) out += sep;
    first = false;
    out += state.str(follow(item, path));
    state.check_size(out.size());
  }
  return Value::string(std::move(out));
}

FILTER(list) {
  ArgReader(args, "list").finish();
  return Value::sequence(items_of(v, state)->items);
}

FILTER(items) {
  ArgReader(args, "items").finish();
  if (v.is_undefined()) return generator({});
  DT_CHECK(v.is_dict(), "Can only get item pairs from a mapping.");
  state.charge(v.dict().items.size());
  std::vector<Value> pairs;
  for (const auto& [k, val] : v.dict().items) pairs.push_back(Value::tuple({k, val}));
  return generator(std::move(pairs));
}

FILTER(dictsort) {
  ArgReader r(args, "dictsort");
  const bool case_sensitive = truthy(r.next("case_sensitive", Value::boolean(false)));
  const Value by = r.next("by", Value::string("key"));
  const bool reverse = truthy(r.next("reverse", Value::boolean(false)));
  r.finish();
  DT_CHECK(by.is_string() && (by.str() == "key" || by.str() == "value"), "You can only sort by either \"key\" or \"value\"");
  DT_CHECK(v.is_dict(), "'", type_name(v), "' object has no attribute 'items'");
  const bool by_key = by.str() == "key";
  state.charge(v.dict().items.size());
  std::vector<std::pair<Value, Value>> items = v.dict().items;
  std::stable_sort(items.begin(), items.end(), [&](const auto& a, const auto& b) {
    const Value ka = case_key(by_key ? a.first : a.second, case_sensitive);
    const Value kb = case_key(by_key ? b.first : b.second, case_sensitive);
    return reverse ? less_than(kb, ka) : less_than(ka, kb);
  });
  std::vector<Value> out;
  for (auto& [k, val] : items) out.push_back(Value::tuple({k, val}));
  return Value::sequence(std::move(out));
}

FILTER(sort) {
  ArgReader r(args, "sort");
  const bool reverse = truthy(r.next("reverse", Value::boolean(false)));
  const bool case_sensitive = truthy(r.next("case_sensitive", Value::boolean(false)));
  const Value attribute = r.next("attribute", Value::none());
  r.finish();
  // "age,name": a key of several attributes, compared in order.
  std::vector<std::vector<Value>> paths;
  if (attribute.is_string()) {
    for (const std::string& a : py_split(attribute.str(), std::string(","), -1)) paths.push_back(attribute_path(Value::string(a)));
  } else {
    paths.push_back(attribute_path(attribute));
  }
  std::vector<std::pair<Value, Value>> keyed;  // key, item
  const ListPtr iterated = items_of(v, state);
  for (const Value& item : iterated->items) {
    std::vector<Value> key;
    for (const auto& p : paths) key.push_back(case_key(follow(item, p), case_sensitive));
    keyed.emplace_back(Value::sequence(std::move(key)), item);
  }
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& a, const auto& b) {
    return reverse ? less_than(b.first, a.first) : less_than(a.first, b.first);
  });
  std::vector<Value> out;
  for (auto& [k, item] : keyed) out.push_back(item);
  return Value::sequence(std::move(out));
}

FILTER(unique) {
  ArgReader r(args, "unique");
  const bool case_sensitive = truthy(r.next("case_sensitive", Value::boolean(false)));
  const std::vector<Value> path = attribute_path(r.next("attribute", Value::none()));
  r.finish();
  // Python keeps a set of the keys seen; a dict with the keys as keys is that set.
  DictData seen;
  std::vector<Value> out;
  const ListPtr iterated = items_of(v, state);
  for (const Value& item : iterated->items) {
    const Value key = case_key(follow(item, path), case_sensitive);
    check_hashable(key);
    if (!seen.find(key)) {
      seen.set(key, Value::none());
      out.push_back(item);
    }
  }
  return generator(std::move(out));
}

Value min_or_max(const Value& v, const Arguments& args, RenderState& state, const char* name, bool max) {
  ArgReader r(args, name);
  const bool case_sensitive = truthy(r.next("case_sensitive", Value::boolean(false)));
  const std::vector<Value> path = attribute_path(r.next("attribute", Value::none()));
  r.finish();
  const ListPtr items = items_of(v, state);
  if (items->items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  const Value* best = &items->items[0];
  Value best_key = case_key(follow(*best, path), case_sensitive);
  for (size_t i = 1; i < items->items.size(); ++i) {
    Value key = case_key(follow(items->items[i], path), case_sensitive);
    if (max ? less_than(best_key, key) : less_than(key, best_key)) {
      best = &items->items[i];
      best_key = std::move(key);
    }
  }
  return *best;
}

FILTER(min) { return min_or_max(v, args, state, "min", false); }
FILTER(max) { return min_or_max(v, args, state, "max", true); }

FILTER(sum) {
  ArgReader r(args, "sum");
  const std::vector<Value> path = attribute_path(r.next("attribute", Value::none()));
  Value total = r.next("start", Value::integer(0));
  r.finish();
  const ListPtr iterated = items_of(v, state);
  for (const Value& item : iterated->items) total = binary_op(ast::BinaryOp::Add, total, follow(item, path), state);
  return total;
}

FILTER(reverse) {
  ArgReader(args, "reverse").finish();
  if (v.is_string()) {
    std::u32string cps = to_code_points(v.str());
    std::reverse(cps.begin(), cps.end());
    return Value::string(to_utf8(cps), v.is_markup());
  }
  // reversed(x) is an iterator; a generator is not reversible, so jinja2 reverses list(x) instead.
  const bool from_generator = v.is_sequence() && v.seq().kind == SeqKind::Generator;
  std::vector<Value> items = items_of(v, state)->items;
  std::reverse(items.begin(), items.end());
  return from_generator ? Value::sequence(std::move(items)) : generator(std::move(items));
}

FILTER(map) {
  ArgReader r(args, "map");
  std::vector<Value> out;
  const ListPtr items = items_of(v, state);
  // map(attribute='x', default=...) or map('filter', *args, **kwargs)
  bool by_attribute = true;
  for (const Argument& a : args) by_attribute &= !a.name.empty();
  if (by_attribute) {
    const std::vector<Value> path = attribute_path(r.required("attribute"));
    const Value fallback = r.next("default", Value::undefined());
    r.finish();
    for (const Value& item : items->items)
      out.push_back(follow(item, path, fallback.is_undefined() ? nullptr : &fallback));
    return generator(std::move(out));
  }
  const Value name = r.required("filter");
  DT_CHECK(name.is_string(), "map: the filter name must be a string");
  const FilterFn f = find_filter(name.str());
  DT_CHECK(f, "No filter named '", name.str(), "'.");
  Arguments rest(args.begin() + 1, args.end());
  for (const Value& item : items->items) out.push_back(f(item, rest, state));
  return generator(std::move(out));
}

// select/reject(test, *args); selectattr/rejectattr(attribute, test, *args). No test: truthiness.
Value select(const Value& v, const Arguments& args, RenderState& state, bool by_attribute, bool keep) {
  const char* name = by_attribute ? (keep ? "selectattr" : "rejectattr") : (keep ? "select" : "reject");
  size_t next = 0;
  std::vector<Value> path;
  if (by_attribute) {
    DT_CHECK(!args.empty(), name, "() missing required argument 'attribute'");
    path = attribute_path(args[next++].value);
  }
  TestFn test = nullptr;
  if (next < args.size()) {
    const Value& t = args[next++].value;
    DT_CHECK(t.is_string(), name, ": the test name must be a string");
    test = find_test(t.str());
    DT_CHECK(test, "No test named '", t.str(), "'.");
  }
  const Arguments rest(args.begin() + std::ptrdiff_t(next), args.end());
  std::vector<Value> out;
  const ListPtr iterated = items_of(v, state);
  for (const Value& item : iterated->items) {
    const Value subject = follow(item, path);
    const bool passed = test ? test(subject, rest, state) : truthy(subject);
    if (passed == keep) out.push_back(item);
  }
  return generator(std::move(out));
}

FILTER(select) { return select(v, args, state, false, true); }
FILTER(reject) { return select(v, args, state, false, false); }
FILTER(selectattr) { return select(v, args, state, true, true); }
FILTER(rejectattr) { return select(v, args, state, true, false); }

FILTER(batch) {
  ArgReader r(args, "batch");
  const int64_t size = int_param(r.required("linecount"), "linecount");
  const Value fill = r.next("fill_with", Value::none());
  r.finish();
  DT_CHECK(size > 0, "batch: linecount must be positive");
  std::vector<Value> out, row;
  const ListPtr iterated = items_of(v, state);
  for (const Value& item : iterated->items) {
    row.push_back(item);
    if (int64_t(row.size()) == size) out.push_back(Value::sequence(std::exchange(row, {})));
  }
  if (!row.empty()) {
    if (!fill.is_none())
      while (int64_t(row.size()) < size) row.push_back(fill);
    out.push_back(Value::sequence(std::move(row)));
  }
  return generator(std::move(out));
}

FILTER(slice) {
  ArgReader r(args, "slice");
  const int64_t slices = int_param(r.required("slices"), "slices");
  const Value fill = r.next("fill_with", Value::none());
  r.finish();
  DT_CHECK(slices > 0 && slices <= 100000, "slice: slices must be in 1..100000");
  const std::vector<Value> seq = items_of(v, state)->items;
  const int64_t n = int64_t(seq.size()), per = n / slices, extra = n % slices;
  int64_t offset = 0;
  std::vector<Value> out;
  for (int64_t k = 0; k < slices; ++k) {
    const int64_t start = offset + k * per;
    if (k < extra) ++offset;
    const int64_t end = offset + (k + 1) * per;
    std::vector<Value> part(seq.begin() + start, seq.begin() + end);
    if (!fill.is_none() && k >= extra) part.push_back(fill);
    out.push_back(Value::sequence(std::move(part)));
  }
  return generator(std::move(out));
}


#undef FILTER

}  // namespace deltatune::jinja::filters
