//! The training loop: loads and splits the data, initializes (or loads) the parameters,
//! runs one backend step per batch with the scheduled learning rate, logs every step, and
//! evaluates on the validation split after each epoch.
//!
//! Step `t` counts optimizer steps from 1. An epoch visits every training example once, in a
//! seeded shuffled order (file order under `shuffle = false`), the last batch possibly short.
//! `--steps N` stops after N steps, wrapping into further epochs as needed.
//!
//! L-BFGS (`optimizer lbfgs`, driven from the host by [`super::lbfgs::Driver`]) is full
//! batch: each step is one `optimizer.step(closure)` over the whole training split in file
//! order, so an epoch is one step and `batch` only sizes the evaluation chunks.
//!
//! Parameters and buffers (batch-norm running statistics) start from the initializers or
//! `--init` and end in `--save` together ([`super::state`]); `init = lsuv` layers are
//! rescaled on the first batch before the first step ([`super::lsuv`]). The step's outputs
//! are the loss, the metrics and, when compiled with probes, the per-layer statistics that
//! `--log-layers` writes to `<log stem>.layers.csv`. Validation and the final report run
//! the evaluation-mode graph.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::checkpoint;
use super::data::{self, DataShape, Dataset, LabelSpec};
use super::lsuv;
use super::report::{self, CsvLog, Progress};
use super::run::{Logs, Order, Plan, Run};
use super::state::{self, Weights};
use crate::check::{DataSpec, Model, TrainSpec};
use crate::diagnostic::Span;
use crate::error::{Error, NonFinite, Result};
use crate::graph::{Dim, InputKind, Role, Target};
use crate::pipeline::Compiled;
use crate::runtime::{Backend, Interp, Outputs};
use crate::tensor::Tensor;

/// Which engine runs the step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    Interp,
    /// The Cranelift JIT (`crate::jit`) with this many threads.
    Jit {
        threads: usize,
    },
}

/// Command-line overrides of the file's `train` block and run options.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub steps: Option<usize>,
    pub epochs: Option<usize>,
    pub batch: Option<usize>,
    pub seed: Option<u64>,
    pub data: Option<PathBuf>,
    pub no_shuffle: bool,
    pub init: Option<PathBuf>,
    pub save: Option<PathBuf>,
    pub log: Option<PathBuf>,
    /// With `log`: also write the per-layer probes (`crate::probes`) of every step to
    /// `<log stem>.layers.csv`. Needs a compilation with `CompileOptions { log_layers: true }`.
    pub log_layers: bool,
    /// Print nothing but errors.
    pub quiet: bool,
    /// Print every N-th epoch (and the first and last); by default about twenty lines.
    pub every: Option<usize>,
    /// Write checkpoints: at the end, when `interrupt` is set, and as often as it says.
    pub checkpoint: Option<Checkpointing>,
    /// Continue the run whose checkpoint is in this folder.
    pub resume: Option<PathBuf>,
    /// Set (by a signal handler) to stop after the step in progress, with a checkpoint.
    pub interrupt: Option<Arc<AtomicBool>>,
    /// Go on when the loss or a parameter is not finite (compiled without checks).
    pub allow_nonfinite: bool,
    /// Save the weights along the way.
    pub trajectory: Option<Trajectory>,
}

/// `--trajectory DIR [--trajectory-every N]`: the weights at the start of the run and every
/// so often, as `DIR/step-<t>.safetensors` (`t` in 7 digits), for `nnc landscape --dirs pca`.
#[derive(Clone, Debug)]
pub struct Trajectory {
    pub dir: PathBuf,
    pub every: Every,
}

impl Trajectory {
    /// The file of the weights after step `t`.
    pub fn file(&self, t: u64) -> PathBuf {
        self.dir.join(format!("step-{t:07}.safetensors"))
    }
    fn save(&self, model: &Model, be: &dyn Backend, t: u64) -> Result<()> {
        if !self.dir.is_dir() {
            std::fs::create_dir(&self.dir).map_err(|e| Error::write(&self.dir, e))?;
        }
        state::save(model, &current_weights(model, be)?, &self.file(t))
    }
}

