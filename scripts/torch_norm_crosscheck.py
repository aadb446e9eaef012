"""Cross-check nnc's normalization layers, train/eval modes, new activations and losses
against PyTorch, step by step.

A network with BatchNorm1d, legacy weight_norm, LayerNorm, GroupNorm, elu, silu,
gelu(approximate='tanh'), cross_entropy with label smoothing and an L2 penalty (and a
regression network with huber + l1 + hinge) is initialized in PyTorch and saved as
safetensors (parameters AND buffers); nnc trains from those weights (`--init`,
`--no-shuffle`, plain SGD) for a few steps, and PyTorch trains the same steps on the same
batches in train mode. Then every state_dict entry (parameters, running_mean, running_var,
num_batches_tracked) is compared, and `nnc eval` against PyTorch in eval mode.

Usage (needs torch, numpy, safetensors):
    python scripts/torch_norm_crosscheck.py target/release/nnc
Exits non-zero on any mismatch.
"""
import os, subprocess, sys, tempfile
import numpy as np
import torch, torch.nn as nn, torch.nn.functional as F
from safetensors.torch import load_file, save_file

NNC = sys.argv[1] if len(sys.argv) > 1 else "target/release/nnc"
tmp = tempfile.mkdtemp()
STEPS, BATCH, N, LR = 7, 20, 96, 0.1
torch.manual_seed(0)


def run(*args):
    out = subprocess.run([NNC, *args], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"nnc {' '.join(args)} failed: {out.stderr}")
    return out.stdout


CLASSIFIER = """
model Norms {
    input x: [B, 4]
    label y: class[B] of 3
    fc1 = Dense(4 -> 16)
    bn  = BatchNorm(16, momentum = 0.2)
    fc2 = Dense(16 -> 16, weight_norm = true)
    ln  = LayerNorm(16)
    gn  = GroupNorm(4, 16)
    fc3 = Dense(16 -> 3)
    h1 = elu(bn(fc1(x)), alpha = 0.8)
    h2 = silu(ln(fc2(h1))) + gelu(gn(h1), approximate = "tanh")
    logits = fc3(h2)
    loss = cross_entropy(logits, y, label_smoothing = 0.1) + l2_penalty(fc1.weight, lambda = 1e-2)
    metric accuracy(logits, y)
}
optimizer sgd(lr = 0.1)
train { data = csv("data.csv", label = "label"), batch = 20 }
"""


class Norms(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 16)
        self.bn = nn.BatchNorm1d(16, momentum=0.2)
        self.fc2 = torch.nn.utils.weight_norm(nn.Linear(16, 16))
        self.ln = nn.LayerNorm(16)
        self.gn = nn.GroupNorm(4, 16)
        self.fc3 = nn.Linear(16, 3)
        # Non-trivial affine parameters, so their use is checked too.
        for m in (self.bn, self.ln, self.gn):
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.3, 0.3)

    def forward(self, x):
        h1 = F.elu(self.bn(self.fc1(x)), alpha=0.8)
        h2 = F.silu(self.ln(self.fc2(h1))) + F.gelu(self.gn(h1), approximate="tanh")
        return self.fc3(h2)

    def loss(self, x, y):
        z = self(x)
        return F.cross_entropy(z, y, label_smoothing=0.1) + 1e-2 / 2 * (self.fc1.weight ** 2).sum()


REGRESSION = """
model Robust {
    input x: [B, 4]
    label t: [B, 2]
    fc1 = Dense(4 -> 8)
    bn  = BatchNorm(8)
    fc2 = Dense(8 -> 2)
    z = fc2(elu(bn(fc1(x))))
    loss = huber(z, t, delta = 0.5) + l1(z, t) + 0.3 * hinge(z, t) + l1_penalty(fc2, lambda = 1e-3)
}
optimizer sgd(lr = 0.1)
train { data = csv("data.csv", label = "label"), batch = 20 }
"""


