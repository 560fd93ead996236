#!/usr/bin/python3
"""Generates goslim's real-model fixtures with PyTorch.

Run from the repository root (Debian python3-torch 1.13, python3-onnx 1.12,
python3-numpy):

    /usr/bin/python3 testdata/models/gen_fixtures.py

For each model NAME it writes, next to this script:
  NAME.onnx         the model, exported with a dynamic batch axis "batch" on
                    the input "input" and the output "output"
  NAME_input.npy    a float32 input of batch 3 (seeded normal noise)
  NAME_output.npy   PyTorch's output for that input (the reference)

Everything is seeded, so reruns on the same PyTorch build give the same
files. BatchNorm layers get random running statistics and affine
parameters, and the export keeps them as BatchNormalization nodes (not
fused into Conv) in inference mode; the script checks that with onnx.
"""
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = os.path.dirname(os.path.abspath(__file__))
MAX_BYTES = 500 * 1024


class LeNet5(nn.Module):
    """LeNet-5 for 1x28x28 inputs (padding 2 on the first conv)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


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
    """ResNet-8-like CIFAR net: stem, three stages (16/32/64) of one basic
    block each, global average pooling and a linear classifier."""

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


def conv_bn(cin, cout, k, stride, groups, act):
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hid = cin * expand
        layers = []
        if expand != 1:
            layers.append(conv_bn(cin, hid, 1, 1, 1, nn.ReLU6))
        layers += [conv_bn(hid, hid, 3, stride, hid, nn.ReLU6), conv_bn(hid, cout, 1, 1, 1, None)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.body(x)
        return x + y if self.residual else y


class MobileNetV2(nn.Module):
    """MobileNetV2 at width 0.5 with fewer stages, for 3x32x32 inputs."""

    def __init__(self):
        super().__init__()
        # (expansion, channels, repeats, stride) at width 0.5
        cfg = [(1, 8, 1, 1), (6, 12, 2, 2), (6, 16, 2, 2), (6, 32, 2, 2)]
        layers = [conv_bn(3, 16, 3, 2, 1, nn.ReLU6)]
        cin = 16
        for t, c, n, s in cfg:
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        layers.append(conv_bn(cin, 128, 1, 1, 1, nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(128, 10)

    def forward(self, x):
        x = self.features(x)
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.classifier(x)


class SqueezeExcite(nn.Module):
    def __init__(self, c, r=4):
        super().__init__()
        self.fc1 = nn.Conv2d(c, max(8, c // r), 1)
        self.fc2 = nn.Conv2d(max(8, c // r), c, 1)

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        s = F.hardsigmoid(self.fc2(F.relu(self.fc1(s))))
        return x * s


class V3Block(nn.Module):
    def __init__(self, cin, hid, cout, k, stride, se, act):
        super().__init__()
        layers = []
        if hid != cin:
            layers.append(conv_bn(cin, hid, 1, 1, 1, act))
        layers.append(conv_bn(hid, hid, k, stride, hid, act))
        if se:
            layers.append(SqueezeExcite(hid))
        layers.append(conv_bn(hid, cout, 1, 1, 1, None))
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.body(x)
        return x + y if self.residual else y


class MobileNetV3(nn.Module):
    """A small MobileNetV3-style net: HardSwish activations, squeeze-excite
    (global average pool, 1x1 convs, HardSigmoid, Mul), inverted residuals."""

    def __init__(self):
        super().__init__()
        hs, re = nn.Hardswish, nn.ReLU
        self.stem = conv_bn(3, 16, 3, 2, 1, hs)
        self.blocks = nn.Sequential(
            V3Block(16, 16, 16, 3, 2, True, re),
            V3Block(16, 48, 24, 3, 2, False, re),
            V3Block(24, 64, 24, 3, 1, False, re),
            V3Block(24, 96, 32, 5, 2, True, hs),
            V3Block(32, 128, 32, 5, 1, True, hs),
        )
        self.last = conv_bn(32, 128, 1, 1, 1, hs)
        self.fc1 = nn.Linear(128, 256)
        self.fc2 = nn.Linear(256, 10)

    def forward(self, x):
        x = self.last(self.blocks(self.stem(x)))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc2(F.hardswish(self.fc1(x)))


def randomize_bn(model, gen):
    """Gives every BatchNorm non-trivial running statistics and affine
    parameters, so BN (and its folding) is really exercised."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(c, generator=gen) * 0.5)
                m.running_var.copy_(torch.rand(c, generator=gen) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(c, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(c, generator=gen) * 0.2)


def export(name, model, shape, opset, expect_ops, seed):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    randomize_bn(model, gen)
    model.eval()
    x = torch.randn(3, *shape, generator=gen)
    with torch.no_grad():
        y = model(x)
    path = os.path.join(OUT, name + ".onnx")
    # PRESERVE on a model in eval mode exports BatchNormalization in
    # inference mode without the eval-mode peephole that fuses it into Conv.
    torch.onnx.export(
        model, x, path, opset_version=opset, input_names=["input"], output_names=["output"],
        dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
        training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=True)
    np.save(os.path.join(OUT, name + "_input.npy"), x.numpy().astype(np.float32))
    np.save(os.path.join(OUT, name + "_output.npy"), y.numpy().astype(np.float32))
    check(name, path, opset, expect_ops)


def check(name, path, opset, expect_ops):
    m = onnx.load(path)
    onnx.checker.check_model(m)
    size = os.path.getsize(path)
    if size > MAX_BYTES:
        sys.exit("%s: %d bytes, over the %d-byte budget" % (path, size, MAX_BYTES))
    ops = {}
    for n in m.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
        if n.op_type == "BatchNormalization":
            for a in n.attribute:
                if a.name == "training_mode" and a.i != 0:
                    sys.exit("%s: BatchNormalization %s is in training mode" % (path, n.name))
            if len([o for o in n.output if o]) != 1:
                sys.exit("%s: BatchNormalization %s has training outputs" % (path, n.name))
    for op in expect_ops:
        if op not in ops:
            sys.exit("%s: expected op %s, have %s" % (path, op, sorted(ops)))
    got_opset = [o.version for o in m.opset_import if o.domain in ("", "ai.onnx")][0]
    if got_opset != opset:
        sys.exit("%s: opset %d, want %d" % (path, got_opset, opset))
    for vi in (m.graph.input[0], m.graph.output[0]):
        d0 = vi.type.tensor_type.shape.dim[0]
        if d0.dim_param != "batch":
            sys.exit("%s: %s has no symbolic batch dim" % (path, vi.name))
    print("%-14s %7d bytes  opset %d  %s" % (name, size, opset,
          " ".join("%s:%d" % kv for kv in sorted(ops.items()))))


def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    export("lenet5", LeNet5(), (1, 28, 28), 13, ["Conv", "MaxPool", "Gemm", "Relu"], 1)
    torch.manual_seed(0)
    export("resnet8", ResNet8(), (3, 32, 32), 13,
           ["Conv", "BatchNormalization", "Add", "GlobalAveragePool"], 2)
    torch.manual_seed(0)
    export("mobilenetv2", MobileNetV2(), (3, 32, 32), 13, ["Conv", "BatchNormalization", "Clip", "Add"], 3)
    # HardSwish exists in ONNX only from opset 14; at opset 13 PyTorch
    # exports it as x * HardSigmoid(x). Write both forms.
    torch.manual_seed(0)
    export("mobilenetv3", MobileNetV3(), (3, 32, 32), 14,
           ["Conv", "BatchNormalization", "HardSwish", "HardSigmoid", "GlobalAveragePool", "Mul"], 4)
    torch.manual_seed(0)
    export("mobilenetv3_op13", MobileNetV3(), (3, 32, 32), 13,
           ["Conv", "BatchNormalization", "HardSigmoid", "GlobalAveragePool", "Mul"], 4)


if __name__ == "__main__":
    main()
