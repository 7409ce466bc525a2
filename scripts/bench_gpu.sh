#!/usr/bin/env bash
# The GPU benchmark of issue 7 item 5, in one call, ending in one table (scripts/gpu_bench_table.py):
# LoRA training of random models of the real 0.8B, 2B and 4B shapes in bf16, 4096 tokens a row,
# LoRA r=16 on every linear layer, micro-batch 1, gradient checkpointing on:
#   ours  bench/cuda/train_step_cuda_bench (one sequence of 4096 tokens, then a packed row),
#   peer  transformers + PEFT (scripts/bench_peft_baseline.py), one sequence, sdpa, with
#         flash-linear-attention's chunk_gated_delta_rule when python3 can import fla (put a
#         checkout on PYTHONPATH), and with transformers' torch path (fla hidden);
# tokens/s, peak GPU memory allocated, model-FLOPs utilisation against the bf16 matrix rate measured
# in the same run, and the ratios. docs/performance.md records the figures.
#
# BUILD_DIR (default build) holds the binaries; BENCH_LOG (default a temporary file) collects the
# output the table is made from. BENCH_KERNELS=1 first runs the kernel benchmarks as well: the
# gated delta rule forward + backward at 4096 tokens, dk = dv = 128, with 16/16 and 16/32 key/value
# heads (bench/cuda/delta_rule_cuda_bench), its per-kernel profile, its peer (flash-linear-attention's
# chunk_gated_delta_rule, scripts/bench_fla_delta_rule.py), the 0.8B training step with checkpointing
# off and the training step's per-kernel profile. The peer's torch path (transformers' own delta
# rule, ~6× slower than with fla) runs when fla is absent, or with BENCH_TORCH=1. PRESETS (default
# "0.8b 2b 4b"; empty: ours not run; PEER_PRESETS, default the same, those of the peer), FLA_TIMEOUT
# (seconds each peer preset's fla run may take, default 420) and TORCH_TIMEOUT (the torch path's
# run of all its presets, default 240)
# adjust the rest. On a fresh
# machine flash-linear-attention's Triton kernels compile and autotune in the first steps: more than
# 150 s at the 0.8B shape and 159 s more at the 4B shape (32 value heads) on an H100 (2026-11-23),
# so the whole script takes about 9 minutes there; its figures are taken after 2 warm-up steps.
# On a slower host that passes the device tool's 10 minutes a call: run the peer's 4B alone in a
# second call (PRESETS= PEER_PRESETS=4b) and compare with the first call's table.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
build=${BUILD_DIR:-build}
log=${BENCH_LOG:-$(mktemp)}
presets=${PRESETS-0.8b 2b 4b}  # set but empty: ours not run (a call for the peer alone)
: >"$log"
if [ "${BENCH_KERNELS:-0}" = 1 ]; then
  "$build"/bench/delta_rule_cuda_bench 4096 16 16 128 20
  "$build"/bench/delta_rule_cuda_bench 4096 16 32 128 20
  # Where the time goes: each kernel's GPU time, summed over 3 forward + backward calls.
  DELTATUNE_PROFILE=1 "$build"/bench/delta_rule_cuda_bench 4096 16 16 128 2 1 16
  if python3 -c "import fla" 2>/dev/null; then
    python3 scripts/bench_fla_delta_rule.py 4096 16 128
  else
    echo "peer: flash-linear-attention is not importable here: not measured"
  fi
  "$build"/bench/train_step_cuda_bench 0.8b 4096 5 16 0 both
  # Where a training step's time goes: each kernel's and cuBLAS product's GPU time over 3 steps.
  DELTATUNE_PROFILE=1 "$build"/bench/train_step_cuda_bench 0.8b 4096 1 16 1
fi
for p in $presets; do
  "$build"/bench/train_step_cuda_bench "$p" 4096 5 16 1 both 2>&1 | tee -a "$log"
done
# Then one sequence with as many of the last layers' activations kept (checkpointing_kept_layers)
# as fit in half the peer's peak memory. KEPT_BUDGETS ("preset:GiB ..."): by default half the
# peaks the peer showed on this GPU (15.07, 17.43 and 23.46 GiB, 2026-11-23) less 0.01 GiB; the
# table compares with this run's peer.
for p in $presets; do
  budget=$(echo "${KEPT_BUDGETS:-0.8b:7.52 2b:8.70 4b:11.72}" | tr ' ' '\n' | sed -n "s/^$p://p")
  [ -n "$budget" ] && "$build"/bench/train_step_cuda_bench "$p" 4096 5 16 1 one "fit:$budget" 2>&1 | tee -a "$log"
done
peer_presets=${PEER_PRESETS-$presets}
comma=$(echo "$peer_presets" | tr ' ' ',')
if python3 -c "import transformers, peft" 2>/dev/null; then
  if python3 -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('fla') is None)" 2>/dev/null; then
    # One process and one FLA_TIMEOUT a preset: fla compiles and autotunes its kernels in each
    # preset's first steps (159 s at 0.8B on a slow host, 2026-11-23), and one timeout for all
    # the presets let the 4B run time out before it started.
    for p in $peer_presets; do
      PYTHONUNBUFFERED=1 timeout "${FLA_TIMEOUT:-420}" python3 scripts/bench_peft_baseline.py \
        --path fla --presets "$p" --steps 5 2>&1 | tee -a "$log"
    done
  else
    echo "peer: flash-linear-attention is not importable here: its path not measured" | tee -a "$log"
    BENCH_TORCH=1
  fi
  if [ "${BENCH_TORCH:-0}" = 1 ]; then
    PYTHONUNBUFFERED=1 timeout "${TORCH_TIMEOUT:-240}" python3 scripts/bench_peft_baseline.py --path torch \
      --presets "$comma" --steps 3 2>&1 | tee -a "$log"
  fi
else
  echo "peer: transformers + PEFT are not installed here: not measured" | tee -a "$log"
fi
python3 scripts/gpu_bench_table.py "$log"
