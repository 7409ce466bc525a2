#include "core/threads.h"

#include <omp.h>

extern "C" void openblas_set_num_threads(int);

namespace deltatune {

namespace {
int g_threads = 1;
}

void set_num_threads(int n) {
  if (n <= 0) n = omp_get_num_procs();
  g_threads = n;
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}

int num_threads() { return g_threads; }

}  // namespace deltatune
