#include "core/arena.h"

#include <algorithm>
#include <cstdlib>

#include "core/error.h"

namespace deltatune {

Arena::Arena(size_t first_block_bytes) : first_block_bytes_(first_block_bytes) {}

void* Arena::alloc_bytes(size_t bytes) {
  bytes = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  if (bytes == 0) bytes = kAlignment;
  // Use the current block if it fits, else the next existing block, else a new one.
  while (current_ < blocks_.size()) {
    Block& b = blocks_[current_];
    if (b.size - b.used >= bytes) {
      void* p = b.memory.get() + b.used;
      b.used += bytes;
      peak_ = std::max(peak_, bytes_in_use());
      return p;
    }
    if (current_ + 1 < blocks_.size()) {
      ++current_;
      blocks_[current_].used = 0;
    } else {
      break;
    }
  }
  const size_t size = std::max(bytes, blocks_.empty() ? first_block_bytes_ : blocks_.back().size * 2);
  void* memory = std::aligned_alloc(kAlignment, size);
  if (!memory) fail("out of memory: the activation arena could not grow by ", size, " bytes (",
                    bytes_in_use(), " bytes in use)");
  blocks_.push_back(Block{{static_cast<std::byte*>(memory), std::free}, size, bytes});
  current_ = blocks_.size() - 1;
  peak_ = std::max(peak_, bytes_in_use());
  return memory;
}

void Arena::reset(Mark m) {
  if (blocks_.empty()) return;
  current_ = m.block;
  blocks_[current_].used = m.offset;
  for (size_t i = current_ + 1; i < blocks_.size(); ++i) blocks_[i].used = 0;
}

size_t Arena::bytes_in_use() const {
  size_t n = 0;
  for (size_t i = 0; i <= current_ && i < blocks_.size(); ++i) n += blocks_[i].used;
  return n;
}

size_t Arena::capacity_bytes() const {
  size_t n = 0;
  for (const Block& b : blocks_) n += b.size;
  return n;
}

}  // namespace deltatune
