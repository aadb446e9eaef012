"""What the peer benchmarks share: the five standard configurations, the command line, the
timing loop and the JSON output.

`nnc bench examples/bench/<c>.nn` runs the same models and measures them the same way
(src/bench.rs), so its steps/s compare with what bench_torch.py and bench_jax.py print.
Every bench script writes exactly one JSON line to stdout and everything else to stderr, so
a driver (scripts/bench_session.py) can read the last line of stdout.

Standard library only: this module is imported before the framework, so that the process
can be pinned to its cores before PyTorch or XLA start their thread pools.
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

# The configurations. `layers` are the widths from input to output (one nn.Linear between
# each neighbouring pair), `act` the activation after every hidden layer (none after the
# last), `loss` "ce" (softmax cross-entropy against integer class labels) or "mse" (mean
# squared error against real targets), `opt` "sgd", "momentum" (SGD with momentum, PyTorch's
# definition) or "adam" (betas 0.9/0.999, eps 1e-8). examples/bench/a.nn ... e.nn are the
# same models written in nnc's language.
CONFIGS = {
    "A": dict(layers=[64, 32, 10], act="tanh", loss="ce", batch=32,
              opt="sgd", lr=0.1,
              desc="tiny MLP 64-32(tanh)-10, SGD lr0.1"),
    "B": dict(layers=[784, 128, 10], act="relu", loss="ce", batch=64,
              opt="adam", lr=1e-3,
              desc="MNIST MLP 784-128(relu)-10, Adam 1e-3"),
    "C": dict(layers=[784, 512, 512, 512, 10], act="relu", loss="ce", batch=128,
              opt="momentum", lr=0.01, momentum=0.9,
              desc="784-512x3(relu)-10, SGD+momentum 0.9 lr0.01"),
    "D": dict(layers=[1024, 2048, 2048, 1024], act="relu", loss="ce", batch=256,
              opt="adam", lr=1e-3,
              desc="1024-2048-2048-1024(relu), Adam 1e-3, CE over 1024 classes"),
    "E": dict(layers=[10, 64, 64, 1], act="tanh", loss="mse", batch=256,
              opt="adam", lr=1e-3,
              desc="regression 10-64-64(tanh)-1, MSE, Adam 1e-3"),
}

# The data: this many random batches are generated once, kept in memory and cycled
# (step i trains on batch i mod N_DATA_BATCHES), so no step waits for input.
N_DATA_BATCHES = 8


def _layer_pairs(cfg):
    """(fan_in, fan_out) of every dense layer of a config."""
    widths = cfg["layers"]
    return list(zip(widths[:-1], widths[1:]))


def matmul_flops_per_step(cfg):
    """Flops of the matrix products of one step: per layer 2·batch·in·out for the forward
    product and twice that for the two backward ones (input and weight gradient)."""
    return 6 * cfg["batch"] * sum(fan_in * fan_out for fan_in, fan_out in _layer_pairs(cfg))


def n_params(cfg):
    """Weights plus biases of all layers."""
    return sum(fan_in * fan_out + fan_out for fan_in, fan_out in _layer_pairs(cfg))


def base_argparser(desc):
    """The flags every bench script accepts; scripts add their own."""
    p = argparse.ArgumentParser(description=desc,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, choices=sorted(CONFIGS),
                   help="which standard configuration to train")
    p.add_argument("--threads", type=int, default=1,
                   help="compute threads; 0 = framework default")
    p.add_argument("--windows", type=int, default=7, help="number of timed windows")
    p.add_argument("--window-s", type=float, default=1.0, help="target seconds per window")
    p.add_argument("--min-window-steps", type=int, default=3,
                   help="fewest steps in a timed window")
    p.add_argument("--warmup-s", type=float, default=1.0,
                   help="untimed warm-up after first call")
    p.add_argument("--no-pin", action="store_true",
                   help="do not pin the process to the first N cores (N=threads)")
    p.add_argument("--seed", type=int, default=0, help="seed of initialization and data")
    return p


def log(*parts):
    """Progress and diagnostics go to stderr; stdout carries only the JSON line."""
    print(*parts, file=sys.stderr, flush=True)


def pin_to_cores(threads, no_pin):
    """Restrict the whole process to cores 0 .. threads-1, and return them (sorted).

    Call it before importing the framework, so that the thread pools it starts see the
    restricted affinity. Returns None when nothing was pinned (--no-pin, --threads 0, or the
    system refused)."""
    if no_pin or threads <= 0:
        return None
    cores = set(range(min(threads, os.cpu_count() or 1)))
    try:
        os.sched_setaffinity(0, cores)
    except Exception as e:  # e.g. not Linux
        log(f"affinity failed: {e}")
        return None
    return sorted(cores)


def rss_mib():
    """Peak resident set of this process so far, in MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def cur_rss_mib():
    """Current resident set (VmRSS) in MiB, or NaN where /proc is not available."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except Exception:
        pass
    return float("nan")


def time_windows(step_n, sync, args, est_step_s):
    """Measure steps per second after the first step(s).

    step_n(k) launches k training steps (an asynchronous framework may still be running them
    when it returns); sync() waits until all launched work is done. est_step_s is the time
    of one step measured by the caller (its second step), used to size the chunks below.

    1. Warm-up: for --warmup-s seconds, run chunks of steps (about 0.1 s each, between 1 and
       50 steps) followed by a sync. Nothing is recorded.
    2. Calibration: time k steps, k chosen to take about 0.2 s by the estimate; the measured
       time per step sets the steps per window n = max(--min-window-steps, --window-s / t).
    3. --windows timed windows of n steps each, synced at the end of each.

    Returns (steps/s of every window, n).
    """
    est = max(est_step_s, 1e-7)

    # 1. warm-up
    chunk = max(1, min(50, int(0.1 / est)))
    t_start = time.perf_counter()
    while time.perf_counter() - t_start < args.warmup_s:
        step_n(chunk)
        sync()

    # 2. calibration
    k = max(1, int(0.2 / est))
    t0 = time.perf_counter()
    step_n(k)
    sync()
    per_step = (time.perf_counter() - t0) / k
    n = max(args.min_window_steps, int(args.window_s / max(per_step, 1e-8)))

    # 3. timed windows
    rates = []
    for _ in range(args.windows):
        t0 = time.perf_counter()
        step_n(n)
        sync()
        rates.append(n / (time.perf_counter() - t0))
    return rates, n


def summarize(rates):
    """The figures of a run: the median window rate is THE steps/s figure."""
    median = statistics.median(rates)
    return dict(
        steps_per_s=median,
        steps_per_s_min=min(rates),
        steps_per_s_max=max(rates),
        spread_pct=100.0 * (max(rates) - min(rates)) / median,
        us_per_step=1e6 / median,
        window_rates=[round(r, 2) for r in rates],
    )


def emit(result):
    """Print the result as the single JSON line of stdout."""
    print(json.dumps(result), flush=True)
