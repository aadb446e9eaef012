//! Unit tests of the interpreter: every op on small tensors against hand-computed values.

use super::*;
use crate::graph::{Axes, BinaryOp, InputKind, Reduce, ScalarArg, UnaryOp};

fn t(shape: &[usize], data: &[f64]) -> Tensor<f64> {
    Tensor::new(shape.to_vec(), data.to_vec())
}

fn env<'a>(inputs: &'a [Tensor<f64>], params: &'a [Tensor<f64>]) -> Env<'a, f64> {
    Env { inputs, params, states: &[], lr: 0.1, step: 3.0 }
}

/// Declares `inputs` with their fixed shapes, builds one node with `build` and evaluates it.
fn run1(
    inputs: &[Tensor<f64>],
    build: impl FnOnce(&mut Graph, &[NodeId]) -> NodeId,
) -> Result<Tensor<f64>, EvalError> {
    let mut g = Graph::new();
    let ids: Vec<NodeId> = (0..inputs.len())
        .map(|i| g.add_input(&format!("x{i}"), Shape::fixed(&inputs[i].shape), InputKind::Features))
        .collect();
    let out = build(&mut g, &ids);
    g.add_output("out", out);
    eval(&g, &env(inputs, &[])).map(|mut e| e.outputs.remove(0))
}

fn close(got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        let ok = g == w || (g - w).abs() <= tol * w.abs().max(1.0);
        assert!(ok, "got {got:?}, want {want:?}");
    }
}

fn unary(op: UnaryOp, xs: &[f64]) -> Vec<f64> {
    run1(&[t(&[xs.len()], xs)], |g, x| g.unary(op, x[0])).unwrap().data
}

fn binary(op: BinaryOp, a: &[f64], b: &[f64]) -> Vec<f64> {
    let ins = [t(&[a.len()], a), t(&[b.len()], b)];
    run1(&ins, |g, x| g.binary(op, x[0], x[1])).unwrap().data
}

// ---- elementwise ------------------------------------------------------------------------

#[test]
fn unary_ops_by_hand() {
    use UnaryOp::*;
    let e = std::f64::consts::E;
    close(&unary(Neg, &[1.5, -2.0]), &[-1.5, 2.0], 0.0);
    close(&unary(Exp, &[0.0, 1.0, -1.0]), &[1.0, e, 1.0 / e], 1e-15);
    close(&unary(Log, &[1.0, e, 0.0]), &[0.0, 1.0, f64::NEG_INFINITY], 1e-15);
    close(&unary(Log1p, &[1e-20, e - 1.0]), &[1e-20, 1.0], 1e-15);
    close(&unary(Sqrt, &[4.0, 2.25]), &[2.0, 1.5], 0.0);
    close(&unary(Recip, &[4.0, -0.5]), &[0.25, -2.0], 0.0);
    close(&unary(Abs, &[-3.0, 2.0]), &[3.0, 2.0], 0.0);
    close(&unary(Sign, &[-3.0, 0.0, 2.0]), &[-1.0, 0.0, 1.0], 0.0);
    assert!(unary(Sign, &[f64::NAN])[0].is_nan());
    close(&unary(Square, &[-3.0, 0.5]), &[9.0, 0.25], 0.0);
    close(&unary(Tanh, &[0.0, 0.5, 30.0]), &[0.0, 0.46211715726000974, 1.0], 1e-15);
    close(&unary(Relu, &[-1.0, 0.0, 2.5]), &[0.0, 0.0, 2.5], 0.0);
    close(&unary(Step, &[-1.0, 0.0, 2.5]), &[0.0, 0.0, 1.0], 0.0);
    close(&unary(Erf, &[0.0, 0.5, -1.0]), &[0.0, 0.5204998778130465, -0.8427007929497149], 2e-15);
}

#[test]
fn sigmoid_and_softplus_are_stable() {
    use UnaryOp::*;
    // σ(0) = 1/2, σ(2) = 1/(1+e⁻²), σ(−2) = 1 − σ(2); no overflow at ±1000.
    let s = unary(Sigmoid, &[0.0, 2.0, -2.0, 1000.0, -1000.0]);
    close(&s, &[0.5, 0.8807970779778823, 0.11920292202211755, 1.0, 0.0], 1e-15);
    // softplus(0) = ln 2; softplus(x) → x for large x, → eˣ for very negative x.
    let sp = unary(Softplus, &[0.0, 1.0, 1000.0, -1000.0, -40.0]);
    let want = [std::f64::consts::LN_2, 1.3132616875182228, 1000.0, 0.0, 4.248354255291589e-18];
    close(&sp, &want, 1e-15);
}

