#!/usr/bin/env bash
# Installs llama.cpp for the interop tests: the npm package node-llama-cpp 3.22.1, which bundles
# llama.cpp release v0.5.0 (Qwen3.5 and LoRA adapters) prebuilt for this platform's CPU, into
# .cache/npm (git-ignored). Quiet and quick when it is already there.
#   scripts/fetch-llama.sh        then: node tests/llamacpp/llama_logits.mjs .cache/npm JOB.json
# Only the CPU build for this platform is fetched (--omit=optional skips the CUDA and Vulkan
# builds, about 600 MB); install scripts are skipped: node-llama-cpp is used with build "never".
set -euo pipefail
cd "$(dirname "$0")/.."
version=3.22.1
prefix=.cache/npm
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) platform=linux-x64 ;;
  Linux-aarch64) platform=linux-arm64 ;;
  Darwin-arm64) platform=mac-arm64-metal ;;
  *) echo "fetch-llama: no prebuilt llama.cpp for $(uname -s)-$(uname -m)" >&2; exit 1 ;;
esac

installed() {
  [[ -f "$prefix/node_modules/node-llama-cpp/package.json" && -d "$prefix/node_modules/@node-llama-cpp/$platform" ]] &&
    grep -q "\"version\": \"$version\"" "$prefix/node_modules/node-llama-cpp/package.json"
}
installed && exit 0

command -v npm >/dev/null || { echo "fetch-llama: needs Node.js (>= 20) and npm" >&2; exit 1; }
mkdir -p "$prefix"
cat > "$prefix/package.json" <<JSON
{"private": true, "dependencies": {"node-llama-cpp": "$version", "@node-llama-cpp/$platform": "$version"}}
JSON
echo "fetch-llama: installing node-llama-cpp $version ($platform) into $prefix" >&2
if ! npm install --prefix "$prefix" --omit=optional --ignore-scripts --no-audit --no-fund \
    >"$prefix/npm-install.log" 2>&1; then
  tail -20 "$prefix/npm-install.log" >&2
  exit 1
fi
installed || { echo "fetch-llama: install finished but node-llama-cpp $version is missing" >&2; exit 1; }
