# Reference for `ckpt diff --values` on two safetensors files (numpy over memmaps) or two ONNX
# files (onnx.load, then numpy): the same statistics per tensor pair, in float32 as a numpy user
# would write it (bytes equal, max and mean |a−b|, cosine, allclose with atol=rtol=0).
# Usage: python3 bench/diff-reference.py A B
import json, struct, sys
import numpy as np

def tensors(path):
    if path.endswith('.onnx'):
        import onnx
        from onnx import numpy_helper
        return {t.name: numpy_helper.to_array(t).ravel() for t in onnx.load(path).graph.initializer}
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
    data = np.memmap(path, dtype=np.uint8, mode='r', offset=8 + n)
    header.pop('__metadata__', None)
    return {name: data[e['data_offsets'][0]:e['data_offsets'][1]].view(np.float32) for name, e in header.items() if e['dtype'] == 'F32'}

a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
differing = 0
for name, x in a.items():
    y = b[name]
    identical = np.array_equal(x.view(np.uint8), y.view(np.uint8))
    d = np.abs(x - y)
    max_abs, mean_abs = d.max(initial=0), d.mean() if d.size else 0.0
    denominator = np.sqrt(x @ x) * np.sqrt(y @ y)
    cosine = (x @ y) / denominator if denominator > 0 else 1.0
    within = bool(np.all(d <= 0))
    differing += not within
print(json.dumps({'pairs': len(a), 'differing': differing}))