#[test]
fn binary_ops_by_hand() {
    use BinaryOp::*;
    let (a, b) = ([1.0, -2.0, 3.0], [2.0, 3.0, 3.0]);
    close(&binary(Add, &a, &b), &[3.0, 1.0, 6.0], 0.0);
    close(&binary(Sub, &a, &b), &[-1.0, -5.0, 0.0], 0.0);
    close(&binary(Mul, &a, &b), &[2.0, -6.0, 9.0], 0.0);
    close(&binary(Div, &a, &b), &[0.5, -2.0 / 3.0, 1.0], 1e-16);
    close(&binary(Max, &a, &b), &[2.0, 3.0, 3.0], 0.0);
    close(&binary(Min, &a, &b), &[1.0, -2.0, 3.0], 0.0);
    close(&binary(Pow, &a, &b), &[1.0, -8.0, 27.0], 1e-15);
    close(&binary(Pow, &[4.0], &[0.5]), &[2.0], 1e-15);
    close(&binary(Gt, &a, &b), &[0.0, 0.0, 0.0], 0.0);
    close(&binary(Gt, &b, &a), &[1.0, 1.0, 0.0], 0.0);
    close(&binary(Ge, &a, &b), &[0.0, 0.0, 1.0], 0.0);
    close(&binary(Eq, &a, &b), &[0.0, 0.0, 1.0], 0.0);
}

#[test]
fn select_picks_by_nonzero_condition() {
    let ins = [t(&[3], &[1.0, 0.0, -2.0]), t(&[3], &[1.0, 2.0, 3.0]), t(&[3], &[7.0, 8.0, 9.0])];
    let out = run1(&ins, |g, x| g.select(x[0], x[1], x[2])).unwrap();
    assert_eq!(out.data, [1.0, 8.0, 3.0]);
}

// ---- structural -------------------------------------------------------------------------

fn broadcast(a: Tensor<f64>, to: &[usize]) -> Tensor<f64> {
    run1(&[a], |g, x| g.broadcast(x[0], &Shape::fixed(to))).unwrap()
}

#[test]
fn broadcast_aligns_trailing_axes() {
    // [3] -> [2,3]: rows repeated.
    let r = broadcast(t(&[3], &[1.0, 2.0, 3.0]), &[2, 3]);
    assert_eq!((r.shape, r.data), (vec![2, 3], vec![1.0, 2.0, 3.0, 1.0, 2.0, 3.0]));
    // [2,1] -> [2,3]: columns repeated.
    let c = broadcast(t(&[2, 1], &[1.0, 2.0]), &[2, 3]);
    assert_eq!(c.data, [1.0, 1.0, 1.0, 2.0, 2.0, 2.0]);
    // [] -> [2,2].
    assert_eq!(broadcast(t(&[], &[5.0]), &[2, 2]).data, [5.0; 4]);
    // [2,1] -> [2,2,3]: a new leading axis and an expanded last one.
    let d = broadcast(t(&[2, 1], &[1.0, 2.0]), &[2, 2, 3]);
    assert_eq!(d.data, [1., 1., 1., 2., 2., 2., 1., 1., 1., 2., 2., 2.]);
}

#[test]
fn reshape_keeps_row_major_order_and_transpose_swaps() {
    let a = t(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let r = run1(std::slice::from_ref(&a), |g, x| g.reshape(x[0], &Shape::fixed(&[3, 2]))).unwrap();
    assert_eq!((r.shape, r.data), (vec![3, 2], a.data.clone()));
    let tr = run1(&[a], |g, x| g.transpose(x[0])).unwrap();
    assert_eq!((tr.shape, tr.data), (vec![3, 2], vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]));
}

fn reduce(kind: Reduce, a: Tensor<f64>, axes: &[usize]) -> Tensor<f64> {
    run1(&[a], |g, x| g.reduce(kind, x[0], Axes::of(axes))).unwrap()
}

