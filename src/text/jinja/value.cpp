#include "text/jinja/value.h"

#include <algorithm>
#include <cmath>
#include <optional>


namespace deltatune::jinja {

namespace {

const std::string& empty_string() {
  static const std::string empty;
  return empty;
}

void check_shape(uint32_t depth, uint64_t weight) {
  DT_CHECK(depth <= kMaxValueDepth, "lists and dicts nest more than ", kMaxValueDepth, " deep");
  DT_CHECK(weight <= kMaxValueWeight, "a list or dict holds more than ", kMaxValueWeight,
           " values, counting nested ones");
}

// The integer a key equals, if any: Python hashes 1, 1.0 and True alike.
std::optional<int64_t> integral_key(const Value& key) {
  if (key.is_int() || key.is_bool()) return key.as_int();
  if (key.is_float()) {
    const double d = key.as_float();
    if (d == std::floor(d) && std::fabs(d) < 9.2e18) return int64_t(d);
  }
  return std::nullopt;
}

}  // namespace

Value Value::undefined(std::string reason) {
  return Value(Data(UndefinedData{reason.empty() ? nullptr : std::make_shared<const std::string>(std::move(reason))}));
}

Value Value::string(std::string s, bool markup) {
  return Value(Data(StringData{std::make_shared<const std::string>(std::move(s)), markup}));
}

Value Value::sequence(std::vector<Value> items, SeqKind kind) {
  auto data = std::make_shared<ListData>();
  uint32_t depth = 0;
  uint64_t weight = 1;
  for (const Value& v : items) {
    depth = std::max(depth, v.depth());
    weight = std::min(weight + v.weight(), kMaxValueWeight + 1);
  }
  data->depth = depth + 1;
  data->weight = weight;
  check_shape(data->depth, data->weight);
  data->items = std::move(items);
  data->kind = kind;
  return Value(Data(ListPtr(std::move(data))));
}

Value Value::range(int64_t start, int64_t stop, int64_t step, std::vector<Value> items) {
  auto data = std::make_shared<ListData>();
  data->items = std::move(items);
  data->kind = SeqKind::Range;
  data->range_start = start;
  data->range_stop = stop;
  data->range_step = step;
  return Value(Data(ListPtr(std::move(data))));
}

Value Value::failed_generator(std::string error) {
  auto data = std::make_shared<ListData>();
  data->kind = SeqKind::Generator;
  data->error = std::make_shared<const std::string>(std::move(error));
  return Value(Data(ListPtr(std::move(data))));
}

Value Value::dict(DictData d) {
  uint32_t depth = 0;
  uint64_t weight = 1;
  for (const auto& [k, v] : d.items) {
    depth = std::max({depth, k.depth(), v.depth()});
    weight = std::min(weight + k.weight() + v.weight(), kMaxValueWeight + 1);
  }
  d.depth = depth + 1;
  d.weight = weight;
  check_shape(d.depth, d.weight);
  return Value(Data(DictPtr(std::make_shared<const DictData>(std::move(d)))));
}

bool Value::is_list_like() const {
  return is_sequence() && (seq().kind == SeqKind::List || seq().kind == SeqKind::Tuple);
}

const std::string& Value::undefined_reason() const {
  const auto& r = std::get<UndefinedData>(data_).reason;
  return r ? *r : empty_string();
}

uint32_t Value::depth() const {
  if (is_sequence()) return seq().depth;
  if (is_dict()) return dict().depth;
  return 0;
}

uint64_t Value::weight() const {
  if (is_sequence()) return seq().weight;
  if (is_dict()) return dict().weight;
  return 1;
}

void DictData::set(Value key, Value value) {
  // A string equals no other type, and an integral key only other integral keys: the indexes
  // decide; other keys (non-integral floats, tuples, None) are compared one by one.
  if (key.is_string()) {
    auto [it, inserted] = string_index.emplace(key.str(), items.size());
    if (inserted) items.emplace_back(std::move(key), std::move(value));
    else items[it->second].second = std::move(value);
    return;
  }
  if (const auto i = integral_key(key)) {
    auto [it, inserted] = int_index.emplace(*i, items.size());
    if (inserted) items.emplace_back(std::move(key), std::move(value));
    else items[it->second].second = std::move(value);
    return;
  }
  for (auto& item : items) {
    if (!item.first.is_string() && equals(item.first, key)) {
      item.second = std::move(value);
      return;
    }
  }
  items.emplace_back(std::move(key), std::move(value));
}

const Value* DictData::find(std::string_view key) const {
  auto it = string_index.find(std::string(key));
  return it == string_index.end() ? nullptr : &items[it->second].second;
}

const Value* DictData::find(const Value& key) const {
  if (key.is_string()) return find(key.str());
  if (const auto i = integral_key(key)) {
    auto it = int_index.find(*i);
    return it == int_index.end() ? nullptr : &items[it->second].second;
  }
  for (const auto& item : items)
    if (equals(item.first, key)) return &item.second;
  return nullptr;
}

Value Object::attribute(std::string_view name) const {
  return Value::undefined(str_cat("'", type_name(), " object' has no attribute '", name, "'"));
}

Value Object::call(const Arguments&, RenderState&) const {
  fail("'", type_name(), "' object is not callable");
}

std::string Object::repr() const { return str_cat("<", type_name(), " object>"); }

Value Namespace::attribute(std::string_view name) const {
  for (const auto& [k, v] : attrs)
    if (k == name) return v;
  return Object::attribute(name);
}

void Namespace::set(const std::string& name, Value value) {
  for (auto& [k, v] : attrs) {
    if (k == name) {
      v = std::move(value);
      return;
    }
  }
  attrs.emplace_back(name, std::move(value));
}

bool truthy(const Value& v) {
  switch (v.type()) {
    case Value::Type::Undefined:
    case Value::Type::None: return false;
    case Value::Type::Bool: return v.as_bool();
    case Value::Type::Int: return v.as_int() != 0;
    case Value::Type::Float: return v.as_float() != 0;
    case Value::Type::String: return !v.str().empty();
    case Value::Type::Sequence: {
      const ListData& s = v.seq();
      if (s.kind == SeqKind::Generator) return true;  // a generator object is always true
      return !s.items.empty();
    }
    case Value::Type::Dict: return !v.dict().items.empty();
    case Value::Type::Object: return true;
  }
  return false;
}

std::string type_name(const Value& v) {
  switch (v.type()) {
    case Value::Type::Undefined: return "Undefined";
    case Value::Type::None: return "NoneType";
    case Value::Type::Bool: return "bool";
    case Value::Type::Int: return "int";
    case Value::Type::Float: return "float";
    case Value::Type::String: return v.is_markup() ? "Markup" : "str";
    case Value::Type::Sequence:
      switch (v.seq().kind) {
        case SeqKind::List: return "list";
        case SeqKind::Tuple: return "tuple";
        case SeqKind::Generator: return "generator";
        case SeqKind::Range: return "range";
        case SeqKind::DictKeys: return "dict_keys";
        case SeqKind::DictValues: return "dict_values";
        case SeqKind::DictItems: return "dict_items";
      }
      return "list";
    case Value::Type::Dict: return "dict";
    case Value::Type::Object: return v.object().type_name();
  }
  return "object";
}

bool equals(const Value& a, const Value& b) {
  using T = Value::Type;
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_float() == b.as_float();
    return a.as_int() == b.as_int();
  }
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case T::Undefined:
    case T::None: return true;
    case T::String: return a.str() == b.str();
    case T::Sequence: {
      const ListData &x = a.seq(), &y = b.seq();
      if (&x == &y) return true;
      const bool by_value = x.kind == y.kind &&
                            (x.kind == SeqKind::List || x.kind == SeqKind::Tuple || x.kind == SeqKind::Range);
      if (!by_value || x.items.size() != y.items.size()) return false;
      for (size_t i = 0; i < x.items.size(); ++i)
        if (!equals(x.items[i], y.items[i])) return false;
      return true;
    }
    case T::Dict: {
      const DictData &x = a.dict(), &y = b.dict();
      if (x.items.size() != y.items.size()) return false;
      for (const auto& [k, v] : x.items) {
        const Value* other = y.find(k);
        if (!other || !equals(v, *other)) return false;
      }
      return true;
    }
    case T::Object: return a.object_ptr() == b.object_ptr();
    default: return false;
  }
}

}  // namespace deltatune::jinja
