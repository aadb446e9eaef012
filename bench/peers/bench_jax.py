#!/usr/bin/env python3
"""Training steps per second of JAX on one standard configuration (bench_common.CONFIGS).

The whole step, (params, opt_state, x, y) -> (new params, new opt_state, loss), is one
jax.jit function; SGD, momentum and Adam are written out here (no optax) with PyTorch's
definitions, so the arithmetic matches bench_torch.py and nnc.

  python bench/peers/bench_jax.py --config B --threads 1   # core 0, XLA's Eigen single-threaded
  python bench/peers/bench_jax.py --config B --threads 0   # XLA's defaults, all cores

Prints one JSON line on stdout (see bench/peers/README.md for its keys); progress goes to
stderr.
"""
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import (CONFIGS, N_DATA_BATCHES, base_argparser, cur_rss_mib, emit,  # noqa: E402
                          matmul_flops_per_step, n_params, pin_to_cores, rss_mib,
                          summarize, time_windows)

parser = base_argparser(__doc__)
parser.add_argument("--no-donate", action="store_true",
                    help="do not donate the params/opt-state buffers to the jitted step")
parser.add_argument("--sync-every-step", action="store_true",
                    help="block_until_ready after every step (latency mode) instead of "
                         "once per window")
args = parser.parse_args()
cfg = CONFIGS[args.config]

# Threads are set before jax is imported: XLA reads the affinity and XLA_FLAGS when its CPU
# client starts. With one thread, Eigen's intra-op thread pool is switched off too.
cores = pin_to_cores(args.threads, args.no_pin)
if args.threads == 1:
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               " --xla_cpu_multi_thread_eigen=false").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

t_import = time.perf_counter()
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import_s = time.perf_counter() - t_import
rss_after_import = cur_rss_mib()

widths = cfg["layers"]
B = cfg["batch"]
rng = np.random.default_rng(args.seed)
tree_map = jax.tree_util.tree_map

# --- data, drawn first from the seeded generator: N(0,1) float32 features; uniform int32
# class labels for cross-entropy, N(0,1) targets for MSE.
xs = [jnp.asarray(rng.standard_normal((B, widths[0]), dtype=np.float32))
      for _ in range(N_DATA_BATCHES)]
if cfg["loss"] == "ce":
    ys = [jnp.asarray(rng.integers(0, widths[-1], size=(B,), dtype=np.int32))
          for _ in range(N_DATA_BATCHES)]
else:
    ys = [jnp.asarray(rng.standard_normal((B, widths[-1]), dtype=np.float32))
          for _ in range(N_DATA_BATCHES)]


# --- model: a tuple of (W [in, out], b [out]) per layer, initialized as torch.nn.Linear
# does by default, U(±1/sqrt(fan_in)) for both (weight then bias, layer by layer).
def init_params():
    params = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:]):
        bound = 1.0 / np.sqrt(fan_in)
        W = rng.uniform(-bound, bound, size=(fan_in, fan_out)).astype(np.float32)
        b = rng.uniform(-bound, bound, size=(fan_out,)).astype(np.float32)
        params.append((jnp.asarray(W), jnp.asarray(b)))
    return tuple(params)


activation = {"relu": jax.nn.relu, "tanh": jnp.tanh}[cfg["act"]]


def forward(params, x):
    h = x
    last = len(params) - 1
    for i, (W, b) in enumerate(params):
        h = h @ W + b
        if i < last:  # no activation after the output layer
            h = activation(h)
    return h


if cfg["loss"] == "ce":
    def loss_fn(params, x, y):
        # mean over the batch of -log softmax(logits)[label]
        log_probs = jax.nn.log_softmax(forward(params, x), axis=-1)
        return -jnp.mean(jnp.take_along_axis(log_probs, y[:, None], axis=1))
else:
    def loss_fn(params, x, y):
        diff = forward(params, x) - y
        return jnp.mean(diff * diff)


# --- optimizers: init_opt(params) -> state; update(params, grads, state) -> (params, state)
lr = cfg["lr"]

