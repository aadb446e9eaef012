"""Cross-check nnc's convolutional layers against PyTorch: gradients, then 20 training steps.

Two networks on 3x9x9 images (an .npz file of float32 [N, 3, 9, 9] images and class labels):

- `Convs`: Conv2d with padding, stride 2 with dilation, groups (2 and depthwise), a 1x1
  conv, MaxPool2d with overlapping padded windows (ties from relu zeros included), AvgPool2d
  with padding (counted in the mean), GroupNorm on images, global average pooling, Dense;
- `ResBlock`: a ResNet basic block of 16 channels with BatchNorm2d in training mode and a
  projection shortcut (1x1 conv at stride 2 + BatchNorm2d), then `nnc eval` in evaluation
  mode. Its 16 -> 16 3x3 conv takes the JIT's Winograd path (forward and input gradient).

PyTorch builds each network with its own initialization and saves it as safetensors
(parameters and buffers); nnc trains from those weights (`--init`, `--no-shuffle`, plain SGD)
and PyTorch trains the same steps on the same batches in float64.

- Gradients: one step at lr 1 from the same weights; the gradient is `w0 - w1`. Every
  tensor's gradient must agree to 1e-5 relative to its largest element.
- Training: after 20 steps, every state_dict entry (parameters, running statistics,
  num_batches_tracked) must agree to 1e-5 relative to the tensor's largest element, and
  `nnc eval` with PyTorch in eval mode.

Usage (needs torch, numpy, safetensors; not part of `cargo test`):
    python scripts/torch_conv_crosscheck.py [target/release/nnc] [--backend interp|jit]
Exits non-zero on any mismatch; prints the worst differences.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
NNC = ARGS[0] if ARGS else "target/release/nnc"
BACKEND = sys.argv[sys.argv.index("--backend") + 1] if "--backend" in sys.argv else "jit"
TMP = tempfile.mkdtemp()
STEPS, BATCH, N, LR, TOL = 20, 8, 48, 0.05, 1e-5
torch.manual_seed(0)

CONVS = """
model Convs {
    input x: [B, 3, 9, 9]
    label y: class[B] of 4

    c1   = Conv2d(3 -> 8, 3, padding = 1)
    c2   = Conv2d(8 -> 8, 3, stride = 2, padding = 2, dilation = 2, groups = 2)
    dw   = Conv2d(8 -> 8, (3, 1), padding = (1, 0), groups = 8, bias = false)
    pw   = Conv2d(8 -> 6, 1)
    pool = MaxPool2d(3, stride = 2, padding = 1)
    avg  = AvgPool2d(2, stride = 1, padding = 1)
    gn   = GroupNorm(2, 6)
    fc   = Dense(6 -> 4)

    h1 = pool(relu(c1(x)))
    h2 = relu(pw(dw(c2(h1))))
    logits = fc(global_avg_pool(gn(avg(h2))))
    loss = cross_entropy(logits, y)
    metric accuracy(logits, y)
}
optimizer sgd(lr = LR)
train { data = npz("data.npz"), batch = 8 }
"""


class Convs(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 8, 3, stride=2, padding=2, dilation=2, groups=2)
        self.dw = nn.Conv2d(8, 8, (3, 1), padding=(1, 0), groups=8, bias=False)
        self.pw = nn.Conv2d(8, 6, 1)
        self.gn = nn.GroupNorm(2, 6)
        self.fc = nn.Linear(6, 4)
        nn.init.uniform_(self.gn.weight, 0.5, 1.5)
        nn.init.uniform_(self.gn.bias, -0.3, 0.3)

    def forward(self, x):
        h1 = F.max_pool2d(F.relu(self.c1(x)), 3, stride=2, padding=1)
        h2 = F.relu(self.pw(self.dw(self.c2(h1))))
        a = F.avg_pool2d(h2, 2, stride=1, padding=1)
        return self.fc(self.gn(a).mean((2, 3)))


RESBLOCK = """
model ResBlock {
    input x: [B, 3, 9, 9]
    label y: class[B] of 4

    conv1    = Conv2d(3 -> 16, 3, stride = 2, padding = 1, bias = false)
    bn1      = BatchNorm2d(16)
    conv2    = Conv2d(16 -> 16, 3, padding = "same", bias = false)
    bn2      = BatchNorm2d(16, momentum = 0.2)
    short    = Conv2d(3 -> 16, 1, stride = 2, bias = false)
    short_bn = BatchNorm2d(16)
    fc       = Dense(16 -> 4)

    h1 = relu(bn1(conv1(x)))
    h2 = relu(bn2(conv2(h1)) + short_bn(short(x)))
    logits = fc(global_avg_pool(h2))
    loss = cross_entropy(logits, y)
    metric accuracy(logits, y)
}
optimizer sgd(lr = LR)
train { data = npz("data.npz"), batch = 8 }
"""


class ResBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 16, 3, padding="same", bias=False)
        self.bn2 = nn.BatchNorm2d(16, momentum=0.2)
        self.short = nn.Conv2d(3, 16, 1, stride=2, bias=False)
        self.short_bn = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16, 4)
        for m in (self.bn1, self.bn2, self.short_bn):
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.3, 0.3)

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = F.relu(self.bn2(self.conv2(h)) + self.short_bn(self.short(x)))
        return self.fc(h.mean((2, 3)))


def run(*args):
    out = subprocess.run([NNC, *args], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"nnc {' '.join(args)} failed: {out.stderr}")
    return out.stdout


def batches(steps):
    """The batches nnc takes under --no-shuffle: file order, wrapping at the epoch end."""
    return [np.arange(s * BATCH, (s + 1) * BATCH) % N for s in range(steps)]


def worst(got, want, names):
    """The largest difference relative to each tensor's largest element, and its name."""
    out = (0.0, "")
    for k in names:
        a, b = got[k].double(), want[k].double()
        assert a.shape == b.shape, f"{k}: shape {tuple(a.shape)} vs {tuple(b.shape)}"
        err = ((a - b).abs().max() / (b.abs().max() + 1e-30)).item()
        out = max(out, (err, k))
    return out


