//! The optimizer step as graph code: from a graph with gradients (`autodiff::backward`) to
//! the whole training step, whose [`Update`]s give every parameter's new value and every
//! optimizer state's new value. Gradient clipping is applied first.
//!
//! The learning rate and the step count `t` (from 1) are runtime scalars (`Op::Scalar`), so a
//! schedule never changes the graph. Optimizer state is named as PyTorch names it
//! (`momentum_buffer`, `exp_avg`, `exp_avg_sq`) after the parameter. Formulas are PyTorch's
//! (CATALOG.md); each is written next to the code that builds it.
//!
//! What it does not do: compute the schedule (the runtime passes `lr`), or simplify: the
//! graph it builds is left to `passes`.

use crate::check::{Clip, Model, Optimizer};
use crate::graph::{BinaryOp, Graph, Meta, NodeId, ScalarArg, Shape, Target, Update};

/// The training step: `backward`'s graph with the gradient outputs replaced by parameter and
/// state updates. Outputs kept: the loss and the metrics.
pub fn step(grad_graph: &Graph, model: &Model) -> Graph {
    let mut g = grad_graph.clone();
    let params: Vec<(u32, NodeId)> = (0..g.params.len() as u32)
        .map(|i| {
            let name = format!("grad.{}", g.params[i as usize].name);
            (i, g.output(&name).expect("backward graph has a gradient per parameter"))
        })
        .collect();
    g.outputs.retain(|o| !o.name.starts_with("grad."));
    let grads: Vec<NodeId> = params.iter().map(|p| p.1).collect();

    g.origin = Meta { note: Some("clip".into()), ..Meta::default() };
    let grads = match &model.clip {
        Some(c) => clip(&mut g, c, &grads),
        None => grads,
    };
    for ((i, _), grad) in params.into_iter().zip(grads) {
        let name = g.params[i as usize].name.clone();
        g.origin = Meta {
            note: Some(format!("{} {name}", opt_name(&model.optimizer))),
            ..Meta::default()
        };
        let theta = g.param(i);
        let new = match &model.optimizer {
            Optimizer::Sgd { momentum, dampening, nesterov, weight_decay, .. } => {
                sgd(&mut g, &name, theta, grad, *momentum, *dampening, *nesterov, *weight_decay)
            }
            Optimizer::Adam { beta1, beta2, eps, weight_decay, .. } => {
                adam(&mut g, &name, theta, grad, *beta1, *beta2, *eps, *weight_decay)
            }
        };
        g.updates.push(Update { target: Target::Param(i), node: new });
    }
    g.origin = Meta::default();
    g
}

fn opt_name(o: &Optimizer) -> &'static str {
    match o {
        Optimizer::Sgd { .. } => "sgd",
        Optimizer::Adam { .. } => "adam",
    }
}

/// A runtime scalar broadcast to `like`'s shape.
fn scalar_like(g: &mut Graph, s: ScalarArg, like: NodeId) -> NodeId {
    let x = g.scalar(s);
    let shape = g.shape(like).clone();
    g.broadcast(x, &shape)
}

fn konst(g: &mut Graph, c: f64, like: NodeId) -> NodeId {
    let shape = g.shape(like).clone();
    g.constant(c, shape)
}

/// `g + λθ` (coupled weight decay), or `g` when λ = 0.
fn decay(g: &mut Graph, grad: NodeId, theta: NodeId, wd: f64) -> NodeId {
    if wd == 0.0 {
        return grad;
    }
    let d = g.scale(theta, wd);
    g.add2(grad, d)
}

/// Adds a state tensor shaped like `like`, filled with zeros, and returns its node.
fn state(g: &mut Graph, name: String, like: NodeId) -> (u32, NodeId) {
    let shape = g.shape(like).clone();
    let i = g.states.len() as u32;
    let node = g.add_state(&name, shape, 0.0);
    (i, node)
}

