#!/usr/bin/env python3
"""Reference fixtures for deltatune's tests, made with Hugging Face transformers (+ PEFT).

Runs where transformers 5.17 and PEFT 0.21 are installed (the GPU machine; it uses only its CPU).
Needs no download: every model is a tiny random Qwen3.5 built from a config here.

For each variant it writes tests/fixtures/<variant>/:
  config.json + model.safetensors (or shards + index)   the checkpoint, as save_pretrained writes it
  reference.safetensors   input ids (one sequence; a pack of several with cu_seqlens) and the logits
                          transformers computes for them in float64, each sequence run alone
and, for the variants with an adapter:
  adapter/                a PEFT LoRA folder with random non-zero A and B (save_pretrained)
  grad_reference.safetensors  labels, the loss (mean cross-entropy over all trained targets of the
                          pack) and the gradient of every LoRA factor, float64, plus the logits of
                          the pack with the adapter applied

float64 throughout: transformers' Qwen3.5 code casts to float32 in places (the delta rule, norms, the
decay g, rotary frequencies). For a float64 reference those casts are redirected to float64 while the
reference runs (see float64_everywhere); the model code itself is unchanged.
"""
import argparse
import contextlib
import json
import math
import os
import shutil
import sys
import types

import torch
import torch.nn.functional as F
import transformers
from safetensors.torch import load_file, save_file
from transformers.models.qwen3_5 import modeling_qwen3_5 as qwen35

VOCAB = 256

VARIANTS = {
    # name: (layout, Hk, Hv, tied, disk dtype, layer_types or None, shard, adapter)
    "causal_tied_f32": dict(layout="causal", hk=2, hv=2, tied=True, dtype=torch.float32,
                            layer_types=None, shard=False,
                            adapter=dict(r=4, alpha=8, rslora=False, dtype=torch.float32)),
    "causal_v2x_untied_bf16": dict(layout="causal", hk=2, hv=4, tied=False, dtype=torch.bfloat16,
                                   layer_types=["linear_attention", "full_attention", "linear_attention",
                                                "linear_attention", "full_attention"],
                                   shard=False, adapter=None),
    "cond_v2x_untied_f32_sharded": dict(layout="cond", hk=2, hv=4, tied=False, dtype=torch.float32,
                                        layer_types=None, shard=True,
                                        adapter=dict(r=4, alpha=16, rslora=True, dtype=torch.bfloat16)),
    "cond_tied_bf16": dict(layout="cond", hk=2, hv=2, tied=True, dtype=torch.bfloat16,
                           layer_types=None, shard=False, adapter=None),
}

SINGLE_LENGTH = 100          # two chunks of the delta rule, the second one short
PACK_LENGTHS = [37, 64, 49]  # 150 tokens; one sequence exactly one chunk


def text_config(v):
    cfg = dict(
        vocab_size=VOCAB, hidden_size=48, intermediate_size=64, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, head_dim=32, hidden_act="silu",
        max_position_embeddings=4096, rms_norm_eps=1e-6, tie_word_embeddings=v["tied"],
        rope_parameters=dict(rope_type="default", rope_theta=10000.0, partial_rotary_factor=0.25,
                             mrope_section=[2, 1, 1], mrope_interleaved=True),
        linear_conv_kernel_dim=4, linear_key_head_dim=16, linear_value_head_dim=16,
        linear_num_key_heads=v["hk"], linear_num_value_heads=v["hv"],
        bos_token_id=1, eos_token_id=2, pad_token_id=0,
    )
    if v["layer_types"] is not None:
        cfg["layer_types"] = v["layer_types"]
        cfg["num_hidden_layers"] = len(v["layer_types"])
    return cfg


def build_model(v):
    tc = text_config(v)
    if v["layout"] == "causal":
        config = transformers.Qwen3_5TextConfig(**tc)
        model = transformers.Qwen3_5ForCausalLM(config)
    else:
        vision = dict(depth=1, hidden_size=16, intermediate_size=32, num_heads=2, patch_size=4,
                      spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=tc["hidden_size"],
                      num_position_embeddings=16)
        config = transformers.Qwen3_5Config(text_config=tc, vision_config=vision,
                                            tie_word_embeddings=v["tied"])
        model = transformers.Qwen3_5ForConditionalGeneration(config)
    model.config._attn_implementation = "eager"
    return model


