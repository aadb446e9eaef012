//! The reference interpreter: evaluates any [`Graph`] on concrete tensors, slowly and
//! obviously correctly. It is the oracle for every other test (gradient checks in `f64`,
//! the JIT's differential tests) and the `--backend interp` training backend (in `f32`).
//!
//! Evaluation is one forward loop over the arena (index order is topological). Every op is
//! implemented exactly as documented in [`op`](crate::graph::op), with the stable formulas
//! where they matter (softplus, sigmoid, the max-shifted softmax family). The batch size is
//! read from the inputs whose declared shape contains `B`; all of them must agree.
//!
//! Invariants and preconditions:
//! - the graph passes [`verify`](crate::graph::verify::verify) (every compiler stage
//!   guarantees it); a malformed graph is a compiler bug and may panic here;
//! - the environment (counts, shapes, batch size, class labels) is user data: every mistake
//!   in it is an [`EvalError`], never a panic;
//! - [`eval`] computes only the live nodes (those the outputs and updates need) and frees each
//!   value after its last use; [`eval_nodes`] computes every node and keeps them all.

mod elementwise;
mod index;
mod kernels;
mod real;
#[cfg(test)]
mod tests;
mod window;

use std::fmt;

pub use real::{erf, Real};

use crate::graph::{Dim, Graph, NodeId, Op, Reduce, Shape, Target};
use crate::tensor::Tensor;

/// What a step reads: data, parameters, optimizer state and the runtime scalars.
#[derive(Clone, Copy, Debug)]
pub struct Env<'a, T> {
    /// One tensor per `graph.inputs`, in order.
    pub inputs: &'a [Tensor<T>],
    /// One tensor per `graph.params`, in order.
    pub params: &'a [Tensor<T>],
    /// One tensor per `graph.states`, in order.
    pub states: &'a [Tensor<T>],
    /// The value of [`ScalarArg::Lr`].
    pub lr: f64,
    /// The value of [`ScalarArg::Step`] (the optimizer step `t`, from 1).
    pub step: f64,
}

/// The values of a graph's roots.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluated<T> {
    /// One per `graph.outputs`, same order.
    pub outputs: Vec<Tensor<T>>,
    /// One per `graph.updates`, same order.
    pub updates: Vec<Tensor<T>>,
}

/// Which registry of the graph interface a tensor is fed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    Input,
    Param,
    State,
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Slot::Input => "input",
            Slot::Param => "parameter",
            Slot::State => "optimizer state",
        })
    }
}

/// A mistake in the environment given to [`eval`].
#[derive(Clone, Debug, PartialEq)]
pub enum EvalError {
    /// The number of tensors given for a registry differs from the graph's.
    Count { slot: Slot, expected: usize, got: usize },
    /// A tensor whose data length is not the product of its shape.
    Data { slot: Slot, name: String, len: usize, numel: usize },
    /// A tensor whose shape does not fit the declared one.
    Shape { slot: Slot, name: String, expected: Shape, got: Vec<usize> },
    /// Two tensors disagree about the batch size `B`.
    Batch { name: String, got: usize, first: String, expected: usize },
    /// A node has the batch dimension but no input declares it, so `B` is unknown.
    NoBatch { node: NodeId },
    /// A class label (of `softmax_xent` or `one_hot`) that is not an integer in `0..classes`.
    Label { node: NodeId, value: f64, classes: usize },
    /// An id (of `gather` or `scatter_add`) that is not an integer in `0..count`.
    Id { node: NodeId, value: f64, count: usize },
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            EvalError::Count { slot, expected, got } => {
                write!(f, "expected {expected} {slot} tensor(s), got {got}")
            }
            EvalError::Data { slot, name, len, numel } => write!(
                f,
                "{slot} `{name}` holds {len} value(s) but its shape has {numel} element(s)"
            ),
            EvalError::Shape { slot, name, expected, got } => {
                write!(f, "{slot} `{name}` has shape {}, expected {expected}", dims(got))
            }
            EvalError::Batch { name, got, first, expected } => {
                write!(f, "`{name}` has batch size {got}, but `{first}` has batch size {expected}")
            }
            EvalError::NoBatch { node } => {
                write!(f, "node %{} has the batch dimension B, but no input declares B", node.0)
            }
            EvalError::Label { node, value, classes } => write!(
                f,
                "class label {value} is not an integer in 0..{classes} (node %{})",
                node.0
            ),
            EvalError::Id { node, value, count } => {
                write!(f, "id {value} is not an integer in 0..{count} (node %{})", node.0)
            }
        }
    }
}

