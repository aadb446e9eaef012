//! Gradient checks: every op's VJP (`nnc::autodiff`) against central finite differences,
//! both evaluated in `f64` by the reference interpreter `nnc::graph::eval`.
//!
//! Each case builds a small graph whose parameters hold random values (kept away from kinks:
//! `|x|` away from 0 for relu/abs, positive operands for log/sqrt/pow, distinct values for
//! max/min), takes `loss = Σ y ⊙ w` for the op's result `y` and fixed random weights `w` (an
//! extra input, so the upstream gradient is not all ones), and compares `grad` with
//! `(L(p + h) − L(p − h)) / 2h`, `h = 1e-6`, to `1e-6` relative/absolute.

use nnc::autodiff::{backward, grad};
use nnc::graph::eval::{eval, Env};
use nnc::graph::verify::verify;
use nnc::graph::{Axes, BinaryOp, Dim, Graph, InputKind, NodeId, Op, Reduce, Role, Shape, UnaryOp};
use nnc::tensor::Tensor;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The batch size used wherever a shape has `B`.
const BATCH: usize = 5;
const H: f64 = 1e-6;
const TOL: f64 = 1e-6;

// ---- random values ----------------------------------------------------------------------

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Uniform in `[lo, hi)`.
fn uniform(r: &mut ChaCha8Rng, dims: &[usize], lo: f64, hi: f64) -> Tensor<f64> {
    let n = dims.iter().product();
    Tensor::new(dims.to_vec(), (0..n).map(|_| r.random_range(lo..hi)).collect())
}

/// Magnitude uniform in `[lo, hi)`, random sign: away from 0.
fn signed(r: &mut ChaCha8Rng, dims: &[usize], lo: f64, hi: f64) -> Tensor<f64> {
    let t = uniform(r, dims, lo, hi);
    let data = t.data.iter().map(|&x| if r.random_bool(0.5) { -x } else { x }).collect();
    Tensor::new(t.shape, data)
}

fn concrete(s: &Shape) -> Vec<usize> {
    s.concrete(BATCH)
}

// ---- the harness ------------------------------------------------------------------------

fn run(g: &Graph, params: &[Tensor<f64>], inputs: &[Tensor<f64>]) -> Vec<Tensor<f64>> {
    let env = Env { inputs, params, states: &[], lr: 0.0, step: 1.0 };
    eval(g, &env).expect("eval").outputs
}

/// Central differences of the scalar output 0 of `g` with respect to every parameter.
fn numeric(g: &Graph, params: &[Tensor<f64>], inputs: &[Tensor<f64>]) -> Vec<Tensor<f64>> {
    let mut p = params.to_vec();
    (0..params.len())
        .map(|i| {
            let d = (0..params[i].numel())
                .map(|j| {
                    let x = params[i].data[j];
                    p[i].data[j] = x + H;
                    let up = run(g, &p, inputs)[0].data[0];
                    p[i].data[j] = x - H;
                    let down = run(g, &p, inputs)[0].data[0];
                    p[i].data[j] = x;
                    (up - down) / (2.0 * H)
                })
                .collect();
            Tensor::new(params[i].shape.clone(), d)
        })
        .collect()
}

/// `grad` of `loss` for every parameter of `g`, evaluated; also checks the provenance of
/// every node `grad` appended.
fn analytic(
    g: &Graph,
    loss: NodeId,
    params: &[Tensor<f64>],
    inputs: &[Tensor<f64>],
) -> Vec<Tensor<f64>> {
    let mut gg = g.clone();
    let n = gg.len();
    let wrt: Vec<NodeId> = (0..params.len() as u32).map(|i| gg.param(i)).collect();
    let grads = grad(&mut gg, loss, &wrt);
    for id in gg.ids().skip(n) {
        let of = gg.meta(id).grad_of.unwrap_or_else(|| panic!("%{} has no grad_of", id.0));
        assert!(of.index() < n, "%{} differentiates a backward node", id.0);
    }
    assert_eq!(gg.origin, Default::default(), "grad must restore the origin");
    verify(&gg).expect("the graph with gradients verifies");
    for (i, d) in grads.iter().enumerate() {
        assert_eq!(gg.shape(*d), gg.shape(wrt[i]), "gradient shape of param {i}");
    }
    gg.outputs.clear();
    for (i, d) in grads.into_iter().enumerate() {
        gg.add_output(format!("grad.{i}"), d);
    }
    run(&gg, params, inputs)
}

