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

import torch  # noqa: E402
from torch.func import functional_call, jacrev, vmap  # noqa: E402

from digits_common import Mlp, digits, load_safetensors  # noqa: E402

torch.set_num_threads(max(args.threads, 1))

x = digits(args.data)[0][:args.examples]
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
