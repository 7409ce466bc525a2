#!/usr/bin/env bash
# The main job on the built-in default. Until training exists: create a tiny random Qwen3.5
# checkpoint, describe it, and run a forward pass over a short token sequence.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
out=out/demo
mkdir -p "$out"
build/deltatune make-model --preset tiny --seed 1 "$out/tiny-qwen35"
build/deltatune info "$out/tiny-qwen35"
build/deltatune make-input --tokens 1,2,3,4,5,6,7,8,9,10 --output "$out/input.safetensors"
build/deltatune forward "$out/tiny-qwen35" --input "$out/input.safetensors" --output "$out/logits.safetensors" --show 4
