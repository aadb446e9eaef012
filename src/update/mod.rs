//! The optimizer step as graph code: from a graph with gradients (`autodiff::backward`) to
//! the whole training step, whose [`Update`]s give every parameter's new value and every
//! optimizer state's new value. Gradient clipping is applied first: the global `clip`, then
//! each parameter group's own `clip` over that group's gradients.
//!
//! The learning rate, the step count `t` (from 1) and every scalar that depends on `t` (bias
//! corrections, RAdam's rectification, NAdam's μ products, AdaBound's bounds, Adagrad's
//! rate decay) are runtime scalars (`Op::Scalar`, defined in [`ScalarArg::value`]): computed
//! on the host in f64 from the f64 hyper-parameters, so a schedule never changes the graph
//! and `1 − 0.9999ᵗ` is not computed in f32. Per-layer norms (LARS, LAMB) are reductions to
//! scalars. A parameter group whose `lr` differs from the
//! optimizer's scales the runtime rate by `group lr / optimizer lr`.
//!
//! Optimizer state is named as PyTorch names it, after the parameter: `momentum_buffer`,
//! `exp_avg`, `exp_avg_sq`, `max_exp_avg_sq`, `sum`, `square_avg`, `grad_avg`, `acc_delta`,
//! `exp_inf` (and `previous` for the heavy ball). Formulas are PyTorch's or the papers'
//! (docs/methods.md#optimizers); each is written next to the code that builds it:
//!
//! | module | methods |
//! |--------|---------|
//! | `sgd` | sgd, heavy_ball |
//! | `adaptive` | adagrad, rmsprop, adadelta |
//! | `adam` | adam (amsgrad), adamw, nadam, radam, adamax, adabound, padam |
//! | `layerwise` | lars, lamb |
//!
//! `clamp = (lo, hi)` (any method, any group) projects the new value onto the box:
//! `θ ← min(max(θ_new, lo), hi)`, projected gradient descent; the optimizer state is kept as
//! the method computed it.
//!
//! What it does not do: compute the schedule (the runtime passes `lr`), or simplify: the
//! graph it builds is left to `passes`. L-BFGS is not a graph update: its step graph is the
//! gradient graph unchanged (gradient outputs kept, no parameter updated), which the host
//! calls as its loss-and-gradient oracle (`train::lbfgs`).

mod adam;
mod adaptive;
mod layerwise;
mod sgd;

use std::ops::Deref;

use crate::autodiff::GradGraph;
use crate::check::{Clip, Hyper, Method, Model};
use crate::graph::{
    Axes, BinaryOp, Graph, Meta, NodeId, Output, Reduce, Role, ScalarArg, Shape, Target, UnaryOp,
    Update, F64,
};

/// A training step: the updates of the parameters and optimizer state, and the outputs in
/// this order: the loss, the metrics, the probes; a host-driven step (L-BFGS: no updates)
/// also has the gradient of every parameter ([`Role::Grad`]).
#[derive(Clone, Debug)]
pub struct StepGraph(Graph);

impl StepGraph {
    fn new(g: Graph) -> StepGraph {
        let rank = |r: Role| match r {
            Role::Loss => 0,
            Role::Metric => 1,
            Role::Probe | Role::Grad(_) | Role::Prediction => 2,
            Role::Check(_) => 3,
        };
        let ranks: Vec<u8> = g.outputs.iter().map(|o| rank(o.role)).collect();
        assert!(ranks.first() == Some(&0), "a step graph's first output is its loss");
        assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "loss, metrics, probes, checks");
        StepGraph(g)
    }
    /// The loss and the metrics, in that order: what a step reports.
    pub fn reported(&self) -> &[Output] {
        let reported = |o: &&Output| matches!(o.role, Role::Loss | Role::Metric);
        let n = self.0.outputs.iter().take_while(reported).count();
        &self.0.outputs[..n]
    }
    /// The probes (`--log-layers`), in output order.
    pub fn probes(&self) -> impl Iterator<Item = &Output> {
        self.0.outputs.iter().filter(|o| o.role == Role::Probe)
    }
    /// The finite checks ([`Role::Check`]), in output order, one per updated parameter.
    pub fn checks(&self) -> impl Iterator<Item = &Output> {
        self.0.outputs.iter().filter(|o| matches!(o.role, Role::Check(_)))
    }
    /// The same step rebuilt by `f` (an optimization: outputs, their roles and order kept).
    pub fn map(&self, f: impl FnOnce(&Graph) -> Graph) -> StepGraph {
        let g = f(&self.0);
        let roles = |g: &Graph| g.outputs.iter().map(|o| o.role).collect::<Vec<_>>();
        assert_eq!(roles(&g), roles(&self.0), "a rebuilt step keeps its outputs");
        StepGraph(g)
    }
    pub fn graph(&self) -> &Graph {
        &self.0
    }
}

