//! The `nnc` command line: parses arguments with clap and calls the library. Exit codes:
//! 0 success, 1 a user error (rendered diagnostic or message), 2 a usage error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
mod cli;

use cli::*;
use nnc::bench;
use nnc::diagnostic::render_all_with;
use nnc::pipeline::{self, IrError, Stage};
use nnc::syntax::ast;
use nnc::tensor::Tensor;
use nnc::train::session::{self, BackendKind, Options};
use nnc::train::{checkpoint as ckpt, data, report, weights};

#[derive(Parser)]
#[command(
    name = "nnc",
    version,
    about = "A compiler for neural-network training",
    after_help = "Every built-in name (layers, activations, losses, initializers, optimizers, schedules,\nclipping, data sets) with its parameters and defaults: `nnc list`; their definitions:\ndocs/methods.md. Start with `nnc train examples/digits_mlp.nn`."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
        /// Worker threads (the interpreter uses one).
        #[arg(long, default_value_t = 1, value_parser = thread_count)]
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
        /// Worker threads of the JIT.
        #[arg(long, default_value_t = 1, value_parser = thread_count)]
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
        /// Threads, the calling one included.
        #[arg(long, default_value_t = 1, value_parser = thread_count)]
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
enum StageArg {
    Ast,
    Graph,
    Grad,
    Step,
    Opt,
    Kernels,
    Clif,
}

#[derive(Clone, Copy, ValueEnum)]
enum BenchBackendArg {
    Jit,
    Interp,
}

/// Output cut short by the reader (`nnc ir … | head`) ends the process quietly, as other
/// command-line tools do, instead of a panic on the failed write: Rust ignores SIGPIPE by
/// default, this restores the default action.
#[cfg(unix)]
fn quiet_broken_pipe() {
    // SAFETY: setting a signal's disposition to its default, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    #[cfg(unix)]
    quiet_broken_pipe();
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Diagnostics { file, src, flags, diags }) => {
            eprint!("{}", render_all_with(&diags, &file.display().to_string(), &src, &flags));
            ExitCode::from(1)
        }
        Err(Failure::Run(e)) => {
            eprintln!("error: {e}");
            // As a shell reports a run that SIGINT ended.
            let interrupted = matches!(e, nnc::error::Error::Interrupted { .. });
            ExitCode::from(if interrupted { 130 } else { 1 })
        }
        Err(Failure::Message(m)) => {
            eprintln!("error: {m}");
            ExitCode::from(1)
        }
    }
}

