#!/usr/bin/env python3
"""Training steps per second of PyTorch on one standard configuration (bench_common.CONFIGS),
eager or under torch.compile.

  python bench/peers/bench_torch.py --config B --threads 1 [--mode eager|compile]
      [--adam-impl default|foreach|fused|single] [--windows 5]

A step is: zero the gradients, forward, loss, backward, optimizer step. Prints one JSON line
on stdout (see bench/peers/README.md for its keys); progress goes to stderr.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import (CONFIGS, N_DATA_BATCHES, base_argparser, cur_rss_mib, emit,  # noqa: E402
                          log, matmul_flops_per_step, n_params, pin_to_cores, rss_mib,
                          summarize, time_windows)

parser = base_argparser(__doc__)
parser.add_argument("--mode", choices=["eager", "compile"], default="eager")
parser.add_argument("--compile-mode", default="default",
                    help="torch.compile mode (default | reduce-overhead | "
                         "max-autotune-no-cudagraphs)")
parser.add_argument("--warm-cache", action="store_true",
                    help="use the persistent inductor cache (default: a fresh empty cache "
                         "directory, so the first step includes a cold compile)")
parser.add_argument("--adam-impl", choices=["default", "foreach", "fused", "single"],
                    default="default",
                    help="torch.optim.Adam implementation (default: PyTorch's choice)")
args = parser.parse_args()
cfg = CONFIGS[args.config]

# Pin before torch starts its OpenMP pool.
cores = pin_to_cores(args.threads, args.no_pin)

# torch.compile: unless asked otherwise, give inductor an empty cache directory so that
# first_step_s is a cold compile, as a user's first run would be.
if args.mode == "compile" and not args.warm_cache:
    import tempfile
    cache_root = os.path.join(tempfile.gettempdir(), "peers_inductor_tmp")
    os.makedirs(cache_root, exist_ok=True)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="inductor_cold_",
                                                             dir=cache_root)

t_import = time.perf_counter()
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import_s = time.perf_counter() - t_import

if args.threads > 0:
    torch.set_num_threads(args.threads)
torch.manual_seed(args.seed)
rss_after_import = cur_rss_mib()

# --- model: nn.Linear layers (PyTorch's default init, U(±1/sqrt(fan_in)) for weight and
# bias), the activation between them. Built first, so it draws first from the seeded RNG.
widths = cfg["layers"]
Activation = {"relu": nn.ReLU, "tanh": nn.Tanh}[cfg["act"]]
layers = []
for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
    layers.append(nn.Linear(fan_in, fan_out))
    if i < len(widths) - 2:  # no activation after the output layer
        layers.append(Activation())
model = nn.Sequential(*layers)

# --- data: N_DATA_BATCHES batches of N(0,1) features; uniform class labels for
# cross-entropy, N(0,1) targets for MSE.
B = cfg["batch"]
xs = [torch.randn(B, widths[0]) for _ in range(N_DATA_BATCHES)]
if cfg["loss"] == "ce":
    ys = [torch.randint(0, widths[-1], (B,)) for _ in range(N_DATA_BATCHES)]
else:
    ys = [torch.randn(B, widths[-1]) for _ in range(N_DATA_BATCHES)]

# --- optimizer
opt_kwargs = {}
if cfg["opt"] == "adam":
    if args.adam_impl == "foreach":
        opt_kwargs["foreach"] = True
    elif args.adam_impl == "fused":
        opt_kwargs["fused"] = True
    elif args.adam_impl == "single":
        opt_kwargs["foreach"] = False
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"], **opt_kwargs)
elif cfg["opt"] == "momentum":
    opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"], momentum=cfg["momentum"])
else:
    opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"])


if cfg["loss"] == "ce":
    def loss_fn(x, y):
        return F.cross_entropy(model(x), y)
else:
    def loss_fn(x, y):
        return F.mse_loss(model(x), y)


if args.mode == "compile":
    # Forward and loss are compiled (AOTAutograd compiles the backward graph with them),
    # the optimizer step is compiled on its own, as in PyTorch's "compiling the optimizer"
    # recipe; loss.backward() itself is called eagerly.
    forward_loss = torch.compile(loss_fn, mode=args.compile_mode)

    @torch.compile(mode=args.compile_mode)
    def optimizer_step():
        opt.step()
else:
    forward_loss = loss_fn

    def optimizer_step():
        opt.step()


step_index = 0


def train_step():
    global step_index
    i = step_index % N_DATA_BATCHES
    opt.zero_grad(set_to_none=True)
    loss = forward_loss(xs[i], ys[i])
    loss.backward()
    optimizer_step()
    step_index += 1
    return loss


def step_n(k):
    for _ in range(k):
        train_step()


def sync():
    pass  # PyTorch on the CPU (eager and inductor) has finished a step when it returns


# Loss on the first batch before training (not a training step).
with torch.no_grad():
    loss_before = loss_fn(xs[0], ys[0]).item()

# The first step (includes torch.compile's compilation) and the second, timed alone.
try:
    t0 = time.perf_counter()
    train_step()
    first_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    train_step()
    second_s = time.perf_counter() - t0
except Exception as e:  # a torch.compile failure is reported in the JSON, not raised
    error = f"{type(e).__name__}: {str(e)[:800]}"
    log(error)
    emit(dict(system="torch-" + args.mode, config=args.config, threads=args.threads,
              ok=False, error=error, torch=torch.__version__))
    sys.exit(0)

rates, steps_per_window = time_windows(step_n, sync, args, est_step_s=second_s)
summary = summarize(rates)
flops = matmul_flops_per_step(cfg)
with torch.no_grad():
    loss_after = loss_fn(xs[0], ys[0]).item()

system = "torch-" + args.mode
if args.mode == "compile" and args.compile_mode != "default":
    system += ":" + args.compile_mode

emit(dict(
    system=system,
    config=args.config, threads=args.threads, torch_threads=torch.get_num_threads(),
    pinned_cores=cores, ok=True,
    **summary,
    first_step_s=first_s, second_step_s=second_s,
    steps_per_window=steps_per_window,
    gflops=flops * summary["steps_per_s"] / 1e9, flops_per_step=flops, n_params=n_params(cfg),
    peak_rss_mib=rss_mib(), rss_after_import_mib=rss_after_import,
    import_s_inproc=import_s,
    loss_before=loss_before, loss_after=loss_after,
    opt_kwargs=opt_kwargs,
    torch=torch.__version__,
    mkldnn=torch.backends.mkldnn.is_available(),
    blas=("mkl" if torch.backends.mkl.is_available() else "other"),
))
