// What the checks of the CUDA ops share between the GPU tests (tests/cuda) and the host emulation
// of the same kernels (tests/cuda_emulated): where buffers live, and how errors are judged and
// reported. A check is written once, templated on the memory:
//   DeviceMemory  device buffers, kernels launched on a non-blocking stream;
//   HostMemory    host vectors, cuda::Target::host_emulation().
// Outputs and workspaces start as all-ones bytes (NaN in float and bf16): every element must be
// written, and nothing may read scratch that no kernel wrote.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "core/cuda/device_buffer.h"
#include "core/cuda/target.h"
#include "cuda/elements.h"
#include "test_util.h"

namespace deltatune::testing_util {

struct HostMemory {
  template <class T>
  using Buffer = std::vector<T>;
  static constexpr const char* kName = "emulated";
  cuda::Target target() const { return cuda::Target::host_emulation(); }
  template <class T>
  Buffer<T> upload(const std::vector<T>& x) const {
    return x;
  }
  template <class T>
  std::vector<T> download(const Buffer<T>& x) const {
    return x;
  }
  template <class T>
  Buffer<T> poisoned(size_t n) const {
    std::vector<T> x(n);
    if (n) std::memset(static_cast<void*>(x.data()), 0xff, n * sizeof(T));
    return x;
  }
};

struct DeviceMemory {
  template <class T>
  using Buffer = cuda::DeviceBuffer<T>;
  static constexpr const char* kName = "GPU";
  cuda::Stream stream;
  cuda::Target target() const { return stream.get(); }
  template <class T>
  Buffer<T> upload(const std::vector<T>& x) const {
    return Buffer<T>(x);
  }
  // Waits for every stream of the device (DeviceBuffer::download), so for the kernels too.
  template <class T>
  std::vector<T> download(const Buffer<T>& x) const {
    return x.download();
  }
  template <class T>
  Buffer<T> poisoned(size_t n) const {
    Buffer<T> x(n);
    x.fill_bytes(0xff);
    return x;
  }
};

// The worst relative error (max |got − want| / max |want|) of each named output over a test,
// printed at its end so the log records the margins.
struct WorstErrors {
  std::string label;
  std::vector<std::pair<std::string, double>> worst;
  explicit WorstErrors(std::string l) : label(std::move(l)) {}
  void record(const std::string& what, double e) {
    for (auto& [name, value] : worst)
      if (name == what) {
        value = std::max(value, e);
        return;
      }
    worst.emplace_back(what, e);
  }
  ~WorstErrors() {
    std::string line = "[ measured ] " + label + ":";
    char text[64];
    for (const auto& [name, value] : worst) {
      std::snprintf(text, sizeof text, " %s %.2e", name.c_str(), value);
      line += text;
    }
    std::printf("%s\n", line.c_str());
  }
};

template <class A>
void expect_close(const std::string& what, const std::vector<A>& got,
                  const std::vector<double>& want, double tolerance, WorstErrors& worst) {
  ASSERT_EQ(got.size(), want.size()) << what;
  if (want.empty()) return;
  const std::vector<double> g = to_doubles(got);
  const RelativeError e = relative_error(g.data(), want.data(), want.size());
  worst.record(what, e.value);
  EXPECT_LE(e.value, tolerance) << what << ": " << describe(e);
}

// got and want hold the same bits, element by element (for kernels that must reproduce another
// path exactly: a fused pass against the passes it replaces).
template <class A>
void expect_same_bits(const char* what, const std::vector<A>& got, const std::vector<A>& want) {
  ASSERT_EQ(got.size(), want.size()) << what;
  size_t differ = 0;
  for (size_t i = 0; i < got.size(); ++i) differ += std::memcmp(&got[i], &want[i], sizeof(A)) != 0;
  EXPECT_EQ(differ, 0u) << what << ": elements whose bits differ";
}

// Rows of `cols` values read out of a buffer whose rows are `ld` apart.
template <class A>
std::vector<A> dense_rows(const std::vector<A>& x, int64_t rows, int64_t cols, int64_t ld) {
  std::vector<A> y(size_t(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) y[size_t(r * cols + c)] = x[size_t(r * ld + c)];
  return y;
}

}  // namespace deltatune::testing_util
