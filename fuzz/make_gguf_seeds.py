"""Writes a few small valid GGUF files into a folder: the starting corpus of the GGUF fuzzer.

Laid out as gguf-py's GGUFWriter writes them (metadata, tensor infos, zero padding to the
alignment, each tensor padded), without needing gguf-py.
"""
import os
import struct
import sys

# GGUF value types (ggml/include/gguf.h) and the struct format of the fixed-size ones.
U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
FORMAT = {U8: "B", I8: "b", U16: "H", I16: "h", U32: "I", I32: "i", F32: "f", BOOL: "?",
          U64: "Q", I64: "q", F64: "d"}
# ggml types: (number, block size, bytes per block).
GGML = {"f32": (0, 1, 4), "f16": (1, 1, 2), "q8_0": (8, 32, 34), "bf16": (30, 1, 2), "q4_K": (12, 256, 144)}


def string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def value(vtype, v, sub=None):
    if vtype == STRING:
        return string(v)
    if vtype == ARRAY:
        out = struct.pack("<IQ", sub[0], len(v))
        for item in v:
            out += value(sub[0], item, sub[1:] or None)
        return out
    return struct.pack("<" + FORMAT[vtype], v)


def gguf(metadata, tensors, alignment=32):
    """metadata: [(key, type, value, array types or None)]; tensors: [(name, ggml type, ne)]."""
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(metadata))
    for key, vtype, v, sub in metadata:
        out += string(key) + struct.pack("<I", vtype) + value(vtype, v, sub)
    offset, sizes = 0, []
    for name, t, ne in tensors:
        number, block, block_bytes = GGML[t]
        n = 1
        for d in ne:
            n *= d
        sizes.append(n // block * block_bytes)
        out += string(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne)
        out += struct.pack("<IQ", number, offset)
        offset += -(-sizes[-1] // alignment) * alignment
    out += b"\0" * (-len(out) % alignment)
    for size in sizes:
        out += bytes(i % 251 + 1 for i in range(size)) + b"\0" * (-size % alignment)
    return out


SEEDS = {
    "empty": gguf([], []),
    "one_f32": gguf([("general.architecture", STRING, "qwen35", None)], [("w", "f32", [3, 2])]),
    "every_value_type": gguf(
        [(f"k{t}", t, 1, None) for t in (U8, I8, U16, I16, U32, I32, F32, BOOL, U64, I64, F64)]
        + [("s", STRING, "x", None), ("a", ARRAY, ["a", "b"], [STRING]), ("n", ARRAY, [[1, 2], [3]], [ARRAY, I32]),
           ("b", ARRAY, [True, False], [BOOL]), ("e", ARRAY, [], [U32])], []),
    "every_tensor_type": gguf([], [(f"t.{t}", t, [256, 1]) for t in GGML]),
    "alignment_64": gguf([("general.alignment", U32, 64, None)], [("a", "f32", [1]), ("b", "f16", [3, 1, 1, 2])], 64),
    "adapter": gguf([("general.type", STRING, "adapter", None), ("adapter.lora.alpha", F32, 16.0, None)],
                    [("blk.0.attn_qkv.weight.lora_a", "f32", [8, 2]), ("blk.0.attn_qkv.weight.lora_b", "f32", [2, 16])]),
}

if __name__ == "__main__":
    folder = sys.argv[1]
    os.makedirs(folder, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(folder, f"seed_{name}.gguf"), "wb") as f:
            f.write(data)
