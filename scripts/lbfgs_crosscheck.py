"""Cross-check nnc's `optimizer lbfgs` against torch.optim.LBFGS step by step.

Usage (needs torch, numpy, safetensors; not part of `cargo test`):
    python scripts/lbfgs_crosscheck.py [path/to/nnc] [--backend interp|jit]

For each case, trains a small model full batch with `nnc train --steps k` for k = 1..steps
from weights written here (one run per k, so the parameters after every step are seen), and
the same model with torch.optim.LBFGS in float64, one `optimizer.step(closure)` per step.
Compares the loss of every step (nnc's --log: the loss at the start of the step, which is
what LBFGS.step returns) and the parameters after every step.

nnc evaluates the model in f32 (the algorithm runs in f64 on the host), so agreement is to
f32 rounding as the iterations amplify it. Two regimes are therefore told apart:

- tracked steps: torch's own float32 run is still within 1e-6 of its float64 run (on the
  small tanh network, L-BFGS amplifies rounding chaotically and torch float32 leaves its
  float64 trajectory after a few steps), and the loss after the step is more than 1e-6
  above the best loss reached (not yet at the minimiser). There nnc must match torch
  float64 to 1e-6 in the loss and 1e-5 in every parameter (relative to the tensor's scale).
- converged steps: at the minimiser an f32 loss cannot tell apart points within about
  sqrt(f32 epsilon) of it, so where each run stops is decided by rounding. There the loss
  must match to 1e-6 and the parameters to 1e-3.

Exits non-zero on any violation; prints the worst differences of each case.
"""
import csv
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file

ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
NNC = ARGS[0] if ARGS else "target/debug/nnc"
BACKEND = sys.argv[sys.argv.index("--backend") + 1] if "--backend" in sys.argv else "interp"
STEPS = 20
LOSS_TOL, PARAM_TOL, CONVERGED_PARAM_TOL, FLOOR = 1e-6, 1e-5, 1e-3, 1e-6
TMP = tempfile.mkdtemp()

REG = """
model Reg {
    input x: [B, 3]
    label y: [B, 1]
    fc1 = Dense(3 -> 8)
    fc2 = Dense(8 -> 1)
    loss = mse(fc2(tanh(fc1(x))), y)
}
"""

LOGREG = """
model LogReg {
    input x: [B, 3]
    label y: [B, 1]
    fc = Dense(3 -> 1)
    loss = bce_with_logits(fc(x), y) + l2_penalty(fc.weight, lambda = 0.01)
}
"""


class Reg(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(3, 8)
        self.fc2 = nn.Linear(8, 1)

    def forward(self, x):
        return self.fc2(torch.tanh(self.fc1(x)))

    def loss(self, x, y):
        return ((self(x) - y) ** 2).mean()


class LogReg(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 1)

    def loss(self, x, y):
        z = self.fc(x)
        bce = nn.functional.binary_cross_entropy_with_logits(z, y)
        return bce + 0.01 / 2 * (self.fc.weight ** 2).sum()


def data(kind):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 3))
    if kind == "reg":
        y = np.sin(x @ np.array([[1.0], [-2.0], [0.5]])) + 0.1 * rng.normal(size=(32, 1))
    elif kind == "illcond":
        # Features on scales 1, 8 and 1/8: a Hessian with condition number in the thousands.
        x = x * np.array([1.0, 8.0, 0.125]) + np.array([0.0, 3.0, 0.0])
        logits = x @ np.array([[1.0], [-0.2], [4.0]]) + 0.3
        y = (rng.uniform(size=(32, 1)) < 1 / (1 + np.exp(-logits))).astype(float)
    else:
        logits = x @ np.array([[1.5], [-1.0], [0.5]]) + 0.3
        y = (rng.uniform(size=(32, 1)) < 1 / (1 + np.exp(-logits))).astype(float)
    path = os.path.join(TMP, f"{kind}.csv")
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["x0", "x1", "x2", "y"])
        for row, t in zip(x, y):
            w.writerow([repr(float(v)) for v in row] + [repr(float(t[0]))])
    as64 = lambda a: torch.tensor(a, dtype=torch.float32).double()  # noqa: E731
    return as64(x), as64(y)


def nnc_run(name, model, kind, items, init, steps):
    src = os.path.join(TMP, f"{name}.nn")
    with open(src, "w") as f:
        f.write(model + items + f'\ntrain {{ data = csv("{kind}.csv", label = "y"), steps = 1 }}\n')
    out = os.path.join(TMP, f"{name}.{steps}.safetensors")
    log = os.path.join(TMP, f"{name}.csv")
    r = subprocess.run([NNC, "train", src, "--steps", str(steps), "--init", init, "--save", out,
                        "--log", log, "--quiet", "--backend", BACKEND], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"nnc failed on {name}: {r.stderr}")
    with open(log) as f:
        losses = [float(row["loss"]) for row in csv.DictReader(f)]
    return {k: v.double() for k, v in load_file(out).items()}, losses


def torch_run(cls, state, opt_args, x, y, steps, dtype=torch.float64):
    """`steps` LBFGS steps; `opt_args` may hold `sched`, a scheduler factory stepped once per
    optimizer step."""
    opt_args = dict(opt_args)
    make_sched = opt_args.pop("sched", None)
    m = cls().to(dtype)
    m.load_state_dict({k: v.to(dtype) for k, v in state.items()})
    opt = torch.optim.LBFGS(m.parameters(), **opt_args)
    sched = make_sched(opt) if make_sched else None
    x, y = x.to(dtype), y.to(dtype)

    def closure():
        opt.zero_grad()
        loss = m.loss(x, y)
        loss.backward()
        return loss

    losses, params = [], []
    for _ in range(steps):
        losses.append(opt.step(closure).item())
        if sched:
            sched.step()
        params.append({k: v.detach().double().clone() for k, v in m.state_dict().items()})
    return losses, params


