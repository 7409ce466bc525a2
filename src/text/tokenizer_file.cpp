// Tokenizer::load: reads tokenizer.json into a Tokenizer::Impl. Every field that changes what
// tokenizers would produce is either implemented or refused; a refusal names the file, the JSON
// path (as a JSON pointer) and the value, e.g.
//   /m/tokenizer.json: /pre_tokenizer/pretokenizers/0/type: unsupported pre-tokenizer "Metaspace"
#include <algorithm>
#include <cctype>
#include <filesystem>

#include "core/error.h"
#include "export/gguf_tokenizer.h"
#include "io/gguf.h"
#include "io/json_file.h"
#include "text/byte_level.h"
#include "text/normalizer.h"
#include "text/tokenizer_impl.h"
#include "text/utf8.h"

namespace deltatune {

namespace {

using nlohmann::json;

// A JSON value and where it sits in the file, for messages.
struct Node {
  const json& value;
  std::string path;

  [[noreturn]] void error(const std::string& what) const { fail(path.empty() ? "/" : path, ": ", what); }
  Node at(const std::string& key) const {
    if (!value.is_object()) error("expected an object");
    const auto it = value.find(key);
    if (it == value.end()) fail(path, "/", key, ": missing");
    return {*it, path + "/" + key};
  }
  Node at(size_t i) const { return {value[i], path + "/" + std::to_string(i)}; }
  bool has(const std::string& key) const { return value.is_object() && value.contains(key) && !value[key].is_null(); }
  std::string string() const {
    if (!value.is_string()) error("expected a string, found " + value.dump());
    return value.get<std::string>();
  }
  bool boolean() const {
    if (!value.is_boolean()) error("expected true or false, found " + value.dump());
    return value.get<bool>();
  }
  const json& array() const {
    if (!value.is_array()) error("expected an array");
    return value;
  }
  std::string type() const { return at("type").string(); }
};

// tokenizers reads a String pattern as literal text: escape what PCRE2 would read as syntax.
std::string literal_regex(const std::string& text) {
  std::string out;
  for (char c : text) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x80 && !std::isalnum(b)) out += '\\';
    out += c;
  }
  return out;
}

void load_normalizer(const Node& n, Tokenizer::Impl& t) {
  if (n.value.is_null()) return;
  const std::string type = n.type();
  if (type == "NFC") {
    t.nfc = true;
  } else if (type == "Sequence") {
    const Node list = n.at("normalizers");
    for (size_t i = 0; i < list.array().size(); ++i) load_normalizer(list.at(i), t);
  } else {
    n.at("type").error("unsupported normalizer \"" + type + "\" (deltatune has NFC, and Sequence of it)");
  }
}

void load_split(const Node& n, Tokenizer::Impl& t) {
  const Node pattern = n.at("pattern");
  std::string regex;
  if (pattern.has("Regex")) regex = pattern.at("Regex").string();
  else if (pattern.has("String")) regex = literal_regex(pattern.at("String").string());
  else pattern.error("expected {\"Regex\": ...} or {\"String\": ...}");
  const std::string behavior = n.at("behavior").string();
  if (behavior != "Isolated")
    n.at("behavior").error("unsupported split behavior \"" + behavior + "\" (deltatune has Isolated)");
  if (n.has("invert") && n.at("invert").boolean()) n.at("invert").error("unsupported value true");
  with_context(pattern.path, [&] { t.splits.emplace_back(regex); });
}

// ByteLevel as pre-tokenizer: the byte-to-character mapping itself is implied (BPE runs on bytes);
// what remains is its optional split by GPT-2's expression.
void load_byte_level(const Node& n, Tokenizer::Impl& t) {
  if (n.has("add_prefix_space") && n.at("add_prefix_space").boolean())
    n.at("add_prefix_space").error("unsupported value true");
  // tokenizers' default for a missing use_regex is true.
  if (!n.has("use_regex") || n.at("use_regex").boolean()) t.splits.emplace_back(kGpt2SplitRegex);
}

