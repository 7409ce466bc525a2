#!/usr/bin/env bash
# End-to-end training benchmark on CPU (part of `make bench`): `deltatune train` on a random model
# of the real Qwen3.5-0.8B shape (bf16), a synthetic pre-tokenized dataset with sample packing into
# rows of 2048 tokens, LoRA r=16 on every linear layer, gradient checkpointing. Prints tokens/s
# (from metrics.jsonl, steps after the first) and peak RSS (GNU time).
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-4}
scripts/build.sh >/dev/null
command -v /usr/bin/time >/dev/null || { echo "bench_train: needs /usr/bin/time (Debian package time)" >&2; exit 1; }
dir=out/bench-train
mkdir -p "$dir"
[[ -f "$dir/model-0.8b/model.safetensors" ]] || build/deltatune make-model --preset 0.8b --dtype bf16 --seed 1 "$dir/model-0.8b"
python3 - "$dir/data.jsonl" <<'PY'
import json, random, sys
rng = random.Random(7)
with open(sys.argv[1], "w") as f:
    for _ in range(200):
        n = rng.randint(100, 1000)
        f.write(json.dumps({"input_ids": [rng.randrange(248320) for _ in range(n)]}) + "\n")
PY
cat > "$dir/config.yaml" <<YAML
base_model: $dir/model-0.8b
datasets:
  - path: $dir/data.jsonl
sequence_len: 2048
sample_packing: true
lora_target_linear: true
lora_r: 16
lora_alpha: 32
micro_batch_size: 1
max_steps: $steps
learning_rate: 0.0002
gradient_checkpointing: true
output_dir: $dir/out
YAML
rm -rf "$dir/out"
/usr/bin/time -v build/deltatune train "$dir/config.yaml" 2> "$dir/log.txt" || { tail -20 "$dir/log.txt"; exit 1; }
grep -E "Maximum resident set size|Elapsed" "$dir/log.txt"
python3 - "$dir/out/metrics.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"loss"' in l]
t = [r for r in rows[1:]]
tokens = sum(r["tokens"] for r in t)
secs = t[-1]["elapsed_s"] - rows[0]["elapsed_s"]
print(f"steps {len(rows)}, tokens per step {rows[0]['tokens']}, steady tokens/s {tokens / secs:.1f} (steps 2..{len(rows)})")
PY
