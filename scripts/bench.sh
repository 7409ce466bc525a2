#!/usr/bin/env bash
# make bench: the CPU benchmarks, each in its own process so its peak RSS is its own.
# Prints Google Benchmark's table for each; docs/performance.md records the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh >/dev/null
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(date -u +%Y-%m-%d)"
for filter in 'forward/' 'train_step/.*/checkpointing/1' 'train_step/.*/checkpointing/0'; do
  build/bench/model_bench --benchmark_filter="$filter" --benchmark_counters_tabular=true 2>&1 |
    grep -v -E '^(\*\*\*|-----|Run on|CPU Caches|  L[123]|Load Average)' || true
done
echo "== tokenizer, one thread (bench/tokenizer_bench.cpp)"
scripts/fetch-tokenizer.sh >/dev/null
build/bench/tokenizer_bench 2>&1 | grep -v -E '^(\*\*\*|-----|Run on|CPU Caches|  L[123]|Load Average)' || true
echo "== end-to-end training (scripts/bench_train.sh)"
scripts/bench_train.sh
echo "== deltatune vs llama.cpp on the same GGUF files (scripts/bench_llama.sh)"
scripts/bench_llama.sh
