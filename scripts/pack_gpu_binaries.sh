#!/usr/bin/env bash
# Packs built binaries and the shared libraries they load (cudart, OpenBLAS, yaml-cpp, ...; not
# the driver's or cuBLAS, which a CUDA machine has) into DIR/bins.tar.xz and DIR/libs.tar.xz, for
# a GPU machine that has the driver and the CUDA toolkit but not this project's build
# dependencies. There: `mkdir -p /tmp/x && tar xJf DIR/libs.tar.xz -C /tmp/x && tar xJf
# DIR/bins.tar.xz -C /tmp/x && LD_LIBRARY_PATH=/tmp/x /tmp/x/test_cuda`. Compressed, because
# libopenblas alone is 36 MB.
#   scripts/pack_gpu_binaries.sh DIR [BINARY ...]   (default: build/tests/test_cuda and the
#                                                    build/bench/*_cuda_bench binaries)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:?usage: scripts/pack_gpu_binaries.sh DIR [BINARY ...]}
shift
bins=("$@")
[ ${#bins[@]} -gt 0 ] || bins=(build/tests/test_cuda build/bench/*_cuda_bench)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bins" "$stage/libs" "$dir"
for b in "${bins[@]}"; do
  strip -o "$stage/bins/$(basename "$b")" "$b"
  # Every library the binary resolves here, but the C library's own and cuBLAS (the GPU machine's
  # toolkit has them; cuBLAS is ~700 MB).
  ldd "$b" | awk '$3 ~ /^\// {print $3}' |
    grep -vE '/(libc|libm|libdl|libpthread|librt|libgcc_s|ld-linux[^/]*)\.so|libcublas' |
    while read -r lib; do cp -L "$lib" "$stage/libs/"; done
done
tar cJf "$dir/bins.tar.xz" -C "$stage/bins" .
tar cJf "$dir/libs.tar.xz" -C "$stage/libs" .
ls -la "$dir"
