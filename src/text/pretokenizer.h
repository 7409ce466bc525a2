// Pre-tokenization by regular expression: tokenizers' Split with behavior "Isolated" (every match
// is a piece, and so is every stretch between matches). The expressions are the files' own,
// written for Oniguruma. PCRE2 runs them in UTF mode with Unicode properties, JIT-compiled when
// the platform has it, after \p{L}, \p{N} and \s are rewritten to Oniguruma's meaning
// (unicode_classes.h). Qwen's expression is matched by hand instead (qwen_split.h): same pieces,
// faster (docs/design-notes.md, "Tokenizer").
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace deltatune {

class SplitPattern {
 public:
  enum class Engine { Fastest, Pcre2 };
  // Throws Error naming the problem and its position in the pattern when it does not compile.
  explicit SplitPattern(const std::string& regex, Engine engine = Engine::Fastest);
  ~SplitPattern();
  SplitPattern(SplitPattern&&) noexcept;
  SplitPattern& operator=(SplitPattern&&) noexcept;

  // Appends to `pieces` the [begin, end) byte ranges of `text` (valid UTF-8) in order, covering all
  // of it: the matches, and the non-empty stretches between them.
  void split(std::string_view text, std::vector<std::pair<size_t, size_t>>& pieces) const;

  const std::string& regex() const { return regex_; }

 private:
  struct Compiled;
  std::string regex_;
  std::unique_ptr<Compiled> compiled_;
  bool hand_written_ = false;
};

// GPT-2's own expression, which ByteLevel applies when its use_regex is true.
extern const char* const kGpt2SplitRegex;

// `regex` with \p{L}, \P{L}, \p{N}, \P{N}, \s and \S given Oniguruma's meaning in PCRE2 (inside a
// bracketed class, \P{..} and \S are left to PCRE2: no expression we know uses them there).
std::string with_oniguruma_classes(const std::string& regex);

}  // namespace deltatune
