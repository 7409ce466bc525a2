#include "text/chat_template.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "export/gguf_tokenizer.h"
#include "io/gguf.h"
#include "text/jinja/json_value.h"

namespace deltatune {

namespace {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  DT_CHECK(in, path.string(), ": cannot open");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

ordered_json read_json(const fs::path& path) {
  try {
    return ordered_json::parse(read_text(path));
  } catch (const nlohmann::json::exception& e) {
    fail(path.string(), ": invalid JSON: ", e.what());
  }
}

// tokenizer_config.json's chat_template: a string, or [{"name": ..., "template": ...}, ...].
std::string template_from_config(const ordered_json& value, const fs::path& path) {
  if (value.is_string()) return value.get<std::string>();
  DT_CHECK(value.is_array(), path.string(), ": \"chat_template\" is neither a string nor a list of {name, template}");
  std::string names;
  for (const auto& entry : value) {
    DT_CHECK(entry.is_object() && entry.contains("name") && entry.contains("template") && entry["template"].is_string(),
             path.string(), ": an entry of \"chat_template\" is not {\"name\": ..., \"template\": ...}");
    if (entry["name"] == "default") return entry["template"].get<std::string>();
    names += (names.empty() ? "" : ", ") + entry["name"].dump();
  }
  fail(path.string(), ": \"chat_template\" has no template named \"default\" (it has ", names, ")");
}

// A GGUF model file (its embedded tokenizer stands for the tokenizer folder)?
bool is_gguf(const std::string& path) {
  return fs::is_regular_file(path) && (fs::path(path).extension() == ".gguf" || is_gguf_file(path));
}

// What transformers' special_tokens_map holds: the named special tokens that are set, as text.
ordered_json special_tokens_of(const ordered_json& config) {
  ordered_json tokens = ordered_json::object();
  auto text = [](const ordered_json& t) -> std::optional<std::string> {
    if (t.is_string()) return t.get<std::string>();
    if (t.is_object() && t.contains("content") && t["content"].is_string()) return t["content"].get<std::string>();
    return std::nullopt;
  };
  for (const char* key : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"})
    if (config.contains(key))
      if (auto t = text(config[key])) tokens[key] = *t;
  if (config.contains("additional_special_tokens") && config["additional_special_tokens"].is_array()) {
    ordered_json extra = ordered_json::array();
    for (const auto& t : config["additional_special_tokens"])
      if (auto s = text(t)) extra.push_back(*s);
    if (!extra.empty()) tokens["additional_special_tokens"] = extra;
  }
  return tokens;
}

// transformers' ChatML default, from before templates shipped with every tokenizer.
constexpr const char* kChatML =
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

template <class Json>
std::string render_with(const jinja::Template& t, const ordered_json& special_tokens, const Json& variables) {
  DT_CHECK(variables.is_object(), "chat template variables must be a JSON object");
  DT_CHECK(variables.contains("messages"), "chat template variables have no \"messages\"");
  jinja::DictData vars;
  for (auto it = special_tokens.begin(); it != special_tokens.end(); ++it)
    vars.set(jinja::Value::string(it.key()), jinja::value_from_json(it.value()));
  vars.set(jinja::Value::string("tools"), jinja::Value::none());
  vars.set(jinja::Value::string("documents"), jinja::Value::none());
  vars.set(jinja::Value::string("add_generation_prompt"), jinja::Value::boolean(false));
  for (auto it = variables.begin(); it != variables.end(); ++it)
    vars.set(jinja::Value::string(it.key()), jinja::value_from_json(it.value()));
  return t.render(jinja::Value::dict(std::move(vars)));
}

}  // namespace

ChatTemplate ChatTemplate::from_string(std::string source, std::string name) {
  return ChatTemplate(jinja::Template(source, std::move(name)), ordered_json::object());
}

ChatTemplate ChatTemplate::chatml() { return ChatTemplate(jinja::Template(kChatML, "chatml"), ordered_json::object()); }

ChatTemplate ChatTemplate::from_file(const std::string& path) {
  return ChatTemplate(jinja::Template(read_text(path), path), ordered_json::object());
}

ordered_json ChatTemplate::special_tokens_in(const std::string& dir) {
  if (is_gguf(dir)) return special_tokens_of(tokenizer_config_from_gguf(GgufFile(dir)));
  const fs::path config_path = fs::path(dir) / "tokenizer_config.json";
  return fs::exists(config_path) ? special_tokens_of(read_json(config_path)) : ordered_json::object();
}

ChatTemplate ChatTemplate::from_tokenizer_dir(const std::string& dir) {
  if (is_gguf(dir)) {
    const ordered_json config = tokenizer_config_from_gguf(GgufFile(dir));
    DT_CHECK(config.contains("chat_template"), dir, ": the GGUF has no tokenizer.chat_template; give one with ",
             "--template (chatml, or a .jinja file)");
    return ChatTemplate(jinja::Template(config["chat_template"].get<std::string>(), dir + " (tokenizer.chat_template)"),
                        special_tokens_of(config));
  }
  const fs::path folder(dir);
  DT_CHECK(fs::is_directory(folder), dir, ": not a tokenizer folder");
  const fs::path config_path = folder / "tokenizer_config.json";
  const ordered_json config = fs::exists(config_path) ? read_json(config_path) : ordered_json::object();
  ordered_json special = special_tokens_of(config);
  if (const fs::path p = folder / "chat_template.jinja"; fs::exists(p))
    return ChatTemplate(jinja::Template(read_text(p), p.string()), std::move(special));
  if (const fs::path p = folder / "chat_template.json"; fs::exists(p)) {
    const ordered_json j = read_json(p);
    DT_CHECK(j.is_object() && j.contains("chat_template"), p.string(), ": has no \"chat_template\"");
    return ChatTemplate(jinja::Template(template_from_config(j["chat_template"], p), p.string()), std::move(special));
  }
  DT_CHECK(config.contains("chat_template"), dir,
           ": no chat template (no chat_template.jinja, and tokenizer_config.json has no \"chat_template\"); "
           "give one with --template (chatml, or a .jinja file)");
  return ChatTemplate(jinja::Template(template_from_config(config["chat_template"], config_path), config_path.string()),
                      std::move(special));
}

std::string ChatTemplate::render(const ordered_json& variables) const {
  return render_with(template_, special_tokens_, variables);
}

std::string ChatTemplate::render(const nlohmann::json& variables) const {
  return render_with(template_, special_tokens_, variables);
}

}  // namespace deltatune
