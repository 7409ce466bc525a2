#include "core/cuda/device_arena.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "core/cuda/cuda_check.h"

namespace deltatune::cuda {

Memory::Memory(size_t bytes, const Target& target) : bytes_(bytes), on_host_(target.emulate) {
  if (bytes == 0) return;
  if (on_host_) {
    data_ = std::aligned_alloc(DeviceArena::kAlignment,
                               (bytes + DeviceArena::kAlignment - 1) / DeviceArena::kAlignment *
                                   DeviceArena::kAlignment);
    DT_CHECK(data_, "out of host memory: ", bytes, " bytes for the emulated GPU");
    return;
  }
  const cudaError_t status = cudaMalloc(&data_, bytes);
  if (status != cudaSuccess) {
    cudaGetLastError();
    size_t free_bytes = 0, total_bytes = 0;
    cudaMemGetInfo(&free_bytes, &total_bytes);
    fail("out of GPU memory: could not allocate ", bytes >> 20, " MiB (", free_bytes >> 20,
         " MiB free of ", total_bytes >> 20, " MiB); lower micro_batch_size or sequence_len, or "
         "keep gradient_checkpointing on");
  }
}

Memory::Memory(Memory&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)), bytes_(std::exchange(o.bytes_, 0)),
      on_host_(o.on_host_) {}

Memory& Memory::operator=(Memory&& o) noexcept {
  std::swap(data_, o.data_);
  std::swap(bytes_, o.bytes_);
  std::swap(on_host_, o.on_host_);
  return *this;
}

Memory::~Memory() {
  if (!data_) return;
  if (on_host_)
    std::free(data_);
  else
    cudaFree(data_);  // no throw from a destructor
}

DeviceArena::DeviceArena(const Target& target, size_t first_block_bytes)
    : target_(target), first_block_bytes_(first_block_bytes) {}

void* DeviceArena::alloc_bytes(size_t bytes) {
  bytes = std::max<size_t>((bytes + kAlignment - 1) / kAlignment * kAlignment, kAlignment);
  while (current_ < blocks_.size()) {
    Block& b = blocks_[current_];
    if (b.memory.bytes() - b.used >= bytes) {
      void* p = static_cast<char*>(b.memory.data()) + b.used;
      b.used += bytes;
      peak_ = std::max(peak_, bytes_in_use());
      return p;
    }
    if (current_ + 1 == blocks_.size()) break;
    ++current_;
    blocks_[current_].used = 0;
  }
  const size_t size =
      std::max(bytes, blocks_.empty() ? first_block_bytes_ : blocks_.back().memory.bytes() * 2);
  blocks_.push_back(Block{Memory(size, target_), bytes});
  current_ = blocks_.size() - 1;
  peak_ = std::max(peak_, bytes_in_use());
  return blocks_.back().memory.data();
}

void DeviceArena::reset(Mark m) {
  if (blocks_.empty()) return;
  current_ = m.block;
  blocks_[current_].used = m.offset;
  for (size_t i = current_ + 1; i < blocks_.size(); ++i) blocks_[i].used = 0;
}

void DeviceArena::consolidate() {
  DT_CHECK(bytes_in_use() == 0, "DeviceArena::consolidate with ", bytes_in_use(), " bytes in use");
  if (blocks_.size() <= 1) return;
  synchronize(target_);
  blocks_.clear();
  current_ = 0;
  blocks_.push_back(Block{Memory(peak_, target_), 0});
}

size_t DeviceArena::bytes_in_use() const {
  size_t n = 0;
  for (size_t i = 0; i <= current_ && i < blocks_.size(); ++i) n += blocks_[i].used;
  return n;
}

size_t DeviceArena::capacity_bytes() const {
  size_t n = 0;
  for (const Block& b : blocks_) n += b.memory.bytes();
  return n;
}

void copy_to_target(void* dst, const void* src, size_t bytes, const Target& target) {
  if (bytes == 0) return;
  if (target.emulate) {
    std::memcpy(dst, src, bytes);
    return;
  }
  // From pageable memory the copy is staged; waiting makes the host buffer free to reuse.
  DT_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, target.stream));
  DT_CUDA(cudaStreamSynchronize(target.stream));
}

void copy_to_host(void* dst, const void* src, size_t bytes, const Target& target) {
  if (bytes == 0) return;
  if (target.emulate) {
    std::memcpy(dst, src, bytes);
    return;
  }
  DT_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, target.stream));
  DT_CUDA(cudaStreamSynchronize(target.stream));
}

void copy_within(void* dst, const void* src, size_t bytes, const Target& target) {
  if (bytes == 0) return;
  if (target.emulate) {
    std::memmove(dst, src, bytes);
    return;
  }
  DT_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, target.stream));
}

void fill_zero(void* dst, size_t bytes, const Target& target) {
  if (bytes == 0) return;
  if (target.emulate) {
    std::memset(dst, 0, bytes);
    return;
  }
  DT_CUDA(cudaMemsetAsync(dst, 0, bytes, target.stream));
}

void synchronize(const Target& target) {
  if (!target.emulate) DT_CUDA(cudaStreamSynchronize(target.stream));
}

}  // namespace deltatune::cuda