/// `--checkpoint DIR [--checkpoint-every N]`.
#[derive(Clone, Debug)]
pub struct Checkpointing {
    pub dir: PathBuf,
    pub every: Option<Every>,
}

/// How often a run writes a checkpoint besides at its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Every {
    Steps(u64),
    /// At the end of every n-th epoch.
    Epochs(usize),
}

impl Checkpointing {
    /// Whether step `t`, of `epoch`, ending the epoch if `end_of_epoch`, is followed by one.
    fn due(&self, t: u64, epoch: usize, end_of_epoch: bool) -> bool {
        self.every.is_some_and(|e| e.due(t, epoch, end_of_epoch))
    }
}

impl Every {
    /// Whether step `t`, of `epoch`, ending the epoch if `end_of_epoch`, is one of these.
    pub fn due(self, t: u64, epoch: usize, end_of_epoch: bool) -> bool {
        match self {
            Every::Steps(n) => t.is_multiple_of(n),
            Every::Epochs(n) => end_of_epoch && epoch.is_multiple_of(n),
        }
    }
}

/// What a finished run reports.
#[derive(Clone, Debug)]
pub struct Summary {
    pub steps: u64,
    pub epochs: usize,
    /// Names of the outputs: `loss` then the metrics.
    pub names: Vec<String>,
    /// The last step's loss and metrics.
    pub last: Outputs,
    /// Loss and metrics over the whole training split after training.
    pub train: Outputs,
    /// Same over the validation split, if any.
    pub validation: Option<Outputs>,
    /// `‖θ_T − θ₀‖/‖θ₀‖` over every parameter, `θ₀` the weights the run started from (a
    /// resumed run's too: its checkpoints keep them): how far training moved the weights, which shrinks like
    /// `1/√width` in the lazy (NTK) regime.
    pub weight_change: f64,
}

/// `‖after − before‖/‖before‖` over all the tensors, in f64.
pub fn relative_change(before: &[Tensor<f32>], after: &[Tensor<f32>]) -> f64 {
    let (mut moved, mut size) = (0.0f64, 0.0f64);
    for (b, a) in before.iter().zip(after) {
        for (x, y) in b.data.iter().zip(&a.data) {
            moved += (*y as f64 - *x as f64).powi(2);
            size += (*x as f64).powi(2);
        }
    }
    (moved / size).sqrt()
}

/// The train spec with command-line overrides applied.
pub fn effective_spec(model: &Model, o: &Options) -> TrainSpec {
    let mut s = model.train.clone();
    if let Some(b) = o.batch {
        s.batch = b;
    }
    if let Some(e) = o.epochs {
        s.epochs = Some(e);
        s.steps = None;
    }
    if let Some(n) = o.steps {
        s.steps = Some(n);
    }
    if let Some(seed) = o.seed {
        s.seed = seed;
    }
    if o.no_shuffle {
        s.shuffle = false;
    }
    s
}

/// The per-example shapes the model's single input and label want.
pub fn data_shape(model: &Model) -> Result<DataShape> {
    let settings = |m: &str| Error::Settings(m.to_string());
    let feat =
        model.inputs.iter().find(|i| !i.is_label).ok_or(settings("the model has no input"))?;
    let label =
        model.inputs.iter().find(|i| i.is_label).ok_or(settings("the model has no label"))?;
    let fixed = |d: &[Dim]| d.iter().map(|d| d.size(0)).collect::<Vec<_>>();
    let features = fixed(&feat.shape.dims()[1..]);
    let label = match label.kind {
        InputKind::Classes(c) => LabelSpec::Classes(c as usize),
        _ => LabelSpec::Targets(fixed(&label.shape.dims()[1..]).iter().product()),
    };
    Ok(DataShape { features, label })
}

/// Loads the data the model trains on: `--data` (a CSV/npz path using the file's label
/// settings) or the file's `data =` spec, relative to the `.nn` file's folder.
pub fn load_data(
    model: &Model,
    spec: &TrainSpec,
    base: &Path,
    over: Option<&Path>,
) -> Result<Dataset> {
    let (dspec, base) = which_data(spec, base, over)?;
    Ok(data::load_with(&dspec, base, &data_shape(model)?, input_ids(model), spec.seed)?)
}

