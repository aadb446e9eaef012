//! What every subcommand shares: the failure type `main` reports, reading and compiling the
//! model file, the command line's value parsers, the run arguments (`--data`, `--batch`,
//! `--seed`, `--set`), and the check of output paths against inputs.

pub(crate) mod args;
pub(crate) mod connect;
pub(crate) mod landscape;
pub(crate) mod line;
pub(crate) mod lr_find;
pub(crate) mod ntk;
pub(crate) mod plot;
pub(crate) mod predict;
pub(crate) mod prune;
pub(crate) mod sweep;

use std::path::{Path, PathBuf};

use clap::ValueEnum;
use nnc::check::{Purpose, TrainSpec};
use nnc::diagnostic::Diagnostic;
use nnc::pipeline::{self, Compiled};
use nnc::train::data;
use nnc::train::session::{self, BackendKind, Options};

#[derive(clap::Args)]
pub(crate) struct RunArgs {
    /// Use this data file instead of the file's `data =` (CSV or .npz).
    #[arg(long, value_name = "PATH")]
    pub data: Option<PathBuf>,
    /// Batch size.
    #[arg(long, value_parser = positive)]
    pub batch: Option<usize>,
    /// Random seed (initialization, shuffling, synthetic data).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Override a setting of the file, checked as if written there (repeatable):
    /// `optimizer.lr=0.1`, `train.batch=64`, `schedule.T=200`, `clip.max_norm=1`,
    /// `'optimizer=adam(lr = 1e-3)'`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum BackendArg {
    Jit,
    Interp,
}

/// A failure to report: diagnostics on a source file, or a plain message.
pub(crate) enum Failure {
    /// `flags`: the text of the `--set` overrides, which spans past `src` point into.
    Diagnostics {
        file: PathBuf,
        src: String,
        flags: String,
        diags: Vec<Diagnostic>,
    },
    /// A runtime error of the library (data, weights, a run, the JIT, files).
    Run(nnc::error::Error),
    Message(String),
}

impl From<nnc::error::Error> for Failure {
    fn from(e: nnc::error::Error) -> Failure {
        Failure::Run(e)
    }
}

impl From<String> for Failure {
    fn from(m: String) -> Failure {
        Failure::Message(m)
    }
}

pub(crate) fn read(file: &Path) -> Result<String, Failure> {
    let fail = |e: std::io::Error| Failure::Message(format!("cannot read {}: {e}", file.display()));
    let mut text = String::new();
    nnc::files::open_bounded(file, nnc::files::MAX_SOURCE_BYTES)
        .and_then(|mut f| std::io::Read::read_to_string(&mut f, &mut text))
        .map_err(fail)?;
    Ok(text)
}

/// Compiles `file` for a command that does not train: the file needs no `optimizer`. With
/// the weights it will run, which may hold pruning masks ([`pruned`]).
pub(crate) fn compile_to_evaluate(
    file: &Path,
    run: &RunArgs,
    weights: Option<&Path>,
) -> Result<Compiled, Failure> {
    let o = pipeline::CompileOptions {
        purpose: Purpose::Evaluate,
        sets: run.sets.clone(),
        masks: pruned(weights),
        ..Default::default()
    };
    compile_with(file, &o, run.seed)
}

/// Whether the weight file holds pruning masks (`<weight>_mask`, as `nnc prune` writes):
/// the model is then compiled with its masks, which keep pruned weights at 0. A file that
/// cannot be read says no here; loading it reports why.
pub(crate) fn pruned(weights: Option<&Path>) -> bool {
    let header = weights.and_then(|p| nnc::train::weights::header(p).ok()).unwrap_or_default();
    header.names.iter().any(|n| n.ends_with("_mask"))
}

/// Compiles `file` with `o` (which holds the `--set` overrides); `seed` (`--seed`)
/// overrides the file's, which salts dropout masks.
pub(crate) fn compile_with(
    file: &Path,
    o: &pipeline::CompileOptions,
    seed: Option<u64>,
) -> Result<Compiled, Failure> {
    let src = read(file)?;
    pipeline::compile_seeded(&src, o, seed).map_err(|diags| Failure::Diagnostics {
        file: file.to_path_buf(),
        src,
        flags: nnc::syntax::set::text(&o.sets),
        diags,
    })
}

/// `eval` and `grad`: the compiled model, its train settings with the command line's
/// overrides, and its data.
pub(crate) fn compile_with_data(
    file: &Path,
    run: &RunArgs,
    weights: &Path,
) -> Result<(Compiled, TrainSpec, data::Dataset), Failure> {
    with_data(compile_to_evaluate(file, run, Some(weights))?, file, run)
}

/// [`compile_with_data`] for a model already compiled.
pub(crate) fn with_data(
    c: Compiled,
    file: &Path,
    run: &RunArgs,
) -> Result<(Compiled, TrainSpec, data::Dataset), Failure> {
    let spec = run_spec(&c, run);
    let ds = session::load_data(&c.model, &spec, base_dir(file), run.data.as_deref())?;
    Ok((c, spec, ds))
}

