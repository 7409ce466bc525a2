// Thread count for OpenMP loops and the BLAS. One setting for the whole process.
#pragma once

namespace deltatune {

// n <= 0 means all cores.
void set_num_threads(int n);
int num_threads();

}  // namespace deltatune
