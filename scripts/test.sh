#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs every CPU test.
# llama.cpp (node-llama-cpp, scripts/fetch-llama.sh) is fetched too, so the llama.cpp interop tests
# run rather than skip.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
scripts/fetch-llama.sh
DELTATUNE_REQUIRE_LLAMA=1 ctest --test-dir build --output-on-failure -j "$(nproc)" -L cpu