fn assert_close(what: &str, got: &[Tensor<f64>], want: &[Tensor<f64>]) {
    for (i, (a, n)) in got.iter().zip(want).enumerate() {
        assert_eq!(a.shape, n.shape, "{what}: shape of gradient {i}");
        for (j, (x, y)) in a.data.iter().zip(&n.data).enumerate() {
            assert!(
                (x - y).abs() <= TOL * y.abs().max(1.0),
                "{what}: d/dparam{i}[{j}]: autodiff {x} vs numeric {y}\n autodiff {:?}\n numeric  {:?}",
                a.data,
                n.data
            );
        }
    }
}

/// Checks the gradient of scalar `loss` with respect to every parameter of `g`.
fn check_loss(
    what: &str,
    mut g: Graph,
    loss: NodeId,
    params: &[Tensor<f64>],
    inputs: &[Tensor<f64>],
) {
    assert_eq!(g.shape(loss), &Shape::scalar());
    let got = analytic(&g, loss, params, inputs);
    g.outputs.clear();
    g.add_output("loss", loss);
    let want = numeric(&g, params, inputs);
    assert_close(what, &got, &want);
}

/// `loss = Σ y ⊙ w` with random weights `w` (appended as the last input), then [`check_loss`].
fn check(what: &str, mut g: Graph, y: NodeId, params: &[Tensor<f64>], inputs: &[Tensor<f64>]) {
    let shape = g.shape(y).clone();
    let w = g.add_input("w", shape.clone(), InputKind::Features);
    let wy = g.mul(y, w);
    let loss = g.sum_all(wy);
    let mut inputs = inputs.to_vec();
    inputs.push(uniform(&mut rng(99), &concrete(&shape), -1.0, 1.0));
    check_loss(what, g, loss, params, &inputs);
}

fn dims(t: &Tensor<f64>) -> Shape {
    Shape::fixed(&t.shape)
}

/// A graph with one parameter per value (named `p0`, `p1`, ...), and their nodes.
fn with_params(values: &[Tensor<f64>]) -> (Graph, Vec<NodeId>) {
    let mut g = Graph::new();
    let ids =
        values.iter().enumerate().map(|(i, v)| g.add_param(&format!("p{i}"), dims(v))).collect();
    (g, ids)
}

// ---- elementwise --------------------------------------------------------------------------

#[test]
fn unary_ops() {
    use UnaryOp::*;
    let mut r = rng(1);
    let table: [(UnaryOp, Tensor<f64>); 15] = [
        (Neg, uniform(&mut r, &[2, 3], -2.0, 2.0)),
        (Exp, uniform(&mut r, &[2, 3], -2.0, 2.0)),
        (Log, uniform(&mut r, &[2, 3], 0.5, 2.0)),
        (Log1p, uniform(&mut r, &[2, 3], -0.5, 2.0)),
        (Sqrt, uniform(&mut r, &[2, 3], 0.5, 2.0)),
        (Recip, signed(&mut r, &[2, 3], 0.5, 2.0)),
        (Abs, signed(&mut r, &[2, 3], 0.3, 2.0)),
        (Sign, signed(&mut r, &[2, 3], 0.3, 2.0)),
        (Square, uniform(&mut r, &[2, 3], -2.0, 2.0)),
        (Tanh, uniform(&mut r, &[2, 3], -2.0, 2.0)),
        (Sigmoid, uniform(&mut r, &[2, 3], -3.0, 3.0)),
        (Relu, signed(&mut r, &[2, 3], 0.3, 2.0)),
        (Step, signed(&mut r, &[2, 3], 0.3, 2.0)),
        (Softplus, uniform(&mut r, &[2, 3], -3.0, 3.0)),
        (Erf, uniform(&mut r, &[2, 3], -2.0, 2.0)),
    ];
    for (op, x) in table {
        let (mut g, p) = with_params(std::slice::from_ref(&x));
        let y = g.unary(op, p[0]);
        check(&format!("{op:?}"), g, y, &[x], &[]);
    }
}

