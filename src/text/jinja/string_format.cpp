#include "text/jinja/string_format.h"

#include <cmath>
#include <cstdio>

#include "text/jinja/interpreter.h"
#include "text/jinja/operators.h"
#include "text/jinja/repr.h"
#include "text/jinja/unicode.h"

namespace deltatune::jinja {

namespace {

std::string html_escape_text(std::string_view s) {
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

// repr() with non-ASCII characters escaped: Python's ascii().
std::string py_ascii(const Value& v, const RenderState& state) {
  const std::string r = state.repr(v);
  std::string out;
  for (size_t i = 0; i < r.size();) {
    const char32_t c = next_code_point(r, i);
    if (c < 0x80) {
      out += char(c);
      continue;
    }
    char buf[16];
    if (c < 0x100) std::snprintf(buf, sizeof buf, "\\x%02x", unsigned(c));
    else if (c < 0x10000) std::snprintf(buf, sizeof buf, "\\u%04x", unsigned(c));
    else std::snprintf(buf, sizeof buf, "\\U%08x", unsigned(c));
    out += buf;
  }
  return out;
}

std::string first_code_points(const std::string& s, int64_t n) {
  size_t i = 0;
  for (int64_t k = 0; k < n && i < s.size(); ++k) next_code_point(s, i);
  return s.substr(0, i);
}

// Pads to `width` code points: fill on the left ('>'), right ('<'), both ('^'), or between a
// number's sign and digits ('=', `sign_len` bytes of prefix).
std::string pad(const std::string& s, int64_t width, char align, char32_t fill, size_t sign_len, RenderState& state) {
  const int64_t len = int64_t(code_point_count(s));
  if (width <= len) return s;
  state.check_size(size_t(width) * 4);
  const int64_t total = width - len;
  std::string f;
  append_utf8(f, fill);
  auto fills = [&](int64_t n) {
    std::string out;
    for (int64_t i = 0; i < n; ++i) out += f;
    return out;
  };
  switch (align) {
    case '<': return s + fills(total);
    case '^': return fills(total / 2) + s + fills(total - total / 2);
    case '=': return s.substr(0, sign_len) + fills(total) + s.substr(sign_len);
    default: return fills(total) + s;
  }
}

std::string to_base(uint64_t v, int base, bool upper) {
  if (v == 0) return "0";
  std::string out;
  const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  while (v) {
    out.insert(out.begin(), digits[v % uint64_t(base)]);
    v /= uint64_t(base);
  }
  return out;
}

std::string group_digits(const std::string& digits, char sep, size_t every) {
  std::string out;
  const size_t n = digits.size();
  for (size_t i = 0; i < n; ++i) {
    if (i && (n - i) % every == 0) out += sep;
    out += digits[i];
  }
  return out;
}

uint64_t magnitude(int64_t v) { return v < 0 ? uint64_t(0) - uint64_t(v) : uint64_t(v); }

std::string c_format_float(double d, char type, int64_t precision, bool alt, RenderState& state) {
  DT_CHECK(precision <= 10000, "precision too big");
  state.check_size(size_t(precision) + 400);
  const std::string fmt = std::string("%") + (alt ? "#" : "") + ".*" + type;
  std::string buf(size_t(precision) + 400, '\0');
  const int n = std::snprintf(buf.data(), buf.size(), fmt.c_str(), int(precision), d);
  buf.resize(size_t(n));
  return buf;
}

// ---- printf style ---------------------------------------------------------------------------

class PercentFormatter {
 public:
  PercentFormatter(const Value& args, bool markup, RenderState& state) : markup_(markup), state_(state) {
    if (args.is_sequence() && args.seq().kind == SeqKind::Tuple) {
      positional_ = args.seq().items;
    } else {
      positional_.push_back(args);
      if (args.is_dict()) mapping_ = &args;
      // Python skips its "not all arguments converted" check when the argument can be
      // subscripted (PyMapping_Check): dicts, and also lists, ranges and jinja2's Undefined.
      subscriptable_ = args.is_dict() || args.is_undefined() ||
                       (args.is_sequence() && (args.seq().kind == SeqKind::List || args.seq().kind == SeqKind::Range));
    }
  }

  std::string run(std::string_view f) {
    std::string out;
    size_t i = 0;
    while (i < f.size()) {
      if (f[i] != '%') {
        out += f[i++];
        continue;
      }
      const size_t start = i++;
      DT_CHECK(i < f.size(), "incomplete format");
      if (f[i] == '%') {
        out += '%';
        ++i;
        continue;
      }
      const Value* value = nullptr;
      Value keyed;
      if (f[i] == '(') {
        DT_CHECK(mapping_, "format requires a mapping");
        const size_t close = f.find(')', i);
        DT_CHECK(close != std::string_view::npos, "incomplete format key");
        const Value* found = mapping_->dict().find(f.substr(i + 1, close - i - 1));
        DT_CHECK(found, "KeyError: ", py_repr_string(f.substr(i + 1, close - i - 1)));
        keyed = *found;
        value = &keyed;
        used_mapping_ = true;
        i = close + 1;
      }
      std::string flags;
      while (i < f.size() && std::string_view("-+ #0").find(f[i]) != std::string_view::npos) flags += f[i++];
      int64_t width = read_number(f, i);
      int64_t precision = -1;
      if (i < f.size() && f[i] == '.') {
        ++i;
        precision = std::max<int64_t>(0, read_number(f, i));
      }
      while (i < f.size() && (f[i] == 'h' || f[i] == 'l' || f[i] == 'L')) ++i;
      DT_CHECK(i < f.size(), "incomplete format");
      const char type = f[i++];
      if (!value) value = &next_arg();
      out += convert(*value, type, flags, width, precision, start);
    }
    DT_CHECK(used_mapping_ || next_ >= positional_.size() || subscriptable_,
             "not all arguments converted during string formatting");
    return out;
  }

 private:
  const Value& next_arg() {
    DT_CHECK(next_ < positional_.size(), "not enough arguments for format string");
    return positional_[next_++];
  }

  int64_t read_number(std::string_view f, size_t& i) {
    if (i < f.size() && f[i] == '*') {
      ++i;
      const Value& v = next_arg();
      DT_CHECK(v.is_int() || v.is_bool(), "* wants int");
      return v.as_int();
    }
    int64_t n = -1;
    while (i < f.size() && f[i] >= '0' && f[i] <= '9') {
      n = std::max<int64_t>(n, 0) * 10 + (f[i++] - '0');
      DT_CHECK(n < (int64_t(1) << 31), "width too big");
    }
    return n;
  }

  std::string convert(const Value& v, char type, const std::string& flags, int64_t width, int64_t precision,
                      size_t at) {
    const bool left = flags.find('-') != std::string::npos;
    switch (type) {
      case 's': case 'r': case 'a': {
        std::string s = type == 's' ? state_.str(v) : type == 'r' ? state_.repr(v) : py_ascii(v, state_);
        if (precision >= 0) s = first_code_points(s, precision);
        if (markup_ && !(type == 's' && v.is_markup())) s = html_escape_text(s);
        return pad(s, width, left ? '<' : '>', ' ', 0, state_);
      }
      case 'd': case 'i': case 'u': case 'x': case 'X': case 'o': {
        int64_t n;
        if (v.is_int() || v.is_bool()) n = v.as_int();
        else if (v.is_float() && (type == 'd' || type == 'i' || type == 'u')) n = *to_int(v);
        else if (v.is_float()) fail("%", type, " format: an integer is required, not float");
        else fail("%", type, " format: a real number is required, not ", type_name(v));
        const int base = type == 'x' || type == 'X' ? 16 : type == 'o' ? 8 : 10;
        std::string digits = to_base(magnitude(n), base, type == 'X');
        if (precision > int64_t(digits.size())) digits.insert(0, size_t(precision) - digits.size(), '0');
        std::string prefix = n < 0 ? "-" : flags.find('+') != std::string::npos ? "+" : flags.find(' ') != std::string::npos ? " " : "";
        if (flags.find('#') != std::string::npos && base != 10) prefix += type == 'o' ? "0o" : type == 'x' ? "0x" : "0X";
        const bool zero = flags.find('0') != std::string::npos && !left;
        return zero ? pad(prefix + digits, width, '=', '0', prefix.size(), state_)
                    : pad(prefix + digits, width, left ? '<' : '>', ' ', 0, state_);
      }
      case 'e': case 'E': case 'f': case 'F': case 'g': case 'G': {
        const auto d = v.is_string() ? std::nullopt : to_float(v);
        DT_CHECK(d, "must be real number, not ", type_name(v));
        std::string c_flags = flags;
        DT_CHECK(width < 100000, "width too big");
        const std::string fmt = "%" + c_flags + (width >= 0 ? std::to_string(width) : "") + ".*" + type;
        const int64_t p = precision < 0 ? 6 : precision;
        DT_CHECK(p <= 10000, "precision too big");
        std::string buf(size_t(std::max<int64_t>(width, 0) + p + 400), '\0');
        const int len = std::snprintf(buf.data(), buf.size(), fmt.c_str(), int(p), *d);
        buf.resize(size_t(len));
        return buf;
      }
      case 'c': {
        std::string s;
        if (v.is_int() || v.is_bool()) {
          DT_CHECK(v.as_int() >= 0 && v.as_int() <= 0x10FFFF, "%c arg not in range(0x110000)");
          append_utf8(s, char32_t(v.as_int()));
        } else {
          DT_CHECK(v.is_string() && code_point_count(v.str()) == 1, "%c requires int or char");
          s = v.str();
        }
        return pad(s, width, left ? '<' : '>', ' ', 0, state_);
      }
      default: {
        char buf[128];
        std::snprintf(buf, sizeof buf, "unsupported format character '%c' (0x%x) at index %zu", type,
                      unsigned(static_cast<unsigned char>(type)), at + 1);
        fail(buf);
      }
    }
  }

  std::vector<Value> positional_;
  const Value* mapping_ = nullptr;
  bool subscriptable_ = false;
  bool used_mapping_ = false;
  size_t next_ = 0;
  bool markup_;
  RenderState& state_;
};

// ---- str.format -----------------------------------------------------------------------------

struct Spec {
  char32_t fill = ' ';
  char align = 0, sign = 0, grouping = 0, type = 0;
  bool alt = false, zero = false;
  int64_t width = -1, precision = -1;
};

Spec parse_spec(std::string_view s) {
  Spec spec;
  size_t i = 0;
  auto is_align = [](char32_t c) { return c == '<' || c == '>' || c == '^' || c == '='; };
  if (!s.empty()) {
    size_t j = 0;
    const char32_t first = next_code_point(s, j);
    if (j < s.size() && is_align(char32_t(s[j]))) {
      spec.fill = first;
      spec.align = s[j];
      i = j + 1;
    } else if (is_align(first)) {
      spec.align = char(first);
      i = 1;
    }
  }
  if (i < s.size() && (s[i] == '+' || s[i] == '-' || s[i] == ' ')) spec.sign = s[i++];
  if (i < s.size() && s[i] == '#') spec.alt = true, ++i;
  if (i < s.size() && s[i] == '0') spec.zero = true, ++i;
  auto number = [&]() {
    int64_t n = -1;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      n = std::max<int64_t>(n, 0) * 10 + (s[i++] - '0');
      DT_CHECK(n < 100000, "Too many decimal digits in format string");
    }
    return n;
  };
  spec.width = number();
  if (i < s.size() && (s[i] == ',' || s[i] == '_')) spec.grouping = s[i++];
  if (i < s.size() && s[i] == '.') {
    ++i;
    spec.precision = number();
    DT_CHECK(spec.precision >= 0, "Format specifier missing precision");
  }
  if (i < s.size()) spec.type = s[i++];
  DT_CHECK(i == s.size(), "Invalid format specifier '", s, "'");
  if (spec.zero && !spec.align) {
    spec.fill = '0';
    spec.align = '=';
  }
  return spec;
}

std::string format_number_text(const std::string& digits_with_sign, const Spec& spec, size_t sign_len,
                               RenderState& state) {
  return pad(digits_with_sign, spec.width, spec.align ? spec.align : '>', spec.fill, sign_len, state);
}

std::string sign_text(bool negative, char sign) {
  if (negative) return "-";
  return sign == '+' ? "+" : sign == ' ' ? " " : "";
}

std::string format_float(double d, const Spec& spec, std::string_view raw, RenderState& state) {
  char type = spec.type;
  DT_CHECK(type || spec.precision < 0, "format spec '", raw, "' is not supported for floats (give a type: f, e, g or %)");
  const bool negative = std::signbit(d) && !std::isnan(d);
  const double a = std::fabs(d);
  std::string body;
  if (!type) {
    body = py_float_repr(a);
  } else if (type == '%') {
    body = c_format_float(a * 100, 'f', spec.precision < 0 ? 6 : spec.precision, spec.alt, state) + "%";
  } else {
    DT_CHECK(std::string_view("eEfFgGn").find(type) != std::string_view::npos, "Unknown format code '", type,
             "' for object of type 'float'");
    if (type == 'n') type = 'g';
    body = c_format_float(a, type, spec.precision < 0 ? 6 : spec.precision, spec.alt, state);
  }
  if (spec.grouping && std::isfinite(a)) {
    size_t int_end = 0;
    while (int_end < body.size() && std::isdigit(static_cast<unsigned char>(body[int_end]))) ++int_end;
    body = group_digits(body.substr(0, int_end), spec.grouping, 3) + body.substr(int_end);
  }
  const std::string sign = sign_text(negative, spec.sign);
  return format_number_text(sign + body, spec, sign.size(), state);
}

std::string format_with_spec(const Value& v, std::string_view raw, RenderState& state) {
  if (raw.empty()) return state.str(v);
  const Spec spec = parse_spec(raw);
  if (v.is_string()) {
    DT_CHECK(!spec.type || spec.type == 's', "Unknown format code '", spec.type, "' for object of type 'str'");
    DT_CHECK(!spec.sign, "Sign not allowed in string format specifier");
    DT_CHECK(!spec.alt, "Alternate form (#) not allowed in string format specifier");
    DT_CHECK(spec.align != '=', "'=' alignment not allowed in string format specifier");
    DT_CHECK(!spec.grouping, "Cannot specify '", spec.grouping, "' with 's'.");
    std::string s = spec.precision >= 0 ? first_code_points(v.str(), spec.precision) : v.str();
    return pad(s, spec.width, spec.align ? spec.align : '<', spec.fill, 0, state);
  }
  if (v.is_float() || (v.is_number() && std::string_view("eEfFgG%").find(spec.type) != std::string_view::npos && spec.type))
    return format_float(v.as_float(), spec, raw, state);
  if (v.is_int() || v.is_bool()) {
    DT_CHECK(spec.precision < 0, "Precision not allowed in integer format specifier");
    const int64_t n = v.as_int();
    const char type = spec.type ? spec.type : 'd';
    if (type == 'c') {
      std::string s;
      append_utf8(s, char32_t(n));
      return pad(s, spec.width, spec.align ? spec.align : '>', spec.fill, 0, state);
    }
    const int base = type == 'b' ? 2 : type == 'o' ? 8 : type == 'x' || type == 'X' ? 16 : 10;
    DT_CHECK(type == 'd' || type == 'n' || base != 10, "Unknown format code '", type, "' for object of type 'int'");
    std::string digits = to_base(magnitude(n), base, type == 'X');
    if (spec.grouping) digits = group_digits(digits, spec.grouping, base == 10 ? 3 : 4);
    std::string prefix = sign_text(n < 0, spec.sign);
    if (spec.alt && base != 10) prefix += type == 'b' ? "0b" : type == 'o' ? "0o" : type == 'x' ? "0x" : "0X";
    return format_number_text(prefix + digits, spec, prefix.size(), state);
  }
  fail("unsupported format string passed to ", type_name(v), ".__format__");
}

class BraceFormatter {
 public:
  BraceFormatter(const Arguments& args, RenderState& state) : state_(state) {
    for (const Argument& a : args) {
      if (a.name.empty()) positional_.push_back(a.value);
      else keyword_.push_back(&a);
    }
  }

