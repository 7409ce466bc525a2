// Device memory and streams owned RAII-style, and plain host <-> device copies. Built only with
// -DDELTATUNE_CUDA=ON.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <utility>
#include <vector>

#include "core/cuda/cuda_check.h"

namespace deltatune::cuda {

// `count` elements of T in device memory (cudaMalloc: never managed memory); freed on destruction.
template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t count) : count_(count) {
    if (count > 0) DT_CUDA(cudaMalloc(reinterpret_cast<void**>(&data_), count * sizeof(T)));
  }
  // Allocates and copies host data in.
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) { upload(host); }
  DeviceBuffer(DeviceBuffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), count_(std::exchange(o.count_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(count_, o.count_);
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (data_) cudaFree(data_);  // no throw from a destructor; a failed free leaks at worst
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  size_t size() const { return count_; }
  size_t bytes() const { return count_ * sizeof(T); }

  // upload and download are blocking for the whole device, like fill_bytes: cudaMemcpy from
  // pageable memory may return before its DMA lands, and it is not ordered with work on
  // non-blocking streams. For setup and tests, not for hot loops.
  void upload(const std::vector<T>& host) {
    DT_CHECK(host.size() == count_, "DeviceBuffer::upload: ", host.size(), " elements into ",
             count_);
    if (!count_) return;
    DT_CUDA(cudaDeviceSynchronize());
    DT_CUDA(cudaMemcpy(data_, host.data(), bytes(), cudaMemcpyHostToDevice));
    DT_CUDA(cudaDeviceSynchronize());
  }
  std::vector<T> download() const {
    std::vector<T> host(count_);
    if (!count_) return host;
    DT_CUDA(cudaDeviceSynchronize());
    DT_CUDA(cudaMemcpy(host.data(), data_, bytes(), cudaMemcpyDeviceToHost));
    return host;
  }
  // Sets every byte to `byte` (tests poison outputs with it to prove every element is written).
  // Blocking: waits for all work on the device before and after. cudaMemset runs on the legacy
  // default stream, which does not wait for non-blocking streams (Stream below) nor they for it:
  // a poisoning memset once overlapped a forward pass and wrote NaN into its workspace.
  void fill_bytes(int byte) {
    if (!count_) return;
    DT_CUDA(cudaDeviceSynchronize());
    DT_CUDA(cudaMemset(data_, byte, bytes()));
    DT_CUDA(cudaDeviceSynchronize());
  }

 private:
  T* data_ = nullptr;
  size_t count_ = 0;
};

// A non-blocking stream, destroyed with its owner.
class Stream {
 public:
  Stream() { DT_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  ~Stream() {
    if (stream_) cudaStreamDestroy(stream_);
  }
  cudaStream_t get() const { return stream_; }
  void synchronize() const { DT_CUDA(cudaStreamSynchronize(stream_)); }

 private:
  cudaStream_t stream_ = nullptr;
};

}  // namespace deltatune::cuda