/// [`load_data`] for data that may come without labels (`data::load_maybe_labelled`):
/// the examples and whether their labels were read.
pub fn load_data_maybe_labelled(
    model: &Model,
    spec: &TrainSpec,
    base: &Path,
    over: Option<&Path>,
) -> Result<(Dataset, bool)> {
    let (dspec, base) = which_data(spec, base, over)?;
    let shape = data_shape(model)?;
    Ok(data::load_maybe_labelled(&dspec, base, &shape, input_ids(model), spec.seed)?)
}

/// The data spec to load and the folder its paths are relative to.
fn which_data<'a>(
    spec: &TrainSpec,
    base: &'a Path,
    over: Option<&Path>,
) -> Result<(DataSpec, &'a Path)> {
    match (over, &spec.data) {
        (Some(p), d) => Ok((spec_for_path(p, d.as_ref())?, Path::new("."))),
        (None, Some(d)) => Ok((d.clone(), base)),
        (None, None) => {
            let m = "no data: give `data = ...` in the train block or --data PATH";
            Err(Error::Settings(m.into()))
        }
    }
}

/// The files the data comes from: `--data`, else the file's csv/npz/npy spec (relative to
/// the `.nn` file's folder `base`); none for a synthetic data set. For `files::check_outputs`.
pub fn data_files(spec: &TrainSpec, base: &Path, over: Option<&Path>) -> Vec<PathBuf> {
    if let Some(p) = over {
        return vec![p.to_path_buf()];
    }
    match &spec.data {
        Some(DataSpec::Csv { path, .. } | DataSpec::Npz { path, .. }) => vec![base.join(path)],
        Some(DataSpec::Npy { x, y, .. }) => vec![base.join(x), base.join(y)],
        Some(DataSpec::Idx { images, labels, .. }) => vec![base.join(images), base.join(labels)],
        Some(DataSpec::Synthetic { .. }) | None => Vec::new(),
    }
}

/// `Some(V)` when the model's input holds ids (`input tok: class[B, T] of V`).
pub fn input_ids(model: &Model) -> Option<usize> {
    match model.inputs.iter().find(|i| !i.is_label)?.kind {
        InputKind::Classes(v) => Some(v as usize),
        _ => None,
    }
}

/// The data spec for a `--data PATH` override: a CSV or .npz file read with the column or
/// array names of the file's own spec (defaults `label`, `x`, `y`).
fn spec_for_path(p: &Path, file_spec: Option<&DataSpec>) -> Result<DataSpec> {
    let path = p.to_string_lossy().into_owned();
    let span = Span::default();
    let ext = p.extension().map(|e| e.to_string_lossy().to_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "csv" => {
            let label = match file_spec {
                Some(DataSpec::Csv { label, .. }) => label.clone(),
                _ => "label".to_string(),
            };
            Ok(DataSpec::Csv { path, label, span })
        }
        "npz" => {
            let (x, y) = match file_spec {
                Some(DataSpec::Npz { x, y, .. }) => (x.clone(), y.clone()),
                _ => ("x".to_string(), "y".to_string()),
            };
            Ok(DataSpec::Npz { path, x, y, span })
        }
        _ => Err(Error::Settings(format!("--data {}: expected a .csv or .npz file", p.display()))),
    }
}

/// Graph inputs for one batch, in the graph's input order.
pub fn inputs_for(model: &Model, x: Tensor<f32>, y: Tensor<f32>) -> Vec<Tensor<f32>> {
    let (mut x, mut y) = (Some(x), Some(y));
    model
        .inputs
        .iter()
        .map(|i| if i.is_label { y.take() } else { x.take() }.expect("one input and one label"))
        .collect()
}

/// Initial parameters: from `--init` weights, else the model's initializers and seed.
pub fn initial_params(
    model: &Model,
    seed: u64,
    init_file: Option<&Path>,
) -> Result<Vec<Tensor<f32>>> {
    state::initial(model, seed, init_file).map(|w| w.params)
}

