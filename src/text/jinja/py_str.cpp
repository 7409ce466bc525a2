#include "text/jinja/py_str.h"

#include <algorithm>

#include "core/error.h"
#include "text/jinja/unicode.h"

namespace deltatune::jinja {

namespace {

// Byte offsets of the code points of s, plus s.size() at the end.
std::vector<size_t> boundaries(std::string_view s) {
  std::vector<size_t> b;
  for (size_t i = 0; i < s.size();) {
    b.push_back(i);
    next_code_point(s, i);
  }
  b.push_back(s.size());
  return b;
}

}  // namespace

std::string py_strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right) {
  std::u32string set;
  if (chars) set = to_code_points(*chars);
  auto strippable = [&](char32_t c) { return chars ? set.find(c) != std::u32string::npos : is_space(c); };
  const std::vector<size_t> b = boundaries(s);
  size_t first = 0, last = b.size() - 1;  // code point range [first, last)
  auto cp = [&](size_t k) {
    size_t i = b[k];
    return next_code_point(s, i);
  };
  if (left)
    while (first < last && strippable(cp(first))) ++first;
  if (right)
    while (last > first && strippable(cp(last - 1))) --last;
  return std::string(s.substr(b[first], b[last] - b[first]));
}

std::vector<std::string> py_split(std::string_view s, const std::optional<std::string>& sep, int64_t max_split) {
  std::vector<std::string> out;
  if (sep) {
    DT_CHECK(!sep->empty(), "empty separator");
    size_t start = 0;
    while (max_split < 0 || int64_t(out.size()) < max_split) {
      const size_t at = s.find(*sep, start);
      if (at == std::string_view::npos) break;
      out.emplace_back(s.substr(start, at - start));
      start = at + sep->size();
    }
    out.emplace_back(s.substr(start));
    return out;
  }
  const std::vector<size_t> b = boundaries(s);
  auto space_at = [&](size_t k) {
    size_t i = b[k];
    return is_space(next_code_point(s, i));
  };
  const size_t n = b.size() - 1;
  size_t k = 0;
  while (true) {
    while (k < n && space_at(k)) ++k;
    if (k == n) break;
    if (max_split >= 0 && int64_t(out.size()) == max_split) {
      // The rest, as it stands after the leading whitespace (trailing whitespace stays).
      out.emplace_back(s.substr(b[k]));
      break;
    }
    const size_t start = k;
    while (k < n && !space_at(k)) ++k;
    out.emplace_back(s.substr(b[start], b[k] - b[start]));
  }
  return out;
}

std::vector<std::string> py_rsplit(std::string_view s, const std::optional<std::string>& sep, int64_t max_split) {
  std::vector<std::string> out;
  if (sep) {
    DT_CHECK(!sep->empty(), "empty separator");
    size_t end = s.size();
    while (max_split < 0 || int64_t(out.size()) < max_split) {
      if (end < sep->size()) break;
      const size_t at = s.rfind(*sep, end - sep->size());
      if (at == std::string_view::npos) break;
      out.emplace_back(s.substr(at + sep->size(), end - at - sep->size()));
      end = at;
    }
    out.emplace_back(s.substr(0, end));
    std::reverse(out.begin(), out.end());
    return out;
  }
  const std::vector<size_t> b = boundaries(s);
  auto space_at = [&](size_t k) {
    size_t i = b[k];
    return is_space(next_code_point(s, i));
  };
  size_t k = b.size() - 1;  // exclusive end, in code points
  while (true) {
    while (k > 0 && space_at(k - 1)) --k;
    if (k == 0) break;
    if (max_split >= 0 && int64_t(out.size()) == max_split) {
      out.emplace_back(s.substr(0, b[k]));
      break;
    }
    const size_t end = k;
    while (k > 0 && !space_at(k - 1)) --k;
    out.emplace_back(s.substr(b[k], b[end] - b[k]));
  }
  std::reverse(out.begin(), out.end());
  return out;
}

std::vector<std::string> py_splitlines(std::string_view s, bool keep_ends) {
  auto is_break = [](char32_t c) {
    return c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D || c == 0x1E || c == 0x85 ||
           c == 0x2028 || c == 0x2029;
  };
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i < s.size();) {
    const size_t at = i;
    const char32_t c = next_code_point(s, i);
    if (!is_break(c)) continue;
    if (c == '\r' && i < s.size() && s[i] == '\n') ++i;
    out.emplace_back(s.substr(start, (keep_ends ? i : at) - start));
    start = i;
  }
  if (start < s.size()) out.emplace_back(s.substr(start));
  return out;
}

std::string py_replace(std::string_view s, std::string_view old, std::string_view replacement, int64_t count,
                       size_t max_bytes) {
  int64_t matches = old.empty() ? int64_t(code_point_count(s)) + 1 : py_count(s, old);
  if (count >= 0) matches = std::min(matches, count);
  const double result_bytes = double(s.size()) + double(matches) * (double(replacement.size()) - double(old.size()));
  DT_CHECK(result_bytes <= double(max_bytes), "the replacement would take more than ", max_bytes, " bytes");
  std::string out;
  int64_t done = 0;
  if (old.empty()) {
    // Python inserts the replacement before every character and at the end.
    const std::vector<size_t> b = boundaries(s);
    for (size_t k = 0; k + 1 < b.size(); ++k) {
      if (count < 0 || done < count) out += replacement, ++done;
      out += s.substr(b[k], b[k + 1] - b[k]);
    }
    if (count < 0 || done < count) out += replacement;
    return out;
  }
  size_t start = 0;
  while (count < 0 || done < count) {
    const size_t at = s.find(old, start);
    if (at == std::string_view::npos) break;
    out += s.substr(start, at - start);
    out += replacement;
    start = at + old.size();
    ++done;
  }
  out += s.substr(start);
  return out;
}

int64_t py_find(std::string_view s, std::string_view sub, bool from_right) {
  const size_t at = from_right ? s.rfind(sub) : s.find(sub);
  if (at == std::string_view::npos) return -1;
  return int64_t(code_point_count(s.substr(0, at)));
}

int64_t py_count(std::string_view s, std::string_view sub) {
  if (sub.empty()) return int64_t(code_point_count(s)) + 1;
  int64_t n = 0;
  for (size_t at = s.find(sub); at != std::string_view::npos; at = s.find(sub, at + sub.size())) ++n;
  return n;
}

namespace {

std::string repeat_fill(std::string_view fill, int64_t n) {
  std::string out;
  for (int64_t i = 0; i < n; ++i) out += fill;
  return out;
}

}  // namespace

std::string py_center(std::string_view s, int64_t width, std::string_view fill) {
  const int64_t len = int64_t(code_point_count(s));
  if (width <= len) return std::string(s);
  const int64_t margin = width - len;
  const int64_t left = margin / 2 + (margin & width & 1);
  return repeat_fill(fill, left) + std::string(s) + repeat_fill(fill, margin - left);
}

std::string py_ljust(std::string_view s, int64_t width, std::string_view fill, bool right) {
  const int64_t len = int64_t(code_point_count(s));
  if (width <= len) return std::string(s);
  return right ? repeat_fill(fill, width - len) + std::string(s) : std::string(s) + repeat_fill(fill, width - len);
}

}  // namespace deltatune::jinja
