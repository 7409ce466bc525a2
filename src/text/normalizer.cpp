#include "text/normalizer.h"

#include <utf8proc.h>

#include <algorithm>

#include "text/utf8.h"

namespace deltatune {

namespace {

constexpr char32_t kCodePoints = 0x110000;
constexpr char32_t kHangulFirst = 0xAC00, kHangulLast = 0xD7A3;

// tokenizers normalizes with the Unicode 9.0 tables of unicode-normalization-alignments 0.1.12;
// utf8proc has Unicode 15. The differences that matter to NFC: the combining marks added in
// Unicode 10 to 15 are plain starters (class 0) to tokenizers, and U+11938 (Dives Akuru, 13.0)
// neither decomposes nor is composed. Found by comparing the crate's tables with utf8proc's over
// every code point; nothing else differs (decompositions, compositions, classes).
constexpr std::pair<char32_t, char32_t> kMarksAfterUnicode9[] = {
    {0x07FD, 0x07FD},   {0x0898, 0x089F},   {0x08CA, 0x08D3},   {0x09FE, 0x09FE},   {0x0C3C, 0x0C3C},
    {0x0D3B, 0x0D3C},   {0x0EBA, 0x0EBA},   {0x1715, 0x1715},   {0x1ABF, 0x1ACE},   {0x1DF6, 0x1DFA},
    {0xA82C, 0xA82C},   {0x10D24, 0x10D27}, {0x10EAB, 0x10EAC}, {0x10EFD, 0x10EFF}, {0x10F46, 0x10F50},
    {0x10F82, 0x10F85}, {0x11070, 0x11070}, {0x1133B, 0x1133B}, {0x1145E, 0x1145E}, {0x11839, 0x1183A},
    {0x1193D, 0x1193E}, {0x11943, 0x11943}, {0x119E0, 0x119E0}, {0x11A34, 0x11A34}, {0x11A47, 0x11A47},
    {0x11A99, 0x11A99}, {0x11D42, 0x11D42}, {0x11D44, 0x11D45}, {0x11D97, 0x11D97}, {0x11F41, 0x11F42},
    {0x16FF0, 0x16FF1}, {0x1E08F, 0x1E08F}, {0x1E130, 0x1E136}, {0x1E2AE, 0x1E2AE}, {0x1E2EC, 0x1E2EF},
    {0x1E4EC, 0x1E4EF}};
constexpr char32_t kCompositeAfterUnicode9 = 0x11938;

bool mark_after_unicode9(char32_t c) {
  if (c < 0x07FD) return false;
  for (const auto& [first, last] : kMarksAfterUnicode9)
    if (c >= first && c <= last) return true;
  return false;
}

int combining_class(char32_t c) {
  const int cls = utf8proc_get_property(utf8proc_int32_t(c))->combining_class;
  return cls != 0 && mark_after_unicode9(c) ? 0 : cls;
}

bool has_canonical_decomposition(char32_t c) {
  if (c >= kHangulFirst && c <= kHangulLast) return true;
  if (c == kCompositeAfterUnicode9) return false;
  const utf8proc_property_t* p = utf8proc_get_property(utf8proc_int32_t(c));
  return p->decomp_seqindex != UINT16_MAX && p->decomp_type == 0;
}

// Full canonical decomposition of c into out (at most 4 code points in any Unicode version).
int decompose(char32_t c, utf8proc_int32_t* out, int capacity) {
  int boundclass = 0;
  return int(utf8proc_decompose_char(utf8proc_int32_t(c), out, capacity, UTF8PROC_DECOMPOSE, &boundclass));
}

// "Inert" characters are the ones NFC can neither change nor join to a neighbour: combining class
// 0, no canonical decomposition, and never the second half of a canonical pair. Text between two
// inert characters normalizes independently of the rest, so runs of them are copied as they are
// and only the stretches around other characters go through decomposition and recomposition.
class InertTable {
 public:
  InertTable() : bits_(kCodePoints / 64, ~uint64_t(0)) {
    std::vector<bool> second(kCodePoints, false);
    utf8proc_int32_t buf[8];
    for (char32_t c = 0; c < kCodePoints; ++c) {
      if (c >= 0xD800 && c <= 0xDFFF) continue;
      if (combining_class(c) != 0) clear(c);
      if (!has_canonical_decomposition(c)) continue;
      clear(c);
      const int n = decompose(c, buf, 8);
      for (int k = 1; k < n; ++k) second[size_t(buf[k])] = true;
    }
    for (char32_t c = 0; c < kCodePoints; ++c)
      if (second[c]) clear(c);
  }
  bool inert(char32_t c) const { return (bits_[c >> 6] >> (c & 63)) & 1; }

