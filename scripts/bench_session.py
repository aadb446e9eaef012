"""One benchmark session: nnc against the peer scripts on the standard configs (dense A-E,
convolutional F and G), plus nnc's 2-thread vs 1-thread comparison. Produces the tables of
BENCHMARKS.md.

Usage (from the project root, after `cargo build --release`, with the Python of a venv made
from bench/peers/requirements.txt; see bench/peers/README.md):
    .venv-peers/bin/python scripts/bench_session.py [--rounds 3] [--configs abcdefg]
        [--peers bench/peers] [--nnc target/release/nnc] [--raw raw.jsonl]
        [--backend jit|interp] [--no-compile-peer]

Method: nnc and a peer are run one after the other, never at the same time, alternating
round by round so that slow drift of the machine's speed cancels in the ratios; every figure
reported is a median over the rounds, and every ratio is the median of the per-round ratios
(with their min and max). `--threads-only` runs only the last item:
- steps/s: for each config and round, `nnc bench examples/bench/<c>.nn --threads 1 --json`
  pinned to core 0 (`taskset -c 0`), then the best peer (JAX jit for A, B, E; PyTorch eager
  for C, D) with `--threads 1 --windows 5` (the peer script pins itself to core 0);
- D is also run against torch.compile (`--mode compile`), which the issue names for D;
- F and G (bench_conv.py) are run against each of PyTorch eager, JAX and torch.compile, each
  peer alternated with nnc round by round;
- JAX's peak RSS and first-call time on every config (JAX rounds, or one extra run);
- threads: `nnc bench ... --threads 2` alternated with `--threads 1`, both allowed on cores
  0 and 1 (so only the thread count differs), median ratio 2t/1t per config.
Every JSON line is appended to --raw, with the CPU share other processes used during the
run (`_others_cpu_frac`, from /proc/stat minus this run's own CPU time). Prints Markdown tables on stdout, progress on stderr.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

p = argparse.ArgumentParser()
p.add_argument("--rounds", type=int, default=3)
p.add_argument("--configs", default="abcdefg",
               help="config letters, e.g. cd or C,D (case and commas ignored)")
p.add_argument("--peers", default="bench/peers",
               help="folder of bench_torch.py and bench_jax.py")
p.add_argument("--nnc", default="target/release/nnc")
p.add_argument("--raw", default=None)
p.add_argument("--backend", default=None, help="pass --backend to nnc bench")
p.add_argument("--no-compile-peer", action="store_true", help="skip torch.compile on D")
p.add_argument("--no-threads", action="store_true", help="skip the 2-thread comparison")
p.add_argument("--threads-only", action="store_true", help="only the 2-thread comparison")
p.add_argument("--wait-quiet", action="store_true",
               help="before each run, wait until other processes use < 10%% of the CPUs")
p.add_argument("--max-wait", type=float, default=600, help="seconds --wait-quiet waits at most")
args = p.parse_args()
args.configs = args.configs.lower().replace(",", "")
if not args.configs or any(c not in "abcdefg" for c in args.configs):
    p.error(f"--configs: letters among a-g, got {args.configs!r}")
PY = sys.executable
raw = open(args.raw, "a") if args.raw else None


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def cpu_jiffies():
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


def others_busy(seconds=1.0):
    """Fraction of the machine's CPU time used over `seconds` (we are idle meanwhile)."""
    b0, t0 = cpu_jiffies()
    time.sleep(seconds)
    b1, t1 = cpu_jiffies()
    return (b1 - b0) / max(1, t1 - t0)


def wait_quiet():
    """With --wait-quiet, wait (up to --max-wait s) until other processes use < 10% CPU."""
    if not args.wait_quiet:
        return None
    t0 = time.time()
    busy = others_busy()
    while busy > 0.10 and time.time() - t0 < args.max_wait:
        time.sleep(4)
        busy = others_busy()
    return round(busy, 3)


def run_json(cmd, tag):
    before = wait_quiet()
    t0 = time.time()
    b0, j0 = cpu_jiffies()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate()
    b1, j1 = cpu_jiffies()
    if proc.returncode != 0:
        raise SystemExit(f"{tag} failed ({' '.join(cmd)}):\n{err[-2000:]}")
    d = json.loads(out.strip().splitlines()[-1])
    # CPU time of everything else during the run: machine busy time minus this child's.
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    child = ru.ru_utime + ru.ru_stime
    hz = os.sysconf("SC_CLK_TCK")
    own = child - run_json.child_cpu
    run_json.child_cpu = child
    wall = time.time() - t0
    ncpu = os.cpu_count() or 1
    d["_tag"] = tag
    d["_wall_s"] = round(wall, 2)
    d["_others_cpu_frac"] = round(max(0.0, ((b1 - b0) / hz - own) / (wall * ncpu)), 3)
    d["_busy_before"] = before
    with open("/proc/loadavg") as f:
        d["_loadavg"] = f.read().split()[0]
    if raw:
        raw.write(json.dumps(d) + "\n")
        raw.flush()
    log(f"  {tag}: {d.get('steps_per_s', float('nan')):.1f} steps/s "
        f"(others used {100 * d['_others_cpu_frac']:.0f}% of the CPUs, load {d['_loadavg']})")
    return d


run_json.child_cpu = 0.0