class Robust(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.bn = nn.BatchNorm1d(8)
        self.fc2 = nn.Linear(8, 2)

    def forward(self, x):
        return self.fc2(F.elu(self.bn(self.fc1(x))))

    def loss(self, x, t):
        z = self(x)
        hinge = torch.clamp(1 - t * z, min=0).mean()
        l1p = sum(p.abs().sum() for p in self.fc2.parameters())
        return F.huber_loss(z, t, delta=0.5) + F.l1_loss(z, t) + 0.3 * hinge + 1e-3 * l1p


def batches():
    """The batches nnc takes under --no-shuffle: file order, wrapping at the epoch end."""
    out, i = [], 0
    while len(out) < STEPS:
        for s in range(0, N, BATCH):
            if len(out) < STEPS:
                out.append(np.arange(s, min(s + BATCH, N)))
    return out


def check(name, src, model, x, y, write_data):
    d = os.path.join(tmp, name)
    os.makedirs(d, exist_ok=True)
    nn_file = os.path.join(d, "m.nn")
    open(nn_file, "w").write(src)
    write_data(d)
    w0, w1 = os.path.join(d, "w0.safetensors"), os.path.join(d, "w1.safetensors")
    model.double()
    save_file({k: v.contiguous().float() if v.is_floating_point() else v for k, v in model.state_dict().items()}, w0)
    # Start PyTorch from the f32-rounded weights nnc reads.
    model.load_state_dict({k: v.double() if v.is_floating_point() else v for k, v in load_file(w0).items()})
    run("train", nn_file, "--init", w0, "--save", w1, "--no-shuffle", "--steps", str(STEPS), "--quiet")
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    model.train()
    for idx in batches():
        opt.zero_grad()
        model.loss(x[idx], y[idx]).backward()
        opt.step()
    got = load_file(w1)
    want = model.state_dict()
    assert set(got) == set(want), f"names differ: {sorted(set(got) ^ set(want))}"
    worst = 0.0
    for k, v in want.items():
        a, b = got[k].double(), v.double()
        assert a.shape == b.shape, f"{k}: shape {a.shape} vs {b.shape}"
        err = ((a - b).abs().max() / (b.abs().max() + 1e-12)).item()
        worst = max(worst, err)
        assert err < 1e-4, f"{name}: {k} differs by {err:.2e}"
    print(f"{name}: {len(want)} state_dict entries after {STEPS} steps, worst relative difference {worst:.2e}")
    # num_batches_tracked counts the steps
    for k in want:
        if k.endswith("num_batches_tracked"):
            assert int(got[k].item()) == STEPS, k
    model.eval()
    with torch.no_grad():
        loss = model.loss(x, y).item()
    out = run("eval", nn_file, "--weights", w1)
    ev = {l.split()[0]: float(l.split()[1]) for l in out.splitlines()[1:]}
    print(f"{name}: eval-mode loss nnc {ev['loss']:.6f} torch {loss:.6f}")
    assert abs(ev["loss"] - loss) < 1e-4 * max(1.0, abs(loss)), "eval loss differs"


rng = np.random.default_rng(1)
x = (rng.normal(size=(N, 4)) * np.array([1.0, 3.0, 0.5, 2.0]) + 1.0).astype(np.float32)
y = (x[:, 0] + x[:, 1] * x[:, 2] > 1).astype(np.int64) + (x[:, 3] > 2)
xt = torch.tensor(x.astype(np.float64))


def classifier_data(d):
    rows = np.column_stack([x.astype(np.float64), y])
    np.savetxt(os.path.join(d, "data.csv"), rows, delimiter=",", header="a,b,c,d,label", comments="", fmt="%.9g")


check("classifier", CLASSIFIER, Norms(), xt, torch.tensor(y), classifier_data)

# Two real-valued target columns in {-1, +1} (hinge), from an .npz file.
t = np.sign(rng.normal(size=(N, 2))).astype(np.float32)


def regression_data(d):
    np.savez(os.path.join(d, "data.npz"), x=x, y=t)


src = REGRESSION.replace('csv("data.csv", label = "label")', 'npz("data.npz")')
check("regression", src, Robust(), xt, torch.tensor(t.astype(np.float64)), regression_data)
print("ok")