@torch.no_grad()
def randomize(model, gen):
    """Every parameter random, norms, A_log, dt_bias and conv included: the library's own init
    leaves some at constants, which would hide a wrong formula."""
    for name, p in model.named_parameters():
        if name.endswith("A_log"):
            p.copy_(torch.empty(p.shape).uniform_(-1.0, 1.5, generator=gen))
        elif name.endswith("dt_bias"):
            p.copy_(torch.randn(p.shape, generator=gen))
        elif name.endswith("linear_attn.norm.weight"):  # plain RMSNorm weight, stored around 1
            p.copy_(1.0 + 0.3 * torch.randn(p.shape, generator=gen))
        elif "norm" in name and p.dim() == 1:  # zero-centred norms, stored around 0
            p.copy_(0.3 * torch.randn(p.shape, generator=gen))
        elif "conv1d" in name and "visual" not in name:
            p.copy_(0.5 * torch.randn(p.shape, generator=gen))
        elif "embed_tokens" in name:
            p.copy_(torch.randn(p.shape, generator=gen))
        elif p.dim() >= 2:
            p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[-1]))
        else:
            p.copy_(0.1 * torch.randn(p.shape, generator=gen))
    tied = model.config.get_text_config().tie_word_embeddings
    if not tied and hasattr(model, "lm_head"):
        assert model.lm_head.weight.data_ptr() != model.get_input_embeddings().weight.data_ptr()


@contextlib.contextmanager
def float64_everywhere():
    """Inside: the Qwen3.5 modeling module sees float64 wherever it asks for float32, and
    Tensor.float() returns float64. The model code runs unchanged, in float64 end to end."""
    real_torch = qwen35.torch

    class TorchF64(types.ModuleType):
        def __getattr__(self, name):
            if name in ("float32", "float"):
                return torch.float64
            return getattr(real_torch, name)

    real_float = torch.Tensor.float
    qwen35.torch = TorchF64("torch")
    torch.Tensor.float = lambda self, *a, **k: self.double()
    try:
        yield
    finally:
        qwen35.torch = real_torch
        torch.Tensor.float = real_float


def set_rope_float64(model):
    """Rotary inverse frequencies are made at construction in float32; recompute them with the same
    formula in float64 so positions far from 0 keep float64 accuracy."""
    for m in model.modules():
        if isinstance(m, qwen35.Qwen3_5TextRotaryEmbedding):
            rp = m.config.rope_parameters
            head_dim = m.config.head_dim
            dim = int(head_dim * rp.get("partial_rotary_factor", 1.0))
            inv = 1.0 / (rp["rope_theta"] ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
            m.inv_freq = inv
            m.original_inv_freq = inv.clone()


def logits_one_by_one(model, ids, cu):
    outs = []
    for s in range(len(cu) - 1):
        seq = ids[cu[s]:cu[s + 1]].unsqueeze(0)
        outs.append(model(input_ids=seq, use_cache=False).logits[0])
    return torch.cat(outs, 0)


def pack_inputs(gen):
    cu = [0]
    for n in PACK_LENGTHS:
        cu.append(cu[-1] + n)
    ids = torch.randint(0, VOCAB, (cu[-1],), generator=gen)
    return ids, cu


def save_checkpoint(model, v, folder):
    kwargs = dict(safe_serialization=True)
    if v["shard"]:
        kwargs["max_shard_size"] = "100KB"
    model.to(v["dtype"]).save_pretrained(folder, **kwargs)
    model.to(torch.float64)
    if v["layout"] == "cond":
        # Real Qwen3.5 checkpoints carry a multi-token-prediction head under mtp.*, which
        # transformers does not build; add one tensor so readers prove they skip it.
        files = sorted(f for f in os.listdir(folder) if f.endswith(".safetensors"))
        path = os.path.join(folder, files[-1])
        tensors = load_file(path)
        tensors["mtp.fc.weight"] = torch.randn(8, 8).to(v["dtype"])
        save_file(tensors, path, metadata={"format": "pt"})
        index = os.path.join(folder, "model.safetensors.index.json")
        if os.path.exists(index):
            with open(index) as f:
                data = json.load(f)
            data["weight_map"]["mtp.fc.weight"] = files[-1]
            with open(index, "w") as f:
                json.dump(data, f, indent=2)


def lora_targets():
    return ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
            "in_proj_qkv", "in_proj_z", "in_proj_a", "in_proj_b", "out_proj"]


