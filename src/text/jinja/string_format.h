// Python's two string formatting languages, which templates reach through `"%s" % x`, the
// `format` filter and `"{}".format(x)`.
#pragma once

#include <string>
#include <string_view>

#include "text/jinja/value.h"

namespace deltatune::jinja {

// format % args (printf style). A Markup format escapes what %s and %r insert.
std::string percent_format(std::string_view format, const Value& args, bool markup, RenderState& state);

// format.format(*args, **kwargs): {} {0} {name} {x.attr} {x[key]}, !r !s !a, and format specs
// [[fill]align][sign][#][0][width][,|_][.precision][type].
std::string brace_format(std::string_view format, const Arguments& args, RenderState& state);

}  // namespace deltatune::jinja
