#!/usr/bin/env python3
"""The transformers + PEFT peer of bench/cuda/train_step_cuda_bench (issue 7 item 5): LoRA training
of a random Qwen3.5 text model of a preset's real shape, timed the same way.

Runs where transformers 5.17 and PEFT 0.21 are installed (the GPU machine). Needs no download: the
model is built from a config here with the shapes of src/model/presets.cpp (0.8b, 2b, 4b; vocab
248320), randomly initialised on the GPU in bf16, attn_implementation="sdpa". PEFT LoRA r=16,
alpha 32, no dropout, target_modules="all-linear" (every linear layer but lm_head: the Gated
DeltaNet's in_proj_qkv, in_proj_z, in_proj_b, in_proj_a, out_proj, attention's q/k/v/o_proj and
the MLP's gate/up/down_proj, as deltatune's lora_target_linear), gradient checkpointing on
(use_reentrant=False), AdamW (lr 1e-4) on the LoRA parameters, global-norm clipping at 1.0. One
sequence of `tokens` random tokens with labels = inputs, micro-batch 1; 2 warm-up steps, then
`steps` timed steps (wall clock between torch.cuda.synchronize calls). Memory:
torch.cuda.max_memory_allocated over the warm-up and timed steps (weights, adapter, AdamW state and
activations; the peak is reset after the model is built).

Which Gated DeltaNet kernel runs: transformers 5.17 picks it once, when its Qwen3.5 modeling module
is imported (use_kernel_func_from_hub_with_fallback("chunk_gated_delta_rule", "fla")): the
flash-linear-attention package's chunk_gated_delta_rule when `fla` can be imported, otherwise its
own torch_chunk_gated_delta_rule. --path fla requires fla (put a checkout on PYTHONPATH; on Hopper
with Triton 3.4 to 3.7.0 its guard in fla/ops/common/chunk_o.py must be disabled in that copy for a
speed-only run); --path torch hides fla from this process. Either way the script counts the calls
of fla's ChunkGatedDeltaRuleFunction during a step and reports which path actually ran.

Model FLOPs (as train_step_cuda_bench): 4 × the frozen linear layers' parameters per token (lm_head
included) + causal attention 6 · heads · head_dim · T² per full-attention layer and sequence; MFU
against a bf16 torch.matmul 8192³ (random operands, median of 10) measured in the same process.

  python3 scripts/bench_peft_baseline.py --path fla|torch [--presets 0.8b,2b,4b] [--tokens 4096]
                                         [--steps 5]

Prints a line per preset, and one `RESULT` line per preset for scripts/gpu_bench_table.py.
"""
import argparse
import gc
import importlib
import importlib.util
import sys
import time
import traceback
import types

# Shapes of src/model/presets.cpp: hidden, intermediate, layers, heads, kv heads, head dim,
# linear key heads, linear value heads, linear head dim, tied.
PRESETS = {
    "0.8b": (1024, 3584, 24, 8, 2, 256, 16, 16, 128, True),
    "2b": (2048, 6144, 24, 8, 2, 256, 16, 16, 128, True),
    "4b": (2560, 9216, 32, 16, 4, 256, 16, 32, 128, False),
}
VOCAB = 248320


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("--path", choices=["fla", "torch"], required=True)
    p.add_argument("--presets", default="0.8b,2b,4b")
    p.add_argument("--tokens", type=int, default=4096)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--r", type=int, default=16)
    return p.parse_args()


