#!/usr/bin/env bash
# Builds a libFuzzer target with clang into build-fuzz/ and fuzzes it for a number of seconds
# (default 600), in one job. The corpus grows in fuzz-corpus/<target>/ (git-ignored), seeded with
# small valid files; crashes are saved in fuzz-corpus/ too.
#   scripts/fuzz.sh [target] [seconds] [libFuzzer flags...]
# Targets: safetensors_header (the default: the safetensors header parser), gguf (the GGUF reader).
set -euo pipefail
cd "$(dirname "$0")/.."
target=safetensors_header
if [[ $# -gt 0 && ! "$1" =~ ^[0-9]+$ ]]; then target="$1"; shift; fi
seconds="${1:-600}"
shift $(( $# > 0 ? 1 : 0 ))

case "$target" in
  safetensors_header) seeds=fuzz/make_seeds.py; dict=fuzz/safetensors.dict ;;
  gguf) seeds=fuzz/make_gguf_seeds.py; dict=fuzz/gguf.dict ;;
  *) echo "fuzz.sh: unknown target '$target' (safetensors_header, gguf)" >&2; exit 1 ;;
esac

scripts/install-deps.sh --fuzz
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DDELTATUNE_FUZZ=ON >/dev/null
cmake --build build-fuzz --target "${target}_fuzz" -j "$(nproc)"

corpus="fuzz-corpus/$target"
mkdir -p "$corpus"
python3 "$seeds" "$corpus"
set -x
"build-fuzz/fuzz/${target}_fuzz" "$corpus" -dict="$dict" \
  -artifact_prefix=fuzz-corpus/ -max_total_time="$seconds" -print_final_stats=1 "$@"
