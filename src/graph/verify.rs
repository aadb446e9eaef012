//! The graph verifier: checks every structural invariant of a [`Graph`] and reports all
//! violations, not just the first. Tests run it after every compiler stage; the interpreter
//! and the JIT assume a graph that passes it.
//!
//! Invariants checked:
//! - interface: names are unique within each registry; parameters and optimizer states have
//!   fixed shapes (no batch dimension);
//! - nodes: leaf indices (`input`, `param`, `state`) are in range of their registries; every
//!   operand precedes its user (index order is topological); every node satisfies its op's
//!   shape rule ([`Graph::check_rule`]); `Meta::grad_of` names an earlier node;
//! - roots: outputs have unique names and refer to existing nodes; each update refers to an
//!   existing node whose shape equals its target's, the target exists, and no target is
//!   updated twice.
//!
//! It does not check semantics (that a gradient node computes a gradient), liveness (dead
//! nodes are allowed), or interning (an identical node twice is allowed).

use std::collections::BTreeSet;

use crate::graph::print::{node_line, target_name};
use crate::graph::{Graph, Node, NodeId, Op, Target};

/// `Ok` if `g` satisfies every invariant, else one message per violation, in a
/// deterministic order (interface, nodes by id, roots).
pub fn verify(g: &Graph) -> Result<(), Vec<String>> {
    let mut errs = Vec::new();
    interface(g, &mut errs);
    for (id, node) in g.nodes() {
        if let Err(e) = check_node(g, id, node) {
            errs.push(format!("{}: {e}", node_line(g, id)));
        }
    }
    roots(g, &mut errs);
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs)
    }
}

fn interface(g: &Graph, errs: &mut Vec<String>) {
    unique("input", g.inputs.iter().map(|x| &x.name), errs);
    unique("param", g.params.iter().map(|x| &x.name), errs);
    unique("state", g.states.iter().map(|x| &x.name), errs);
    for p in g.params.iter().filter(|p| p.shape.has_batch()) {
        errs.push(format!("param `{}` has the batch dimension: {}", p.name, p.shape));
    }
    for s in g.states.iter().filter(|s| s.shape.has_batch()) {
        errs.push(format!("state `{}` has the batch dimension: {}", s.name, s.shape));
    }
}

/// Reports every name that occurs more than once, once.
fn unique<'g>(kind: &str, names: impl Iterator<Item = &'g String>, errs: &mut Vec<String>) {
    let mut seen = BTreeSet::new();
    let mut reported = BTreeSet::new();
    for n in names {
        if !seen.insert(n) && reported.insert(n) {
            errs.push(format!("two {kind}s are named `{n}`"));
        }
    }
}

/// The first violation of one node: leaf range, operand order, shape rule, provenance.
fn check_node(g: &Graph, id: NodeId, node: &Node) -> Result<(), String> {
    let (registry, len, i) = match node.op {
        Op::Input(i) => ("input", g.inputs.len(), i),
        Op::Param(i) => ("param", g.params.len(), i),
        Op::State(i) => ("state", g.states.len(), i),
        _ => ("", usize::MAX, 0),
    };
    if i as usize >= len {
        return Err(format!("{registry} #{i} does not exist (the graph has {len})"));
    }
    if let Some(a) = node.args.iter().find(|a| a.index() >= id.index()) {
        return Err(format!("operand %{} does not precede it", a.0));
    }
    g.check_rule(&node.op, &node.args, &node.shape)?;
    match g.meta(id).grad_of {
        Some(f) if f.index() >= id.index() => {
            Err(format!("grad of %{}, which is not an earlier node", f.0))
        }
        _ => Ok(()),
    }
}