/// Refuses a model whose parameters and optimizer state do not fit in the memory available,
/// before any of them is allocated. Counted: the parameters twice (the host copy the
/// initializers or a weight file produce, then the backend's) and the optimizer state once.
pub fn check_memory(c: &Compiled) -> Result<()> {
    let numel = |s: &crate::graph::Shape| s.numel(0) as u64;
    let params: u64 = c.opt.params.iter().map(|p| numel(&p.shape)).sum();
    let states: u64 = c.opt.states.iter().map(|s| numel(&s.shape)).sum();
    let needed = params.saturating_mul(2).saturating_add(states).saturating_mul(4);
    let available = crate::files::available_memory();
    if needed > available {
        let what = "the model's parameters and optimizer state";
        return Err(Error::Memory { what, needed, available });
    }
    Ok(())
}

/// Initial parameters and buffers: from `--init` weights, else the initializers and seed.
pub fn initial_weights(model: &Model, seed: u64, init_file: Option<&Path>) -> Result<Weights> {
    state::initial(model, seed, init_file)
}

/// A compiled JIT holding `params`, whose memory goes back to the system: the JIT copies
/// them into its arena, and freeing them leaves their pages in glibc's heap (earlier frees of
/// large blocks raise its mmap threshold, so they were not mapped on their own), where they
/// would count in the resident set for the whole run unless trimmed (config D's measured
/// peak before and after: BENCHMARKS.md, session 3).
pub fn jit_with_params(
    mut jit: crate::jit::Jit,
    params: Vec<Tensor<f32>>,
) -> Result<Box<dyn Backend>> {
    jit.set_params(&params)?;
    drop(params);
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases memory the allocator holds free.
    unsafe {
        libc::malloc_trim(0);
    }
    Ok(Box::new(jit))
}

/// A backend with the initial buffers.
pub fn make_backend(
    kind: BackendKind,
    c: &Compiled,
    params: Vec<Tensor<f32>>,
) -> Result<Box<dyn Backend>> {
    Ok(match kind {
        BackendKind::Interp => Box::new(Interp::new(&c.opt, &c.forward, params)),
        BackendKind::Jit { threads } => {
            let o = crate::jit::Options { threads, profile: false };
            jit_with_params(crate::pipeline::jit(c, o, &mut crate::observe::Quiet)?, params)?
        }
    })
}

/// A backend holding `w`'s parameters and buffers.
pub fn backend_with(kind: BackendKind, c: &Compiled, w: Weights) -> Result<Box<dyn Backend>> {
    let mut be = make_backend(kind, c, w.params)?;
    if !w.buffers.is_empty() {
        be.set_buffers(&w.buffers)?;
    }
    Ok(be)
}

/// The backend's parameters and buffers.
pub fn current_weights(model: &Model, be: &dyn Backend) -> Result<Weights> {
    let buffers = if model.buffers.is_empty() { Vec::new() } else { be.buffers()? };
    Ok(Weights { params: be.params(), buffers })
}

/// LSUV (`init = lsuv`) on the first batch of the first epoch, unless weights were given.
pub(super) fn calibrate(
    model: &Model,
    spec: &TrainSpec,
    train: &Dataset,
    w: &mut Weights,
    o: &Options,
) -> Result<()> {
    if o.init.is_some() || lsuv::layers(model).is_empty() {
        return Ok(());
    }
    let order = data::epoch_order(train.x.shape[0], spec.shuffle, spec.seed, 0);
    let (x, y) = data::batch(train, &order[..spec.batch.min(order.len())]);
    let inputs = inputs_for(model, x, y);
    for r in lsuv::calibrate(model, &mut w.params, &w.buffers, &inputs)? {
        if !o.quiet {
            eprintln!(
                "lsuv {}: output variance {:.4} -> {:.4} after {} rescaling(s)",
                r.layer, r.first, r.last, r.rescalings
            );
        }
    }
    Ok(())
}

/// The epochs between printed lines when `--every` does not say: about twenty lines for
/// `total` steps of `per_epoch`, every epoch up to twenty epochs.
pub fn default_every(total: usize, per_epoch: usize) -> usize {
    total.div_ceil(per_epoch.max(1)).div_ceil(20).max(1)
}