#[test]
fn binary_ops() {
    use BinaryOp::*;
    let mut r = rng(2);
    let s = [2, 3];
    for op in [Add, Sub, Mul, Div, Max, Min, Pow, Gt, Ge, Eq] {
        let a = match op {
            Pow => uniform(&mut r, &s, 0.5, 2.0),
            _ => uniform(&mut r, &s, -2.0, 2.0),
        };
        let b = match op {
            Div => signed(&mut r, &s, 0.5, 2.0),
            // b = a ± [0.2, 1): distinct from a, so max/min/comparisons have no ties.
            Max | Min | Gt | Ge | Eq => {
                let d = signed(&mut r, &s, 0.2, 1.0);
                Tensor::new(s.to_vec(), a.data.iter().zip(&d.data).map(|(x, y)| x + y).collect())
            }
            _ => uniform(&mut r, &s, -2.0, 2.0),
        };
        let values = [a, b];
        let (mut g, p) = with_params(&values);
        let y = g.binary(op, p[0], p[1]);
        check(&format!("{op:?}"), g, y, &values, &[]);
    }
}

/// A value used as both operands, and a constant integer exponent on a negative base (the
/// exponent's `log(a)` rule must not be built, or it would be NaN).
#[test]
fn same_operand_and_constant_exponent() {
    let x = signed(&mut rng(3), &[2, 3], 0.5, 2.0);
    for op in [BinaryOp::Mul, BinaryOp::Add, BinaryOp::Sub, BinaryOp::Div, BinaryOp::Max] {
        let (mut g, p) = with_params(std::slice::from_ref(&x));
        let y = g.binary(op, p[0], p[0]);
        check(&format!("{op:?}(p, p)"), g, y, std::slice::from_ref(&x), &[]);
    }
    let (mut g, p) = with_params(std::slice::from_ref(&x));
    let three = g.constant(3.0, dims(&x));
    let y = g.binary(BinaryOp::Pow, p[0], three);
    let mut gg = g.clone();
    let n = gg.len();
    grad(&mut gg, y, &p);
    let logs = gg.nodes().skip(n).filter(|(_, x)| x.op == Op::Unary(UnaryOp::Log)).count();
    assert_eq!(logs, 0, "no gradient is built for a constant exponent");
    check("p^3", g, y, &[x], &[]);
}

/// On ties `max`/`min` split the gradient equally (as `torch.maximum`).
#[test]
fn max_min_ties_split_gradient() {
    let x = uniform(&mut rng(4), &[4], -1.0, 1.0);
    for op in [BinaryOp::Max, BinaryOp::Min] {
        let (mut g, p) = with_params(&[x.clone(), x.clone()]);
        let y = g.binary(op, p[0], p[1]);
        let w = g.add_input("w", Shape::fixed(&[4]), InputKind::Features);
        let wy = g.mul(y, w);
        let loss = g.sum_all(wy);
        let wv = Tensor::new(vec![4], vec![1.0, -2.0, 0.5, 3.0]);
        let got = analytic(&g, loss, &[x.clone(), x.clone()], std::slice::from_ref(&wv));
        let half = wv.map(|v| v / 2.0);
        assert_eq!(got, vec![half.clone(), half], "{op:?}");
    }
}

#[test]
fn select() {
    let mut r = rng(5);
    let values = [uniform(&mut r, &[2, 3], -1.0, 1.0), uniform(&mut r, &[2, 3], -1.0, 1.0)];
    let (mut g, p) = with_params(&values);
    let c = g.add_input("c", Shape::fixed(&[2, 3]), InputKind::Features);
    let y = g.select(c, p[0], p[1]);
    let mask = Tensor::new(vec![2, 3], vec![1.0, 0.0, 0.0, 1.0, 1.0, 0.0]);
    check("select", g, y, &values, &[mask]);
}

// ---- shapes -----------------------------------------------------------------------------

#[test]
fn broadcast_patterns() {
    let mut r = rng(6);
    for (from, to) in [
        (&[3][..], &[2, 3][..]),
        (&[2, 1], &[2, 3]),
        (&[], &[2, 3]),
        (&[1, 3], &[2, 3]),
        (&[2, 1, 3], &[4, 2, 5, 3]),
    ] {
        let x = uniform(&mut r, from, -1.0, 1.0);
        let (mut g, p) = with_params(std::slice::from_ref(&x));
        let y = g.broadcast(p[0], &Shape::fixed(to));
        check(&format!("broadcast {from:?} -> {to:?}"), g, y, &[x], &[]);
    }
}