impl Deref for StepGraph {
    type Target = Graph;
    fn deref(&self) -> &Graph {
        &self.0
    }
}

/// The training step: `backward`'s graph with the gradient outputs replaced by parameter and
/// state updates. Outputs kept: the loss, the metrics and the probes; with `checks`, then one
/// [`Role::Check`] per parameter, `nonfinite.<param>` = `reduce_sum(θ_new − θ_new)`: 0 when
/// every element is finite, NaN otherwise (∞ − ∞ and NaN − NaN are NaN). A full reduction of
/// the value the update kernel computes anyway, so the JIT fuses it there: one subtraction
/// and one addition per vector, no second pass over memory (a NaN-propagating max of |θ|
/// took five, measured 50% slower on config B's Adam kernel).
pub fn step(grad_graph: &GradGraph, model: &Model, checks: bool) -> StepGraph {
    if model.optimizer.method == Method::Lbfgs {
        return StepGraph::new(grad_graph.graph().clone());
    }
    let mut g = grad_graph.graph().clone();
    let params: Vec<(u32, NodeId)> =
        (0..g.params.len() as u32).map(|i| (i, grad_graph.grad(i))).collect();
    g.outputs.retain(|o| !matches!(o.role, Role::Grad(_)));
    let grads: Vec<NodeId> = params.iter().map(|p| p.1).collect();

    // Pruning masks (`Model::masks`): the gradients of pruned weights are 0 before anything
    // reads them (clipping's norms, the optimizer's state), and the update is masked again.
    let masks = model.masks();
    g.origin = Meta { note: Some("mask".into()), ..Meta::default() };
    let grads: Vec<NodeId> = grads
        .iter()
        .enumerate()
        .map(|(i, &gr)| match masks[i] {
            Some(b) => {
                let m = g.state(b);
                g.mul(gr, m)
            }
            None => gr,
        })
        .collect();
    g.origin = Meta { note: Some("clip".into()), ..Meta::default() };
    let mut grads = match &model.clip {
        Some(c) => clip(&mut g, c, &grads),
        None => grads,
    };
    group_clips(&mut g, model, &mut grads);
    let opt = &model.optimizer;
    for ((i, _), grad) in params.into_iter().zip(grads) {
        let name = g.params[i as usize].name.clone();
        let h = opt.hyper_of(i);
        g.origin = Meta {
            note: Some(format!("{} {name}", label(opt.method, h)).into()),
            ..Meta::default()
        };
        let theta = g.param(i);
        let mut u = Ctx { g: &mut g, name: &name, theta, grad, h, lr_ratio: h.lr / opt.hyper.lr };
        let new = match opt.method {
            Method::Sgd => sgd::sgd(&mut u),
            Method::HeavyBall => sgd::heavy_ball(&mut u),
            Method::Adagrad => adaptive::adagrad(&mut u),
            Method::Rmsprop => adaptive::rmsprop(&mut u),
            Method::Adadelta => adaptive::adadelta(&mut u),
            Method::Adam => adam::adam(&mut u, false),
            Method::AdamW => adam::adam(&mut u, true),
            Method::NAdam => adam::nadam(&mut u),
            Method::RAdam => adam::radam(&mut u),
            Method::Adamax => adam::adamax(&mut u),
            Method::AdaBound => adam::adabound(&mut u),
            Method::Padam => adam::padam(&mut u),
            Method::Lars => layerwise::lars(&mut u),
            Method::Lamb => layerwise::lamb(&mut u),
            // Host-driven: no graph update (returned above).
            Method::Lbfgs => continue,
        };
        let new = match h.clamp {
            Some((lo, hi)) => project(&mut g, new, lo, hi),
            None => new,
        };
        let new = match masks[i as usize] {
            Some(b) => {
                let m = g.state(b);
                g.mul(new, m)
            }
            None => new,
        };
        g.updates.push(Update { target: Target::Param(i), node: new });
        if checks {
            // Built right after the update, so that the JIT places it in the same kernel.
            let zeros = g.binary(BinaryOp::Sub, new, new);
            let rank = g.shape(new).rank();
            let sum = g.reduce(Reduce::Sum, zeros, Axes::all(rank));
            g.add_output_as(Role::Check(i), format!("nonfinite.{name}"), sum);
        }
    }
    g.origin = Meta::default();
    StepGraph::new(g)
}

