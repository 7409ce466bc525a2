#include "core/tensor.h"

#include <cstring>

namespace deltatune {

Tensor Tensor::contiguous(void* data, DType dtype, std::span<const int64_t> shape, Device device) {
  DT_CHECK(shape.size() <= size_t(kMaxDims), "tensor of ", shape.size(), " dimensions: at most ",
           kMaxDims, " are supported");
  Tensor t;
  t.data = data;
  t.dtype = dtype;
  t.device = device;
  t.ndim = int(shape.size());
  int64_t stride = 1;
  for (int i = t.ndim - 1; i >= 0; --i) {
    t.shape[size_t(i)] = shape[size_t(i)];
    t.strides[size_t(i)] = stride;
    stride *= shape[size_t(i)];
  }
  return t;
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int i = 0; i < ndim; ++i) n *= shape[size_t(i)];
  return n;
}

bool Tensor::is_contiguous() const {
  int64_t stride = 1;
  for (int i = ndim - 1; i >= 0; --i) {
    if (shape[size_t(i)] != 1 && strides[size_t(i)] != stride) return false;
    stride *= shape[size_t(i)];
  }
  return true;
}

std::string shape_str(std::span<const int64_t> shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

std::string Tensor::shape_str() const {
  return deltatune::shape_str(std::span<const int64_t>(shape.data(), size_t(ndim)));
}

HostTensor::HostTensor(DType dtype, std::span<const int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    DT_CHECK(d >= 0, "negative dimension in shape ", deltatune::shape_str(shape));
    n *= d;
  }
  const size_t bytes = dtype_bytes(dtype, n);
  storage_.reset(new std::byte[bytes == 0 ? 1 : bytes]());
  view_ = Tensor::contiguous(storage_.get(), dtype, shape);
}

}  // namespace deltatune
