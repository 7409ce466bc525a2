// The GPU tests skip, rather than fail, where no CUDA GPU is present: CI builds test_cuda (nvcc,
// no GPU) and the suite may be run there by hand.
#pragma once

#include <gtest/gtest.h>

#include "core/cuda/cuda_check.h"

#define DT_REQUIRE_GPU() \
  if (!::deltatune::cuda::device_present()) GTEST_SKIP() << "no CUDA GPU present"
