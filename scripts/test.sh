#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, fetches the Qwen3 tokenizer, runs every
# CPU test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
scripts/fetch-tokenizer.sh >/dev/null  # the real Qwen3 tokenizer.json, into .cache/ (once)
ctest --test-dir build --output-on-failure -j "$(nproc)" -L cpu
