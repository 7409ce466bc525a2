"""Writes a few small valid safetensors files into a folder: the starting corpus of the fuzzer.

Built the way the Python safetensors library lays files out (header padded with spaces to 8
bytes, data packed by descending element size), without needing that library.
"""
import json
import os
import struct
import sys

ELEMENT_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1,
                 "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


def safetensors_bytes(tensors, metadata=None):
    """tensors: [(name, dtype, shape)]; the data bytes count up from 1."""
    header = {"__metadata__": metadata} if metadata else {}
    offset = 0
    for name, dtype, shape in sorted(tensors, key=lambda t: -ELEMENT_BYTES[t[1]]):
        n = ELEMENT_BYTES[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + bytes(i % 251 + 1 for i in range(offset))


SEEDS = {
    "empty": safetensors_bytes([]),
    "one_f32": safetensors_bytes([("w", "F32", [2, 3])]),
    "metadata": safetensors_bytes([("lora_A.weight", "BF16", [2, 4])], {"format": "pt"}),
    "every_dtype": safetensors_bytes([(f"t.{d}", d, [2]) for d in ELEMENT_BYTES]),
    "edges": safetensors_bytes([("scalar", "I64", []), ("empty", "F16", [0, 3]),
                                ("bytes", "U8", [3]), ("matrix", "F32", [1, 2, 1])]),
}

if __name__ == "__main__":
    folder = sys.argv[1]
    os.makedirs(folder, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(folder, f"seed_{name}.safetensors"), "wb") as f:
            f.write(data)
