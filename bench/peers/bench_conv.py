#!/usr/bin/env python3
"""Training steps per second of PyTorch (eager or torch.compile) and JAX (one jax.jit) on the
convolutional configurations F and G; `examples/bench/f.nn` and `g.nn` are the same models in
nnc's language.

  python bench/peers/bench_conv.py --config F --threads 1 --framework torch|compile|jax

F  LeNet-5 on 1x28x28: conv 6@5x5, relu, max pool 2, conv 16@5x5, relu, max pool 2, flatten
   to 256, dense 120, relu, dense 84, relu, dense 10; softmax cross-entropy; SGD lr 0.01,
   momentum 0.9; batch 64.
G  ResNet-8 on 3x32x32: a 3x3 conv (16, padding 1) + BatchNorm + relu; three basic blocks
   (16 channels; 32 at stride 2; 64 at stride 2, these two with a 1x1 conv + BatchNorm
   shortcut); global average pooling; dense 10; softmax cross-entropy; SGD lr 0.1, momentum
   0.9, weight decay 5e-4; batch 32. BatchNorm in training mode (batch statistics, running
   averages kept); the convolutions have no bias.

Layouts as PyTorch (NCHW, weights [out, in, kh, kw]), PyTorch's default initialization. Data:
N_DATA_BATCHES batches of N(0, 1) images and uniform labels, kept in memory and cycled. A
step is: forward, loss, backward, optimizer step. Timing (bench_common.time_windows) and the
JSON line on stdout as for the dense configurations (bench/peers/README.md), with `system`
"torch-eager", "torch-compile" or "jax-jit".
"""
import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import (N_DATA_BATCHES, emit, log, pin_to_cores, rss_mib,  # noqa: E402
                          summarize, time_windows)

CONV_CONFIGS = {
    "F": dict(image=(1, 28, 28), batch=64, lr=0.01, momentum=0.9, wd=0.0, classes=10,
              desc="LeNet-5 1x28x28, SGD momentum, batch 64"),
    "G": dict(image=(3, 32, 32), batch=32, lr=0.1, momentum=0.9, wd=5e-4, classes=10,
              desc="ResNet-8 3x32x32 with BatchNorm, SGD momentum wd 5e-4, batch 32"),
}
# G's basic blocks: (input channels, output channels, stride).
BLOCKS = [(16, 16, 1), (16, 32, 2), (32, 64, 2)]

parser = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--config", required=True, choices=sorted(CONV_CONFIGS))
parser.add_argument("--framework", choices=["torch", "compile", "jax"], default="torch")
parser.add_argument("--threads", type=int, default=1)
parser.add_argument("--windows", type=int, default=5)
parser.add_argument("--window-s", type=float, default=1.0)
parser.add_argument("--min-window-steps", type=int, default=3)
parser.add_argument("--warmup-s", type=float, default=1.0)
parser.add_argument("--no-pin", action="store_true")
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()
cfg = CONV_CONFIGS[args.config]
pin_to_cores(args.threads, args.no_pin)
B, (C, H, W), K = cfg["batch"], cfg["image"], cfg["classes"]


def conv_flops(config):
    """Flops of the convolutions and dense layers of one step: 2 per multiply-add of the
    forward products, times 3 for the forward and the two backward products."""
    if config == "F":
        f = 24 * 24 * 6 * 25 * 1 + 8 * 8 * 16 * 25 * 6 + 256 * 120 + 120 * 84 + 84 * 10
    else:
        f = 32 * 32 * 16 * 27                                                     # stem
        f += 2 * 32 * 32 * 16 * 16 * 9                                           # block 1
        f += 16 * 16 * 32 * 16 * 9 + 16 * 16 * 32 * 32 * 9 + 16 * 16 * 32 * 16   # block 2
        f += 8 * 8 * 64 * 32 * 9 + 8 * 8 * 64 * 64 * 9 + 8 * 8 * 64 * 32         # block 3
        f += 64 * 10
    return 2 * 3 * B * f