void load_pre_tokenizer(const Node& n, Tokenizer::Impl& t) {
  if (n.value.is_null()) n.error("missing: deltatune needs a ByteLevel pre-tokenizer");
  std::vector<Node> steps;
  if (n.type() == "Sequence") {
    const Node list = n.at("pretokenizers");
    for (size_t i = 0; i < list.array().size(); ++i) steps.push_back(list.at(i));
  } else {
    steps.push_back(n);
  }
  for (size_t i = 0; i < steps.size(); ++i) {
    const std::string type = steps[i].type();
    if (type == "Split") {
      load_split(steps[i], t);
    } else if (type == "ByteLevel") {
      if (i + 1 != steps.size()) steps[i].at("type").error("ByteLevel must be the last pre-tokenizer");
      load_byte_level(steps[i], t);
      return;
    } else {
      steps[i].at("type").error("unsupported pre-tokenizer \"" + type + "\" (deltatune has Split, ByteLevel)");
    }
  }
  n.error("no ByteLevel pre-tokenizer: deltatune's BPE is byte-level only");
}

void load_decoder_and_post_processor(const Node& root) {
  const Node decoder = root.at("decoder");
  if (decoder.value.is_null()) decoder.error("missing: deltatune needs the ByteLevel decoder");
  if (decoder.type() != "ByteLevel")
    decoder.at("type").error("unsupported decoder \"" + decoder.type() + "\" (deltatune has ByteLevel)");
  if (!root.has("post_processor")) return;
  const Node post = root.at("post_processor");
  if (post.type() != "ByteLevel")
    post.at("type").error("unsupported post-processor \"" + post.type() + "\" (deltatune has ByteLevel)");
  // tokenizers' default for a missing trim_offsets is true, which moves offsets off whitespace.
  if (!post.has("trim_offsets") || post.at("trim_offsets").boolean())
    post.error("trim_offsets true (or missing) is not supported");
}

void load_model(const Node& m, Tokenizer::Impl& t, std::vector<BpeModel::Merge>& merges, bool& ignore_merges) {
  const std::string type = m.has("type") ? m.type() : "";
  if (type != "BPE") (m.has("type") ? m.at("type") : m).error("unsupported model \"" + type + "\" (deltatune has BPE)");
  if (m.has("dropout") && m.at("dropout").value != 0.0) m.at("dropout").error("unsupported dropout " + m.at("dropout").value.dump());
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (m.has(key) && !m.at(key).string().empty()) m.at(key).error("unsupported value \"" + m.at(key).string() + "\"");
  ignore_merges = m.has("ignore_merges") && m.at("ignore_merges").boolean();

  const Node vocab = m.at("vocab");
  if (!vocab.value.is_object()) vocab.error("expected an object of token: id");
  // The ids must be 0 .. n-1: tokenizers numbers added tokens from n on (the vocabulary's size),
  // which only works for a dense vocabulary, and our per-id tables are sized by the highest id.
  const size_t n = vocab.value.size();
  std::vector<const std::string*> by_id(n, nullptr);
  for (const auto& [token, id_value] : vocab.value.items()) {
    if (!id_value.is_number_integer() || id_value.get<int64_t>() < 0 || id_value.get<int64_t>() >= int64_t(n))
      vocab.at(token).error("expected an id in [0, " + std::to_string(n) + ") (the vocabulary's size), found " +
                            id_value.dump());
    const auto id = id_value.get<int32_t>();
    const auto [it, fresh] = t.vocab.emplace(token, id);
    if (by_id[size_t(id)]) vocab.at(token).error("id " + std::to_string(id) + " is also \"" + *by_id[size_t(id)] + "\"");
    by_id[size_t(id)] = &it->first;
  }
  const Node list = m.at("merges");
  merges.reserve(list.array().size());
  auto id_of = [&](const Node& at, const std::string& token) {
    const auto it = t.vocab.find(token);
    if (it == t.vocab.end()) at.error("\"" + token + "\" is not in the vocabulary");
    return it->second;
  };
  for (size_t i = 0; i < list.value.size(); ++i) {
    const Node entry = list.at(i);
    std::string left, right;
    if (entry.value.is_string()) {  // "a b": exactly one space
      const std::string s = entry.string();
      const size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
        entry.error("expected \"left right\" with one space, found \"" + s + "\"");
      left = s.substr(0, space), right = s.substr(space + 1);
    } else if (entry.value.is_array() && entry.value.size() == 2) {
      left = entry.at(0).string(), right = entry.at(1).string();
    } else {
      entry.error("expected \"left right\" or [left, right], found " + entry.value.dump());
    }
    merges.push_back({id_of(entry, left), id_of(entry, right), id_of(entry, left + right)});
  }
}

