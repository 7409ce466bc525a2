// Arena: bump allocation for activations and scratch. A step takes what it needs and gives it all
// back with reset(mark); nothing is freed one by one, so hot loops never call malloc. Memory comes
// in large blocks that are never moved (earlier pointers stay valid when a block is added); the
// peak is recorded so a run can size its first block to need no second one.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

namespace deltatune {

class Arena {
 public:
  static constexpr size_t kAlignment = 64;

  explicit Arena(size_t first_block_bytes = size_t(64) << 20);
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  template <class T>
  T* alloc(size_t count) {
    return static_cast<T*>(alloc_bytes(count * sizeof(T)));
  }
  void* alloc_bytes(size_t bytes);

  // A position to come back to: everything allocated after mark() is released by reset(mark).
  struct Mark {
    size_t block;
    size_t offset;
  };
  Mark mark() const { return {current_, blocks_.empty() ? 0 : blocks_[current_].used}; }
  void reset(Mark m);
  void reset() { reset(Mark{0, 0}); }

  size_t bytes_in_use() const;
  size_t peak_bytes() const { return peak_; }
  size_t capacity_bytes() const;

 private:
  struct Block {
    std::unique_ptr<std::byte, void (*)(void*)> memory;
    size_t size;
    size_t used;
  };
  std::vector<Block> blocks_;
  size_t current_ = 0;
  size_t first_block_bytes_;
  size_t peak_ = 0;
};

}  // namespace deltatune
