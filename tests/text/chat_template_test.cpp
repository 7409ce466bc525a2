// The real Qwen3 and Qwen3.5 chat templates render every conversation of
// tests/fixtures/chat_templates/conversations.jsonl exactly as jinja2 does under transformers'
// settings (or fail where jinja2 fails); and ChatTemplate finds a tokenizer folder's template.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "test_util.h"
#include "text/chat_template.h"
#include "text/jinja2_reference.h"

namespace deltatune {
namespace {

namespace fs = std::filesystem;
using nlohmann::ordered_json;
using testing_util::first_difference;
using testing_util::fixture_path;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void expect_conversations_match_jinja2(const std::string& template_file) {
  const std::string conversations = fixture_path("chat_templates/conversations.jsonl");
  const std::string path = fixture_path("chat_templates/" + template_file);
  const ChatTemplate chat = ChatTemplate::from_string(read_file(path), template_file);
  const auto lines = testing_util::read_lines(conversations);
  const auto want = testing_util::jinja2_renderings("conversations " + path + " " + conversations);
  ASSERT_EQ(want.size(), lines.size());
  size_t rendered = 0, failed_alike = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string got, error;
    try {
      got = chat.render(ordered_json::parse(lines[i]));
    } catch (const Error& e) {
      error = e.what();
    }
    const std::string where = template_file + ", conversation " + std::to_string(i + 1);
    if (want[i].contains("error")) {
      EXPECT_FALSE(error.empty()) << where << ": jinja2 fails (" << want[i]["error"].get<std::string>()
                                  << ") but we rendered:\n" << got;
      ++failed_alike;
      continue;
    }
    ASSERT_TRUE(error.empty()) << where << ": " << error;
    const std::string diff = first_difference(got, want[i]["output"].get<std::string>());
    EXPECT_EQ(diff, "") << where;
    if (diff.empty()) ++rendered;
  }
  std::printf("[ measured ] %s: %zu conversations identical to jinja2, %zu fail in both\n", template_file.c_str(),
              rendered, failed_alike);
  EXPECT_GE(rendered, lines.size() * 4 / 5) << "most conversations must render, not fail";
}

TEST(ChatTemplate, Qwen3MatchesJinja2) { expect_conversations_match_jinja2("qwen3.jinja"); }
TEST(ChatTemplate, Qwen35MatchesJinja2) { expect_conversations_match_jinja2("qwen3.5.jinja"); }

class ChatTemplateDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("deltatune_chat_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const std::string& name, const std::string& text) { std::ofstream(dir_ / name, std::ios::binary) << text; }
  std::string dir() const { return dir_.string(); }
  fs::path dir_;
};

const ordered_json kHello = {{"messages", {{{"role", "user"}, {"content", "Hi"}}}}, {"add_generation_prompt", true}};

TEST_F(ChatTemplateDir, PrefersChatTemplateJinja) {
  write("chat_template.jinja", "jinja file: {{ messages[0].content }}");
  write("tokenizer_config.json", R"({"chat_template": "config: {{ messages[0].content }}"})");
  EXPECT_EQ(ChatTemplate::from_tokenizer_dir(dir()).render(kHello), "jinja file: Hi");
}

TEST_F(ChatTemplateDir, ReadsTokenizerConfigString) {
  write("tokenizer_config.json", R"({"chat_template": "config: {{ messages[0].content }}{{ eos_token }}",
                                     "eos_token": "<|im_end|>", "bos_token": null})");
  const ChatTemplate t = ChatTemplate::from_tokenizer_dir(dir());
  EXPECT_EQ(t.render(kHello), "config: Hi<|im_end|>");
  EXPECT_EQ(t.special_tokens().dump(), R"({"eos_token":"<|im_end|>"})");
  // The caller's variables win over the folder's special tokens, as transformers' kwargs do.
  ordered_json v = kHello;
  v["eos_token"] = "</s>";
  EXPECT_EQ(t.render(v), "config: Hi</s>");
}

TEST_F(ChatTemplateDir, TakesTheDefaultOfANamedList) {
  write("tokenizer_config.json", R"({"chat_template": [{"name": "tool_use", "template": "tools"},
                                                       {"name": "default", "template": "default {{ bos_token }}"}],
                                     "bos_token": {"content": "<s>", "lstrip": false}})");
  EXPECT_EQ(ChatTemplate::from_tokenizer_dir(dir()).render(kHello), "default <s>");
}

TEST_F(ChatTemplateDir, NamedListWithoutDefaultIsAnError) {
  write("tokenizer_config.json", R"({"chat_template": [{"name": "tool_use", "template": "tools"}]})");
  try {
    ChatTemplate::from_tokenizer_dir(dir());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no template named \"default\""), std::string::npos) << e.what();
  }
}

TEST_F(ChatTemplateDir, NoTemplateIsAnErrorThatSaysSo) {
  write("tokenizer_config.json", R"({"eos_token": "</s>"})");
  try {
    ChatTemplate::from_tokenizer_dir(dir());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no chat template"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--template"), std::string::npos) << e.what();
  }
}

TEST_F(ChatTemplateDir, SyntaxErrorsComeAtLoadWithFileAndLine) {
  write("chat_template.jinja", "line one\n{% if x %}\nnever closed");
  try {
    ChatTemplate::from_tokenizer_dir(dir());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("chat_template.jinja"), std::string::npos) << m;
    EXPECT_NE(m.find("line 2"), std::string::npos) << m;
    EXPECT_NE(m.find("endif"), std::string::npos) << m;
  }
}

TEST(ChatTemplate, ChatMLAndTransformersDefaults) {
  const ordered_json v = {{"messages", {{{"role", "system"}, {"content", "S"}}, {{"role", "user"}, {"content", "U"}}}}};
  EXPECT_EQ(ChatTemplate::chatml().render(v), "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n");
  ordered_json g = v;
  g["add_generation_prompt"] = true;
  EXPECT_EQ(ChatTemplate::chatml().render(g),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n");
  // tools and documents are None and add_generation_prompt false unless given.
  const ChatTemplate probe = ChatTemplate::from_string(
      "{{ tools is none }} {{ documents is none }} {{ add_generation_prompt }} {{ enable_thinking is defined }}", "probe");
  EXPECT_EQ(probe.render(ordered_json{{"messages", ordered_json::array()}}), "True True False False");
}

TEST(ChatTemplate, KeepsTheKeyOrderOfOrderedJson) {
  const ChatTemplate t = ChatTemplate::from_string("{{ messages[0].arguments|tojson }}", "order");
  const auto v = ordered_json::parse(R"({"messages": [{"arguments": {"zeta": 1, "alpha": 2}}]})");
  EXPECT_EQ(t.render(v), R"({"zeta": 1, "alpha": 2})");
  EXPECT_EQ(t.render(nlohmann::json(v)), R"({"alpha": 2, "zeta": 1})");  // nlohmann::json sorts keys
}

TEST(ChatTemplate, MissingMessagesIsAnError) {
  EXPECT_THROW(ChatTemplate::chatml().render(ordered_json{{"tools", nullptr}}), Error);
}

}  // namespace
}  // namespace deltatune
