#!/usr/bin/env bash
# Builds a libFuzzer target with clang into build-fuzz/ and fuzzes it for a number of seconds
# (default 600), in one job. The corpus grows in fuzz-corpus/<target>/ (git-ignored), seeded with
# small valid inputs; crashes are saved in fuzz-corpus/ too.
#   scripts/fuzz.sh [target] [seconds] [libFuzzer flags...]
# Targets: safetensors_header (default), gguf, tokenizer_json, tokenizer_encode, chat_template (the
# Jinja parser on any text, and its renderer on a fixed conversation), jsonl (the dataset reader).
set -euo pipefail
cd "$(dirname "$0")/.."
target=safetensors_header
if [[ $# -gt 0 && ! "$1" =~ ^[0-9]+$ ]]; then target="$1"; shift; fi
seconds="${1:-600}"
shift $(( $# > 0 ? 1 : 0 ))

corpus=fuzz-corpus/$target
mkdir -p "$corpus"
flags=()
seed() {
  case "$target" in
    safetensors_header)
      python3 fuzz/make_seeds.py "$corpus"
      flags+=(-dict=fuzz/safetensors.dict) ;;
    gguf)
      python3 fuzz/make_gguf_seeds.py "$corpus"
      flags+=(-dict=fuzz/gguf.dict) ;;
    tokenizer_json)
      cp tests/fixtures/tokenizer/tiny/tokenizer.json "$corpus/seed-tiny.json"
      flags+=(-dict=fuzz/tokenizer_json.dict -max_len=16384) ;;
    tokenizer_encode)
      local i=0
      while IFS= read -r line; do printf '%s' "$line" >"$corpus/seed-$i"; i=$((i + 1)); done \
        < tests/fixtures/tokenizer/tiny/corpus.jsonl ;;
    jsonl)  # first byte: bit 0 = JSON document, bit 1 = skip bad rows
      printf '\x00{"input_ids": [1, 2, 3], "labels": [-100, 2, 3]}\n\n{"input_ids": [4]}\n' >"$corpus/seed-jsonl"
      printf '\x03[{"input_ids": [5, 6]}, {"messages": []}, 7]' >"$corpus/seed-json"
      printf '\x01{"train": [{"input_ids": [1], "labels": [1]}]}' >"$corpus/seed-split"
      head -c 4000 examples/dialect.jsonl | sed '1s/^/\x02/' >"$corpus/seed-chat" ;;
    chat_template)
      cp tests/fixtures/chat_templates/*.jinja "$corpus/"
      flags+=(-dict=fuzz/jinja.dict -max_len=16384) ;;
    *) echo "fuzz.sh: unknown target '$target'" >&2; exit 1 ;;
  esac
}
seed

scripts/install-deps.sh --fuzz
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DDELTATUNE_FUZZ=ON >/dev/null
cmake --build build-fuzz --target "${target}_fuzz" -j "$(nproc)"
set -x
"build-fuzz/fuzz/${target}_fuzz" "$corpus" "${flags[@]}" \
  -artifact_prefix=fuzz-corpus/ -max_total_time="$seconds" -print_final_stats=1 "$@"
