#!/usr/bin/env bash
# Builds a libFuzzer target with clang into build-fuzz/ and fuzzes it for a number of seconds
# (default 600), in one job. The corpus grows in fuzz-corpus/<target>/ (git-ignored), seeded with
# small valid inputs; crashes are saved in fuzz-corpus/.
#   scripts/fuzz.sh [target] [seconds] [libFuzzer flags...]
# Targets: safetensors_header (the default: the safetensors header parser), chat_template (the
# Jinja parser on any text, and its renderer on a fixed conversation).
set -euo pipefail
cd "$(dirname "$0")/.."
target=safetensors_header
case "${1:-}" in
  safetensors_header|chat_template) target="$1"; shift ;;
esac
seconds="${1:-600}"
shift $(( $# > 0 ? 1 : 0 ))

scripts/install-deps.sh --fuzz
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DDELTATUNE_FUZZ=ON >/dev/null
cmake --build build-fuzz --target "${target}_fuzz" -j "$(nproc)"

corpus=fuzz-corpus/$target
mkdir -p "$corpus"
flags=()
case "$target" in
  safetensors_header)
    python3 fuzz/make_seeds.py "$corpus"
    flags+=(-dict=fuzz/safetensors.dict) ;;
  chat_template)
    cp tests/fixtures/chat_templates/*.jinja "$corpus/"
    flags+=(-dict=fuzz/jinja.dict -max_len=16384) ;;
esac
set -x
"build-fuzz/fuzz/${target}_fuzz" "$corpus" "${flags[@]}" \
  -artifact_prefix=fuzz-corpus/ -max_total_time="$seconds" -print_final_stats=1 "$@"
