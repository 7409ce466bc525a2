// Byte-level BPE: a pre-token's bytes start as one symbol each (the vocabulary id of the byte's
// stand-in character) and the adjacent pair whose merge has the lowest rank is merged, leftmost
// first on ties, until no pair has a merge. That is the rule tokenizers' BPE follows (a min-heap
// on (rank, position)); any order of work that honours it gives the same tokens.
//
// Words of up to kCachedWordBytes are remembered (word -> ids and byte lengths) in a bounded cache
// shared by all threads, split into shards with a lock each.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace deltatune {

// Heterogeneous lookup, so a string_view finds a std::string key without a copy.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenIds = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

class BpeModel {
 public:
  // vocab: byte-level spelling -> id; every byte's stand-in must be there (the loader checks).
  // merges: (left, right) ids in rank order, with the id of their concatenation. A pair listed
  // twice keeps its last rank, as in tokenizers (its hash map keeps the last insert).
  struct Merge {
    int32_t left, right, merged;
  };
  BpeModel(const TokenIds& vocab, const std::vector<Merge>& merges, bool ignore_merges);
  ~BpeModel();

  // Appends the tokens of one pre-token, given as raw bytes, and (when byte_lengths is not null)
  // how many of those bytes each token spells.
  void encode_word(std::string_view bytes, std::vector<int32_t>& ids, std::vector<uint32_t>* byte_lengths) const;

  static constexpr size_t kCachedWordBytes = 256;

 private:
  struct MergeTable;  // open-addressing hash table: (left, right) -> (rank, merged)
  struct Cache;
  void merge(std::string_view bytes, std::vector<int32_t>& ids, std::vector<uint32_t>& lengths) const;

  int32_t byte_ids_[256];
  std::shared_ptr<const MergeTable> merges_;
  bool ignore_merges_;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> whole_words_;  // raw bytes -> id (ignore_merges)
  std::unique_ptr<Cache> cache_;
};

}  // namespace deltatune
