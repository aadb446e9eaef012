//! Lowering: a checked [`Model`] becomes the forward [`Graph`] of primitive tensor ops, in
//! training or evaluation [`Mode`].
//!
//! Each model value turns into a few graph nodes carrying the value's span and layer name as
//! provenance. Broadcasting becomes explicit `Broadcast` nodes; `Dense` becomes a matmul with
//! the weight's transpose folded into the op (PyTorch layout `[out, in]`) plus a broadcast
//! bias; `gelu`, `elu`, `silu` and `leaky_relu` decompose; normalization layers and weight
//! normalization decompose into reductions and broadcasts ([`norm`]); `concat` and an
//! Embedding become the index ops `concat` and `gather`, `flatten` a reshape; losses are
//! written in their textbook form (the cross-entropy as `−mean Σ onehot(y)·log softmax(z)`),
//! which `passes::stabilize` rewrites into the fused, max-shifted primitive.
//!
//! Interface of the result, in this order:
//! - states: the model's buffers (`bn.running_mean`, `bn.running_var`,
//!   `bn.num_batches_tracked`, in `Model::buffers` order), in both modes, so that the
//!   evaluation graph's states are a prefix of the training step's (whose optimizer state
//!   `update` appends after them);
//! - outputs: `loss`, each metric, then (with [`LowerOptions::probes`]) the activation
//!   statistics of `crate::probes`, then (with [`LowerOptions::prediction`]) the
//!   per-example `prediction` of `Model::prediction`;
//! - updates (training mode only): the new running statistics of every batch norm.
//!
//! The modes differ only in batch norm and dropout: training normalizes with the batch's
//! statistics and updates the running ones, evaluation normalizes with the running
//! statistics; dropout masks in training and is the identity in evaluation ([`dropout`]).
//! Lowering never fails: `check` has validated every shape.

mod dropout;
mod norm;

use crate::check::{ArithOp, LossKind, Model, Pool, ReduceFn, UnaryFn, Value, ValueKind};
use crate::graph::{
    Axes, BinaryOp, Dim, Graph, Meta, NodeId, Op, Reduce, Role, Shape, Target, UnaryOp, Update,
    Window,
};

/// Training (batch statistics, running statistics updated) or evaluation (running
/// statistics read) behaviour of the layers that have one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    #[default]
    Train,
    Eval,
}

/// How to lower: the mode, and whether to add the activation-statistics outputs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LowerOptions {
    pub mode: Mode,
    /// Add `act_mean.<layer>` and `act_var.<layer>` outputs (`crate::probes`).
    pub probes: bool,
    /// Add the `prediction` output, `[B, ...]` (`nnc predict`).
    pub prediction: bool,
}

/// The training-mode forward graph of `model`, without probes.
pub fn lower(model: &Model) -> Graph {
    lower_with(model, LowerOptions::default())
}

/// The forward graph of `model` in `o.mode`: inputs, parameters, buffers as states, and
/// outputs `loss`, the metrics and (with `o.probes`) the activation statistics.
pub fn lower_with(model: &Model, o: LowerOptions) -> Graph {
    let mut g = Graph::new();
    for inp in &model.inputs {
        g.add_input(&inp.name, inp.shape.clone(), inp.kind);
    }
    for p in &model.params {
        g.add_param(&p.name, Shape::fixed(&p.shape));
    }
    for b in &model.buffers {
        g.add_state(&b.name, Shape::fixed(&b.shape), b.init);
    }
    let mut cx = Lowering {
        mode: o.mode,
        latest: vec![None; model.buffers.len()],
        seed: model.train.seed,
        dropouts: 0,
    };
    let mut ids: Vec<NodeId> = Vec::with_capacity(model.values.len());
    let mut probes = crate::probes::Activations::default();
    for v in &model.values {
        g.origin =
            Meta { span: Some(v.span), grad_of: None, note: v.layer.as_deref().map(Into::into) };
        let id = lower_value(&mut g, &mut cx, v, &ids);
        if o.probes {
            probes.record(&mut g, v, id);
        }
        ids.push(id);
    }
    g.origin = Meta::default();
    g.add_output_as(Role::Loss, "loss", ids[model.loss.0 as usize]);
    for m in &model.metrics {
        g.add_output(m.name.clone(), ids[m.value.0 as usize]);
    }
    probes.add_outputs(&mut g);
    if let (true, Some((pred, _))) = (o.prediction, model.prediction()) {
        g.add_output_as(Role::Prediction, "prediction", ids[pred.0 as usize]);
    }
    for (i, node) in cx.latest.iter().enumerate() {
        if let Some(node) = *node {
            g.updates.push(Update { target: Target::State(i as u32), node });
        }
    }
    g
}