impl std::error::Error for EvalError {}

/// Concrete dims in the notation of [`Shape`]'s `Display`: `[32,64]`.
fn dims(d: &[usize]) -> String {
    let parts: Vec<String> = d.iter().map(|x| x.to_string()).collect();
    format!("[{}]", parts.join(","))
}

/// Evaluates the live nodes of `g` and returns the values of its outputs and updates.
pub fn eval<T: Real>(g: &Graph, env: &Env<T>) -> Result<Evaluated<T>, EvalError> {
    eval_visited(g, env, &mut |_, _| {})
}

/// [`eval`] with `visit` applied to every computed value before its users read it. Tests
/// perturb values there by a few ulp of f32 to measure how much a result amplifies the
/// rounding of the operations before it (Monte Carlo arithmetic).
pub fn eval_visited<T: Real>(
    g: &Graph,
    env: &Env<T>,
    visit: &mut dyn FnMut(NodeId, &mut Tensor<T>),
) -> Result<Evaluated<T>, EvalError> {
    let batch = check_env(g, env)?;
    let values = run(g, env, batch, &g.live(), true, &mut |id, v| {
        visit(id, v);
        false
    })?;
    let get = |id: NodeId| values[id.index()].clone();
    Ok(Evaluated {
        outputs: g.outputs.iter().map(|o| get(o.node)).collect(),
        updates: g.updates.iter().map(|u| get(u.node)).collect(),
    })
}

/// The value of every node of `g`, dead or live, indexed by [`NodeId::index`] (for tests).
pub fn eval_nodes<T: Real>(g: &Graph, env: &Env<T>) -> Result<Vec<Tensor<T>>, EvalError> {
    let batch = check_env(g, env)?;
    run(g, env, batch, &vec![true; g.len()], false, &mut |_, _| false)
}

/// The first node among `wanted` (closed under operands), in evaluation order, whose value
/// holds NaN or an infinity, with that value; constants aside. Its operands are finite (or
/// constants): it is where non-finite values start.
pub fn first_non_finite<T: Real>(
    g: &Graph,
    env: &Env<T>,
    wanted: &[bool],
) -> Result<Option<(NodeId, T)>, EvalError> {
    let batch = check_env(g, env)?;
    let mut found = None;
    run(g, env, batch, wanted, true, &mut |id, v: &mut Tensor<T>| {
        if matches!(g.node(id).op, Op::Const(_)) {
            return false;
        }
        found = v.data.iter().find(|x| !x.is_finite()).map(|&x| (id, x));
        found.is_some()
    })?;
    Ok(found)
}

/// Writes the values of `ev` (from [`eval`] on `g`) into the parameters and states they
/// update. Panics if `params` or `states` are shorter than `g`'s registries, or if `ev` did
/// not come from `g` (both are programming errors, not user input).
pub fn apply_updates<T: Clone>(
    g: &Graph,
    ev: &Evaluated<T>,
    params: &mut [Tensor<T>],
    states: &mut [Tensor<T>],
) {
    assert_eq!(g.updates.len(), ev.updates.len(), "apply_updates: evaluation of another graph");
    for (u, value) in g.updates.iter().zip(&ev.updates) {
        match u.target {
            Target::Param(i) => params[i as usize] = value.clone(),
            Target::State(i) => states[i as usize] = value.clone(),
        }
    }
}

// ---- the environment --------------------------------------------------------------------

