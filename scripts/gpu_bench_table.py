#!/usr/bin/env python3
"""The one table of scripts/bench_gpu.sh (issue 7 item 5), from the `RESULT` lines that
bench/cuda/train_step_cuda_bench and scripts/bench_peft_baseline.py print: training tokens/s, peak
GPU memory allocated and model-FLOPs utilisation of deltatune and of the transformers + PEFT peer
(flash-linear-attention's kernels and the torch path), the ratios, and the issue's targets.

MFU: model FLOPs per token (each program computes them from its own model: 4 × matrix parameters +
causal attention, recomputation not counted) × tokens/s over the bf16 matrix rate measured in this
run: the median of the rates the programs measured (cuBLAS 8192³ in each deltatune process,
torch.matmul 8192³ in each peer process).

  python3 scripts/gpu_bench_table.py LOG
"""
import statistics
import sys


def rows(path):
    out = []
    for line in open(path, errors="replace"):
        if line.startswith("RESULT "):
            out.append(dict(kv.split("=", 1) for kv in line.split()[1:]))
    return out


def main():
    results = rows(sys.argv[1])
    if not results:
        print("no results")
        return
    rate = statistics.median(float(r["rate_tflops"]) for r in results)
    rates = ", ".join(f"{float(r['rate_tflops']):.0f}" for r in results)
    by = {(r["side"], r["path"], r["preset"], r["rows"]): r for r in results}
    presets = [p for p in ("0.8b", "2b", "4b", "9b") if any(r["preset"] == p for r in results)]

    def peer(preset, path):
        return by.get(("peft", path, preset, "one"))

    def mfu(r):
        return float(r["tok_s"]) * float(r["flops_per_token"]) / (rate * 1e12)

    print(f"\nbf16 matrix rate of this run: {rate:.0f} TFLOP/s (median of {len(results)} measurements: {rates})")
    print("ours = deltatune (bench/cuda/train_step_cuda_bench), one row of 4096 tokens: `one` = one sequence "
          "(the peer's setting), `packed` = several sequences; peer = transformers + PEFT, one sequence; "
          "all: bf16, LoRA r=16 on every linear layer, micro-batch 1, gradient checkpointing on\n")
    print("| model | run | tokens/s | peak GPU memory | MFU | tokens/s ÷ peer FLA | ÷ peer torch | "
          "memory ÷ peer FLA | ÷ peer torch |")
    print("|---|---|---|---|---|---|---|---|---|")
    order = [("deltatune", "cuda", "one", "ours, one sequence"), ("deltatune", "cuda", "packed", "ours, packed row"),
             ("deltatune", "cuda", "one_kept", "ours, one sequence, last {kept} layers' activations kept"),
             ("peft", "fla", "one", "peer, flash-linear-attention"), ("peft", "torch", "one", "peer, torch path")]
    for preset in presets:
        fla, tor = peer(preset, "fla"), peer(preset, "torch")
        for side, path, kind, label in order:
            r = by.get((side, path, preset, kind))
            if r is None:
                continue
            cells = []
            for key in ("tok_s", "peak_gib"):
                for p in (fla, tor):
                    ok = side == "deltatune" and p
                    cells.append(f"{float(r[key]) / float(p[key]):.2f}×" if ok else "")
            label = label.format(kept=r.get("kept", "?"))
            print(f"| {preset} | {label} | {float(r['tok_s']):,.0f} | {float(r['peak_gib']):.2f} GiB | "
                  f"{100 * mfu(r):.1f}% | " + " | ".join(cells) + " |")
        ours = by.get(("deltatune", "cuda", preset, "one"))
        for p in (fla, tor):
            if ours and p:
                a, b = float(ours["flops_per_token"]), float(p["flops_per_token"])
                if abs(a - b) > 1e-6 * a:
                    print(f"| {preset} | note: model FLOPs per token differ: ours {a:.4e}, "
                          f"peer {b:.4e} | | | | | | | |")

    print("\nTargets (issue 7 item 5; ours = one sequence, peer = flash-linear-attention's kernels):")

    def target(text, ok):
        print(f"- {text}: {'met' if ok else 'NOT met' if ok is not None else 'not measured'}")

    def ratio(preset, key, path="fla"):
        o, p = by.get(("deltatune", "cuda", preset, "one")), peer(preset, path)
        return float(o[key]) / float(p[key]) if o and p else None

    for preset, want in (("0.8b", 4.0), ("4b", 3.0)):
        x = ratio(preset, "tok_s")
        target(f"≥ {want:g}× the peer's tokens/s at {preset} (" + (f"{x:.2f}×" if x else "—") + ")",
               None if x is None else x >= want)
    for preset in presets:  # the delta rule's kernels leave the peer's peak as it is: the torch path stands in
        path = "fla" if peer(preset, "fla") else "torch"
        x = ratio(preset, "peak_gib", path)
        target(f"≤ 0.5× the peer's peak memory at {preset} (" + (f"{x:.3f}×" if x else "—") +
               ("" if path == "fla" else ", against the torch path's") + ")", None if x is None else x <= 0.5)
    o = by.get(("deltatune", "cuda", "4b", "one"))
    target("≥ 40% model-FLOPs utilisation at 4b (" + (f"{100 * mfu(o):.1f}%" if o else "—") + ")",
           None if o is None else mfu(o) >= 0.40)
    kept = [(p, by.get(("deltatune", "cuda", p, "one_kept")), peer(p, "fla")) for p in presets]
    kept = [(p, o, f) for p, o, f in kept if o and f]
    if kept:
        print("\nThe same with the last layers' activations kept (checkpointing_kept_layers, as many as fit "
              "in half the peer's peak; the peer still checkpoints every layer):")
        for p, o, f in kept:
            print(f"- {p}: {o['kept']} layers kept, {float(o['tok_s']) / float(f['tok_s']):.2f}× the peer's "
                  f"tokens/s at {float(o['peak_gib']) / float(f['peak_gib']):.3f}× its peak memory, "
                  f"MFU {100 * mfu(o):.1f}%")


if __name__ == "__main__":
    main()
