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
enum TokenType : int32_t { NORMAL = 1, UNKNOWN = 2, CONTROL = 3, USER_DEFINED = 4, UNUSED = 5, BYTE = 6 };

// The tokenizer.json Split expressions behind llama.cpp's pre-tokenizer names, as its
// src/llama-vocab.cpp quotes them (LLAMA_VOCAB_PRE_TYPE_QWEN2, LLAMA_VOCAB_PRE_TYPE_QWEN35).
constexpr const char* kQwen2Split =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr const char* kQwen35Split =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

// The Split expression of a tokenizer.json's pre_tokenizer (a Split, or one inside a Sequence).
std::string split_regex_of(const json& tokenizer) {
  const json pre = tokenizer.value("pre_tokenizer", json());
  std::vector<json> steps;
  if (pre.is_object() && pre.value("type", std::string()) == "Sequence") steps = pre.value("pretokenizers", std::vector<json>());
  else if (pre.is_object()) steps.push_back(pre);
  for (const json& step : steps)
    if (step.is_object() && step.value("type", std::string()) == "Split" && step.contains("pattern") &&
        step["pattern"].is_object() && step["pattern"].contains("Regex") && step["pattern"]["Regex"].is_string())
      return step["pattern"]["Regex"].get<std::string>();
  return "";
}

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
    // Qwen3.5's tokenizers split as llama.cpp's "qwen35"; the Qwen2/Qwen3 expression (without \p{M})
    // is its "qwen2".
    const std::string pre = split_regex_of(tokenizer) == kQwen2Split ? "qwen2" : "qwen35";
    m.push_back({"tokenizer.ggml.pre", GgufValue::string(pre)});
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

std::string qwen_split_regex(const std::string& pre) {
  if (pre == "qwen35") return kQwen35Split;
  // llama-vocab.cpp maps these names to LLAMA_VOCAB_PRE_TYPE_QWEN2.
  if (pre == "qwen2" || pre == "deepseek-r1-qwen") return kQwen2Split;
  return "";
}

std::string tokenizer_json_from_gguf(const GgufFile& f) {
  return with_context(f.path() + ": the embedded tokenizer", [&] {
    auto string_key = [&](const char* key) {
      const GgufValue& v = f.get_key(key);
      DT_CHECK(v.type() == GgufType::STRING, "metadata key '", key, "' must be a string, got ", v.describe());
      return v.get_string();
    };
    auto string_array = [&](const char* key) -> const std::vector<std::string>& {
      const GgufValue& v = f.get_key(key);
      DT_CHECK(v.is_array() && v.element_type() == GgufType::STRING, "metadata key '", key,
               "' must be an array of strings, got ", v.describe());
      return v.get_string_array();
    };
    const std::string model = string_key("tokenizer.ggml.model");
    DT_CHECK(model == "gpt2", "tokenizer.ggml.model is '", model, "'; deltatune rebuilds only byte-level BPE ('gpt2') ",
             "tokenizers from a GGUF: give a tokenizer folder (tokenizer.json) instead");
    const std::string pre = f.find_key("tokenizer.ggml.pre") ? string_key("tokenizer.ggml.pre") : "default";
    const std::string regex = qwen_split_regex(pre);
    DT_CHECK(!regex.empty(), "tokenizer.ggml.pre is '", pre, "'; deltatune rebuilds the Qwen pre-tokenizers ",
             "('qwen2', 'qwen35') only: give a tokenizer folder (tokenizer.json) instead");
    const std::vector<std::string>& tokens = string_array("tokenizer.ggml.tokens");
    std::vector<int32_t> types(tokens.size(), NORMAL);
    if (const GgufValue* t = f.find_key("tokenizer.ggml.token_type")) {
      DT_CHECK(t->is_array() && t->element_type() == GgufType::I32 && t->size() == tokens.size(),
               "metadata key 'tokenizer.ggml.token_type' must be an i32 array of ", tokens.size(), " entries, got ",
               t->describe());
      types = t->get_array<int32_t>();
    }
    json vocab = json::object();
    json added = json::array();
    for (size_t id = 0; id < tokens.size(); ++id) {
      switch (types[id]) {
        case NORMAL:
          DT_CHECK(!vocab.contains(tokens[id]), "token '", tokens[id], "' appears twice (ids ",
                   vocab[tokens[id]].get<int64_t>(), " and ", id, ")");
          vocab[tokens[id]] = id;
          break;
        case CONTROL:
        case UNKNOWN:
        case USER_DEFINED:
          added.push_back({{"id", id}, {"content", tokens[id]}, {"single_word", false}, {"lstrip", false},
                           {"rstrip", false}, {"normalized", types[id] == USER_DEFINED},
                           {"special", types[id] != USER_DEFINED}});
          break;
        case UNUSED: break;  // "[PAD<id>]": ids the tokenizer never produces
        default:
          fail("token ", id, " ('", tokens[id], "') has type ", types[id],
               ", which a byte-level BPE tokenizer does not have");
      }
    }
    json merges = json::array();
    for (const std::string& m : string_array("tokenizer.ggml.merges")) {
      const size_t space = m.find(' ');
      DT_CHECK(space != std::string::npos && space > 0 && space + 1 < m.size() && m.find(' ', space + 1) == std::string::npos,
               "merge '", m, "' is not two parts separated by one space");
      merges.push_back({m.substr(0, space), m.substr(space + 1)});
    }
    const json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false},
                             {"use_regex", false}};
    const json out = {
        {"version", "1.0"},
        {"truncation", nullptr},
        {"padding", nullptr},
        {"added_tokens", added},
        {"normalizer", {{"type", "NFC"}}},
        {"pre_tokenizer",
         {{"type", "Sequence"},
          {"pretokenizers",
           {{{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}, {"invert", false}},
            byte_level}}}},
        {"post_processor", byte_level},
        {"decoder", byte_level},
        {"model",
         {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", ""},
          {"end_of_word_suffix", ""}, {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", false},
          {"vocab", vocab}, {"merges", merges}}},
    };
    return out.dump();
  });
}

nlohmann::ordered_json tokenizer_config_from_gguf(const GgufFile& f) {
  return with_context(f.path() + ": the embedded tokenizer", [&] {
    nlohmann::ordered_json config = nlohmann::ordered_json::object();
    const GgufValue* tokens = f.find_key("tokenizer.ggml.tokens");
    const bool have_tokens = tokens && tokens->is_array() && tokens->element_type() == GgufType::STRING;
    const std::pair<const char*, const char*> keys[] = {
        {"bos_token", "tokenizer.ggml.bos_token_id"},     {"eos_token", "tokenizer.ggml.eos_token_id"},
        {"unk_token", "tokenizer.ggml.unknown_token_id"}, {"sep_token", "tokenizer.ggml.seperator_token_id"},
        {"pad_token", "tokenizer.ggml.padding_token_id"}, {"mask_token", "tokenizer.ggml.mask_token_id"}};
    for (const auto& [name, key] : keys) {
      const GgufValue* v = f.find_key(key);
      if (!v || !have_tokens) continue;
      const int64_t id = v->get_integer();
      DT_CHECK(id >= 0 && size_t(id) < tokens->size(), "metadata key '", key, "' is ", id, ", outside the ",
               tokens->size(), " tokens");
      config[name] = tokens->get_string_array()[size_t(id)];
    }
    if (const GgufValue* t = f.find_key("tokenizer.chat_template")) {
      DT_CHECK(t->type() == GgufType::STRING, "metadata key 'tokenizer.chat_template' must be a string, got ",
               t->describe());
      config["chat_template"] = t->get_string();
    }
    return config;
  });
}

}  // namespace deltatune
