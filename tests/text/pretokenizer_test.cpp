// The split engines: the hand-written Qwen matcher against PCRE2 running the same expression, and
// both against tokenizers' Oniguruma on every code point (tests/fixtures/tokenizer/classes.json,
// from scripts/probe_tokenizer_classes.py).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/rng.h"
#include "test_util.h"
#include "text/pretokenizer.h"
#include "text/qwen_split.h"
#include "text/utf8.h"

namespace deltatune {
namespace {

using Pieces = std::vector<std::pair<size_t, size_t>>;
using testing_util::fixture_path;

Pieces split(const SplitPattern& p, std::string_view text) {
  Pieces out;
  p.split(text, out);
  return out;
}

std::string show(std::string_view text, const Pieces& pieces) {
  std::string s;
  for (const auto& [b, e] : pieces) s += nlohmann::json(std::string(text.substr(b, e - b))).dump() + " ";
  return s;
}

TEST(Pretokenizer, QwenMatcherAgreesWithPcre2) {
  const SplitPattern fast(kQwenSplitRegex), pcre2(kQwenSplitRegex, SplitPattern::Engine::Pcre2);
  std::vector<std::string> texts;
  std::ifstream in(fixture_path("tokenizer/corpus.jsonl"));
  for (std::string line; std::getline(in, line);) texts.push_back(nlohmann::json::parse(line).get<std::string>());
  // Random strings over characters of every class the expression tells apart.
  const char32_t alphabet[] = {'a', 'Z', 's', 'S', 't', 'r', 'e', 'v', 'm', 'l', 'L', 'd', '\'', '1', '9', ' ', ' ',
                               '\t', '\n', '\r', '!', '.', '-', 0x17F, 0xE9, 0x301, 0x4E2D, 0x0663, 0x00B2, 0x0085,
                               0x00A0, 0x180E, 0x2028, 0x3000, 0x1F600, 0x200D, 0x2EBF0, 0x10D40, 0xFFFD};
  Rng rng(5);
  for (int i = 0; i < 20000; ++i) {
    std::string s;
    const int n = int(rng.next_u64() % 12);
    for (int k = 0; k < n; ++k) utf8::append(s, alphabet[rng.next_u64() % std::size(alphabet)]);
    texts.push_back(s);
  }
  int mismatches = 0;
  for (const auto& text : texts) {
    const Pieces a = split(fast, text), b = split(pcre2, text);
    if (a != b && ++mismatches <= 5)
      ADD_FAILURE() << nlohmann::json(text).dump() << "\n  hand-written " << show(text, a) << "\n  PCRE2        "
                    << show(text, b);
  }
  EXPECT_EQ(mismatches, 0);
}

// "x c y" is one piece when c is a letter, three when it is a number; "x c !" is three pieces when
// c is white space, two when it is anything else.
char probe_class(const SplitPattern& p, char32_t c) {
  std::string a = "x", b = "x";
  utf8::append(a, c);
  utf8::append(b, c);
  a += "y", b += "!";
  const size_t n = split(p, a).size();
  if (n == 1) return 'L';
  if (n == 3) return 'N';
  return split(p, b).size() == 3 ? 'S' : 'O';
}

TEST(Pretokenizer, EveryCodePointClassedAsTokenizersDoes) {
  std::ifstream in(fixture_path("tokenizer/classes.json"));
  const auto probe = nlohmann::json::parse(in);
  std::vector<char> want(0x110000, 0);
  for (const auto& r : probe["classes"])
    for (uint32_t c = r[0].get<uint32_t>(); c <= r[1].get<uint32_t>(); ++c) want[c] = r[2].get<std::string>()[0];
  want[' '] = 'O';  // the probe's "x !" joins the space to "!": not a class difference
  for (const auto engine : {SplitPattern::Engine::Fastest, SplitPattern::Engine::Pcre2}) {
    const SplitPattern p(kQwenSplitRegex, engine);
    int mismatches = 0;
    for (char32_t c = 0; c < 0x110000; ++c) {
      if (!want[c]) continue;  // surrogates, \r, \n
      const char got = probe_class(p, c);
      if (got != want[c] && ++mismatches <= 5)
        ADD_FAILURE() << (engine == SplitPattern::Engine::Pcre2 ? "PCRE2" : "hand-written") << ": U+" << std::hex
                      << uint32_t(c) << " is '" << got << "', tokenizers says '" << want[c] << "'";
    }
    EXPECT_EQ(mismatches, 0);
  }
}

TEST(Pretokenizer, OnigurumaClassesInPcre2) {
  const std::string r = with_oniguruma_classes(R"([^\s\p{L}]\p{N}\S\Q\s\E[]\s][[:alpha:]\s]\P{L}\w)");
  // Outside a class \p{L} becomes a class: PCRE2's property plus the letters it lacks (Unicode 15
  // and 16); \s becomes White_Space spelled out (PCRE2's \s also has U+180E); \Q..\E and \w stay.
  EXPECT_EQ(r.substr(0, 19), R"([^\x{9}-\x{d}\x{20})");
  EXPECT_NE(r.find(R"(][\p{N}\x{)"), std::string::npos) << r.substr(0, 400);
  EXPECT_NE(r.find(R"(\x{2ebf0}-\x{2ee5d})"), std::string::npos);
  EXPECT_NE(r.find(R"(][^\x{9}-\x{d})"), std::string::npos);
  EXPECT_NE(r.find(R"(\Q\s\E[]\x{9})"), std::string::npos);
  EXPECT_NE(r.find(R"([[:alpha:]\x{9})"), std::string::npos);
  EXPECT_NE(r.find(R"([^\p{L}\x{)"), std::string::npos);
  EXPECT_EQ(r.substr(r.size() - 2), R"(\w)");
  EXPECT_NO_THROW(SplitPattern{R"([^\s\p{L}]\p{N}\S\Q\s\E[]\s][[:alpha:]\s]\P{L}\w)"});
}

}  // namespace
}  // namespace deltatune
