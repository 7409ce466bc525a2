// A model's chat template: the Jinja program that turns a conversation (messages, tools, flags)
// into the exact text the model was trained on. Rendered by deltatune's own Jinja interpreter
// (text/jinja) the way transformers' apply_chat_template renders it, byte for byte.
//
// Parsed once when built (syntax errors then), rendered many times, from any thread.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "text/jinja/template.h"

namespace deltatune {

class ChatTemplate {
 public:
  static ChatTemplate from_string(std::string source, std::string name);
  // A tokenizer folder's template: chat_template.jinja, else chat_template.json's "chat_template",
  // else tokenizer_config.json's "chat_template" (a string, or a list of {name, template}, of
  // which "default" is taken); else an Error saying so. The folder's named special tokens
  // (bos_token, eos_token, ...) become template variables, as transformers passes them.
  // `dir` may also be a GGUF model: tokenizer.chat_template and its special token ids.
  static ChatTemplate from_tokenizer_dir(const std::string& dir);
  // ChatML (<|im_start|>role\ncontent<|im_end|>\n), for models that ship no template.
  static ChatTemplate chatml();
  // A .jinja file.
  static ChatTemplate from_file(const std::string& path);
  // The named special tokens of a tokenizer folder, as transformers' special_tokens_map has them.
  static nlohmann::ordered_json special_tokens_in(const std::string& dir);
  // This template with `tokens` passed to every render (a --template override keeps the folder's).
  ChatTemplate with_special_tokens(nlohmann::ordered_json tokens) const { return ChatTemplate(template_, std::move(tokens)); }

  // Variables: messages (required), tools, add_generation_prompt, enable_thinking, bos_token,
  // eos_token and any other key, all passed to the template as transformers passes kwargs.
  // Absent tools and documents are None and absent add_generation_prompt is false, as in
  // transformers. The ordered_json overload keeps keys in their JSON order (as Python's
  // json.loads does, which decides the order of `|tojson` and `|items`); nlohmann::json sorts them.
  std::string render(const nlohmann::ordered_json& variables) const;
  std::string render(const nlohmann::json& variables) const;

  const std::string& name() const { return template_.name(); }
  // The special tokens the folder defines, passed to every render (empty for from_string).
  const nlohmann::ordered_json& special_tokens() const { return special_tokens_; }

 private:
  ChatTemplate(jinja::Template t, nlohmann::ordered_json special_tokens)
      : template_(std::move(t)), special_tokens_(std::move(special_tokens)) {}
  jinja::Template template_;
  nlohmann::ordered_json special_tokens_;
};

}  // namespace deltatune
