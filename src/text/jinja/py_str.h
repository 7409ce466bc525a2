// Python's str methods on UTF-8 text, counting code points where Python counts characters.
// Shared by the str methods templates call ("a b".split()) and the filters built on them (trim).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace deltatune::jinja {

// strip/lstrip/rstrip: chars absent means whitespace (str.isspace()).
std::string py_strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right);
// split/rsplit: sep absent means runs of whitespace; max_split < 0 means no limit.
std::vector<std::string> py_split(std::string_view s, const std::optional<std::string>& sep, int64_t max_split);
std::vector<std::string> py_rsplit(std::string_view s, const std::optional<std::string>& sep, int64_t max_split);
std::vector<std::string> py_splitlines(std::string_view s, bool keep_ends);
// Fails before building a result longer than max_bytes.
std::string py_replace(std::string_view s, std::string_view old, std::string_view replacement, int64_t count,
                       size_t max_bytes = SIZE_MAX);
// find/rfind as code point indices; -1 when absent.
int64_t py_find(std::string_view s, std::string_view sub, bool from_right);
int64_t py_count(std::string_view s, std::string_view sub);
std::string py_center(std::string_view s, int64_t width, std::string_view fill);
std::string py_ljust(std::string_view s, int64_t width, std::string_view fill, bool right);

}  // namespace deltatune::jinja
