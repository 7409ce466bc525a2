// Where the kernels of a CUDA op run. The ops of src/ops/*_cuda.h take one as their last argument:
//   - a stream (implicitly converted): launched on the GPU, queued on that stream; every pointer is
//     a device pointer and the call returns before the work is done;
//   - Target::host_emulation(): the same kernel bodies run on the host, one thread per block
//     (src/ops/cuda/block_tile.cuh), on host pointers, synchronously. Slow; no GPU needed. This is
//     how CI, which has nvcc but no GPU, checks the kernels' indexing and equations
//     (tests/cuda_emulated).
#pragma once

#include <cuda_runtime.h>

namespace deltatune::cuda {

struct Target {
  cudaStream_t stream = nullptr;
  bool emulate = false;

  Target(cudaStream_t s) : stream(s) {}  // NOLINT: a stream is a target
  static Target host_emulation() {
    Target t(nullptr);
    t.emulate = true;
    return t;
  }
};

}  // namespace deltatune::cuda
