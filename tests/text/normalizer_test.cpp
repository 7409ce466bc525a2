// NFC as tokenizers does it (Unicode 9.0 tables, alignment of each output byte to the input).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "test_util.h"
#include "text/normalizer.h"
#include "text/utf8.h"

namespace deltatune {
namespace {

using testing_util::fixture_path;

std::string nfc(std::string_view s) {
  NormalizedText n;
  normalize_nfc(s, false, n);
  return n.text;
}

// Every code point alone normalizes as in tokenizers (classes.json holds the ones NFC changes).
TEST(Normalizer, EveryCodePointAsTokenizers) {
  std::ifstream in(fixture_path("tokenizer/classes.json"));
  const auto changes = nlohmann::json::parse(in)["nfc_changes"];
  int mismatches = 0, changed = 0;
  for (char32_t c = 0; c < 0x110000; ++c) {
    if (c >= 0xD800 && c <= 0xDFFF) continue;
    std::string s;
    utf8::append(s, c);
    const auto it = changes.find(std::to_string(uint32_t(c)));
    const std::string want = it == changes.end() ? s : it->get<std::string>();
    changed += want != s;
    if (nfc(s) != want && ++mismatches <= 5) ADD_FAILURE() << "U+" << std::hex << uint32_t(c);
  }
  EXPECT_EQ(mismatches, 0);
  EXPECT_GT(changed, 1000);
}

TEST(Normalizer, CompositionAndItsAlignment) {
  NormalizedText n;
  normalize_nfc("cafe\xCC\x81!", true, n);  // e + U+0301
  EXPECT_EQ(n.text, "caf\xC3\xA9!");
  ASSERT_EQ(n.alignment.size(), n.text.size());
  // é stands for the "e" alone (change -1 keeps the first character's range), as in tokenizers.
  EXPECT_EQ(n.alignment[3], (ByteRange{3, 4}));
  EXPECT_EQ(n.alignment[4], (ByteRange{3, 4}));
  EXPECT_EQ(n.alignment[5], (ByteRange{6, 7}));
  // Composition exclusions stay apart; Dives Akuru (Unicode 13) is unknown to tokenizers' tables.
  EXPECT_EQ(nfc("\xF0\x9D\x85\x97\xF0\x9D\x85\xA5"), "\xF0\x9D\x85\x97\xF0\x9D\x85\xA5");
  EXPECT_EQ(nfc("\xF0\x91\xA4\xB5\xF0\x91\xA4\xB0"), "\xF0\x91\xA4\xB5\xF0\x91\xA4\xB0");
  // Marks reorder by class: dot below (220) before dot above (230), then compose with d.
  EXPECT_EQ(nfc("d\xCC\x87\xCC\xA3"), "\xE1\xB8\x8D\xCC\x87");
  EXPECT_TRUE(nfc_is_identity("plain ascii and \xE4\xB8\xAD"));
  EXPECT_FALSE(nfc_is_identity("e\xCC\x81"));
}

}  // namespace
}  // namespace deltatune
