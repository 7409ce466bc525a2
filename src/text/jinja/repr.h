// Values as Python prints them: jinja2 outputs {{ x }} as str(x), so a list prints as its repr
// (['a', 1, None]), a float as the shortest text that reads back the same (0.1, 1e+16), True as
// "True" and an undefined value as nothing.
#pragma once

#include <string>
#include <string_view>

#include "text/jinja/value.h"

namespace deltatune::jinja {

std::string py_str(const Value& v);   // str(v)
std::string py_repr(const Value& v);  // repr(v)
std::string py_repr_string(std::string_view s);
std::string py_float_repr(double d);

}  // namespace deltatune::jinja