/// Broadcasting a parameter over the batch axis sums its gradient over the batch.
#[test]
fn broadcast_over_batch() {
    let mut r = rng(7);
    for from in [&[3][..], &[1, 3]] {
        let x = uniform(&mut r, from, -1.0, 1.0);
        let (mut g, p) = with_params(std::slice::from_ref(&x));
        let bs = Shape(vec![Dim::Batch, Dim::Fixed(3)]);
        let d = g.add_input("d", bs.clone(), InputKind::Features);
        let y = g.broadcast(p[0], &bs);
        let y = g.mul(y, d);
        let data = uniform(&mut r, &[BATCH, 3], -1.0, 1.0);
        check(&format!("broadcast {from:?} -> [B,3]"), g, y, &[x], &[data]);
    }
}

#[test]
fn reshape_and_transpose() {
    let mut r = rng(8);
    for (from, to) in
        [(&[2, 3][..], &[3, 2][..]), (&[2, 3], &[6]), (&[6], &[1, 2, 3]), (&[2, 3], &[])]
    {
        let n: usize = to.iter().product();
        let from = if n == 1 { &[1, 1][..] } else { from };
        let x = uniform(&mut r, from, -1.0, 1.0);
        let (mut g, p) = with_params(std::slice::from_ref(&x));
        let y = g.reshape(p[0], &Shape::fixed(to));
        let y = g.unary(UnaryOp::Tanh, y);
        check(&format!("reshape {from:?} -> {to:?}"), g, y, &[x], &[]);
    }
    let x = uniform(&mut r, &[2, 3], -1.0, 1.0);
    let (mut g, p) = with_params(std::slice::from_ref(&x));
    let y = g.transpose(p[0]);
    let y = g.unary(UnaryOp::Tanh, y);
    check("transpose", g, y, &[x], &[]);
}

#[test]
fn reshape_with_batch() {
    let mut r = rng(9);
    let x = uniform(&mut r, &[6], -1.0, 1.0);
    let (mut g, p) = with_params(std::slice::from_ref(&x));
    let bs = Shape(vec![Dim::Batch, Dim::Fixed(6)]);
    let d = g.add_input("d", bs.clone(), InputKind::Features);
    let xb = g.broadcast(p[0], &bs);
    let y = g.mul(xb, d);
    let y = g.reshape(y, &Shape(vec![Dim::Batch, Dim::Fixed(2), Dim::Fixed(3)]));
    let y = g.unary(UnaryOp::Tanh, y);
    let data = uniform(&mut r, &[BATCH, 6], -1.0, 1.0);
    check("reshape [B,6] -> [B,2,3]", g, y, &[x], &[data]);
}

// ---- reductions -------------------------------------------------------------------------

const REDUCTIONS: [Reduce; 3] = [Reduce::Sum, Reduce::Mean, Reduce::Max];

#[test]
fn reductions_fixed() {
    let mut r = rng(10);
    let cases: [(&[usize], &[usize]); 6] = [
        (&[3, 4], &[0]),
        (&[3, 4], &[1]),
        (&[3, 4], &[0, 1]),
        (&[2, 3, 4], &[0, 2]),
        (&[2, 3, 4], &[1]),
        (&[5], &[0]),
    ];
    for kind in REDUCTIONS {
        for (shape, axes) in cases {
            let x = uniform(&mut r, shape, -2.0, 2.0);
            let (mut g, p) = with_params(std::slice::from_ref(&x));
            let y = g.reduce(kind, p[0], Axes::of(axes));
            check(&format!("{kind:?} {shape:?} over {axes:?}"), g, y, &[x], &[]);
        }
    }
}

/// Reductions of a `[B, 4]` value: over the batch axis the count is only known at run time.
#[test]
fn reductions_with_batch() {
    let mut r = rng(11);
    for kind in REDUCTIONS {
        for axes in [&[0][..], &[1], &[0, 1]] {
            let x = uniform(&mut r, &[4], -2.0, 2.0);
            let (mut g, p) = with_params(std::slice::from_ref(&x));
            let bs = Shape(vec![Dim::Batch, Dim::Fixed(4)]);
            let d = g.add_input("d", bs.clone(), InputKind::Features);
            let xb = g.broadcast(p[0], &bs);
            let y = g.mul(xb, d);
            let y = g.reduce(kind, y, Axes::of(axes));
            let data = uniform(&mut r, &[BATCH, 4], -2.0, 2.0);
            check(&format!("{kind:?} [B,4] over {axes:?}"), g, y, &[x], &[data]);
        }
    }
}