/// State of one lowering: the mode, and the newest value of each buffer the forward pass
/// has updated so far (a batch norm applied twice updates its statistics twice, in order).
struct Lowering {
    mode: Mode,
    latest: Vec<Option<NodeId>>,
    /// The run's seed (salts the dropout masks) and the dropout sites lowered so far.
    seed: u64,
    dropouts: u32,
}

impl Lowering {
    /// The current value of buffer `i`: its newest update, or the state itself.
    fn buffer(&self, g: &mut Graph, i: u32) -> NodeId {
        self.latest[i as usize].unwrap_or_else(|| g.state(i))
    }
    fn set_buffer(&mut self, i: u32, node: NodeId) {
        self.latest[i as usize] = Some(node);
    }
}

fn lower_value(g: &mut Graph, cx: &mut Lowering, v: &Value, ids: &[NodeId]) -> NodeId {
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
        ValueKind::WeightNormDense { x, g: gi, v: vi, bias } => {
            norm::weight_norm_dense(g, at(*x), *gi, *vi, *bias, &v.shape)
        }
        ValueKind::Norm { norm, x, weight, bias } => {
            norm::normalize(g, cx, *norm, at(*x), *weight, *bias)
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
        ValueKind::Dropout { x, p } => dropout::dropout(g, cx, at(*x), *p),
        // torch.cat(a, b, axis), torch.flatten(x, 1), embedding: weight[ids]
        ValueKind::Concat { a, b, axis } => g.concat(at(*a), at(*b), *axis),
        ValueKind::Reshape(x) => g.reshape(at(*x), &v.shape),
        ValueKind::Embedding { ids, weight } => {
            let w = g.param(*weight);
            g.gather(w, at(*ids))
        }
        ValueKind::Conv2d { x, weight, bias, win } => {
            let w = g.param(*weight);
            let y = g.conv(at(*x), w, *win);
            match bias {
                Some(b) => {
                    let b = g.param(*b);
                    let c = g.shape(b).dims()[0];
                    let col = g.reshape(b, &Shape(vec![c, Dim::Fixed(1), Dim::Fixed(1)]));
                    let b = g.broadcast(col, &v.shape);
                    g.add2(y, b)
                }
                None => y,
            }
        }
        // max pooling: the pick of x by itself; average pooling: a depthwise convolution
        // with every tap 1/(kh·kw) (PyTorch's count_include_pad)
        ValueKind::Pool { x, pool: Pool::Max, win } => g.pool_pick(at(*x), at(*x), *win),
        ValueKind::Pool { x, pool: Pool::Avg, win } => {
            let x = at(*x);
            let c = g.shape(x).dims()[1];
            let [kh, kw] = win.kernel.map(|k| Dim::Fixed(k as u32));
            let taps = Shape(vec![c, Dim::Fixed(1), kh, kw]);
            let k = g.constant(1.0 / win.taps() as f64, taps);
            let groups = c.size(1) as u16;
            g.conv(x, k, Window { groups, ..*win })
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
            return half_x_one_plus(g, x, e);
        }
        // gelu_tanh(x) = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
        UnaryFn::GeluTanh => {
            let x2 = g.unary(UnaryOp::Square, x);
            let x3 = g.mul(x2, x);
            let c = g.scale(x3, 0.044715);
            let inner = g.add2(x, c);
            let k = (2.0 / std::f64::consts::PI).sqrt();
            let s = g.scale(inner, k);
            let t = g.unary(UnaryOp::Tanh, s);
            return half_x_one_plus(g, x, t);
        }
        // elu(x) = relu(x) + α·(exp(min(x, 0)) − 1): no exp of a large positive x, so neither
        // value nor gradient overflows.
        UnaryFn::Elu(alpha) => {
            let zero = g.constant(0.0, g.shape(x).clone());
            let neg = g.binary(BinaryOp::Min, x, zero);
            let e = g.unary(UnaryOp::Exp, neg);
            let one = g.constant(1.0, g.shape(x).clone());
            let em1 = g.sub(e, one);
            let a = g.scale(em1, alpha);
            let r = g.unary(UnaryOp::Relu, x);
            return g.add2(r, a);
        }
        // silu(x) = x·sigmoid(x)
        UnaryFn::Silu => {
            let s = g.unary(UnaryOp::Sigmoid, x);
            return g.mul(x, s);
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

/// `0.5·x·(1 + t)`, the common tail of both gelu forms.
fn half_x_one_plus(g: &mut Graph, x: NodeId, t: NodeId) -> NodeId {
    let one = g.constant(1.0, g.shape(x).clone());
    let p = g.add2(one, t);
    let h = g.scale(x, 0.5);
    g.mul(h, p)
}

/// Losses as scalars, mean over the batch (definitions: docs/methods.md#losses).
fn loss(g: &mut Graph, kind: LossKind, z: NodeId, y: NodeId) -> NodeId {
    match kind {
        // mean((z − y)²)
        LossKind::Mse => {
            let d = g.sub(z, y);
            let sq = g.unary(UnaryOp::Square, d);
            g.mean_all(sq)
        }
        // −mean_i Σ_c onehot(y)_ic · log softmax(z)_ic   (stabilized by passes::stabilize)
        LossKind::CrossEntropy { label_smoothing } if label_smoothing > 0.0 => {
            // (1 − ε)·CE(z, y) + ε·(−mean_i (1/C)·Σ_c log softmax(z)_ic), which is
            // −mean_i Σ_c ((1 − ε)·onehot(y)_ic + ε/C)·log softmax(z)_ic [CrossEntropyLoss]
            let plain = LossKind::CrossEntropy { label_smoothing: 0.0 };
            let ce = loss(g, plain, z, y);
            let ce = g.scale(ce, 1.0 - label_smoothing);
            let ls = g.add(Op::LogSoftmax, vec![z], g.shape(z).clone());
            let uniform = g.mean_all(ls);
            let uniform = g.scale(uniform, -label_smoothing);
            g.add2(ce, uniform)
        }
        LossKind::CrossEntropy { .. } => {
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
        // mean max(0, 1 − y·z)
        LossKind::Hinge => {
            let yz = g.mul(y, z);
            let one = g.constant(1.0, g.shape(z).clone());
            let m = g.sub(one, yz);
            let h = g.unary(UnaryOp::Relu, m);
            g.mean_all(h)
        }
        // a = |z − y|, q = min(a, δ): ½q² + δ·(a − q) is ½a² below δ and δ(a − ½δ) above
        LossKind::Huber(delta) => {
            let d = g.sub(z, y);
            let a = g.unary(UnaryOp::Abs, d);
            let k = g.constant(delta, g.shape(z).clone());
            let q = g.binary(BinaryOp::Min, a, k);
            let q2 = g.unary(UnaryOp::Square, q);
            let half = g.scale(q2, 0.5);
            let lin = g.sub(a, q);
            let lin = g.scale(lin, delta);
            let l = g.add2(half, lin);
            g.mean_all(l)
        }
        // mean |z − y|
        LossKind::L1 => {
            let d = g.sub(z, y);
            let a = g.unary(UnaryOp::Abs, d);
            g.mean_all(a)
        }
    }
}
