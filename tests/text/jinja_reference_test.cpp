// Templates rendered by deltatune's interpreter and by jinja2 (under transformers' settings) must
// give the same bytes, or both fail:
//   - tests/fixtures/chat_templates/constructs.jsonl: one Jinja feature per line (literals,
//     whitespace control, operators, loops, scoping, macros, filters, tests, methods, errors);
//   - random templates from tests/text/random_templates.py (fixed seed): expressions and
//     statements mixed in ways nobody wrote by hand.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>

#include "core/error.h"
#include "test_util.h"
#include "text/jinja/json_value.h"
#include "text/jinja/template.h"
#include "text/jinja2_reference.h"

namespace deltatune {
namespace {

using nlohmann::ordered_json;
using testing_util::first_difference;

struct Tally {
  size_t same = 0, failed_alike = 0, skipped = 0;
};

// Python prints some objects with their memory address (<generator object do_items at 0x7f...>),
// which no other program reproduces; we print them without one. Letters only, case folded, so that
// a printed generator is found after |upper or |join('.') too.
bool prints_an_object(const std::string& ours) {
  std::string letters;
  for (char c : ours)
    if (std::isalpha(static_cast<unsigned char>(c))) letters += char(std::tolower(static_cast<unsigned char>(c)));
  for (const char* what : {"generatorobject", "builtinmethod", "reversedobject"})
    if (letters.find(what) != std::string::npos) return true;
  return false;
}

// Each line {"template", "variables"}; `skip_addresses`: skip outputs that print such objects.
Tally expect_same_as_jinja2(const std::string& jsonl, bool skip_addresses) {
  Tally tally;
  const auto lines = testing_util::read_lines(jsonl);
  const auto want = testing_util::jinja2_renderings("constructs " + jsonl);
  EXPECT_EQ(want.size(), lines.size());
  for (size_t i = 0; i < lines.size() && i < want.size(); ++i) {
    const ordered_json c = ordered_json::parse(lines[i]);
    const std::string source = c["template"].get<std::string>();
    std::string got, error;
    try {
      const jinja::Template t(source, "line " + std::to_string(i + 1));
      got = t.render(jinja::value_from_json(c.value("variables", ordered_json::object())));
    } catch (const Error& e) {
      error = e.what();
    }
    const std::string where = jsonl + ":" + std::to_string(i + 1) + ": " + source;
    if (want[i].contains("error")) {
      EXPECT_FALSE(error.empty()) << where << "\n  jinja2 fails (" << want[i]["error"].get<std::string>()
                                  << ") but we rendered: " << ordered_json(got).dump();
      if (!error.empty()) ++tally.failed_alike;
      continue;
    }
    const std::string expected = want[i]["output"].get<std::string>();
    EXPECT_TRUE(error.empty()) << where << "\n  " << error;
    if (skip_addresses && prints_an_object(got)) {
      ++tally.skipped;
      continue;
    }
    if (!error.empty()) continue;
    const std::string diff = first_difference(got, expected);
    EXPECT_EQ(diff, "") << where;
    if (diff.empty()) ++tally.same;
  }
  return tally;
}

TEST(JinjaReference, ConstructsMatchJinja2) {
  const Tally t = expect_same_as_jinja2(testing_util::fixture_path("chat_templates/constructs.jsonl"), false);
  std::printf("[ measured ] %zu constructs identical to jinja2, %zu fail in both\n", t.same, t.failed_alike);
}

TEST(JinjaReference, RandomTemplatesMatchJinja2) {
  const std::string script = (std::filesystem::path(__FILE__).parent_path() / "random_templates.py").string();
  const std::string jsonl =
      (std::filesystem::temp_directory_path() / ("deltatune_random_templates_" + std::to_string(::getpid()) + ".jsonl"))
          .string();
  ASSERT_EQ(std::system(("python3 " + script + " 7 500 > " + jsonl).c_str()), 0);
  const Tally t = expect_same_as_jinja2(jsonl, true);
  std::filesystem::remove(jsonl);
  std::printf("[ measured ] random templates: %zu identical to jinja2, %zu fail in both, %zu print addresses\n", t.same,
              t.failed_alike, t.skipped);
  EXPECT_GE(t.same, 40u) << "the generator should give many templates that render";
}

}  // namespace
}  // namespace deltatune