/// `reduce_max` splits the gradient among tied maxima.
#[test]
fn reduce_max_ties() {
    let x = Tensor::new(vec![2, 3], vec![1.0, 3.0, 3.0, -1.0, 2.0, 0.5]);
    let (mut g, p) = with_params(std::slice::from_ref(&x));
    let m = g.reduce(Reduce::Max, p[0], Axes::of(&[1]));
    let loss = g.sum_all(m);
    let got = analytic(&g, loss, &[x], &[]);
    assert_eq!(got[0].data, vec![0.0, 0.5, 0.5, 0.0, 1.0, 0.0]);
}

// ---- matmul and the fused ops -----------------------------------------------------------

#[test]
fn matmul_all_transpose_flags() {
    let mut r = rng(12);
    let (m, k, n) = (2, 3, 4);
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        let a = uniform(&mut r, &if ta { [k, m] } else { [m, k] }, -1.0, 1.0);
        let b = uniform(&mut r, &if tb { [n, k] } else { [k, n] }, -1.0, 1.0);
        let values = [a, b];
        let (mut g, p) = with_params(&values);
        let y = g.matmul(p[0], p[1], ta, tb);
        let what = format!("matmul ta={ta} tb={tb}");
        let mut gg = g.clone();
        let n0 = gg.len();
        grad(&mut gg, y, &p);
        let transposes = gg.nodes().skip(n0).filter(|(_, x)| x.op == Op::Transpose).count();
        assert_eq!(transposes, 0, "{what}: the VJP uses MatMul's flags, not Transpose nodes");
        check(&what, g, y, &values, &[]);
    }
}

#[test]
fn softmax_and_log_softmax() {
    let mut r = rng(13);
    for shape in [&[3, 4][..], &[2, 2, 3], &[5]] {
        for op in [Op::Softmax, Op::LogSoftmax] {
            let x = uniform(&mut r, shape, -2.0, 2.0);
            let (mut g, p) = with_params(std::slice::from_ref(&x));
            let y = g.add(op, vec![p[0]], dims(&x));
            check(&format!("{op:?} {shape:?}"), g, y, &[x], &[]);
        }
    }
}

#[test]
fn softmax_cross_entropy() {
    let z = uniform(&mut rng(14), &[4, 3], -2.0, 2.0);
    let (mut g, p) = with_params(std::slice::from_ref(&z));
    let y = g.add_input("y", Shape::fixed(&[4]), InputKind::Classes(3));
    let l = g.add(Op::SoftmaxCrossEntropy, vec![p[0], y], Shape::fixed(&[4]));
    let labels = Tensor::new(vec![4], vec![0.0, 2.0, 1.0, 2.0]);
    check("softmax_cross_entropy", g, l, &[z], &[labels]);
}

// ---- composition ------------------------------------------------------------------------

/// Values used several times: contributions of every use are summed.
#[test]
fn fan_out() {
    let x = uniform(&mut rng(15), &[2, 3], -1.0, 1.0);
    let (mut g, p) = with_params(std::slice::from_ref(&x));
    let t = g.unary(UnaryOp::Tanh, p[0]);
    let tt = g.mul(t, t);
    let e = g.unary(UnaryOp::Exp, p[0]);
    let ep = g.mul(e, p[0]);
    let s = g.add2(tt, ep);
    let s = g.add2(s, t);
    let y = g.sub(s, p[0]);
    check("fan-out", g, y, &[x], &[]);
}

