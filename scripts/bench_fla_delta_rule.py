#!/usr/bin/env python3
"""flash-linear-attention's chunk_gated_delta_rule, forward + backward: the peer of
bench/cuda/delta_rule_cuda_bench.cpp (issue 7), timed the same way: bf16, median of 20 after
warm-up, CUDA events around the region; peak GPU memory from torch.cuda.max_memory_allocated.

It also measures the peer's errors against a float64 recurrent reference on the same inputs:
on Hopper GPUs with Triton 3.4 to 3.7.0 its gated backward gives wrong results (its issue #640)
and refuses to run; a speed-only run needs that guard (fla/ops/common/chunk_o.py) disabled in
the copy it imports.

  PYTHONPATH=<flash-linear-attention checkout> python3 scripts/bench_fla_delta_rule.py [T H D [HV]]

H key heads, HV value heads (default H; the 4B shape is 16 key / 32 value heads: value head j reads
key head j / (HV / H), fla's "GVA").
"""
import math
import sys

import torch
import torch.nn.functional as F


def inputs(T, H, D, seed, HV=None, device="cuda"):
    HV = HV or H
    g = torch.Generator(device="cpu").manual_seed(seed)
    q = F.normalize(torch.randn(1, T, H, D, generator=g), dim=-1) / math.sqrt(D)
    k = F.normalize(torch.randn(1, T, H, D, generator=g), dim=-1)
    v = torch.randn(1, T, HV, D, generator=g)
    a_log = torch.tensor([0.0 if h % 3 == 0 else -3.0 if h % 3 == 1 else -6.0 for h in range(HV)])
    decay = -torch.exp(a_log + 0.5 * torch.randn(1, T, HV, generator=g))
    gate = decay * F.softplus(torch.randn(1, T, HV, generator=g))
    beta = torch.sigmoid(torch.randn(1, T, HV, generator=g))
    do = torch.randn(1, T, HV, D, generator=g)
    to = lambda x, dt: x.to(device=device, dtype=dt)
    return (to(q, torch.bfloat16), to(k, torch.bfloat16), to(v, torch.bfloat16),
            to(gate, torch.float32), to(beta, torch.float32), to(do, torch.bfloat16))


def fla_forward_backward(fla_rule, q, k, v, g, beta, do):
    q, k, v, g, beta = (x.detach().requires_grad_() for x in (q, k, v, g, beta))
    o, _ = fla_rule(q, k, v, g, beta, scale=1.0, output_final_state=False)
    o.backward(do)
    return o, q.grad, k.grad, v.grad, g.grad, beta.grad


def reference(q, k, v, g, beta, do):
    """The recurrent form (spec/gated_delta_rule.md) in float64 with autograd."""
    q, k, v, g, beta = (x.detach().double().requires_grad_() for x in (q, k, v, g, beta))
    B, T, H, D = q.shape
    HV = v.shape[2]
    qe, ke = (x.repeat_interleave(HV // H, dim=2) for x in (q, k))  # value head j reads j / (HV/H)
    S = torch.zeros(B, HV, D, v.shape[-1], dtype=torch.float64, device=q.device)
    outs = []
    for t in range(T):
        S = S * torch.exp(g[:, t])[..., None, None]
        kt, vt = ke[:, t], v[:, t]
        u = beta[:, t][..., None] * (vt - torch.einsum("bhk,bhkv->bhv", kt, S))
        S = S + kt[..., :, None] * u[..., None, :]
        outs.append(torch.einsum("bhk,bhkv->bhv", qe[:, t], S))
    o = torch.stack(outs, dim=1)
    o.backward(do.double())
    return o, q.grad, k.grad, v.grad, g.grad, beta.grad


def main():
    T = int(sys.argv[1]) if len(sys.argv) > 1 else 4096
    H = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    D = int(sys.argv[3]) if len(sys.argv) > 3 else 128
    HV = int(sys.argv[4]) if len(sys.argv) > 4 else H
    import fla
    from fla.ops.gated_delta_rule import chunk_gated_delta_rule
    import triton
    print(f"peer: flash-linear-attention {fla.__version__}, triton {triton.__version__}, "
          f"torch {torch.__version__}, {torch.cuda.get_device_name()}")

    q, k, v, g, beta, do = inputs(T, H, D, seed=1, HV=HV)
    for _ in range(5):
        fla_forward_backward(chunk_gated_delta_rule, q, k, v, g, beta, do)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    times = []
    for _ in range(20):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fla_forward_backward(chunk_gated_delta_rule, q, k, v, g, beta, do)
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    times.sort()
    peak = torch.cuda.max_memory_allocated()
    print(f"flash-linear-attention chunk_gated_delta_rule: forward+backward {times[10]:.3f} ms "
          f"(median of 20; T={T} H={H} HV={HV} D={D} bf16); GPU memory peak {peak / 2**20:.1f} MiB "
          f"(inputs and do {base / 2**20:.1f} MiB of it)", flush=True)

    # The same calls' kernels alone (torch.profiler: the sum of their GPU durations, median of 5
    # calls): the timing above also holds whatever time the GPU waited for Python to launch them.
    from torch.profiler import ProfilerActivity, profile
    sums = []
    for _ in range(5):
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            fla_forward_backward(chunk_gated_delta_rule, q, k, v, g, beta, do)
            torch.cuda.synchronize()
        sums.append(sum(e.device_time_total for e in prof.key_averages()) / 1000.0)
    sums.sort()
    print(f"flash-linear-attention chunk_gated_delta_rule: its kernels alone {sums[2]:.3f} ms a "
          f"forward+backward (torch.profiler, sum of GPU kernel times, median of 5)", flush=True)
    # Errors against float64 on a shorter sequence (the reference is a Python loop); same heads
    # and dims, so no new autotuning.
    Tc, Hc = 1024, H
    q, k, v, g, beta, do = inputs(Tc, Hc, D, seed=2, HV=HV)
    got = fla_forward_backward(chunk_gated_delta_rule, q, k, v, g, beta, do)
    want = reference(q, k, v, g, beta, do)
    names = ["o", "dq", "dk", "dv", "dg", "dbeta"]
    errs = [((a.double() - b).abs().max() / b.abs().max()).item() for a, b in zip(got, want)]
    print(f"flash-linear-attention errors vs float64 (T={Tc}, H={Hc}, HV={HV}, D={D}, bf16 inputs): " +
          " ".join(f"{n} {e:.2e}" for n, e in zip(names, errs)))


if __name__ == "__main__":
    main()
