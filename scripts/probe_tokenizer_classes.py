#!/usr/bin/env python3
"""How tokenizers (Oniguruma under the Qwen split expression) and its NFC classify every code
point, to compare with PCRE2 and utf8proc (docs/design-notes.md, "Tokenizer"). Needs tokenizers.

    python3 scripts/probe_tokenizer_classes.py --tokenizer tokenizer.json --out classes.json

Two probes per code point c, through the pre-tokenizer alone (pre_tokenize_str):
  "x" c "y"  -> one piece: c is a letter (\\p{L}); three: a number (\\p{N}); two: other or space
  "x" c "!"  -> three pieces: c is \\s; two: c is other (neither letter, number nor space)
Output: {"classes": [[first, last, "L"|"N"|"S"|"O"], ...], "nfc_changes": {cp: "nfc of chr(cp)"}}.
"""
import argparse
import json
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seconds", type=float, default=120, help="stop early after this long")
    args = ap.parse_args()
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(args.tokenizer)
    pre = tok.pre_tokenizer
    norm = tok.normalizer
    start = time.time()
    ranges, nfc = [], {}
    last = 0
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF or cp in (0x0A, 0x0D):
            continue
        if time.time() - start > args.seconds:
            break
        c = chr(cp)
        n1 = len(pre.pre_tokenize_str("x" + c + "y"))
        if n1 == 1:
            cls = "L"
        elif n1 == 3:
            cls = "N"
        else:
            cls = "S" if len(pre.pre_tokenize_str("x" + c + "!")) == 3 else "O"
        if ranges and ranges[-1][2] == cls and ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp, cls])
        normalized = norm.normalize_str(c)
        if normalized != c:
            nfc[cp] = normalized
        last = cp
    with open(args.out, "w") as f:
        json.dump({"last_code_point": last, "classes": ranges, "nfc_changes": nfc}, f)
    print(f"probed up to U+{last:04X} in {time.time() - start:.1f} s: {len(ranges)} ranges, {len(nfc)} NFC changes")


if __name__ == "__main__":
    main()
