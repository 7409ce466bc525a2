#include "data/encode.h"

#include <algorithm>
#include <filesystem>
#include <map>

#include "core/error.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace deltatune {

namespace fs = std::filesystem;

namespace {

// Axolotl's alpaca prompt (prompters.py, AlpacaPrompter): the instruction, the optional input,
// then the response, which alone is trained.
std::string alpaca_prompt(const std::string& instruction, const std::string& input) {
  if (input.empty())
    return "Below is an instruction that describes a task. Write a response that appropriately completes the "
           "request.\n\n### Instruction:\n" + instruction + "\n\n### Response:\n";
  return "Below is an instruction that describes a task, paired with an input that provides further context. Write "
         "a response that appropriately completes the request.\n\n### Instruction:\n" + instruction +
         "\n\n### Input:\n" + input + "\n\n### Response:\n";
}

std::string string_field(const nlohmann::ordered_json& row, const std::string& key, bool required) {
  if (!row.contains(key) || row.at(key).is_null()) {
    DT_CHECK(!required, "missing field '", key, "'");
    return "";
  }
  DT_CHECK(row.at(key).is_string(), "field '", key, "' must be a string, got ", row.at(key).type_name());
  return row.at(key).get<std::string>();
}

class TextEncoder : public SampleEncoder {
 public:
  explicit TextEncoder(const TrainConfig& config)
      : config_(config), tokenizer_(Tokenizer::load(config.tokenizer_config)) {
    // tokenizer_config.json's eos_token, or a GGUF's (its tokenizer.ggml.eos_token_id).
    const nlohmann::ordered_json special = ChatTemplate::special_tokens_in(config.tokenizer_config);
    if (special.contains("eos_token")) eos_text_ = special["eos_token"].get<std::string>();
    if (eos_text_.empty()) eos_text_ = "<|endoftext|>";
    const auto eos = tokenizer_.token_to_id(eos_text_);
    DT_CHECK(eos.has_value(), config.tokenizer_config, ": the end-of-sequence token '", eos_text_,
             "' is not in the vocabulary");
    eos_id_ = *eos;
    templates_.emplace("", load_template(config.chat_template));
    for (const DatasetConfig& d : config.datasets)
      if (!d.chat_template.empty() && !templates_.count(d.chat_template))
        templates_.emplace(d.chat_template, load_template(d.chat_template));
  }

  Sample encode_row(const nlohmann::ordered_json& row, const DatasetConfig& d) const override {
    if (d.type == "chat_template") return encode_chat(row, d);
    if (d.type == "alpaca") {
      const std::string prompt = alpaca_prompt(string_field(row, "instruction", true), string_field(row, "input", false));
      return encode_prompt_response(prompt, string_field(row, "output", true) + eos_text_);
    }
    if (d.type == "completion") return encode_prompt_response("", string_field(row, d.field, true) + eos_text_);
    fail("dataset type '", d.type, "' has no text encoder");
  }

  const Tokenizer& tokenizer() const { return tokenizer_; }

 private:
  // The folder's special tokens (bos_token, eos_token, ...) go to every template, as transformers
  // passes them, whichever template renders.
  ChatTemplate load_template(const std::string& which) const {
    if (which.empty() || which == "tokenizer_default") return ChatTemplate::from_tokenizer_dir(config_.tokenizer_config);
    const auto tokens = ChatTemplate::special_tokens_in(config_.tokenizer_config);
    if (which == "chatml") return ChatTemplate::chatml().with_special_tokens(tokens);
    DT_CHECK(fs::is_regular_file(which), "chat_template '", which, "' is neither tokenizer_default, chatml nor a file");
    return ChatTemplate::from_file(which).with_special_tokens(tokens);
  }

  // Prompt untrained (unless train_on_inputs), response trained.
  Sample encode_prompt_response(const std::string& prompt, const std::string& response) const {
    std::vector<std::pair<size_t, size_t>> offsets;
    const std::string text = prompt + response;
    Sample s;
    s.input_ids = tokenizer_.encode_with_offsets(text, &offsets);
    s.labels.resize(s.input_ids.size());
    for (size_t i = 0; i < s.input_ids.size(); ++i)
      s.labels[i] = config_.train_on_inputs || offsets[i].first >= prompt.size() ? s.input_ids[i] : kIgnoreLabel;
    return s;
  }

  nlohmann::ordered_json template_variables(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& row, bool generation) const {
    nlohmann::ordered_json v = {{"messages", messages}, {"add_generation_prompt", generation}};
    if (row.contains("tools")) v["tools"] = row.at("tools");
    return v;
  }

