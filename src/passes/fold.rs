//! Constant folding: operations whose operands are `Const` nodes (tensors filled with one
//! value) become `Const` nodes of the result's shape, evaluated in `f64` by the ops' one
//! scalar definition (`graph::scalar`), as the interpreter evaluates them.
//!
//! Does not fold runtime scalars (`lr`, `step`: never constants), reductions whose count
//! involves the batch size `B`, or ops whose result is not one value everywhere (`OneHot`,
//! `SoftmaxCrossEntropy`).

use super::{constant, Rule};
use crate::graph::{Dim, Graph, Node, NodeId, Op};

/// The folding rules; `c`, `c1`, `c2` are constants, `A` the reduced axes.
pub const FOLD: &[Rule] = &[
    Rule { name: "fold-unary", doc: "f(c) → f(c)", apply: unary_const },
    Rule { name: "fold-binary", doc: "c1 ∘ c2 → (c1 ∘ c2)", apply: binary_const },
    Rule {
        name: "fold-select", doc: "select(c, a, b) → a if c ≠ 0 else b", apply: select_const
    },
    Rule {
        name: "fold-layout", doc: "broadcast(c), reshape(c), transpose(c) → c", apply: layout
    },
    Rule {
        name: "fold-reduce",
        doc: "sum_A(c) → c·Π_A n (fixed n), mean_A(c) → c, max_A(c) → c",
        apply: reduce,
    },
    Rule {
        name: "fold-softmax", doc: "softmax(c) → 1/C, log_softmax(c) → −ln C", apply: softmax
    },
    Rule { name: "fold-matmul", doc: "c1 @ c2 → c1·c2·k (fixed inner size k)", apply: matmul },
    Rule { name: "fold-argmax", doc: "argmax(c) → 0 (first of equal elements)", apply: argmax },
];

fn konst(g: &mut Graph, node: &Node, v: f64) -> Option<NodeId> {
    Some(g.constant(v, node.shape.clone()))
}

fn unary_const(g: &mut Graph, node: &Node, args: &[NodeId]) -> Option<NodeId> {
    let Op::Unary(op) = node.op else { return None };
    let c = constant(g, args[0])?;
    konst(g, node, op.apply(c))
}

fn binary_const(g: &mut Graph, node: &Node, args: &[NodeId]) -> Option<NodeId> {
    let Op::Binary(op) = node.op else { return None };
    let (a, b) = (constant(g, args[0])?, constant(g, args[1])?);
    konst(g, node, op.apply(a, b))
}

fn select_const(g: &mut Graph, node: &Node, args: &[NodeId]) -> Option<NodeId> {
    if node.op != Op::Select {
        return None;
    }
    let c = constant(g, args[0])?;
    Some(if c != 0.0 { args[1] } else { args[2] })
}

fn layout(g: &mut Graph, node: &Node, args: &[NodeId]) -> Option<NodeId> {
    if !matches!(node.op, Op::Broadcast | Op::Reshape | Op::Transpose) {
        return None;
    }
    let c = constant(g, args[0])?;
    konst(g, node, c)
}

fn reduce(g: &mut Graph, node: &Node, args: &[NodeId]) -> Option<NodeId> {
    let (Op::ReduceSum(_) | Op::ReduceMean(_) | Op::ReduceMax(_)) = node.op else {
        return None;
    };
    let c = constant(g, args[0])?;
    match node.op {
        Op::ReduceSum(axes) => {
            let dims = g.shape(args[0]).dims();
            let mut count = 1.0;
            for a in axes.iter() {
                let Dim::Fixed(n) = dims[a] else { return None };
                count *= n as f64;
            }
            konst(g, node, c * count)
        }
        _ => konst(g, node, c),
    }
}

fn softmax(g: &mut Graph, node: &Node, args: &[NodeId]) -> Option<NodeId> {
    if !matches!(node.op, Op::Softmax | Op::LogSoftmax) {
        return None;
    }
    let c = constant(g, args[0])?;
    let Some(&Dim::Fixed(n)) = node.shape.dims().last() else { return None };
    if !c.is_finite() {
        return None;
    }
    let n = n as f64;
    konst(g, node, if node.op == Op::Softmax { 1.0 / n } else { -n.ln() })
}

fn matmul(g: &mut Graph, node: &Node, args: &[NodeId]) -> Option<NodeId> {
    let Op::MatMul { ta, .. } = node.op else { return None };
    let (a, b) = (constant(g, args[0])?, constant(g, args[1])?);
    let dims = g.shape(args[0]).dims();
    let Dim::Fixed(k) = (if ta { dims[0] } else { dims[1] }) else { return None };
    konst(g, node, a * b * k as f64)
}

