"""`nnc ntk` against torch.func (bench/peers/bench_ntk.py): the empirical NTK (trace over the
outputs) of digits_mlp's model on the first 256 digits, one thread on core 0.

Usage (from the project root, after `cargo build --release`, with the peer venv):
    .venv-peers/bin/python scripts/bench_ntk.py [--rounds 5] [--raw bench/<name>.jsonl]

The weights are trained first (`nnc train examples/digits_mlp.nn --save`, into a temporary
folder). Each round runs `nnc ntk ... --examples 256 --threads 1 --set train.validation=0`
(so that its examples are the file's first 256, as the peer's) and reads the time it prints
for the kernel (the Jacobian and the product, not parsing, compiling or the eigenvalues),
then the peer, which times its Jacobian and product (median of 5 after a warm-up). The ratio
is torch's over nnc's, per round; the traces of the two kernels are compared too.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

p = argparse.ArgumentParser()
p.add_argument("--rounds", type=int, default=5)
p.add_argument("--nnc", default="target/release/nnc")
p.add_argument("--raw")
args = p.parse_args()

w = os.path.join(tempfile.mkdtemp(prefix="nnc-bench-ntk-"), "w.safetensors")
subprocess.run([args.nnc, "train", "examples/digits_mlp.nn", "--quiet", "--save", w],
               check=True, stdout=subprocess.DEVNULL)
nnc_cmd = ["taskset", "-c", "0", args.nnc, "ntk", "examples/digits_mlp.nn", "--weights", w,
           "--examples", "256", "--threads", "1", "--set", "train.validation=0"]
torch_cmd = [sys.executable, "bench/peers/bench_ntk.py", "--weights", w, "--examples", "256",
             "--threads", "1"]
ratios, nnc_ms, torch_ms = [], [], []
for r in range(args.rounds):
    out = subprocess.run(nnc_cmd, check=True, capture_output=True, text=True).stdout
    n = float(re.search(r"; ([0-9.]+) ms\)", out).group(1))
    trace = float(re.search(r"trace\s+(\S+)", out).group(1))
    res = json.loads(subprocess.run(torch_cmd, check=True, capture_output=True,
                                    text=True).stdout.strip().splitlines()[-1])
    t = res["median_s"] * 1e3
    nnc_ms.append(n)
    torch_ms.append(t)
    ratios.append(t / n)
    print(f"round {r + 1}: nnc {n:.1f} ms, torch.func {t:.1f} ms: {t / n:.2f}x; traces "
          f"{trace:.6g} and {res['trace']:.6g}", file=sys.stderr)
    if args.raw:
        with open(args.raw, "a") as f:
            f.write(json.dumps({"round": r + 1, "nnc_kernel_ms": n, "nnc_trace": trace,
                                "torch": res["torch"], "torch_runs_s": res["runs"],
                                "torch_trace": res["trace"]}) + "\n")
print(f"nnc ntk: median {statistics.median(nnc_ms):.1f} ms; torch.func: median "
      f"{statistics.median(torch_ms):.1f} ms; ratio torch/nnc median "
      f"{statistics.median(ratios):.2f}x (min {min(ratios):.2f}, max {max(ratios):.2f}) over "
      f"{args.rounds} rounds")
