#include "export/gguf_tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "io/json_file.h"

namespace deltatune {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// gguf-py constants.py TokenType.
enum TokenType : int32_t { NORMAL = 1, CONTROL = 3, USER_DEFINED = 4, UNUSED = 5 };

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  DT_CHECK(in, path.string(), ": cannot open");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

bool starts_ends(const std::string& s, const std::string& head, const std::string& tail) {
  return s.size() >= head.size() + tail.size() && s.compare(0, head.size(), head) == 0 &&
         s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// conversion/base.py does_token_look_special.
bool looks_special(const std::string& t) {
  return t == "<pad>" || t == "<mask>" || t == "<2mass>" || t == "[@BOS@]" || starts_ends(t, "<|", "|>") ||
         starts_ends(t, "<\xef\xbd\x9c", "\xef\xbd\x9c>") || starts_ends(t, "<unused", ">");
}

std::string replace_all(const std::string& s, const std::string& from, const std::string& to) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    if (s.compare(i, from.size(), from) == 0) {
      out += to;
      i += from.size();
    } else {
      out += s[i++];
    }
  }
  return out;
}

// gguf-py SpecialVocab: a space inside a merge part becomes chr(ord(' ') + 256) = U+0120 "Ġ".
std::string merge_part(const std::string& s) { return replace_all(s, " ", "\xc4\xa0"); }

std::vector<std::string> read_merges(const json& merges, const std::string& where) {
  std::vector<std::string> out;
  if (!merges.is_array()) return out;
  out.reserve(merges.size());
  for (const json& m : merges) {
    if (m.is_string()) {
      out.push_back(m.get<std::string>());
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      out.push_back(merge_part(m[0].get<std::string>()) + " " + merge_part(m[1].get<std::string>()));
    } else {
      fail(where, ": model.merges holds an entry that is neither \"a b\" nor [\"a\", \"b\"]");
    }
  }
  return out;
}

struct AddedToken {
  std::string content;
  bool special = false;
};

// The special token ids and add_*_token flags, in the order SpecialVocab inserts them.
struct SpecialTokens {
  std::vector<std::pair<std::string, uint32_t>> ids;
  std::vector<std::pair<std::string, bool>> add_flags;
  void set(const std::string& type, const json& id) {
    if (!id.is_number_integer()) return;
    DT_CHECK(id.get<int64_t>() >= 0, "invalid id ", id.dump(), " for the ", type, " token");
    for (const auto& [t, existing] : ids)
      if (t == type) return;  // the first source wins
    ids.emplace_back(type, uint32_t(id.get<int64_t>()));
  }
};

constexpr const char* kSpecialTypes[] = {"bos", "eos", "unk", "sep", "pad", "cls", "mask"};

void read_special_tokens(const json& tokenizer_config, const json& added_tokens, const json& config,
                         SpecialTokens& out) {
  for (const char* type : kSpecialTypes) {
    const std::string t = type;
    if (auto it = tokenizer_config.find("add_" + t + "_token"); it != tokenizer_config.end() && it->is_boolean())
      out.add_flags.emplace_back(t, it->get<bool>());
    const auto entry = tokenizer_config.find(t + "_token");
    if (entry == tokenizer_config.end()) continue;
    std::string content;
    if (entry->is_string()) content = entry->get<std::string>();
    else if (entry->is_object() && entry->contains("content") && (*entry)["content"].is_string())
      content = (*entry)["content"].get<std::string>();
    else continue;
    for (const json& a : added_tokens) {
      if (a.is_object() && a.value("content", std::string()) == content) {
        out.set(t, a.value("id", json()));
        break;
      }
    }
  }
  for (const char* type : kSpecialTypes) {
    const std::string key = std::string(type) + "_token_id";
    json id = config.value(key, json());
    if (id.is_null() && config.contains("text_config") && config["text_config"].is_object())
      id = config["text_config"].value(key, json());
    out.set(type, id);
  }
}

// gguf-py GGUFWriter.add_chat_template: a string, or named templates (names filtered to
// [A-Za-z0-9_]) with "default" as the main one.
void add_chat_templates(const json& templates, GgufMetadata& m) {
  if (templates.is_string()) {
    m.push_back({"tokenizer.chat_template", GgufValue::string(templates.get<std::string>())});
    return;
  }
  if (!templates.is_array()) return;
  std::string main_template;
  bool has_main = false;
  std::vector<std::string> names;
  for (const json& choice : templates) {
    if (!choice.is_object() || !choice.contains("template") || !choice["template"].is_string()) continue;
    std::string name = choice.value("name", std::string());
    for (char& ch : name)
      if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
    if (name.empty()) continue;
    if (name == "default") {
      main_template = choice["template"].get<std::string>();
      has_main = true;
    } else if (std::find(names.begin(), names.end(), name) == names.end()) {
      names.push_back(name);
      m.push_back({"tokenizer.chat_template." + name, GgufValue::string(choice["template"].get<std::string>())});
    }
  }
  if (!names.empty()) m.push_back({"tokenizer.chat_templates", GgufValue::array(names)});
  if (has_main) m.push_back({"tokenizer.chat_template", GgufValue::string(main_template)});
}

