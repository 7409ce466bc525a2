// Tensor: a view of memory someone else owns (a mapped checkpoint, an arena, a HostTensor):
// pointer, element type, shape, strides in elements, and the device the memory lives on.
// HostTensor: owned, contiguous host memory with a view, for inputs, outputs and tests.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"

namespace deltatune {

enum class Device : uint8_t { CPU, CUDA };

constexpr int kMaxDims = 6;

struct Tensor {
  void* data = nullptr;
  DType dtype = DType::F32;
  Device device = Device::CPU;
  int ndim = 0;
  std::array<int64_t, kMaxDims> shape{};
  std::array<int64_t, kMaxDims> strides{};  // in elements

  // A contiguous (row-major) view of `data`.
  static Tensor contiguous(void* data, DType dtype, std::span<const int64_t> shape,
                           Device device = Device::CPU);
  static Tensor contiguous(void* data, DType dtype, std::initializer_list<int64_t> shape,
                           Device device = Device::CPU) {
    return contiguous(data, dtype, std::span<const int64_t>(shape.begin(), shape.size()), device);
  }

  int64_t numel() const;
  size_t nbytes() const { return dtype_bytes(dtype, numel()); }
  bool is_contiguous() const;
  int64_t dim(int i) const { return shape[size_t(i < 0 ? i + ndim : i)]; }
  std::vector<int64_t> shape_vector() const { return {shape.begin(), shape.begin() + ndim}; }
  // "[2, 3]"
  std::string shape_str() const;

  // Typed pointer; throws if the element type is not T.
  template <class T>
  T* ptr() const {
    DT_CHECK(dtype == dtype_of<T>(), "tensor holds ", dtype_name(dtype), ", expected ",
             dtype_name(dtype_of<T>()));
    return static_cast<T*>(data);
  }
};

std::string shape_str(std::span<const int64_t> shape);

class HostTensor {
 public:
  HostTensor() = default;
  HostTensor(DType dtype, std::span<const int64_t> shape);
  HostTensor(DType dtype, std::initializer_list<int64_t> shape)
      : HostTensor(dtype, std::span<const int64_t>(shape.begin(), shape.size())) {}

  const Tensor& view() const { return view_; }
  template <class T>
  T* ptr() const {
    return view_.ptr<T>();
  }
  int64_t numel() const { return view_.numel(); }
  int64_t dim(int i) const { return view_.dim(i); }
  DType dtype() const { return view_.dtype; }

 private:
  std::shared_ptr<std::byte[]> storage_;
  Tensor view_;
};

}  // namespace deltatune