def make_adapter(model, a, gen, folder):
    import peft
    cfg = peft.LoraConfig(r=a["r"], lora_alpha=a["alpha"], lora_dropout=0.0,
                          target_modules=lora_targets(), use_rslora=a["rslora"], bias="none")
    pm = peft.get_peft_model(model, cfg)
    with torch.no_grad():
        for name, p in pm.named_parameters():
            if "lora_A" in name:
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[1]))
            elif "lora_B" in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[1]))
            if "lora_" in name:  # exactly representable in the adapter's file dtype
                p.copy_(p.to(a["dtype"]).to(torch.float64))
    # Save the factors in the adapter's dtype; the base model stays in float64.
    factors = [m for n, m in pm.named_modules() if n.endswith(("lora_A.default", "lora_B.default"))]
    for m in factors:
        m.to(a["dtype"])
    pm.save_pretrained(folder)
    for m in factors:
        m.to(torch.float64)
    return pm


def grad_reference(pm, ids, cu, gen):
    labels = ids.clone()
    drop = torch.rand(ids.shape, generator=gen) < 0.3
    labels[drop] = -100
    pm.zero_grad()
    total = torch.zeros((), dtype=torch.float64)
    count = 0
    logits_all = []
    for s in range(len(cu) - 1):
        seq = ids[cu[s]:cu[s + 1]].unsqueeze(0)
        lab = labels[cu[s]:cu[s + 1]]
        logits = pm(input_ids=seq, use_cache=False).logits[0]
        logits_all.append(logits.detach())
        # Hugging Face convention: logits at t predict the label at t+1 of the same sequence.
        total = total + F.cross_entropy(logits[:-1], lab[1:], ignore_index=-100, reduction="sum")
        count += int((lab[1:] != -100).sum())
    loss = total / count
    loss.backward()
    out = {"input_ids": ids, "cu_seqlens": torch.tensor(cu, dtype=torch.int64), "labels": labels,
           "loss": loss.detach().reshape(1), "logits": torch.cat(logits_all, 0)}
    for name, p in pm.named_parameters():
        if "lora_" in name:
            out["grad." + name.replace(".default", "")] = p.grad.detach().clone()
    return out, count


def make_variant(name, v, root, seed):
    gen = torch.Generator().manual_seed(seed)
    folder = os.path.join(root, name)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    model = build_model(v)
    randomize(model, gen)
    model.eval()
    # Round every weight to the disk dtype first, so the float64 reference uses exactly the values
    # the checkpoint holds.
    model.to(v["dtype"]).to(torch.float64)
    save_checkpoint(model, v, folder)
    set_rope_float64(model)
    single = torch.randint(0, VOCAB, (SINGLE_LENGTH,), generator=gen)
    pack, cu = pack_inputs(gen)
    with torch.no_grad(), float64_everywhere():
        ref = {
            "single.input_ids": single,
            "single.logits": logits_one_by_one(model, single, [0, SINGLE_LENGTH]),
            "pack.input_ids": pack,
            "pack.cu_seqlens": torch.tensor(cu, dtype=torch.int64),
            "pack.logits": logits_one_by_one(model, pack, cu),
        }
    # For the record: how far transformers' own float32 path is from the float64 reference.
    with torch.no_grad():
        m32 = build_model(v)
        m32.load_state_dict({k: t.float() for k, t in model.state_dict().items()}, strict=False)
        m32.eval()
        l32 = logits_one_by_one(m32, single, [0, SINGLE_LENGTH]).double()
        rel32 = float((l32 - ref["single.logits"]).abs().max() / ref["single.logits"].abs().max())
    save_file({k: t.contiguous() for k, t in ref.items()}, os.path.join(folder, "reference.safetensors"))
    info = {"variant": name, "float32_vs_float64_rel": rel32,
            "tie_word_embeddings_text": model.config.get_text_config().tie_word_embeddings,
            "saved_files": sorted(os.listdir(folder)),
            "saved_tensors": sorted(k for f in os.listdir(folder) if f.endswith(".safetensors")
                                    and f != "reference.safetensors"
                                    for k in load_file(os.path.join(folder, f)).keys()
                                    if "visual" not in k),
            "config": json.load(open(os.path.join(folder, "config.json")))}
    if v["adapter"] is not None:
        pm = make_adapter(model, v["adapter"], gen, os.path.join(folder, "adapter"))
        set_rope_float64(pm)
        with float64_everywhere():
            g, count = grad_reference(pm, pack, cu, gen)
        save_file({k: t.contiguous() for k, t in g.items()}, os.path.join(folder, "grad_reference.safetensors"))
        info["grad_targets"] = count
        info["loss"] = float(g["loss"])
        info["adapter_files"] = sorted(os.listdir(os.path.join(folder, "adapter")))
    return info


