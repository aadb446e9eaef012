//! Training a curve between two solutions (`nnc connect`, Garipov et al. 2018): the model's
//! training step rewritten so that its parameters are the curve's bends. Every read of a
//! parameter `θ_i` in the lowered training graph becomes `Σ_j c_j·P_{j,i}` (the nodes of a
//! [`Path`]: the endpoints `A`, `B` as constant states, the bends as the new parameters, the
//! coefficients `c_j(t)` as scalar states set before each step); autodiff, the file's
//! optimizer, clipping and passes then apply unchanged, so `∂L/∂P_j = c_j(t)·∇L(θ(t))` is
//! derived, not written. No curve layer: the same `.nn` file.
//!
//! State layout of the curve step: the model's buffers, then `A`'s parameters, `B`'s, the
//! `k + 2` coefficients, then the optimizer's states. Each step draws `t ~ U(0, 1)` (seeded)
//! and runs on one batch; the bends start on the line, at `t = j/(k + 1)`.

use std::collections::HashMap;
use std::path::Path as FsPath;

use super::path::{coefficients, Curve, Path};
use crate::check::{Model, TrainSpec};
use crate::error::{Error, Result};
use crate::graph::{Graph, Op, ParamInfo, Shape, StateInfo};
use crate::pipeline::Compiled;
use crate::tensor::Tensor;
use crate::train::data::{self, Dataset, Stream};
use crate::train::session::{self, BackendKind};
use crate::train::state::Weights;
use crate::train::weights;
use rand::Rng;

/// The curve's training step, compiled for `bends` bends of `curve`.
pub struct CurveStep {
    pub curve: Curve,
    pub bends: usize,
    /// The curve's compilation: its model's parameters are the bends'
    /// (`bends.<j>.<name>`), in bend order.
    pub compiled: Compiled,
}

impl CurveStep {
    fn nodes(&self) -> usize {
        self.bends + 2
    }
}

/// The training graph of `c` with its parameters replaced by the curve's combination.
fn rewrite(lowered: &Graph, bends: usize) -> Graph {
    let (n, nb) = (lowered.params.len(), lowered.states.len());
    let mut src = lowered.clone();
    let infos = std::mem::take(&mut src.params);
    src.params = (0..bends)
        .flat_map(|j| {
            infos.iter().map(move |p| ParamInfo {
                name: format!("bends.{j}.{}", p.name),
                shape: p.shape.clone(),
            })
        })
        .collect();
    for end in ["start", "end"] {
        for p in &infos {
            src.states.push(StateInfo {
                name: format!("curve.{end}.{}", p.name),
                shape: p.shape.clone(),
                init: 0.0,
            });
        }
    }
    for j in 0..bends + 2 {
        src.states.push(StateInfo { name: format!("curve.c{j}"), shape: Shape(vec![]), init: 0.0 });
    }
    let last = bends + 1;
    src.rebuild(|g, node, args| match node.op {
        Op::Param(i) => {
            let i = i as usize;
            let shape = node.shape.clone();
            let terms: Vec<_> = (0..=last)
                .map(|j| {
                    let p = match j {
                        0 => g.state((nb + i) as u32),
                        j if j == last => g.state((nb + n + i) as u32),
                        j => g.param(((j - 1) * n + i) as u32),
                    };
                    let c = g.state((nb + 2 * n + j) as u32);
                    let c = g.broadcast(c, &shape);
                    g.mul(c, p)
                })
                .collect();
            terms.into_iter().reduce(|a, b| g.add2(a, b)).expect("two endpoints")
        }
        op => g.add(op, args, node.shape.clone()),
    })
}

/// Compiles the curve step of `c` (whose optimizer trains the bends).
pub fn compile(c: &Compiled, curve: Curve, bends: usize, checks: bool) -> CurveStep {
    let lowered = rewrite(&c.lowered, bends);
    let mut model = c.model.clone();
    let n = model.params.len() as u32;
    model.params = (0..bends)
        .flat_map(|j| {
            c.model.params.iter().map(move |p| {
                let mut p = p.clone();
                p.name = format!("bends.{j}.{}", p.name);
                p
            })
        })
        .collect();
    for g in &mut model.optimizer.groups {
        g.params =
            (0..bends as u32).flat_map(|j| g.params.iter().map(move |i| j * n + i)).collect();
    }
    let stable = crate::passes::optimize(&lowered);
    let grad = crate::autodiff::backward(&stable);
    let step = crate::update::step(&grad, &model, checks);
    let mut rules = Vec::new();
    let opt = step.map(|g| {
        let (opt, log) = crate::passes::optimize_with_log(g);
        rules = log;
        opt
    });
    // The forward graph is never run (the curve is evaluated with the model's own); its
    // states are what the step's must start with.
    let (src, ast, forward) = (c.src.clone(), c.ast.clone(), stable);
    let compiled = Compiled { src, ast, model, lowered, forward, grad, step, opt, rules };
    CurveStep { curve, bends, compiled }
}

/// The bends on the line: bend `j` at `t = j/(k + 1)`.
fn on_the_line(a: &Weights, b: &Weights, bends: usize) -> Vec<Weights> {
    let line = Path::line(a.clone(), b.clone());
    (1..=bends).map(|j| line.at(j as f64 / (bends + 1) as f64)).collect()
}