def prepare_fla(path):
    """Before transformers is imported: make fla importable (--path fla) or hide it (--path torch).
    Returns a description and a one-element call counter list (None when hidden)."""
    if path == "torch":
        sys.modules["fla"] = None  # `import fla` now fails, find_spec("fla") gives None
        return "hidden", None
    spec = importlib.util.find_spec("fla")
    if spec is None:
        sys.exit("--path fla: flash-linear-attention is not importable (put a checkout on PYTHONPATH)")
    how = "imported"
    try:
        import fla  # noqa: F401
    except Exception as e:  # its optional model classes may not import with this transformers
        print(f"peer: `import fla` failed ({type(e).__name__}: {e}); using its ops without its "
              f"package __init__ (layers and models)", flush=True)
        for name in [n for n in sys.modules if n == "fla" or n.startswith("fla.")]:
            del sys.modules[name]
        stub = types.ModuleType("fla")
        stub.__path__ = list(spec.submodule_search_locations)
        stub.__version__ = "unknown"
        sys.modules["fla"] = stub
        how = "ops only"
    fla = sys.modules["fla"]
    chunk = importlib.import_module("fla.ops.gated_delta_rule.chunk")
    counter = [0]
    fn = chunk.ChunkGatedDeltaRuleFunction
    original = fn.apply

    def counting_apply(*args, **kwargs):
        counter[0] += 1
        return original(*args, **kwargs)

    fn.apply = counting_apply  # looked up at call time by fla's chunk_gated_delta_rule
    where = spec.submodule_search_locations[0]
    return f"flash-linear-attention {getattr(fla, '__version__', '?')} ({how}) from {where}", counter


def matmul_rate(torch):
    n = 8192
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    times = []
    for i in range(13):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        torch.matmul(a, b)
        e.record()
        e.synchronize()
        if i >= 3:
            times.append(s.elapsed_time(e))
    times.sort()
    del a, b
    return 2.0 * n ** 3 / (0.5 * (times[4] + times[5]) * 1e-3) / 1e12


def build(transformers, torch, preset):
    D, inter, layers, heads, kv, hd, hk, hv, lhd, tied = PRESETS[preset]
    config = transformers.Qwen3_5TextConfig(
        vocab_size=VOCAB, hidden_size=D, intermediate_size=inter, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=kv, head_dim=hd, hidden_act="silu",
        max_position_embeddings=262144, rms_norm_eps=1e-6, tie_word_embeddings=tied,
        rope_parameters=dict(rope_type="default", rope_theta=1e7, partial_rotary_factor=0.25,
                             mrope_section=[11, 11, 10], mrope_interleaved=True),
        linear_conv_kernel_dim=4, linear_key_head_dim=lhd, linear_value_head_dim=lhd,
        linear_num_key_heads=hk, linear_num_value_heads=hv,
        layer_types=["full_attention" if (i + 1) % 4 == 0 else "linear_attention" for i in range(layers)],
        bos_token_id=None, eos_token_id=248044, pad_token_id=None, use_cache=False,
    )
    config._attn_implementation = "sdpa"
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)  # as from_pretrained(dtype=torch.bfloat16) builds
    try:
        with torch.device("cuda"):
            model = transformers.Qwen3_5ForCausalLM(config)
    finally:
        torch.set_default_dtype(default)
    model.config._attn_implementation = "sdpa"
    model.config.use_cache = False
    return model


def model_flops_per_token(torch, model, tokens):
    """4 × the base linear layers' parameters (lm_head included; a tied one counted once) +
    causal attention per token, from the built model's modules."""
    seen, params, full_layers, heads, head_dim = set(), 0, 0, 0, 0
    for name, m in model.named_modules():
        if type(m).__name__.endswith("Attention") and hasattr(m, "o_proj"):
            full_layers += 1
            heads = m.config.num_attention_heads
            head_dim = m.head_dim
        if isinstance(m, torch.nn.Linear) and "lora_" not in name:
            w = m.weight
            if w.data_ptr() in seen:
                continue
            seen.add(w.data_ptr())
            params += w.numel()
    attention = 6.0 * heads * head_dim * tokens * tokens * full_layers
    return (4.0 * params * tokens + attention) / tokens, params