 private:
  void clear(char32_t c) { bits_[c >> 6] &= ~(uint64_t(1) << (c & 63)); }
  std::vector<uint64_t> bits_;
};

const InertTable& inert_table() {
  static const InertTable table;
  return table;
}

// The primary composite of a + b, or 0. utf8proc has no pairwise call, so the pair goes through
// its composition pass. That pass alone also joins pairs NFC must leave apart (the composition
// exclusions, e.g. U+1D157 U+1D165 -> U+1D15E), so the result is checked against them.
char32_t compose(char32_t a, char32_t b) {
  utf8proc_int32_t buf[2] = {utf8proc_int32_t(a), utf8proc_int32_t(b)};
  if (utf8proc_normalize_utf32(buf, 2, UTF8PROC_COMPOSE) != 1) return 0;
  const auto r = char32_t(buf[0]);
  if (utf8proc_get_property(buf[0])->comp_exclusion || r == kCompositeAfterUnicode9) return 0;
  return r;
}

struct Input {  // one character of a stretch being normalized
  char32_t c;
  ByteRange range;
};
struct Piece {  // one character of the decomposed or recomposed stretch
  char32_t c;
  int change;  // tokenizers' convention: 0 replaces, -n also absorbs n, +1 is new
};

// Canonical decomposition with combining marks stably sorted by class between starters; the first
// character of each input character's decomposition replaces it (0), the others are new (+1).
void decompose_stretch(const std::vector<Input>& in, std::vector<Piece>& out) {
  out.clear();
  utf8proc_int32_t buf[8];
  for (const Input& ch : in) {
    const int n = has_canonical_decomposition(ch.c) ? decompose(ch.c, buf, 8) : (buf[0] = utf8proc_int32_t(ch.c), 1);
    for (int k = 0; k < n; ++k) out.push_back({char32_t(buf[k]), k == 0 ? 0 : 1});
  }
  auto by_class = [](const Piece& x, const Piece& y) { return combining_class(x.c) < combining_class(y.c); };
  size_t i = 0;
  while (i < out.size()) {
    if (combining_class(out[i].c) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < out.size() && combining_class(out[j].c) != 0) ++j;
    std::stable_sort(out.begin() + long(i), out.begin() + long(j), by_class);
    i = j;
  }
}

// Canonical composition (UAX #15) in the crate's order of output: a starter ("composee") absorbs
// each following character it composes with unless a mark of equal or higher class sits between
// them; marks that stay are emitted after it. Composing x (change a) with y (change b) gives
// change a + b - 1: the pair now stands for one character fewer.
void recompose_stretch(const std::vector<Piece>& in, std::vector<Piece>& out) {
  out.clear();
  bool have_composee = false;
  Piece composee{};
  int last_class = -1;  // class of the last mark kept after the composee; -1: none
  std::vector<Piece> kept;
  auto flush = [&] {
    out.push_back(composee);
    out.insert(out.end(), kept.begin(), kept.end());
    kept.clear();
  };
  for (const Piece& p : in) {
    const int cls = combining_class(p.c);
    if (!have_composee) {
      if (cls != 0) {
        out.push_back(p);
        continue;
      }
      composee = p;
      have_composee = true;
      continue;
    }
    const bool blocked = last_class >= 0 && last_class >= cls;
    if (!blocked) {
      if (const char32_t r = compose(composee.c, p.c)) {
        composee = {r, composee.change + p.change - 1};
        continue;
      }
    }
    if (cls == 0) {
      flush();
      composee = p;
      last_class = -1;
      continue;
    }
    kept.push_back(p);
    last_class = cls;
  }
  if (have_composee) flush();
}

}  // namespace

bool nfc_is_identity(std::string_view text) {
  const InertTable& table = inert_table();
  size_t i = 0;
  while (i < text.size()) {
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    if (!table.inert(utf8::decode_valid(text, i))) return false;
  }
  return true;
}

void normalize_nfc(std::string_view text, bool with_alignment, NormalizedText& out) {
  out.text.clear();
  out.alignment.clear();
  out.identity = true;
  if (nfc_is_identity(text)) {
    out.text.assign(text);
    return;
  }
  out.identity = false;
  const InertTable& table = inert_table();
  bool changed = false;
  std::vector<Input> stretch;
  std::vector<Piece> decomposed, composed;
  ByteRange previous{0, 0};  // range of the last input character consumed
  bool any_previous = false;

  auto copy_char = [&](size_t begin, size_t end) {
    out.text.append(text.data() + begin, end - begin);
    previous = {uint32_t(begin), uint32_t(end)};
    any_previous = true;
    if (with_alignment) out.alignment.insert(out.alignment.end(), end - begin, previous);
  };

  size_t i = 0;
  while (i < text.size()) {
    const size_t begin = i;
    const char32_t c = utf8::decode_valid(text, i);
    // Look ahead: a character is copied as is only when it and the next one are inert (the next
    // one may still compose with it or reorder before it).
    size_t peek = i;
    const bool next_inert = peek >= text.size() || table.inert(utf8::decode_valid(text, peek));
    if (table.inert(c) && next_inert) {
      copy_char(begin, i);
      continue;
    }
    // A stretch: this character and the non-inert ones after it.
    stretch.clear();
    stretch.push_back({c, {uint32_t(begin), uint32_t(i)}});
    while (i < text.size()) {
      size_t j = i;
      const char32_t d = utf8::decode_valid(text, j);
      if (table.inert(d)) break;
      stretch.push_back({d, {uint32_t(i), uint32_t(j)}});
      i = j;
    }
    decompose_stretch(stretch, decomposed);
    recompose_stretch(decomposed, composed);
    // Walk the output against the input as tokenizers' transform does (see the header).
    size_t k = 0;  // input characters of the stretch consumed so far
    bool same = composed.size() == stretch.size();
    for (size_t m = 0; m < composed.size(); ++m) {
      const Piece& p = composed[m];
      same = same && p.change == 0 && p.c == stretch[m].c;
      ByteRange align;
      if (p.change > 0) {
        align = k > 0 ? stretch[k - 1].range : any_previous ? previous : ByteRange{0, 0};
      } else {
        align = stretch[k].range;
        k += 1 + size_t(-p.change);
      }
      const size_t before = out.text.size();
      utf8::append(out.text, p.c);
      if (with_alignment) out.alignment.insert(out.alignment.end(), out.text.size() - before, align);
    }
    changed = changed || !same;
    previous = stretch.back().range;
    any_previous = true;
  }
  if (!changed) {
    out.identity = true;
    out.alignment.clear();
  }
}

}  // namespace deltatune