/// Checks counts, data lengths and shapes of the environment and returns the batch size
/// (`None` if no input declares `B`).
fn check_env<T>(g: &Graph, env: &Env<T>) -> Result<Option<usize>, EvalError> {
    let mut batch = None;
    let inputs = g.inputs.iter().map(|x| (&x.name, &x.shape));
    check_slot(Slot::Input, inputs, env.inputs, &mut batch)?;
    let params = g.params.iter().map(|x| (&x.name, &x.shape));
    check_slot(Slot::Param, params, env.params, &mut batch)?;
    let states = g.states.iter().map(|x| (&x.name, &x.shape));
    check_slot(Slot::State, states, env.states, &mut batch)?;
    Ok(batch.map(|(b, _)| b))
}

/// Checks one registry; `batch` is the batch size found so far and who declared it first.
fn check_slot<'g, T>(
    slot: Slot,
    declared: impl ExactSizeIterator<Item = (&'g String, &'g Shape)>,
    given: &[Tensor<T>],
    batch: &mut Option<(usize, String)>,
) -> Result<(), EvalError> {
    if declared.len() != given.len() {
        return Err(EvalError::Count { slot, expected: declared.len(), got: given.len() });
    }
    for ((name, shape), t) in declared.zip(given) {
        let numel: usize = t.shape.iter().product();
        if t.data.len() != numel {
            let name = name.clone();
            return Err(EvalError::Data { slot, name, len: t.data.len(), numel });
        }
        let shape_err = || EvalError::Shape {
            slot,
            name: name.clone(),
            expected: shape.clone(),
            got: t.shape.clone(),
        };
        if shape.rank() != t.shape.len() {
            return Err(shape_err());
        }
        for (d, &n) in shape.dims().iter().zip(&t.shape) {
            match (d, &batch) {
                (Dim::Fixed(k), _) if *k as usize != n => return Err(shape_err()),
                (Dim::Fixed(_), _) => {}
                (Dim::Batch, None) => *batch = Some((n, name.clone())),
                (Dim::Batch, Some((b, first))) if *b != n => {
                    let (first, expected) = (first.clone(), *b);
                    return Err(EvalError::Batch { name: name.clone(), got: n, first, expected });
                }
                (Dim::Batch, Some(_)) => {}
            }
        }
    }
    Ok(())
}

// ---- the forward loop -------------------------------------------------------------------

/// Computes the nodes marked in `wanted` (closed under operands) in index order, until
/// `stop` says so of a node's value (which it may change first). Unwanted nodes, and with `free` every value after its
/// last use, are left as empty tensors.
fn run<T: Real>(
    g: &Graph,
    env: &Env<T>,
    batch: Option<usize>,
    wanted: &[bool],
    free: bool,
    stop: &mut dyn FnMut(NodeId, &mut Tensor<T>) -> bool,
) -> Result<Vec<Tensor<T>>, EvalError> {
    if batch.is_none() {
        if let Some(id) = g.ids().find(|&id| wanted[id.index()] && g.shape(id).has_batch()) {
            return Err(EvalError::NoBatch { node: id });
        }
    }
    let batch = batch.unwrap_or(0);
    let last_use = if free { last_uses(g, wanted) } else { vec![usize::MAX; g.len()] };
    let mut values: Vec<Tensor<T>> = Vec::with_capacity(g.len());
    for (id, node) in g.nodes() {
        if !wanted[id.index()] {
            values.push(empty());
            continue;
        }
        let mut v = eval_node(g, id, &values, env, batch)?;
        debug_assert_eq!(v.shape, node.shape.concrete(batch), "eval of %{} {:?}", id.0, node.op);
        let done = stop(id, &mut v);
        values.push(v);
        if done {
            break;
        }
        for a in &node.args {
            if last_use[a.index()] == id.index() {
                values[a.index()] = empty();
            }
        }
    }
    Ok(values)
}

/// The placeholder for a value not computed or already freed.
fn empty<T>() -> Tensor<T> {
    Tensor { shape: vec![0], data: Vec::new() }
}

