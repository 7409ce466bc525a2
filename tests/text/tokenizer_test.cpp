// The tokenizer against Hugging Face tokenizers 0.23.2 (tests/fixtures/tokenizer/reference.jsonl,
// written by scripts/make_tokenizer_fixtures.py): exact ids and byte offsets for every corpus line,
// valid UTF-8 or not, with the real Qwen3 tokenizer.json and with a tiny one that has every
// added-token flag; exact decodes, including id sequences that cut characters in half.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "test_util.h"
#include "text/tokenizer.h"

namespace deltatune {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing_util::fixture_path;

// The real tokenizer lives in a git-ignored cache that scripts/fetch-tokenizer.sh fills
// (scripts/test.sh runs it first); DELTATUNE_TOKENIZER_JSON overrides the place.
std::string qwen3_path() {
  if (const char* env = std::getenv("DELTATUNE_TOKENIZER_JSON")) return env;
  return DELTATUNE_QWEN3_TOKENIZER;
}

const Tokenizer& qwen3() {
  static const Tokenizer t = [] {
    const std::string path = qwen3_path();
    if (!fs::exists(path))
      throw std::runtime_error(path + " is missing: run scripts/fetch-tokenizer.sh (scripts/test.sh does)");
    return Tokenizer::load(path);
  }();
  return t;
}

const Tokenizer& tiny() {
  static const Tokenizer t = Tokenizer::load(fixture_path("tokenizer/tiny"));
  return t;
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << path;
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<std::string> read_json_strings(const std::string& path) {
  std::vector<std::string> out;
  for (const auto& line : read_lines(path))
    if (!line.empty()) out.push_back(json::parse(line).get<std::string>());
  return out;
}

std::vector<std::string> read_hex_lines(const std::string& path) {
  std::vector<std::string> out;
  for (const auto& line : read_lines(path)) {
    if (line.empty() || line[0] == '#') continue;
    std::string bytes;
    for (size_t i = 0; i + 1 < line.size(); i += 2) bytes += char(std::stoi(line.substr(i, 2), nullptr, 16));
    out.push_back(bytes);
  }
  return out;
}

std::vector<json> reference() {
  std::vector<json> out;
  for (const auto& line : read_lines(fixture_path("tokenizer/reference.jsonl")))
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

std::string show_ids(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += (s.empty() ? "" : " ") + std::to_string(id);
  return s;
}

TEST(Tokenizer, QwenFileIsThere) {
  ASSERT_TRUE(fs::exists(qwen3_path())) << qwen3_path() << " is missing: run scripts/fetch-tokenizer.sh";
  EXPECT_EQ(qwen3().vocab_size(), 151669);
}

// Every line of every corpus: ids, offsets and both decodes exactly as tokenizers gives them.
TEST(Tokenizer, MatchesTokenizersOnCorpus) {
  std::map<std::string, std::vector<std::string>> corpora = {
      {"corpus.jsonl", read_json_strings(fixture_path("tokenizer/corpus.jsonl"))},
      {"corpus_bytes.txt", read_hex_lines(fixture_path("tokenizer/corpus_bytes.txt"))},
      {"tiny/corpus.jsonl", read_json_strings(fixture_path("tokenizer/tiny/corpus.jsonl"))}};
  size_t checked = 0, tokens = 0;
  for (const json& r : reference()) {
    if (!r.contains("ids")) continue;
    const Tokenizer& t = r["tokenizer"] == "tiny" ? tiny() : qwen3();
    const auto& lines = corpora.at(r["corpus"].get<std::string>());
    const size_t index = r["line"].get<size_t>();
    ASSERT_LT(index, lines.size()) << r["corpus"];
    const std::string& text = lines[index];
    const std::string where = r["corpus"].get<std::string>() + " line " + std::to_string(index) + " " + json(r["decode"]).dump();
    const auto want_ids = r["ids"].get<std::vector<int32_t>>();
    const auto flat = r["offsets"].get<std::vector<size_t>>();
    std::vector<std::pair<size_t, size_t>> want_offsets;
    for (size_t k = 0; k + 1 < flat.size(); k += 2) want_offsets.emplace_back(flat[k], flat[k + 1]);

    std::vector<std::pair<size_t, size_t>> offsets;
    const auto ids = t.encode_with_offsets(text, &offsets);
    EXPECT_EQ(ids, t.encode(text)) << where << ": encode and encode_with_offsets disagree";
    if (ids != want_ids) {
      ADD_FAILURE() << where << "\n  got  " << show_ids(ids) << "\n  want " << show_ids(want_ids);
    } else {
      for (size_t k = 0; k < ids.size(); ++k)
        if (offsets[k] != want_offsets[k]) {
          ADD_FAILURE() << where << ": token " << k << " (id " << ids[k] << ") has offsets [" << offsets[k].first
                        << ", " << offsets[k].second << "), tokenizers gives [" << want_offsets[k].first << ", "
                        << want_offsets[k].second << ")";
          break;
        }
    }
    EXPECT_EQ(t.decode(want_ids), r["decode"].get<std::string>()) << where;
    EXPECT_EQ(t.decode(want_ids, true), r["decode_skip"].get<std::string>()) << where;
    ++checked;
    tokens += ids.size();
  }
  EXPECT_GT(checked, 300u);
  std::printf("[ measured ] %zu lines, %zu tokens, all equal to tokenizers'\n", checked, tokens);
}

// Decodes of sequences that split characters, of loose bytes, of ids no token has, of special
// tokens with and without skipping.
TEST(Tokenizer, DecodeMatchesTokenizers) {
  size_t checked = 0, replaced = 0;
  for (const json& r : reference()) {
    if (!r.contains("decode_ids")) continue;
    const auto ids = r["decode_ids"].get<std::vector<int64_t>>();
    std::vector<int32_t> ids32;
    for (int64_t id : ids) ids32.push_back(int32_t(std::min<int64_t>(id, INT32_MAX)));
    const std::string got = qwen3().decode(ids32, r["skip_special"].get<bool>());
    const std::string want = r["text"].get<std::string>();
    EXPECT_EQ(got, want) << "ids " << show_ids(ids32);
    replaced += want.find("\xEF\xBF\xBD") != std::string::npos;
    ++checked;
  }
  EXPECT_GT(replaced, 50u) << "the reference should cut characters often";
  std::printf("[ measured ] %zu decodes (%zu with U+FFFD) equal to tokenizers'\n", checked, replaced);
}

TEST(Tokenizer, DecodeOfEncodeGivesTheNfcText) {
  // Text that NFC leaves alone comes back byte for byte, added tokens included.
  for (const std::string text : {"Hello world", "<|im_start|>user\nhé 你好 👍🏽<|im_end|>\n", "  \t\r\n x  ", ""})
    EXPECT_EQ(qwen3().decode(qwen3().encode(text)), text);
  // Combining sequences come back composed.
  EXPECT_EQ(qwen3().decode(qwen3().encode("cafe\xCC\x81")), "caf\xC3\xA9");
  // Invalid bytes come back as U+FFFD, one per maximal invalid sequence.
  EXPECT_EQ(qwen3().decode(qwen3().encode("a\xE4\xB8 b\xFF")), "a\xEF\xBF\xBD b\xEF\xBF\xBD");
}

TEST(Tokenizer, AddedTokens) {
  const Tokenizer& q = qwen3();
  EXPECT_EQ(q.token_to_id("<|im_start|>"), 151644);
  EXPECT_EQ(q.token_to_id("<think>"), 151667);
  EXPECT_EQ(q.token_to_id("Hello"), 9707);
  EXPECT_EQ(q.token_to_id("Ġworld"), 1879);
  EXPECT_FALSE(q.token_to_id("no such token").has_value());
  EXPECT_EQ(q.id_to_token(151645), "<|im_end|>");
  EXPECT_EQ(q.id_to_token(1879), "Ġworld");
  EXPECT_THROW(q.id_to_token(151669), Error);
  EXPECT_TRUE(q.is_special(151643));
  EXPECT_FALSE(q.is_special(151667));  // <think> is an added token, not a special one
  EXPECT_FALSE(q.is_special(9707));
  const std::vector<int32_t> chat = q.encode("<|im_start|>user\nHi<|im_end|>");
  EXPECT_EQ(chat.front(), 151644);
  EXPECT_EQ(chat.back(), 151645);
  EXPECT_EQ(q.decode(chat, true), "user\nHi");

  // The tiny tokenizer: "ing" is also a model token, so tokenizers gives it the model's id.
  const Tokenizer& t = tiny();
  EXPECT_EQ(t.token_to_id("ing"), 260);
  EXPECT_EQ(t.vocab_size(), 283);  // " pad" is the last added token, id 282
  std::vector<std::pair<size_t, size_t>> offsets;
  // lstrip: the whitespace before [LS] belongs to it.
  EXPECT_EQ(t.encode_with_offsets("a  [LS] b", &offsets), (std::vector<int32_t>{97, 276, 32, 98}));
  EXPECT_EQ(offsets[1], (std::pair<size_t, size_t>{1, 7}));
}

TEST(Tokenizer, CopiesShareAndThreadsAgree) {
  const std::vector<std::string> texts = read_json_strings(fixture_path("tokenizer/corpus.jsonl"));
  const Tokenizer copy = qwen3();
  std::vector<std::vector<int32_t>> want;
  for (const auto& text : texts) want.push_back(copy.encode(text));
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int w = 0; w < 4; ++w)
    threads.emplace_back([&, w] {
      for (int round = 0; round < 3; ++round)
        for (size_t i = 0; i < texts.size(); ++i) mismatches[size_t(w)] += copy.encode(texts[(i + size_t(w) * 37) % texts.size()]) != want[(i + size_t(w) * 37) % texts.size()];
    });
  for (auto& th : threads) th.join();
  for (int w = 0; w < 4; ++w) EXPECT_EQ(mismatches[size_t(w)], 0) << "thread " << w;
}

// Malformed or unsupported files: an Error that names the file and the JSON path.
class TokenizerFileErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("deltatune_tokenizer_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    std::ifstream in(fixture_path("tokenizer/tiny/tokenizer.json"));
    base_ = json::parse(in);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Loads `j` from a file; returns the error message ("" when it loads).
  std::string load_error(const json& j) {
    const std::string path = (dir_ / "tokenizer.json").string();
    std::ofstream(path) << j.dump();
    return load_error_at(path);
  }
  std::string load_error_at(const std::string& path) {
    try {
      Tokenizer::load(path);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }
  void expect_error(const json& j, const std::vector<std::string>& parts) {
    const std::string message = load_error(j);
    ASSERT_FALSE(message.empty()) << "loaded without error; expected " << parts[0];
    EXPECT_NE(message.find((dir_ / "tokenizer.json").string()), std::string::npos) << message;
    for (const auto& part : parts) EXPECT_NE(message.find(part), std::string::npos) << "want '" << part << "' in: " << message;
  }
  fs::path dir_;
  json base_;
};

TEST_F(TokenizerFileErrors, TheTinyFileLoads) { EXPECT_EQ(load_error(base_), ""); }

TEST_F(TokenizerFileErrors, MissingModel) {
  json j = base_;
  j.erase("model");
  expect_error(j, {"model"});
}

TEST_F(TokenizerFileErrors, UnknownPreTokenizer) {
  json j = base_;
  j["pre_tokenizer"]["pretokenizers"][0] = {{"type", "Metaspace"}, {"replacement", "_"}};
  expect_error(j, {"/pre_tokenizer/pretokenizers/0/type", "Metaspace"});
}

TEST_F(TokenizerFileErrors, UnsupportedNormalizerModelAndDecoder) {
  json j = base_;
  j["normalizer"] = {{"type", "NFKC"}};
  expect_error(j, {"/normalizer/type", "NFKC"});
  j = base_;
  j["model"]["type"] = "WordPiece";
  expect_error(j, {"/model/type", "WordPiece"});
  j = base_;
  j["decoder"] = {{"type", "Metaspace"}};
  expect_error(j, {"/decoder/type", "Metaspace"});
  j = base_;
  j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Removed";
  expect_error(j, {"/pre_tokenizer/pretokenizers/0/behavior", "Removed"});
  j = base_;
  j["post_processor"] = {{"type", "TemplateProcessing"}};
  expect_error(j, {"/post_processor/type", "TemplateProcessing"});
}

TEST_F(TokenizerFileErrors, BadMerges) {
  json j = base_;
  j["model"]["merges"][3] = "a b c";
  expect_error(j, {"/model/merges/3", "a b c"});
  j = base_;
  j["model"]["merges"][2] = json::array({"x"});
  expect_error(j, {"/model/merges/2"});
  j = base_;
  j["model"]["merges"][1] = json::array({"q", "zz"});
  expect_error(j, {"/model/merges/1", "\"zz\" is not in the vocabulary"});
}

// Found by the fuzzer: an id far past the vocabulary's size made per-id tables of gigabytes.
TEST_F(TokenizerFileErrors, VocabularyIdsAreDense) {
  json j = base_;
  j["model"]["vocab"]["ab"] = 200000000;
  expect_error(j, {"/model/vocab/ab", "200000000"});
  j = base_;
  j["model"]["vocab"]["ab"] = 0;
  expect_error(j, {"/model/vocab/", "id 0 is also"});
}

TEST_F(TokenizerFileErrors, BadRegex) {
  json j = base_;
  j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(\\p{L}+";
  expect_error(j, {"/pre_tokenizer/pretokenizers/0/pattern", "does not compile"});
}

TEST_F(TokenizerFileErrors, AddedTokenIdsMustBeTheOnesTokenizersGives) {
  json j = base_;
  j["added_tokens"][1]["id"] = 999;
  expect_error(j, {"/added_tokens/1/id", "999"});
  j = base_;
  j["added_tokens"][0].erase("special");
  expect_error(j, {"/added_tokens/0/special", "missing"});
}

TEST_F(TokenizerFileErrors, NotJsonOrNotThere) {
  const std::string path = (dir_ / "tokenizer.json").string();
  std::ofstream(path) << "{\"model\": ";
  EXPECT_NE(load_error_at(path).find("invalid JSON"), std::string::npos);
  fs::remove(path);
  EXPECT_NE(load_error_at(dir_.string()).find("cannot open"), std::string::npos);
  // Found by the fuzzer: a number too large for a double is not a parse_error in nlohmann::json.
  try {
    Tokenizer::from_json("[\n 255.0e2436]", "fuzz.json");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("fuzz.json: invalid JSON"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace deltatune