if cfg["opt"] == "sgd":
    def init_opt(params):
        return ()

    def update(params, grads, state):
        return tree_map(lambda p, g: p - lr * g, params, grads), state

elif cfg["opt"] == "momentum":
    momentum = cfg["momentum"]

    def init_opt(params):
        return tree_map(jnp.zeros_like, params)

    def update(params, grads, buf):
        # torch.optim.SGD: buf = momentum * buf + g (no dampening), p -= lr * buf
        buf = tree_map(lambda m, g: momentum * m + g, buf, grads)
        return tree_map(lambda p, m: p - lr * m, params, buf), buf

else:  # adam
    beta1, beta2, eps = 0.9, 0.999, 1e-8

    def init_opt(params):
        zeros = lambda: tree_map(jnp.zeros_like, params)  # noqa: E731
        return zeros(), zeros(), jnp.zeros((), jnp.float32)  # m, v, step count

    def update(params, grads, state):
        # torch.optim.Adam: bias-corrected moments, eps added outside the square root
        m, v, t = state
        t = t + 1.0
        m = tree_map(lambda m_, g: beta1 * m_ + (1 - beta1) * g, m, grads)
        v = tree_map(lambda v_, g: beta2 * v_ + (1 - beta2) * g * g, v, grads)
        corr1 = 1 - beta1 ** t
        corr2 = 1 - beta2 ** t
        params = tree_map(lambda p, m_, v_: p - lr * (m_ / corr1) / (jnp.sqrt(v_ / corr2) + eps),
                          params, m, v)
        return params, (m, v, t)


def train_step(params, state, x, y):
    loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
    params, state = update(params, grads, state)
    return params, state, loss


# Donating params and optimizer state lets XLA update them in place.
step = jax.jit(train_step, donate_argnums=() if args.no_donate else (0, 1))
loss_eval = jax.jit(loss_fn)

params = init_params()
opt_state = init_opt(params)
loss_before = float(loss_eval(params, xs[0], ys[0]))  # compiles loss_eval, not the step

# The running state of the training loop.
run = {"params": params, "opt_state": opt_state, "i": 0, "loss": None}


def step_n(k):
    """Launch k steps (JAX dispatches asynchronously: they may still run on return)."""
    p, s, i, loss = run["params"], run["opt_state"], run["i"], None
    for _ in range(k):
        j = i % N_DATA_BATCHES
        p, s, loss = step(p, s, xs[j], ys[j])
        i += 1
        if args.sync_every_step:
            loss.block_until_ready()
    run.update(params=p, opt_state=s, i=i, loss=loss)


def sync():
    jax.block_until_ready((run["params"], run["opt_state"], run["loss"]))


warnings.filterwarnings("ignore", message=".*donated buffers.*")

# The first step (includes tracing and XLA compilation) and the second, timed alone.
t0 = time.perf_counter()
step_n(1)
sync()
first_s = time.perf_counter() - t0
t0 = time.perf_counter()
step_n(1)
sync()
second_s = time.perf_counter() - t0

rates, steps_per_window = time_windows(step_n, sync, args, est_step_s=second_s)
summary = summarize(rates)
flops = matmul_flops_per_step(cfg)
loss_after = float(loss_eval(run["params"], xs[0], ys[0]))

import jaxlib  # noqa: E402

emit(dict(
    system="jax-jit", config=args.config, threads=args.threads, pinned_cores=cores, ok=True,
    **summary,
    first_step_s=first_s, second_step_s=second_s, steps_per_window=steps_per_window,
    gflops=flops * summary["steps_per_s"] / 1e9, flops_per_step=flops, n_params=n_params(cfg),
    peak_rss_mib=rss_mib(), rss_after_import_mib=rss_after_import, import_s_inproc=import_s,
    loss_before=loss_before, loss_after=loss_after,
    donate=not args.no_donate, sync_every_step=args.sync_every_step,
    xla_flags=os.environ.get("XLA_FLAGS", ""),
    jax=jax.__version__, jaxlib=jaxlib.__version__, backend=jax.default_backend(),
))
