// Pre-tokenization by regular expression: tokenizers' Split with behavior "Isolated" (every match
// is a piece, and so is every stretch between matches). The expressions are the files' own,
// written for Oniguruma; PCRE2 runs them in UTF mode with Unicode properties (\p{L}, and \s, \w,
// \d meaning their Unicode classes), JIT-compiled when the platform has it.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace deltatune {

class SplitPattern {
 public:
  // Throws Error naming the problem and its position in the pattern when it does not compile.
  explicit SplitPattern(const std::string& regex);
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
};

// GPT-2's own expression, which ByteLevel applies when its use_regex is true.
extern const char* const kGpt2SplitRegex;

}  // namespace deltatune
