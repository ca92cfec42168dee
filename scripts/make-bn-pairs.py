"""Conv + BatchNorm detectors for the structural-matching and folding tests (python3-torch 1.13).

Writes into OUT (argv[1]):
  det2.pth, det3.pth              state dicts of a 2-class and a 3-class detector (BN unfolded)
  det2-unfolded.onnx              training-mode export of det2: BatchNormalization and module names kept
  det2-folded.onnx, det3-folded.onnx   eval-mode exports: BN folded into the convs, numeric names;
                                  det3 scales its input first, so its numbering and wiring differ
  det2-deeper-folded.onnx         det2 with one more conv-bn block: which block is new is ambiguous
The BatchNorm statistics are random, so folding changes every value.
"""
import sys
import torch
import torch.nn as nn

out = sys.argv[1]


def block(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class Detector(nn.Module):
    def __init__(self, classes, blocks=11, anchors=3, prescale=False):
        super().__init__()
        self.prescale = prescale
        self.base_net = nn.Sequential(block(3, 8), *[block(8, 8) for _ in range(blocks - 1)])
        self.classification_header = nn.Conv2d(8, anchors * classes, 1)
        self.regression_header = nn.Conv2d(8, anchors * 4, 1)

    def forward(self, x):
        if self.prescale:
            x = x * 0.5
        x = self.base_net(x)
        return self.classification_header(x), self.regression_header(x)


def detector(classes, seed, **options):
    torch.manual_seed(seed)
    model = Detector(classes, **options)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-1, 1)
    return model.eval()


x = torch.randn(1, 3, 16, 16)
for classes, seed in [(2, 1), (3, 2)]:
    model = detector(classes, seed, prescale=classes == 3)
    # A training-mode export runs the model in training mode, which updates the running
    # statistics: export it first, so that every file of one detector holds the same values.
    if classes == 2:
        torch.onnx.export(model, x, f'{out}/det2-unfolded.onnx', training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False, opset_version=13)
    torch.save(model.state_dict(), f'{out}/det{classes}.pth')
    torch.onnx.export(model, x, f'{out}/det{classes}-folded.onnx', do_constant_folding=True, opset_version=13)

torch.onnx.export(detector(2, 3, blocks=12), x, f'{out}/det2-deeper-folded.onnx', do_constant_folding=True, opset_version=13)
