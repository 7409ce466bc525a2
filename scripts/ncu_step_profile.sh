#!/usr/bin/env bash
# Exact per-kernel GPU times of one LoRA training step on the GPU (no overlap, no host gaps):
# Nsight Compute times every kernel of the first timed step of train_step_cuda_bench
# (DELTATUNE_PROFILER_RANGE=1 marks it), then scripts/ncu_step_profile.py sums them by kernel.
# Usage: scripts/ncu_step_profile.sh PRESET [CSV]  (BUILD_DIR as in bench_gpu.sh; ncu on PATH or in
# /usr/local/cuda/bin). Leaves the clocks alone (--clock-control none: the device README).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
preset=${1:-4b}
csv=${2:-$(mktemp)}
ncu=$(command -v ncu || echo /usr/local/cuda/bin/ncu)
DELTATUNE_PROFILER_RANGE=1 "$ncu" --profile-from-start off --clock-control none --csv \
  --metrics gpu__time_duration.sum "$build"/bench/train_step_cuda_bench "$preset" 4096 1 16 1 one \
  >"$csv"
python3 scripts/ncu_step_profile.py "$csv"