fn roots(g: &Graph, errs: &mut Vec<String>) {
    let exists = |n: NodeId| n.index() < g.len();
    unique("output", g.outputs.iter().map(|o| &o.name), errs);
    for o in g.outputs.iter().filter(|o| !exists(o.node)) {
        errs.push(format!("output {} = %{}: no such node", o.name, o.node.0));
    }
    let mut targets = BTreeSet::new();
    for u in &g.updates {
        let name = target_name(g, u.target);
        let head = format!("update {name} := %{}", u.node.0);
        let target_shape = match u.target {
            Target::Param(i) => g.params.get(i as usize).map(|p| &p.shape),
            Target::State(i) => g.states.get(i as usize).map(|s| &s.shape),
        };
        if !exists(u.node) {
            errs.push(format!("{head}: no such node"));
        } else if let Some(want) = target_shape {
            if g.shape(u.node) != want {
                errs.push(format!(
                    "{head}: shape {} differs from the target's {want}",
                    g.shape(u.node)
                ));
            }
        }
        if target_shape.is_none() {
            errs.push(format!("{head}: no such target"));
        }
        if !targets.insert(u.target) {
            errs.push(format!("{head}: {name} is already updated"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{BinaryOp, Dim, InputKind, Meta, Shape, UnaryOp, Update};

    /// `x: [B,2]`, `w: [2]`, state `m: [2]`; output `s = sum(x·w)`, updates of `w` and `m`.
    fn good() -> Graph {
        let mut g = Graph::new();
        let x = g.add_input("x", Shape(vec![Dim::Batch, Dim::Fixed(2)]), InputKind::Features);
        let w = g.add_param("w", Shape::fixed(&[2]));
        let m = g.add_state("m", Shape::fixed(&[2]), 0.0);
        let wb = g.broadcast(w, &Shape(vec![Dim::Batch, Dim::Fixed(2)]));
        let xw = g.mul(x, wb);
        g.origin.grad_of = Some(xw);
        let s = g.sum_all(xw);
        g.origin = Meta::default();
        g.add_output("s", s);
        let w2 = g.neg(w);
        g.updates.push(Update { target: Target::Param(0), node: w2 });
        g.updates.push(Update { target: Target::State(0), node: m });
        g
    }

    fn errors(g: &Graph) -> Vec<String> {
        verify(g).expect_err("the graph should be rejected")
    }

    fn node(op: Op, args: &[u32], shape: Shape) -> Node {
        Node { op, args: args.iter().map(|&a| NodeId(a)).collect(), shape }
    }

    #[test]
    fn a_well_formed_graph_passes() {
        assert_eq!(verify(&good()), Ok(()));
        assert_eq!(verify(&Graph::new()), Ok(()));
    }

    #[test]
    fn operands_must_precede_their_user() {
        let mut g = good();
        let n = g.len() as u32;
        g.push_unchecked(node(Op::Unary(UnaryOp::Neg), &[n], Shape::fixed(&[2])), Meta::default());
        let id = n;
        assert_eq!(
            errors(&g),
            [format!("%{id} = neg %{id} : [2]: operand %{id} does not precede it")]
        );
    }

    #[test]
    fn shape_rules_are_checked() {
        let mut g = good();
        // %0 is x: [B,2], %1 is w: [2]: an elementwise add of different shapes.
        let add = node(Op::Binary(BinaryOp::Add), &[0, 1], Shape(vec![Dim::Batch, Dim::Fixed(2)]));
        g.push_unchecked(add, Meta::default());
        let mm = node(Op::MatMul { ta: false, tb: false }, &[0, 0], Shape::fixed(&[2, 2]));
        g.push_unchecked(mm, Meta::default());
        let wrong = node(Op::Unary(UnaryOp::Exp), &[1], Shape::fixed(&[3]));
        g.push_unchecked(wrong, Meta::default());
        let arity = node(Op::Select, &[1, 1], Shape::fixed(&[2]));
        g.push_unchecked(arity, Meta::default());
        let n = g.len() - 4;
        let want = [
            format!("%{} = add %0, %1 : [B,2]: operand shapes [B,2], [2] do not fit", n),
            format!("%{} = matmul %0, %0 : [2,2]: operand shapes [B,2], [B,2] do not fit", n + 1),
            format!("%{} = exp %1 : [3]: result shape should be [2]", n + 2),
            format!("%{} = select %1, %1 : [2]: takes 3 operands, got 2", n + 3),
        ];
        assert_eq!(errors(&g), want);
    }

    #[test]
    fn leaf_indices_must_be_in_range() {
        let mut g = good();
        g.push_unchecked(node(Op::Param(5), &[], Shape::fixed(&[2])), Meta::default());
        let n = g.len() - 1;
        assert_eq!(
            errors(&g),
            [format!("%{n} = param param#5 : [2]: param #5 does not exist (the graph has 1)")]
        );
        // A leaf whose registry entry changed shape no longer fits its rule.
        let mut g = good();
        g.inputs[0].shape = Shape(vec![Dim::Batch, Dim::Fixed(3)]);
        assert_eq!(errors(&g), ["%0 = input x : [B,2]: result shape should be [B,3]"]);
    }

    #[test]
    fn roots_must_exist_fit_and_be_unique() {
        let mut g = good();
        g.add_output("ghost", NodeId(99));
        g.add_output("s", NodeId(0));
        g.updates.push(Update { target: Target::Param(0), node: NodeId(0) });
        g.updates.push(Update { target: Target::State(7), node: NodeId(1) });
        g.updates.push(Update { target: Target::State(0), node: NodeId(98) });
        let want = [
            "two outputs are named `s`",
            "output ghost = %99: no such node",
            "update w := %0: shape [B,2] differs from the target's [2]",
            "update w := %0: w is already updated",
            "update state#7 := %1: no such target",
            "update m := %98: no such node",
            "update m := %98: m is already updated",
        ];
        assert_eq!(errors(&g), want);
    }

    #[test]
    fn grad_of_must_point_to_an_earlier_node() {
        let mut g = good();
        g.origin.grad_of = Some(NodeId(40));
        let x = NodeId(0);
        let e = g.unary(UnaryOp::Exp, x);
        assert_eq!(
            errors(&g),
            [format!("%{} = exp %0 : [B,2]: grad of %40, which is not an earlier node", e.0)]
        );
    }

    #[test]
    fn interface_names_are_unique_and_params_fixed() {
        let mut g = good();
        g.add_param("w", Shape::fixed(&[2]));
        g.add_state("m2", Shape(vec![Dim::Batch]), 0.0);
        let want = ["two params are named `w`", "state `m2` has the batch dimension: [B]"];
        assert_eq!(errors(&g), want);
    }
}
