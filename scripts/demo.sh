#!/usr/bin/env bash
# The main job on the built-in default: a LoRA fine-tune of a small random Qwen3.5 (both layer
# kinds, the real Qwen3 tokenizer) on examples/dialect.jsonl, Captain Brine's sailor talk, with
# examples/dialect.yaml. The same question is answered before and after, greedily, by
# `deltatune generate` with the adapter applied at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
tokenizer=$(dirname "$(scripts/fetch-tokenizer.sh | head -1)")
out=out/demo
rm -rf "$out"
mkdir -p "$out"
build/deltatune init --preset tiny --seed 1 --tokenizer "$tokenizer" "$out/tiny-qwen35"

question="What is the weather like today, captain?"
ask() {
  build/deltatune generate "$out/tiny-qwen35" "$@" --prompt "$question" --max-new-tokens 32 2>/dev/null
}
echo
echo "=== Before fine-tuning: \"$question\""
ask | tee "$out/before.txt"
echo
start=$(date +%s)
build/deltatune train examples/dialect.yaml
took=$(( $(date +%s) - start ))
echo
echo "=== After fine-tuning (${took} s): \"$question\""
ask --adapter "$out/adapter" | tee "$out/after.txt"
echo
echo "The adapter (PEFT format) is in $out/adapter; the loss curve in $out/adapter/loss.svg."
