#include "core/cuda/cuda_check.h"

namespace deltatune::cuda {

void check(cudaError_t status, const char* call, const char* file, int line) {
  if (status == cudaSuccess) return;
  fail(call, " failed: ", cudaGetErrorName(status), ": ", cudaGetErrorString(status), " (", file,
       ":", line, ")");
}

namespace {
// cudaGetDeviceCount reports "no driver" and "no device" as errors of its own; both mean the
// same thing to a user: this machine cannot run the CUDA path.
cudaError_t count_devices(int* count) {
  *count = 0;
  const cudaError_t status = cudaGetDeviceCount(count);
  if (status != cudaSuccess) cudaGetLastError();  // clear it, so later calls do not see it
  return status;
}
}  // namespace

int require_device() {
  int count = 0;
  const cudaError_t status = count_devices(&count);
  if (status != cudaSuccess)
    fail("no CUDA GPU present: cudaGetDeviceCount says ", cudaGetErrorName(status), " (",
         cudaGetErrorString(status), "); run on a machine with an NVIDIA GPU and driver, or use "
         "the CPU path");
  if (count == 0) fail("no CUDA GPU present: the driver reports no devices");
  return count;
}

bool device_present() {
  int count = 0;
  return count_devices(&count) == cudaSuccess && count > 0;
}

}  // namespace deltatune::cuda
