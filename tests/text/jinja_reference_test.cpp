// Every construct of tests/fixtures/chat_templates/constructs.jsonl (one Jinja feature per line:
// literals, whitespace control, operators, loops, scoping, macros, filters, tests, methods, error
// cases) renders exactly as jinja2 renders it under transformers' settings, or fails where
// jinja2 fails.
#include <gtest/gtest.h>

#include "core/error.h"
#include "test_util.h"
#include "text/jinja/json_value.h"
#include "text/jinja/template.h"
#include "text/jinja2_reference.h"

namespace deltatune {
namespace {

using nlohmann::ordered_json;
using testing_util::first_difference;

TEST(JinjaReference, ConstructsMatchJinja2) {
  const std::string constructs = testing_util::fixture_path("chat_templates/constructs.jsonl");
  const auto lines = testing_util::read_lines(constructs);
  const auto want = testing_util::jinja2_renderings("constructs " + constructs);
  ASSERT_EQ(want.size(), lines.size());
  size_t same = 0, failed_alike = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    const ordered_json c = ordered_json::parse(lines[i]);
    const std::string source = c["template"].get<std::string>();
    std::string got, error;
    try {
      const jinja::Template t(source, "construct " + std::to_string(i + 1));
      got = t.render(jinja::value_from_json(c.value("variables", ordered_json::object())));
    } catch (const Error& e) {
      error = e.what();
    }
    const std::string where = "construct " + std::to_string(i + 1) + ": " + source;
    if (want[i].contains("error")) {
      EXPECT_FALSE(error.empty()) << where << "\n  jinja2 fails (" << want[i]["error"].get<std::string>()
                                  << ") but we rendered: " << ordered_json(got).dump();
      if (!error.empty()) ++failed_alike;
      continue;
    }
    EXPECT_TRUE(error.empty()) << where << "\n  " << error;
    if (!error.empty()) continue;
    const std::string diff = first_difference(got, want[i]["output"].get<std::string>());
    EXPECT_EQ(diff, "") << where;
    if (diff.empty()) ++same;
  }
  std::printf("[ measured ] %zu constructs identical to jinja2, %zu fail in both\n", same, failed_alike);
}

}  // namespace
}  // namespace deltatune
