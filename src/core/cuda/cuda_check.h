// The CUDA core: error checks that throw deltatune's Error naming the failed call, and the "is
// there a GPU at all" check. Built only with -DDELTATUNE_CUDA=ON.
#pragma once

#include <cuda_runtime.h>

#include "core/error.h"

namespace deltatune::cuda {

// Throws Error("<call> failed: <CUDA's message> (<file>:<line>)") unless status is cudaSuccess.
void check(cudaError_t status, const char* call, const char* file, int line);

// Throws a clear Error when no usable CUDA GPU is present (no driver, no device, or a driver
// older than the runtime); returns the device count otherwise.
int require_device();

// Whether require_device() would succeed; never throws.
bool device_present();

}  // namespace deltatune::cuda

// Wraps a CUDA runtime call: DT_CUDA(cudaMalloc(&p, n)).
#define DT_CUDA(call) ::deltatune::cuda::check((call), #call, __FILE__, __LINE__)

// After a kernel launch: the launch's own error (bad configuration, too much shared memory).
#define DT_CUDA_LAUNCHED(name) ::deltatune::cuda::check(cudaGetLastError(), name, __FILE__, __LINE__)
