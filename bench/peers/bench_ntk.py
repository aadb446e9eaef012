"""The empirical NTK of examples/digits_mlp.nn's model (64-128-10 ReLU, 9610 parameters) on
the first N digits, in PyTorch with torch.func as its users compute it: the per-example
Jacobian with `vmap(jacrev(...))` over `functional_call`, then
`Θ = einsum('ncp,mcp->nm', J, J)` (the trace over the outputs, neural-tangents' default).
`nnc ntk` computes the same kernel (scripts/bench_ntk.py runs both and prints the ratio).

Prints one JSON line: the seconds of each timed computation (`runs`, after one untimed
warm-up; the import, the data and the weights are not counted), their median, and the
kernel's trace and largest eigenvalue (to compare with nnc's).
"""
import argparse
import json
import os
import statistics
import struct
import time

p = argparse.ArgumentParser()
p.add_argument("--weights", required=True)
p.add_argument("--data", default="examples/data/digits.csv")
p.add_argument("--examples", type=int, default=256)
p.add_argument("--repeats", type=int, default=5)
p.add_argument("--threads", type=int, default=1)
args = p.parse_args()
if args.threads > 0:
    os.sched_setaffinity(0, set(range(args.threads)))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.func import functional_call, jacrev, vmap  # noqa: E402

torch.set_num_threads(max(args.threads, 1))


def load_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    return {name: torch.from_numpy(np.frombuffer(
        data[8 + n + info["data_offsets"][0]:8 + n + info["data_offsets"][1]],
        dtype="<f4").reshape(info["shape"]).copy())
        for name, info in header.items() if name != "__metadata__"}


class Mlp(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(64, 128)
        self.fc2 = torch.nn.Linear(128, 10)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x / 16)))


rows = np.loadtxt(args.data, delimiter=",", skiprows=1, dtype=np.float32)
with open(args.data) as f:
    label = f.readline().strip().split(",").index("label")
x = torch.from_numpy(np.delete(rows, label, axis=1)[:args.examples].copy())
model = Mlp()
params = load_safetensors(args.weights)


def f(p, xi):
    return functional_call(model, p, (xi.unsqueeze(0),)).squeeze(0)


def ntk():
    jac = vmap(jacrev(f), (None, 0))(params, x)
    j = torch.cat([t.reshape(x.shape[0], 10, -1) for t in jac.values()], dim=2)
    return torch.einsum("ncp,mcp->nm", j, j)


k = ntk()
runs = []
for _ in range(args.repeats):
    t0 = time.perf_counter()
    ntk()
    runs.append(time.perf_counter() - t0)
eig = torch.linalg.eigvalsh(k.double())
print(json.dumps({"framework": "torch.func", "torch": torch.__version__, "examples": x.shape[0],
                  "runs": runs, "median_s": statistics.median(runs),
                  "trace": float(torch.trace(k.double())), "largest": float(eig[-1])}))
