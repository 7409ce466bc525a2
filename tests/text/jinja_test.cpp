// The Jinja interpreter on its own: each construct with the output jinja2 gives (checked by hand
// against jinja2 3.1 under transformers' settings; jinja_reference_test.cpp compares many more
// with jinja2 itself), errors that name the template, line and column, refusals of what is not
// supported, the bounds that keep any template finite, and rendering from several threads.
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "text/jinja/json_value.h"
#include "text/jinja/repr.h"
#include "text/jinja/template.h"

namespace deltatune {
namespace {

using jinja::Template;
using nlohmann::ordered_json;

std::string render(const std::string& source, const ordered_json& variables = ordered_json::object(),
                   const jinja::Options& options = {}, const jinja::RenderLimits& limits = {}) {
  return Template(source, "t", options).render(jinja::value_from_json(variables), limits);
}

// The message of the Error that parsing or rendering `source` throws.
std::string error_of(const std::string& source, const ordered_json& variables = ordered_json::object(),
                     const jinja::RenderLimits& limits = {}) {
  try {
    render(source, variables, {}, limits);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error from: " << source;
  return "";
}

#define EXPECT_CONTAINS(text, part) EXPECT_NE(std::string(text).find(part), std::string::npos) << (text)

TEST(Jinja, OutputsValuesAsPythonPrintsThem) {
  EXPECT_EQ(render("{{ none }} {{ true }} {{ 1.0 }} {{ [1, 'a', none] }} {{ {'k': (1,)} }} {{ undefined }}|"),
            "None True 1.0 [1, 'a', None] {'k': (1,)} |");
  EXPECT_EQ(render("{{ x }}", {{"x", {{"b", 1}, {"a", {1.5, nullptr, "é"}}}}}), "{'b': 1, 'a': [1.5, None, 'é']}");
}

TEST(Jinja, WhitespaceControlFollowsTransformersSettings) {
  // trim_blocks drops the newline after a tag, lstrip_blocks the indentation before it.
  const std::string source = "<ul>\n  {% for x in xs %}\n  <li>{{ x }}</li>\n  {% endfor %}\n</ul>\n";
  EXPECT_EQ(render(source, {{"xs", {1, 2}}}), "<ul>\n  <li>1</li>\n  <li>2</li>\n</ul>");
  // jinja2's defaults keep both, and the final newline too when asked.
  jinja::Options plain;
  plain.trim_blocks = plain.lstrip_blocks = false;
  plain.keep_trailing_newline = true;
  EXPECT_EQ(render(source, {{"xs", {1, 2}}}, plain), "<ul>\n  \n  <li>1</li>\n  \n  <li>2</li>\n  \n</ul>\n");
  EXPECT_EQ(render("a  {%- if true -%}  b  {%- endif %}\n c"), "ab c");
}

TEST(Jinja, LoopVariablesAndControl) {
  EXPECT_EQ(render("{% for x in 'abc' %}{{ loop.index }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }};{% endfor %}"),
            "12TrueFalse;21FalseFalse;30FalseTrue;");
  EXPECT_EQ(render("{% for x in [1, 2, 3] %}{{ loop.previtem }}>{{ x }}<{{ loop.nextitem }},{% endfor %}"), ">1<2,1>2<3,2>3<,");
  EXPECT_EQ(render("{% for x in range(9) if x is odd %}{% if x > 5 %}{% break %}{% endif %}{{ x }}{% else %}-{% endfor %}"),
            "135");
  EXPECT_EQ(render("{% for x in [] %}{{ x }}{% else %}empty{% endfor %}"), "empty");
}

TEST(Jinja, ScopesFollowJinja2) {
  // A loop body's assignments stay in the iteration; a namespace carries values out.
  EXPECT_EQ(render("{% set x = 1 %}{% for i in [2, 3] %}{% set x = i %}{% endfor %}{{ x }}"), "1");
  EXPECT_EQ(render("{% set ns = namespace(x=1) %}{% for i in [2, 3] %}{% set ns.x = i %}{% endfor %}{{ ns.x }}"), "3");
  EXPECT_EQ(render("{% if true %}{% set x = 5 %}{% endif %}{{ x }}"), "5");
  // Macros read their defining scope when called.
  EXPECT_EQ(render("{% macro m() %}{{ y }}{% endmacro %}{% set y = 'late' %}{{ m() }}"), "late");
}

TEST(Jinja, MacrosAndCallBlocks) {
  EXPECT_EQ(render("{% macro m(a, b='B') %}{{ a }}{{ b }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1) }}|{{ m(1, 2, 3, k=4) }}"),
            "1B(){}|12(3,){'k': 4}");
  EXPECT_EQ(render("{% macro list(xs) %}{% for x in xs %}[{{ caller(x) }}]{% endfor %}{% endmacro %}"
                   "{% call(v) list([1, 2]) %}{{ v * 10 }}{% endcall %}"),
            "[10][20]");
}

TEST(Jinja, HuggingFaceTojson) {
  // json.dumps(ensure_ascii=False): no HTML escaping, key order kept, Python's float text.
  EXPECT_EQ(render("{{ x|tojson }}", {{"x", {{"b", "<é>"}, {"a", {0.1, 1e21, 5}}}}}), R"({"b": "<é>", "a": [0.1, 1e+21, 5]})");
  EXPECT_EQ(render("{{ x|tojson(indent=2) }}", {{"x", {{"a", ordered_json::array()}}}}), "{\n  \"a\": []\n}");
}

TEST(Jinja, PythonFloatText) {
  const std::pair<double, const char*> cases[] = {
      {0.1, "0.1"}, {1e16, "1e+16"}, {1e15, "1000000000000000.0"}, {1e-5, "1e-05"}, {1e-4, "0.0001"},
      {5e-324, "5e-324"}, {1.7976931348623157e308, "1.7976931348623157e+308"}, {-0.0, "-0.0"},
      {123456789012345678.0, "1.2345678901234568e+17"}, {2.5, "2.5"}, {100.0, "100.0"}};
  for (const auto& [value, text] : cases) EXPECT_EQ(jinja::py_float_repr(value), text) << value;
}

TEST(Jinja, ErrorsNameTemplateLineAndColumn) {
  const std::string runtime = error_of("line one\n{% for m in messages %}\n  {{ m.content + 1 }}\n{% endfor %}",
                                       {{"messages", {{{"content", "x"}}}}});
  EXPECT_CONTAINS(runtime, "template 't'");
  EXPECT_CONTAINS(runtime, "line 3, column 16");  // the +
  EXPECT_CONTAINS(runtime, "can only concatenate str");
  const std::string syntax = error_of("a\nb {{ 1 +* 2 }}");
  EXPECT_CONTAINS(syntax, "line 2, column 9");  // the *
  const std::string unclosed = error_of("{% if x %}\n{% for y in z %}\n");
  EXPECT_CONTAINS(unclosed, "line 2, column 4");
  EXPECT_CONTAINS(unclosed, "'endfor'");
  EXPECT_CONTAINS(error_of("{{ raise_exception('bad input') }}"), "the template raised an error: bad input");
  EXPECT_CONTAINS(error_of("{{ x.y.z }}", {{"x", ordered_json::object()}}), "'dict object' has no attribute 'y'");
}

TEST(Jinja, UnsupportedConstructsAreErrorsNamingThem) {
  EXPECT_CONTAINS(error_of("{% include 'x.jinja' %}"), "'include' tag is not supported");
  EXPECT_CONTAINS(error_of("{% extends 'base' %}"), "'extends' tag is not supported");
  EXPECT_CONTAINS(error_of("{% block b %}{% endblock %}"), "'block' tag is not supported");
  EXPECT_CONTAINS(error_of("{% import 'm' as m %}"), "'import' tag is not supported");
  EXPECT_CONTAINS(error_of("{% do x %}"), "unknown tag 'do'");
  EXPECT_CONTAINS(error_of("{% autoescape true %}{% endautoescape %}"), "autoescape false");
  EXPECT_CONTAINS(error_of("{{ 'a b'|wordcount }}"), "filter 'wordcount': not supported");
  EXPECT_CONTAINS(error_of("{{ 'a'|no_such_filter }}"), "no filter named 'no_such_filter'");
  EXPECT_CONTAINS(error_of("{{ 1 is no_such_test }}"), "no test named 'no_such_test'");
  EXPECT_CONTAINS(error_of("{{ 'Ab'.casefold() }}"), "str.casefold() is not supported");
  EXPECT_CONTAINS(error_of("{{ '\\N{BULLET}' }}"), "\\N{...} escapes are not supported");
  EXPECT_CONTAINS(error_of("{{ 2 ** 64 }}"), "64-bit");
  EXPECT_CONTAINS(error_of("{{ 18446744073709551616 }}"), "does not fit in 64 bits");
  EXPECT_CONTAINS(error_of("{{ (-8) ** 0.5 }}"), "complex");
  // jinja2 fails on a missing filter only when it runs, inside {% if %}.
  EXPECT_EQ(render("{% if false %}{{ x|from_json }}{% endif %}ok"), "ok");
}

TEST(Jinja, SandboxRefusesMutation) {
  EXPECT_CONTAINS(error_of("{{ xs.append(1) }}", {{"xs", {1}}}), "access to attribute 'append' of 'list' object is unsafe");
  EXPECT_CONTAINS(error_of("{{ d.update({}) }}", {{"d", ordered_json::object()}}), "unsafe");
  EXPECT_EQ(render("{{ xs.append is defined }}", {{"xs", {1}}}), "False");
}

TEST(Jinja, LimitsKeepEveryTemplateFinite) {
  jinja::RenderLimits small;
  small.max_steps = 10000;
  EXPECT_CONTAINS(error_of("{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}", ordered_json::object(), small),
                  "more than 10000 steps");
  EXPECT_CONTAINS(error_of("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"), "deeper than");
  small.max_string_bytes = 1 << 20;
  EXPECT_CONTAINS(error_of("{{ 'ab' * 10000000 }}", ordered_json::object(), small), "larger than");
  EXPECT_CONTAINS(error_of("{% set ns = namespace(s='x') %}{% for i in range(30) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
                           ordered_json::object(), small),
                  "larger than");
  // A list holding one big list many times prints, serializes and expands within the limit too.
  jinja::RenderLimits one_mib;
  one_mib.max_string_bytes = 1 << 20;
  EXPECT_CONTAINS(error_of("{% set a = range(60000)|list %}{{ [a, a, a, a, a, a, a, a, a, a] }}", ordered_json::object(), one_mib),
                  "printing a value takes more than");
  EXPECT_CONTAINS(error_of("{% set a = range(60000)|list %}{{ [a, a, a, a, a, a, a, a, a, a]|tojson }}", ordered_json::object(),
                           one_mib),
                  "JSON text takes more than");
  EXPECT_CONTAINS(error_of("{{ ('x' * 1000).replace('', 'abcdefgh' * 1000) }}", ordered_json::object(), one_mib),
                  "replacement would take more than");
  EXPECT_CONTAINS(error_of("{% set a = range(100000)|list %}{% set b = [a] * 200 %}"), "holds more than");
  EXPECT_CONTAINS(error_of("{{ " + std::string(300, '(') + "1" + std::string(300, ')') + " }}"), "nests deeper");
  EXPECT_CONTAINS(error_of("{{ range(100001) }}"), "Range too big");
}

TEST(Jinja, ReferenceCyclesAreReleased) {
  // A namespace that holds itself, and a macro that holds its scope: printed as Python prints
  // them, and freed at the end of the render (the sanitizer build checks for leaks).
  EXPECT_EQ(render("{% set ns = namespace(a=1) %}{% set ns.me = ns %}{{ ns }}"), "<Namespace {'a': 1, 'me': <Namespace {...}>}>");
  EXPECT_EQ(render("{% macro m() %}{{ m is defined }}{% endmacro %}{{ m() }}"), "True");
}

TEST(Jinja, RendersFromManyThreadsAtOnce) {
  const Template t("{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + m.v %}{% endfor %}{{ ns.n }}",
                   "threads");
  std::vector<std::thread> threads;
  std::vector<std::string> results(8);
  for (size_t k = 0; k < results.size(); ++k) {
    threads.emplace_back([&, k] {
      ordered_json messages = ordered_json::array();
      for (int i = 0; i <= int(k) * 100; ++i) messages.push_back({{"v", i}});
      for (int rep = 0; rep < 20; ++rep)
        results[k] = t.render(jinja::value_from_json(ordered_json{{"messages", messages}}));
    });
  }
  for (auto& th : threads) th.join();
  for (size_t k = 0; k < results.size(); ++k) {
    const int64_t n = int64_t(k) * 100;
    EXPECT_EQ(results[k], std::to_string(n * (n + 1) / 2)) << k;
  }
}

}  // namespace
}  // namespace deltatune
