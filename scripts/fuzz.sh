#!/usr/bin/env bash
# Builds the libFuzzer target with clang into build-fuzz/ and fuzzes the safetensors header parser
# for a number of seconds (default 600), in one job. The corpus grows in fuzz-corpus/ (git-ignored),
# seeded with small valid files from fuzz/make_seeds.py; crashes are saved there too.
#   scripts/fuzz.sh [seconds] [libFuzzer flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-600}"
shift $(( $# > 0 ? 1 : 0 ))

scripts/install-deps.sh --fuzz
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DDELTATUNE_FUZZ=ON >/dev/null
cmake --build build-fuzz --target safetensors_header_fuzz -j "$(nproc)"

corpus=fuzz-corpus/safetensors_header
mkdir -p "$corpus"
python3 fuzz/make_seeds.py "$corpus"
set -x
build-fuzz/fuzz/safetensors_header_fuzz "$corpus" -dict=fuzz/safetensors.dict \
  -artifact_prefix=fuzz-corpus/ -max_total_time="$seconds" -print_final_stats=1 "$@"