/// The file's train settings with the command line's `--batch`, `--seed` and `--data`.
pub(crate) fn run_spec(c: &Compiled, run: &RunArgs) -> TrainSpec {
    let o =
        Options { batch: run.batch, seed: run.seed, data: run.data.clone(), ..Options::default() };
    session::effective_spec(&c.model, &o)
}

/// A count the file itself would accept (`batch`, `steps`, `epochs`): an integer ≥ 1.
pub(crate) fn positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("expected an integer of at least 1, found `{s}`")),
    }
}

/// `--checkpoint-every`: `N` or `Nsteps` steps, `Nepochs` epochs, N at least 1.
pub(crate) fn every(s: &str) -> Result<session::Every, String> {
    let (digits, unit) = s.find(|c: char| !c.is_ascii_digit()).map_or((s, ""), |i| s.split_at(i));
    let n = positive(digits)
        .map_err(|_| format!("expected N, Nsteps or Nepochs (N ≥ 1), found `{s}`"))?;
    match unit {
        "" | "step" | "steps" => Ok(session::Every::Steps(n as u64)),
        "epoch" | "epochs" => Ok(session::Every::Epochs(n)),
        _ => Err(format!("expected N, Nsteps or Nepochs (N ≥ 1), found `{s}`")),
    }
}

/// The most threads `--threads` takes: more than any machine nnc runs on has cores, few
/// enough that spawning them does not exhaust the system's thread limit.
pub(crate) const MAX_THREADS: usize = 1024;

/// The default of `--threads` for train, grad and bench: the machine's cores (at most
/// [`MAX_THREADS`]). `ir` compiles for one thread unless told, so its text is the same on
/// every machine.
pub(crate) fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_THREADS)
}

/// `--threads`: 1 to [`MAX_THREADS`].
pub(crate) fn thread_count(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=MAX_THREADS).contains(&n) => Ok(n),
        _ => Err(format!("expected a number of threads from 1 to {MAX_THREADS}, found `{s}`")),
    }
}

pub(crate) fn backend_kind(b: BackendArg, threads: usize) -> BackendKind {
    match b {
        BackendArg::Interp => BackendKind::Interp,
        BackendArg::Jit => BackendKind::Jit { threads: threads.max(1) },
    }
}

/// Refuses, before any work, an output that cannot be written or would overwrite an input
/// (the model file, its data, `extra` inputs) or another output (`nnc::files`).
pub(crate) fn check_outputs(
    file: &Path,
    c: &Compiled,
    run: &RunArgs,
    extra: &[(&str, &Option<PathBuf>)],
    outputs: &[(&str, &Option<PathBuf>)],
) -> Result<(), Failure> {
    let spec = run_spec(c, run);
    let data = session::data_files(&spec, base_dir(file), run.data.as_deref());
    let mut inputs: Vec<(&str, &Path)> = vec![("the model file", file)];
    inputs.extend(data.iter().map(|p| ("the data file", p.as_path())));
    inputs.extend(extra.iter().filter_map(|(w, p)| Some((*w, p.as_deref()?))));
    let outputs: Vec<(&str, &Path)> =
        outputs.iter().filter_map(|(w, p)| Some((*w, p.as_deref()?))).collect();
    nnc::files::check_outputs(&inputs, &outputs).map_err(|e| Failure::Message(e.to_string()))
}

/// A flag that SIGINT and SIGTERM set, for training to stop after its step in progress and
/// write a checkpoint; a second signal ends the process at once (exit 130 or 143).
pub(crate) fn on_signals() -> Result<std::sync::Arc<std::sync::atomic::AtomicBool>, Failure> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for (sig, code) in [(SIGINT, 130), (SIGTERM, 143)] {
        signal_hook::flag::register_conditional_shutdown(sig, code, flag.clone())
            .and_then(|_| signal_hook::flag::register(sig, flag.clone()))
            .map_err(|e| format!("cannot handle signal {sig}: {e}"))?;
    }
    Ok(flag)
}

/// Writes `text` to `path` (atomically) and says so.
pub(crate) fn write_text(path: &Path, text: &str) -> Result<(), Failure> {
    nnc::files::write_atomic(path, text.as_bytes())
        .map_err(|e| Failure::Message(format!("cannot write {}: {e}", path.display())))?;
    println!("wrote {}", path.display());
    Ok(())
}

/// Draws `figure` into `path` and says so.
pub(crate) fn draw(path: &Path, figure: &nnc::plot::Figure) -> Result<(), Failure> {
    nnc::plot::write(path, figure)?;
    println!("wrote {}", path.display());
    Ok(())
}

pub(crate) fn base_dir(file: &Path) -> &Path {
    file.parent().unwrap_or(Path::new("."))
}
