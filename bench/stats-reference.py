# Reference for `ckpt inspect --stats` of a safetensors file: numpy over a memmap, the same
# statistics per float32 tensor as a numpy user would write them (min, max, mean and std of the
# finite values, fraction of zeros, NaN/±Inf/subnormal counts, a 32-bin histogram over [min, max]).
# Usage: python3 bench/stats-reference.py FILE
import json, struct, sys
import numpy as np

with open(sys.argv[1], 'rb') as f:
    n = struct.unpack('<Q', f.read(8))[0]
    header = json.loads(f.read(n))
data = np.memmap(sys.argv[1], dtype=np.uint8, mode='r', offset=8 + n)
header.pop('__metadata__', None)
tiny = np.finfo(np.float32).tiny
count = 0
for name, e in header.items():
    if e['dtype'] != 'F32':
        continue
    x = data[e['data_offsets'][0]:e['data_offsets'][1]].view(np.float32)
    finite = np.isfinite(x)
    f = x if finite.all() else x[finite]
    if f.size:
        lo, hi = float(f.min()), float(f.max())
        mean, std = f.mean(dtype=np.float64), f.std(dtype=np.float64)
        histogram = np.histogram(f, bins=32, range=(lo, hi))[0]
    zeros = np.count_nonzero(x == 0) / max(1, x.size)
    nan, pos, neg = np.isnan(x).sum(), np.isposinf(x).sum(), np.isneginf(x).sum()
    subnormal = np.count_nonzero((np.abs(f) < tiny) & (f != 0))
    count += 1
print(json.dumps({'tensors': count}))
