//! Numerically stable rewrites: textbook formulas that overflow or lose precision in floating
//! point become the fused primitives that compute the same real function stably
//! (`LogSoftmax`, `Log1p`, `Softplus`, `SoftmaxCrossEntropy`), each a named rule in
//! [`STABILIZE`].
//!
//! The cross-entropy rule matches what `lower` emits for `cross_entropy(z, y)`:
//! `−reshape_[N](sum_{axis 1}(onehot(y) · log softmax(z)))` (after `log-softmax` has fired on
//! the inner node, in the same pass since operands are rewritten first).
//!
//! Does not touch gradients: nodes the backward pass still reads (e.g. `softmax(z)` itself)
//! stay live; it does not rewrite `exp(log x)` (not `x` for `x ≤ 0`).

use super::{arg_if, binary_args, is_const, unary_arg, Rule};
use crate::graph::{Axes, BinaryOp, Graph, Node, NodeId, Op, Shape, UnaryOp};

/// The stabilizing rules. `σ` is the sigmoid, `onehot(y)` has one row per class index of `y`.
pub const STABILIZE: &[Rule] = &[
    Rule { name: "log-softmax", doc: "log(softmax(x)) → log_softmax(x)", apply: log_softmax },
    Rule { name: "log-exp", doc: "log(eˣ) → x", apply: log_exp },
    Rule {
        name: "softplus",
        doc: "log(1 + eˣ), log(eˣ + 1), log1p(eˣ) → softplus(x)",
        apply: softplus,
    },
    Rule { name: "log1p", doc: "log(1 + x), log(x + 1) → log1p(x)", apply: log1p },
    Rule { name: "log-sigmoid", doc: "log(σ(x)) → −softplus(−x)", apply: log_sigmoid },
    Rule {
        name: "log-one-minus-sigmoid",
        doc: "log(1 − σ(x)) → −softplus(x)",
        apply: log_one_minus_sigmoid,
    },
    Rule {
        name: "softmax-cross-entropy",
        doc: "−reshape_[N](Σ_axis1 onehot(y)·log_softmax(z)) → softmax_cross_entropy(z, y)",
        apply: cross_entropy,
    },
    Rule {
        name: "softmax-cross-entropy-neg",
        doc: "reshape_[N](Σ_axis1 onehot(y)·(−log_softmax(z))) → softmax_cross_entropy(z, y)",
        apply: cross_entropy_neg,
    },
];

/// The operand of a node `log(x)`.
fn log_of(n: &Node, a: &[NodeId]) -> Option<NodeId> {
    (n.op == Op::Unary(UnaryOp::Log)).then(|| a[0])
}

/// `x` if `id` is `1 + x` or `x + 1`.
fn one_plus(g: &Graph, id: NodeId) -> Option<NodeId> {
    let (p, q) = binary_args(g, id, BinaryOp::Add)?;
    if is_const(g, p, 1.0) {
        Some(q)
    } else {
        is_const(g, q, 1.0).then_some(p)
    }
}

fn log_softmax(g: &mut Graph, n: &Node, a: &[NodeId]) -> Option<NodeId> {
    let x = arg_if(g, log_of(n, a)?, Op::Softmax)?;
    Some(g.add(Op::LogSoftmax, vec![x], n.shape.clone()))
}

fn log_exp(g: &mut Graph, n: &Node, a: &[NodeId]) -> Option<NodeId> {
    unary_arg(g, log_of(n, a)?, UnaryOp::Exp)
}

fn softplus(g: &mut Graph, n: &Node, a: &[NodeId]) -> Option<NodeId> {
    let e = match n.op {
        Op::Unary(UnaryOp::Log1p) => a[0],
        Op::Unary(UnaryOp::Log) => one_plus(g, a[0])?,
        _ => return None,
    };
    let x = unary_arg(g, e, UnaryOp::Exp)?;
    Some(g.unary(UnaryOp::Softplus, x))
}

fn log1p(g: &mut Graph, n: &Node, a: &[NodeId]) -> Option<NodeId> {
    let x = one_plus(g, log_of(n, a)?)?;
    Some(g.unary(UnaryOp::Log1p, x))
}

fn log_sigmoid(g: &mut Graph, n: &Node, a: &[NodeId]) -> Option<NodeId> {
    let x = unary_arg(g, log_of(n, a)?, UnaryOp::Sigmoid)?;
    let m = g.neg(x);
    let s = g.unary(UnaryOp::Softplus, m);
    Some(g.neg(s))
}

