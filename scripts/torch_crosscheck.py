"""Cross-check nnc against PyTorch: weights trained by nnc load into the equivalent
torch.nn model under the same state_dict names and shapes, and PyTorch computes the same
loss, accuracy and gradients on the same data.

Usage (needs torch, numpy, safetensors):
    python scripts/torch_crosscheck.py target/release/nnc
Trains examples/digits_mlp.nn and examples/residual.nn for a few steps with nnc, then
compares. Exits non-zero on any mismatch.
"""
import subprocess, sys, tempfile, os
import numpy as np
import torch, torch.nn as nn, torch.nn.functional as F
from safetensors.torch import load_file

NNC = sys.argv[1] if len(sys.argv) > 1 else "target/release/nnc"
tmp = tempfile.mkdtemp()


def run(*args):
    out = subprocess.run([NNC, *args], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"nnc {' '.join(args)} failed: {out.stderr}")
    return out.stdout


class Digits(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x / 16)))


class Residual(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc1 = nn.Linear(d, d)
        self.fc2 = nn.Linear(d, d)
        self.gain = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x + self.gain * self.fc2(F.relu(self.fc1(x)))


class ResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Linear(2, 32)
        self.blocks = nn.Sequential(*[Residual(32) for _ in range(8)])
        self.head = nn.Linear(32, 2)

    def forward(self, x):
        return self.head(self.blocks(torch.tanh(self.stem(x))))


def check(example, model, x, y, batch, data=()):
    w = os.path.join(tmp, "w.safetensors")
    g = os.path.join(tmp, "g.safetensors")
    run("train", example, "--steps", "20", "--save", w, "--quiet", *data)
    sd = load_file(w)
    model.load_state_dict(sd, strict=True)  # same names and shapes, or this raises
    model.double()
    out = run("eval", example, "--weights", w, *data)
    got = {l.split()[0]: float(l.split()[1]) for l in out.splitlines()[1:]}
    with torch.no_grad():
        z = model(x)
        loss = F.cross_entropy(z, y).item()
        acc = (z.argmax(1) == y).double().mean().item()
    print(f"{example}: loss nnc {got['loss']:.6f} torch {loss:.6f}; accuracy nnc {got['accuracy']:.6f} torch {acc:.6f}")
    assert abs(got["loss"] - loss) < 1e-4 * max(1, loss), "loss differs"
    assert abs(got["accuracy"] - acc) < 2e-6, "accuracy differs"
    run("grad", example, "--weights", w, "--out", g, "--batch", str(batch), *data)
    grads = load_file(g)
    model.zero_grad()
    F.cross_entropy(model(x[:batch]), y[:batch]).backward()
    worst = 0.0
    for name, p in model.named_parameters():
        a, b = grads[name].double(), p.grad
        worst = max(worst, ((a - b).abs().max() / (b.abs().max() + 1e-12)).item())
    print(f"{example}: gradients of {len(grads)} tensors, worst relative difference {worst:.2e}")
    assert worst < 1e-4, "gradients differ"


digits = np.loadtxt("examples/data/digits.csv", delimiter=",", skiprows=1)
x = torch.tensor(digits[:, :64]); y = torch.tensor(digits[:, 64]).long()
check("examples/digits_mlp.nn", Digits(), x, y, 32)

# residual.nn: user-defined blocks with their own parameter, stacked with repeat; random data
# given through --data as an .npz file.
rng = np.random.default_rng(0)
xr = rng.normal(size=(300, 2)); yr = (xr[:, 0] * xr[:, 1] > 0).astype(np.int64)
npz = os.path.join(tmp, "d.npz"); np.savez(npz, x=xr, y=yr)
check("examples/residual.nn", ResNet(), torch.tensor(xr), torch.tensor(yr), 50, ("--data", npz))
print("ok")
