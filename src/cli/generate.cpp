// deltatune generate MODEL --prompt TEXT and deltatune chat MODEL: text generation through the
// model's own chat template, streamed, with runtime adapters (--adapter NAME=DIR[:SCALE], several
// allowed) applied unmerged; in chat, `/adapter NAME [SCALE]` switches the active set between
// requests without reloading the base.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>

#include "cli/commands.h"
#include "infer/generate.h"
#include "io/json_file.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace deltatune::cli {

namespace fs = std::filesystem;

namespace {

struct GenerateArgs {
  std::string model, prompt, system, template_name;
  std::vector<std::string> adapters;  // NAME=DIR[:SCALE] or DIR[:SCALE]
  int64_t max_new_tokens = 128;
  double temperature = 0, top_p = 1, min_p = 0;
  int64_t top_k = 0;
  uint64_t seed = 0;
  bool raw = false;
};

struct LoadedAdapter {
  std::string name;
  std::unique_ptr<LoraAdapter> adapter;
  double scale;
};

// "name=dir:scale", "dir:scale", "dir".
LoadedAdapter load_adapter_arg(const std::string& arg, const ModelConfig& config) {
  std::string name, rest = arg;
  if (const size_t eq = arg.find('='); eq != std::string::npos) name = arg.substr(0, eq), rest = arg.substr(eq + 1);
  double scale = 1.0;
  if (const size_t colon = rest.rfind(':'); colon != std::string::npos && !fs::exists(rest)) {
    try {
      scale = std::stod(rest.substr(colon + 1));
    } catch (...) {
      fail("--adapter ", arg, ": the scale after ':' must be a number");
    }
    rest = rest.substr(0, colon);
  }
  if (name.empty()) name = fs::path(rest).filename().string();
  return {name, std::make_unique<LoraAdapter>(LoraAdapter::load_peft(rest, config, DType::F32)), scale};
}

// Token ids that end a reply: the model's eos ids, generation_config.json's, tokenizer_config's.
std::vector<int64_t> stop_ids(const std::string& dir, const ModelConfig& config, const Tokenizer& tok) {
  std::vector<int64_t> ids = config.eos_token_ids;
  const fs::path gen = fs::path(dir) / "generation_config.json";
  if (fs::exists(gen)) {
    const auto j = read_json_file(gen.string());
    if (j.contains("eos_token_id")) {
      if (j["eos_token_id"].is_number_integer()) ids.push_back(j["eos_token_id"].get<int64_t>());
      else if (j["eos_token_id"].is_array())
        for (const auto& v : j["eos_token_id"]) ids.push_back(v.get<int64_t>());
    }
  }
  // The tokenizer's eos_token (tokenizer_config.json, or a GGUF's), then the ChatML end markers
  // every Qwen chat model ends its turns with.
  std::vector<std::string> names;
  if (const auto special = ChatTemplate::special_tokens_in(dir); special.contains("eos_token"))
    names.push_back(special["eos_token"].get<std::string>());
  names.push_back("<|im_end|>");
  names.push_back("<|endoftext|>");
  for (const std::string& t : names)
    if (const auto id = tok.token_to_id(t)) ids.push_back(*id);
  return ids;
}

ChatTemplate load_template(const std::string& dir, const std::string& which) {
  if (which.empty()) return ChatTemplate::from_tokenizer_dir(dir);
  const auto tokens = ChatTemplate::special_tokens_in(dir);
  if (which == "chatml") return ChatTemplate::chatml().with_special_tokens(tokens);
  return ChatTemplate::from_file(which).with_special_tokens(tokens);
}

// Prints decoded text as it grows, holding back an incomplete UTF-8 tail.
class Streamer {
 public:
  explicit Streamer(const Tokenizer& tok) : tok_(tok) {}
  void push(int64_t id) {
    ids_.push_back(int32_t(id));
    const std::string text = tok_.decode(ids_, true);
    if (text.size() >= 3 && text.compare(text.size() - 3, 3, "\xEF\xBF\xBD") == 0) return;  // U+FFFD: wait
    if (text.size() > printed_) {
      std::fwrite(text.data() + printed_, 1, text.size() - printed_, stdout);
      std::fflush(stdout);
      printed_ = text.size();
    }
  }
  std::string text() const { return tok_.decode(ids_, true); }

