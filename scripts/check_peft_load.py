#!/usr/bin/env python3
"""Does an adapter written by `deltatune train` load in PEFT 0.21 + transformers 5.17, and give the
same logits as `deltatune forward --adapter`?

Runs where transformers and PEFT are installed (the GPU machine, on its CPU). For each case: the
base checkpoint folder, the adapter folder, the input ids (safetensors: input_ids, cu_seqlens) and
our logits (safetensors: logits, from `deltatune forward --adapter ... --precision float64`). The
reference runs in float64 (make_fixtures.float64_everywhere), one sequence at a time. Prints one
JSON line per case with the largest relative difference.
"""
import argparse
import json
import os
import sys

import torch
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import float64_everywhere, set_rope_float64  # noqa: E402


def check(base, adapter, inputs, ours):
    import peft
    import transformers
    config = transformers.AutoConfig.from_pretrained(base)
    cls = transformers.Qwen3_5ForConditionalGeneration if config.model_type == "qwen3_5" else transformers.Qwen3_5ForCausalLM
    model = cls.from_pretrained(base, dtype=torch.float64, attn_implementation="eager")
    model = peft.PeftModel.from_pretrained(model, adapter)
    model.to(torch.float64).eval()
    set_rope_float64(model)
    x = load_file(inputs)
    ids, cu = x["input_ids"], x["cu_seqlens"].tolist()
    with torch.no_grad(), float64_everywhere():
        ref = torch.cat([model(input_ids=ids[cu[s]:cu[s + 1]].unsqueeze(0), use_cache=False).logits[0]
                         for s in range(len(cu) - 1)], 0)
    got = load_file(ours)["logits"].double()
    rel = float((got - ref).abs().max() / ref.abs().max())
    lora_modules = sum(1 for n, _ in model.named_modules() if n.endswith("lora_A"))
    return {"base": base, "adapter": adapter, "peft_lora_modules": lora_modules, "max_rel_diff": rel,
            "logits_shape": list(ref.shape)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", nargs=4, action="append", metavar=("BASE", "ADAPTER", "INPUT", "OURS"), required=True)
    args = ap.parse_args()
    for base, adapter, inputs, ours in args.case:
        print(json.dumps(check(base, adapter, inputs, ours)))


if __name__ == "__main__":
    sys.exit(main())