  std::string run(std::string_view f, int depth) {
    DT_CHECK(depth <= 2, "Max string recursion exceeded");
    std::string out;
    size_t i = 0;
    while (i < f.size()) {
      const char c = f[i];
      if (c == '}') {
        DT_CHECK(i + 1 < f.size() && f[i + 1] == '}', "Single '}' encountered in format string");
        out += '}';
        i += 2;
        continue;
      }
      if (c != '{') {
        out += c;
        ++i;
        continue;
      }
      if (i + 1 < f.size() && f[i + 1] == '{') {
        out += '{';
        i += 2;
        continue;
      }
      // The field runs to the matching '}', counting braces nested in the format spec.
      size_t j = i + 1;
      int open = 1;
      while (j < f.size() && open) {
        if (f[j] == '{') ++open;
        else if (f[j] == '}') --open;
        if (open) ++j;
      }
      DT_CHECK(j < f.size(), "expected '}' before end of string");
      out += field(f.substr(i + 1, j - i - 1), depth);
      state_.check_size(out.size());
      i = j + 1;
    }
    return out;
  }

 private:
  std::string field(std::string_view text, int depth) {
    // name[.attr|[key]]*[!conversion][:spec]
    size_t end = 0;
    while (end < text.size() && text[end] != '!' && text[end] != ':') {
      if (text[end] == '[') {
        const size_t close = text.find(']', end);
        DT_CHECK(close != std::string_view::npos, "expected '}' before end of string");
        end = close;
      }
      ++end;
    }
    Value v = resolve(text.substr(0, end));
    char conversion = 0;
    if (end < text.size() && text[end] == '!') {
      DT_CHECK(end + 1 < text.size(), "end of string while looking for conversion specifier");
      conversion = text[end + 1];
      end += 2;
      DT_CHECK(end >= text.size() || text[end] == ':', "expected ':' after conversion specifier");
    }
    std::string spec;
    if (end < text.size()) spec = run(text.substr(end + 1), depth + 1);  // specs may hold {fields}
    if (conversion == 'r') v = Value::string(state_.repr(v));
    else if (conversion == 's') v = Value::string(state_.str(v));
    else if (conversion == 'a') v = Value::string(py_ascii(v, state_));
    else DT_CHECK(!conversion, "Unknown conversion specifier ", std::string(1, conversion));
    return format_with_spec(v, spec, state_);
  }

