// JSON (nlohmann::json or ordered_json) to template values, as Python's json.loads gives them to
// jinja2: objects become dicts (in the JSON's key order with ordered_json; nlohmann::json sorts
// keys), arrays lists, integers ints, other numbers floats.
#pragma once

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "text/jinja/value.h"

namespace deltatune::jinja {

template <class Json>
Value value_from_json(const Json& j, int depth = 0) {
  DT_CHECK(depth < int(kMaxValueDepth), "JSON nests more than ", kMaxValueDepth, " deep");
  switch (j.type()) {
    case nlohmann::json::value_t::null: return Value::none();
    case nlohmann::json::value_t::boolean: return Value::boolean(j.template get<bool>());
    case nlohmann::json::value_t::number_integer: return Value::integer(j.template get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      const auto u = j.template get<uint64_t>();
      DT_CHECK(u <= uint64_t(INT64_MAX), "JSON integer ", u, " does not fit in 64 bits");
      return Value::integer(int64_t(u));
    }
    case nlohmann::json::value_t::number_float: return Value::number(j.template get<double>());
    case nlohmann::json::value_t::string: return Value::string(j.template get<std::string>());
    case nlohmann::json::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& item : j) items.push_back(value_from_json(item, depth + 1));
      return Value::sequence(std::move(items));
    }
    case nlohmann::json::value_t::object: {
      DictData d;
      for (auto it = j.begin(); it != j.end(); ++it) d.set(Value::string(it.key()), value_from_json(it.value(), depth + 1));
      return Value::dict(std::move(d));
    }
    default: fail("JSON value of type ", j.type_name(), " has no template equivalent");
  }
}

}  // namespace deltatune::jinja