def torch_step():
    """PyTorch: returns (step_n, sync, version)."""
    if args.framework == "compile":
        # An empty inductor cache: the first step includes a cold compile.
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="inductor_cold_")
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    class LeNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = nn.Conv2d(1, 6, 5), nn.Conv2d(6, 16, 5)
            self.fc1, self.fc2, self.fc3 = nn.Linear(256, 120), nn.Linear(120, 84), nn.Linear(84, 10)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv1(x)), 2)
            x = F.max_pool2d(F.relu(self.conv2(x)), 2)
            x = F.relu(self.fc1(x.flatten(1)))
            return self.fc3(F.relu(self.fc2(x)))

    class Block(nn.Module):
        def __init__(self, a, b, stride):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(a, b, 3, stride, 1, bias=False), nn.BatchNorm2d(b)
            self.conv2, self.bn2 = nn.Conv2d(b, b, 3, 1, 1, bias=False), nn.BatchNorm2d(b)
            self.short = None
            if stride != 1 or a != b:
                self.short = nn.Sequential(nn.Conv2d(a, b, 1, stride, bias=False), nn.BatchNorm2d(b))

        def forward(self, x):
            h = F.relu(self.bn1(self.conv1(x)))
            h = self.bn2(self.conv2(h))
            return F.relu(h + (x if self.short is None else self.short(x)))

    class ResNet8(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16)
            self.layers = nn.Sequential(*[Block(a, b, s) for a, b, s in BLOCKS])
            self.fc = nn.Linear(64, 10)

        def forward(self, x):
            x = self.layers(F.relu(self.bn1(self.conv1(x))))
            return self.fc(x.mean((2, 3)))

    model = LeNet() if args.config == "F" else ResNet8()
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"], momentum=cfg["momentum"],
                          weight_decay=cfg["wd"])
    xs = [torch.randn(B, C, H, W) for _ in range(N_DATA_BATCHES)]
    ys = [torch.randint(0, K, (B,)) for _ in range(N_DATA_BATCHES)]

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    if args.framework == "compile":
        step = torch.compile(step)
    state = {"i": 0, "loss": None}

    def step_n(k):
        for _ in range(k):
            i = state["i"] % N_DATA_BATCHES
            state["loss"] = step(xs[i], ys[i])
            state["i"] += 1

    def sync():
        if state["loss"] is not None:
            state["loss"].item()

    return step_n, sync, torch.__version__


