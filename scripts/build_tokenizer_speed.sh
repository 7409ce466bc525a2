#!/usr/bin/env bash
# Builds bench/tools/tokenizer_speed into .cache/devbench/ with PCRE2, utf8proc and the C++
# runtime linked in, so it runs on a machine without this project's Debian packages (the GPU
# machine, where tokenizers is measured: docs/performance.md, "Tokenizer").
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
mkdir -p .cache/devbench
g++ -O2 -std=c++20 -march=x86-64-v2 -Isrc bench/tools/tokenizer_speed.cpp src/text/*.cpp src/io/json_file.cpp \
  -o .cache/devbench/tokenizer_speed -static-libstdc++ -static-libgcc \
  -Wl,-Bstatic -lpcre2-8 -lutf8proc -Wl,-Bdynamic
echo .cache/devbench/tokenizer_speed