#[test]
fn reductions_keep_dims() {
    let a = t(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let s1 = reduce(Reduce::Sum, a.clone(), &[1]);
    assert_eq!((s1.shape, s1.data), (vec![2, 1], vec![6.0, 15.0]));
    let s0 = reduce(Reduce::Sum, a.clone(), &[0]);
    assert_eq!((s0.shape, s0.data), (vec![1, 3], vec![5.0, 7.0, 9.0]));
    let s01 = reduce(Reduce::Sum, a.clone(), &[0, 1]);
    assert_eq!((s01.shape, s01.data), (vec![1, 1], vec![21.0]));
    let m = reduce(Reduce::Mean, a.clone(), &[1]);
    assert_eq!((m.shape, m.data), (vec![2, 1], vec![2.0, 5.0]));
    let mx = reduce(Reduce::Max, t(&[2, 3], &[3.0, 1.0, 3.0, -4.0, -5.0, -6.0]), &[1]);
    assert_eq!((mx.shape, mx.data), (vec![2, 1], vec![3.0, -4.0]));
    // The middle axis of a rank-3 tensor [2,2,2].
    let b = t(&[2, 2, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
    let mid = reduce(Reduce::Sum, b, &[1]);
    assert_eq!((mid.shape, mid.data), (vec![2, 1, 2], vec![4.0, 6.0, 12.0, 14.0]));
}

#[test]
fn reduce_mean_counts_the_batch() {
    let mut g = Graph::new();
    let x = g.add_input("x", Shape(vec![Dim::Batch, Dim::Fixed(2)]), InputKind::Features);
    let m = g.mean_all(x);
    g.add_output("m", m);
    let xs = [t(&[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 9.0])];
    let out = eval(&g, &env(&xs, &[])).unwrap();
    assert_eq!((out.outputs[0].shape.clone(), out.outputs[0].data.clone()), (vec![], vec![4.0]));
}

#[test]
fn matmul_all_transpose_combinations() {
    // A = [[1,2,3],[4,5,6]], B = [[7,8],[9,10],[11,12]], A·B = [[58,64],[139,154]].
    let a = t(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let at = t(&[3, 2], &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    let b = t(&[3, 2], &[7.0, 8.0, 9.0, 10.0, 11.0, 12.0]);
    let bt = t(&[2, 3], &[7.0, 9.0, 11.0, 8.0, 10.0, 12.0]);
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        let ins =
            [if ta { at.clone() } else { a.clone() }, if tb { bt.clone() } else { b.clone() }];
        let out = run1(&ins, |g, x| g.matmul(x[0], x[1], ta, tb)).unwrap();
        assert_eq!(
            (out.shape, out.data),
            (vec![2, 2], vec![58.0, 64.0, 139.0, 154.0]),
            "{ta} {tb}"
        );
    }
}

// ---- the softmax family -----------------------------------------------------------------

fn xent(z: Tensor<f64>, y: &[f64]) -> Result<Tensor<f64>, EvalError> {
    let mut g = Graph::new();
    let c = z.shape[1] as u32;
    let zn = g.add_input("z", Shape::fixed(&z.shape), InputKind::Features);
    let yn = g.add_input("y", Shape::fixed(&[y.len()]), InputKind::Classes(c));
    let l = g.add(Op::SoftmaxCrossEntropy, vec![zn, yn], Shape::fixed(&[y.len()]));
    g.add_output("loss", l);
    let ins = [z, t(&[y.len()], y)];
    eval(&g, &env(&ins, &[])).map(|mut e| e.outputs.remove(0))
}

#[test]
fn softmax_and_log_softmax_by_hand() {
    let z = t(&[2, 3], &[1.0, 2.0, 3.0, 1000.0, 1000.0, 0.0]);
    let sm = run1(std::slice::from_ref(&z), |g, x| {
        g.add(Op::Softmax, vec![x[0]], Shape::fixed(&[2, 3]))
    });
    let p = [0.09003057317038046, 0.24472847105479764, 0.6652409557748219];
    close(&sm.unwrap().data, &[p[0], p[1], p[2], 0.5, 0.5, 0.0], 1e-15);
    let ls = run1(&[z], |g, x| g.add(Op::LogSoftmax, vec![x[0]], Shape::fixed(&[2, 3])));
    let lp = [-2.4076059644443806, -1.4076059644443806, -0.4076059644443804];
    let ln2 = std::f64::consts::LN_2;
    close(&ls.unwrap().data, &[lp[0], lp[1], lp[2], -ln2, -ln2, -1000.0 - ln2], 1e-15);
}

#[test]
fn softmax_cross_entropy_matches_the_naive_formula() {
    let z = [0.5, -1.0, 2.0, 0.0, 0.3, 0.1, -0.7, 1.2];
    let y = [2.0, 0.0];
    let got = xent(t(&[2, 4], &z), &y).unwrap();
    let naive = |row: &[f64], k: usize| {
        let s: f64 = row.iter().map(|v| v.exp()).sum();
        -(row[k].exp() / s).ln()
    };
    close(&got.data, &[naive(&z[..4], 2), naive(&z[4..], 0)], 1e-14);
}

#[test]
fn softmax_cross_entropy_is_stable_for_huge_logits() {
    // Shift invariance: [1000,999,998] behaves as [2,1,0]; −log softmax = log(1+e⁻¹+e⁻²).
    let got = xent(t(&[2, 3], &[1000.0, 999.0, 998.0, -1000.0, 0.0, 1000.0]), &[0.0, 0.0]);
    close(&got.unwrap().data, &[0.40760596444438046, 2000.0], 1e-15);
}

#[test]
fn bad_class_labels_are_errors() {
    for bad in [3.0, -1.0, 1.5, f64::NAN] {
        let err = xent(t(&[1, 3], &[0.0, 0.0, 0.0]), &[bad]).unwrap_err();
        assert!(matches!(err, EvalError::Label { classes: 3, .. }), "{err:?}");
    }
    let one_hot =
        run1(&[t(&[1], &[4.0])], |g, x| g.add(Op::OneHot(4), vec![x[0]], Shape::fixed(&[1, 4])));
    let err = one_hot.unwrap_err();
    assert_eq!(err.to_string(), "class label 4 is not an integer in 0..4 (node %1)");
}

#[test]
fn one_hot_and_argmax() {
    let y = t(&[3], &[2.0, 0.0, 1.0]);
    let oh = run1(&[y], |g, x| g.add(Op::OneHot(3), vec![x[0]], Shape::fixed(&[3, 3]))).unwrap();
    assert_eq!(oh.data, [0., 0., 1., 1., 0., 0., 0., 1., 0.]);
    // Ties go to the first maximum.
    let a = t(&[3, 3], &[1.0, 5.0, 5.0, 7.0, 7.0, 7.0, -3.0, -2.0, -9.0]);
    let am = run1(&[a], |g, x| g.add(Op::ArgMax, vec![x[0]], Shape::fixed(&[3]))).unwrap();
    assert_eq!((am.shape, am.data), (vec![3], vec![1.0, 0.0, 1.0]));
}

// ---- leaves, environment and the roots --------------------------------------------------

#[test]
fn scalars_and_constants() {
    let out = run1(&[], |g, _| {
        let lr = g.scalar(ScalarArg::Lr);
        let step = g.scalar(ScalarArg::Step);
        let c = g.constant(0.5, Shape::scalar());
        let a = g.mul(lr, step);
        g.add2(a, c)
    });
    close(&out.unwrap().data, &[0.1 * 3.0 + 0.5], 1e-16);
}

/// `x: [B,2]`, `y: [B]`, `w: [2]`; output `sum(x·w)`, update `w := w − lr·1`.
fn batch_graph() -> Graph {
    let mut g = Graph::new();
    let x = g.add_input("x", Shape(vec![Dim::Batch, Dim::Fixed(2)]), InputKind::Features);
    g.add_input("y", Shape(vec![Dim::Batch]), InputKind::Targets);
    let w = g.add_param("w", Shape::fixed(&[2]));
    let wb = g.broadcast(w, &Shape(vec![Dim::Batch, Dim::Fixed(2)]));
    let xw = g.mul(x, wb);
    let s = g.sum_all(xw);
    g.add_output("s", s);
    let lr = g.scalar(ScalarArg::Lr);
    let lr2 = g.broadcast(lr, &Shape::fixed(&[2]));
    let w2 = g.sub(w, lr2);
    g.updates.push(crate::graph::Update { target: Target::Param(0), node: w2 });
    g
}

#[test]
fn eval_and_apply_updates() {
    let g = batch_graph();
    let ins = [t(&[2, 2], &[1.0, 2.0, 3.0, 4.0]), t(&[2], &[0.0, 0.0])];
    let mut params = vec![t(&[2], &[10.0, 100.0])];
    let ev = eval(&g, &env(&ins, &params)).unwrap();
    assert_eq!(ev.outputs[0].data, [10.0 + 200.0 + 30.0 + 400.0]);
    apply_updates(&g, &ev, &mut params, &mut []);
    close(&params[0].data, &[9.9, 99.9], 1e-15);
}

#[test]
fn environment_mistakes_are_errors() {
    let g = batch_graph();
    let p = [t(&[2], &[1.0, 1.0])];
    let x = t(&[2, 2], &[1.0; 4]);
    let run =
        |ins: &[Tensor<f64>], ps: &[Tensor<f64>]| eval(&g, &env(ins, ps)).unwrap_err().to_string();
    assert_eq!(run(std::slice::from_ref(&x), &p), "expected 2 input tensor(s), got 1");
    assert_eq!(
        run(&[x.clone(), t(&[3], &[0.0; 3])], &p),
        "`y` has batch size 3, but `x` has batch size 2"
    );
    assert_eq!(
        run(&[t(&[2, 3], &[0.0; 6]), t(&[2], &[0.0; 2])], &p),
        "input `x` has shape [2,3], expected [B,2]"
    );
    assert_eq!(
        run(&[x.clone(), t(&[2], &[0.0; 2])], &[t(&[2, 1], &[0.0; 2])]),
        "parameter `w` has shape [2,1], expected [2]"
    );
    let bad = Tensor { shape: vec![2], data: vec![0.0] };
    assert_eq!(
        run(&[x, t(&[2], &[0.0; 2])], &[bad]),
        "parameter `w` holds 1 value(s) but its shape has 2 element(s)"
    );
}

#[test]
fn batch_size_must_be_known() {
    let mut g = Graph::new();
    let c = g.constant(1.0, Shape(vec![Dim::Batch]));
    g.add_output("c", c);
    let err = eval(&g, &env(&[], &[])).unwrap_err();
    assert_eq!(err, EvalError::NoBatch { node: NodeId(0) });
}

#[test]
fn eval_skips_dead_nodes_and_eval_nodes_computes_all() {
    let mut g = Graph::new();
    let y = g.add_input("y", Shape::fixed(&[1]), InputKind::Classes(2));
    let dead = g.add(Op::OneHot(2), vec![y], Shape::fixed(&[1, 2]));
    let live = g.neg(y);
    g.add_output("n", live);
    let ins = [t(&[1], &[5.0])];
    assert_eq!(eval(&g, &env(&ins, &[])).unwrap().outputs[0].data, [-5.0]);
    let err = eval_nodes(&g, &env(&ins, &[])).unwrap_err();
    assert_eq!(err, EvalError::Label { node: dead, value: 5.0, classes: 2 });
    let ok = [t(&[1], &[1.0])];
    let all = eval_nodes(&g, &env(&ok, &[])).unwrap();
    assert_eq!(
        all.iter().map(|v| v.data.clone()).collect::<Vec<_>>(),
        [vec![1.0], vec![0.0, 1.0], vec![-1.0]]
    );
}

#[test]
fn evaluates_in_f32() {
    let g = batch_graph();
    let ins = [Tensor::new(vec![1, 2], vec![1.0f32, 2.0]), Tensor::new(vec![1], vec![0.0f32])];
    let params = [Tensor::new(vec![2], vec![0.5f32, 0.25])];
    let e = Env { inputs: &ins, params: &params, states: &[], lr: 0.5, step: 1.0 };
    let ev = eval(&g, &e).unwrap();
    assert_eq!((ev.outputs[0].data[0], ev.updates[0].data.clone()), (1.0f32, vec![0.0, -0.25]));
    assert_eq!(Real::erf(0.5f32), 0.5204999f32);
}

// ---- erf --------------------------------------------------------------------------------

#[test]
#[allow(clippy::excessive_precision)] // the table's digits, as published
fn erf_matches_tabulated_values() {
    // erf to 21 digits (Abramowitz & Stegun 7.1; DLMF), both branches and the boundary.
    let table = [
        (1e-10, 1.128379167095512574e-10),
        (0.1, 0.112462916018284892203),
        (0.5, 0.520499877813046537682),
        (1.0, 0.842700792949714869341),
        (1.5, 0.966105146475310727066),
        (2.0, 0.995322265018952734162),
        (3.0, 0.999977909503001414558),
        (4.0, 0.999999984582742099720),
    ];
    for (x, want) in table {
        for (x, want) in [(x, want), (-x, -want)] {
            let got = erf(x);
            assert!(((got - want) / want).abs() < 1.5e-15, "erf({x}) = {got}, want {want}");
        }
    }
    assert_eq!((erf(0.0), erf(6.0), erf(-40.0), erf(f64::INFINITY)), (0.0, 1.0, -1.0, 1.0));
    assert!(erf(f64::NAN).is_nan());
}

#[test]
fn erf_branches_agree_at_the_seam() {
    // The series also converges above 3; both expansions must agree there.
    for x in [2.8, 3.0, 3.3] {
        let (s, c) = (real::erf_series(x), 1.0 - real::erfc_cf(x));
        assert!((s - c).abs() < 2e-15, "{x}: series {s}, continued fraction {c}");
    }
}
