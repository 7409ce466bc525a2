#!/usr/bin/env bash
# make test-cuda: on a machine with an NVIDIA GPU, builds with CUDA into build/, runs the CUDA tests
# (ctest label `cuda`: each kernel against the CPU reference) and then the GPU benchmarks
# (scripts/bench_gpu.sh). CI has no GPU and runs only the `cpu` label (scripts/test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh -DDELTATUNE_CUDA=ON
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
ctest --test-dir build --output-on-failure -L cuda
scripts/bench_gpu.sh
