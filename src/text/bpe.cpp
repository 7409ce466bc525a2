#include "text/bpe.h"

#include <algorithm>
#include <mutex>

#include "core/error.h"
#include "text/byte_level.h"
#include "text/utf8.h"

namespace deltatune {

struct BpeModel::MergeTable {
  struct Slot {
    uint64_t key = kEmpty;
    uint32_t rank = 0;
    int32_t merged = 0;
  };
  static constexpr uint64_t kEmpty = ~uint64_t(0);
  std::vector<Slot> slots;
  uint64_t mask = 0;

  static uint64_t key(int32_t left, int32_t right) { return (uint64_t(uint32_t(left)) << 32) | uint32_t(right); }
  size_t home(uint64_t k) const { return size_t((k * 0x9E3779B97F4A7C15ull) >> 20) & mask; }

  explicit MergeTable(size_t n) {
    size_t capacity = 16;
    while (capacity < 2 * n) capacity *= 2;
    slots.resize(capacity);
    mask = capacity - 1;
  }
  void insert(int32_t left, int32_t right, uint32_t rank, int32_t merged) {
    const uint64_t k = key(left, right);
    for (size_t i = home(k);; i = (i + 1) & mask) {
      if (slots[i].key == kEmpty || slots[i].key == k) {
        slots[i] = {k, rank, merged};
        return;
      }
    }
  }
  const Slot* find(int32_t left, int32_t right) const {
    const uint64_t k = key(left, right);
    for (size_t i = home(k);; i = (i + 1) & mask) {
      if (slots[i].key == k) return &slots[i];
      if (slots[i].key == kEmpty) return nullptr;
    }
  }
};

struct BpeModel::Cache {
  static constexpr size_t kShards = 64;
  static constexpr size_t kWordsPerShard = 1024;  // 65536 words in all
  struct Entry {
    std::vector<int32_t> ids;
    std::vector<uint32_t> lengths;
  };
  struct Shard {
    std::mutex lock;
    std::unordered_map<std::string, Entry, StringHash, std::equal_to<>> words;
  };
  Shard shards[kShards];
  Shard& shard_of(std::string_view word) { return shards[StringHash{}(word) % kShards]; }
};

BpeModel::BpeModel(const TokenIds& vocab, const std::vector<Merge>& merges, bool ignore_merges)
    : merges_(std::make_shared<MergeTable>(merges.size())), ignore_merges_(ignore_merges),
      cache_(std::make_unique<Cache>()) {
  const auto& stand_in = byte_level::byte_to_char();
  for (int b = 0; b < 256; ++b) {
    std::string spelling;
    utf8::append(spelling, stand_in[size_t(b)]);
    const auto it = vocab.find(spelling);
    DT_CHECK(it != vocab.end(), "the vocabulary has no token for byte ", b, " ('", spelling, "')");
    byte_ids_[b] = it->second;
  }
  auto& table = const_cast<MergeTable&>(*merges_);
  for (size_t rank = 0; rank < merges.size(); ++rank)
    table.insert(merges[rank].left, merges[rank].right, uint32_t(rank), merges[rank].merged);
  if (ignore_merges_) {
    std::string bytes;
    for (const auto& [token, id] : vocab) {
      bytes.clear();
      if (byte_level::decode(token, bytes)) whole_words_.emplace(bytes, id);
    }
  }
}

BpeModel::~BpeModel() = default;

namespace {

struct Symbol {
  int32_t id;
  uint32_t length;  // bytes
  int32_t prev, next;  // neighbours in the word; -1 at the ends
};

struct Candidate {  // a pair that may merge: symbol `left` with its next
  uint32_t rank;
  int32_t left;
  int32_t merged;
  // std::*_heap keep the largest on top: invert so the lowest rank, then leftmost, comes first.
  bool operator<(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
};

}  // namespace

void BpeModel::merge(std::string_view bytes, std::vector<int32_t>& ids, std::vector<uint32_t>& lengths) const {
  // Scratch reused across calls on each thread: no allocation once it has grown.
  thread_local std::vector<Symbol> symbols;
  thread_local std::vector<Candidate> heap;
  const int32_t n = int32_t(bytes.size());
  symbols.resize(size_t(n));
  for (int32_t i = 0; i < n; ++i)
    symbols[size_t(i)] = {byte_ids_[static_cast<unsigned char>(bytes[size_t(i)])], 1, i - 1, i + 1 < n ? i + 1 : -1};
  heap.clear();
  const MergeTable& table = *merges_;
  auto consider = [&](int32_t left) {
    const int32_t right = symbols[size_t(left)].next;
    if (right < 0) return;
    if (const auto* m = table.find(symbols[size_t(left)].id, symbols[size_t(right)].id)) {
      heap.push_back({m->rank, left, m->merged});
      std::push_heap(heap.begin(), heap.end());
    }
  };
  for (int32_t i = 0; i + 1 < n; ++i) consider(i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    const Candidate top = heap.back();
    heap.pop_back();
    Symbol& left = symbols[size_t(top.left)];
    // Stale entries: the left symbol was absorbed, or either side changed since it was queued.
    if (left.length == 0 || left.next < 0) continue;
    Symbol& right = symbols[size_t(left.next)];
    const auto* m = table.find(left.id, right.id);
    if (!m || m->merged != top.merged || m->rank != top.rank) continue;
    left.id = top.merged;
    left.length += right.length;
    right.length = 0;
    left.next = right.next;
    if (left.next >= 0) symbols[size_t(left.next)].prev = top.left;
    if (left.prev >= 0) consider(left.prev);
    consider(top.left);
  }
  for (int32_t i = 0; i >= 0 && i < n; i = symbols[size_t(i)].next) {
    ids.push_back(symbols[size_t(i)].id);
    lengths.push_back(symbols[size_t(i)].length);
  }
}

void BpeModel::encode_word(std::string_view bytes, std::vector<int32_t>& ids, std::vector<uint32_t>* byte_lengths) const {
  if (bytes.empty()) return;
  if (bytes.size() == 1) {
    ids.push_back(byte_ids_[static_cast<unsigned char>(bytes[0])]);
    if (byte_lengths) byte_lengths->push_back(1);
    return;
  }
  if (ignore_merges_) {
    const auto it = whole_words_.find(bytes);
    if (it != whole_words_.end()) {
      ids.push_back(it->second);
      if (byte_lengths) byte_lengths->push_back(uint32_t(bytes.size()));
      return;
    }
  }
  auto emit = [&](const std::vector<int32_t>& word_ids, const std::vector<uint32_t>& word_lengths) {
    ids.insert(ids.end(), word_ids.begin(), word_ids.end());
    if (byte_lengths) byte_lengths->insert(byte_lengths->end(), word_lengths.begin(), word_lengths.end());
  };
  thread_local Cache::Entry scratch;
  scratch.ids.clear();
  scratch.lengths.clear();
  if (bytes.size() > kCachedWordBytes) {
    merge(bytes, scratch.ids, scratch.lengths);
    emit(scratch.ids, scratch.lengths);
    return;
  }
  Cache::Shard& shard = cache_->shard_of(bytes);
  {
    std::lock_guard<std::mutex> hold(shard.lock);
    const auto it = shard.words.find(bytes);
    if (it != shard.words.end()) {
      emit(it->second.ids, it->second.lengths);
      return;
    }
  }
  merge(bytes, scratch.ids, scratch.lengths);
  emit(scratch.ids, scratch.lengths);
  std::lock_guard<std::mutex> hold(shard.lock);
  // Bounded: a full shard starts over rather than growing (a long run meets new words forever).
  if (shard.words.size() >= Cache::kWordsPerShard) shard.words.clear();
  shard.words.try_emplace(std::string(bytes), scratch);
}

}  // namespace deltatune
