//! Algebraic simplification: identities of elementwise arithmetic and of layout ops, each a
//! named rule in [`SIMPLIFY`]. Every rule is exact in real arithmetic; `mul-zero` also assumes
//! its other operand is finite (`∞·0` is NaN), as every ML compiler does.
//!
//! Does not fold constants (see `fold`), reassociate sums (not exact, and no rule here may
//! change which elements are added), rewrite `0/x` (NaN at `x = 0`), `x − x` (NaN for a
//! non-finite `x`: the training step's finite checks are `sum(θ − θ)`, see `update`) or
//! `log`/`exp` pairs (domain and overflow: see `stabilize`).

mod unit_matmul;

use super::{arg_if, binary_args, constant, is_const, unary_arg, Rule};
use crate::graph::{broadcastable, BinaryOp, Dim, Graph, Node, NodeId, Op, UnaryOp};
use unit_matmul::matmul_unit;

/// The simplification rules; `c`, `c1`, `c2` are constants, `A` reduced axes.
pub const SIMPLIFY: &[Rule] = &[
    Rule { name: "add-zero", doc: "x + 0 → x", apply: add_zero },
    Rule { name: "zero-add", doc: "0 + x → x", apply: zero_add },
    Rule { name: "sub-zero", doc: "x − 0 → x", apply: sub_zero },
    Rule { name: "zero-sub", doc: "0 − x → −x", apply: zero_sub },
    Rule { name: "mul-one", doc: "x·1 → x, 1·x → x", apply: mul_one },
    Rule { name: "div-one", doc: "x/1 → x", apply: div_one },
    Rule {
        name: "div-pow2", doc: "x/2ᵏ → x·2⁻ᵏ (both exact powers of two)", apply: div_pow2
    },
    Rule { name: "mul-neg-one", doc: "x·(−1) → −x, (−1)·x → −x", apply: mul_neg_one },
    Rule { name: "mul-zero", doc: "x·0 → 0, 0·x → 0 (x finite)", apply: mul_zero },
    Rule { name: "neg-neg", doc: "−(−x) → x", apply: neg_neg },
    Rule { name: "sub-neg", doc: "x − (−y) → x + y", apply: sub_neg },
    Rule { name: "add-neg", doc: "x + (−y) → x − y", apply: add_neg },
    Rule { name: "neg-add", doc: "(−x) + y → y − x", apply: neg_add },
    Rule {
        name: "mul-const-const", doc: "(x·c1)·c2 → x·(c1·c2), any order", apply: mul_consts
    },
    Rule {
        name: "add-const-const",
        doc: "(x + c1) + c2 → x + (c1 + c2), any order",
        apply: add_consts,
    },
    Rule { name: "select-same", doc: "select(c, a, a) → a", apply: select_same },
    Rule { name: "minmax-self", doc: "max(x, x) → x, min(x, x) → x", apply: minmax_self },
    Rule { name: "reshape-id", doc: "reshape_s(x) → x when x has shape s", apply: reshape_id },
    Rule {
        name: "reshape-reshape",
        doc: "reshape_s(reshape_t(x)) → reshape_s(x)",
        apply: reshape_reshape,
    },
    Rule {
        name: "broadcast-id",
        doc: "broadcast_s(x) → x when x has shape s",
        apply: broadcast_id,
    },
    Rule {
        name: "broadcast-broadcast",
        doc: "broadcast_s(broadcast_t(x)) → broadcast_s(x)",
        apply: broadcast_broadcast,
    },
    Rule { name: "transpose-transpose", doc: "(xᵀ)ᵀ → x", apply: transpose_transpose },
    Rule {
        name: "reduce-unit",
        doc: "reduce_A(x) → x when every axis in A has size 1",
        apply: reduce_unit,
    },
    Rule {
        name: "reduce-broadcast",
        doc: "over axes A the broadcast stretched: sum_A(bc x) → bc(x)·Π_A n (fixed n), \
              mean_A(bc x) → bc(x), max_A(bc x) → bc(x)",
        apply: reduce_broadcast,
    },
    Rule {
        name: "matmul-unit",
        doc: "op(A)·op(B) with m, n or k = 1 → broadcast product, summed over k (see unit_matmul)",
        apply: matmul_unit,
    },
];