 private:
  const Tokenizer& tok_;
  std::vector<int32_t> ids_;
  size_t printed_ = 0;
};

GenerateOptions options_of(const GenerateArgs& a, std::vector<int64_t> stops) {
  GenerateOptions o;
  o.max_new_tokens = a.max_new_tokens;
  o.stop_ids = std::move(stops);
  o.sampling = {a.temperature, a.top_k, a.top_p, a.min_p, a.seed};
  return o;
}

std::string reply(const Model& model, const Tokenizer& tok, const LoraRun& lora, const std::string& text,
                  const GenerateOptions& options) {
  const std::vector<int32_t> ids32 = tok.encode(text);
  const std::vector<int64_t> prompt(ids32.begin(), ids32.end());
  Streamer streamer(tok);
  generate(model, lora, prompt, options, [&](int64_t id) { streamer.push(id); });
  std::printf("\n");
  return streamer.text();
}

void add_common(CLI::App* sub, GenerateArgs& a) {
  sub->add_option("model", a.model, "Hugging Face checkpoint folder with its tokenizer")->required();
  sub->add_option("--adapter", a.adapters, "[NAME=]DIR[:SCALE] PEFT adapter applied at run time (repeatable)");
  sub->add_option("--system", a.system, "system prompt");
  sub->add_option("--chat-template", a.template_name, "chatml, or a .jinja file (default: the model's)");
  sub->add_option("--max-new-tokens", a.max_new_tokens, "most tokens to generate");
  sub->add_option("--temperature", a.temperature, "0 = greedy");
  sub->add_option("--top-k", a.top_k, "keep the k most likely tokens (0 = off)");
  sub->add_option("--top-p", a.top_p, "nucleus sampling (1 = off)");
  sub->add_option("--min-p", a.min_p, "drop tokens less likely than min_p x the most likely (0 = off)");
  sub->add_option("--seed", a.seed, "sampling seed");
}

nlohmann::ordered_json conversation(const std::string& system, const nlohmann::ordered_json& turns) {
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  if (!system.empty()) messages.push_back({{"role", "system"}, {"content", system}});
  for (const auto& t : turns) messages.push_back(t);
  return messages;
}

}  // namespace

Action add_generate(CLI::App& app) {
  auto* sub = app.add_subcommand("generate", "Generate a reply to a prompt (the model's chat template applied)");
  auto a = std::make_shared<GenerateArgs>();
  add_common(sub, *a);
  sub->add_option("--prompt", a->prompt, "the user's message")->required();
  sub->add_flag("--raw", a->raw, "feed the prompt as is, without the chat template");
  return [a] {
    const Model model = Model::load(a->model);
    const Tokenizer tok = Tokenizer::load(a->model);
    std::vector<LoadedAdapter> adapters;
    LoraRun lora;
    for (const std::string& s : a->adapters) {
      adapters.push_back(load_adapter_arg(s, model.config()));
      lora.runtime.push_back({adapters.back().adapter.get(), adapters.back().scale});
    }
    std::string text = a->prompt;
    if (!a->raw) {
      const ChatTemplate tmpl = load_template(a->model, a->template_name);
      text = tmpl.render(nlohmann::ordered_json{{"messages", conversation(a->system, {{{"role", "user"}, {"content", a->prompt}}})},
                          {"add_generation_prompt", true}});
    }
    reply(model, tok, lora, text, options_of(*a, stop_ids(a->model, model.config(), tok)));
    return 0;
  };
}

Action add_chat(CLI::App& app) {
  auto* sub = app.add_subcommand("chat", "Chat on the terminal; /adapter NAME [SCALE], /adapter off, /reset, /quit");
  auto a = std::make_shared<GenerateArgs>();
  add_common(sub, *a);
  return [a] {
    const Model model = Model::load(a->model);
    const Tokenizer tok = Tokenizer::load(a->model);
    const ChatTemplate tmpl = load_template(a->model, a->template_name);
    std::vector<LoadedAdapter> adapters;
    for (const std::string& s : a->adapters) adapters.push_back(load_adapter_arg(s, model.config()));
    LoraRun lora;
    for (auto& ad : adapters) lora.runtime.push_back({ad.adapter.get(), ad.scale});
    const GenerateOptions options = options_of(*a, stop_ids(a->model, model.config(), tok));
    nlohmann::ordered_json turns = nlohmann::ordered_json::array();
    std::string line;
    std::fprintf(stderr, "chat with %s (%zu adapters active); /adapter NAME [SCALE], /adapter off, /reset, /quit\n",
                 a->model.c_str(), lora.runtime.size());
    while (std::fprintf(stderr, "> "), std::getline(std::cin, line)) {
      if (line == "/quit" || line == "/exit") break;
      if (line == "/reset") {
        turns = nlohmann::ordered_json::array();
        continue;
      }
      if (line.rfind("/adapter", 0) == 0) {
        std::istringstream in(line.substr(8));
        std::string name, scale_text;
        in >> name >> scale_text;
        double scale = 1.0;
        if (!scale_text.empty()) {
          char* end = nullptr;
          scale = std::strtod(scale_text.c_str(), &end);
          if (*end != '\0') {
            std::fprintf(stderr, "/adapter %s %s: the scale must be a number\n", name.c_str(), scale_text.c_str());
            continue;
          }
        }
        lora.runtime.clear();
        if (name == "off" || name.empty()) {
          std::fprintf(stderr, "no adapter active\n");
          continue;
        }
        bool found = false;
        for (auto& ad : adapters)
          if (ad.name == name) {
            lora.runtime.push_back({ad.adapter.get(), scale});
            found = true;
          }
        std::string names;
        for (auto& ad : adapters) names += " " + ad.name;
        if (found) std::fprintf(stderr, "adapter %s active at scale %g\n", name.c_str(), scale);
        else std::fprintf(stderr, "no adapter named %s; loaded:%s\n", name.c_str(), names.c_str());
        continue;
      }
      turns.push_back({{"role", "user"}, {"content", line}});
      const std::string text = tmpl.render(nlohmann::ordered_json{{"messages", conversation(a->system, turns)}, {"add_generation_prompt", true}});
      turns.push_back({{"role", "assistant"}, {"content", reply(model, tok, lora, text, options)}});
    }
    return 0;
  };
}

}  // namespace deltatune::cli
