"""`nnc line` against the same loop in PyTorch eager (bench/peers/bench_line.py): the loss and
accuracy of digits_mlp at 61 points of the line between two solutions, on all 1797 digits.

Usage (from the project root, after `cargo build --release`, with the peer venv):
    .venv-peers/bin/python scripts/bench_line.py [--rounds 5] [--raw bench/<name>.jsonl]

The two solutions are trained first (`nnc train examples/digits_mlp.nn --seed 1/2 --save`,
into a temporary folder). Each round runs, one after the other on core 0 with one thread:
`nnc line ... --points 61 --threads 1 --set train.validation=0` timed from the process's
start to its exit (parsing, compiling, loading the CSV, the 61 points, writing the CSV: the
whole command), then the PyTorch script in each of its two styles (bench/peers/bench_line.py:
`anchor`, the mode-connectivity code's path, and `tight`, the fastest loop), which times only
its loop over the 61 points (the median of 5 lines after a warm-up; the import, the data and
the weights are not counted). A ratio is torch's loop over nnc's whole command, per round;
the median and the range are printed. Both computations' losses are compared too (they must
agree to float precision).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

p = argparse.ArgumentParser()
p.add_argument("--rounds", type=int, default=5)
p.add_argument("--nnc", default="target/release/nnc")
p.add_argument("--raw")
args = p.parse_args()

tmp = tempfile.mkdtemp(prefix="nnc-bench-line-")
w = [os.path.join(tmp, f"w{s}.safetensors") for s in (1, 2)]
for s, path in zip((1, 2), w):
    subprocess.run([args.nnc, "train", "examples/digits_mlp.nn", "--seed", str(s), "--quiet",
                    "--save", path], check=True, stdout=subprocess.DEVNULL)
out = os.path.join(tmp, "line.csv")
nnc_cmd = ["taskset", "-c", "0", args.nnc, "line", "examples/digits_mlp.nn", "--from", w[0],
           "--to", w[1], "--points", "61", "--threads", "1", "--set", "train.validation=0",
           "--out", out]
torch_cmd = [sys.executable, "bench/peers/bench_line.py", "--from", w[0], "--to", w[1],
             "--points", "61", "--threads", "1", "--style"]
styles = ["anchor", "tight"]

nnc_s, torch_s, ratios = [], {s: [] for s in styles}, {s: [] for s in styles}
results = {}
for r in range(args.rounds):
    t0 = time.perf_counter()
    subprocess.run(nnc_cmd, check=True, stdout=subprocess.DEVNULL)
    n = time.perf_counter() - t0
    nnc_s.append(n)
    line = f"round {r + 1}: nnc line {n * 1e3:.1f} ms (whole command)"
    for style in styles:
        res = json.loads(subprocess.run(torch_cmd + [style], check=True, capture_output=True,
                                        text=True).stdout.strip().splitlines()[-1])
        results[style] = res
        t = res["median_s"]
        torch_s[style].append(t)
        ratios[style].append(t / n)
        line += f", torch {style} loop {t * 1e3:.1f} ms ({t / n:.2f}x)"
        if args.raw:
            with open(args.raw, "a") as f:
                f.write(json.dumps({"round": r + 1, "nnc_command_s": n, "style": style,
                                    "torch": res["torch"], "torch_runs_s": res["runs"],
                                    "torch_median_s": t}) + "\n")
    print(line, file=sys.stderr)

# The computations agree: nnc's CSV against each style's values, t by t.
with open(out) as f:
    head = f.readline().strip().split(",")
    rows = [list(map(float, line.split(","))) for line in f]
li, ai = head.index("train_loss"), head.index("train_accuracy")
for style in styles:
    vals = results[style]["values"]
    worst = max(abs(row[li] - v[1]) / max(abs(v[1]), 1e-6) for row, v in zip(rows, vals))
    acc = max(abs(row[ai] - v[2]) for row, v in zip(rows, vals))
    print(f"{style}: largest relative difference of the losses from nnc's {worst:.2e}, "
          f"of the accuracies {acc:.2e}")
print(f"nnc line, 61 points, whole command: median {statistics.median(nnc_s) * 1e3:.1f} ms")
for style in styles:
    rs = ratios[style]
    print(f"PyTorch eager ({style}), the loop only: median "
          f"{statistics.median(torch_s[style]) * 1e3:.1f} ms; ratio torch/nnc median "
          f"{statistics.median(rs):.2f}x (min {min(rs):.2f}, max {max(rs):.2f}) over "
          f"{args.rounds} rounds")