def nnc(c, threads, cores=None):
    cores = cores or ("0" if threads == 1 else ",".join(str(i) for i in range(threads)))
    cmd = ["taskset", "-c", cores, args.nnc, "bench", f"examples/bench/{c}.nn",
           "--threads", str(threads), "--json"]
    if args.backend:
        cmd += ["--backend", args.backend]
    return run_json(cmd, f"nnc {c.upper()} {threads}t")


def peer(C, which, extra=()):
    if C in "FG":
        cmd = [PY, os.path.join(args.peers, "bench_conv.py"), "--config", C, "--threads", "1",
               "--windows", "5", "--framework", which]
        return run_json(cmd + list(extra), f"{which} {C}")
    script = {"jax": "bench_jax.py", "torch": "bench_torch.py", "compile": "bench_torch.py"}[which]
    cmd = [PY, os.path.join(args.peers, script), "--config", C, "--threads", "1", "--windows", "5"]
    if which == "compile":
        cmd += ["--mode", "compile"]
    return run_json(cmd + list(extra), f"{which} {C}")


med = statistics.median
rows, rss_rows, thread_rows = [], [], []


def compare_threads(c):
    """2 threads against 1, alternating; same affinity for both (cores 0,1), so only the
    thread count differs."""
    one, two = [], []
    for _ in range(args.rounds):
        one.append(nnc(c, 1, "0,1"))
        two.append(nnc(c, 2, "0,1"))
    ratios = [b["steps_per_s"] / a["steps_per_s"] for a, b in zip(one, two)]
    thread_rows.append((c.upper(), one, two, ratios))


log(f"start {time.strftime('%Y-%m-%d %H:%M:%S')}, load {open('/proc/loadavg').read().split()[:3]}")
for c in args.configs:
    C = c.upper()
    best = "torch" if C in "CD" else "jax"
    log(f"config {C} (peer {best})")
    if args.threads_only:
        compare_threads(c)
        continue
    if C in "FG":
        # Every peer: eager PyTorch, JAX and torch.compile, each alternated with nnc.
        runs = {}
        for which in ("torch", "jax", "compile"):
            ns, ps = [], []
            for _ in range(args.rounds):
                ns.append(nnc(c, 1))
                ps.append(peer(C, which))
            rows.append((C, which, ns, ps, [a["steps_per_s"] / b["steps_per_s"]
                                            for a, b in zip(ns, ps)]))
            runs[which] = (ns, ps)
        ns, jax = runs["jax"]
        rss_rows.append((C, med([n["peak_rss_mib"] for n in ns]),
                         med([j["peak_rss_mib"] for j in jax]),
                         med([n["compile_ms"]["total"] for n in ns]),
                         med([j["first_step_s"] for j in jax]), ns[0]["compile_ms"]))
        if not args.no_threads:
            compare_threads(c)
        continue
    ns, ps = [], []
    for _ in range(args.rounds):
        ns.append(nnc(c, 1))
        ps.append(peer(C, best))
    ratios = [a["steps_per_s"] / b["steps_per_s"] for a, b in zip(ns, ps)]
    rows.append((C, best, ns, ps, ratios))
    jax = ps if best == "jax" else [peer(C, "jax")]
    if C == "D" and not args.no_compile_peer:
        ns2, cs = [], []
        for _ in range(args.rounds):
            ns2.append(nnc(c, 1))
            cs.append(peer(C, "compile"))
        rows.append((C, "torch.compile", ns2, cs,
                     [a["steps_per_s"] / b["steps_per_s"] for a, b in zip(ns2, cs)]))
    rss_rows.append((C, med([n["peak_rss_mib"] for n in ns]), med([j["peak_rss_mib"] for j in jax]),
                     med([n["compile_ms"]["total"] for n in ns]),
                     med([j["first_step_s"] for j in jax]), ns[0]["compile_ms"]))
    if not args.no_threads:
        compare_threads(c)

sps = lambda xs: med([x["steps_per_s"] for x in xs])
print("\n| config | nnc steps/s | peer | peer steps/s | ratio (median) | min | max |")
print("| --- | ---: | --- | ---: | ---: | ---: | ---: |")
for C, best, ns, ps, r in rows:
    print(f"| {C} | {sps(ns):,.1f} | {best} | {sps(ps):,.1f} | {med(r):.2f} | {min(r):.2f} | {max(r):.2f} |")
print("\n| config | compile total (ms) | stages (ms) | nnc peak RSS (MiB) | JAX peak RSS (MiB) | RSS ratio | JAX first call (s) |")
print("| --- | ---: | --- | ---: | ---: | ---: | ---: |")
for C, n_rss, j_rss, comp, first, stages in rss_rows:
    st = ", ".join(f"{k} {v:.2f}" for k, v in stages.items() if k != "total")
    print(f"| {C} | {comp:.2f} | {st} | {n_rss:.1f} | {j_rss:.1f} | {n_rss / j_rss:.3f} | {first:.2f} |")
if thread_rows:
    print("\n| config | 1 thread steps/s | 2 threads steps/s | 2t/1t (median) | min | max |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for C, one, two, r in thread_rows:
        print(f"| {C} | {sps(one):,.1f} | {sps(two):,.1f} | {med(r):.2f} | {min(r):.2f} | {max(r):.2f} |")
log(f"end {time.strftime('%Y-%m-%d %H:%M:%S')}, load {open('/proc/loadavg').read().split()[:3]}")