fn log_one_minus_sigmoid(g: &mut Graph, n: &Node, a: &[NodeId]) -> Option<NodeId> {
    let (one, s) = binary_args(g, log_of(n, a)?, BinaryOp::Sub)?;
    if !is_const(g, one, 1.0) {
        return None;
    }
    let x = unary_arg(g, s, UnaryOp::Sigmoid)?;
    let sp = g.unary(UnaryOp::Softplus, x);
    Some(g.neg(sp))
}

/// `(z, y)` if `rows` is `sum_{axis 1}(onehot(y) · t)` with `t` = `log_softmax(z)`, or
/// `t` = `−log_softmax(z)` when `negated`, the product in either order, and `shape` is `[N]`
/// (the shape of the reshape applied to `rows`).
fn picked_log_prob(
    g: &Graph,
    rows: NodeId,
    shape: &Shape,
    negated: bool,
) -> Option<(NodeId, NodeId)> {
    let prod = arg_if(g, rows, Op::ReduceSum(Axes::of(&[1])))?;
    let (p, q) = binary_args(g, prod, BinaryOp::Mul)?;
    let onehot_arg = |h: NodeId| match g.node(h).op {
        Op::OneHot(_) => Some(g.node(h).args[0]),
        _ => None,
    };
    let log_prob = |t: NodeId| {
        let t = if negated { unary_arg(g, t, UnaryOp::Neg)? } else { t };
        arg_if(g, t, Op::LogSoftmax)
    };
    let (z, y) = match (onehot_arg(p), log_prob(q)) {
        (Some(y), Some(z)) => (z, y),
        _ => (log_prob(p)?, onehot_arg(q)?),
    };
    // onehot(y) [N, C] has log_softmax(z)'s shape, so z is [N, C] and y is [N].
    (shape == &Shape(vec![g.shape(z).dims()[0]])).then_some((z, y))
}

fn fused(g: &mut Graph, n: &Node, (z, y): (NodeId, NodeId)) -> Option<NodeId> {
    Some(g.add(Op::SoftmaxCrossEntropy, vec![z, y], n.shape.clone()))
}

fn cross_entropy(g: &mut Graph, n: &Node, a: &[NodeId]) -> Option<NodeId> {
    if n.op != Op::Unary(UnaryOp::Neg) {
        return None;
    }
    let rows = arg_if(g, a[0], Op::Reshape)?;
    let zy = picked_log_prob(g, rows, &n.shape, false)?;
    fused(g, n, zy)
}