def train_torch(model, x, y, steps, lr):
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    model.train()
    for idx in batches(steps):
        opt.zero_grad()
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()


def check(name, src, make, x, y):
    d = os.path.join(TMP, name)
    os.makedirs(d)
    np.savez(os.path.join(d, "data.npz"), x=x.numpy().astype(np.float32), y=y.numpy())
    xt = x.double()
    w0 = os.path.join(d, "w0.safetensors")
    save_file({k: v.contiguous() for k, v in make().state_dict().items()}, w0)

    def torch_from_w0():
        m = make().double()
        m.load_state_dict({k: v.double() if v.is_floating_point() else v
                           for k, v in load_file(w0).items()})
        return m

    params = [k for k, _ in torch_from_w0().named_parameters()]
    for steps, lr in [(1, 1.0), (STEPS, LR)]:
        nn_file = os.path.join(d, f"m{steps}.nn")
        open(nn_file, "w").write(src.replace("LR", str(lr)))
        w1 = os.path.join(d, f"w{steps}.safetensors")
        run("train", nn_file, "--init", w0, "--save", w1, "--no-shuffle", "--steps", str(steps),
            "--backend", BACKEND, "--quiet")
        model = torch_from_w0()
        train_torch(model, xt, y, steps, lr)
        got, want = load_file(w1), model.state_dict()
        assert set(got) == set(want), f"names differ: {sorted(set(got) ^ set(want))}"
        if steps == 1:
            start = load_file(w0)
            grads_nnc = {k: start[k].double() - got[k].double() for k in params}
            grads_torch = {k: start[k].double() - want[k] for k in params}
            err, at = worst(grads_nnc, grads_torch, params)
            print(f"{name}: gradients of {len(params)} tensors, worst {err:.2e} ({at})")
        else:
            err, at = worst(got, want, want.keys())
            print(f"{name}: {len(want)} state_dict entries after {steps} steps, worst {err:.2e} ({at})")
            for k in want:
                if k.endswith("num_batches_tracked"):
                    assert int(got[k].item()) == steps, k
        assert err < TOL, f"{name}: {at} differs by {err:.2e}"
    model.eval()
    with torch.no_grad():
        loss = F.cross_entropy(model(xt), y).item()
    out = run("eval", nn_file, "--weights", w1)
    words = next(line for line in out.splitlines() if line.startswith("all")).split()
    got = float(words[words.index("loss") + 1])
    print(f"{name}: eval-mode loss nnc {got:.6f} torch {loss:.6f}")
    assert abs(got - loss) < TOL * max(1.0, abs(loss)), "eval loss differs"


x = torch.randn(N, 3, 9, 9)
y = torch.randint(0, 4, (N,))
check("convs", CONVS, Convs, x, y)
check("resblock", RESBLOCK, ResBlock, x, y)
print("ok")
