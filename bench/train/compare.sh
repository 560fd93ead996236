#!/bin/bash
# Training throughput of goslim vs PyTorch, one thread each, same models
# (zoo lenet and resnet8 on 1x28x28, 10 classes), same batch, same step
# (cross-entropy, SGD Nesterov 0.9, weight decay 5e-4), random data.
# Runs ROUNDS alternating rounds of both (default 3) and keeps each side's
# best, by wall clock and by process CPU time; prints ratio = goslim/torch.
#
#   bench/train/compare.sh            # from the repository root
#   ROUNDS=5 bench/train/compare.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${ROUNDS:-3}
py=${PYTHON:-/usr/bin/python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/train.test" ./train
for r in $(seq 1 "$rounds"); do
	GOMAXPROCS=1 "$tmp/train.test" -test.run '^$' -test.bench TrainStep -test.cpu 1 -test.benchtime 8x >> "$tmp/go.txt"
	OMP_NUM_THREADS=1 "$py" bench/train/torch_train.py --arch lenet,resnet8 --batch 64 --steps 20 >> "$tmp/torch.txt"
	OMP_NUM_THREADS=1 "$py" bench/train/torch_train.py --arch resnet8 --batch 128 --steps 10 >> "$tmp/torch.txt"
done
"$py" - "$tmp/go.txt" "$tmp/torch.txt" <<'PY'
import json, re, sys
best = {}
for line in open(sys.argv[1]):
    m = re.match(r"BenchmarkTrainStep/(\w+)/b(\d+)\s", line)
    if not m:
        continue
    key = ("goslim", m.group(1), int(m.group(2)))
    wall = float(re.search(r"([\d.]+) img/s", line).group(1))
    cpu = float(re.search(r"([\d.]+) cpu-img/s", line).group(1))
    w, c = best.get(key, (0, 0))
    best[key] = (max(w, wall), max(c, cpu))
for line in open(sys.argv[2]):
    d = json.loads(line)
    key = ("torch", d["arch"], d["batch"])
    w, c = best.get(key, (0, 0))
    best[key] = (max(w, d["img_per_s"]), max(c, d["cpu_img_per_s"]))
print("| model | batch | goslim img/s (wall) | torch img/s (wall) | ratio | goslim img/s (CPU) | torch img/s (CPU) | ratio |")
print("|---|---|---|---|---|---|---|---|")
for arch, b in [("lenet", 64), ("resnet8", 64), ("resnet8", 128)]:
    g, t = best.get(("goslim", arch, b)), best.get(("torch", arch, b))
    if not g or not t:
        continue
    print(f"| {arch} | {b} | {g[0]:.0f} | {t[0]:.0f} | {g[0]/t[0]:.2f} | {g[1]:.0f} | {t[1]:.0f} | {g[1]/t[1]:.2f} |")
PY