// gguf-py SpecialVocab._try_load_from_tokenizer_json: tokenizer_config.json's chat_template
// (even when null), else chat_template.jinja (+ additional_chat_templates/), else chat_template.json.
json find_chat_template(const fs::path& dir, const json& tokenizer_config) {
  if (tokenizer_config.contains("chat_template")) return tokenizer_config["chat_template"];
  if (fs::is_regular_file(dir / "chat_template.jinja")) {
    const std::string main_template = read_text(dir / "chat_template.jinja");
    std::vector<fs::path> extra;
    if (fs::is_directory(dir / "additional_chat_templates"))
      for (const auto& e : fs::directory_iterator(dir / "additional_chat_templates"))
        if (e.path().extension() == ".jinja") extra.push_back(e.path());
    if (extra.empty()) return main_template;
    std::sort(extra.begin(), extra.end());
    json list = json::array({{{"name", "default"}, {"template", main_template}}});
    for (const fs::path& p : extra) list.push_back({{"name", p.stem().string()}, {"template", read_text(p)}});
    return list;
  }
  if (fs::is_regular_file(dir / "chat_template.json"))
    return read_json_file((dir / "chat_template.json").string()).value("chat_template", json());
  return json();
}

}  // namespace

void add_gguf_tokenizer(const std::string& tokenizer_dir, const std::string& config_json, int64_t vocab_size,
                        GgufMetadata& m) {
  const fs::path dir(tokenizer_dir);
  const std::string tokenizer_path = (dir / "tokenizer.json").string();
  DT_CHECK(fs::is_regular_file(tokenizer_path), "no tokenizer.json in ", tokenizer_dir,
           ": llama.cpp needs the vocabulary (pass the folder holding the model's tokenizer files)");
  const json tokenizer = read_json_file(tokenizer_path);
  with_context(tokenizer_path, [&] {
    const json& model = tokenizer.at("model");
    DT_CHECK(model.value("type", std::string()) == "BPE", "model.type is ", model.value("type", json()).dump(),
             "; only byte-level BPE tokenizers (Qwen's) are supported");
    // Ids -> tokens; added tokens take their id's place, as in the Hugging Face tokenizer's vocab.
    std::map<int64_t, std::string> tokens;
    for (const auto& [token, id] : model.at("vocab").items()) tokens[id.get<int64_t>()] = token;
    const json added_tokens = tokenizer.value("added_tokens", json::array());
    std::map<int64_t, AddedToken> added;
    for (const json& a : added_tokens)
      added[a.at("id").get<int64_t>()] = {a.at("content").get<std::string>(), a.value("special", false)};
    const int64_t largest = std::max(tokens.empty() ? -1 : tokens.rbegin()->first,
                                     added.empty() ? -1 : added.rbegin()->first);
    DT_CHECK(largest < vocab_size, "token id ", largest, " is outside the model's vocabulary of ", vocab_size);

    std::vector<std::string> list(static_cast<size_t>(vocab_size));
    std::vector<int32_t> types(static_cast<size_t>(vocab_size));
    for (int64_t i = 0; i < vocab_size; ++i) {
      std::string& token = list[size_t(i)];
      int32_t& type = types[size_t(i)];
      if (const auto a = added.find(i); a != added.end()) {
        token = a->second.content;
        if (a->second.special || looks_special(token)) {
          type = CONTROL;
        } else {  // pre-normalize user-defined spaces, as the converter does for Gemma
          type = USER_DEFINED;
          token = replace_all(token, "\xe2\x96\x81", " ");
        }
      } else if (const auto t = tokens.find(i); t != tokens.end()) {
        token = t->second;
        type = NORMAL;
      } else {
        token = str_cat("[PAD", i, "]");
        type = UNUSED;
      }
    }
    m.push_back({"tokenizer.ggml.model", GgufValue::string("gpt2")});
    m.push_back({"tokenizer.ggml.pre", GgufValue::string("qwen35")});
    m.push_back({"tokenizer.ggml.tokens", GgufValue::array(std::move(list))});
    m.push_back({"tokenizer.ggml.token_type", GgufValue::array(types)});
    const std::vector<std::string> merges = read_merges(model.value("merges", json()), tokenizer_path);
    // llama.cpp's BPE vocabulary refuses a file without the key (llama-vocab.cpp).
    m.push_back({"tokenizer.ggml.merges", GgufValue::array(merges)});

    const fs::path config_path = dir / "tokenizer_config.json";
    const json tokenizer_config =
        fs::is_regular_file(config_path) ? read_json_file(config_path.string()) : json::object();
    const json config = read_json_file(config_json);
    SpecialTokens special;
    read_special_tokens(tokenizer_config, added_tokens, config, special);
    // gguf-py GGUFWriter has add_{bos,eos,unk,sep,pad,mask}_token_id and add_add_{bos,eos,sep}_token
    // (cls has no key; SpecialVocab skips it).
    const std::map<std::string, std::string> id_keys = {
        {"bos", "tokenizer.ggml.bos_token_id"},     {"eos", "tokenizer.ggml.eos_token_id"},
        {"unk", "tokenizer.ggml.unknown_token_id"}, {"sep", "tokenizer.ggml.seperator_token_id"},
        {"pad", "tokenizer.ggml.padding_token_id"}, {"mask", "tokenizer.ggml.mask_token_id"}};
    for (const auto& [type, id] : special.ids)
      if (const auto k = id_keys.find(type); k != id_keys.end())
        m.push_back({k->second, GgufValue::scalar<uint32_t>(id)});
    for (const auto& [type, add] : special.add_flags)
      if (type == "bos" || type == "eos" || type == "sep")
        m.push_back({"tokenizer.ggml.add_" + type + "_token", GgufValue::scalar<bool>(add)});
    // SpecialVocab stops before the chat template when tokenizer_config.json is missing or empty.
    if (!tokenizer_config.empty()) add_chat_templates(find_chat_template(dir, tokenizer_config), m);
  });
}

}  // namespace deltatune
