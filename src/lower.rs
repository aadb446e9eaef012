//! Lowering: a checked [`Model`] becomes the forward [`Graph`] of primitive tensor ops.
//!
//! Each model value turns into a few graph nodes carrying the value's span and layer name as
//! provenance. Broadcasting becomes explicit `Broadcast` nodes; `Dense` becomes a matmul with
//! the weight's transpose folded into the op (PyTorch layout `[out, in]`) plus a broadcast
//! bias; `gelu` and `leaky_relu` decompose; losses are written in their textbook form (the
//! cross-entropy as `−mean Σ onehot(y)·log softmax(z)`), which `passes::stabilize` rewrites
//! into the fused, max-shifted primitive. The graph's outputs are `loss` then each metric.
//!
//! Lowering never fails: `check` has validated every shape.

use crate::check::{ArithOp, LossKind, Model, ReduceFn, UnaryFn, Value, ValueKind};
use crate::graph::{Axes, BinaryOp, Graph, Meta, NodeId, Op, Reduce, Shape, UnaryOp};

/// The forward graph of `model`: inputs, parameters, and outputs `loss` and the metrics.
pub fn lower(model: &Model) -> Graph {
    let mut g = Graph::new();
    for inp in &model.inputs {
        g.add_input(&inp.name, inp.shape.clone(), inp.kind);
    }
    for p in &model.params {
        g.add_param(&p.name, Shape::fixed(&p.shape));
    }
    let mut ids: Vec<NodeId> = Vec::with_capacity(model.values.len());
    for v in &model.values {
        g.origin = Meta { span: Some(v.span), grad_of: None, note: v.layer.clone() };
        let id = lower_value(&mut g, v, &ids);
        ids.push(id);
    }
    g.origin = Meta::default();
    g.add_output("loss", ids[model.loss.0 as usize]);
    for m in &model.metrics {
        g.add_output(m.name.clone(), ids[m.value.0 as usize]);
    }
    g
}

fn lower_value(g: &mut Graph, v: &Value, ids: &[NodeId]) -> NodeId {
    let at = |id: crate::check::ValueId| ids[id.0 as usize];
    match &v.kind {
        ValueKind::Input(i) => g.input(*i),
        ValueKind::Param(i) => g.param(*i),
        ValueKind::Const(c) => g.constant(*c, Shape::scalar()),
        ValueKind::Unary(f, x) => unary(g, *f, at(*x)),
        ValueKind::Arith(op, a, b) => {
            let (a, b) = (g.broadcast(at(*a), &v.shape), g.broadcast(at(*b), &v.shape));
            let op = match op {
                ArithOp::Add => BinaryOp::Add,
                ArithOp::Sub => BinaryOp::Sub,
                ArithOp::Mul => BinaryOp::Mul,
                ArithOp::Div => BinaryOp::Div,
            };
            g.binary(op, a, b)
        }
        ValueKind::MatMul(a, b) => g.matmul(at(*a), at(*b), false, false),
        ValueKind::Dense { x, weight, bias } => {
            let w = g.param(*weight);
            let y = g.matmul(at(*x), w, false, true);
            match bias {
                Some(b) => {
                    let b = g.param(*b);
                    let b = g.broadcast(b, &v.shape);
                    g.add2(y, b)
                }
                None => y,
            }
        }
        ValueKind::Reduce { op, x, axis } => {
            let x = at(*x);
            let kind = match op {
                ReduceFn::Sum => Reduce::Sum,
                ReduceFn::Mean => Reduce::Mean,
            };
            let axes = match axis {
                Some(a) => Axes::of(&[*a]),
                None => Axes::all(g.shape(x).rank()),
            };
            let r = g.reduce(kind, x, axes);
            g.reshape(r, &v.shape)
        }
        ValueKind::Softmax(x) => {
            let x = at(*x);
            let s = g.shape(x).clone();
            g.add(Op::Softmax, vec![x], s)
        }
        ValueKind::LogSoftmax(x) => {
            let x = at(*x);
            let s = g.shape(x).clone();
            g.add(Op::LogSoftmax, vec![x], s)
        }
        ValueKind::Loss { kind, pred, target } => loss(g, *kind, at(*pred), at(*target)),
        ValueKind::Accuracy { pred, target } => {
            let z = at(*pred);
            let am = g.add(Op::ArgMax, vec![z], g.shape(at(*target)).clone());
            let hit = g.binary(BinaryOp::Eq, am, at(*target));
            g.mean_all(hit)
        }
    }
}