/// Loss and metrics over a whole data set, in batches of `batch`, weighted by batch size.
pub fn evaluate(
    model: &Model,
    be: &mut dyn Backend,
    ds: &Dataset,
    batch: usize,
) -> Result<Outputs> {
    let n = ds.x.shape[0];
    let mut acc: Vec<f64> = Vec::new();
    for start in (0..n).step_by(batch.max(1)) {
        let end = (start + batch).min(n);
        let idx: Vec<usize> = (start..end).collect();
        let (x, y) = data::batch(ds, &idx);
        let out = be.evaluate(&inputs_for(model, x, y))?;
        acc.resize(out.len(), 0.0);
        for (a, v) in acc.iter_mut().zip(&out) {
            *a += *v as f64 * (end - start) as f64;
        }
    }
    Ok(acc.iter().map(|a| (a / n.max(1) as f64) as f32).collect())
}

/// Trains `c` as its file says, with `o`'s overrides. `base` is the `.nn` file's folder.
pub fn train(c: &Compiled, kind: BackendKind, base: &Path, o: &Options) -> Result<Summary> {
    let model = &c.model;
    check_memory(c)?;
    let spec = effective_spec(model, o);
    let ds = load_data(model, &spec, base, o.data.as_deref())?;
    let (train, val) = data::split(ds, spec.validation, spec.split_seed());
    if train.x.shape[0] == 0 {
        return Err(Error::Settings("the training split is empty".into()));
    }
    let settings = checkpoint::settings(c, &spec, &train);
    let mut host = super::lbfgs::Driver::new(c)?;
    let order = Order::new(&spec, train.x.shape[0], host.is_some());
    let plan = Plan { c, kind, o, spec: &spec, train: &train, settings: &settings, order };
    let (mut be, mut cur, start) = plan.start(host.as_mut())?;
    if let (Some(tr), 0) = (&o.trajectory, cur.step) {
        tr.save(model, be.as_ref(), 0)?;
    }
    if let Some(ck) = &o.checkpoint {
        checkpoint::prepare(&ck.dir)?;
    }
    let per_epoch = order.per_epoch;
    let total = match (spec.steps, spec.epochs) {
        (Some(s), _) => s as u64,
        (None, e) => (e.unwrap_or(1) * per_epoch) as u64,
    };
    // The step's outputs: loss, the metrics, then any probes, then the finite checks.
    let names: Vec<String> = c.opt.reported().iter().map(|o| o.name.clone()).collect();
    let (standard, probes) = (names.len(), c.opt.probes().count());
    let validation = val.is_some();
    let log = |p: &Path| CsvLog::create(p, &names, validation, cur.log_bytes);
    let mut logs = Logs {
        validation,
        main: o.log.as_deref().map(log).transpose()?,
        layers: match o.log_layers {
            true => Some(report::layer_log(c, o.log.as_deref(), cur.layer_log_bytes)?),
            false => None,
        },
    };
    let mut progress = Progress::new(total, cur.step, o.quiet);
    progress.say(&format!(
        "data: {} training examples{}, batch {}, {per_epoch} steps per epoch",
        train.len(),
        val.as_ref().map_or(String::new(), |v| format!(", {} validation", v.len())),
        order.batch
    ));
    progress.say(&match kind {
        BackendKind::Jit { threads: 1 } => "jit: 1 thread".to_string(),
        BackendKind::Jit { threads } => format!("jit: up to {threads} threads"),
        BackendKind::Interp => "interpreter: 1 thread".to_string(),
    });
    if o.resume.is_some() {
        progress.say(&format!("resuming after step {} (epoch {})", cur.step, cur.epoch.max(1)));
    }
    let last_checkpoint = o.resume.clone().map(|d| (d, cur.step));
    let before = std::time::Duration::from_millis(cur.elapsed_ms);
    let now = std::time::Instant::now();
    let started = now.checked_sub(before).unwrap_or(now);
    let mut run = Run {
        plan,
        host: &mut host,
        cur: &mut cur,
        logs: &mut logs,
        last_checkpoint,
        started,
        start: &start,
    };
    let delay = test_step_delay();
    let every = o.every.unwrap_or_else(|| default_every(total as usize, per_epoch));
    while run.cur.step < total {
        if order.new_epoch(run.cur) {
            (run.cur.sums, run.cur.seen) = (vec![0.0; names.len()], 0);
        }
        let epoch = run.cur.epoch;
        let report = |step: u64| epoch == 1 || epoch.is_multiple_of(every) || step >= total;
        // The validation loss and metrics at the end of the epoch: for the log, and for the
        // console when it reports the epoch.
        let mut vout = None;
        for idx in order.of(epoch).chunks(order.batch).skip(run.cur.batches) {
            let t = run.cur.step + 1;
            let lr = crate::schedule::lr_at(model, &spec, t);
            let inputs = batch_inputs(model, &train, idx);
            let mut last = match run.host.as_mut() {
                Some(h) => h.step(be.as_mut(), &inputs, lr, t)?,
                None => be.step(&inputs, lr, t)?,
            };
            let mut layer_stats = last.split_off(standard.min(last.len()));
            let checks = layer_stats.split_off(probes.min(layer_stats.len()));
            if !o.allow_nonfinite {
                if let Some(bad) = non_finite(c, &last, &checks, run.host.as_ref(), be.as_ref()) {
                    progress.finish();
                    return Err(run.stopped(bad, t, epoch));
                }
            }
            let k = &mut *run.cur;
            (k.step, k.batches, k.seen) = (t, k.batches + 1, k.seen + idx.len());
            for (s, v) in k.sums.iter_mut().zip(&last) {
                *s += *v as f64 * idx.len() as f64;
            }
            k.last = last;
            let end_of_epoch = k.batches == per_epoch || t >= total;
            if let (true, Some(v)) = (end_of_epoch, &val) {
                if run.logs.main.is_some() || report(t) {
                    vout = Some(evaluate(model, be.as_mut(), v, spec.batch.max(256))?);
                }
            }
            run.log(be.as_ref(), lr, &layer_stats, vout.as_deref())?;
            progress.step(epoch, run.cur.last[0]);
            if let Some(d) = delay {
                std::thread::sleep(d);
            }
            let interrupted = o.interrupt.as_ref().is_some_and(|f| f.load(Ordering::Relaxed));
            let end_of_epoch = run.cur.batches == per_epoch;
            if let Some(tr) =
                o.trajectory.as_ref().filter(|tr| tr.every.due(t, epoch, end_of_epoch))
            {
                tr.save(model, be.as_ref(), t)?;
            }
            if interrupted || o.checkpoint.as_ref().is_some_and(|ck| ck.due(t, epoch, end_of_epoch))
            {
                run.checkpoint(be.as_ref())?;
            }
            if let (true, Some(ck)) = (interrupted, &o.checkpoint) {
                progress.finish();
                return Err(Error::Interrupted { step: t, dir: ck.dir.clone() });
            }
            if t >= total {
                break;
            }
        }
        let k = &*run.cur;
        let mean: Outputs = k.sums.iter().map(|s| (s / k.seen.max(1) as f64) as f32).collect();
        let report = report(k.step);
        if let (true, None, Some(v)) = (report, &vout, &val) {
            // A run resumed from the end of this epoch.
            vout = Some(evaluate(model, be.as_mut(), v, spec.batch.max(256))?);
        }
        if report {
            progress.epoch(epoch, &names, &mean, vout.as_ref());
        }
    }
    progress.finish();
    let train_out = evaluate(model, be.as_mut(), &train, spec.batch.max(256))?;
    if !o.allow_nonfinite && !train_out[0].is_finite() {
        // Finite weights can still overflow on the data: they are neither checkpointed nor
        // saved.
        let (step, epoch, value) = (run.cur.step, run.cur.epoch, train_out[0]);
        let what = "the training loss of the trained weights".to_string();
        let origin = plan.locate_in_evaluation(be.as_ref());
        let checkpoint = run.last_checkpoint.clone();
        let n = NonFinite { step, epoch, what, value, origin, checkpoint };
        return Err(Error::NonFinite(Box::new(n)));
    }
    if o.checkpoint.is_some() {
        run.checkpoint(be.as_ref())?;
    }
    for l in logs.main.iter_mut().chain(logs.layers.iter_mut()) {
        l.flush()?;
    }
    let validation = match &val {
        Some(v) => Some(evaluate(model, be.as_mut(), v, spec.batch.max(256))?),
        None => None,
    };
    if let Some(p) = &o.save {
        state::save(model, &current_weights(model, be.as_ref())?, p)?;
    }
    let (steps, epochs, last) = (cur.step, cur.epoch, cur.last);
    let weight_change = relative_change(&start, &be.params());
    Ok(Summary { steps, epochs, names, last, train: train_out, validation, weight_change })
}