fn is_binary(node: &Node, op: BinaryOp) -> bool {
    node.op == Op::Binary(op)
}

fn add_zero(g: &mut Graph, n: &Node, a: &[NodeId]) -> Option<NodeId> {
    (is_binary(n, BinaryOp::Add) && is_const(g, a[1], 0.0)).then(|| a[0])
}

fn zero_add(g: &mut Graph, n: &Node, a: &[NodeId]) -> Option<NodeId> {
    (is_binary(n, BinaryOp::Add) && is_const(g, a[0], 0.0)).then(|| a[1])
}

fn sub_zero(g: &mut Graph, n: &Node, a: &[NodeId]) -> Option<NodeId> {
    (is_binary(n, BinaryOp::Sub) && is_const(g, a[1], 0.0)).then(|| a[0])
}

fn zero_sub(g: &mut Graph, n: &Node, a: &[NodeId]) -> Option<NodeId> {
    (is_binary(n, BinaryOp::Sub) && is_const(g, a[0], 0.0)).then(|| g.neg(a[1]))
}

fn mul_one(g: &mut Graph, n: &Node, a: &[NodeId]) -> Option<NodeId> {
    if !is_binary(n, BinaryOp::Mul) {
        return None;
    }
    if is_const(g, a[1], 1.0) {
        Some(a[0])
    } else {
        is_const(g, a[0], 1.0).then(|| a[1])
    }
}

fn div_one(g: &mut Graph, n: &Node, a: &[NodeId]) -> Option<NodeId> {
    (is_binary(n, BinaryOp::Div) && is_const(g, a[1], 1.0)).then(|| a[0])
}

fn div_pow2(g: &mut Graph, n: &Node, a: &[NodeId]) -> Option<NodeId> {
    if !is_binary(n, BinaryOp::Div) {
        return None;
    }
    let c = constant(g, a[1])?;
    let r = 1.0 / c;
    let mantissa = (1u64 << 52) - 1;
    let exact = |v: f64| v.is_normal() && v.to_bits() & mantissa == 0;
    (c != 1.0 && exact(c) && exact(r)).then(|| g.scale(a[0], r))
}

fn mul_neg_one(g: &mut Graph, n: &Node, a: &[NodeId]) -> Option<NodeId> {
    if !is_binary(n, BinaryOp::Mul) {
        return None;
    }
    if is_const(g, a[1], -1.0) {
        Some(g.neg(a[0]))
    } else {
        is_const(g, a[0], -1.0).then(|| g.neg(a[1]))
    }
}

fn mul_zero(g: &mut Graph, n: &Node, a: &[NodeId]) -> Option<NodeId> {
    if !is_binary(n, BinaryOp::Mul) {
        return None;
    }
    a.iter().find(|&&x| is_const(g, x, 0.0)).copied()
}

fn neg_neg(g: &mut Graph, n: &Node, a: &[NodeId]) -> Option<NodeId> {
    if n.op != Op::Unary(UnaryOp::Neg) {
        return None;
    }
    unary_arg(g, a[0], UnaryOp::Neg)
}

fn sub_neg(g: &mut Graph, n: &Node, a: &[NodeId]) -> Option<NodeId> {
    if !is_binary(n, BinaryOp::Sub) {
        return None;
    }
    let y = unary_arg(g, a[1], UnaryOp::Neg)?;
    Some(g.add2(a[0], y))
}

fn add_neg(g: &mut Graph, n: &Node, a: &[NodeId]) -> Option<NodeId> {
    if !is_binary(n, BinaryOp::Add) {
        return None;
    }
    let y = unary_arg(g, a[1], UnaryOp::Neg)?;
    Some(g.sub(a[0], y))
}

fn neg_add(g: &mut Graph, n: &Node, a: &[NodeId]) -> Option<NodeId> {
    if !is_binary(n, BinaryOp::Add) {
        return None;
    }
    let x = unary_arg(g, a[0], UnaryOp::Neg)?;
    Some(g.sub(a[1], x))
}

