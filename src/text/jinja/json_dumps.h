// Python's json.dumps, which transformers installs as the `tojson` filter of chat templates:
//   json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)
// (jinja2's own tojson would escape <, >, & and ' for HTML; transformers replaces it so tool schemas
// reach the model verbatim). Separators default to (", ", ": "), or (",", ": ") with an indent.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "text/jinja/value.h"

namespace deltatune::jinja {

struct JsonDumpsOptions {
  bool ensure_ascii = false;
  std::optional<std::string> indent;  // the text of one level; none: everything on one line
  std::optional<std::string> item_separator, key_separator;
  bool sort_keys = false;
  size_t max_bytes = SIZE_MAX;  // a longer text is an error
};

std::string py_json_dumps(const Value& v, const JsonDumpsOptions& options);

}  // namespace deltatune::jinja