/// torch.optim.SGD: `g += λθ`; `b = μb + (1−τ)g` (b₁ = g); `g = g + μb` (nesterov) or `b`;
/// `θ −= lr·g`.
#[allow(clippy::too_many_arguments)]
fn sgd(
    g: &mut Graph,
    name: &str,
    theta: NodeId,
    grad: NodeId,
    mu: f64,
    tau: f64,
    nesterov: bool,
    wd: f64,
) -> NodeId {
    let mut d = decay(g, grad, theta, wd);
    if mu != 0.0 {
        let (si, buf) = state(g, format!("{name}.momentum_buffer"), theta);
        let mb = g.scale(buf, mu);
        let dg = g.scale(d, 1.0 - tau);
        let later = g.add2(mb, dg);
        // The first step sets the buffer to the gradient itself.
        let t = scalar_like(g, ScalarArg::Step, theta);
        let one = konst(g, 1.0, theta);
        let first = g.binary(BinaryOp::Eq, t, one);
        let b = g.select(first, d, later);
        g.updates.push(Update { target: Target::State(si), node: b });
        d = if nesterov {
            let mb = g.scale(b, mu);
            g.add2(d, mb)
        } else {
            b
        };
    }
    let lr = scalar_like(g, ScalarArg::Lr, theta);
    let delta = g.mul(lr, d);
    g.sub(theta, delta)
}

/// torch.optim.Adam: `g += λθ`; `m = β₁m + (1−β₁)g`; `v = β₂v + (1−β₂)g²`;
/// `θ −= (lr/(1−β₁ᵗ)) · m / (√v/√(1−β₂ᵗ) + ε)`.
#[allow(clippy::too_many_arguments)]
fn adam(
    g: &mut Graph,
    name: &str,
    theta: NodeId,
    grad: NodeId,
    b1: f64,
    b2: f64,
    eps: f64,
    wd: f64,
) -> NodeId {
    let d = decay(g, grad, theta, wd);
    let (mi, m) = state(g, format!("{name}.exp_avg"), theta);
    let (vi, v) = state(g, format!("{name}.exp_avg_sq"), theta);
    let m1 = g.scale(m, b1);
    let gd = g.scale(d, 1.0 - b1);
    let m_new = g.add2(m1, gd);
    let v1 = g.scale(v, b2);
    let sq = g.unary(crate::graph::UnaryOp::Square, d);
    let g2 = g.scale(sq, 1.0 - b2);
    let v_new = g.add2(v1, g2);
    g.updates.push(Update { target: Target::State(mi), node: m_new });
    g.updates.push(Update { target: Target::State(vi), node: v_new });
    // Bias corrections are scalars computed once: c₁ = lr/(1−β₁ᵗ), c₂ = 1/√(1−β₂ᵗ).
    let t = g.scalar(ScalarArg::Step);
    let lr = g.scalar(ScalarArg::Lr);
    let c1 = {
        let b = g.constant(b1, Shape::scalar());
        let bt = g.binary(BinaryOp::Pow, b, t);
        let one = g.constant(1.0, Shape::scalar());
        let corr = g.sub(one, bt);
        g.div(lr, corr)
    };
    let c2 = {
        let b = g.constant(b2, Shape::scalar());
        let bt = g.binary(BinaryOp::Pow, b, t);
        let one = g.constant(1.0, Shape::scalar());
        let corr = g.sub(one, bt);
        let r = g.unary(crate::graph::UnaryOp::Sqrt, corr);
        g.unary(crate::graph::UnaryOp::Recip, r)
    };
    let shape = g.shape(theta).clone();
    let c1 = g.broadcast(c1, &shape);
    let c2 = g.broadcast(c2, &shape);
    let root = g.unary(crate::graph::UnaryOp::Sqrt, v_new);
    let scaled = g.mul(root, c2);
    let e = konst(g, eps, theta);
    let denom = g.add2(scaled, e);
    let ratio = g.div(m_new, denom);
    let delta = g.mul(c1, ratio);
    g.sub(theta, delta)
}

/// Clipping of all gradients together (CATALOG.md):
/// global_norm(c): `n = ‖concat(g)‖₂`, `g *= min(1, c/(n + 1e-6))`; value(c): clamp to ±c.
fn clip(g: &mut Graph, c: &Clip, grads: &[NodeId]) -> Vec<NodeId> {
    match *c {
        Clip::GlobalNorm(c) => {
            let mut total = g.constant(0.0, Shape::scalar());
            for &d in grads {
                let sq = g.unary(crate::graph::UnaryOp::Square, d);
                let s = g.sum_all(sq);
                total = g.add2(total, s);
            }
            let n = g.unary(crate::graph::UnaryOp::Sqrt, total);
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
                let hi = konst(g, c, d);
                let lo = konst(g, -c, d);
                let m = g.binary(BinaryOp::Min, d, hi);
                g.binary(BinaryOp::Max, m, lo)
            })
            .collect(),
    }
}
