#!/usr/bin/env bash
# The GPU benchmarks, in one call: the gated delta rule forward + backward at 4096 tokens,
# dk = dv = 128, bf16, with 16/16 and 16/32 key/value heads (bench/cuda/delta_rule_cuda_bench),
# then its peer, flash-linear-attention's chunk_gated_delta_rule (scripts/bench_fla_delta_rule.py),
# when python3 can import fla (put a checkout on PYTHONPATH). docs/performance.md records the
# figures. BUILD_DIR (default build) holds the binaries.
# Then LoRA training of the whole model (bench/cuda/train_step_cuda_bench): a random model of the
# real 0.8B shape in bf16 (the Model::random that `deltatune make-model --preset 0.8b --dtype bf16`
# writes), one packed row of 4096 tokens, LoRA r=16 on every linear layer, micro-batch 1, gradient
# checkpointing on (and off, for the memory it saves): tokens/s and GPU memory as a table.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
"$build"/bench/delta_rule_cuda_bench 4096 16 16 128 20
"$build"/bench/delta_rule_cuda_bench 4096 16 32 128 20
# Where the time goes: each kernel's GPU time, summed over 3 forward + backward calls.
DELTATUNE_PROFILE=1 "$build"/bench/delta_rule_cuda_bench 4096 16 16 128 2 1 16
"$build"/bench/train_step_cuda_bench 0.8b 4096 5 16 1
"$build"/bench/train_step_cuda_bench 0.8b 4096 5 16 0
# Where a training step's time goes: each kernel's and cuBLAS product's GPU time over 3 steps.
DELTATUNE_PROFILE=1 "$build"/bench/train_step_cuda_bench 0.8b 4096 1 16 1
if python3 -c "import fla" 2>/dev/null; then
  python3 scripts/bench_fla_delta_rule.py 4096 16 128
else
  echo "peer: flash-linear-attention is not importable here: not measured"
fi