void load_added_tokens(const Node& root, Tokenizer::Impl& t, int32_t model_size) {
  if (!root.has("added_tokens")) return;
  const Node list = root.at("added_tokens");
  std::vector<AddedToken> raw, normalized;
  std::vector<std::string> raw_patterns, normalized_patterns;
  // tokenizers ignores the ids written in the file: a token the model has keeps the model's id,
  // others get the next id after the model's vocabulary, in file order. A file whose ids say
  // otherwise would encode differently there, so it is refused.
  int32_t next_id = model_size;
  for (size_t i = 0; i < list.array().size(); ++i) {
    const Node entry = list.at(i);
    AddedToken token;
    token.content = entry.at("content").string();
    if (token.content.empty()) entry.at("content").error("empty content");
    if (!utf8::is_valid(token.content)) entry.at("content").error("not valid UTF-8");
    token.single_word = entry.at("single_word").boolean();
    token.lstrip = entry.at("lstrip").boolean();
    token.rstrip = entry.at("rstrip").boolean();
    token.normalized = entry.at("normalized").boolean();
    token.special = entry.at("special").boolean();
    const Node id = entry.at("id");
    if (!id.value.is_number_integer() || id.value.get<int64_t>() < 0 || id.value.get<int64_t>() > INT32_MAX)
      id.error("expected an id in [0, 2^31), found " + id.value.dump());
    token.id = id.value.get<int32_t>();
    if (t.added.count(token.content)) entry.at("content").error("\"" + token.content + "\" is listed twice");
    const auto in_model = t.vocab.find(token.content);
    const int32_t expected = in_model != t.vocab.end() ? in_model->second : next_id++;
    if (token.id != expected)
      id.error("id " + std::to_string(token.id) + ", but tokenizers would give \"" + token.content + "\" the id " +
               std::to_string(expected));
    t.added.emplace(token.content, token.id);
    // A normalized token is looked for (and decoded) in its normalized form.
    std::string pattern = token.content;
    if (token.normalized && t.nfc) {
      NormalizedText n;
      normalize_nfc(token.content, false, n);
      pattern = n.text;
    }
    (token.normalized ? normalized : raw).push_back(token);
    (token.normalized ? normalized_patterns : raw_patterns).push_back(pattern);
  }
  t.raw_tokens = AddedTokenMatcher(std::move(raw), std::move(raw_patterns));
  t.normalized_tokens = AddedTokenMatcher(std::move(normalized), std::move(normalized_patterns));
}

