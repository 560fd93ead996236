#!/usr/bin/python3
"""Dev-time PyTorch reference for goslim's training throughput.

Trains the same architectures as goslim's zoo (lenet, resnet8; 1x28x28
inputs, 10 classes) with the same step (softmax cross-entropy, SGD with
Nesterov momentum 0.9, weight decay 5e-4 on weights) on random data for a
fixed number of steps, one thread, and prints one JSON line per model with
images per second by wall clock and by process CPU time.

    /usr/bin/python3 bench/train/torch_train.py --arch lenet,resnet8 --batch 64 --steps 30
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class LeNet(nn.Module):
    # zoo.LeNet: conv5x5(6, pad 2)-relu-maxpool2, conv5x5(16)-relu-maxpool2,
    # fc 400-120-84-10 with relu.
    def __init__(self, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class Block(nn.Module):
    # zoo basicBlock: conv3x3-BN-ReLU-conv3x3-BN + shortcut (1x1 conv + BN
    # where the shape changes), ReLU.
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, 0, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        s = x if self.short is None else self.short(x)
        return F.relu(y + s)


class ResNet(nn.Module):
    # zoo.ResNet: stem conv3x3(16)-BN-ReLU, three stages of k blocks with
    # 16/32/64 channels (stride 2 entering stages 2 and 3), global average
    # pool, fc.
    def __init__(self, depth=8, inc=1, classes=10):
        super().__init__()
        k = (depth - 2) // 6
        self.stem = nn.Sequential(nn.Conv2d(inc, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        layers, c = [], 16
        for s, cout in enumerate([16, 32, 64]):
            for i in range(k):
                stride = 2 if s > 0 and i == 0 else 1
                layers.append(Block(c, cout, stride))
                c = cout
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = self.layers(self.stem(x))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)


def build(arch):
    if arch == "lenet":
        return LeNet()
    if arch.startswith("resnet"):
        return ResNet(int(arch[len("resnet"):]))
    raise SystemExit("unknown arch " + arch)


def run(arch, batch, steps, warmup):
    torch.manual_seed(1)
    model = build(arch)
    model.train()
    decay = [p for p in model.parameters() if p.dim() >= 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": 5e-4}, {"params": other, "weight_decay": 0}],
                          lr=0.01, momentum=0.9, nesterov=True)
    x = torch.randn(batch, 1, 28, 28)
    y = torch.randint(0, 10, (batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    for _ in range(warmup):
        step()
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return {"arch": arch, "batch": batch, "steps": steps, "wall_s": wall, "cpu_s": cpu,
            "img_per_s": steps * batch / wall, "cpu_img_per_s": steps * batch / cpu,
            "torch": torch.__version__, "threads": torch.get_num_threads()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="lenet,resnet8")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    for arch in a.arch.split(","):
        print(json.dumps(run(arch, a.batch, a.steps, a.warmup)), flush=True)


if __name__ == "__main__":
    main()
