"""Cross-check nnc's optimizers and learning-rate schedules against torch.optim directly.

Usage (needs torch, numpy, safetensors; not part of `cargo test`):
    python scripts/optim_crosscheck.py [path/to/nnc]

For each case, trains a small regression MLP full-batch (so the batches are identical) for
30 steps with `nnc train` (the f32 interpreter) from weights written here, and the same model
with the corresponding torch.optim optimizer / lr_scheduler in float64 (the scheduler stepped
once per optimizer step). Compares the learning rate of every step (nnc's --log, printed in
f64, against the rate torch used) and the final parameters. Prints the maximum differences
and exits non-zero if a rate differs by more than 1e-12 (relative) or a parameter by more
than 1e-4 (relative to its scale: nnc trains in f32).
"""
import csv
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file

NNC = sys.argv[1] if len(sys.argv) > 1 else "target/debug/nnc"
STEPS = 30
TMP = tempfile.mkdtemp()

MODEL = """
model Reg {
    input x: [B, 3]
    label y: [B, 1]
    fc1 = Dense(3 -> 8)
    fc2 = Dense(8 -> 1)
    loss = mse(fc2(tanh(fc1(x))), y)
}
"""


class Reg(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(3, 8)
        self.fc2 = nn.Linear(8, 1)

    def forward(self, x):
        return self.fc2(torch.tanh(self.fc1(x)))


def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 3))
    y = np.sin(x @ np.array([[1.0], [-2.0], [0.5]])) + 0.1 * rng.normal(size=(32, 1))
    path = os.path.join(TMP, "d.csv")
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["x0", "x1", "x2", "y"])
        for row, t in zip(x, y):
            w.writerow([repr(float(v)) for v in row] + [repr(float(t[0]))])
    # The CSV holds exactly these values; nnc reads them into f32.
    return torch.tensor(x, dtype=torch.float32).double(), torch.tensor(y, dtype=torch.float32).double()