/// For `op(p, q)` with one constant operand: `(other operand, constant)`.
fn split_const(g: &Graph, p: NodeId, q: NodeId) -> Option<(NodeId, f64)> {
    match (constant(g, p), constant(g, q)) {
        (None, Some(c)) => Some((p, c)),
        (Some(c), None) => Some((q, c)),
        _ => None,
    }
}

/// `(x ∘ c1) ∘ c2 → x ∘ (c1 ∘ c2)` for an associative, commutative `∘`.
fn reassociate(g: &mut Graph, n: &Node, a: &[NodeId], op: BinaryOp) -> Option<NodeId> {
    if !is_binary(n, op) {
        return None;
    }
    let (inner, c2) = split_const(g, a[0], a[1])?;
    let (p, q) = binary_args(g, inner, op)?;
    let (x, c1) = split_const(g, p, q)?;
    let c = g.constant(op.apply(c1, c2), n.shape.clone());
    Some(g.binary(op, x, c))
}

fn mul_consts(g: &mut Graph, n: &Node, a: &[NodeId]) -> Option<NodeId> {
    reassociate(g, n, a, BinaryOp::Mul)
}

fn add_consts(g: &mut Graph, n: &Node, a: &[NodeId]) -> Option<NodeId> {
    reassociate(g, n, a, BinaryOp::Add)
}

fn select_same(_: &mut Graph, n: &Node, a: &[NodeId]) -> Option<NodeId> {
    (n.op == Op::Select && a[1] == a[2]).then(|| a[1])
}

fn minmax_self(_: &mut Graph, n: &Node, a: &[NodeId]) -> Option<NodeId> {
    let minmax = is_binary(n, BinaryOp::Max) || is_binary(n, BinaryOp::Min);
    (minmax && a[0] == a[1]).then(|| a[0])
}

fn reshape_id(g: &mut Graph, n: &Node, a: &[NodeId]) -> Option<NodeId> {
    (n.op == Op::Reshape && g.shape(a[0]) == &n.shape).then(|| a[0])
}

fn reshape_reshape(g: &mut Graph, n: &Node, a: &[NodeId]) -> Option<NodeId> {
    if n.op != Op::Reshape {
        return None;
    }
    let x = arg_if(g, a[0], Op::Reshape)?;
    Some(g.reshape(x, &n.shape))
}

fn broadcast_id(g: &mut Graph, n: &Node, a: &[NodeId]) -> Option<NodeId> {
    (n.op == Op::Broadcast && g.shape(a[0]) == &n.shape).then(|| a[0])
}

fn broadcast_broadcast(g: &mut Graph, n: &Node, a: &[NodeId]) -> Option<NodeId> {
    if n.op != Op::Broadcast {
        return None;
    }
    let x = arg_if(g, a[0], Op::Broadcast)?;
    Some(g.broadcast(x, &n.shape))
}

fn transpose_transpose(g: &mut Graph, n: &Node, a: &[NodeId]) -> Option<NodeId> {
    if n.op != Op::Transpose {
        return None;
    }
    arg_if(g, a[0], Op::Transpose)
}

fn reduce_unit(g: &mut Graph, n: &Node, a: &[NodeId]) -> Option<NodeId> {
    let (Op::ReduceSum(axes) | Op::ReduceMean(axes) | Op::ReduceMax(axes)) = n.op else {
        return None;
    };
    let dims = g.shape(a[0]).dims();
    axes.iter().all(|i| dims[i] == Dim::Fixed(1)).then(|| a[0])
}

