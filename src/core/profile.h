// Wall-clock time per named region, for finding where a pass spends its time. Off unless the
// environment sets DELTATUNE_PROFILE=1; then the totals are printed to stderr at exit. Regions are
// entered from serial code only (around whole ops, never inside a parallel loop).
#pragma once

#include <chrono>

namespace deltatune {

bool profiling_enabled();
void profile_add(const char* region, double seconds);

class ProfileScope {
 public:
  explicit ProfileScope(const char* region) : region_(profiling_enabled() ? region : nullptr) {
    if (region_) start_ = std::chrono::steady_clock::now();
  }
  ~ProfileScope() {
    if (region_) profile_add(region_, std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
  }
  ProfileScope(const ProfileScope&) = delete;
  ProfileScope& operator=(const ProfileScope&) = delete;

 private:
  const char* region_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace deltatune

#define DT_PROFILE_CONCAT2(a, b) a##b
#define DT_PROFILE_CONCAT(a, b) DT_PROFILE_CONCAT2(a, b)
#define DT_PROFILE(region) ::deltatune::ProfileScope DT_PROFILE_CONCAT(dt_profile_, __LINE__)(region)
