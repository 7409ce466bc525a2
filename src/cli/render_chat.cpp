// deltatune render-chat TOKENIZER_DIR --messages F.jsonl: each line's conversation through the
// model's chat template, as transformers' apply_chat_template would render it.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <string>

#include "cli/commands.h"
#include "core/error.h"
#include "text/chat_template.h"

namespace deltatune::cli {

namespace {

// Printed after every rendering, so that the renderings split back exactly (a rendering may end
// in newlines or be empty).
constexpr const char* kEndMarker = "\n<|deltatune-end|>\n";

struct Options {
  std::string tokenizer_dir, messages, template_override;
};

ChatTemplate load_template(const Options& o) {
  if (o.template_override.empty()) return ChatTemplate::from_tokenizer_dir(o.tokenizer_dir);
  ChatTemplate t = o.template_override == "chatml" ? ChatTemplate::chatml() : ChatTemplate::from_file(o.template_override);
  return t.with_special_tokens(ChatTemplate::special_tokens_in(o.tokenizer_dir));
}

int run_render_chat(const Options& o) {
  const ChatTemplate chat = load_template(o);
  std::ifstream in(o.messages, std::ios::binary);
  DT_CHECK(in, o.messages, ": cannot open");
  std::string line;
  for (size_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string rendered = with_context(o.messages + ":" + std::to_string(number), [&] {
      nlohmann::ordered_json variables;
      try {
        variables = nlohmann::ordered_json::parse(line);
      } catch (const nlohmann::json::exception& e) {
        fail("invalid JSON: ", e.what());
      }
      DT_CHECK(variables.is_object(), "a line must be a JSON object with \"messages\"");
      DT_CHECK(variables.contains("messages") && variables["messages"].is_array(), "no \"messages\" list");
      return chat.render(variables);
    });
    std::fwrite(rendered.data(), 1, rendered.size(), stdout);
    std::fputs(kEndMarker, stdout);
  }
  return std::fflush(stdout) == 0 ? 0 : 1;
}

}  // namespace

Action add_render_chat(CLI::App& app) {
  auto* sub = app.add_subcommand("render-chat", "Render conversations with a model's chat template");
  auto o = std::make_shared<Options>();
  sub->add_option("tokenizer", o->tokenizer_dir, "tokenizer folder (chat_template.jinja or tokenizer_config.json)")
      ->required();
  sub->add_option("--messages", o->messages,
                  "JSONL: per line {\"messages\": [...], \"tools\": [...], \"add_generation_prompt\": true, ...}")
      ->required();
  sub->add_option("--template", o->template_override, "use this template instead: chatml, or a .jinja file");
  return [o] { return run_render_chat(*o); };
}

}  // namespace deltatune::cli