LSQ = """
model Lsq {
    input x: [B, 3]
    label y: [B, 1]
    fc = Dense(3 -> 1)
    loss = mse(fc(x), y)
}
"""


class Lsq(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 1)

    def loss(self, x, y):
        return ((self.fc(x) - y) ** 2).mean()


SW = dict(line_search_fn="strong_wolfe", history_size=10)
CASES = [
    # (name, nnc model, data, torch module, nnc optimizer, torch LBFGS arguments, steps)
    ("logreg_defaults", LOGREG, "logreg", LogReg, "optimizer lbfgs()", SW, STEPS),
    ("logreg_sw_history_wraps", LOGREG, "logreg", LogReg,
     "optimizer lbfgs(max_iter = 2, max_eval = 4, history_size = 3)",
     dict(line_search_fn="strong_wolfe", max_iter=2, max_eval=4, history_size=3), STEPS),
    ("logreg_fixed_step", LOGREG, "logreg", LogReg,
     'optimizer lbfgs(lr = 0.5, max_iter = 3, history_size = 4, line_search = "none")',
     dict(lr=0.5, max_iter=3, history_size=4), STEPS),
    ("logreg_cosine_schedule", LOGREG, "logreg", LogReg,
     'optimizer lbfgs(lr = 0.8, max_iter = 2, line_search = "none")\nschedule cosine(T = 20, eta_min = 0.1)',
     dict(lr=0.8, max_iter=2, history_size=10,
          sched=lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=20, eta_min=0.1)), STEPS),
    ("illcond_sw_history_wraps", LOGREG, "illcond", LogReg,
     "optimizer lbfgs(max_iter = 1, max_eval = 3, history_size = 3)",
     dict(line_search_fn="strong_wolfe", max_iter=1, max_eval=3, history_size=3), STEPS),
    ("illcond_fixed_step", LOGREG, "illcond", LogReg,
     'optimizer lbfgs(lr = 0.3, max_iter = 2, history_size = 5, line_search = "none")',
     dict(lr=0.3, max_iter=2, history_size=5), STEPS),
    ("lsq_strong_wolfe", LSQ, "reg", Lsq, "optimizer lbfgs(max_iter = 2)",
     dict(line_search_fn="strong_wolfe", max_iter=2, history_size=10), STEPS),
    ("mlp_strong_wolfe", REG, "reg", Reg, "optimizer lbfgs()", SW, 4),
    ("mlp_sw_small_steps", REG, "reg", Reg, "optimizer lbfgs(max_iter = 3, history_size = 4)",
     dict(line_search_fn="strong_wolfe", max_iter=3, history_size=4), 10),
    ("mlp_fixed_step", REG, "reg", Reg, 'optimizer lbfgs(lr = 0.1, max_iter = 5, line_search = "none")',
     dict(lr=0.1, max_iter=5, history_size=10), 10),
]


def param_diff(ours, theirs):
    return max(((ours[n] - theirs[n]).abs().max() / (1.0 + theirs[n].abs().max())).item() for n in theirs)


def loss_diff(a, b):
    return abs(a - b) / max(1.0, abs(b))


def main():
    worst_loss, worst_p, bad = 0.0, 0.0, []
    for name, model, kind, cls, items, opt_args, steps in CASES:
        x, y = data(kind)
        torch.manual_seed(0)
        init = {k: v.float().contiguous() for k, v in cls().state_dict().items()}
        init_path = os.path.join(TMP, f"{name}.init.safetensors")
        save_file(init, init_path)
        # One step more: the loss after step k is the loss at the start of step k + 1.
        their_losses, their_params = torch_run(cls, init, opt_args, x, y, steps + 1)
        _, f32_params = torch_run(cls, init, opt_args, x, y, steps + 1, torch.float32)
        best = min(their_losses)
        floors = [param_diff(a, b) for a, b in zip(f32_params, their_params)]
        dl, dp, dc, tracked, ok = 0.0, 0.0, 0.0, 0, True
        for k in range(1, steps + 1):
            ours, our_losses = nnc_run(name, model, kind, items, init_path, k)
            before_floor = floors[k - 2] if k > 1 else 0.0
            if before_floor <= FLOOR:
                dl = max(dl, loss_diff(our_losses[k - 1], their_losses[k - 1]))
                ok &= dl <= LOSS_TOL
            if floors[k - 1] > FLOOR:
                continue
            d = param_diff(ours, their_params[k - 1])
            if their_losses[k] - best > 1e-6:
                tracked += 1
                dp = max(dp, d)
                ok &= d <= PARAM_TOL
            else:
                dc = max(dc, d)
                ok &= d <= CONVERGED_PARAM_TOL
        worst_loss, worst_p = max(worst_loss, dl), max(worst_p, dp)
        if not ok:
            bad.append(name)
        print(f"{name:24s} {steps:2d} steps ({tracked:2d} tracked)  loss {dl:.1e}  params {dp:.1e}"
              f"  converged params {dc:.1e}  best loss {best:.6g}  {'ok' if ok else 'MISMATCH'}")
    print(f"max loss rel diff {worst_loss:.2e}, max tracked param rel diff {worst_p:.2e} over "
          f"{len(CASES)} cases ({BACKEND})")
    if bad:
        sys.exit(f"mismatches: {', '.join(bad)}")


if __name__ == "__main__":
    main()
