//! The command line's grammar: every subcommand with its arguments, flags and help text
//! (clap's derive). `main.rs` dispatches on it.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use nnc::train::session;

use super::{default_threads, every, positive, thread_count, BackendArg, RunArgs};

#[derive(Parser)]
#[command(
    name = "nnc",
    version,
    about = "A compiler for neural-network training",
    after_help = "Every built-in name (layers, activations, losses, initializers, optimizers, schedules,\nclipping, data sets) with its parameters and defaults: `nnc list`; their definitions:\ndocs/methods.md. Start with `nnc train examples/digits_mlp.nn`."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Parse and check a model; print its parameters and their count, and check the data
    /// file it names (exists, columns, feature count, labels).
    #[command(after_help = "Example:\n  nnc check examples/iris.nn")]
    Check {
        /// The model file (.nn).
        file: PathBuf,
        /// Check the model only, not its data.
        #[arg(long)]
        no_data: bool,
        /// Override a setting of the file (as `train --set`).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
    },
    /// Print the built-in names with their parameters and defaults (every table, or one).
    #[command(after_help = "Examples:\n  nnc list\n  nnc list optimizers")]
    List {
        /// Which table.
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(nnc::check::registry::list_words()))]
        what: Option<String>,
    },
    /// Print the IR of one compiler stage (deterministic text, for reading and snapshots).
    #[command(
        after_help = "Examples:\n  nnc ir examples/xor.nn --stage grad\n  nnc ir model.nn --stage opt --check model.opt.txt --bless"
    )]
    Ir {
        /// The model file (.nn).
        file: PathBuf,
        /// The stage to print.
        #[arg(long, value_enum, default_value = "opt")]
        stage: StageArg,
        /// Compare with this expected file; exit 1 with a diff when they differ.
        #[arg(long, value_name = "EXPECTED")]
        check: Option<PathBuf>,
        /// With --check: write the current IR to the expected file instead of comparing.
        #[arg(long, requires = "check")]
        bless: bool,
        /// For `kernels` and `clif`: the threads the JIT compiles for (as `train --threads`).
        #[arg(long, default_value_t = 1, value_parser = thread_count)]
        threads: usize,
    },
    /// Train the model as the file says; flags override the file's train block.
    #[command(
        after_help = "Examples:\n  nnc train examples/digits_mlp.nn --log run.csv --save w.safetensors\n  nnc train examples/iris.nn --set optimizer.lr=0.01 --epochs 20 --checkpoint ck\n  nnc train examples/iris.nn --resume ck --epochs 40"
    )]
    Train {
        /// The model file (.nn).
        file: PathBuf,
        #[command(flatten)]
        run: RunArgs,
        /// Stop after N optimizer steps.
        #[arg(long, value_parser = positive)]
        steps: Option<usize>,
        /// Train for N epochs.
        #[arg(long, value_parser = positive)]
        epochs: Option<usize>,
        /// Take batches in file order.
        #[arg(long)]
        no_shuffle: bool,
        /// Start from these weights instead of the initializers.
        #[arg(long, value_name = "W.safetensors")]
        init: Option<PathBuf>,
        /// Write the trained weights here (PyTorch state_dict names).
        #[arg(long, value_name = "W.safetensors")]
        save: Option<PathBuf>,
        /// Write one CSV row per step: step,epoch,loss,lr and the metrics.
        #[arg(long, value_name = "FILE.csv")]
        log: Option<PathBuf>,
        /// With --log: also write per-layer gradient norms, weight norms and activation
        /// mean/variance of every step to FILE.layers.csv.
        #[arg(long, requires = "log")]
        log_layers: bool,
        /// Which engine runs the training step.
        #[arg(long, value_enum, default_value = "jit")]
        backend: BackendArg,
        /// Threads of the JIT, the calling one included (default: the machine's cores; the
        /// JIT splits only work large enough to pay, and the results do not depend on it;
        /// the interpreter uses one).
        #[arg(long, default_value_t = default_threads(), value_parser = thread_count)]
        threads: usize,
        /// Print only the final summary.
        #[arg(long, short)]
        quiet: bool,
        /// Print every N-th epoch (and the first and the last). Default: every epoch up to
        /// 20 epochs, then about twenty lines.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        every: Option<u64>,
        /// Keep a checkpoint in this folder (created if absent): at the end, on SIGINT or
        /// SIGTERM, when the log cannot be written, and as often as --checkpoint-every says.
        #[arg(long, value_name = "DIR")]
        checkpoint: Option<PathBuf>,
        /// Also write the checkpoint every N steps (`500`, `500steps`) or at the end of every
        /// N-th epoch (`2epochs`).
        #[arg(long, value_name = "N", value_parser = every)]
        checkpoint_every: Option<session::Every>,
        /// Continue exactly the run whose checkpoint is in DIR (and keep checkpointing there
        /// unless --checkpoint says elsewhere).
        #[arg(long, value_name = "DIR", conflicts_with = "init")]
        resume: Option<PathBuf>,
        /// Save the weights into this new or empty folder as the run goes (the training
        /// trajectory, for `nnc landscape --dirs pca`): at the start and as often as
        /// --trajectory-every says (default: every epoch), as step-<t>.safetensors.
        #[arg(long, value_name = "DIR")]
        trajectory: Option<PathBuf>,
        /// How often --trajectory saves: every N steps (`100`, `100steps`) or every N-th epoch
        /// (`2epochs`).
        #[arg(long, value_name = "N", value_parser = every, requires = "trajectory")]
        trajectory_every: Option<session::Every>,
        /// Keep training when a parameter or the loss stops being finite (no checks are
        /// compiled; non-finite weights are still never saved).
        #[arg(long)]
        allow_nonfinite: bool,
    },
    /// Loss and metrics of given weights on the data.
    #[command(after_help = "Example:\n  nnc eval examples/iris.nn --weights w.safetensors")]
    Eval {
        /// The model file (.nn).
        file: PathBuf,
        /// The weights to use (a file `train --save` wrote, or a PyTorch state_dict).
        #[arg(long, value_name = "W.safetensors")]
        weights: PathBuf,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Per-example predictions in data order, as CSV: class probabilities and the class for
    /// a classifier, values for a regression. The data may leave out the label column.
    #[command(
        after_help = "Example:\n  nnc predict examples/iris.nn --weights iris.safetensors --out predictions.csv"
    )]
    Predict {
        /// The model file (.nn).
        file: PathBuf,
        /// The weights to use (a file `train --save` wrote, or a PyTorch state_dict).
        #[arg(long, value_name = "W.safetensors")]
        weights: PathBuf,
        /// Write the predictions here instead of standard output.
        #[arg(long, value_name = "FILE.csv")]
        out: Option<PathBuf>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Draw training logs as curves (several runs overlaid), or a --log-layers file as a
    /// heat map of one per-layer statistic over steps; SVG or PNG by the extension of --out.
    #[command(
        after_help = "Examples:\n  nnc plot a.csv b.csv --y loss,val_loss --log-y --out curves.svg\n  nnc plot run.layers.csv --y grad_norm --out layers.png"
    )]
    Plot {
        /// CSV logs of `nnc train --log` (or one `.layers.csv` of --log-layers).
        #[arg(required = true, value_name = "LOG.csv")]
        logs: Vec<PathBuf>,
        /// Columns to draw (default: loss, and val_loss where logged); for a per-layer log,
        /// the statistic: grad_norm (default), weight_norm, act_mean or act_var.
        #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
        y: Vec<String>,
        /// The column along the x axis.
        #[arg(long, default_value = "step", value_name = "COLUMN")]
        x: String,
        /// Logarithmic y axis (left out: values that are not positive).
        #[arg(long)]
        log_y: bool,
        /// Logarithmic x axis.
        #[arg(long)]
        log_x: bool,
        /// The picture: FILE.svg or FILE.png.
        #[arg(long, value_name = "FILE.svg|FILE.png")]
        out: PathBuf,
        /// The title (default: what is drawn).
        #[arg(long)]
        title: Option<String>,
    },
    /// Train every combination of `--set KEY=V1,V2,...` values (with --seeds seeds each,
    /// several runs at a time); write each run's log, runs.csv, summary.csv (mean and spread
    /// over seeds) and the curves of every setting into --out.
    #[command(
        after_help = "Example:\n  nnc sweep examples/iris.nn --set optimizer.lr=0.01,0.03,0.1 --seeds 3 --out sweep-lr"
    )]
    Sweep {
        /// The model file (.nn).
        file: PathBuf,
        #[command(flatten)]
        run: RunArgs,
        /// Seeds per setting: the file's seed (or --seed) and the ones after it.
        #[arg(long, default_value_t = 1, value_parser = positive)]
        seeds: usize,
        /// Runs at a time (default: one per core; each run uses one thread).
        #[arg(long, value_parser = thread_count)]
        jobs: Option<usize>,
        /// Stop each run after N optimizer steps.
        #[arg(long, value_parser = positive)]
        steps: Option<usize>,
        /// Train each run for N epochs.
        #[arg(long, value_parser = positive)]
        epochs: Option<usize>,
        /// The folder for the logs, tables and curves (created; must be empty if it exists).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// The learning-rate range test (Smith 2017): train with the rate growing exponentially
    /// from --min to --max over one epoch (at least 100 steps); print where the smoothed loss
    /// is lowest and where it falls fastest; write the curve and its picture.
    #[command(
        name = "lr-find",
        after_help = "Example:\n  nnc lr-find examples/digits_mlp.nn --plot lr.svg --out lr.csv"
    )]
    LrFind {
        /// The model file (.nn).
        file: PathBuf,
        #[command(flatten)]
        run: RunArgs,
        /// The first step's learning rate.
        #[arg(long, default_value_t = 1e-7)]
        min: f64,
        /// The last step's learning rate.
        #[arg(long, default_value_t = 10.0)]
        max: f64,
        /// Steps of the test (default: one epoch, at least 100).
        #[arg(long, value_parser = positive)]
        steps: Option<usize>,
        /// Write step, lr, loss and smoothed loss here.
        #[arg(long, value_name = "FILE.csv")]
        out: Option<PathBuf>,
        /// Draw the loss against the learning rate here (log x axis).
        #[arg(long, value_name = "FILE.svg|FILE.png")]
        plot: Option<PathBuf>,
    },
    /// Loss and metrics along the line between two solutions, with its barrier: a table, a
    /// CSV row per point, a picture.
    #[command(
        after_help = "Example:\n  nnc line examples/digits_mlp.nn --from a.safetensors --to b.safetensors --out line.csv --plot line.svg"
    )]
    Line(super::line::Args),
    /// Trains a curve (Bézier or polychain) between two solutions with the file's optimizer,
    /// then prints the barriers of the line and the curve side by side.
    #[command(
        after_help = "Example:\n  nnc connect examples/digits_mlp.nn --from a.safetensors --to b.safetensors --epochs 20 --save curve.safetensors --plot connect.svg"
    )]
    Connect(super::connect::Args),
    /// The loss around given weights along one or two random directions (filter-normalized
    /// by default): a table, a CSV row per point, a curve or a contour plot.
    #[command(
        after_help = "Examples:\n  nnc landscape examples/digits_mlp.nn --weights w.safetensors --plot landscape.svg\n  nnc landscape examples/digits_mlp.nn --weights w.safetensors --2d --grid 31 --plot surface.svg"
    )]
    Landscape(super::landscape::Args),
    /// Lottery tickets: iterative magnitude pruning with the survivors reset to their initial
    /// (or rewound) values, masks compiled into the step, and a control; a row per level.
    #[command(
        after_help = "Example:\n  nnc prune examples/digits_mlp.nn --levels 5 --rate 0.2 --control random-reinit --out tickets --plot tickets.svg"
    )]
    Prune(super::prune::Args),
    /// The empirical neural tangent kernel on the first examples: its eigenvalues, trace and
    /// condition number (the Jacobian derived by the compiler).
    #[command(
        after_help = "Example:\n  nnc ntk examples/digits_mlp.nn --examples 256 --plot ntk.svg"
    )]
    Ntk(super::ntk::Args),
    /// Gradients of the loss on the first batch (in data order), same names as the weights.
    #[command(
        after_help = "Example:\n  nnc grad examples/xor.nn --weights w.safetensors --out g.safetensors"
    )]
    Grad {
        /// The model file (.nn).
        file: PathBuf,
        /// The weights to use (a file `train --save` wrote, or a PyTorch state_dict).
        #[arg(long, value_name = "W.safetensors")]
        weights: PathBuf,
        /// Write the gradients here, one tensor per parameter.
        #[arg(long, value_name = "G.safetensors")]
        out: PathBuf,
        #[command(flatten)]
        run: RunArgs,
        /// Which engine computes the gradients.
        #[arg(long, value_enum, default_value = "jit")]
        backend: BackendArg,
        /// Threads of the JIT, the calling one included (default: the machine's cores).
        #[arg(long, default_value_t = default_threads(), value_parser = thread_count)]
        threads: usize,
    },
    /// Print a weights file (or a checkpoint, with where its run was): each tensor's name,
    /// shape and values (a summary when large).
    #[command(after_help = "Example:\n  nnc weights w.safetensors --all")]
    Weights {
        /// A weights file (.safetensors), or a checkpoint file or folder.
        file: PathBuf,
        /// Print every value, however large the tensor.
        #[arg(long)]
        all: bool,
    },
    /// Compile time per stage, training steps per second and peak memory (see BENCHMARKS.md).
    #[command(after_help = "Example:\n  nnc bench examples/bench/c.nn --threads 2 --profile")]
    Bench {
        /// The model file (.nn).
        file: PathBuf,
        /// Print one JSON line instead of a table.
        #[arg(long)]
        json: bool,
        /// Threads, the calling one included (default: the machine's cores).
        #[arg(long, default_value_t = default_threads(), value_parser = thread_count)]
        threads: usize,
        /// Which engine runs the training steps.
        #[arg(long, value_enum, default_value = "jit")]
        backend: BenchBackendArg,
        /// Timed windows (the result is their median).
        #[arg(long, hide = true, default_value_t = 5)]
        windows: usize,
        /// Target seconds per timed window.
        #[arg(long, hide = true, default_value_t = 1.0)]
        window_s: f64,
        /// Untimed warm-up seconds.
        #[arg(long, hide = true, default_value_t = 1.0)]
        warmup_s: f64,
        /// Also time every kernel of the JIT's training step and list them by time spent.
        #[arg(long)]
        profile: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum StageArg {
    Ast,
    Graph,
    Grad,
    Step,
    Opt,
    Kernels,
    Clif,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum BenchBackendArg {
    Jit,
    Interp,
}