fn argmax(g: &mut Graph, node: &Node, args: &[NodeId]) -> Option<NodeId> {
    if node.op != Op::ArgMax {
        return None;
    }
    constant(g, args[0])?;
    konst(g, node, 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Axes, BinaryOp, InputKind, Reduce, ScalarArg, Shape, UnaryOp};
    use crate::passes::fold as run;

    fn only_output(g: &Graph) -> Node {
        g.node(g.outputs[0].node).clone()
    }

    fn folds_to(g: &mut Graph, out: NodeId, v: f64) {
        g.add_output("y", out);
        let f = run(g);
        let n = only_output(&f);
        assert_eq!(n.op, Op::Const(crate::graph::F64::new(v)), "got {:?}", n.op);
        assert_eq!(n.shape, *g.shape(out));
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn unary_and_binary_of_constants() {
        let mut g = Graph::new();
        let s = Shape::fixed(&[2, 2]);
        let a = g.constant(4.0, s.clone());
        let b = g.unary(UnaryOp::Sqrt, a);
        let c = g.constant(3.0, s.clone());
        let d = g.sub(b, c);
        let e = g.neg(d);
        folds_to(&mut g, e, 1.0);
    }

    #[test]
    fn chains_fold_in_one_pass() {
        let mut g = Graph::new();
        let a = g.constant(0.0, Shape::fixed(&[3]));
        let b = g.unary(UnaryOp::Exp, a);
        let c = g.unary(UnaryOp::Log1p, b);
        let d = g.unary(UnaryOp::Softplus, a);
        let e = g.sub(c, d);
        folds_to(&mut g, e, 0.0);
    }

    #[test]
    fn select_on_constant_condition_picks_a_branch() {
        let mut g = Graph::new();
        let s = Shape::fixed(&[2]);
        let x = g.add_input("x", s.clone(), InputKind::Features);
        let y = g.add_param("p", s.clone());
        let one = g.constant(1.0, s.clone());
        let two = g.constant(2.0, s.clone());
        let c = g.binary(BinaryOp::Gt, one, two);
        let r = g.select(c, x, y);
        g.add_output("r", r);
        let f = run(&g);
        assert_eq!(only_output(&f).op, Op::Param(0));
    }

    #[test]
    fn layout_ops_of_constants() {
        let mut g = Graph::new();
        let a = g.constant(7.0, Shape::fixed(&[3]));
        let b = g.broadcast(a, &Shape(vec![Dim::Batch, Dim::Fixed(3)]));
        let c = g.transpose(b);
        let d = g.reshape(c, &Shape(vec![Dim::Fixed(3), Dim::Batch, Dim::Fixed(1)]));
        folds_to(&mut g, d, 7.0);
    }

    #[test]
    fn sum_of_constant_counts_fixed_axes_only() {
        let mut g = Graph::new();
        let s = Shape(vec![Dim::Batch, Dim::Fixed(3), Dim::Fixed(4)]);
        let a = g.constant(0.5, s.clone());
        let fixed = g.reduce(Reduce::Sum, a, Axes::of(&[1, 2]));
        let batch = g.reduce(Reduce::Sum, a, Axes::of(&[0, 2]));
        let mean = g.reduce(Reduce::Mean, a, Axes::of(&[0, 1]));
        let max = g.reduce(Reduce::Max, a, Axes::all(3));
        g.add_output("fixed", fixed);
        g.add_output("batch", batch);
        g.add_output("mean", mean);
        g.add_output("max", max);
        let f = run(&g);
        let op = |name: &str| f.node(f.output(name).unwrap()).op;
        assert_eq!(op("fixed"), Op::Const(crate::graph::F64::new(6.0)));
        assert_eq!(op("batch"), Op::ReduceSum(Axes::of(&[0, 2])));
        assert_eq!(op("mean"), Op::Const(crate::graph::F64::new(0.5)));
        assert_eq!(op("max"), Op::Const(crate::graph::F64::new(0.5)));
    }

    #[test]
    fn softmax_matmul_argmax_of_constants() {
        let mut g = Graph::new();
        let a = g.constant(3.0, Shape::fixed(&[2, 4]));
        let sm = g.add(Op::Softmax, vec![a], Shape::fixed(&[2, 4]));
        let ls = g.add(Op::LogSoftmax, vec![a], Shape::fixed(&[2, 4]));
        let b = g.constant(0.5, Shape::fixed(&[4, 5]));
        let mm = g.matmul(a, b, false, false);
        let am = g.add(Op::ArgMax, vec![a], Shape::fixed(&[2]));
        for (name, n) in [("sm", sm), ("ls", ls), ("mm", mm), ("am", am)] {
            g.add_output(name, n);
        }
        let f = run(&g);
        let c = |name: &str| constant(&f, f.output(name).unwrap());
        assert_eq!(c("sm"), Some(0.25));
        assert_eq!(c("ls"), Some(-(4f64.ln())));
        assert_eq!(c("mm"), Some(6.0));
        assert_eq!(c("am"), Some(0.0));
    }

    #[test]
    fn runtime_scalars_and_inputs_are_not_constants() {
        let mut g = Graph::new();
        let lr = g.scalar(ScalarArg::Lr);
        let two = g.constant(2.0, Shape::scalar());
        let y = g.mul(lr, two);
        g.add_output("y", y);
        let f = run(&g);
        assert_eq!(only_output(&f).op, Op::Binary(BinaryOp::Mul));
    }
}