/// For each node, the index of its last wanted user (`usize::MAX` for roots: never freed).
fn last_uses(g: &Graph, wanted: &[bool]) -> Vec<usize> {
    let mut last = vec![0; g.len()];
    for (id, node) in g.nodes().filter(|(id, _)| wanted[id.index()]) {
        for a in &node.args {
            last[a.index()] = id.index();
        }
    }
    for root in g.outputs.iter().map(|o| o.node).chain(g.updates.iter().map(|u| u.node)) {
        last[root.index()] = usize::MAX;
    }
    last
}

/// The value of node `id` from the values of earlier nodes.
fn eval_node<T: Real>(
    g: &Graph,
    id: NodeId,
    values: &[Tensor<T>],
    env: &Env<T>,
    batch: usize,
) -> Result<Tensor<T>, EvalError> {
    use kernels as k;
    let node = g.node(id);
    let arg = |i: usize| &values[node.args[i].index()];
    let scalar = |v: f64| Tensor { shape: vec![], data: vec![T::from_f64(v)] };
    let label = |c: usize| move |value: f64| EvalError::Label { node: id, value, classes: c };
    let bad_id = |count: usize| move |value: f64| EvalError::Id { node: id, value, count };
    Ok(match node.op {
        Op::Input(i) => env.inputs[i as usize].clone(),
        Op::Param(i) => env.params[i as usize].clone(),
        Op::State(i) => env.states[i as usize].clone(),
        Op::Scalar(a) => scalar(a.value(env.lr, env.step)),
        Op::Const(v) => Tensor::full(node.shape.concrete(batch), T::from_f64(v.get())),
        Op::Unary(op) => elementwise::unary(op, arg(0)),
        Op::Binary(op) => elementwise::binary(op, arg(0), arg(1)),
        Op::Select => k::select(arg(0), arg(1), arg(2)),
        Op::Broadcast => k::broadcast(arg(0), &node.shape.concrete(batch)),
        Op::Reshape => Tensor { shape: node.shape.concrete(batch), data: arg(0).data.clone() },
        Op::Transpose => k::transpose(arg(0)),
        Op::ReduceSum(axes) => k::reduce(arg(0), axes, Reduce::Sum),
        Op::ReduceMean(axes) => k::reduce(arg(0), axes, Reduce::Mean),
        Op::ReduceMax(axes) => k::reduce(arg(0), axes, Reduce::Max),
        Op::MatMul { ta, tb } => k::matmul(arg(0), arg(1), ta, tb),
        Op::Softmax => k::softmax(arg(0)),
        Op::LogSoftmax => k::log_softmax(arg(0)),
        Op::SoftmaxCrossEntropy => {
            k::softmax_xent(arg(0), arg(1)).map_err(label(arg(0).shape[1]))?
        }
        Op::OneHot(c) => k::one_hot(arg(0), c as usize).map_err(label(c as usize))?,
        Op::ArgMax => k::argmax(arg(0)),
        Op::Concat { axis } => index::concat(arg(0), arg(1), axis as usize),
        Op::Slice { axis, start, len } => {
            index::slice(arg(0), axis as usize, start as usize, len as usize)
        }
        Op::Gather => index::gather(arg(0), arg(1)).map_err(bad_id(arg(0).shape[0]))?,
        Op::ScatterAdd(v) => {
            index::scatter_add(arg(0), arg(1), v as usize).map_err(bad_id(v as usize))?
        }
        Op::DropMask { keep, salt } => {
            let shape = node.shape.concrete(batch);
            crate::graph::dropout::mask(arg(0).data[0], keep.get(), salt, shape)
        }
        Op::Conv(w) => window::conv(arg(0), arg(1), &w, node.shape.concrete(batch)),
        Op::ConvGradInput(w) => {
            window::conv_grad_input(arg(0), arg(1), &w, node.shape.concrete(batch))
        }
        Op::ConvGradKernel(w) => {
            window::conv_grad_kernel(arg(0), arg(1), &w, node.shape.concrete(batch))
        }
        Op::PoolPick(w) => window::pool_pick(arg(0), arg(1), &w, node.shape.concrete(batch)),
        Op::PoolRoute(w) => window::pool_route(arg(0), arg(1), &w),
    })
}