/// The graph inputs of the batch of training examples `idx`.
pub(super) fn batch_inputs(model: &Model, train: &Dataset, idx: &[usize]) -> Vec<Tensor<f32>> {
    let (x, y) = data::batch(train, idx);
    inputs_for(model, x, y)
}

/// What a step made non-finite: a description, its first non-finite value, and the node
/// that computes it in the step graph (the loss output, or the parameter's update).
fn non_finite(
    c: &Compiled,
    reported: &[f32],
    checks: &[f32],
    host: Option<&super::lbfgs::Driver>,
    be: &dyn Backend,
) -> Option<(String, f32, crate::graph::NodeId)> {
    let g = &c.opt;
    if !reported[0].is_finite() {
        return Some(("the loss".into(), reported[0], g.outputs[0].node));
    }
    let i = match host {
        Some(h) => h.first_non_finite()?.0,
        None => {
            let k = checks.iter().position(|v| !v.is_finite())?;
            match g.checks().nth(k)?.role {
                Role::Check(i) => i as usize,
                _ => return None,
            }
        }
    };
    let (at, value) = super::weights::first_non_finite(&be.params()[i])?;
    let what = format!("parameter `{}` at {at:?}", g.params[i].name);
    let update = g.updates.iter().find(|u| u.target == Target::Param(i as u32)).map(|u| u.node);
    // A host-driven step updates no parameter in the graph: its gradient is the node.
    let grad = || g.output_of(Role::Grad(i as u32)).map(|k| g.outputs[k].node);
    Some((what, value, update.or_else(grad)?))
}

