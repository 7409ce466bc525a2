#include "text/jinja/template.h"

#include "text/jinja/parser.h"
#include "text/jinja/repr.h"

namespace deltatune::jinja {

struct Template::Parsed {
  Parsed(std::string_view raw, std::string n, const Options& options)
      : name(std::move(n)), source(normalize_newlines(raw, options.keep_trailing_newline)), lines(source) {}
  std::string name;
  std::string source;  // `lines` and the tree's offsets refer to it
  SourceLines lines;
  ast::Body body;
};

Template::Template(std::string_view source, std::string name, Options options) {
  auto parsed = std::make_shared<Parsed>(source, std::move(name), options);
  with_context("template '" + parsed->name + "'",
               [&] { parsed->body = parse(tokenize(parsed->source, options), parsed->source); });
  parsed_ = std::move(parsed);
}

const std::string& Template::name() const { return parsed_->name; }

std::string Template::render(const Value& variables, const RenderLimits& limits) const {
  DT_CHECK(variables.is_dict(), "template variables must be a dict, not ", type_name(variables));
  auto frame = std::make_shared<Frame>();
  for (const auto& [k, v] : variables.dict().items) {
    DT_CHECK(k.is_string(), "template variable names must be strings, not ", type_name(k));
    frame->set(k.str(), v);
  }
  return with_context("template '" + parsed_->name + "'", [&] {
    RenderState state(parsed_->lines, limits);
    return state.render(parsed_->body, frame);
  });
}

}  // namespace deltatune::jinja
