#!/usr/bin/python3
"""Exports goslim's four reference benchmark models with PyTorch.

Run from the repository root (Debian python3-torch 1.13, python3-onnx 1.12):

    /usr/bin/python3 bench/models/gen_models.py [--out DIR] [--force]

DIR defaults to .cache/bench-models (gitignored: the files are a few MB and
are rebuilt on demand, never committed). Existing files are kept unless
--force is given. Every model is written as NAME.onnx at opset 13 with
input "input" and output "output", both with the symbolic batch dim
"batch"; weights are seeded random (He-normal via PyTorch's default init
under a fixed seed), BatchNorm gets seeded random running statistics and
affine parameters, and the export is an ordinary eval-mode export (PyTorch
folds BatchNorm into the preceding Conv, as users' exports do).

| NAME         | input        | architecture                                   | MMAC/img |
|--------------|--------------|------------------------------------------------|----------|
| lenet5       | 1x28x28      | LeNet-5, conv5x5 without padding               | 0.28     |
| mlp          | 1x28x28      | Flatten, 784-512-256-10 with ReLU              | 0.54     |
| resnet8      | 3x32x32      | ResNet-8, stages 16/32/64, one basic block each| 12.5     |
| mobilenetv2  | 3x96x96      | MobileNetV2 width 0.5 (torchvision layout)     | 17.6     |

The script counts MACs (Conv and Linear, per image), checks each model
within 5% of the figure above, and prints it.
An int8 QDQ variant of each model will be added here later.
"""
import argparse
import os
import sys

import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OPSET = 13


class LeNet5(nn.Module):
    """LeNet-5 on 1x28x28 without padding: conv5x5(6) - ReLU - maxpool2 -
    conv5x5(16) - ReLU - maxpool2 - fc120 - ReLU - fc84 - ReLU - fc10."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 4 * 4, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class MLP(nn.Module):
    """784-512-256-10 with ReLU; the 1x28x28 input is flattened inside."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 512)
        self.fc2 = nn.Linear(512, 256)
        self.fc3 = nn.Linear(256, 10)

    def forward(self, x):
        x = torch.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        s = x if self.down is None else self.down(x)
        return F.relu(y + s)


class ResNet8(nn.Module):
    """ResNet-8 for 3x32x32: conv3x3(16)-BN-ReLU stem, three stages
    (16/32/64 channels, strides 1/2/2) of one basic block each, global
    average pooling, fc10."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        self.layer1 = BasicBlock(16, 16, 1)
        self.layer2 = BasicBlock(16, 32, 2)
        self.layer3 = BasicBlock(32, 64, 2)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = F.relu(self.bn(self.conv(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(x)


def make_divisible(v, divisor=8):
    """torchvision's _make_divisible: round to a multiple of divisor, never
    going below 90% of v."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def conv_bn(cin, cout, k, stride, groups, relu6):
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if relu6:
        layers.append(nn.ReLU6())
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hid = int(round(cin * expand))
        layers = []
        if expand != 1:
            layers.append(conv_bn(cin, hid, 1, 1, 1, True))
        layers += [conv_bn(hid, hid, 3, stride, hid, True), conv_bn(hid, cout, 1, 1, 1, False)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.body(x)
        return x + y if self.residual else y


class MobileNetV2(nn.Module):
    """torchvision's MobileNetV2 layout (17 inverted residual blocks, last
    conv 1280 channels) at width multiplier 0.5, 10 classes."""

    SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]

    def __init__(self, width=0.5, classes=10):
        super().__init__()
        cin = make_divisible(32 * width)
        last = make_divisible(1280 * max(1.0, width))
        layers = [conv_bn(3, cin, 3, 2, 1, True)]
        for t, c, n, s in self.SETTINGS:
            cout = make_divisible(c * width)
            for i in range(n):
                layers.append(InvertedResidual(cin, cout, s if i == 0 else 1, t))
                cin = cout
        layers.append(conv_bn(cin, last, 1, 1, 1, True))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, classes))

    def forward(self, x):
        x = self.features(x)
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.classifier(x)


# name, constructor, input shape (without batch), seed, reference MMAC/img
MODELS = [
    ("lenet5", LeNet5, (1, 28, 28), 11, 0.28),
    ("mlp", MLP, (1, 28, 28), 12, 0.54),
    ("resnet8", ResNet8, (3, 32, 32), 13, 12.5),
    ("mobilenetv2", MobileNetV2, (3, 96, 96), 14, 17.6),
]


def randomize_bn(model, gen):
    """Gives every BatchNorm seeded running statistics and affine
    parameters, so the folded weights are not the identity."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(c, generator=gen) * 0.5)
                m.running_var.copy_(torch.rand(c, generator=gen) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(c, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(c, generator=gen) * 0.2)


def count_macs(model, shape):
    """Multiply-accumulates per image of Conv2d and Linear layers, counted
    with forward hooks (the same rule as goslim's inspect package)."""
    total = [0]

    def hook(m, inp, out):
        if isinstance(m, nn.Conv2d):
            total[0] += out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, nn.Linear):
            total[0] += out.numel() * m.in_features

    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(torch.zeros(1, *shape))
    for h in hs:
        h.remove()
    return total[0]


def export(out, name, ctor, shape, seed, ref_mmac):
    torch.manual_seed(seed)
    model = ctor()
    randomize_bn(model, torch.Generator().manual_seed(seed + 1000))
    model.eval()
    macs = count_macs(model, shape)
    if abs(macs / 1e6 - ref_mmac) > 0.05 * ref_mmac:
        sys.exit("%s: %.3f MMAC per image, expected about %.2f" % (name, macs / 1e6, ref_mmac))
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(seed + 2000))
    path = os.path.join(out, name + ".onnx")
    tmp = path + ".tmp"
    torch.onnx.export(
        model, x, tmp, opset_version=OPSET, input_names=["input"], output_names=["output"],
        dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, do_constant_folding=True)
    m = onnx.load(tmp)
    onnx.checker.check_model(m)
    for vi in (m.graph.input[0], m.graph.output[0]):
        if vi.type.tensor_type.shape.dim[0].dim_param != "batch":
            sys.exit("%s: %s has no symbolic batch dim" % (path, vi.name))
    got = [o.version for o in m.opset_import if o.domain in ("", "ai.onnx")][0]
    if got != OPSET:
        sys.exit("%s: opset %d, want %d" % (path, got, OPSET))
    os.replace(tmp, path)
    ops = {}
    for n in m.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    print("%-12s %9d bytes  %6.2f MMAC/img  %s" % (name, os.path.getsize(path), macs / 1e6,
          " ".join("%s:%d" % kv for kv in sorted(ops.items()))))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, ".cache", "bench-models"),
                    help="output folder (default .cache/bench-models)")
    ap.add_argument("--force", action="store_true", help="rewrite models that already exist")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)
    for name, ctor, shape, seed, ref in MODELS:
        if not args.force and os.path.exists(os.path.join(args.out, name + ".onnx")):
            print("%-12s exists, kept (use --force to rewrite)" % name)
            continue
        export(args.out, name, ctor, shape, seed, ref)


if __name__ == "__main__":
    main()
