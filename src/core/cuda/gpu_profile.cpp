#include "core/cuda/gpu_profile.h"

#include <mutex>
#include <vector>

#include "core/cuda/cuda_check.h"
#include "core/profile.h"

namespace deltatune::cuda {

namespace {

struct Pending {
  const char* region;
  cudaEvent_t start, stop;
};

constexpr size_t kFlushAt = 4096;

std::mutex& pending_mutex() {
  static std::mutex m;
  return m;
}
std::vector<Pending>& pending() {
  static std::vector<Pending> p;
  return p;
}

}  // namespace

GpuProfileMark gpu_profile_begin(cudaStream_t stream) {
  if (!profiling_enabled()) return {};
  GpuProfileMark mark;
  DT_CUDA(cudaEventCreate(&mark.start));
  DT_CUDA(cudaEventRecord(mark.start, stream));
  return mark;
}

void gpu_profile_end(const char* region, GpuProfileMark mark, cudaStream_t stream) {
  if (!mark.start) return;
  cudaEvent_t stop = nullptr;
  DT_CUDA(cudaEventCreate(&stop));
  DT_CUDA(cudaEventRecord(stop, stream));
  size_t count = 0;
  {
    std::lock_guard<std::mutex> lock(pending_mutex());
    pending().push_back({region, mark.start, stop});
    count = pending().size();
  }
  if (count >= kFlushAt) gpu_profile_flush();
}

void gpu_profile_flush() {
  std::vector<Pending> done;
  {
    std::lock_guard<std::mutex> lock(pending_mutex());
    done.swap(pending());
  }
  for (const Pending& p : done) {
    DT_CUDA(cudaEventSynchronize(p.stop));
    float ms = 0;
    DT_CUDA(cudaEventElapsedTime(&ms, p.start, p.stop));
    profile_add(p.region, ms * 1e-3);
    DT_CUDA(cudaEventDestroy(p.start));
    DT_CUDA(cudaEventDestroy(p.stop));
  }
}

}  // namespace deltatune::cuda
