#include "text/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/error.h"
#include "text/qwen_split.h"
#include "text/unicode_classes.h"
#include "text/utf8.h"

namespace deltatune {

const char* const kGpt2SplitRegex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

struct SplitPattern::Compiled {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Compiled() { pcre2_code_free(code); }
};

namespace {

// A class body for PCRE2 that matches exactly the code points of class k. PCRE2 10.42's own
// properties are Unicode 14: when PCRE2's `property` matches a subset of the class, the body is the
// property plus the missing ranges (a short list: it keeps PCRE2's fast property test, 10x faster
// than a class of hundreds of ranges); otherwise the class's ranges spelled out.
std::string pcre2_class_body(const char* property, CharClass k) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(property), PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_ANCHORED, &error, &offset, nullptr);
  DT_CHECK(code, "PCRE2 does not compile ", property);
  const bool jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  pcre2_match_data* match = pcre2_match_data_create(1, nullptr);
  std::vector<CodePointRange> missing;
  bool subset = true;
  std::string s;
  for (char32_t c = 0; c < 0x110000 && subset; ++c) {
    if (c >= 0xD800 && c <= 0xDFFF) continue;
    s.clear();
    utf8::append(s, c);
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(s.data());
    const bool pcre2_has = (jit ? pcre2_jit_match(code, subject, s.size(), 0, 0, match, nullptr)
                                : pcre2_match(code, subject, s.size(), 0, 0, match, nullptr)) > 0;
    const bool ours = char_class(c) == k;
    if (pcre2_has && !ours) subset = false;
    if (ours && !pcre2_has) {
      if (!missing.empty() && missing.back().second + 1 == c) missing.back().second = c;
      else missing.emplace_back(c, c);
    }
  }
  pcre2_match_data_free(match);
  pcre2_code_free(code);
  return subset ? property + class_body(missing) : class_body(ranges_of(k));
}

}  // namespace

std::string with_oniguruma_classes(const std::string& regex) {
  static const std::string letters = pcre2_class_body("\\p{L}", CharClass::Letter);
  static const std::string numbers = pcre2_class_body("\\p{N}", CharClass::Number);
  static const std::string space = pcre2_class_body("\\s", CharClass::Space);
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < regex.size(); ++i) {
    const char c = regex[i];
    if (c == '\\' && i + 1 < regex.size()) {
      const char e = regex[i + 1];
      const std::string rest = regex.substr(i + 2, 3);
      const bool negated = e == 'P' || e == 'S';
      const std::string* body = nullptr;
      size_t length = 2;
      if ((e == 'p' || e == 'P') && rest == "{L}") body = &letters, length = 5;
      else if ((e == 'p' || e == 'P') && rest == "{N}") body = &numbers, length = 5;
      else if (e == 's' || e == 'S') body = &space;
      if (body && !(in_class && negated)) {
        out += in_class ? *body : (negated ? "[^" : "[") + *body + "]";
        i += length - 1;
        continue;
      }
      if (e == 'Q') {  // \Q...\E is literal text: copy it through
        const size_t end = regex.find("\\E", i + 2);
        const size_t stop = end == std::string::npos ? regex.size() : end + 2;
        out.append(regex, i, stop - i);
        i = stop - 1;
        continue;
      }
      out += c;
      out += e;
      ++i;
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      // A ']' right after '[' or '[^' is a literal, not the end of the class.
      if (i + 1 < regex.size() && regex[i + 1] == '^') out += regex[++i];
      if (i + 1 < regex.size() && regex[i + 1] == ']') out += regex[++i];
      continue;
    }
    if (in_class && c == '[' && i + 1 < regex.size() && regex[i + 1] == ':') {  // [:alpha:]
      const size_t end = regex.find(":]", i + 2);
      const size_t stop = end == std::string::npos ? regex.size() : end + 2;
      out.append(regex, i, stop - i);
      i = stop - 1;
      continue;
    }
    if (in_class && c == ']') in_class = false;
    out += c;
  }
  return out;
}

SplitPattern::SplitPattern(const std::string& regex, Engine engine)
    : regex_(regex), compiled_(std::make_unique<Compiled>()) {
  // Compiled even when matched by hand (as written: only checked), so a bad expression fails the
  // same way either way.
  hand_written_ = engine == Engine::Fastest && regex == kQwenSplitRegex;
  int error = 0;
  PCRE2_SIZE error_offset = 0;
  const std::string rewritten = hand_written_ ? regex : with_oniguruma_classes(regex);
  compiled_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(rewritten.data()), rewritten.size(),
                                  PCRE2_UTF | PCRE2_UCP, &error, &error_offset, nullptr);
  if (!compiled_->code) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof message);
    fail("regex does not compile: ", reinterpret_cast<const char*>(message), " (regex ", regex, ")");
  }
  compiled_->jit = !hand_written_ && pcre2_jit_compile(compiled_->code, PCRE2_JIT_COMPLETE) == 0;
}

SplitPattern::~SplitPattern() = default;
SplitPattern::SplitPattern(SplitPattern&&) noexcept = default;
SplitPattern& SplitPattern::operator=(SplitPattern&&) noexcept = default;

namespace {

// One match-data block per thread: encode calls run concurrently, and a block holds one match.
pcre2_match_data* thread_match_data() {
  struct Holder {
    pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
    ~Holder() { pcre2_match_data_free(data); }
  };
  thread_local Holder holder;
  return holder.data;
}

}  // namespace

void SplitPattern::split(std::string_view text, std::vector<std::pair<size_t, size_t>>& pieces) const {
  if (hand_written_) {
    qwen_split(text, pieces);
    return;
  }
  pcre2_match_data* match = thread_match_data();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t at = 0;       // where the next search starts
  size_t covered = 0;  // end of the last piece emitted
  while (at < text.size()) {
    // The text was checked as UTF-8 once, before normalization: skip PCRE2's check per call.
    const int rc = compiled_->jit ? pcre2_jit_match(compiled_->code, subject, text.size(), at, PCRE2_NO_UTF_CHECK, match, nullptr)
                                  : pcre2_match(compiled_->code, subject, text.size(), at, PCRE2_NO_UTF_CHECK, match, nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(rc, message, sizeof message);
      fail("regex match failed: ", reinterpret_cast<const char*>(message));
    }
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match);
    const size_t begin = ovector[0], end = ovector[1];
    if (end == begin) {  // an empty match splits nothing; move on by one character
      if (begin >= text.size()) break;
      size_t bad = 0;
      at = begin + std::max<size_t>(1, utf8::valid_sequence_length(text, begin, &bad));
      continue;
    }
    if (begin > covered) pieces.emplace_back(covered, begin);
    pieces.emplace_back(begin, end);
    covered = at = end;
  }
  if (covered < text.size()) pieces.emplace_back(covered, text.size());
}

}  // namespace deltatune