/// Trains the bends of `cs` between `a` and `b` for `epochs` epochs over `train` (batches
/// and order as `spec` says, the file's schedule and optimizer), calling `report(epoch,
/// mean loss)` after each; returns the trained path. Zero epochs leave the bends on the line.
pub fn train(
    cs: &CurveStep,
    kind: BackendKind,
    (a, b): (&Weights, &Weights),
    ds: &Dataset,
    spec: &TrainSpec,
    epochs: usize,
    mut report: impl FnMut(usize, f64),
) -> Result<Path> {
    let start = on_the_line(a, b, cs.bends);
    let params: Vec<Tensor<f32>> = start.iter().flat_map(|w| w.params.iter().cloned()).collect();
    let mut be = session::make_backend(kind, &cs.compiled, params)?;
    let (n, nb) = (a.params.len(), a.buffers.len());
    let mut states = be.states();
    states[..nb].clone_from_slice(&a.buffers);
    states[nb..nb + n].clone_from_slice(&a.params);
    states[nb + n..nb + 2 * n].clone_from_slice(&b.params);
    be.set_states(&states)?;
    let coefficient = nb + 2 * n;
    let mut rng = data::rng(spec.seed, Stream::Curve, 0);
    let model = &cs.compiled.model;
    let mut step = 0u64;
    for epoch in 0..epochs {
        let order = data::epoch_order(ds.len(), spec.shuffle, spec.seed, epoch);
        let mut sum = 0.0;
        for idx in order.chunks(spec.batch.max(1)) {
            let t: f64 = rng.random();
            for (j, c) in coefficients(cs.curve, cs.nodes(), t).into_iter().enumerate() {
                be.set_state(coefficient + j, &Tensor::new(vec![], vec![c as f32]))?;
            }
            step += 1;
            let (x, y) = data::batch(ds, idx);
            let lr = crate::schedule::lr_at(model, spec, step);
            let out = be.step(&session::inputs_for(model, x, y), lr, step)?;
            if !out[0].is_finite() {
                return Err(Error::Settings(format!(
                    "the curve's loss became {} at step {step} (epoch {}): a smaller learning \
                     rate (--set optimizer.lr=...) or clipping may train it",
                    out[0],
                    epoch + 1
                )));
            }
            sum += out[0] as f64 * idx.len() as f64;
        }
        report(epoch + 1, sum / ds.len().max(1) as f64);
    }
    let trained = be.params();
    let mut nodes = vec![a.clone()];
    for (j, w) in start.into_iter().enumerate() {
        let params = trained[j * n..(j + 1) * n].to_vec();
        nodes.push(Weights { params, ..w });
    }
    nodes.push(b.clone());
    Ok(Path { curve: cs.curve, nodes })
}

/// The header key of a curve file: `bezier` or `polychain`.
const KIND: &str = "nnc.curve";

/// Writes `path` to `file`: every node's parameters and buffers as `nodes.<j>.<name>` (the
/// endpoints are nodes 0 and k + 1), the curve's kind in the header. Refuses weights that
/// are not finite, writing nothing.
pub fn save(model: &Model, path: &Path, file: &FsPath) -> Result<()> {
    let names: Vec<&String> =
        model.params.iter().map(|p| &p.name).chain(model.buffers.iter().map(|b| &b.name)).collect();
    let mut named = Vec::new();
    for (j, w) in path.nodes.iter().enumerate() {
        for (name, t) in names.iter().zip(w.params.iter().chain(&w.buffers)) {
            let name = format!("nodes.{j}.{name}");
            if let Some((at, value)) = weights::first_non_finite(t) {
                return Err(Error::NonFiniteSave { path: file.to_path_buf(), name, at, value });
            }
            named.push((name, t));
        }
    }
    let kind = match path.curve {
        Curve::Bezier => "bezier",
        Curve::Polychain => "polychain",
    };
    let meta = HashMap::from([(KIND.to_string(), kind.to_string())]);
    weights::save_with(file, &named, &[], Some(meta)).map_err(|e| Error::write(file, e))
}

/// The curve of `file`, if it is a curve file (its header names a curve); `None` for a
/// weight file.
pub fn load(model: &Model, file: &FsPath) -> Result<Option<Path>> {
    let fail = |m: String| Error::Settings(format!("{}: {m}", file.display()));
    let curve = match weights::header(file)?.metadata.get(KIND).map(String::as_str) {
        None => return Ok(None),
        Some("bezier") => Curve::Bezier,
        Some("polychain") => Curve::Polychain,
        Some(other) => return Err(fail(format!("unknown curve `{other}`"))),
    };
    let mut all: HashMap<String, Tensor<f32>> = weights::load(file)?.into_iter().collect();
    let mut nodes = Vec::new();
    while all.keys().any(|k| k.starts_with(&format!("nodes.{}.", nodes.len()))) {
        let j = nodes.len();
        let mut take = |name: &str, shape: &[usize]| -> Result<Tensor<f32>> {
            let key = format!("nodes.{j}.{name}");
            match all.remove(&key) {
                Some(t) if t.shape == shape => match weights::first_non_finite(&t) {
                    None => Ok(t),
                    Some((at, v)) => Err(fail(format!("`{key}` holds {v} at {at:?}"))),
                },
                Some(t) => {
                    Err(fail(format!("`{key}` has shape {:?}, the model's {shape:?}", t.shape)))
                }
                None => Err(fail(format!("no `{key}`: the curve is not of this model"))),
            }
        };
        let params = model.params.iter().map(|p| take(&p.name, &p.shape)).collect::<Result<_>>()?;
        let buffers =
            model.buffers.iter().map(|b| take(&b.name, &b.shape)).collect::<Result<_>>()?;
        nodes.push(Weights { params, buffers });
    }
    if let Some(extra) = all.keys().min() {
        return Err(fail(format!("`{extra}` is not a tensor of this model's curve")));
    }
    if nodes.len() < 2 {
        return Err(fail("a curve needs its two endpoints (`nodes.0.*`, `nodes.1.*`)".into()));
    }
    Ok(Some(Path { curve, nodes }))
}
