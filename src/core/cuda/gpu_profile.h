// DELTATUNE_PROFILE=1 on the GPU: the time of each kernel launch and cuBLAS product, from a pair
// of events around it on its stream, added to the profile's region (core/profile.h). The events
// are read back later (gpu_profile_flush), never right after the call: waiting after each call
// leaves the GPU idle while the host issues the next one, and the next interval then holds that
// host time too (as much as the kernel itself for small products). Off: no events at all.
#pragma once

#include <cuda_runtime.h>

namespace deltatune::cuda {

struct GpuProfileMark {
  cudaEvent_t start = nullptr;  // null when profiling is off
};

GpuProfileMark gpu_profile_begin(cudaStream_t stream);
// `region` must outlive the flush (a string literal).
void gpu_profile_end(const char* region, GpuProfileMark mark, cudaStream_t stream);
// Waits for the recorded events and adds their times to the profile. Called at the end of a
// training step and of a benchmark, and by gpu_profile_end every few thousand calls.
void gpu_profile_flush();

}  // namespace deltatune::cuda