  Value resolve(std::string_view name) {
    size_t i = 0;
    while (i < name.size() && name[i] != '.' && name[i] != '[') ++i;
    const std::string_view first = name.substr(0, i);
    Value v;
    if (first.empty() || std::isdigit(static_cast<unsigned char>(first[0]))) {
      size_t index;
      if (first.empty()) {
        DT_CHECK(!manual_, "cannot switch from manual field specification to automatic field numbering");
        automatic_ = true;
        index = next_++;
      } else {
        DT_CHECK(!automatic_, "cannot switch from automatic field numbering to manual field specification");
        manual_ = true;
        index = size_t(std::stoul(std::string(first)));
      }
      DT_CHECK(index < positional_.size(), "Replacement index ", index, " out of range for positional args tuple");
      v = positional_[index];
    } else {
      const Argument* found = nullptr;
      for (const Argument* a : keyword_)
        if (a->name == first) found = a;
      DT_CHECK(found, "KeyError: ", py_repr_string(first));
      v = found->value;
    }
    while (i < name.size()) {
      if (name[i] == '.') {
        size_t j = i + 1;
        while (j < name.size() && name[j] != '.' && name[j] != '[') ++j;
        v = get_attr(v, name.substr(i + 1, j - i - 1));
        i = j;
      } else {
        const size_t close = name.find(']', i);
        const std::string_view key = name.substr(i + 1, close - i - 1);
        const bool numeric = !key.empty() && key.find_first_not_of("0123456789") == std::string_view::npos;
        v = get_item(v, numeric ? Value::integer(std::stoll(std::string(key))) : Value::string(std::string(key)));
        i = close + 1;
      }
      if (v.is_undefined()) fail_undefined(v);
    }
    return v;
  }

  std::vector<Value> positional_;
  std::vector<const Argument*> keyword_;
  size_t next_ = 0;
  bool automatic_ = false, manual_ = false;
  RenderState& state_;
};

}  // namespace

std::string percent_format(std::string_view format, const Value& args, bool markup, RenderState& state) {
  return PercentFormatter(args, markup, state).run(format);
}

std::string brace_format(std::string_view format, const Arguments& args, RenderState& state) {
  return BraceFormatter(args, state).run(format, 0);
}

}  // namespace deltatune::jinja
