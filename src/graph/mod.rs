//! The graph IR: an append-only arena of nodes addressed by [`NodeId`]. Operands always
//! precede their users, so index order is a topological order: evaluation is a forward loop
//! and reverse-mode differentiation a backward loop.
//!
//! Nodes are created only through the interning builder methods here, which check each op's
//! shape rule and return the existing node for a repeated `(op, args, shape)`: common
//! subexpressions are shared by construction. Provenance (source span, which forward node a
//! gradient node differentiates) lives in a side table, [`Graph::meta`], and is set from
//! [`Graph::origin`] when a node is first created.
//!
//! A graph's roots are its named [`Output`]s and its [`Update`]s (new values of parameters and
//! optimizer state after a training step). Passes rebuild the graph from its roots with
//! [`Graph::rebuild`], which drops dead nodes.

pub mod diff;
pub mod dropout;
pub mod eval;
pub mod indexing;
pub mod op;
pub mod print;
pub mod scalar;
pub mod verify;
pub mod window;

use std::borrow::Cow;
use std::sync::Arc;

use crate::diagnostic::Span;
pub use op::{Axes, BinaryOp, Dim, Op, OpKind, ScalarArg, Shape, UnaryOp, F64};
pub use window::Window;

/// Index of a node in its graph's arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

impl NodeId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// One operation applied to earlier nodes.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub op: Op,
    pub args: Vec<NodeId>,
    pub shape: Shape,
}

/// Where a node came from; shown as comments by the printer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Meta {
    /// The source text that produced it.
    pub span: Option<Span>,
    /// For backward nodes: the forward node whose gradient computation this belongs to.
    pub grad_of: Option<NodeId>,
    /// A short human label, e.g. `fc1` or `adam m` (not semantics). Shared: every pass
    /// copies every node's provenance.
    pub note: Option<Arc<str>>,
}

/// What a graph input holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InputKind {
    /// Real-valued features.
    Features,
    /// Integer class indices `0..n`, stored as floats.
    Classes(u32),
    /// Real-valued regression (or ±1 / 0-1) targets.
    Targets,
}

#[derive(Clone, Debug, PartialEq)]
pub struct InputInfo {
    pub name: String,
    pub shape: Shape,
    pub kind: InputKind,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ParamInfo {
    /// PyTorch `state_dict` name, e.g. `fc1.weight`, `blocks.0.fc1.bias`.
    pub name: String,
    pub shape: Shape,
}

/// Optimizer state: a tensor the step reads and rewrites, filled with `init` at the start.
#[derive(Clone, Debug, PartialEq)]
pub struct StateInfo {
    /// e.g. `fc1.weight.momentum_buffer`, `fc1.weight.exp_avg`.
    pub name: String,
    pub shape: Shape,
    pub init: f64,
}

/// A named value the graph computes: `loss`, `accuracy`, `grad.fc1.weight`, ... The name
/// is for people (logs, printed IR, weight files); the role is what the compiler and the
/// runtime go by.
#[derive(Clone, Debug, PartialEq)]
pub struct Output {
    pub name: String,
    pub node: NodeId,
    pub role: Role,
}

/// What an [`Output`] is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The value training minimizes (`loss`).
    Loss,
    /// A value reported beside the loss (a declared metric; any value of a graph built by
    /// hand).
    Metric,
    /// A per-layer statistic of `--log-layers` (`act_mean.fc1`, `grad_norm.fc1.weight`).
    Probe,
    /// The model's per-example prediction, `[B, ...]` (an evaluation graph for `nnc predict`).
    Prediction,
    /// The loss's gradient with respect to parameter `i` (`graph.params[i]`).
    Grad(u32),
    /// A training step's finite check of parameter `i`: `sum(θ_new − θ_new)`, 0 if every
    /// element of the new value is finite, NaN otherwise.
    Check(u32),
}

/// What an [`Update`] overwrites after the step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    Param(u32),
    State(u32),
}

/// `target := node`, applied after all outputs and updates of a step are computed.
#[derive(Clone, Debug, PartialEq)]
pub struct Update {
    pub target: Target,
    pub node: NodeId,
}

/// The graph: arena, side tables, interface and roots.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    nodes: Vec<Node>,
    meta: Vec<Meta>,
    /// Every interned node by the hash of its `(op, args, shape)` ([`key_hash`]); the node
    /// itself is the key, so it is stored once.
    intern: hashbrown::HashTable<NodeId>,
    pub inputs: Vec<InputInfo>,
    pub params: Vec<ParamInfo>,
    pub states: Vec<StateInfo>,
    pub outputs: Vec<Output>,
    pub updates: Vec<Update>,
    /// Provenance given to nodes created from now on.
    pub origin: Meta,
}