// The per-id tables: spelling, special, and the bytes decode gives (tokenizers' ByteLevel decoder
// maps a token's characters back to bytes, or keeps its UTF-8 when some character is not in the
// byte alphabet, as for "<|im_start|>" written with ordinary characters).
void build_id_tables(const Node& root, Tokenizer::Impl& t) {
  int32_t size = 0;
  for (const auto& [token, id] : t.vocab) size = std::max(size, id + 1);
  for (const auto& [token, id] : t.added) size = std::max(size, id + 1);
  t.spelling.assign(size_t(size), {});
  t.known.assign(size_t(size), 0);
  t.special.assign(size_t(size), 0);
  t.skipped.assign(size_t(size), 0);
  t.decoded.assign(size_t(size), {});
  std::vector<std::string> decode_form(static_cast<size_t>(size));
  for (const auto& [token, id] : t.vocab) t.spelling[size_t(id)] = decode_form[size_t(id)] = token, t.known[size_t(id)] = 1;
  std::vector<std::string> special_contents;
  if (root.has("added_tokens")) {
    for (const auto& entry : root.value["added_tokens"]) {
      const auto content = entry["content"].get<std::string>();
      const auto id = size_t(entry["id"].get<int32_t>());
      t.spelling[id] = content;
      t.known[id] = 1;
      t.special[id] = entry["special"].get<bool>();
      if (t.special[id]) special_contents.push_back(content);
      std::string form = content;
      if (entry["normalized"].get<bool>() && t.nfc) {
        NormalizedText n;
        normalize_nfc(content, false, n);
        form = n.text;
      }
      decode_form[id] = form;
    }
  }
  for (size_t id = 0; id < size_t(size); ++id) {
    if (!t.known[id]) continue;
    if (!byte_level::decode(decode_form[id], t.decoded[id])) t.decoded[id] = decode_form[id];
    // tokenizers drops a token in decode(skip_special_tokens) when its decode form is the
    // content of a special token: the same as `special` except in contrived files.
    for (const auto& s : special_contents) t.skipped[id] = t.skipped[id] || decode_form[id] == s;
  }
}

// Fills `t` from the document, in the order tokenizers applies the parts.
void load_fields(const json& doc, Tokenizer::Impl& t) {
  const Node root{doc, ""};
  if (!doc.is_object()) root.error("expected a JSON object");
  if (root.has("version") && root.at("version").string() != "1.0")
    root.at("version").error("unknown version \"" + root.at("version").string() + "\" (tokenizers writes 1.0)");
  for (const char* key : {"truncation", "padding"})
    if (root.has(key)) root.at(key).error("unsupported: deltatune does not truncate or pad in the tokenizer");
  if (!root.has("model")) root.error("missing \"model\"");
  load_normalizer(root.has("normalizer") ? root.at("normalizer") : Node{json(), "/normalizer"}, t);
  load_pre_tokenizer(root.has("pre_tokenizer") ? root.at("pre_tokenizer") : Node{json(), "/pre_tokenizer"}, t);
  load_decoder_and_post_processor(root);
  std::vector<BpeModel::Merge> merges;
  bool ignore_merges = false;
  const Node model = root.at("model");
  load_model(model, t, merges, ignore_merges);
  with_context(model.path + "/vocab", [&] { t.bpe = std::make_unique<BpeModel>(t.vocab, merges, ignore_merges); });
  load_added_tokens(root, t, int32_t(t.vocab.size()));
  build_id_tables(root, t);
}

std::shared_ptr<Tokenizer::Impl> load_document(const json& doc, const std::string& file) {
  auto t = std::make_shared<Tokenizer::Impl>();
  t->path = file;
  // Every field is checked before it is read; a JSON library exception escaping anyway is still
  // reported as a problem of this file.
  try {
    with_context(file, [&] { load_fields(doc, *t); });
  } catch (const json::exception& e) {
    fail(file, ": ", e.what());
  }
  return t;
}

}  // namespace

Tokenizer Tokenizer::load(const std::string& path) {
  namespace fs = std::filesystem;
  if (fs::is_regular_file(path) && (fs::path(path).extension() == ".gguf" || is_gguf_file(path)))
    return from_json(tokenizer_json_from_gguf(GgufFile(path)), path + " (its embedded tokenizer)");
  const std::string file = fs::is_directory(path) ? (fs::path(path) / "tokenizer.json").string() : path;
  return Tokenizer(load_document(read_json_file(file), file));
}

Tokenizer Tokenizer::from_json(std::string_view json_text, const std::string& name) {
  json doc;
  try {
    doc = json::parse(json_text);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e999
    fail(name, ": invalid JSON: ", e.what());
  }
  return Tokenizer(load_document(doc, name));
}

}  // namespace deltatune
