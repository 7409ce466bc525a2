// A Jinja template, parsed once and rendered many times (from any number of threads at once).
//
// The language is the part of Jinja2 that chat templates use, with jinja2's semantics under the
// settings transformers renders chat templates with (ImmutableSandboxedEnvironment,
// trim_blocks, lstrip_blocks, the loopcontrols extension, its tojson, raise_exception and
// strftime_now): see lexer.h, parser.h and interpreter.h. A construct outside that part is an
// error naming it and its line, never a silent difference.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "text/jinja/interpreter.h"
#include "text/jinja/lexer.h"
#include "text/jinja/value.h"

namespace deltatune::jinja {

class Template {
 public:
  // Parses the source; a syntax error names the template, line and column.
  Template(std::string_view source, std::string name, Options options = {});

  // Renders with `variables` (a dict with string keys) as the template's variables.
  std::string render(const Value& variables, const RenderLimits& limits = {}) const;

  const std::string& name() const;

 private:
  struct Parsed;
  std::shared_ptr<const Parsed> parsed_;
};

}  // namespace deltatune::jinja
