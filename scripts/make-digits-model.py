"""Makes the fine-tuning demo's files in samples/digits/ with a real framework (PyTorch).

  cnn-8.onnx       a small CNN trained on digits 0-7 (examples 0-999 of digits.csv.gz): the pretrained model
  cnn-10.onnx      the same network with a 10-class head, freshly initialized: the model to train
  finetune.csv.gz  examples 1000-1796 (all ten digits, never seen in pretraining): label, then 64 pixels

Run with Debian's python3-torch (apt-get install python3-torch):  /usr/bin/python3 scripts/make-digits-model.py
The pixel scaling (/16) is part of the exported models, so the data stays raw integers 0..16.
"""
import gzip
import os

import numpy as np
import torch
from torch import nn

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'samples', 'digits')
PRETRAIN_END = 1000
OLD_CLASSES = 8

torch.manual_seed(0)
torch.set_num_threads(1)

data = np.loadtxt(gzip.open(os.path.join(HERE, 'digits.csv.gz'), 'rt'), delimiter=',')
pixels, labels = data[:, :64].astype(np.float32), data[:, 64].astype(np.int64)


class DigitsCNN(nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.fc1 = nn.Linear(64, 32)
        self.fc2 = nn.Linear(32, classes)

    def forward(self, x):
        x = self.features(x / 16.0)
        return self.fc2(torch.relu(self.fc1(torch.flatten(x, 1))))


def export(model, path):
    model.eval()
    torch.onnx.export(
        model, torch.zeros(1, 1, 8, 8), path, input_names=['pixels'], output_names=['logits'],
        dynamic_axes={'pixels': {0: 'batch'}, 'logits': {0: 'batch'}}, opset_version=13,
        do_constant_folding=False,
    )


old = (labels < OLD_CLASSES) & (np.arange(len(labels)) < PRETRAIN_END)
x = torch.from_numpy(pixels[old]).reshape(-1, 1, 8, 8)
y = torch.from_numpy(labels[old])
pretrained = DigitsCNN(OLD_CLASSES)
optimizer = torch.optim.Adam(pretrained.parameters(), lr=0.01)
for epoch in range(40):
    permutation = torch.randperm(len(x))
    for start in range(0, len(x), 64):
        batch = permutation[start:start + 64]
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(pretrained(x[batch]), y[batch])
        loss.backward()
        optimizer.step()
pretrained.eval()
with torch.no_grad():
    accuracy = (pretrained(x).argmax(1) == y).float().mean().item()
print(f'pretrained on {len(x)} examples of digits 0-{OLD_CLASSES - 1}: training accuracy {accuracy:.3f}')
export(pretrained, os.path.join(HERE, 'cnn-8.onnx'))
export(DigitsCNN(10), os.path.join(HERE, 'cnn-10.onnx'))

rows = ['label,' + ','.join(f'p{i}' for i in range(64))]
rows += [f'{labels[i]},' + ','.join(str(int(v)) for v in pixels[i]) for i in range(PRETRAIN_END, len(labels))]
with gzip.GzipFile(os.path.join(HERE, 'finetune.csv.gz'), 'wb', mtime=0) as f:
    f.write(('\n'.join(rows) + '\n').encode())
print(f'wrote cnn-8.onnx, cnn-10.onnx and finetune.csv.gz ({len(labels) - PRETRAIN_END} examples) in {HERE}')
