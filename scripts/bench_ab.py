#!/usr/bin/env python3
"""Before/after: `nnc bench` of two nnc binaries on configs A-E, alternating, one thread.

    python3 scripts/bench_ab.py OLD_NNC NEW_NNC [--rounds 5] [--raw out.jsonl]

Each round runs every config with both binaries back to back, the order of the two
alternating from round to round (old first in odd rounds), so drift in the machine's speed
falls on both. Prints, per config, the median steps/s of each binary and the median of the
per-round ratios new/old with the ratios themselves (their range is the noise to compare
against). `--raw` keeps every JSON line with its round and binary.
"""
import argparse
import json
import statistics
import subprocess

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("old")
p.add_argument("new")
p.add_argument("--rounds", type=int, default=5)
p.add_argument("--configs", default="a,b,c,d,e")
p.add_argument("--raw")
args = p.parse_args()

runs = []
for r in range(1, args.rounds + 1):
    for c in args.configs.split(","):
        order = [("old", args.old), ("new", args.new)]
        for which, nnc in order if r % 2 else order[::-1]:
            out = subprocess.run(
                [nnc, "bench", f"examples/bench/{c}.nn", "--json", "--threads", "1"],
                check=True, capture_output=True, text=True,
            ).stdout
            runs.append({"round": r, "version": which, "r": json.loads(out)})
if args.raw:
    with open(args.raw, "w") as f:
        f.writelines(json.dumps(x) + "\n" for x in runs)

print("config  old steps/s  new steps/s  new/old (median of rounds)  per round")
for c in args.configs.split(","):
    rate = {v: {x["round"]: x["r"]["steps_per_s"] for x in runs
                if x["r"]["config"] == c and x["version"] == v} for v in ("old", "new")}
    ratios = [rate["new"][k] / rate["old"][k] for k in sorted(rate["old"])]
    print(f"{c.upper():6}  {statistics.median(rate['old'].values()):11.1f}  "
          f"{statistics.median(rate['new'].values()):11.1f}  {statistics.median(ratios):26.3f}  "
          + " ".join(f"{x:.3f}" for x in ratios))
