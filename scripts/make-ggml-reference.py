"""Writes test/fixtures/ggml-reference.json: random ggml blocks and what gguf-py's reference
dequantizer (gguf.quants.dequantize, llama.cpp's numpy port of ggml-quants.c) makes of them.
Run with gguf-py on PYTHONPATH: python3 scripts/make-ggml-reference.py"""
import json, sys
import numpy as np
import gguf
from gguf.quants import dequantize
from gguf.constants import GGMLQuantizationType as T, GGML_QUANT_SIZES

# Offsets of the float16 scale fields in each block: set to finite values so that no block is NaN.
HALF_FIELDS = {T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0], T.Q2_K: [80, 82], T.Q3_K: [108],
               T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208], T.IQ4_NL: [0], T.IQ4_XS: [0], T.TQ2_0: [64]}
rng = np.random.default_rng(16)
out = {"generator": f"gguf-py {getattr(gguf, '__version__', '0.19.0')} gguf.quants.dequantize on random blocks", "types": {}}
for qtype, halves in HALF_FIELDS.items():
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    blocks = rng.integers(0, 256, size=(3, type_size), dtype=np.uint8)
    for b in range(3):
        for at in halves:
            blocks[b, at:at + 2] = np.frombuffer(np.float16(rng.uniform(-0.5, 0.5)).tobytes(), dtype=np.uint8)
    values = dequantize(blocks.reshape(-1), qtype).astype(np.float32).reshape(-1)
    assert values.size == 3 * block_size
    out["types"][qtype.name.lower()] = {"blocks": blocks.tobytes().hex(), "float32": values.tobytes().hex()}
json.dump(out, open(sys.argv[1] if len(sys.argv) > 1 else "test/fixtures/ggml-reference.json", "w"), indent=1)