def optimizer_reference(root):
    """torch.optim.AdamW steps, clip_grad_norm_ and transformers' schedules, for the step machinery."""
    gen = torch.Generator().manual_seed(77)
    out = {}
    for dtype, tag in ((torch.float64, "f64"), (torch.float32, "f32")):
        p = torch.nn.Parameter(torch.randn(37, generator=gen, dtype=torch.float64).to(dtype))
        out[f"adamw.{tag}.initial"] = p.detach().clone()
        opt = torch.optim.AdamW([p], lr=1e-2, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1, foreach=False)
        for step in range(6):
            g = torch.randn(37, generator=gen, dtype=torch.float64).to(dtype) * (10.0 if step == 2 else 1.0)
            out[f"adamw.{tag}.grad{step}"] = g.clone()
            p.grad = g.clone()
            lr = [1e-2, 5e-3, 2e-2, 1e-2, 0.0, 7e-3][step]
            for group in opt.param_groups:
                group["lr"] = lr
            opt.step()
            out[f"adamw.{tag}.after{step}"] = p.detach().clone()
    a = torch.nn.Parameter(torch.randn(5, 3, generator=gen, dtype=torch.float64))
    b = torch.nn.Parameter(torch.randn(4, generator=gen, dtype=torch.float64))
    a.grad = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    b.grad = torch.randn(4, generator=gen, dtype=torch.float64)
    out["clip.a.grad"], out["clip.b.grad"] = a.grad.clone(), b.grad.clone()
    norm = torch.nn.utils.clip_grad_norm_([a, b], max_norm=0.5)
    out["clip.norm"] = norm.reshape(1).double()
    out["clip.a.clipped"], out["clip.b.clipped"] = a.grad.clone(), b.grad.clone()
    from transformers import get_scheduler
    for name in ("constant", "constant_with_warmup", "linear", "cosine"):
        q = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([q], lr=3e-4)
        sched = get_scheduler(name, opt, num_warmup_steps=4, num_training_steps=25)
        lrs = []
        for _ in range(25):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        out[f"schedule.{name}"] = torch.tensor(lrs, dtype=torch.float64)
    save_file({k: t.contiguous() for k, t in out.items()}, os.path.join(root, "optimizer_reference.safetensors"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures")
    ap.add_argument("--only", default="", help="comma-separated parts: optimizer, models")
    args = ap.parse_args()
    torch.set_num_threads(min(16, os.cpu_count() or 1))
    import peft
    print("torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__)
    os.makedirs(args.out, exist_ok=True)
    parts = set(args.only.split(",")) if args.only else {"optimizer", "models"}
    if "optimizer" in parts:
        optimizer_reference(args.out)
    if "models" not in parts:
        return 0
    infos = []
    for i, (name, v) in enumerate(VARIANTS.items()):
        info = make_variant(name, v, args.out, seed=1000 + i)
        print(json.dumps(info))
        infos.append(info)
    with open(os.path.join(args.out, "MANIFEST.json"), "w") as f:
        json.dump({"made_by": "scripts/make_fixtures.py", "torch": torch.__version__,
                   "transformers": transformers.__version__, "peft": peft.__version__,
                   "variants": [{k: x for k, x in i.items() if k not in ("saved_tensors", "config")}
                                for i in infos]}, f, indent=2)


if __name__ == "__main__":
    sys.exit(main())