/// A 4-8-3 tanh MLP in PyTorch layout (`weight [out, in]`), mean cross entropy over a batch.
fn mlp() -> (Graph, Vec<Tensor<f64>>, Vec<Tensor<f64>>) {
    let mut g = Graph::new();
    let mut r = rng(16);
    let x = g.add_input("x", Shape(vec![Dim::Batch, Dim::Fixed(4)]), InputKind::Features);
    let y = g.add_input("y", Shape(vec![Dim::Batch]), InputKind::Classes(3));
    let mut h = x;
    let mut values = Vec::new();
    for (i, (fan_in, fan_out)) in [(4, 8), (8, 3)].into_iter().enumerate() {
        g.origin.note = Some(format!("fc{}", i + 1).into());
        let w = g.add_param(&format!("fc{}.weight", i + 1), Shape::fixed(&[fan_out, fan_in]));
        let b = g.add_param(&format!("fc{}.bias", i + 1), Shape::fixed(&[fan_out]));
        values.push(uniform(&mut r, &[fan_out, fan_in], -1.0, 1.0));
        values.push(uniform(&mut r, &[fan_out], -0.5, 0.5));
        let xw = g.matmul(h, w, false, true);
        let s = g.shape(xw).clone();
        let bb = g.broadcast(b, &s);
        h = g.add2(xw, bb);
        if i == 0 {
            h = g.unary(UnaryOp::Tanh, h);
        }
    }
    g.origin.note = Some("loss".into());
    let l = g.add(Op::SoftmaxCrossEntropy, vec![h, y], Shape(vec![Dim::Batch]));
    let loss = g.mean_all(l);
    g.origin = Default::default();
    g.add_output_as(Role::Loss, "loss", loss);
    g.add_output("logits", h);
    let inputs = vec![
        uniform(&mut r, &[BATCH, 4], -1.0, 1.0),
        Tensor::new(vec![BATCH], vec![0.0, 2.0, 1.0, 1.0, 0.0]),
    ];
    (g, values, inputs)
}

#[test]
fn mlp_with_batch() {
    let (g, values, inputs) = mlp();
    let loss = g.output("loss").unwrap();
    check_loss("mlp", g, loss, &values, &inputs);
}

/// No gradient is built for data: nothing in the backward graph has the input `x`'s shape
/// (its gradient `[B, 4]` would be the only such node).
#[test]
fn no_gradient_for_data_inputs() {
    let (mut g, _, _) = mlp();
    let n = g.len();
    let loss = g.output("loss").unwrap();
    let wrt: Vec<NodeId> = (0..4).map(|i| g.param(i)).collect();
    grad(&mut g, loss, &wrt);
    let x_shape = Shape(vec![Dim::Batch, Dim::Fixed(4)]);
    assert!(g.nodes().skip(n).all(|(_, node)| node.shape != x_shape));
}

#[test]
fn unused_param_gets_zeros() {
    let mut r = rng(17);
    let values = [uniform(&mut r, &[2], -1.0, 1.0), uniform(&mut r, &[3], -1.0, 1.0)];
    let (mut g, p) = with_params(&values);
    let y = g.unary(UnaryOp::Exp, p[0]);
    let loss = g.sum_all(y);
    let got = analytic(&g, loss, &values, &[]);
    assert_eq!(got[1], Tensor::full(vec![3], 0.0));
    let want: Vec<f64> = values[0].data.iter().map(|v| v.exp()).collect();
    assert_close("exp", &got[..1], &[Tensor::new(vec![2], want)]);
}

/// The `grad` stage: outputs, their values, and the provenance of every backward node.
#[test]
fn backward_stage() {
    let (mut forward, mut values, inputs) = mlp();
    forward.add_param("unused.weight", Shape::fixed(&[2, 2]));
    values.push(Tensor::full(vec![2, 2], 0.25));
    let g = backward(&forward);
    verify(&g).expect("the grad stage verifies");
    let names: Vec<&str> = g.outputs.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "loss",
            "logits",
            "grad.fc1.weight",
            "grad.fc1.bias",
            "grad.fc2.weight",
            "grad.fc2.bias",
            "grad.unused.weight"
        ]
    );
    assert_eq!(g.outputs[..2], forward.outputs[..]);

    // Every backward node says which forward node it differentiates, with its note.
    let n = forward.len();
    for id in g.ids().skip(n).filter(|&id| !matches!(g.node(id).op, Op::Param(_))) {
        let m = g.meta(id);
        let of = m.grad_of.unwrap_or_else(|| panic!("%{} has no grad_of", id.0));
        assert!(of.index() < n);
        assert_eq!(m.note, g.meta(of).note);
    }
    let notes =
        |name: &str| g.ids().skip(n).filter(|&id| g.meta(id).note.as_deref() == Some(name)).count();
    assert!(notes("fc1") > 0 && notes("fc2") > 0 && notes("loss") > 0);

    // The gradients are right.
    let out = run(&g, &values, &inputs);
    let mut fwd = forward.clone();
    fwd.outputs.truncate(1);
    let want = numeric(&fwd, &values, &inputs);
    assert_close("backward", &out[2..], &want);
    assert_eq!(out[6], Tensor::full(vec![2, 2], 0.0));
}
