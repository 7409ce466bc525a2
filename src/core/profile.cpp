#include "core/profile.h"

#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>

namespace deltatune {

namespace {

struct Totals {
  std::mutex mutex;
  std::map<std::string, std::pair<double, long>> by_region;
  ~Totals() {
    if (by_region.empty()) return;
    double all = 0;
    for (const auto& [name, t] : by_region) all += t.first;
    std::fprintf(stderr, "profile (DELTATUNE_PROFILE=1): region, seconds, calls, ms a call\n");
    for (const auto& [name, t] : by_region)
      std::fprintf(stderr, "  %-36s %9.3f s %7ld %10.4f ms\n", name.c_str(), t.first, t.second,
                   t.second ? 1e3 * t.first / double(t.second) : 0.0);
  }
};

Totals& totals() {
  static Totals t;
  return t;
}

}  // namespace

bool profiling_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("DELTATUNE_PROFILE");
    return v && std::string(v) == "1";
  }();
  return enabled;
}

void profile_add(const char* region, double seconds) {
  Totals& t = totals();
  std::lock_guard<std::mutex> lock(t.mutex);
  auto& entry = t.by_region[region];
  entry.first += seconds;
  entry.second += 1;
}

}  // namespace deltatune