  // The conversation rendered through the template; the trained spans are the rendered bodies of
  // the turns whose role is trained, found as the difference between renderings of the
  // conversation up to the turn (with the generation prompt) and through it. When the template
  // rewrites earlier turns (so those renderings are not prefixes of the whole), the span is where
  // the turn's content appears in the rendering, after the previous span.
  Sample encode_chat(const nlohmann::ordered_json& row, const DatasetConfig& d) const {
    DT_CHECK(row.contains(d.field_messages) && row.at(d.field_messages).is_array(), "field '", d.field_messages,
             "' must be a list of messages");
    nlohmann::ordered_json messages = nlohmann::ordered_json::array();
    for (const nlohmann::ordered_json& m : row.at(d.field_messages)) {
      DT_CHECK(m.is_object(), "every message must be an object");
      DT_CHECK(m.contains(d.message_property_role) && m.at(d.message_property_role).is_string(),
               "a message has no string '", d.message_property_role, "'");
      std::string role = m.at(d.message_property_role).get<std::string>();
      for (const auto& [ours, names] : d.roles)
        if (std::find(names.begin(), names.end(), role) != names.end()) role = ours;
      if (d.roles.empty()) {  // ShareGPT's usual names
        if (role == "human") role = "user";
        else if (role == "gpt") role = "assistant";
      }
      nlohmann::ordered_json out = m;
      out.erase(d.message_property_role);
      out["role"] = role;
      if (d.message_property_content != "content") {
        DT_CHECK(m.contains(d.message_property_content), "a message has no '", d.message_property_content, "'");
        out.erase(d.message_property_content);
        out["content"] = m.at(d.message_property_content);
      }
      // OpenAI's list of content parts: when every part is text, the text itself (templates made
      // for plain strings would print the list).
      if (out.contains("content") && out["content"].is_array()) {
        std::string text;
        bool all_text = true;
        for (const auto& part : out["content"]) {
          all_text = all_text && part.is_object() && part.value("type", "") == "text" && part.contains("text") &&
                     part["text"].is_string();
          if (all_text) text += part["text"].get<std::string>();
        }
        if (all_text) out["content"] = text;
      }
      messages.push_back(out);
    }
    DT_CHECK(!messages.empty(), "the conversation has no messages");
    const ChatTemplate& tmpl = templates_.at(templates_.count(d.chat_template) ? d.chat_template : "");
    const std::string full = tmpl.render(template_variables(messages, row, false));
    std::vector<std::pair<size_t, size_t>> offsets;
    Sample s;
    s.input_ids = tokenizer_.encode_with_offsets(full, &offsets);
    s.labels.assign(s.input_ids.size(), kIgnoreLabel);
    if (config_.train_on_inputs) {
      s.labels = s.input_ids;
      return s;
    }
    // Turn bodies as byte ranges of `full`.
    struct Span {
      size_t begin, end;
      bool trained;
    };
    std::vector<Span> spans;
    size_t cursor = 0;
    for (size_t i = 0; i < messages.size(); ++i) {
      const std::string role = messages[i]["role"].get<std::string>();
      const bool trained = std::find(d.roles_to_train.begin(), d.roles_to_train.end(), role) != d.roles_to_train.end();
      if (!trained && d.train_on_eos != "all") continue;
      nlohmann::ordered_json upto = nlohmann::ordered_json::array();
      for (size_t k = 0; k < i; ++k) upto.push_back(messages[k]);
      nlohmann::ordered_json through = upto;
      through.push_back(messages[i]);
      // The conversation before the turn may not render on its own (a template reading
      // messages[0] fails on none): then the turn is found by its content.
      std::string pre, post;
      bool rendered = true;
      try {
        pre = i == 0 && role != "assistant" ? "" : tmpl.render(template_variables(upto, row, role == "assistant"));
        post = tmpl.render(template_variables(through, row, false));
      } catch (const Error&) {
        rendered = false;
      }
      const std::string content = messages[i].contains("content") && messages[i]["content"].is_string()
                                      ? messages[i]["content"].get<std::string>() : "";
      size_t begin, end;
      if (rendered && post.size() >= pre.size() && full.compare(0, post.size(), post) == 0 &&
          post.compare(0, pre.size(), pre) == 0 && pre.size() >= cursor) {
        begin = pre.size();
        end = post.size();
        // An assistant turn starts after the generation prompt (what the model is given before
        // it writes); other turns have none, so theirs start at their content, after the role
        // header the template wrote.
        if (role != "assistant" && !content.empty()) {
          const size_t at = full.find(content, begin);
          if (at != std::string::npos && at + content.size() <= end) begin = at;
        }
        // What follows the turn's end marker (the template's newline) belongs to no turn.
        const size_t eos_at = full.rfind(eos_text_, end - 1);
        if (eos_at != std::string::npos && eos_at >= begin) end = eos_at + eos_text_.size();
      } else {
        DT_CHECK(!content.empty(), "turn ", i, " (", role, "): cannot locate it in the rendered conversation");
        begin = full.find(content, cursor);
        DT_CHECK(begin != std::string::npos, "turn ", i, " (", role, "): its content does not appear in the rendered ",
                 "conversation (the template changes it); cannot tell which tokens to train");
        end = begin + content.size();
        const size_t eos_at = full.find(eos_text_, end);  // the turn's end marker follows its content
        if (eos_at != std::string::npos) end = eos_at + eos_text_.size();
      }
      spans.push_back({begin, end, trained});
      cursor = end;
    }
    // A token is trained when it lies inside a trained span; end-of-turn tokens follow train_on_eos.
    int64_t last_trained_span = -1;
    for (size_t k = 0; k < spans.size(); ++k)
      if (spans[k].trained) last_trained_span = int64_t(k);
    for (size_t t = 0, k = 0; t < s.input_ids.size(); ++t) {
      while (k < spans.size() && spans[k].end <= offsets[t].first) ++k;
      if (k == spans.size() || offsets[t].first < spans[k].begin || offsets[t].second > spans[k].end) continue;
      const bool is_eos = s.input_ids[t] == eos_id_;
      bool train = spans[k].trained && !is_eos;
      if (is_eos) {
        if (d.train_on_eos == "all") train = true;
        else if (d.train_on_eos == "turn") train = spans[k].trained;
        else if (d.train_on_eos == "last") train = int64_t(k) == last_trained_span;
      }
      if (train) s.labels[t] = s.input_ids[t];
    }
    return s;
  }

  const TrainConfig& config_;
  Tokenizer tokenizer_;
  std::string eos_text_;
  int32_t eos_id_ = 0;
  std::map<std::string, ChatTemplate> templates_;
};

}  // namespace

std::unique_ptr<SampleEncoder> make_sample_encoder(const TrainConfig& config) {
  return with_context("preparing the tokenizer and chat template", [&] {
    return std::unique_ptr<SampleEncoder>(std::make_unique<TextEncoder>(config));
  });
}

}  // namespace deltatune
