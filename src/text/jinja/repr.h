// Values as Python prints them: jinja2 outputs {{ x }} as str(x), so a list prints as its repr
// (['a', 1, None]), a float as the shortest text that reads back the same (0.1, 1e+16), True as
// "True" and an undefined value as nothing.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "text/jinja/value.h"

namespace deltatune::jinja {

// str(v) and repr(v); printing more than max_bytes is an error (a render passes its limit).
std::string py_str(const Value& v, size_t max_bytes = SIZE_MAX);
std::string py_repr(const Value& v, size_t max_bytes = SIZE_MAX);
// repr(v) cut at about 200 bytes, for messages.
std::string py_repr_short(const Value& v);
std::string py_repr_string(std::string_view s);
std::string py_float_repr(double d);

}  // namespace deltatune::jinja