fn cross_entropy_neg(g: &mut Graph, n: &Node, a: &[NodeId]) -> Option<NodeId> {
    if n.op != Op::Reshape {
        return None;
    }
    let zy = picked_log_prob(g, a[0], &n.shape, true)?;
    fused(g, n, zy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Dim, InputKind, Reduce};

    fn x(g: &mut Graph) -> NodeId {
        g.add_input("x", Shape(vec![Dim::Batch, Dim::Fixed(3)]), InputKind::Features)
    }

    fn run(mut g: Graph, out: NodeId) -> (Graph, Node) {
        g.add_output("out", out);
        let s = crate::passes::stabilize(&g);
        let n = s.node(s.outputs[0].node).clone();
        (s, n)
    }

    /// The ops from the output down the first-operand chain.
    fn chain(g: &Graph, mut n: Node) -> Vec<Op> {
        let mut ops = vec![n.op];
        while let Some(&a) = n.args.first() {
            n = g.node(a).clone();
            ops.push(n.op);
        }
        ops
    }

    fn u(op: UnaryOp) -> Op {
        Op::Unary(op)
    }

    #[test]
    fn log_of_softmax() {
        let mut g = Graph::new();
        let xi = x(&mut g);
        let s = g.add(Op::Softmax, vec![xi], g.shape(xi).clone());
        let l = g.unary(UnaryOp::Log, s);
        let (s, n) = run(g, l);
        assert_eq!(chain(&s, n), [Op::LogSoftmax, Op::Input(0)]);
    }

    #[test]
    fn log_of_exp() {
        let mut g = Graph::new();
        let xi = x(&mut g);
        let e = g.unary(UnaryOp::Exp, xi);
        let l = g.unary(UnaryOp::Log, e);
        let (s, n) = run(g, l);
        assert_eq!(chain(&s, n), [Op::Input(0)]);
    }

    #[test]
    fn log_of_one_plus() {
        for (first, exp) in [(true, false), (false, false), (true, true), (false, true)] {
            let mut g = Graph::new();
            let xi = x(&mut g);
            let v = if exp { g.unary(UnaryOp::Exp, xi) } else { xi };
            let one = g.constant(1.0, g.shape(xi).clone());
            let s = if first { g.add2(one, v) } else { g.add2(v, one) };
            let l = g.unary(UnaryOp::Log, s);
            let (s, n) = run(g, l);
            let want = if exp { u(UnaryOp::Softplus) } else { u(UnaryOp::Log1p) };
            assert_eq!(chain(&s, n), [want, Op::Input(0)]);
        }
    }

    #[test]
    fn log1p_of_exp() {
        let mut g = Graph::new();
        let xi = x(&mut g);
        let e = g.unary(UnaryOp::Exp, xi);
        let l = g.unary(UnaryOp::Log1p, e);
        let (s, n) = run(g, l);
        assert_eq!(chain(&s, n), [u(UnaryOp::Softplus), Op::Input(0)]);
    }

    #[test]
    fn log_of_sigmoid_and_its_complement() {
        let mut g = Graph::new();
        let xi = x(&mut g);
        let s = g.unary(UnaryOp::Sigmoid, xi);
        let l = g.unary(UnaryOp::Log, s);
        let (s, n) = run(g, l);
        let want = [u(UnaryOp::Neg), u(UnaryOp::Softplus), u(UnaryOp::Neg), Op::Input(0)];
        assert_eq!(chain(&s, n), want);

        let mut g = Graph::new();
        let xi = x(&mut g);
        let s = g.unary(UnaryOp::Sigmoid, xi);
        let one = g.constant(1.0, g.shape(xi).clone());
        let c = g.sub(one, s);
        let l = g.unary(UnaryOp::Log, c);
        let (s, n) = run(g, l);
        assert_eq!(chain(&s, n), [u(UnaryOp::Neg), u(UnaryOp::Softplus), Op::Input(0)]);
    }

    #[test]
    fn log_of_other_sums_is_kept() {
        let mut g = Graph::new();
        let xi = x(&mut g);
        let two = g.constant(2.0, g.shape(xi).clone());
        let s = g.add2(xi, two);
        let l = g.unary(UnaryOp::Log, s);
        let (s, n) = run(g, l);
        assert_eq!(chain(&s, n)[..2], [u(UnaryOp::Log), Op::Binary(BinaryOp::Add)]);
    }

    /// The per-row negative log-likelihood as `lower` writes it (with `neg_inside`, the
    /// negation applied to the log-probabilities instead), product operands in either order.
    fn naive_rows(g: &mut Graph, neg_inside: bool, onehot_first: bool) -> NodeId {
        let z = x(g);
        let y = g.add_input("y", Shape(vec![Dim::Batch]), InputKind::Classes(3));
        let zs = g.shape(z).clone();
        let oh = g.add(Op::OneHot(3), vec![y], zs.clone());
        let sm = g.add(Op::Softmax, vec![z], zs);
        let mut ls = g.unary(UnaryOp::Log, sm);
        if neg_inside {
            ls = g.neg(ls);
        }
        let p = if onehot_first { g.mul(oh, ls) } else { g.mul(ls, oh) };
        let r = g.reduce(Reduce::Sum, p, Axes::of(&[1]));
        let r = g.reshape(r, &Shape(vec![Dim::Batch]));
        if neg_inside {
            r
        } else {
            g.neg(r)
        }
    }

    #[test]
    fn cross_entropy_fuses() {
        for (neg_inside, onehot_first) in
            [(false, true), (false, false), (true, true), (true, false)]
        {
            let mut g = Graph::new();
            let rows = naive_rows(&mut g, neg_inside, onehot_first);
            let (s, n) = run(g, rows);
            assert_eq!(n.op, Op::SoftmaxCrossEntropy, "{neg_inside} {onehot_first}");
            let args: Vec<Op> = n.args.iter().map(|&a| s.node(a).op).collect();
            assert_eq!(args, [Op::Input(0), Op::Input(1)]);
            assert_eq!(s.len(), 3, "everything else is dead");
        }
    }

    #[test]
    fn cross_entropy_needs_the_class_axis() {
        // Summing over the batch axis is not a cross-entropy.
        let mut g = Graph::new();
        let z = x(&mut g);
        let y = g.add_input("y", Shape(vec![Dim::Batch]), InputKind::Classes(3));
        let zs = g.shape(z).clone();
        let oh = g.add(Op::OneHot(3), vec![y], zs.clone());
        let ls = g.add(Op::LogSoftmax, vec![z], zs);
        let p = g.mul(oh, ls);
        let r = g.reduce(Reduce::Sum, p, Axes::of(&[0]));
        let r = g.reshape(r, &Shape::fixed(&[3]));
        let m = g.neg(r);
        let (_, n) = run(g, m);
        assert_eq!(n.op, u(UnaryOp::Neg));
    }
}
