//! A training run in progress, as far as starting, stopping and restarting it go: where its
//! batches come from ([`Order`]), how it starts (initial weights or a checkpoint: [`Plan`]),
//! what a checkpoint of it holds, and what happens when it stops early: a log that cannot be
//! written, or a value that stopped being finite, which is located by replaying the run from
//! its last restart point and its failing step in the interpreter with every node checked.
//! The loop itself is `session::train`.

use std::path::{Path, PathBuf};

use super::checkpoint::{self, Checkpoint, Cursor, Settings};
use super::data::{self, Dataset};
use super::lbfgs::Driver;
use super::report::{CsvLog, Row};
use super::session::{self, BackendKind, Options};
use super::state;
use crate::check::TrainSpec;
use crate::error::{Error, NonFinite, Result};
use crate::graph::NodeId;
use crate::pipeline::Compiled;
use crate::runtime::Backend;
use crate::tensor::Tensor;

/// The batches of a run: epoch `e` visits the training split in a seeded shuffled order (file
/// order without shuffling, and for a full-batch host-driven optimizer, whose one batch is
/// the whole split), cut into batches of `batch`.
#[derive(Clone, Copy, Debug)]
pub struct Order {
    pub batch: usize,
    pub per_epoch: usize,
    n: usize,
    shuffle: bool,
    seed: u64,
    full: bool,
}

impl Order {
    pub fn new(spec: &TrainSpec, n: usize, full_batch: bool) -> Order {
        let batch = if full_batch { n } else { spec.batch };
        let (shuffle, seed) = (spec.shuffle && !full_batch, spec.seed);
        Order { batch, per_epoch: n.div_ceil(batch), n, shuffle, seed, full: full_batch }
    }

    /// The example order of epoch `epoch` (from 1).
    pub fn of(&self, epoch: usize) -> Vec<usize> {
        data::epoch_order(self.n, self.shuffle, self.seed, epoch - 1)
    }

    /// Moves `cur` to the next epoch if it is before the first or at an epoch's end; says
    /// whether it did.
    pub fn new_epoch(&self, cur: &mut Cursor) -> bool {
        let next = cur.epoch == 0 || cur.batches >= self.per_epoch;
        if next {
            (cur.epoch, cur.batches) = (cur.epoch + 1, 0);
        }
        next
    }
}

/// What determines every step of a run.
#[derive(Clone, Copy)]
pub struct Plan<'a> {
    pub c: &'a Compiled,
    pub kind: BackendKind,
    pub o: &'a Options,
    pub spec: &'a TrainSpec,
    pub train: &'a Dataset,
    pub settings: &'a Settings,
    pub order: Order,
}

