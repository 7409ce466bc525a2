#!/usr/bin/env bash
# deltatune against llama.cpp on the same GGUF files (part of `make bench`, docs/performance.md):
# a random checkpoint of the Qwen3.5-0.8B shape (`deltatune make-model --preset 0.8b`), exported
# by `deltatune export-gguf` as bf16 and q8_0, and a random LoRA adapter on every linear layer
# (r = 16), exported by `deltatune export-gguf-lora`. Each engine reads the same GGUF file:
# deltatune as a GGUF base through its inference session (bench/infer_bench.cpp), llama.cpp
# v0.5.0 through node-llama-cpp (bench/llama_bench.mjs). Per case, prompt processing (512 tokens)
# and generation (128 tokens, greedy) in tokens/s, same thread count; runs interleaved (ours,
# theirs, ours, theirs) with the load averages beside them, since the machine may be shared.
#   scripts/bench_llama.sh            all cores; THREADS=N to choose, ROUNDS=N (default 2)
# deltatune's OpenMP threads spin GOMP_SPINCOUNT=10000 iterations at a barrier, then sleep (as
# llama.cpp's pool polls, then sleeps): with libgomp's default (300,000) a generated token took
# 3.4 s instead of 0.1 s at load 4 on 2 cores, threads spinning while their partner was off the
# core; with OMP_WAIT_POLICY=passive (sleep at once) generation is 23% slower on a quiet machine
# (~190 products per token, each waking the pool). Set either variable to override.
# The files (about 4 GB) are made once into .cache/bench-llama.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -n ${OMP_WAIT_POLICY:-} ]] || export GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-10000}
threads=${THREADS:-$(nproc)}
rounds=${ROUNDS:-2}
dir=.cache/bench-llama
scripts/build.sh >/dev/null
scripts/fetch-llama.sh
mkdir -p "$dir"
tool=build/deltatune
[[ -f $dir/m08/config.json ]] || $tool make-model "$dir/m08" --preset 0.8b --dtype bf16 >&2
[[ -f $dir/tok/tokenizer.json ]] || python3 scripts/make_tiny_tokenizer.py "$dir/tok"
for type in bf16 q8_0; do
  [[ -f $dir/m08-$type.gguf ]] || $tool export-gguf "$dir/m08" "$dir/m08-$type.gguf" --outtype $type --tokenizer "$dir/tok" >&2
done
[[ -f $dir/adapter/adapter_config.json ]] || build/bench/infer_bench --make-adapter "$dir/m08-bf16.gguf" "$dir/adapter"
[[ -f $dir/adapter.gguf ]] || $tool export-gguf-lora "$dir/adapter" "$dir/adapter.gguf" --base "$dir/m08-bf16.gguf" >&2

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(date -u +%Y-%m-%d), threads $threads, deltatune OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-} GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-}"
for type in bf16 q8_0; do
  for lora in no yes; do
    ours=(); theirs=()
    [[ $lora == yes ]] && ours=(--adapter "$dir/adapter") && theirs=(--lora "$dir/adapter.gguf")
    for ((round = 1; round <= rounds; ++round)); do
      echo "== $type, adapter: $lora, round $round; load average $(cut -d' ' -f1-3 /proc/loadavg)"
      build/bench/infer_bench "$dir/m08-$type.gguf" "${ours[@]}" --threads "$threads" --prompt 512 --gen 128
      echo "   load average $(cut -d' ' -f1-3 /proc/loadavg)"
      node bench/llama_bench.mjs .cache/npm "$dir/m08-$type.gguf" "${theirs[@]}" --threads "$threads" --prompt 512 --gen 128
    done
  done
done
echo "== where deltatune's time goes (DELTATUNE_PROFILE=1, bf16, no adapter); load average $(cut -d' ' -f1-3 /proc/loadavg)"
DELTATUNE_PROFILE=1 build/bench/infer_bench "$dir/m08-bf16.gguf" --threads "$threads" --prompt 512 --gen 0 2>&1
