#include "text/jinja/repr.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <vector>

#include "text/jinja/unicode.h"

namespace deltatune::jinja {

namespace {

// Python's reprs guard against containers that hold themselves (a namespace assigned into itself)
// by printing "{...}" or "[...]" for the inner occurrence; the stack of containers being printed
// does the same here, and also bounds the recursion. Text goes into one buffer with a byte budget:
// a list that holds the same big list many times would otherwise print without bound.
class Printer {
 public:
  Printer(size_t max_bytes, bool truncate) : max_bytes_(max_bytes), truncate_(truncate) {}

  void repr(const Value& v) {
    switch (v.type()) {
      case Value::Type::Undefined: return put("Undefined");
      case Value::Type::None: return put("None");
      case Value::Type::Bool: return put(v.as_bool() ? "True" : "False");
      case Value::Type::Int: return put(std::to_string(v.as_int()));
      case Value::Type::Float: return put(py_float_repr(v.as_float()));
      case Value::Type::String:
        if (v.is_markup()) return put(str_cat("Markup(", py_repr_string(v.str()), ")"));
        return put(py_repr_string(v.str()));
      case Value::Type::Sequence: return sequence(v);
      case Value::Type::Dict: return dict(v.dict(), &v.dict());
      case Value::Type::Object: return object(v);
    }
  }

  void namespace_repr(const Namespace& ns) {
    DictData attrs;
    for (const auto& [k, val] : ns.attrs) attrs.items.emplace_back(Value::string(k), val);
    put("<Namespace ");
    dict(attrs, &ns);
    put(">");
  }

  std::string out;
  bool full = false;  // truncated at the budget

 private:
  struct Guard {
    Guard(Printer& p, const void* what) : p(p) {
      DT_CHECK(p.open_.size() < 2 * kMaxValueDepth, "values nest too deeply to print");
      p.open_.push_back(what);
    }
    ~Guard() { p.open_.pop_back(); }
    Printer& p;
  };
  bool is_open(const void* what) const {
    for (const void* o : open_)
      if (o == what) return true;
    return false;
  }

  void put(std::string_view text) {
    if (full) return;
    if (out.size() + text.size() > max_bytes_) {
      DT_CHECK(truncate_, "printing a value takes more than ", max_bytes_, " bytes");
      out += text.substr(0, max_bytes_ - out.size());
      out += "...";
      full = true;
      return;
    }
    out += text;
  }

  void items(const std::vector<Value>& items) {
    for (size_t i = 0; i < items.size() && !full; ++i) {
      if (i) put(", ");
      repr(items[i]);
    }
  }

  void sequence(const Value& v) {
    const ListData& s = v.seq();
    if (is_open(&s)) return put(s.kind == SeqKind::Tuple ? "(...)" : "[...]");
    Guard guard(*this, &s);
    switch (s.kind) {
      case SeqKind::List: put("["); items(s.items); return put("]");
      case SeqKind::Tuple: put("("); items(s.items); return put(s.items.size() == 1 ? ",)" : ")");
      case SeqKind::Generator: return put("<generator object>");
      case SeqKind::Range:
        return put(str_cat("range(", s.range_start, ", ", s.range_stop,
                           s.range_step != 1 ? ", " + std::to_string(s.range_step) : "", ")"));
      case SeqKind::DictKeys: put("dict_keys(["); items(s.items); return put("])");
      case SeqKind::DictValues: put("dict_values(["); items(s.items); return put("])");
      case SeqKind::DictItems: put("dict_items(["); items(s.items); return put("])");
    }
  }

  void dict(const DictData& d, const void* identity) {
    if (is_open(identity)) return put("{...}");
    Guard guard(*this, identity);
    put("{");
    for (size_t i = 0; i < d.items.size() && !full; ++i) {
      if (i) put(", ");
      repr(d.items[i].first);
      put(": ");
      repr(d.items[i].second);
    }
    put("}");
  }

  void object(const Value& v) {
    if (const auto* ns = dynamic_cast<const Namespace*>(&v.object())) return namespace_repr(*ns);
    put(v.object().repr());
  }

  size_t max_bytes_;
  bool truncate_;
  std::vector<const void*> open_;
};

}  // namespace

std::string py_repr(const Value& v, size_t max_bytes) {
  Printer p(max_bytes, false);
  p.repr(v);
  return std::move(p.out);
}

std::string py_repr_short(const Value& v) {
  Printer p(200, true);
  p.repr(v);
  return std::move(p.out);
}

std::string py_str(const Value& v, size_t max_bytes) {
  if (v.is_string()) return v.str();
  if (v.is_undefined()) return "";
  return py_repr(v, max_bytes);
}

std::string Namespace::repr() const {
  Printer p(SIZE_MAX, false);
  p.namespace_repr(*this);
  return std::move(p.out);
}

std::string py_repr_string(std::string_view s) {
  const bool has_single = s.find('\'') != std::string_view::npos;
  const bool has_double = s.find('"') != std::string_view::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  for (size_t i = 0; i < s.size();) {
    const char32_t c = next_code_point(s, i);
    if (c == char32_t(quote) || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7F || (c >= 0x80 && !is_printable(c))) {
      char buf[16];
      if (c < 0x100) std::snprintf(buf, sizeof buf, "\\x%02x", unsigned(c));
      else if (c < 0x10000) std::snprintf(buf, sizeof buf, "\\u%04x", unsigned(c));
      else std::snprintf(buf, sizeof buf, "\\U%08x", unsigned(c));
      out += buf;
    } else {
      append_utf8(out, c);
    }
  }
  return out + quote;
}

// repr(float): the shortest digits that read back the same value; positional notation when the
// decimal exponent is in [-4, 16), else d.ddde±XX.
std::string py_float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  std::string sign;
  if (sci[0] == '-') {
    sign = "-";
    sci.erase(0, 1);
  }
  const size_t e = sci.find('e');
  std::string digits = sci.substr(0, 1) + (e > 2 ? sci.substr(2, e - 2) : "");
  const int exp10 = std::stoi(sci.substr(e + 1));
  const int point = exp10 + 1;  // digits before the decimal point
  std::string out;
  if (point > -4 && point <= 16) {
    if (point <= 0) {
      out = "0." + std::string(size_t(-point), '0') + digits;
    } else if (size_t(point) >= digits.size()) {
      out = digits + std::string(size_t(point) - digits.size(), '0') + ".0";
    } else {
      out = digits.substr(0, size_t(point)) + "." + digits.substr(size_t(point));
    }
  } else {
    out = digits.substr(0, 1);
    if (digits.size() > 1) out += str_cat(".", digits.substr(1));
    char ebuf[16];
    std::snprintf(ebuf, sizeof ebuf, "e%c%02d", exp10 < 0 ? '-' : '+', std::abs(exp10));
    out += ebuf;
  }
  return sign + out;
}

}  // namespace deltatune::jinja