impl Plan<'_> {
    /// The backend and cursor the run starts from: `--resume`'s checkpoint, else the initial
    /// weights (LSUV-calibrated where asked); and the parameters the run started from
    /// (`θ₀` of the weight change), which a checkpoint keeps as `start.<name>`.
    pub fn start(
        &self,
        host: Option<&mut Driver>,
    ) -> Result<(Box<dyn Backend>, Cursor, Vec<Tensor<f32>>)> {
        let from = self.o.resume.as_deref();
        let start = match from {
            Some(dir) => {
                let ck = checkpoint::load(dir)?;
                let names: Vec<String> =
                    self.c.opt.params.iter().map(|p| format!("start.{}", p.name)).collect();
                let found: Vec<Tensor<f32>> = names
                    .iter()
                    .filter_map(|n| ck.tensors.iter().find(|(m, _)| m == n).map(|t| t.1.clone()))
                    .collect();
                (found.len() == names.len()).then_some(found)
            }
            None => None,
        };
        let (be, cur) = self.begin(from, host)?;
        let start = start.unwrap_or_else(|| be.params());
        Ok((be, cur, start))
    }

    /// The run's state at the checkpoint in `from`, or at its very start.
    fn begin(
        &self,
        from: Option<&Path>,
        host: Option<&mut Driver>,
    ) -> Result<(Box<dyn Backend>, Cursor)> {
        if let Some(dir) = from {
            return self.resume(dir, host);
        }
        let (c, o) = (self.c, self.o);
        let mut w = session::initial_weights(&c.model, self.spec.seed, o.init.as_deref())?;
        session::calibrate(&c.model, self.spec, self.train, &mut w, o)?;
        Ok((session::backend_with(self.kind, c, w)?, Cursor::default()))
    }

    /// A backend and cursor from the checkpoint in `dir`, which must have been written by a
    /// run with these settings; `host` takes its host-driven optimizer state.
    fn resume(&self, dir: &Path, host: Option<&mut Driver>) -> Result<(Box<dyn Backend>, Cursor)> {
        let c = self.c;
        let mut ck = checkpoint::load(dir)?;
        let file = checkpoint::path(dir);
        let fail = |message: String| Error::Checkpoint { path: file.clone(), message };
        let diffs = checkpoint::differences(&ck.settings, self.settings);
        if !diffs.is_empty() {
            let m = format!("it was written by a different run:\n  {}", diffs.join("\n  "));
            return Err(fail(m));
        }
        // The run's starting parameters (`start.<name>`, read by `start`) are not state.
        ck.tensors.retain(|(n, _)| !n.starts_with("start."));
        let mut params = ck.take(&file, &tensor_names(c))?;
        let states = params.split_off(c.opt.params.len());
        let mut be = session::make_backend(self.kind, c, params)?;
        be.set_states(&states)?;
        let get = |k: &str| {
            let name = format!("optimizer.{k}");
            ck.host.iter().find(|(n, _)| *n == name).map(|(_, t)| t.clone())
        };
        match host {
            Some(h) => h.restore(get).map_err(|m| fail(format!("its L-BFGS state: {m}")))?,
            None if !ck.host.is_empty() => {
                return Err(fail(format!("it holds `{}`, which this run has not", ck.host[0].0)))
            }
            None => {}
        }
        Ok((be, ck.cursor))
    }

    /// The step graph's first non-finite node at step `t`, whose value `root` (the loss or
    /// a parameter's update) is not finite: the run replayed on its backend from the
    /// checkpoint in `from` (else from its start) up to step `t − 1`, then step `t` in the
    /// interpreter (f32) with every node `root` depends on checked, in evaluation order.
    fn locate(
        &self,
        from: Option<&Path>,
        t: u64,
        root: NodeId,
    ) -> std::result::Result<String, String> {
        if self.order.full {
            return Err("an L-BFGS step is many evaluations, which are not replayed".into());
        }
        let (model, g) = (&self.c.model, &self.c.opt);
        let (mut be, mut k) = self.begin(from, None).map_err(|e| e.to_string())?;
        while k.step < t {
            self.order.new_epoch(&mut k);
            for idx in self.order.of(k.epoch).chunks(self.order.batch).skip(k.batches) {
                let step = k.step + 1;
                let lr = crate::schedule::lr_at(model, self.spec, step);
                let inputs = session::batch_inputs(model, self.train, idx);
                if step < t {
                    be.step(&inputs, lr, step).map_err(|e| e.to_string())?;
                    (k.step, k.batches) = (step, k.batches + 1);
                    continue;
                }
                let (params, states) = (be.params(), be.states());
                let env = crate::graph::eval::Env {
                    inputs: &inputs,
                    params: &params,
                    states: &states,
                    lr,
                    step: t as f64,
                };
                let wanted = g.ancestors([root]);
                return match crate::graph::eval::first_non_finite(g, &env, &wanted) {
                    Ok(Some((id, v))) => Ok(self.describe(g, id, v)),
                    Ok(None) => Err(format!(
                        "replayed in the interpreter, step {t} stays finite (its rounding differs)"
                    )),
                    Err(e) => Err(e.to_string()),
                };
            }
        }
        Err(format!("the replay never reached step {t}"))
    }
}

impl Plan<'_> {
    /// The forward graph's first non-finite node on the training split (in file order, in
    /// the interpreter) with `be`'s weights.
    pub fn locate_in_evaluation(&self, be: &dyn Backend) -> std::result::Result<String, String> {
        let (model, g) = (&self.c.model, &self.c.forward);
        let params = be.params();
        let states = be.buffers().map_err(|e| e.to_string())?;
        let n = self.train.x.shape[0];
        let wanted = g.live();
        for start in (0..n).step_by(self.spec.batch.max(256)) {
            let idx: Vec<usize> = (start..n.min(start + self.spec.batch.max(256))).collect();
            let inputs = session::batch_inputs(model, self.train, &idx);
            let env = crate::graph::eval::Env {
                inputs: &inputs,
                params: &params,
                states: &states,
                lr: 0.0,
                step: 0.0,
            };
            match crate::graph::eval::first_non_finite(g, &env, &wanted) {
                Ok(Some((id, v))) => return Ok(self.describe(g, id, v)),
                Ok(None) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        Err("the interpreter's evaluation stays finite (its rounding differs)".into())
    }

    /// `%9 = exp %8 : [B,16] is inf (fc1, line 6)` and the source line, shortened to fit a
    /// message.
    fn describe(&self, g: &crate::graph::Graph, id: NodeId, v: f32) -> String {
        let line = crate::graph::print::node_line(g, id);
        let src = &self.c.src;
        let mut s = format!("{line} is {v}");
        let lines = crate::diagnostic::LineIndex::new(src);
        let at = crate::graph::print::comment(g, id, Some(&lines));
        if !at.is_empty() {
            s += &format!("  ({at})");
        }
        if let Some(span) = g.meta(id).span {
            let n = span.line(src);
            let text = src.lines().nth(n - 1).unwrap_or("").trim();
            s += &format!("\n    {n} | {}", crate::diagnostic::shorten(text, 100));
        }
        s
    }
}

/// The logs a run writes.
pub struct Logs {
    pub main: Option<CsvLog>,
    pub layers: Option<CsvLog>,
    /// The main log has validation columns.
    pub validation: bool,
}

/// A run in progress: what a step's log rows, a checkpoint and an early stop need.
pub struct Run<'a> {
    pub plan: Plan<'a>,
    pub host: &'a mut Option<Driver>,
    pub cur: &'a mut Cursor,
    pub logs: &'a mut Logs,
    /// The last checkpoint written (or resumed from), and its step.
    pub last_checkpoint: Option<(PathBuf, u64)>,
    /// When the run began, counting the time trained before a resume.
    pub started: std::time::Instant,
    /// The parameters the run started from, kept in its checkpoints as `start.<name>`.
    pub start: &'a [Tensor<f32>],
}