def main():
    args = parse()
    fla_desc, counter = prepare_fla(args.path)
    import torch
    import transformers
    import peft
    import triton
    from transformers.models.qwen3_5 import modeling_qwen3_5 as qwen35

    chosen = getattr(qwen35, "torch_chunk_gated_delta_rule", None)
    chosen_desc = f"{getattr(chosen, '__module__', '?')}.{getattr(chosen, '__qualname__', repr(chosen))}"
    conv = importlib.util.find_spec("causal_conv1d") is not None
    print(f"peer: transformers {transformers.__version__}, peft {peft.__version__}, torch {torch.__version__}, "
          f"triton {triton.__version__}, {torch.cuda.get_device_name()}; fla: {fla_desc}; the modeling "
          f"module's chunk_gated_delta_rule is {chosen_desc}; causal_conv1d "
          f"{'installed' if conv else 'not installed (torch conv1d)'}", flush=True)
    rate = matmul_rate(torch)
    print(f"peer: torch.matmul bf16 8192^3: {rate:.0f} TFLOP/s (median of 10)", flush=True)

    for preset in args.presets.split(","):
        try:
            t0 = time.time()
            model = build(transformers, torch, preset)
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            lcfg = peft.LoraConfig(r=args.r, lora_alpha=2 * args.r, lora_dropout=0.0,
                                   target_modules="all-linear", task_type="CAUSAL_LM")
            model = peft.get_peft_model(model, lcfg)
            model.train()
            trainable = [p for p in model.parameters() if p.requires_grad]
            lora_modules = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules()
                                   if hasattr(m, "lora_A") and len(getattr(m, "lora_A", {})) > 0})
            n_lora = sum(p.numel() for p in trainable)
            flops_tok, params = model_flops_per_token(torch, model, args.tokens)
            opt = torch.optim.AdamW(trainable, lr=1e-4)
            g = torch.Generator(device="cuda").manual_seed(3)
            ids = torch.randint(0, VOCAB, (1, args.tokens), device="cuda", generator=g)
            torch.cuda.synchronize()
            built = time.time() - t0

            def step():
                out = model(input_ids=ids, labels=ids)
                out.loss.backward()
                torch.nn.utils.clip_grad_norm_(trainable, 1.0)
                opt.step()
                opt.zero_grad(set_to_none=True)
                return out.loss.detach()

            torch.cuda.reset_peak_memory_stats()
            t1 = time.time()
            if counter is not None:
                counter[0] = 0
            for _ in range(args.warmup):
                loss = step()
            torch.cuda.synchronize()
            warm = time.time() - t1
            calls = counter[0] if counter is not None else 0
            start = time.time()
            for _ in range(args.steps):
                loss = step()
            torch.cuda.synchronize()
            seconds = time.time() - start
            peak = torch.cuda.max_memory_allocated() / 2 ** 30
            tok_s = args.tokens * args.steps / seconds
            used = "fla" if calls > 0 else "torch"
            mfu = tok_s * flops_tok / (rate * 1e12)
            print(f"peer {preset} ({args.path} requested, {used} ran: {calls} fla chunk_gated_delta_rule calls in "
                  f"{args.warmup} warm-up steps): loss {loss.item():.4f}, {tok_s:.0f} tokens/s "
                  f"({1e3 * seconds / args.steps:.1f} ms a step), peak GPU memory allocated {peak:.2f} GiB, "
                  f"MFU {100 * mfu:.1f}%; LoRA {n_lora / 1e6:.2f} M parameters on {', '.join(lora_modules)}; "
                  f"{params / 1e9:.3f} G matrix parameters; built in {built:.1f} s, warm-up {warm:.1f} s",
                  flush=True)
            print(f"RESULT side=peft path={used} preset={preset} rows=one ckpt=1 tokens={args.tokens} "
                  f"steps={args.steps} tok_s={tok_s:.1f} peak_gib={peak:.3f} flops_per_token={flops_tok:.6e} "
                  f"rate_tflops={rate:.1f} loss={loss.item():.4f} lora_params={n_lora}", flush=True)
        except Exception:
            print(f"peer {preset} ({args.path}): failed", flush=True)
            traceback.print_exc()
            sys.stdout.flush()
        finally:
            model = opt = trainable = ids = loss = step = None  # noqa: F841
            gc.collect()
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
