#!/usr/bin/env bash
# Installs the Debian packages deltatune needs to build and test. Idempotent and quiet when
# nothing is missing. Run as root or with sudo available.
#   scripts/install-deps.sh            build + test dependencies
#   scripts/install-deps.sh --fuzz     also clang and libFuzzer
set -euo pipefail

packages=(
  g++ make cmake git ca-certificates
  nlohmann-json3-dev libyaml-cpp-dev libcli11-dev libgtest-dev libbenchmark-dev
  libopenblas-openmp-dev  # CPU matrix products, OpenMP build (docs/design-notes.md)
  pkg-config libpcre2-dev libutf8proc-dev  # the tokenizer: split expressions, NFC
  python3                 # test data generators
  time                    # peak memory in the benchmarks (GNU time -v)
  python3-jinja2          # the reference renderer of chat templates (tests/text)
)
if [[ "${1:-}" == "--fuzz" ]]; then
  packages+=(clang libclang-rt-14-dev)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
if ! $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/deltatune-apt.log 2>&1; then
  $sudo apt-get update -qq >/tmp/deltatune-apt.log 2>&1
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >>/tmp/deltatune-apt.log 2>&1 ||
    { echo "install-deps: apt-get failed, see /tmp/deltatune-apt.log" >&2; tail -20 /tmp/deltatune-apt.log >&2; exit 1; }
fi
