// `deltatune render-chat` end to end: renderings of a JSONL file through a tokenizer folder's
// template (or an override), each followed by the end marker so they split back exactly, and bad
// lines reported with file:line.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.h"
#include "text/chat_template.h"

namespace deltatune {
namespace {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

const std::string kEnd = "\n<|deltatune-end|>\n";

class RenderChatCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("deltatune_render_chat_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_ / "tokenizer");
    fs::copy_file(testing_util::fixture_path("chat_templates/qwen3.jinja"), dir_ / "tokenizer" / "chat_template.jinja");
    write("tokenizer/tokenizer_config.json", R"({"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"})");
  }
  void TearDown() override { fs::remove_all(dir_); }

  void write(const std::string& name, const std::string& text) { std::ofstream(dir_ / name, std::ios::binary) << text; }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  struct Result {
    int exit_code;
    std::string out, err;
  };
  Result run(const std::string& args) {
    const std::string out = path("stdout"), err = path("stderr");
    const int status = std::system((std::string(DELTATUNE_BINARY) + " " + args + " > " + out + " 2> " + err).c_str());
    auto slurp = [](const std::string& p) {
      std::ifstream in(p, std::ios::binary);
      std::stringstream s;
      s << in.rdbuf();
      return s.str();
    };
    return {WEXITSTATUS(status), slurp(out), slurp(err)};
  }

  fs::path dir_;
};

std::vector<std::string> split_renderings(const std::string& out) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t at; (at = out.find(kEnd, start)) != std::string::npos; start = at + kEnd.size())
    parts.push_back(out.substr(start, at - start));
  EXPECT_EQ(start, out.size()) << "output does not end with the end marker";
  return parts;
}

const char* kLines[] = {
    R"({"messages": [{"role": "user", "content": "Hi"}], "add_generation_prompt": true})",
    R"({"messages": [{"role": "user", "content": "Hi"}], "add_generation_prompt": true, "enable_thinking": false})",
    R"({"messages": [{"role": "user", "content": "Weather?"}], "tools": [{"type": "function", "function": {"name": "w", "parameters": {"b": 1, "a": 2}}}]})",
    R"({"messages": [{"role": "user", "content": "ends in newlines\n\n"}, {"role": "assistant", "content": ""}]})",
};

TEST_F(RenderChatCli, RendersEachLineAsTheLibraryDoes) {
  std::string input;
  for (const char* l : kLines) input += std::string(l) + "\n\n";  // blank lines are skipped
  write("in.jsonl", input);
  const Result r = run("render-chat " + path("tokenizer") + " --messages " + path("in.jsonl"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto parts = split_renderings(r.out);
  ASSERT_EQ(parts.size(), std::size(kLines));
  const ChatTemplate chat = ChatTemplate::from_tokenizer_dir(path("tokenizer"));
  for (size_t i = 0; i < parts.size(); ++i) EXPECT_EQ(parts[i], chat.render(ordered_json::parse(kLines[i]))) << i;
  EXPECT_NE(parts[1].find("<think>\n\n</think>\n\n"), std::string::npos) << parts[1];  // enable_thinking reached it
  EXPECT_NE(parts[2].find(R"({"b": 1, "a": 2})"), std::string::npos) << parts[2];     // key order kept
}

TEST_F(RenderChatCli, TemplateOverride) {
  write("in.jsonl", std::string(kLines[0]) + "\n");
  Result r = run("render-chat " + path("tokenizer") + " --messages " + path("in.jsonl") + " --template chatml");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n" + kEnd);
  write("mine.jinja", "{{ messages|length }} {{ eos_token }}");
  r = run("render-chat " + path("tokenizer") + " --messages " + path("in.jsonl") + " --template " + path("mine.jinja"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "1 <|im_end|>" + kEnd);  // the folder's special tokens still reach the template
}

TEST_F(RenderChatCli, BadLinesNameFileAndLine) {
  const std::string in = path("in.jsonl");
  write("in.jsonl", std::string(kLines[0]) + "\n{\"messages\": [oops]}\n");
  Result r = run("render-chat " + path("tokenizer") + " --messages " + in);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find(in + ":2: invalid JSON"), std::string::npos) << r.err;
  write("in.jsonl", "{\"conversation\": []}\n");
  r = run("render-chat " + path("tokenizer") + " --messages " + in);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find(in + ":1: no \"messages\" list"), std::string::npos) << r.err;
  // A template's own error: Qwen3.5 refuses a conversation without messages.
  fs::copy_file(testing_util::fixture_path("chat_templates/qwen3.5.jinja"), dir_ / "qwen3.5.jinja");
  write("in.jsonl", "{\"messages\": []}\n");
  r = run("render-chat " + path("tokenizer") + " --messages " + in + " --template " + path("qwen3.5.jinja"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find(in + ":1: template"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("No messages provided."), std::string::npos) << r.err;
  // A folder without a template says what to do.
  fs::remove(dir_ / "tokenizer" / "chat_template.jinja");
  r = run("render-chat " + path("tokenizer") + " --messages " + in);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--template"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace deltatune