fn unary(g: &mut Graph, f: UnaryFn, x: NodeId) -> NodeId {
    let op = match f {
        UnaryFn::Identity => return x,
        // leaky_relu(x) = max(x, α·x) for 0 ≤ α ≤ 1, else min(x, α·x)
        UnaryFn::LeakyRelu(alpha) => {
            let ax = g.scale(x, alpha);
            let op = if alpha <= 1.0 { BinaryOp::Max } else { BinaryOp::Min };
            return g.binary(op, x, ax);
        }
        // gelu(x) = x·Φ(x) = 0.5·x·(1 + erf(x/√2))
        UnaryFn::Gelu => {
            let s = g.scale(x, std::f64::consts::FRAC_1_SQRT_2);
            let e = g.unary(UnaryOp::Erf, s);
            let one = g.constant(1.0, g.shape(x).clone());
            let p = g.add2(one, e);
            let h = g.scale(x, 0.5);
            return g.mul(h, p);
        }
        UnaryFn::Relu => UnaryOp::Relu,
        UnaryFn::Tanh => UnaryOp::Tanh,
        UnaryFn::Sigmoid => UnaryOp::Sigmoid,
        UnaryFn::Softplus => UnaryOp::Softplus,
        UnaryFn::Neg => UnaryOp::Neg,
        UnaryFn::Exp => UnaryOp::Exp,
        UnaryFn::Log => UnaryOp::Log,
        UnaryFn::Sqrt => UnaryOp::Sqrt,
        UnaryFn::Abs => UnaryOp::Abs,
        UnaryFn::Square => UnaryOp::Square,
    };
    g.unary(op, x)
}

/// Losses as scalars, mean over the batch (CATALOG.md definitions).
fn loss(g: &mut Graph, kind: LossKind, z: NodeId, y: NodeId) -> NodeId {
    match kind {
        // mean((z − y)²)
        LossKind::Mse => {
            let d = g.sub(z, y);
            let sq = g.unary(UnaryOp::Square, d);
            g.mean_all(sq)
        }
        // −mean_i Σ_c onehot(y)_ic · log softmax(z)_ic   (stabilized by passes::stabilize)
        LossKind::CrossEntropy => {
            let zs = g.shape(z).clone();
            let classes = match zs.dims()[1] {
                crate::graph::Dim::Fixed(c) => c,
                crate::graph::Dim::Batch => unreachable!("class axis is fixed"),
            };
            let oh = g.add(Op::OneHot(classes), vec![y], zs.clone());
            let sm = g.add(Op::Softmax, vec![z], zs.clone());
            let ls = g.unary(UnaryOp::Log, sm);
            let picked = g.mul(oh, ls);
            let rows = g.reduce(Reduce::Sum, picked, Axes::of(&[1]));
            let rows = g.reshape(rows, &Shape(vec![zs.dims()[0]]));
            let nll = g.neg(rows);
            g.mean_all(nll)
        }
        // mean softplus(−y·z)
        LossKind::Logistic => {
            let yz = g.mul(y, z);
            let m = g.neg(yz);
            let sp = g.unary(UnaryOp::Softplus, m);
            g.mean_all(sp)
        }
        // mean softplus(z) − y·z
        LossKind::BceWithLogits => {
            let sp = g.unary(UnaryOp::Softplus, z);
            let yz = g.mul(y, z);
            let l = g.sub(sp, yz);
            g.mean_all(l)
        }
    }
}
