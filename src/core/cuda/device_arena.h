// Memory of the GPU model path: owned allocations, a bump arena for a step's activations (the GPU
// twin of core/arena.h), and copies. Every piece takes a cuda::Target: on a stream the memory is
// the GPU's (cudaMalloc, never managed memory) and copies are queued on that stream; under
// Target::host_emulation() the memory is the host's and copies are memcpy, so the whole model path
// runs on a machine without a GPU (tests/cuda_emulated). Built only with -DDELTATUNE_CUDA=ON.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/cuda/target.h"

namespace deltatune::cuda {

// `bytes` of memory where `target` runs kernels; freed on destruction. Move-only.
class Memory {
 public:
  Memory() = default;
  Memory(size_t bytes, const Target& target);
  Memory(Memory&& o) noexcept;
  Memory& operator=(Memory&& o) noexcept;
  Memory(const Memory&) = delete;
  Memory& operator=(const Memory&) = delete;
  ~Memory();

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  template <class T>
  T* as() const {
    return static_cast<T*>(data_);
  }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  bool on_host_ = false;
};

// Bump allocation for a step's activations and scratch: alloc, then reset(mark) gives back
// everything allocated since the mark. Blocks are never moved (earlier pointers stay valid when a
// block is added). The first step grows the arena as it needs; consolidate() then replaces the
// blocks by one block of the peak, so later steps allocate nothing and waste nothing.
class DeviceArena {
 public:
  static constexpr size_t kAlignment = 256;  // cuBLAS and the 16-byte vector loads like it

  explicit DeviceArena(const Target& target, size_t first_block_bytes = size_t(64) << 20);
  DeviceArena(const DeviceArena&) = delete;
  DeviceArena& operator=(const DeviceArena&) = delete;

  template <class T>
  T* alloc(int64_t count) {
    return static_cast<T*>(alloc_bytes(size_t(count) * sizeof(T)));
  }
  void* alloc_bytes(size_t bytes);

  struct Mark {
    size_t block;
    size_t offset;
  };
  Mark mark() const { return {current_, blocks_.empty() ? 0 : blocks_[current_].used}; }
  void reset(Mark m);
  // Only when nothing is in use: one block of the peak size instead of several (waits for the
  // target's work first: the old blocks may still be read by queued kernels).
  void consolidate();

  const Target& target() const { return target_; }
  size_t bytes_in_use() const;
  size_t peak_bytes() const { return peak_; }
  size_t capacity_bytes() const;

 private:
  struct Block {
    Memory memory;
    size_t used;
  };
  Target target_;
  std::vector<Block> blocks_;
  size_t current_ = 0;
  size_t first_block_bytes_;
  size_t peak_ = 0;
};

// Host memory -> target memory. Returns when the host buffer may be reused.
void copy_to_target(void* dst, const void* src, size_t bytes, const Target& target);
// Target memory -> host memory; waits for the target's queued work first.
void copy_to_host(void* dst, const void* src, size_t bytes, const Target& target);
// Within the target's memory, queued.
void copy_within(void* dst, const void* src, size_t bytes, const Target& target);
void fill_zero(void* dst, size_t bytes, const Target& target);
// Waits until the target's queued work is done.
void synchronize(const Target& target);

template <class T>
void upload(T* dst, const std::vector<T>& src, const Target& target) {
  copy_to_target(dst, src.data(), src.size() * sizeof(T), target);
}
template <class T>
std::vector<T> download(const T* src, size_t count, const Target& target) {
  std::vector<T> out(count);
  copy_to_host(out.data(), src, count * sizeof(T), target);
  return out;
}

}  // namespace deltatune::cuda
