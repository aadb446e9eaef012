//! Symbolic reverse-mode automatic differentiation, graph to graph.
//!
//! [`grad`] appends to a graph the nodes computing the gradient of a loss node with respect
//! to chosen nodes; [`backward`] is the pipeline's `grad` stage: the forward graph plus one
//! output `grad.<param name>` per parameter, of role `Role::Grad(i)` ([`GradGraph`]).
//!
//! The walk: first the set of nodes on a path from a `wrt` node to the loss ("needs a
//! gradient": it depends differentiably on a `wrt` node, and the loss depends on it), so no
//! gradient is built for data inputs, labels, constants or anything past a piecewise-constant
//! op; then nodes in reverse index order from the loss (index order is topological, so every
//! user of a node is visited before it). Each node's gradient is the sum of its users'
//! contributions (fan-out adds), and its operands' contributions come from the node's VJP
//! rule in [`rules`]. Invariants: every gradient node has the shape of the node it
//! differentiates, and every node created here carries `Meta::grad_of` = the forward node
//! whose gradient it computes (with that node's span and note), so the printed backward
//! graph says where each line comes from.

mod rules;

use std::ops::Deref;

use crate::graph::{Graph, Meta, NodeId, Role};

/// The `grad` stage's graph: the forward graph (its loss, metrics and probes) with one
/// output of role [`Role::Grad`]`(i)` per parameter `i`, in parameter order, after them.
#[derive(Clone, Debug)]
pub struct GradGraph(Graph);

impl GradGraph {
    /// The gradient of the loss with respect to parameter `param`.
    pub fn grad(&self, param: u32) -> NodeId {
        let k = self.0.output_of(Role::Grad(param)).expect("a gradient per parameter");
        self.0.outputs[k].node
    }
    /// Adds the `--log-layers` probes of every parameter's gradient and weight norm
    /// (`probes::add_param_norms`).
    pub fn add_param_norms(&mut self) {
        crate::probes::add_param_norms(&mut self.0);
    }
    pub fn graph(&self) -> &Graph {
        &self.0
    }
}

impl Deref for GradGraph {
    type Target = Graph;
    fn deref(&self) -> &Graph {
        &self.0
    }
}

/// Appends to `g` the nodes computing d(loss)/d(wrt[i]) for a scalar `loss` node (`[]`
/// shape); returns them in order. Nodes the loss does not depend on get a zero constant of
/// their shape. (For a non-scalar `loss` the result is the gradient of its sum.)
pub fn grad(g: &mut Graph, loss: NodeId, wrt: &[NodeId]) -> Vec<NodeId> {
    let saved = std::mem::take(&mut g.origin);
    let on_path = on_path(g, loss, wrt);
    let n = loss.index() + 1;
    let mut pending: Vec<Vec<NodeId>> = vec![Vec::new(); n];
    let mut total: Vec<Option<NodeId>> = vec![None; n];

    if on_path[loss.index()] {
        // The seed: ∂loss/∂loss = 1.
        set_origin(g, loss);
        pending[loss.index()].push(g.constant(1.0, g.shape(loss).clone()));
    }
    for i in (0..n).rev() {
        if !on_path[i] || pending[i].is_empty() {
            continue;
        }
        let v = NodeId(i as u32);
        set_origin(g, v);
        let gv = sum(g, &pending[i]);
        total[i] = Some(gv);
        let args = g.node(v).args.clone();
        let wants: Vec<bool> = args.iter().map(|a| on_path[a.index()]).collect();
        if !wants.contains(&true) {
            continue;
        }
        let contributions = rules::vjp(g, v, gv, &wants);
        for ((a, d), want) in args.iter().zip(contributions).zip(wants) {
            if let (Some(d), true) = (d, want) {
                debug_assert_eq!(g.shape(d), g.shape(*a), "autodiff: VJP of {:?}", g.node(v).op);
                pending[a.index()].push(d);
            }
        }
    }

    let grads = wrt
        .iter()
        .map(|&p| match total.get(p.index()).copied().flatten() {
            Some(d) => d,
            None => {
                set_origin(g, p);
                g.constant(0.0, g.shape(p).clone())
            }
        })
        .collect();
    g.origin = saved;
    grads
}

/// The `grad` stage: a copy of the forward graph with, for every parameter `i` (in
/// `graph.params` order), a new output `grad.<param name>` of role `Role::Grad(i)` after the
/// existing outputs. The forward graph's loss is its output of role `Role::Loss` (lowering
/// always creates one).
pub fn backward(forward: &Graph) -> GradGraph {
    let mut g = forward.clone();
    let k = g.output_of(Role::Loss).expect("autodiff: the forward graph has no loss output");
    let loss = g.outputs[k].node;
    g.origin = Meta::default();
    let params: Vec<NodeId> = (0..g.params.len() as u32).map(|i| g.param(i)).collect();
    let grads = grad(&mut g, loss, &params);
    for (i, d) in grads.into_iter().enumerate() {
        let name = format!("grad.{}", g.params[i].name);
        g.add_output_as(Role::Grad(i as u32), name, d);
    }
    g.origin = forward.origin.clone();
    GradGraph(g)
}

/// Nodes up to `loss` that depend differentiably on a `wrt` node and on which `loss`
/// depends. A piecewise-constant op (comparison, step, one-hot, ...) cuts the path.
fn on_path(g: &Graph, loss: NodeId, wrt: &[NodeId]) -> Vec<bool> {
    let n = loss.index() + 1;
    let mut needs = vec![false; n];
    for w in wrt.iter().filter(|w| w.index() < n) {
        needs[w.index()] = true;
    }
    for (id, node) in g.nodes().take(n) {
        if !node.op.is_piecewise_constant() && node.args.iter().any(|a| needs[a.index()]) {
            needs[id.index()] = true;
        }
    }
    let mut reaches = vec![false; n];
    reaches[loss.index()] = true;
    for i in (0..n).rev() {
        if reaches[i] {
            for a in &g.node(NodeId(i as u32)).args {
                reaches[a.index()] = true;
            }
        }
    }
    needs.iter().zip(reaches).map(|(&a, b)| a && b).collect()
}

/// Backward nodes from now on differentiate `v`: they carry its span and note.
fn set_origin(g: &mut Graph, v: NodeId) {
    let m = g.meta(v);
    g.origin = Meta { span: m.span, grad_of: Some(v), note: m.note.clone() };
}

/// `d₀ + d₁ + …`, left to right (the order contributions arrived in).
fn sum(g: &mut Graph, terms: &[NodeId]) -> NodeId {
    terms[1..].iter().fold(terms[0], |acc, &d| g.add2(acc, d))
}