/// The IR note's name of the method (`amsgrad` for Adam with `amsgrad = true`).
fn label(m: Method, h: &Hyper) -> &'static str {
    match m {
        Method::Adam if h.amsgrad => "amsgrad",
        _ => m.name(),
    }
}

/// Each group's `clip`, over that group's gradients (after the global clip).
fn group_clips(g: &mut Graph, model: &Model, grads: &mut [NodeId]) {
    for group in &model.optimizer.groups {
        let Some(c) = &group.clip else { continue };
        g.origin = Meta {
            note: Some(format!("clip group {}", group.patterns.join(" ")).into()),
            ..Meta::default()
        };
        let mine: Vec<NodeId> = group.params.iter().map(|&i| grads[i as usize]).collect();
        for (&i, new) in group.params.iter().zip(clip(g, c, &mine)) {
            grads[i as usize] = new;
        }
    }
}

/// One parameter's update under construction: the graph, the parameter and its gradient,
/// and the hyper-parameters of its group.
pub(super) struct Ctx<'a> {
    pub g: &'a mut Graph,
    /// The parameter's name, prefix of its state names.
    pub name: &'a str,
    pub theta: NodeId,
    pub grad: NodeId,
    pub h: &'a Hyper,
    /// The group's `lr` over the optimizer's: the runtime rate is scaled by it.
    pub lr_ratio: f64,
}

