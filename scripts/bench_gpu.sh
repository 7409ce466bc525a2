#!/usr/bin/env bash
# The GPU benchmarks, in one call: the gated delta rule forward + backward at 4096 tokens,
# dk = dv = 128, bf16, with 16/16 and 16/32 key/value heads (bench/cuda/delta_rule_cuda_bench),
# then its peer, flash-linear-attention's chunk_gated_delta_rule (scripts/bench_fla_delta_rule.py),
# when python3 can import fla (put a checkout on PYTHONPATH). docs/performance.md records the
# figures. BUILD_DIR (default build) holds the binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
"$build"/bench/delta_rule_cuda_bench 4096 16 16 128 20
"$build"/bench/delta_rule_cuda_bench 4096 16 32 128 20
# Where the time goes: each kernel's GPU time, summed over 3 forward + backward calls.
DELTATUNE_PROFILE=1 "$build"/bench/delta_rule_cuda_bench 4096 16 16 128 2 1 16
if python3 -c "import fla" 2>/dev/null; then
  python3 scripts/bench_fla_delta_rule.py 4096 16 128
else
  echo "peer: flash-linear-attention is not importable here: not measured"
fi