def nnc_run(name, items, init):
    src = os.path.join(TMP, f"{name}.nn")
    with open(src, "w") as f:
        f.write(MODEL + items + f'\ntrain {{ data = csv("d.csv", label = "y"), batch = 32, steps = {STEPS}, shuffle = false }}\n')
    out = os.path.join(TMP, f"{name}.out.safetensors")
    log = os.path.join(TMP, f"{name}.csv")
    r = subprocess.run([NNC, "train", src, "--init", init, "--save", out, "--log", log, "--quiet"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"nnc failed on {name}: {r.stderr}")
    with open(log) as f:
        lrs = [float(row["lr"]) for row in csv.DictReader(f)]
    return {k: v.double() for k, v in load_file(out).items()}, lrs


def torch_run(make_opt, make_sched, state, x, y):
    torch.manual_seed(0)
    m = Reg().double()
    m.load_state_dict({k: v.double() for k, v in state.items()})
    opt = make_opt(m)
    sched = make_sched(opt) if make_sched else None
    lrs = []
    for _ in range(STEPS):
        lrs.append(opt.param_groups[0]["lr"])
        opt.zero_grad()
        loss = ((m(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        if sched:
            sched.step()
    return {k: v.detach() for k, v in m.state_dict().items()}, lrs


def groups(m, **bias):
    ws = [p for n, p in m.named_parameters() if not n.endswith("bias")]
    bs = [p for n, p in m.named_parameters() if n.endswith("bias")]
    return [{"params": ws}, {"params": bs, **bias}]


O = torch.optim
S = torch.optim.lr_scheduler
SGD = lambda m: O.SGD(m.parameters(), lr=0.1)  # noqa: E731

CASES = [
    # (name, nnc items, torch optimizer, torch scheduler)
    ("sgd_nesterov", "optimizer sgd(lr = 0.1, momentum = 0.9, nesterov = true, weight_decay = 1e-3)",
     lambda m: O.SGD(m.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3), None),
    ("sgd_groups", 'optimizer sgd(lr = 0.1, momentum = 0.9, weight_decay = 0.05) { group "*.bias" (weight_decay = 0, lr = 0.05) }',
     lambda m: O.SGD(groups(m, weight_decay=0.0, lr=0.05), lr=0.1, momentum=0.9, weight_decay=0.05), None),
    ("adagrad", "optimizer adagrad(lr = 0.1, lr_decay = 0.01, initial_accumulator_value = 0.1, weight_decay = 1e-3)",
     lambda m: O.Adagrad(m.parameters(), lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1, weight_decay=1e-3), None),
    ("rmsprop", "optimizer rmsprop(lr = 0.01, momentum = 0.5, centered = true, weight_decay = 1e-3)",
     lambda m: O.RMSprop(m.parameters(), lr=0.01, momentum=0.5, centered=True, weight_decay=1e-3), None),
    ("adadelta", "optimizer adadelta(lr = 1, rho = 0.9, weight_decay = 1e-3)",
     lambda m: O.Adadelta(m.parameters(), lr=1.0, rho=0.9, weight_decay=1e-3), None),
    ("adam_amsgrad", "optimizer adam(lr = 0.01, betas = (0.9, 0.99), amsgrad = true, weight_decay = 1e-3)",
     lambda m: O.Adam(m.parameters(), lr=0.01, betas=(0.9, 0.99), amsgrad=True, weight_decay=1e-3), None),
    ("adamw", "optimizer adamw(lr = 0.01, weight_decay = 0.1)",
     lambda m: O.AdamW(m.parameters(), lr=0.01, weight_decay=0.1), None),
    ("nadam", "optimizer nadam(lr = 0.01, weight_decay = 1e-3)",
     lambda m: O.NAdam(m.parameters(), lr=0.01, weight_decay=1e-3), None),
    ("radam", "optimizer radam(lr = 0.01)", lambda m: O.RAdam(m.parameters(), lr=0.01), None),
    ("adamax", "optimizer adamax(lr = 0.01)", lambda m: O.Adamax(m.parameters(), lr=0.01), None),
    ("step", "optimizer sgd(lr = 0.1)\nschedule step(4, gamma = 0.5)", SGD, lambda o: S.StepLR(o, 4, 0.5)),
    ("multistep", "optimizer sgd(lr = 0.1)\nschedule multistep([5, 12, 20], gamma = 0.3)", SGD,
     lambda o: S.MultiStepLR(o, [5, 12, 20], 0.3)),
    ("exponential", "optimizer sgd(lr = 0.1)\nschedule exponential(0.9)", SGD, lambda o: S.ExponentialLR(o, 0.9)),
    ("polynomial", "optimizer sgd(lr = 0.1)\nschedule polynomial(total = 20, power = 2)", SGD,
     lambda o: S.PolynomialLR(o, total_iters=20, power=2.0)),
    ("cosine", "optimizer sgd(lr = 0.1)\nschedule cosine(T = 12, eta_min = 0.01)", SGD,
     lambda o: S.CosineAnnealingLR(o, T_max=12, eta_min=0.01)),
    ("sgdr", "optimizer sgd(lr = 0.1)\nschedule sgdr(T0 = 3, T_mult = 2, eta_min = 0.005)", SGD,
     lambda o: S.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2, eta_min=0.005)),
    ("cyclic_triangular2", "optimizer sgd(lr = 0.1)\nschedule cyclic(0.01, 0.1, step_size = 3, step_size_down = 2, mode = triangular2)", SGD,
     lambda o: S.CyclicLR(o, 0.01, 0.1, step_size_up=3, step_size_down=2, mode="triangular2", cycle_momentum=False)),
    ("cyclic_exp_range", "optimizer sgd(lr = 0.1)\nschedule cyclic(0.01, 0.1, step_size = 4, mode = exp_range, gamma = 0.95)", SGD,
     lambda o: S.CyclicLR(o, 0.01, 0.1, step_size_up=4, mode="exp_range", gamma=0.95, cycle_momentum=False)),
    ("one_cycle", "optimizer sgd(lr = 0.1)\nschedule one_cycle(max_lr = 0.2, total_steps = 30)", SGD,
     lambda o: S.OneCycleLR(o, max_lr=0.2, total_steps=30, cycle_momentum=False)),
    ("one_cycle_linear3", "optimizer sgd(lr = 0.1)\nschedule one_cycle(0.2, 30, pct_start = 0.25, anneal = linear, three_phase = true)", SGD,
     lambda o: S.OneCycleLR(o, max_lr=0.2, total_steps=30, pct_start=0.25, anneal_strategy="linear", three_phase=True, cycle_momentum=False)),
    ("warmup", "optimizer sgd(lr = 0.1)\nschedule warmup(8, from = 0.25)", SGD,
     lambda o: S.LinearLR(o, start_factor=0.25, total_iters=8)),
    ("warmup_then_cosine", "optimizer sgd(lr = 0.1)\nschedule warmup(5, from = 0.1) then cosine(T = 15)", SGD,
     lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.1, total_iters=5), S.CosineAnnealingLR(o, T_max=15)], milestones=[5])),
]


def main():
    x, y = data()
    torch.manual_seed(0)
    init = {k: v.float().contiguous() for k, v in Reg().state_dict().items()}
    init_path = os.path.join(TMP, "init.safetensors")
    save_file(init, init_path)
    worst_lr, worst_p, bad = 0.0, 0.0, []
    for name, items, make_opt, make_sched in CASES:
        ours, our_lrs = nnc_run(name, items, init_path)
        theirs, their_lrs = torch_run(make_opt, make_sched, init, x, y)
        dlr = max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(our_lrs, their_lrs))
        dp = max(((ours[k] - theirs[k]).abs().max() / (1.0 + theirs[k].abs().max())).item() for k in theirs)
        worst_lr, worst_p = max(worst_lr, dlr), max(worst_p, dp)
        status = "ok" if dlr <= 1e-12 and dp <= 1e-4 else "MISMATCH"
        if status != "ok":
            bad.append(name)
        print(f"{name:22s} lr rel diff {dlr:.2e}   param rel diff {dp:.2e}   {status}")
    print(f"max lr rel diff {worst_lr:.2e}, max param rel diff {worst_p:.2e} over {len(CASES)} cases")
    if bad:
        sys.exit(f"mismatches: {', '.join(bad)}")


if __name__ == "__main__":
    main()