impl Graph {
    pub fn new() -> Graph {
        Graph::default()
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.index()]
    }
    pub fn meta(&self, id: NodeId) -> &Meta {
        &self.meta[id.index()]
    }
    pub fn shape(&self, id: NodeId) -> &Shape {
        &self.nodes[id.index()].shape
    }
    /// All node ids in topological (index) order.
    pub fn ids(&self) -> impl Iterator<Item = NodeId> {
        (0..self.nodes.len() as u32).map(NodeId)
    }
    pub fn nodes(&self) -> impl Iterator<Item = (NodeId, &Node)> {
        self.nodes.iter().enumerate().map(|(i, n)| (NodeId(i as u32), n))
    }
    pub fn output(&self, name: &str) -> Option<NodeId> {
        self.outputs.iter().find(|o| o.name == name).map(|o| o.node)
    }
    /// Adds an output with role [`Role::Metric`].
    pub fn add_output(&mut self, name: impl Into<String>, node: NodeId) {
        self.add_output_as(Role::Metric, name, node);
    }
    pub fn add_output_as(&mut self, role: Role, name: impl Into<String>, node: NodeId) {
        self.outputs.push(Output { name: name.into(), node, role });
    }
    /// The index in `outputs` of the first output with `role`.
    pub fn output_of(&self, role: Role) -> Option<usize> {
        self.outputs.iter().position(|o| o.role == role)
    }

    // ---- registries -------------------------------------------------------------------

    pub fn add_input(&mut self, name: &str, shape: Shape, kind: InputKind) -> NodeId {
        let i = self.inputs.len() as u32;
        self.inputs.push(InputInfo { name: name.to_string(), shape: shape.clone(), kind });
        self.add(Op::Input(i), vec![], shape)
    }
    pub fn add_param(&mut self, name: &str, shape: Shape) -> NodeId {
        let i = self.params.len() as u32;
        self.params.push(ParamInfo { name: name.to_string(), shape: shape.clone() });
        self.add(Op::Param(i), vec![], shape)
    }
    pub fn add_state(&mut self, name: &str, shape: Shape, init: f64) -> NodeId {
        let i = self.states.len() as u32;
        self.states.push(StateInfo { name: name.to_string(), shape: shape.clone(), init });
        self.add(Op::State(i), vec![], shape)
    }
    /// The node reading parameter `i` (created on first use).
    pub fn param(&mut self, i: u32) -> NodeId {
        let shape = self.params[i as usize].shape.clone();
        self.add(Op::Param(i), vec![], shape)
    }
    pub fn input(&mut self, i: u32) -> NodeId {
        let shape = self.inputs[i as usize].shape.clone();
        self.add(Op::Input(i), vec![], shape)
    }
    pub fn state(&mut self, i: u32) -> NodeId {
        let shape = self.states[i as usize].shape.clone();
        self.add(Op::State(i), vec![], shape)
    }

    // ---- the interning constructor ----------------------------------------------------

    /// Adds `op(args)` with result shape `shape`, or returns the identical existing node.
    /// Panics if the shape rule of `op` is violated: callers check user shapes first, so a
    /// violation here is a compiler bug.
    pub fn add(&mut self, op: Op, args: Vec<NodeId>, shape: Shape) -> NodeId {
        if let Err(e) = self.check_rule(&op, &args, &shape) {
            panic!("graph builder: {op:?} {args:?} -> {shape}: {e}");
        }
        let hash = key_hash(&op, &args, &shape);
        let nodes = &self.nodes;
        let same = |id: &NodeId| {
            let n = &nodes[id.index()];
            n.op == op && n.args == args && n.shape == shape
        };
        if let Some(&id) = self.intern.find(hash, same) {
            return id;
        }
        let id = NodeId(self.nodes.len() as u32);
        self.nodes.push(Node { op, args, shape });
        self.meta.push(self.origin.clone());
        let nodes = &self.nodes;
        let rehash = |id: &NodeId| {
            let n = &nodes[id.index()];
            key_hash(&n.op, &n.args, &n.shape)
        };
        self.intern.insert_unique(hash, id, rehash);
        id
    }

    /// Appends `node` with provenance `meta` WITHOUT checking its operands or shape rule and
    /// without interning. Only for building deliberately malformed graphs in tests of
    /// [`verify`](verify::verify); builders and passes use [`Graph::add`].
    pub fn push_unchecked(&mut self, node: Node, meta: Meta) -> NodeId {
        let id = NodeId(self.nodes.len() as u32);
        self.nodes.push(node);
        self.meta.push(meta);
        id
    }

    /// Checks `op`'s shape rule for operands `args` and result `shape`.
    pub fn check_rule(&self, op: &Op, args: &[NodeId], shape: &Shape) -> Result<(), String> {
        if args.len() != op.arity() {
            return Err(format!("takes {} operands, got {}", op.arity(), args.len()));
        }
        if let Some(a) = args.iter().find(|a| a.index() >= self.nodes.len()) {
            return Err(format!("operand %{} does not exist yet", a.0));
        }
        let s = |i: usize| self.shape(args[i]);
        // Borrowed where the rule's shape is an operand's or the result's own (no allocation
        // for the common ops), owned where the rule computes it.
        fn b(x: &Shape) -> Option<Cow<'_, Shape>> {
            Some(Cow::Borrowed(x))
        }
        fn o(x: Shape) -> Option<Cow<'static, Shape>> {
            Some(Cow::Owned(x))
        }
        let want = match op {
            Op::Input(i) => self.inputs.get(*i as usize).and_then(|x| b(&x.shape)),
            Op::Param(i) => self.params.get(*i as usize).and_then(|x| b(&x.shape)),
            Op::State(i) => self.states.get(*i as usize).and_then(|x| b(&x.shape)),
            Op::Scalar(_) => o(Shape::scalar()),
            Op::Const(_) => b(shape),
            Op::Unary(_) | Op::Softmax | Op::LogSoftmax => b(s(0)),
            Op::Binary(_) => (s(0) == s(1)).then(|| Cow::Borrowed(s(0))),
            Op::Select => (s(0) == s(1) && s(1) == s(2)).then(|| Cow::Borrowed(s(0))),
            Op::Broadcast => broadcastable(s(0), shape).then_some(Cow::Borrowed(shape)),
            Op::Reshape => reshapeable(s(0), shape).then_some(Cow::Borrowed(shape)),
            Op::Transpose => match s(0).dims() {
                [m, n] => o(Shape(vec![*n, *m])),
                _ => None,
            },
            Op::ReduceSum(ax) | Op::ReduceMean(ax) | Op::ReduceMax(ax) => {
                reduced(s(0), *ax).map(Cow::Owned)
            }
            Op::MatMul { ta, tb } => matmul_shape(s(0), s(1), *ta, *tb).map(Cow::Owned),
            Op::SoftmaxCrossEntropy => match (s(0).dims(), s(1).dims()) {
                ([n, _], [m]) if n == m => o(Shape(vec![*n])),
                _ => None,
            },
            Op::OneHot(c) => match s(0).dims() {
                [n] => o(Shape(vec![*n, Dim::Fixed(*c)])),
                _ => None,
            },
            Op::ArgMax => match s(0).dims() {
                [rest @ .., _] => o(Shape(rest.to_vec())),
                _ => None,
            },
            Op::Concat { axis } => {
                indexing::concat_shape(s(0), s(1), *axis as usize).map(Cow::Owned)
            }
            Op::Slice { axis, start, len } => {
                indexing::slice_shape(s(0), *axis as usize, *start, *len).map(Cow::Owned)
            }
            Op::Gather => indexing::gather_shape(s(0), s(1)).map(Cow::Owned),
            Op::ScatterAdd(v) => indexing::scatter_shape(s(0), s(1), *v).map(Cow::Owned),
            // A mask of any shape from the scalar step; keep in (0, 1].
            Op::DropMask { keep, .. } => {
                let k = keep.get();
                (s(0).rank() == 0 && k > 0.0 && k <= 1.0).then_some(Cow::Borrowed(shape))
            }
            Op::Conv(w) => window::conv_shape(s(0), s(1), w).map(Cow::Owned),
            Op::ConvGradInput(w) => {
                window::conv_grad_input_fits(s(0), s(1), w, shape).then_some(Cow::Borrowed(shape))
            }
            Op::ConvGradKernel(w) => window::conv_grad_kernel_shape(s(0), s(1), w).map(Cow::Owned),
            Op::PoolPick(w) => window::pick_shape(s(0), s(1), w).map(Cow::Owned),
            Op::PoolRoute(w) => {
                window::route_fits(s(0), s(1), w, shape).then_some(Cow::Borrowed(shape))
            }
        };
        match want {
            Some(w) if *w == *shape => Ok(()),
            Some(w) => Err(format!("result shape should be {w}")),
            None => Err(format!(
                "operand shapes {} do not fit",
                args.iter().map(|&a| self.shape(a).to_string()).collect::<Vec<_>>().join(", ")
            )),
        }
    }

    // ---- convenience constructors (shape computed) ------------------------------------

    pub fn constant(&mut self, value: f64, shape: Shape) -> NodeId {
        self.add(Op::Const(F64::new(value)), vec![], shape)
    }
    pub fn scalar(&mut self, s: ScalarArg) -> NodeId {
        self.add(Op::Scalar(s), vec![], Shape::scalar())
    }
    pub fn unary(&mut self, op: UnaryOp, a: NodeId) -> NodeId {
        let shape = self.shape(a).clone();
        self.add(Op::Unary(op), vec![a], shape)
    }
    pub fn binary(&mut self, op: BinaryOp, a: NodeId, b: NodeId) -> NodeId {
        let shape = self.shape(a).clone();
        self.add(Op::Binary(op), vec![a, b], shape)
    }
    pub fn add2(&mut self, a: NodeId, b: NodeId) -> NodeId {
        self.binary(BinaryOp::Add, a, b)
    }
    pub fn sub(&mut self, a: NodeId, b: NodeId) -> NodeId {
        self.binary(BinaryOp::Sub, a, b)
    }
    pub fn mul(&mut self, a: NodeId, b: NodeId) -> NodeId {
        self.binary(BinaryOp::Mul, a, b)
    }
    pub fn div(&mut self, a: NodeId, b: NodeId) -> NodeId {
        self.binary(BinaryOp::Div, a, b)
    }
    pub fn neg(&mut self, a: NodeId) -> NodeId {
        self.unary(UnaryOp::Neg, a)
    }
    /// `a * c` for a constant `c`.
    pub fn scale(&mut self, a: NodeId, c: f64) -> NodeId {
        let k = self.constant(c, self.shape(a).clone());
        self.mul(a, k)
    }
    pub fn select(&mut self, c: NodeId, a: NodeId, b: NodeId) -> NodeId {
        let shape = self.shape(a).clone();
        self.add(Op::Select, vec![c, a, b], shape)
    }
    /// `a` broadcast to `shape`; returns `a` itself when the shape is already right.
    pub fn broadcast(&mut self, a: NodeId, shape: &Shape) -> NodeId {
        if self.shape(a) == shape {
            return a;
        }
        self.add(Op::Broadcast, vec![a], shape.clone())
    }
    /// `a` reshaped; returns `a` itself when the shape is already right.
    pub fn reshape(&mut self, a: NodeId, shape: &Shape) -> NodeId {
        if self.shape(a) == shape {
            return a;
        }
        self.add(Op::Reshape, vec![a], shape.clone())
    }
    pub fn transpose(&mut self, a: NodeId) -> NodeId {
        let d = self.shape(a).dims().to_vec();
        let shape = Shape(d.iter().rev().copied().collect());
        self.add(Op::Transpose, vec![a], shape)
    }
    /// Reduction keeping the reduced axes with size 1. `op` is one of the `Reduce*` ops;
    /// its axes are replaced by `axes`. Returns `a` itself when `axes` is empty.
    pub fn reduce(&mut self, kind: Reduce, a: NodeId, axes: Axes) -> NodeId {
        if axes.0 == 0 {
            return a;
        }
        let op = match kind {
            Reduce::Sum => Op::ReduceSum(axes),
            Reduce::Mean => Op::ReduceMean(axes),
            Reduce::Max => Op::ReduceMax(axes),
        };
        let shape = reduced(self.shape(a), axes).expect("reduce: axis out of range");
        self.add(op, vec![a], shape)
    }
    /// Sum of every element, as a scalar `[]`.
    pub fn sum_all(&mut self, a: NodeId) -> NodeId {
        let r = self.shape(a).rank();
        let s = self.reduce(Reduce::Sum, a, Axes::all(r));
        self.reshape(s, &Shape::scalar())
    }
    /// Mean of every element, as a scalar `[]`.
    pub fn mean_all(&mut self, a: NodeId) -> NodeId {
        let r = self.shape(a).rank();
        let s = self.reduce(Reduce::Mean, a, Axes::all(r));
        self.reshape(s, &Shape::scalar())
    }
    pub fn matmul(&mut self, a: NodeId, b: NodeId, ta: bool, tb: bool) -> NodeId {
        let shape = matmul_shape(self.shape(a), self.shape(b), ta, tb)
            .expect("matmul: inner dimensions differ");
        self.add(Op::MatMul { ta, tb }, vec![a, b], shape)
    }

    // ---- rebuilding -------------------------------------------------------------------

    /// Nodes reachable from the outputs and updates.
    pub fn live(&self) -> Vec<bool> {
        let roots = self.outputs.iter().map(|o| o.node);
        self.ancestors(roots.chain(self.updates.iter().map(|u| u.node)))
    }

    /// The nodes `roots` are computed from, the roots included.
    pub fn ancestors(&self, roots: impl IntoIterator<Item = NodeId>) -> Vec<bool> {
        let mut live = vec![false; self.nodes.len()];
        for r in roots {
            live[r.index()] = true;
        }
        for i in (0..self.nodes.len()).rev() {
            if live[i] {
                for a in &self.nodes[i].args {
                    live[a.index()] = true;
                }
            }
        }
        live
    }

    /// A new graph with the same interface, built by calling `f` on every live node in
    /// order with the node and its operands already mapped into the new graph; `f` returns
    /// the new node standing for the old one (usually `new.add(node.op, args, shape)`, or a
    /// simpler equivalent). Dead nodes are dropped and identical nodes shared (interning), so
    /// rebuilding with the identity is dead-code and common-subexpression elimination.
    /// Provenance is carried over; `grad_of` links to dropped nodes are cleared.
    pub fn rebuild(&self, mut f: impl FnMut(&mut Graph, &Node, Vec<NodeId>) -> NodeId) -> Graph {
        let mut new = Graph {
            inputs: self.inputs.clone(),
            params: self.params.clone(),
            states: self.states.clone(),
            ..Graph::default()
        };
        let live = self.live();
        let mut map: Vec<Option<NodeId>> = vec![None; self.nodes.len()];
        for (i, node) in self.nodes.iter().enumerate() {
            if !live[i] {
                continue;
            }
            let mut origin = self.meta[i].clone();
            origin.grad_of = origin.grad_of.and_then(|g| map[g.index()]);
            new.origin = origin;
            let args = node.args.iter().map(|a| map[a.index()].expect("operand is live")).collect();
            map[i] = Some(f(&mut new, node, args));
        }
        new.origin = Meta::default();
        let m = |id: NodeId| map[id.index()].expect("root is live");
        new.outputs =
            self.outputs.iter().map(|o| Output { node: m(o.node), ..o.clone() }).collect();
        new.updates =
            self.updates.iter().map(|u| Update { target: u.target, node: m(u.node) }).collect();
        new
    }

    /// Rebuild with the identity: dead-code and common-subexpression elimination.
    pub fn compact(&self) -> Graph {
        self.rebuild(|g, n, args| g.add(n.op, args, n.shape.clone()))
    }
}