fn run(cmd: Command) -> Result<(), Failure> {
    match cmd {
        Command::List { what } => {
            use nnc::check::registry;
            let words: Vec<String> = match what {
                Some(w) => vec![w],
                None => registry::list_words().into_iter().map(String::from).collect(),
            };
            let tables: Vec<String> = words
                .iter()
                .filter_map(|w| registry::list(w))
                .map(|(title, table)| registry::render(title, table))
                .collect();
            print!("{}", tables.join("\n"));
            Ok(())
        }
        Command::Check { file, no_data, sets } => {
            let run = RunArgs { data: None, batch: None, seed: None, sets };
            let c = compile_to_evaluate(&file, &run)?;
            let m = &c.model;
            // The data first: `ok` is printed only for a file whose data fits too.
            let data = match !no_data && m.train.data.is_some() {
                true => Some(session::load_data(m, &m.train, base_dir(&file), None)?),
                false => None,
            };
            println!("model {}: ok", m.name);
            let w = m.params.iter().map(|p| p.name.len()).max().unwrap_or(0).max(9);
            println!("  {:w$}  {:>12}  {:>10}", "parameter", "shape", "count");
            for p in &m.params {
                let shape = format!("{:?}", p.shape);
                let count = p.shape.iter().product::<usize>();
                println!("  {:w$}  {:>12}  {:>10}", p.name, shape, count);
            }
            println!("  {} parameters in {} tensors", m.param_count(), m.params.len());
            for b in &m.buffers {
                println!("  buffer {} {:?}", b.name, b.shape);
            }
            if !c.ast.items.iter().any(|i| matches!(i, ast::Item::Optimizer { .. })) {
                println!("  no optimizer: the model can be evaluated, not trained");
            }
            if let Some(ds) = data {
                let features = ds.x.shape[1..].iter().product::<usize>();
                let (train, val) = data::split(ds, m.train.validation, m.train.seed);
                println!(
                    "  data: {} training examples, {} validation, {features} features each",
                    train.len(),
                    val.map_or(0, |v| v.len()),
                );
            }
            Ok(())
        }
        Command::Ir { file, stage, check, bless, threads } => {
            if let (Some(p), true) = (&check, bless) {
                let (inputs, outputs) =
                    ([("the model file", file.as_path())], [("--check", p.as_path())]);
                nnc::files::check_outputs(&inputs, &outputs)
                    .map_err(|e| Failure::Message(e.to_string()))?;
            }
            let src = read(&file)?;
            let stage = match stage {
                StageArg::Ast => Stage::Ast,
                StageArg::Graph => Stage::Graph,
                StageArg::Grad => Stage::Grad,
                StageArg::Step => Stage::Step,
                StageArg::Opt => Stage::Opt,
                StageArg::Kernels => Stage::Kernels,
                StageArg::Clif => Stage::Clif,
            };
            let text = pipeline::ir(&src, stage, threads.max(1)).map_err(|e| match e {
                IrError::Source(diags) => Failure::Diagnostics {
                    file: file.clone(),
                    src: src.clone(),
                    flags: String::new(),
                    diags,
                },
                IrError::Jit(e) => Failure::Run(e.into()),
            })?;
            match (check, bless) {
                (None, _) => print!("{text}"),
                (Some(p), true) => {
                    nnc::files::write_atomic(&p, text.as_bytes())
                        .map_err(|e| format!("cannot write {}: {e}", p.display()))?;
                    eprintln!("wrote {}", p.display());
                }
                (Some(p), false) => {
                    if !p.exists() {
                        return Err(Failure::Message(format!(
                            "{} does not exist: add --bless to write the current IR there",
                            p.display()
                        )));
                    }
                    let want = read(&p)?;
                    if want != text {
                        return Err(Failure::Message(format!(
                            "the {} IR of {} differs from {} (rerun with --bless to accept):\n{}",
                            stage_name(stage),
                            file.display(),
                            p.display(),
                            nnc::files::unified_diff(&want, &text)
                        )));
                    }
                    eprintln!("{}: IR matches {}", file.display(), p.display());
                }
            }
            Ok(())
        }
        Command::Train {
            file,
            run,
            steps,
            epochs,
            no_shuffle,
            init,
            save,
            log,
            log_layers,
            backend,
            threads,
            quiet,
            every,
            checkpoint,
            checkpoint_every,
            resume,
            allow_nonfinite,
        } => {
            let options = pipeline::CompileOptions {
                log_layers,
                allow_nonfinite,
                sets: run.sets.clone(),
                ..Default::default()
            };
            let c = compile_with(&file, &options, run.seed)?;
            let dir = checkpoint.or_else(|| resume.clone());
            if checkpoint_every.is_some() && dir.is_none() {
                return Err("--checkpoint-every needs --checkpoint DIR (or --resume DIR)"
                    .to_string()
                    .into());
            }
            let layers_log =
                log.as_ref().filter(|_| log_layers).map(|l| l.with_extension("layers.csv"));
            // A folder yet to be created is checked as the file it will be.
            let ckpt_out = dir.as_ref().map(|d| if d.is_dir() { ckpt::path(d) } else { d.clone() });
            let resumed =
                resume.as_ref().map(|d| ckpt::path(d)).filter(|r| Some(r) != ckpt_out.as_ref());
            let outputs = [
                ("--save", &save),
                ("--log", &log),
                ("--log-layers", &layers_log),
                ("--checkpoint", &ckpt_out),
            ];
            let inputs = [("--init", &init), ("--resume", &resumed)];
            check_outputs(&file, &c, &run, &inputs, &outputs)?;
            let interrupt = dir.as_ref().map(|_| on_signals()).transpose()?;
            let kind = backend_kind(backend, threads);
            let o = Options {
                steps,
                epochs,
                batch: run.batch,
                seed: run.seed,
                data: run.data,
                no_shuffle,
                init,
                save: save.clone(),
                log,
                log_layers,
                quiet,
                every: every.map(|n| n as usize),
                checkpoint: dir.map(|dir| session::Checkpointing { dir, every: checkpoint_every }),
                resume,
                interrupt,
                allow_nonfinite,
            };
            let s = session::train(&c, kind, base_dir(&file), &o)?;
            let fmt = |vals: &[f32]| -> String {
                s.names
                    .iter()
                    .zip(vals)
                    .map(|(n, v)| format!("{n} {}", report::sig(*v as f64, 6)))
                    .collect::<Vec<_>>()
                    .join("  ")
            };
            println!("trained {} steps ({} epochs)", s.steps, s.epochs);
            println!("train       {}", fmt(&s.train));
            if let Some(v) = &s.validation {
                println!("validation  {}", fmt(v));
            }
            if let Some(p) = save {
                println!("saved weights to {}", p.display());
            }
            Ok(())
        }
        Command::Eval { file, weights: w, run } => {
            let (c, spec, ds) = compile_with_data(&file, &run)?;
            session::check_memory(&c)?;
            let weights = session::initial_weights(&c.model, spec.seed, Some(&w))?;
            let mut be = session::backend_with(BackendKind::Interp, &c, weights)?;
            let names: Vec<&str> = c.forward.outputs.iter().map(|o| o.name.as_str()).collect();
            // The file's own data splits as training splits it; `--data` is evaluated whole.
            let parts = match (&run.data, data::split(ds.clone(), spec.validation, spec.seed)) {
                (None, (train, Some(val))) => vec![("train", train), ("validation", val)],
                _ => vec![("all", ds)],
            };
            for (part, ds) in &parts {
                let out = session::evaluate(&c.model, be.as_mut(), ds, spec.batch.max(256))?;
                let values: Vec<String> = names
                    .iter()
                    .zip(&out)
                    .map(|(n, v)| format!("{n} {}", report::sig(*v as f64, 6)))
                    .collect();
                println!("{part:<11} {:>5} examples  {}", ds.len(), values.join("  "));
            }
            Ok(())
        }
        Command::Predict { file, weights, out, run } => {
            cli::predict::run(&file, &weights, out, &run)
        }
        Command::Plot { logs, y, x, log_y, log_x, out, title } => {
            cli::plot::run(cli::plot::Args { logs, y, x, log_x, log_y, out, title })
        }
        Command::Sweep { file, run, seeds, jobs, steps, epochs, out } => {
            cli::sweep::run(cli::sweep::Args { file, run, seeds, jobs, out, steps, epochs })
        }
        Command::LrFind { file, run, min, max, steps, out, plot } => {
            cli::lr_find::run(cli::lr_find::Args { file, run, min, max, steps, out, plot })
        }
        Command::Weights { file, all } => {
            // A checkpoint folder stands for its checkpoint file.
            let file = if file.is_dir() { ckpt::path(&file) } else { file };
            let tensors = weights::load(&file).map_err(|e| e.to_string())?;
            if let Ok(c) = ckpt::load_file(&file) {
                print!("{}", c.describe());
            }
            print!("{}", weights::show(&tensors, all));
            Ok(())
        }
        Command::Bench { file, json, threads, backend, windows, window_s, warmup_s, profile } => {
            let src = read(&file)?;
            let engine = match backend {
                BenchBackendArg::Jit => bench::Engine::Jit,
                BenchBackendArg::Interp => bench::Engine::Interp,
            };
            let threads = threads.max(1);
            let s = bench::Settings {
                engine,
                threads,
                windows,
                window_s,
                warmup_s,
                profile,
                ..Default::default()
            };
            let r = bench::run(&src, &file, &s).map_err(|e| match e {
                bench::BenchError::Diagnostics(diags) => {
                    Failure::Diagnostics { file, src, flags: String::new(), diags }
                }
                bench::BenchError::Run(e) => Failure::Run(e),
            })?;
            match json {
                true => println!("{}", r.json()),
                false => print!("{}", r.table()),
            }
            if let Some(p) = &r.profile {
                // After the JSON line, not in it: the line stays one object for scripts.
                print!("{p}");
            }
            Ok(())
        }
        Command::Grad { file, weights: w, out, run, backend, threads } => {
            let c = compile_to_evaluate(&file, &run)?;
            check_outputs(
                &file,
                &c,
                &run,
                &[("--weights", &Some(w.clone()))],
                &[("--out", &Some(out.clone()))],
            )?;
            session::check_memory(&c)?;
            let (c, spec, ds) = with_data(c, &file, &run)?;
            let params = session::initial_params(&c.model, spec.seed, Some(&w))?;
            let n = spec.batch.min(ds.x.shape[0]);
            let idx: Vec<usize> = (0..n).collect();
            let (x, y) = data::batch(&ds, &idx);
            let inputs = session::inputs_for(&c.model, x, y);
            let grads = session::gradients(&c, backend_kind(backend, threads), &inputs, &params)?;
            let named: Vec<(String, &Tensor<f32>)> =
                c.model.params.iter().map(|p| p.name.clone()).zip(grads.iter()).collect();
            weights::save(&out, &named)
                .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
            println!(
                "wrote gradients of {} tensors on a batch of {n} to {}",
                named.len(),
                out.display()
            );
            Ok(())
        }
    }
}

fn stage_name(s: Stage) -> &'static str {
    Stage::ALL.iter().find(|(_, x)| *x == s).map(|(n, _)| *n).unwrap_or("?")
}
