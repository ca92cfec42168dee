# Reference for `ckpt diff --values` on two ONNX files: onnx.load, then numpy on each initializer
# pair, the same statistics as bench/diff-reference.py (bytes equal, max and mean |a−b|, cosine, allclose).
# Usage: python3 bench/diff-reference-onnx.py A B
import json, sys
import numpy as np
import onnx
from onnx import numpy_helper

def tensors(path):
    model = onnx.load(path)
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}

a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
differing = 0
for name, x in a.items():
    y = b[name]
    identical = np.array_equal(x.view(np.uint8), y.view(np.uint8))
    d = np.abs(x - y)
    max_abs, mean_abs = d.max(initial=0), d.mean() if d.size else 0.0
    x1, y1 = x.ravel(), y.ravel()
    denominator = np.sqrt(x1 @ x1) * np.sqrt(y1 @ y1)
    cosine = (x1 @ y1) / denominator if denominator > 0 else 1.0
    differing += not bool(np.all(d <= 0))
print(json.dumps({'pairs': len(a), 'differing': differing}))
