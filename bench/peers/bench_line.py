"""The loss along the line between two solutions in PyTorch eager: at each of `--points`
values of t from 0 to 1 the weights (1 - t)·A + t·B are written into the model, which is then
evaluated over the data: the mean cross-entropy and the accuracy. `nnc line` does the same
work (scripts/bench_line.py runs both, alternating, and prints the ratios). Two styles:

- `--style anchor`: the mode-connectivity code's path (Garipov et al., dnn-mode-connectivity,
  `eval_curve.py` and `utils.test`): a `DataLoader` of batch 128 over the examples,
  `model.eval()` without `torch.no_grad()`, `.item()` of the loss and of the correct count per
  batch. Two settings favour PyTorch here: `num_workers=0` (the anchor's default is 4 worker
  processes, started anew for each pass over a loader), and the weights are written once per
  point (the anchor's curve layers recombine them in every forward call).
- `--style tight` (default): the fastest loop we could write: the data cut into batches of
  256 once, `torch.no_grad()`.

The model is examples/digits_mlp.nn's: x/16, Linear(64, 128), ReLU, Linear(128, 10). A and B
are safetensors files that `nnc train --save` wrote (PyTorch's state_dict names); the data is
examples/data/digits.csv (label column `label`), all of it, in file order.

Prints one JSON line: the seconds of each timed line (`runs`, after one untimed warm-up),
their median, and the loss and accuracy at every t (to compare with nnc's CSV).
"""
import argparse
import json
import os
import statistics
import sys
import time

p = argparse.ArgumentParser()
p.add_argument("--from", dest="a", required=True)
p.add_argument("--to", dest="b", required=True)
p.add_argument("--data", default="examples/data/digits.csv")
p.add_argument("--points", type=int, default=61)
p.add_argument("--repeats", type=int, default=5)
p.add_argument("--threads", type=int, default=1)
p.add_argument("--style", choices=["tight", "anchor"], default="tight")
args = p.parse_args()
if args.threads > 0:
    os.sched_setaffinity(0, set(range(args.threads)))

import torch  # noqa: E402

from digits_common import Mlp, digits, load_safetensors  # noqa: E402

torch.set_num_threads(max(args.threads, 1))

x, y = digits(args.data)
batches = [(x[i:i + 256], y[i:i + 256]) for i in range(0, len(x), 256)]

a = load_safetensors(args.a)
b = load_safetensors(args.b)
model = Mlp()
params = dict(model.named_parameters())
ts = [i / (args.points - 1) for i in range(args.points)]


def line_tight():
    values = []
    model.eval()
    with torch.no_grad():
        for t in ts:
            for name, p_ in params.items():
                p_.copy_((1 - t) * a[name] + t * b[name])
            loss = correct = 0.0
            for xb, yb in batches:
                out = model(xb)
                loss += torch.nn.functional.cross_entropy(out, yb, reduction="sum").item()
                correct += (out.argmax(1) == yb).sum().item()
            values.append((t, loss / len(x), correct / len(x)))
    return values


loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=128,
                                     shuffle=False, num_workers=0)
criterion = torch.nn.CrossEntropyLoss()


def test(test_loader):
    """utils.test of dnn-mode-connectivity, on the CPU, without its regularizer."""
    nll_sum = 0.0
    correct = 0.0
    model.eval()
    for input, target in test_loader:
        output = model(input)
        nll = criterion(output, target)
        nll_sum += nll.item() * input.size(0)
        pred = output.data.argmax(1, keepdim=True)
        correct += pred.eq(target.data.view_as(pred)).sum().item()
    return nll_sum / len(test_loader.dataset), correct / len(test_loader.dataset)


def line_anchor():
    values = []
    for t in ts:
        with torch.no_grad():
            for name, p_ in params.items():
                p_.copy_((1 - t) * a[name] + t * b[name])
        loss, acc = test(loader)
        values.append((t, loss, acc))
    return values


line = line_tight if args.style == "tight" else line_anchor
values = line()
runs = []
for _ in range(args.repeats):
    t0 = time.perf_counter()
    line()
    runs.append(time.perf_counter() - t0)
print(json.dumps({"framework": "torch-eager", "style": args.style, "torch": torch.__version__, "points": args.points,
                  "examples": len(x), "runs": runs, "median_s": statistics.median(runs),
                  "values": values}))
