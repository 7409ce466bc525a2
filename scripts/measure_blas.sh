#!/usr/bin/env bash
# Measures sgemm in OpenBLAS and oneDNN on this machine (docs/design-notes.md, "CPU BLAS").
# oneDNN is needed only here: installed on demand, never linked into deltatune.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
dpkg-query -W -f='${Status}' libdnnl-dev 2>/dev/null | grep -q "install ok installed" ||
  { sudo_cmd=""; [[ $(id -u) -ne 0 ]] && sudo_cmd=sudo; $sudo_cmd apt-get install -y -qq libdnnl-dev >/dev/null; }
mkdir -p build
ob=/usr/lib/x86_64-linux-gnu/openblas-openmp
g++ -O2 -std=c++20 -fopenmp -I/usr/include/x86_64-linux-gnu/openblas-openmp bench/tools/blas_compare.cpp \
  -o build/blas_compare -L$ob -Wl,-rpath,$ob -lopenblas -ldnnl
for threads in 1 "$(nproc)"; do
  echo "== $threads thread(s), $(lscpu | sed -n 's/^Model name: *//p')"
  OPENBLAS_NUM_THREADS=$threads OMP_NUM_THREADS=$threads build/blas_compare
done