def jax_step():
    """JAX: the whole step (forward, backward, SGD with momentum) under one jax.jit."""
    if args.threads == 1:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   " --xla_cpu_multi_thread_eigen=false").strip()
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax
    import jax.numpy as jnp
    import numpy as np
    rng = np.random.default_rng(args.seed)

    def uniform(shape, fan_in):
        bound = 1.0 / np.sqrt(fan_in)
        return jnp.asarray(rng.uniform(-bound, bound, size=shape).astype(np.float32))

    def conv_params(o, i, k, bias=True):
        p = {"w": uniform((o, i, k, k), i * k * k)}
        if bias:
            p["b"] = uniform((o,), i * k * k)
        return p

    def bn_params(c):
        return {"g": jnp.ones((c,)), "b": jnp.zeros((c,))}, {"m": jnp.zeros((c,)), "v": jnp.ones((c,))}

    def conv(p, x, stride=1, pad=0):
        y = jax.lax.conv_general_dilated(x, p["w"], (stride, stride), [(pad, pad), (pad, pad)],
                                         dimension_numbers=("NCHW", "OIHW", "NCHW"))
        return y + p["b"][None, :, None, None] if "b" in p else y

    def bn(p, s, x):
        """Training-mode batch norm; the running averages as PyTorch (unbiased variance)."""
        m, v = x.mean((0, 2, 3)), x.var((0, 2, 3))
        n = x.shape[0] * x.shape[2] * x.shape[3]
        y = (x - m[None, :, None, None]) * jax.lax.rsqrt(v[None, :, None, None] + 1e-5)
        y = y * p["g"][None, :, None, None] + p["b"][None, :, None, None]
        return y, {"m": 0.9 * s["m"] + 0.1 * m, "v": 0.9 * s["v"] + 0.1 * v * n / (n - 1)}

    def maxpool2(x):
        return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")

    def dense_params(i, o):
        return {"w": uniform((i, o), i), "b": uniform((o,), i)}

    if args.config == "F":
        params = {"c1": conv_params(6, 1, 5), "c2": conv_params(16, 6, 5),
                  "f1": dense_params(256, 120), "f2": dense_params(120, 84),
                  "f3": dense_params(84, 10)}
        stats = {}

        def forward(p, s, x):
            x = maxpool2(jax.nn.relu(conv(p["c1"], x)))
            x = maxpool2(jax.nn.relu(conv(p["c2"], x)))
            x = x.reshape(x.shape[0], -1)
            x = jax.nn.relu(x @ p["f1"]["w"] + p["f1"]["b"])
            x = jax.nn.relu(x @ p["f2"]["w"] + p["f2"]["b"])
            return x @ p["f3"]["w"] + p["f3"]["b"], s
    else:
        params, stats = {"c1": conv_params(16, 3, 3, bias=False)}, {}
        params["bn1"], stats["bn1"] = bn_params(16)
        for j, (a, b, st) in enumerate(BLOCKS):
            params[f"b{j}c1"] = conv_params(b, a, 3, bias=False)
            params[f"b{j}n1"], stats[f"b{j}n1"] = bn_params(b)
            params[f"b{j}c2"] = conv_params(b, b, 3, bias=False)
            params[f"b{j}n2"], stats[f"b{j}n2"] = bn_params(b)
            if st != 1 or a != b:
                params[f"b{j}sc"] = conv_params(b, a, 1, bias=False)
                params[f"b{j}sn"], stats[f"b{j}sn"] = bn_params(b)
        params["fc"] = dense_params(64, 10)

        def forward(p, s, x):
            s2 = {}
            h, s2["bn1"] = bn(p["bn1"], s["bn1"], conv(p["c1"], x, 1, 1))
            x = jax.nn.relu(h)
            for j, (a, b, st) in enumerate(BLOCKS):
                h, s2[f"b{j}n1"] = bn(p[f"b{j}n1"], s[f"b{j}n1"], conv(p[f"b{j}c1"], x, st, 1))
                h = jax.nn.relu(h)
                h, s2[f"b{j}n2"] = bn(p[f"b{j}n2"], s[f"b{j}n2"], conv(p[f"b{j}c2"], h, 1, 1))
                if f"b{j}sc" in p:
                    short, s2[f"b{j}sn"] = bn(p[f"b{j}sn"], s[f"b{j}sn"],
                                              conv(p[f"b{j}sc"], x, st, 0))
                else:
                    short = x
                x = jax.nn.relu(h + short)
            x = x.mean((2, 3))
            return x @ p["fc"]["w"] + p["fc"]["b"], s2

    def loss_fn(p, s, x, y):
        logits, s2 = forward(p, s, x)
        logp = jax.nn.log_softmax(logits)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], 1)), s2

    lr, momentum, wd = cfg["lr"], cfg["momentum"], cfg["wd"]

    @jax.jit
    def step(p, s, buf, x, y):
        (loss, s2), g = jax.value_and_grad(loss_fn, has_aux=True)(p, s, x, y)
        g = jax.tree_util.tree_map(lambda gi, pi: gi + wd * pi, g, p)
        buf = jax.tree_util.tree_map(lambda bi, gi: momentum * bi + gi, buf, g)
        p = jax.tree_util.tree_map(lambda pi, bi: pi - lr * bi, p, buf)
        return p, s2, buf, loss

    xs = [jnp.asarray(rng.normal(size=(B, C, H, W)).astype(np.float32)) for _ in range(N_DATA_BATCHES)]
    ys = [jnp.asarray(rng.integers(0, K, size=(B,))) for _ in range(N_DATA_BATCHES)]
    state = {"i": 0, "p": params, "s": stats, "buf": jax.tree_util.tree_map(jnp.zeros_like, params),
             "loss": None}

    def step_n(k):
        for _ in range(k):
            i = state["i"] % N_DATA_BATCHES
            state["p"], state["s"], state["buf"], state["loss"] = step(
                state["p"], state["s"], state["buf"], xs[i], ys[i])
            state["i"] += 1

    def sync():
        if state["loss"] is not None:
            state["loss"].block_until_ready()

    return step_n, sync, jax.__version__


step_n, sync, version = jax_step() if args.framework == "jax" else torch_step()
t0 = time.perf_counter()
step_n(1)
sync()
first_step_s = time.perf_counter() - t0
t0 = time.perf_counter()
step_n(3)
sync()
est = (time.perf_counter() - t0) / 3
log(f"{args.framework} {args.config}: first step {first_step_s:.2f} s, then {est * 1e3:.1f} ms/step")
rates, steps_per_window = time_windows(step_n, sync, args, est)
summary = summarize(rates)
system = {"torch": "torch-eager", "compile": "torch-compile", "jax": "jax-jit"}[args.framework]
emit(dict(system=system, version=version, config=args.config, desc=cfg["desc"],
          threads=args.threads, batch=B, **summary, first_step_s=first_step_s,
          steps_per_window=steps_per_window, peak_rss_mib=rss_mib(),
          gflops=conv_flops(args.config) * summary["steps_per_s"] / 1e9,
          flops_per_step=conv_flops(args.config)))
