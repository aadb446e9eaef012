"""Where PyTorch's training step spends its time on one of the standard configs: the model,
data, optimizer and step of bench/peers/bench_torch.py (eager, or torch.compile
with the optimizer step compiled separately, as that script does), one thread pinned to
core 0, profiled with torch.profiler. Compare with `nnc bench examples/bench/<c>.nn
--profile` run right before or after (BENCHMARKS.md, "D against torch.compile").

Usage (from the project root, with the venv of bench/peers/requirements.txt; see
bench/peers/README.md):
    .venv-peers/bin/python scripts/torch_profile.py --config D [--mode compile] [--steps 10]
"""
import argparse
import os
import sys
import time

p = argparse.ArgumentParser()
p.add_argument("--config", required=True, choices=list("ABCDE"))
p.add_argument("--mode", choices=["eager", "compile"], default="eager")
p.add_argument("--steps", type=int, default=10)
p.add_argument("--peers", default="bench/peers", help="folder of bench_common.py")
args = p.parse_args()
sys.path.insert(0, os.path.abspath(args.peers))
from bench_common import CONFIGS, N_DATA_BATCHES  # noqa: E402

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

os.sched_setaffinity(0, {0})
torch.set_num_threads(1)
torch.manual_seed(0)
cfg = CONFIGS[args.config]
L = cfg["layers"]
Act = {"relu": nn.ReLU, "tanh": nn.Tanh}[cfg["act"]]
mods = []
for i, (a, b) in enumerate(zip(L[:-1], L[1:])):
    mods.append(nn.Linear(a, b))
    if i < len(L) - 2:
        mods.append(Act())
model = nn.Sequential(*mods)
B = cfg["batch"]
xs = [torch.randn(B, L[0]) for _ in range(N_DATA_BATCHES)]
if cfg["loss"] == "ce":
    ys = [torch.randint(0, L[-1], (B,)) for _ in range(N_DATA_BATCHES)]
    def loss_fn(x, y):
        return F.cross_entropy(model(x), y)
else:
    ys = [torch.randn(B, L[-1]) for _ in range(N_DATA_BATCHES)]
    def loss_fn(x, y):
        return F.mse_loss(model(x), y)
if cfg["opt"] == "adam":
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
elif cfg["opt"] == "momentum":
    opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"], momentum=cfg["momentum"])
else:
    opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"])

if args.mode == "compile":
    fwd = torch.compile(loss_fn)

    @torch.compile
    def opt_step():
        opt.step()
else:
    fwd = loss_fn

    def opt_step():
        opt.step()

state = {"i": 0}


def step():
    i = state["i"]
    opt.zero_grad(set_to_none=True)
    fwd(xs[i % N_DATA_BATCHES], ys[i % N_DATA_BATCHES]).backward()
    opt_step()
    state["i"] = i + 1


for _ in range(5):  # compiles, warms up
    step()
t = time.perf_counter()
for _ in range(args.steps):
    step()
print(f"{args.config} {args.mode}: {args.steps / (time.perf_counter() - t):.2f} steps/s unprofiled")
with profile(activities=[ProfilerActivity.CPU]) as prof:
    for _ in range(args.steps):
        step()
print(f"per step = the totals below / {args.steps}")
print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
