#!/usr/bin/env python3
"""Compile time against model size: `nnc bench` of one or more nnc binaries on chains of N
elementwise values (`v1 = tanh(v0)`, ..., `vN = tanh(vN-1)` after a Dense layer, mse loss),
or with `--model stack` on N stacked layers (`repeat N Dense(4 -> 4)` between two more).

    python3 scripts/bench_compile.py NNC [NNC...] [--model chain|stack]
        [--sizes 1000,2000,4000,8000,20000] [--timeout 300] [--raw out.jsonl]

For every size, each binary in turn (one thread, a single short timed window: the compile
is what is measured) prints its compile time per stage up to the first step, and the
forward pass's compile, which the JIT does on first use (binaries from before that change
compiled it with the step: `-`); a run beyond --timeout seconds is stopped and reported as
such. The chains are written to a temporary folder.
"""
import argparse
import json
import os
import subprocess
import tempfile

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("nnc", nargs="+")
p.add_argument("--model", choices=["chain", "stack"], default="chain")
p.add_argument("--sizes", default="1000,2000,4000,8000,20000")
p.add_argument("--timeout", type=float, default=300)
p.add_argument("--raw")
args = p.parse_args()


def chain(n):
    lines = ["model Chain {", "    input x: [B, 4]", "    label y: [B, 1]",
             "    fc = Dense(4 -> 1)", "    v0 = fc(x)"]
    lines += [f"    v{i} = tanh(v{i - 1})" for i in range(1, n + 1)]
    lines += [f"    loss = mse(v{n}, y)", "}", "optimizer sgd(lr = 0.01)",
              "train { data = random(n = 64), batch = 16 }"]
    return "\n".join(lines) + "\n"


def stack(n):
    return (f"model Stack {{\n    input x: [B, 4]\n    label y: [B, 1]\n    stem = Dense(4 -> 4)\n"
            f"    blocks = repeat {n} Dense(4 -> 4)\n    head = Dense(4 -> 1)\n"
            "    loss = mse(head(blocks(stem(x))), y)\n}\noptimizer sgd(lr = 0.01)\n"
            "train { data = random(n = 64), batch = 16 }\n")


model = {"chain": chain, "stack": stack}[args.model]
raw = open(args.raw, "a") if args.raw else None
stages = ["passes", "fuse", "cranelift", "total"]
print(f"| {'values' if args.model == 'chain' else 'layers'} | binary | " + " | ".join(f"{s} (ms)" for s in stages) + " | forward (ms) |")
print("| --- | --- |" + " --- |" * (len(stages) + 1))
with tempfile.TemporaryDirectory() as d:
    for n in map(int, args.sizes.split(",")):
        path = os.path.join(d, f"{args.model}{n}.nn")
        with open(path, "w") as f:
            f.write(model(n))
        for nnc in args.nnc:
            cmd = [nnc, "bench", path, "--json", "--windows", "1", "--window-s", "0.05",
                   "--warmup-s", "0"]
            try:
                out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
            except subprocess.TimeoutExpired:
                print(f"| {n} | {nnc} | stopped after {args.timeout:.0f} s |")
                continue
            if out.returncode != 0:
                print(f"| {n} | {nnc} | failed: {out.stderr.strip()[:80]} |")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            ms = r["compile_ms"]
            cells = " | ".join(f"{ms.get(s, r.get('compile_total_ms')):.0f}" for s in stages)
            fwd = r.get("forward_compile_ms")
            cells += " | " + ("-" if fwd is None else f"{fwd:.0f}")
            print(f"| {n} | {nnc} | {cells} |", flush=True)
            if raw:
                raw.write(json.dumps({"model": args.model, "size": n, "binary": nnc, **r}) + "\n")
