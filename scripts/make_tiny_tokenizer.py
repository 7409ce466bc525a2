"""Writes a tiny byte-level BPE tokenizer (Qwen's format) for the 256-token test models.

    python3 scripts/make_tiny_tokenizer.py OUT_DIR

tokenizer.json + tokenizer_config.json (with a ChatML chat template), no downloads. The vocabulary
has exactly 256 ids, the size of the fixture checkpoints' embeddings:
  0..242    one token per byte, in byte order, except the 13 bytes that never occur in UTF-8
            (0xC0, 0xC1, 0xF5..0xFF), written in GPT-2's byte-to-unicode alphabet ("Ġ" = space);
  243..251  the results of 9 merges ("Ġt", "he", "Ġthe", ...);
  252       "<think>", an added token that is not special (llama.cpp: USER_DEFINED);
  253..255  "<|endoftext|>", "<|im_start|>", "<|im_end|>", special added tokens (CONTROL).
"""
import json
import os
import sys

# Qwen3.5's pre-tokenizer split pattern (its tokenizer.json, as quoted by llama.cpp's
# src/llama-vocab.cpp for LLAMA_VOCAB_PRE_TYPE_QWEN35, the "qwen35" pre-tokenizer we export).
SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}"
         r"| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
MERGES = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "n"), ("e", "r"), ("Ġ", "a"), ("o", "n"),
          ("r", "e"), ("a", "t")]
ADDED = [("<think>", False), ("<|endoftext|>", True), ("<|im_start|>", True), ("<|im_end|>", True)]
CHAT_TEMPLATE = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
                 "message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}"
                 "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def bytes_to_unicode():
    """GPT-2's reversible map from bytes to printable characters."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return dict(zip(printable, map(chr, chars)))


def main(out_dir):
    byte_char = bytes_to_unicode()
    unused = {0xC0, 0xC1} | set(range(0xF5, 0x100))
    vocab = {}
    for b in range(256):
        if b not in unused:
            vocab[byte_char[b]] = len(vocab)
    for a, b in MERGES:
        vocab[a + b] = len(vocab)
    added = []
    for content, special in ADDED:
        added.append({"id": len(vocab) + len(added), "content": content, "single_word": False,
                      "lstrip": False, "rstrip": False, "normalized": False, "special": special})
    assert len(vocab) + len(added) == 256
    tokenizer = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": SPLIT}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                           "use_regex": False},
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False,
                  "ignore_merges": False, "vocab": vocab, "merges": [[a, b] for a, b in MERGES]},
    }
    config = {
        "add_bos_token": False, "add_prefix_space": False, "bos_token": None, "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>", "unk_token": None, "model_max_length": 4096,
        "tokenizer_class": "Qwen2Tokenizer", "errors": "replace", "split_special_tokens": False,
        "chat_template": CHAT_TEMPLATE,
        "added_tokens_decoder": {str(a["id"]): {k: v for k, v in a.items() if k != "id"} for a in added},
    }
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer, f, ensure_ascii=False, indent=1)
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
