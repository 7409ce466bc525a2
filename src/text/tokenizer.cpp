// The encode pipeline, in tokenizers' order: added tokens found in the raw text; NFC on each piece
// between them; normalized added tokens found in the normalized pieces; the Split expressions;
// BPE on each pre-token's bytes. Offsets travel back through the normalization's alignment.
#include "text/tokenizer.h"

#include "core/error.h"
#include "text/normalizer.h"
#include "text/tokenizer_impl.h"
#include "text/utf8.h"

namespace deltatune {

namespace {

using Offsets = std::vector<std::pair<size_t, size_t>>;

// Start and end of the character holding byte i of valid UTF-8 `s`.
size_t char_start(std::string_view s, size_t i) {
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  return i;
}
size_t char_end(std::string_view s, size_t i) {
  size_t start = char_start(s, i);
  utf8::decode_valid(s, start);
  return start;
}

// Working storage of one encode call, kept per thread so that short texts cost no allocation
// beyond their output.
struct Scratch {
  NormalizedText norm;
  std::vector<AddedTokenMatcher::Piece> pieces, sub_pieces;
  std::vector<std::pair<size_t, size_t>> pre_tokens, next;
  std::vector<uint32_t> lengths;
};

class Encoder {
 public:
  Encoder(const Tokenizer::Impl& t, std::vector<int32_t>& ids, Offsets* offsets, Scratch& scratch)
      : t_(t), ids_(ids), offsets_(offsets), norm_(scratch.norm), pieces_(scratch.pieces),
        sub_pieces_(scratch.sub_pieces), pre_tokens_(scratch.pre_tokens), next_(scratch.next),
        lengths_(scratch.lengths) {}

  // `text` is valid UTF-8; offsets come out relative to it.
  void encode(std::string_view text) {
    pieces_.clear();
    if (t_.raw_tokens.empty()) pieces_.push_back({0, text.size(), -1});
    else t_.raw_tokens.split(text, pieces_);
    for (const auto& piece : pieces_) {
      if (piece.id >= 0) {
        emit(piece.id, piece.begin, piece.end);
        continue;
      }
      encode_segment(text.substr(piece.begin, piece.end - piece.begin), piece.begin);
    }
  }

 private:
  void emit(int32_t id, size_t begin, size_t end) {
    ids_.push_back(id);
    if (offsets_) offsets_->emplace_back(begin, end);
  }

  // One stretch of text between raw added tokens, starting at byte `base` of the text.
  void encode_segment(std::string_view segment, size_t base) {
    const bool want_offsets = offsets_ != nullptr;
    std::string_view text = segment;
    norm_.identity = true;
    if (t_.nfc && !nfc_is_identity(segment)) {
      normalize_nfc(segment, want_offsets, norm_);
      text = norm_.text;
    }
    // Byte range [b, e) of the normalized text -> range of the input, as tokenizers' alignments
    // give it: from the start of what byte b came from to the end of what byte e - 1 came from.
    auto original = [&](size_t b, size_t e) -> std::pair<size_t, size_t> {
      if (norm_.identity) return {base + char_start(text, b), base + char_end(text, e - 1)};
      return {base + norm_.alignment[b].first, base + norm_.alignment[e - 1].second};
    };
    sub_pieces_.clear();
    if (t_.normalized_tokens.empty()) sub_pieces_.push_back({0, text.size(), -1});
    else t_.normalized_tokens.split(text, sub_pieces_);
    for (const auto& sub : sub_pieces_) {
      if (sub.id >= 0) {
        ids_.push_back(sub.id);
        if (want_offsets) offsets_->push_back(original(sub.begin, sub.end));
        continue;
      }
      pre_tokens_.assign(1, {sub.begin, sub.end});
      for (const SplitPattern& pattern : t_.splits) {
        next_.clear();
        for (const auto& [b, e] : pre_tokens_) {
          const size_t before = next_.size();
          pattern.split(text.substr(b, e - b), next_);
          for (size_t k = before; k < next_.size(); ++k) next_[k].first += b, next_[k].second += b;
        }
        pre_tokens_.swap(next_);
      }
      for (const auto& [b, e] : pre_tokens_) {
        const size_t first = ids_.size();
        lengths_.clear();
        t_.bpe->encode_word(text.substr(b, e - b), ids_, want_offsets ? &lengths_ : nullptr);
        if (!want_offsets) continue;
        size_t at = b;
        for (size_t k = 0; k < ids_.size() - first; ++k) {
          offsets_->push_back(original(at, at + lengths_[k]));
          at += lengths_[k];
        }
      }
    }
  }

  const Tokenizer::Impl& t_;
  std::vector<int32_t>& ids_;
  Offsets* offsets_;
  NormalizedText& norm_;
  std::vector<AddedTokenMatcher::Piece>& pieces_;
  std::vector<AddedTokenMatcher::Piece>& sub_pieces_;
  std::vector<std::pair<size_t, size_t>>& pre_tokens_;
  std::vector<std::pair<size_t, size_t>>& next_;
  std::vector<uint32_t>& lengths_;
};

void encode_any(const Tokenizer::Impl& t, std::string_view text, std::vector<int32_t>& ids, Offsets* offsets) {
  thread_local Scratch scratch;
  if (utf8::is_valid(text)) {
    Encoder(t, ids, offsets, scratch).encode(text);
    return;
  }
  std::vector<size_t> original;
  const std::string repaired = utf8::replace_invalid(text, offsets ? &original : nullptr);
  Encoder(t, ids, offsets, scratch).encode(repaired);
  if (offsets)
    for (auto& [b, e] : *offsets) b = original[b], e = original[e];
}

}  // namespace

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  encode_any(*impl_, text, ids, nullptr);
  return ids;
}

std::vector<int32_t> Tokenizer::encode_with_offsets(std::string_view text, std::vector<std::pair<size_t, size_t>>* offsets) const {
  DT_CHECK(offsets, "encode_with_offsets: offsets must not be null");
  offsets->clear();
  std::vector<int32_t> ids;
  encode_any(*impl_, text, ids, offsets);
  return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  const Impl& t = *impl_;
  std::string bytes;
  for (int32_t id : ids) {
    if (id < 0 || size_t(id) >= t.known.size() || !t.known[size_t(id)]) continue;
    if (skip_special_tokens && t.skipped[size_t(id)]) continue;
    bytes += t.decoded[size_t(id)];
  }
  // The ByteLevel decoder joins all bytes first, so a character split across tokens comes out
  // whole; only what is still invalid then becomes U+FFFD.
  return utf8::is_valid(bytes) ? bytes : utf8::replace_invalid(bytes);
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (auto it = impl_->added.find(token); it != impl_->added.end()) return it->second;
  if (auto it = impl_->vocab.find(token); it != impl_->vocab.end()) return it->second;
  return std::nullopt;
}

std::string Tokenizer::id_to_token(int32_t id) const {
  DT_CHECK(id >= 0 && size_t(id) < impl_->known.size() && impl_->known[size_t(id)], impl_->path,
           ": no token has id ", id);
  return impl_->spelling[size_t(id)];
}

int32_t Tokenizer::vocab_size() const { return int32_t(impl_->known.size()); }

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && size_t(id) < impl_->special.size() && impl_->special[size_t(id)];
}

}  // namespace deltatune