/// A pause after every step, from the environment variable `NNC_TEST_STEP_DELAY_MS`: for
/// the tests that interrupt or kill a run midway, which need it to last long enough.
fn test_step_delay() -> Option<std::time::Duration> {
    let ms = std::env::var("NNC_TEST_STEP_DELAY_MS").ok()?.parse().ok()?;
    Some(std::time::Duration::from_millis(ms))
}

/// Gradients of the loss with respect to every parameter on one batch, in parameter order:
/// the `grad` stage, optimized, run by `kind` (the interpreter in f32, or the JIT).
pub fn gradients(
    c: &Compiled,
    kind: BackendKind,
    inputs: &[Tensor<f32>],
    params: &[Tensor<f32>],
) -> Result<Vec<Tensor<f32>>> {
    let g = crate::passes::optimize(&c.grad);
    let outputs = match kind {
        BackendKind::Interp => {
            // Training-mode gradients do not depend on the buffers' values: their initial
            // ones do (the JIT starts from them too).
            let states = state::initial_buffers(&c.model);
            let env =
                crate::graph::eval::Env { inputs, params, states: &states, lr: 0.0, step: 0.0 };
            crate::graph::eval::eval(&g, &env)?.outputs
        }
        BackendKind::Jit { threads } => {
            let mut jit = crate::jit::compile(&g, &c.forward, threads)?;
            jit.set_params(params)?;
            // Step 0, as the interpreter: dropout's masks depend on the step.
            jit.step_full(inputs, 0.0, 0)?
        }
    };
    let at = |i| g.output_of(Role::Grad(i)).expect("the grad stage has a gradient per parameter");
    Ok((0..g.params.len() as u32).map(|i| outputs[at(i)].clone()).collect())
}