fn reduce_broadcast(g: &mut Graph, n: &Node, a: &[NodeId]) -> Option<NodeId> {
    let (Op::ReduceSum(axes) | Op::ReduceMean(axes) | Op::ReduceMax(axes)) = n.op else {
        return None;
    };
    let x = arg_if(g, a[0], Op::Broadcast)?;
    let (from, to) = (g.shape(x).dims(), g.shape(a[0]).dims());
    let offset = to.len() - from.len();
    // Every reduced axis must be one the broadcast created or stretched from size 1.
    let stretched = |i: usize| i < offset || from[i - offset] == Dim::Fixed(1);
    if !axes.iter().all(stretched) || !broadcastable(g.shape(x), &n.shape) {
        return None;
    }
    let mut count = 1.0;
    for i in axes.iter() {
        let Dim::Fixed(k) = to[i] else { return None };
        count *= k as f64;
    }
    let b = g.broadcast(x, &n.shape);
    match n.op {
        Op::ReduceSum(_) if count != 1.0 => Some(g.scale(b, count)),
        _ => Some(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Axes, InputKind, Reduce, Shape, F64};

    fn x(g: &mut Graph, s: &Shape) -> NodeId {
        g.add_input("x", s.clone(), InputKind::Features)
    }

    /// Simplifies the graph whose output is `out` and returns the new graph and output node.
    fn run(mut g: Graph, out: NodeId) -> (Graph, Node) {
        g.add_output("out", out);
        let s = crate::passes::simplify(&g);
        let n = s.node(s.outputs[0].node).clone();
        (s, n)
    }

    fn s23() -> Shape {
        Shape::fixed(&[2, 3])
    }

    /// `x op c` or `c op x` (by `const_first`) simplifies to `x` itself.
    fn identity(op: BinaryOp, c: f64, const_first: bool) {
        let mut g = Graph::new();
        let xi = x(&mut g, &s23());
        let k = g.constant(c, s23());
        let y = if const_first { g.binary(op, k, xi) } else { g.binary(op, xi, k) };
        let (_, n) = run(g, y);
        assert_eq!(n.op, Op::Input(0), "{op:?} {c} {const_first}");
    }

    #[test]
    fn neutral_elements() {
        identity(BinaryOp::Add, 0.0, false);
        identity(BinaryOp::Add, 0.0, true);
        identity(BinaryOp::Sub, 0.0, false);
        identity(BinaryOp::Mul, 1.0, false);
        identity(BinaryOp::Mul, 1.0, true);
        identity(BinaryOp::Div, 1.0, false);
    }

    #[test]
    fn non_identities_are_kept() {
        for (op, c, first) in
            [(BinaryOp::Div, 1.0, true), (BinaryOp::Sub, 0.0, true), (BinaryOp::Add, 1.0, false)]
        {
            let mut g = Graph::new();
            let xi = x(&mut g, &s23());
            let k = g.constant(c, s23());
            let y = if first { g.binary(op, k, xi) } else { g.binary(op, xi, k) };
            let (_, n) = run(g, y);
            assert_ne!(n.op, Op::Input(0));
        }
    }

    /// `x op c` (or `c op x`) simplifies to `−x`.
    fn negates(op: BinaryOp, c: f64, const_first: bool) {
        let mut g = Graph::new();
        let xi = x(&mut g, &s23());
        let k = g.constant(c, s23());
        let y = if const_first { g.binary(op, k, xi) } else { g.binary(op, xi, k) };
        let (s, n) = run(g, y);
        assert_eq!(n.op, Op::Unary(UnaryOp::Neg));
        assert_eq!(s.node(n.args[0]).op, Op::Input(0));
        assert_eq!(s.len(), 2, "the constant is dead");
    }

    #[test]
    fn division_by_a_power_of_two_is_a_multiplication() {
        for (c, want) in [(16.0, Some(0.0625)), (-0.5, Some(-2.0)), (3.0, None), (0.0, None)] {
            let mut g = Graph::new();
            let xi = x(&mut g, &s23());
            let k = g.constant(c, s23());
            let y = g.div(xi, k);
            let (s, n) = run(g, y);
            match want {
                Some(r) => {
                    assert_eq!(n.op, Op::Binary(BinaryOp::Mul));
                    assert_eq!(constant(&s, n.args[1]), Some(r));
                }
                None => assert_eq!(n.op, Op::Binary(BinaryOp::Div), "{c}"),
            }
        }
    }

    #[test]
    fn negations() {
        negates(BinaryOp::Sub, 0.0, true);
        negates(BinaryOp::Mul, -1.0, false);
        negates(BinaryOp::Mul, -1.0, true);
    }

    #[test]
    fn mul_zero_gives_the_zero_constant() {
        for first in [false, true] {
            let mut g = Graph::new();
            let xi = x(&mut g, &s23());
            let k = g.constant(0.0, s23());
            let y = if first { g.mul(k, xi) } else { g.mul(xi, k) };
            let (s, n) = run(g, y);
            assert_eq!(n.op, Op::Const(F64::new(0.0)));
            assert_eq!(s.len(), 1);
        }
    }

    #[test]
    fn double_negation() {
        let mut g = Graph::new();
        let xi = x(&mut g, &s23());
        let a = g.neg(xi);
        let b = g.neg(a);
        let (_, n) = run(g, b);
        assert_eq!(n.op, Op::Input(0));
    }

    type Build = fn(&mut Graph, NodeId, NodeId) -> NodeId;

    #[test]
    fn negated_operands_flip_add_and_sub() {
        // (x − (−y), x + (−y), (−x) + y) → (x + y, x − y, y − x)
        let cases: [(Build, BinaryOp, bool); 3] = [
            (
                |g, x, y| {
                    let m = g.neg(y);
                    g.sub(x, m)
                },
                BinaryOp::Add,
                false,
            ),
            (
                |g, x, y| {
                    let m = g.neg(y);
                    g.add2(x, m)
                },
                BinaryOp::Sub,
                false,
            ),
            (
                |g, x, y| {
                    let m = g.neg(x);
                    g.add2(m, y)
                },
                BinaryOp::Sub,
                true,
            ),
        ];
        for (build, want, swapped) in cases {
            let mut g = Graph::new();
            let xi = x(&mut g, &s23());
            let yp = g.add_param("y", s23());
            let out = build(&mut g, xi, yp);
            let (s, n) = run(g, out);
            assert_eq!(n.op, Op::Binary(want));
            let ops: Vec<Op> = n.args.iter().map(|&a| s.node(a).op).collect();
            let expect =
                if swapped { [Op::Param(0), Op::Input(0)] } else { [Op::Input(0), Op::Param(0)] };
            assert_eq!(ops, expect);
            assert_eq!(s.len(), 3, "the negation is dead");
        }
    }

    #[test]
    fn constant_factors_and_terms_combine() {
        for (op, c1, c2, want) in [(BinaryOp::Mul, 2.0, 3.0, 6.0), (BinaryOp::Add, 2.0, -5.0, -3.0)]
        {
            let mut g = Graph::new();
            let xi = x(&mut g, &s23());
            let k1 = g.constant(c1, s23());
            let k2 = g.constant(c2, s23());
            let inner = g.binary(op, k1, xi);
            let outer = g.binary(op, k2, inner);
            let (s, n) = run(g, outer);
            assert_eq!(n.op, Op::Binary(op));
            assert_eq!(s.node(n.args[0]).op, Op::Input(0));
            assert_eq!(constant(&s, n.args[1]), Some(want));
        }
    }

    #[test]
    fn select_and_minmax_of_equal_operands() {
        let mut g = Graph::new();
        let xi = x(&mut g, &s23());
        let p = g.add_param("p", s23());
        let c = g.binary(BinaryOp::Gt, xi, p);
        let sel = g.select(c, p, p);
        let mx = g.binary(BinaryOp::Max, sel, sel);
        let mn = g.binary(BinaryOp::Min, mx, mx);
        let (_, n) = run(g, mn);
        assert_eq!(n.op, Op::Param(0));
    }

    #[test]
    fn reshape_chains() {
        let mut g = Graph::new();
        let s = Shape(vec![Dim::Batch, Dim::Fixed(6)]);
        let xi = x(&mut g, &s);
        let a = g.reshape(xi, &Shape(vec![Dim::Batch, Dim::Fixed(2), Dim::Fixed(3)]));
        let b = g.reshape(a, &Shape(vec![Dim::Fixed(3), Dim::Batch, Dim::Fixed(2)]));
        let c = g.reshape(b, &Shape(vec![Dim::Batch, Dim::Fixed(3), Dim::Fixed(2)]));
        let same = g.add(Op::Reshape, vec![c], g.shape(c).clone());
        let (o, n) = run(g, same);
        assert_eq!(n.op, Op::Reshape);
        assert_eq!(o.node(n.args[0]).op, Op::Input(0));
        assert_eq!(o.len(), 2);

        let mut g = Graph::new();
        let xi = x(&mut g, &s);
        let a = g.reshape(xi, &Shape(vec![Dim::Batch, Dim::Fixed(2), Dim::Fixed(3)]));
        let b = g.reshape(a, &s);
        let (_, n) = run(g, b);
        assert_eq!(n.op, Op::Input(0), "round trip");
    }

    #[test]
    fn broadcast_chains() {
        let mut g = Graph::new();
        let xi = x(&mut g, &Shape::fixed(&[3]));
        let a = g.broadcast(xi, &Shape::fixed(&[1, 3]));
        let b = g.broadcast(a, &Shape(vec![Dim::Fixed(2), Dim::Batch, Dim::Fixed(3)]));
        let (s, n) = run(g, b);
        assert_eq!(n.op, Op::Broadcast);
        assert_eq!(s.node(n.args[0]).op, Op::Input(0));
        assert_eq!(s.len(), 2);

        let mut g = Graph::new();
        let xi = x(&mut g, &s23());
        let same = g.add(Op::Broadcast, vec![xi], s23());
        let (_, n) = run(g, same);
        assert_eq!(n.op, Op::Input(0));
    }

    #[test]
    fn double_transpose() {
        let mut g = Graph::new();
        let xi = x(&mut g, &s23());
        let a = g.transpose(xi);
        let b = g.transpose(a);
        let (_, n) = run(g, b);
        assert_eq!(n.op, Op::Input(0));
    }

    #[test]
    fn reduce_over_unit_axes_is_the_operand() {
        let mut g = Graph::new();
        let xi = x(&mut g, &Shape(vec![Dim::Batch, Dim::Fixed(1)]));
        let r = g.reduce(Reduce::Max, xi, Axes::of(&[1]));
        let (_, n) = run(g, r);
        assert_eq!(n.op, Op::Input(0));
    }

    #[test]
    fn reduce_of_broadcast() {
        // x [3] → bc [4, B, 3]; sum over axis 0 → bc(x) [1, B, 3] · 4
        let mut g = Graph::new();
        let xi = x(&mut g, &Shape::fixed(&[3]));
        let b = g.broadcast(xi, &Shape(vec![Dim::Fixed(4), Dim::Batch, Dim::Fixed(3)]));
        let r = g.reduce(Reduce::Sum, b, Axes::of(&[0]));
        let (s, n) = run(g, r);
        assert_eq!(n.op, Op::Binary(BinaryOp::Mul));
        assert_eq!(s.node(n.args[0]).op, Op::Broadcast);
        assert_eq!(constant(&s, n.args[1]), Some(4.0));

        // mean over the stretched axes of [2, 1] → [2, 5] is the operand itself
        let mut g = Graph::new();
        let xi = x(&mut g, &Shape::fixed(&[2, 1]));
        let b = g.broadcast(xi, &Shape::fixed(&[2, 5]));
        let r = g.reduce(Reduce::Mean, b, Axes::of(&[1]));
        let (_, n) = run(g, r);
        assert_eq!(n.op, Op::Input(0));
    }

    #[test]
    fn reduce_of_broadcast_needs_stretched_fixed_axes() {
        let mut g = Graph::new();
        let xi = x(&mut g, &Shape::fixed(&[3]));
        let b = g.broadcast(xi, &Shape(vec![Dim::Batch, Dim::Fixed(3)]));
        let over_x = g.reduce(Reduce::Sum, b, Axes::of(&[1]));
        let over_batch = g.reduce(Reduce::Sum, b, Axes::of(&[0]));
        g.add_output("x", over_x);
        g.add_output("b", over_batch);
        let s = crate::passes::simplify(&g);
        for o in &s.outputs {
            assert!(matches!(s.node(o.node).op, Op::ReduceSum(_)), "{}", o.name);
        }
    }
}
