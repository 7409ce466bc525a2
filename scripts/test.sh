#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, fetches the Qwen3 tokenizer and llama.cpp
# (node-llama-cpp, so the llama.cpp interop tests run rather than skip), runs every CPU test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
scripts/fetch-tokenizer.sh >/dev/null  # the real Qwen3 tokenizer.json, into .cache/ (once)
scripts/fetch-llama.sh
DELTATUNE_REQUIRE_LLAMA=1 ctest --test-dir build --output-on-failure -j "$(nproc)" -L cpu
