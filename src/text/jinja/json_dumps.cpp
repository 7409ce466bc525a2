#include "text/jinja/json_dumps.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "text/jinja/repr.h"
#include "text/jinja/unicode.h"

namespace deltatune::jinja {

namespace {

void append_hex_escape(std::string& out, unsigned c) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "\\u%04x", c);
  out += buf;
}

void append_json_string(std::string& out, std::string_view s, bool ensure_ascii) {
  out += '"';
  for (size_t i = 0; i < s.size();) {
    const char32_t c = next_code_point(s, i);
    switch (c) {
      case '"': out += "\\\""; continue;
      case '\\': out += "\\\\"; continue;
      case '\n': out += "\\n"; continue;
      case '\r': out += "\\r"; continue;
      case '\t': out += "\\t"; continue;
      case '\b': out += "\\b"; continue;
      case '\f': out += "\\f"; continue;
      default: break;
    }
    if (c < 0x20 || (ensure_ascii && c >= 0x7F)) {
      if (c >= 0x10000) {  // a surrogate pair, as Python writes astral characters
        const char32_t v = c - 0x10000;
        append_hex_escape(out, 0xD800 | (v >> 10));
        append_hex_escape(out, 0xDC00 | (v & 0x3FF));
      } else {
        append_hex_escape(out, unsigned(c));
      }
    } else {
      append_utf8(out, c);
    }
  }
  out += '"';
}

std::string json_float(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  return py_float_repr(d);
}

class Encoder {
 public:
  explicit Encoder(const JsonDumpsOptions& o)
      : o_(o),
        item_sep_(o.item_separator.value_or(o.indent ? "," : ", ")),
        key_sep_(o.key_separator.value_or(": ")) {}

  void encode(const Value& v, int level) {
    switch (v.type()) {
      case Value::Type::None: out += "null"; return;
      case Value::Type::Bool: out += v.as_bool() ? "true" : "false"; return;
      case Value::Type::Int: out += std::to_string(v.as_int()); return;
      case Value::Type::Float: out += json_float(v.as_float()); return;
      case Value::Type::String: append_json_string(out, v.str(), o_.ensure_ascii); return;
      case Value::Type::Sequence:
        if (v.is_list_like()) return array(v.seq().items, level);
        break;
      case Value::Type::Dict: return object(v.dict(), level);
      default: break;
    }
    fail("Object of type ", type_name(v), " is not JSON serializable");
  }

  std::string out;

 private:
  void check_size() const {
    DT_CHECK(out.size() <= o_.max_bytes, "the JSON text takes more than ", o_.max_bytes, " bytes");
  }

  void newline(int level) {
    if (!o_.indent) return;
    out += '\n';
    for (int i = 0; i < level; ++i) out += *o_.indent;
  }

  void array(const std::vector<Value>& items, int level) {
    if (items.empty()) {
      out += "[]";
      return;
    }
    out += '[';
    for (size_t i = 0; i < items.size(); ++i) {
      if (i) out += item_sep_;
      newline(level + 1);
      encode(items[i], level + 1);
      check_size();
    }
    newline(level);
    out += ']';
  }

  static std::string key_text(const Value& k) {
    switch (k.type()) {
      case Value::Type::String: return k.str();
      case Value::Type::None: return "null";
      case Value::Type::Bool: return k.as_bool() ? "true" : "false";
      case Value::Type::Int: return std::to_string(k.as_int());
      case Value::Type::Float: return json_float(k.as_float());
      default: fail("keys must be str, int, float, bool or None, not ", type_name(k));
    }
  }

  void object(const DictData& d, int level) {
    if (d.items.empty()) {
      out += "{}";
      return;
    }
    std::vector<const std::pair<Value, Value>*> items;
    for (const auto& item : d.items) items.push_back(&item);
    if (o_.sort_keys) sort_by_key(items);
    out += '{';
    for (size_t i = 0; i < items.size(); ++i) {
      if (i) out += item_sep_;
      newline(level + 1);
      append_json_string(out, key_text(items[i]->first), o_.ensure_ascii);
      out += key_sep_;
      encode(items[i]->second, level + 1);
      check_size();
    }
    newline(level);
    out += '}';
  }

  // sorted(d.items()): keys of one kind only (Python cannot order a str against a number).
  static void sort_by_key(std::vector<const std::pair<Value, Value>*>& items) {
    const bool strings = items[0]->first.is_string();
    for (const auto* item : items) {
      const Value& k = item->first;
      DT_CHECK(strings ? k.is_string() : k.is_number(), "'<' not supported between instances of '",
               type_name(items[0]->first), "' and '", type_name(k), "'");
    }
    std::stable_sort(items.begin(), items.end(), [&](const auto* a, const auto* b) {
      return strings ? a->first.str() < b->first.str() : a->first.as_float() < b->first.as_float();
    });
  }

  const JsonDumpsOptions& o_;
  std::string item_sep_, key_sep_;
};

}  // namespace

std::string py_json_dumps(const Value& v, const JsonDumpsOptions& options) {
  Encoder e(options);
  e.encode(v, 0);
  return std::move(e.out);
}

}  // namespace deltatune::jinja