/// The interning hash of a node. Fx: the std hasher (SipHash) was the passes' largest cost
/// on large graphs.
fn key_hash(op: &Op, args: &[NodeId], shape: &Shape) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one((op, args, shape))
}

/// Which reduction [`Graph::reduce`] builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    Sum,
    Mean,
    Max,
}

/// NumPy broadcasting of `from` to exactly `to`.
pub fn broadcastable(from: &Shape, to: &Shape) -> bool {
    let (f, t) = (from.dims(), to.dims());
    f.len() <= t.len()
        && f.iter().rev().zip(t.iter().rev()).all(|(a, b)| a == b || *a == Dim::Fixed(1))
}

/// Same number of elements, and the batch dimension (if any) kept as is in both.
fn reshapeable(from: &Shape, to: &Shape) -> bool {
    let fixed = |s: &Shape| {
        s.0.iter().map(|d| if let Dim::Fixed(n) = d { *n as u64 } else { 1 }).product::<u64>()
    };
    let batches = |s: &Shape| s.0.iter().filter(|d| **d == Dim::Batch).count();
    batches(from) == batches(to) && fixed(from) == fixed(to)
}

fn reduced(s: &Shape, axes: Axes) -> Option<Shape> {
    if axes.iter().any(|a| a >= s.rank()) {
        return None;
    }
    Some(Shape(
        s.0.iter()
            .enumerate()
            .map(|(i, d)| if axes.contains(i) { Dim::Fixed(1) } else { *d })
            .collect(),
    ))
}

fn matmul_shape(a: &Shape, b: &Shape, ta: bool, tb: bool) -> Option<Shape> {
    let (a, b) = (a.dims(), b.dims());
    if a.len() != 2 || b.len() != 2 {
        return None;
    }
    let (m, k1) = if ta { (a[1], a[0]) } else { (a[0], a[1]) };
    let (k2, n) = if tb { (b[1], b[0]) } else { (b[0], b[1]) };
    (k1 == k2).then(|| Shape(vec![m, n]))
}