impl Ctx<'_> {
    fn shape(&self) -> Shape {
        self.g.shape(self.theta).clone()
    }
    /// A constant shaped like the parameter.
    pub fn konst(&mut self, c: f64) -> NodeId {
        let shape = self.shape();
        self.g.constant(c, shape)
    }
    /// A scalar constant `[]`.
    pub fn sconst(&mut self, c: f64) -> NodeId {
        self.g.constant(c, Shape::scalar())
    }
    /// The runtime learning rate of this parameter's group, a scalar.
    pub fn lr(&mut self) -> NodeId {
        let lr = self.g.scalar(ScalarArg::Lr);
        if self.lr_ratio == 1.0 {
            return lr;
        }
        let r = self.sconst(self.lr_ratio);
        self.g.mul(lr, r)
    }
    /// The step count `t` (from 1), a scalar.
    pub fn t(&mut self) -> NodeId {
        self.g.scalar(ScalarArg::Step)
    }
    /// A scalar broadcast to the parameter's shape.
    pub fn bcast(&mut self, s: NodeId) -> NodeId {
        let shape = self.shape();
        self.g.broadcast(s, &shape)
    }
    /// A step-dependent runtime scalar, computed on the host in f64.
    pub fn arg(&mut self, a: ScalarArg) -> NodeId {
        self.g.scalar(a)
    }
    /// `1 − cᵗ` (a bias correction), a scalar.
    pub fn one_minus_pow_t(&mut self, c: f64) -> NodeId {
        self.arg(ScalarArg::OneMinusPow(F64::new(c)))
    }
    /// A new state tensor `{param}.{suffix}` shaped like the parameter, filled with `init`.
    pub fn state(&mut self, suffix: &str, init: f64) -> (u32, NodeId) {
        let shape = self.shape();
        self.state_shaped(suffix, init, shape)
    }
    pub fn state_shaped(&mut self, suffix: &str, init: f64, shape: Shape) -> (u32, NodeId) {
        let i = self.g.states.len() as u32;
        let node = self.g.add_state(&format!("{}.{suffix}", self.name), shape, init);
        (i, node)
    }
    /// `state i := node` after the step.
    pub fn set(&mut self, i: u32, node: NodeId) {
        self.g.updates.push(Update { target: Target::State(i), node });
    }
    /// `g + λθ` (coupled weight decay), or `g` when λ = 0.
    pub fn decayed(&mut self) -> NodeId {
        let wd = self.h.weight_decay;
        if wd == 0.0 {
            return self.grad;
        }
        let d = self.g.scale(self.theta, wd);
        self.g.add2(self.grad, d)
    }
    /// `c·a + (1 − c)·b`, the exponential moving average step of PyTorch's `lerp`/`mul_.add_`.
    pub fn ema(&mut self, a: NodeId, c: f64, b: NodeId) -> NodeId {
        let x = self.g.scale(a, c);
        let y = self.g.scale(b, 1.0 - c);
        self.g.add2(x, y)
    }
    pub fn un(&mut self, op: UnaryOp, a: NodeId) -> NodeId {
        self.g.unary(op, a)
    }
    pub fn bin(&mut self, op: BinaryOp, a: NodeId, b: NodeId) -> NodeId {
        self.g.binary(op, a, b)
    }
    /// `√(Σ x²)`, a scalar (a per-tensor 2-norm).
    pub fn norm(&mut self, x: NodeId) -> NodeId {
        let sq = self.g.unary(UnaryOp::Square, x);
        let s = self.g.sum_all(sq);
        self.g.unary(UnaryOp::Sqrt, s)
    }
    /// `θ − lr·d` with the group's runtime rate.
    pub fn descend(&mut self, d: NodeId) -> NodeId {
        let lr = self.lr();
        let lr = self.bcast(lr);
        let delta = self.g.mul(lr, d);
        self.g.sub(self.theta, delta)
    }
}

/// `min(max(x, lo), hi)`: the projection onto the box `[lo, hi]`.
fn project(g: &mut Graph, x: NodeId, lo: f64, hi: f64) -> NodeId {
    let shape = g.shape(x).clone();
    let lo = g.constant(lo, shape.clone());
    let hi = g.constant(hi, shape);
    let above = g.binary(BinaryOp::Max, x, lo);
    g.binary(BinaryOp::Min, above, hi)
}

/// Clipping of the gradients `grads` together (docs/methods.md#clips):
/// global_norm(c): `n = ‖concat(g)‖₂`, `g *= min(1, c/(n + 1e-6))`; value(c): clamp to ±c.
fn clip(g: &mut Graph, c: &Clip, grads: &[NodeId]) -> Vec<NodeId> {
    match *c {
        Clip::GlobalNorm(c) => {
            let mut total = g.constant(0.0, Shape::scalar());
            for &d in grads {
                let sq = g.unary(UnaryOp::Square, d);
                let s = g.sum_all(sq);
                total = g.add2(total, s);
            }
            let n = g.unary(UnaryOp::Sqrt, total);
            let eps = g.constant(1e-6, Shape::scalar());
            let n = g.add2(n, eps);
            let cc = g.constant(c, Shape::scalar());
            let r = g.div(cc, n);
            let one = g.constant(1.0, Shape::scalar());
            let f = g.binary(BinaryOp::Min, one, r);
            grads
                .iter()
                .map(|&d| {
                    let s = g.shape(d).clone();
                    let fb = g.broadcast(f, &s);
                    g.mul(d, fb)
                })
                .collect()
        }
        Clip::Value(c) => grads
            .iter()
            .map(|&d| {
                let shape = g.shape(d).clone();
                let hi = g.constant(c, shape.clone());
                let lo = g.constant(-c, shape);
                let m = g.binary(BinaryOp::Min, d, hi);
                g.binary(BinaryOp::Max, m, lo)
            })
            .collect(),
    }
}
