#!/usr/bin/env python3
"""Sums a training step's per-kernel GPU times from an Nsight Compute CSV (scripts/ncu_step_profile.sh).

Input: `ncu --csv --metrics gpu__time_duration.sum` output, one row per kernel launch. Output: the
total, then the kernels grouped by name and grid, largest first, with their share of the total.
ncu runs the kernels one at a time, so these are the kernels' own times: the step's wall time
(train_step_cuda_bench without ncu) minus this total is time the GPU waited for the host.
"""
import csv
import re
import sys
from collections import defaultdict

UNITS = {"nsecond": 1e-6, "usecond": 1e-3, "msecond": 1.0, "second": 1e3,
         "ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}


def short(name):
    name = re.sub(r"\(anonymous namespace\)::", "", name)
    name = name.replace("deltatune::", "").replace("cuda::", "").replace("__nv_bfloat16", "bf16")
    if name.startswith("void "):
        name = name[5:]
    return name[:110]


def main(path):
    lines = open(path, encoding="utf-8", errors="replace").read().splitlines()
    start = next((i for i, l in enumerate(lines) if l.startswith('"ID"')), None)
    if start is None:
        sys.exit(f"{path}: no ncu CSV header (\"ID\",...) found")
    groups = defaultdict(lambda: [0, 0.0])
    total, launches = 0.0, 0
    for row in csv.DictReader(lines[start:]):
        if row.get("Metric Name") != "gpu__time_duration.sum":
            continue
        ms = float(row["Metric Value"].replace(",", "")) * UNITS[row["Metric Unit"]]
        key = (short(row["Kernel Name"]), row["Grid Size"], row["Block Size"])
        groups[key][0] += 1
        groups[key][1] += ms
        total += ms
        launches += 1
    print(f"kernels: {launches} launches, {total:.2f} ms of GPU time in all")
    print("| ms | share | launches | kernel | grid | block |")
    print("|---|---|---|---|---|---|")
    for (name, grid, block), (n, ms) in sorted(groups.items(), key=lambda kv: -kv[1][1]):
        if ms < 0.002 * total:
            continue
        print(f"| {ms:.2f} | {100 * ms / total:.1f}% | {n} | {name} | {grid} | {block} |")


if __name__ == "__main__":
    main(sys.argv[1])