impl Run<'_> {
    /// The rows of the step just done. A log that cannot be written (a full disk) stops the
    /// run, and loses nothing: the checkpoint and the weights are saved first, where asked.
    /// `val`: the validation loss and metrics, on the last step of an epoch that has them.
    pub fn log(
        &mut self,
        be: &dyn Backend,
        lr: f64,
        probes: &[f32],
        val: Option<&[f32]>,
    ) -> Result<()> {
        let k = &*self.cur;
        let step = k.step;
        let mut written = Ok(());
        if let Some(l) = self.logs.layers.as_mut() {
            written = l.probes(step, k.epoch, probes);
        }
        if let (Ok(()), Some(l)) = (&written, self.logs.main.as_mut()) {
            let validation = if self.logs.validation { k.last.len() } else { 0 };
            let time_s = self.started.elapsed().as_secs_f64();
            let (epoch, out) = (k.epoch, &k.last[..]);
            written = l.row(Row { step, epoch, out, lr, val, validation, time_s });
        }
        let Err(e) = written else { return Ok(()) };
        // The logs are incomplete from here on: the checkpoint does not count them.
        (self.logs.main, self.logs.layers) = (None, None);
        let o = self.plan.o;
        if o.checkpoint.is_some() {
            match self.checkpoint(be) {
                Ok(dir) => eprintln!("note: the checkpoint in {} continues the run", dir.display()),
                Err(c) => eprintln!("note: no checkpoint either: {c}"),
            }
        }
        if let Some(p) = &o.save {
            let model = &self.plan.c.model;
            match session::current_weights(model, be).and_then(|w| state::save(model, &w, p)) {
                Ok(()) => eprintln!("note: the weights after step {step} are in {}", p.display()),
                Err(s) => eprintln!("note: the weights could not be saved either: {s}"),
            }
        }
        Err(e)
    }

    /// Writes the checkpoint of the run as it is now into `--checkpoint`'s folder.
    pub fn checkpoint(&mut self, be: &dyn Backend) -> Result<PathBuf> {
        let Some(ck) = &self.plan.o.checkpoint else {
            return Err(Error::Internal("a checkpoint without --checkpoint".into()));
        };
        let bytes = |l: &mut Option<CsvLog>| l.as_mut().map(CsvLog::sync).transpose();
        self.cur.log_bytes = bytes(&mut self.logs.main)?;
        self.cur.layer_log_bytes = bytes(&mut self.logs.layers)?;
        self.cur.elapsed_ms = self.started.elapsed().as_millis() as u64;
        let named = tensor_names(self.plan.c);
        let tensors = be.params().into_iter().chain(be.states());
        let mut tensors: Vec<_> = named.into_iter().map(|(n, _)| n).zip(tensors).collect();
        let start = self.plan.c.opt.params.iter().zip(self.start);
        tensors.extend(start.map(|(p, t)| (format!("start.{}", p.name), t.clone())));
        let host = self.host.as_ref().map_or(Vec::new(), |h| h.state());
        let host = host.into_iter().map(|(k, t)| (format!("optimizer.{k}"), t)).collect();
        let (cursor, settings) = (self.cur.clone(), self.plan.settings.clone());
        checkpoint::save(&ck.dir, &Checkpoint { cursor, tensors, host, settings })?;
        self.last_checkpoint = Some((ck.dir.clone(), self.cur.step));
        Ok(ck.dir.clone())
    }

    /// The error that stops a run whose step `t` made `what` (computed by node `root`)
    /// non-finite: where it started, and the last checkpoint, which stays as it was.
    pub fn stopped(
        &self,
        (what, value, root): (String, f32, NodeId),
        t: u64,
        epoch: usize,
    ) -> Error {
        let from = self.last_checkpoint.as_ref().map(|(d, _)| d.as_path());
        let origin = self.plan.locate(from, t, root);
        let checkpoint = self.last_checkpoint.clone();
        Error::NonFinite(Box::new(NonFinite { step: t, epoch, what, value, origin, checkpoint }))
    }
}

/// The names and shapes of a checkpoint's f32 tensors: the parameters, then the step
/// graph's states (the buffers under their own names, the optimizer's as
/// `optimizer.<state>`).
pub fn tensor_names(c: &Compiled) -> Vec<(String, Vec<usize>)> {
    let buffers = c.forward.states.len();
    let params = c.opt.params.iter().map(|p| (p.name.clone(), p.shape.concrete(0)));
    let states = c.opt.states.iter().enumerate().map(|(i, s)| {
        let name = if i < buffers { s.name.clone() } else { format!("optimizer.{}", s.name) };
        (name, s.shape.concrete(0))
    });
    params.chain(states).collect()
}
