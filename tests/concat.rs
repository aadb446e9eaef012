//! Concatenation and slicing: `concat(a, b, ..., axis = -1)` in the language, the graph ops
//! `concat` and `slice` (the VJP of a concatenation is a slice of the incoming gradient per
//! operand, the VJP of a slice the gradient placed between zero blocks).
//!
//! Oracles: hand-computed values; central finite differences in f64 for the gradients; the
//! interpreter for the JIT (losses and parameters after every step at batch sizes 1, 7 and
//! the whole data set); the checker's messages for shape mistakes (the rendered diagnostics
//! of tests/cases/errors/check_concat_*.nn are snapshot-tested by tests/diagnostics.rs).

mod index_harness;

use std::path::Path;

use index_harness::{
    compile, first_error, gradient_check, jit_matches_interp, random, values, weighted_loss,
};
use nnc::graph::eval::{eval, Env};
use nnc::graph::{Dim, Graph, InputKind, Shape, UnaryOp};
use nnc::pipeline::{self, Stage};
use nnc::tensor::Tensor;

fn t(shape: &[usize], data: Vec<f64>) -> Tensor<f64> {
    Tensor::new(shape.to_vec(), data)
}

fn fixed(d: &[usize]) -> Shape {
    Shape::fixed(d)
}

#[test]
fn concat_and_slice_evaluate_by_hand() {
    let mut g = Graph::new();
    let a = g.add_input("a", fixed(&[2, 2]), InputKind::Features);
    let b = g.add_input("b", fixed(&[2, 1]), InputKind::Features);
    let c = g.concat(a, b, 1);
    let s = g.slice(c, 1, 1, 2);
    let r = g.concat(a, a, 0);
    let p = g.pad(b, 1, 1, 3);
    for (name, n) in [("c", c), ("s", s), ("r", r), ("p", p)] {
        g.add_output(name, n);
    }
    let inputs = [t(&[2, 2], vec![1.0, 2.0, 3.0, 4.0]), t(&[2, 1], vec![5.0, 6.0])];
    let env = Env { inputs: &inputs, params: &[], states: &[], lr: 0.0, step: 1.0 };
    let out = eval(&g, &env).unwrap().outputs;
    assert_eq!(out[0], t(&[2, 3], vec![1.0, 2.0, 5.0, 3.0, 4.0, 6.0]));
    assert_eq!(out[1], t(&[2, 2], vec![2.0, 5.0, 4.0, 6.0]));
    assert_eq!(out[2], t(&[4, 2], vec![1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0]));
    assert_eq!(out[3], t(&[2, 3], vec![0.0, 5.0, 0.0, 0.0, 6.0, 0.0]));
}

#[test]
fn concat_gradients_match_finite_differences() {
    // Last axis, first axis, and the middle axis of a batch of matrices.
    let cases: [(&[usize], &[usize], usize); 3] =
        [(&[3, 2], &[3, 4], 1), (&[2, 3], &[1, 3], 0), (&[2, 3], &[1, 3], 1)];
    for (k, (sa, sb, axis)) in cases.into_iter().enumerate() {
        let mut g = Graph::new();
        let pa = g.add_param("a", fixed(sa));
        let pb = g.add_param("b", fixed(sb));
        let (a, b) = if k == 2 {
            // [B, 2, 3] ++ [B, 1, 3] on axis 1: the operands carry the batch dimension.
            let xs = Shape(vec![Dim::Batch, Dim::Fixed(2), Dim::Fixed(3)]);
            let x = g.add_input("x", xs.clone(), InputKind::Features);
            let ab = g.broadcast(pa, &xs);
            let xa = g.mul(x, ab);
            let bb = g.broadcast(pb, &Shape(vec![Dim::Batch, Dim::Fixed(1), Dim::Fixed(3)]));
            (xa, bb)
        } else {
            (pa, pb)
        };
        let c = g.concat(a, b, if k == 2 { 1 } else { axis });
        let loss = weighted_loss(&mut g, c);
        let params = [random(sa, 1 + k as u64), random(sb, 11 + k as u64)];
        let batch = 3;
        let inputs: Vec<Tensor<f64>> = if k == 2 {
            vec![random(&[batch, 2, 3], 21), random(&[batch, 3, 3], 22)]
        } else {
            vec![random(&g.shape(c).concrete(1), 23)]
        };
        gradient_check(&format!("concat case {k}"), &g, loss, &params, &inputs);
    }
}

#[test]
fn chained_concat_gradients_match_finite_differences() {
    let mut g = Graph::new();
    let a = g.add_param("a", fixed(&[2, 1]));
    let b = g.add_param("b", fixed(&[2, 3]));
    let c = g.add_param("c", fixed(&[2, 2]));
    let ab = g.concat(a, b, 1);
    let abc = g.concat(ab, c, 1);
    let th = g.unary(UnaryOp::Tanh, abc);
    let loss = weighted_loss(&mut g, th);
    let params = [random(&[2, 1], 3), random(&[2, 3], 4), random(&[2, 2], 5)];
    let grads = gradient_check("chained concat", &g, loss, &params, &[random(&[2, 6], 6)]);
    assert!(grads.iter().all(|d| d.data.iter().any(|v| v.abs() > 1e-3)));
}

#[test]
fn slice_gradients_match_finite_differences() {
    // (shape, axis, start, len): inside, at the start, at the end, a middle axis.
    let cases: [(&[usize], usize, usize, usize); 4] =
        [(&[4, 5], 1, 1, 3), (&[4, 5], 0, 0, 2), (&[4, 5], 0, 2, 2), (&[2, 4, 3], 1, 1, 2)];
    for (k, (shape, axis, start, len)) in cases.into_iter().enumerate() {
        let mut g = Graph::new();
        let a = g.add_param("a", fixed(shape));
        let s = g.slice(a, axis, start, len);
        let loss = weighted_loss(&mut g, s);
        let w = random(&g.shape(s).concrete(1), 30 + k as u64);
        let grads =
            gradient_check(&format!("slice case {k}"), &g, loss, &[random(shape, k as u64)], &[w]);
        // Elements outside the slice get exactly zero.
        let zeros = grads[0].data.iter().filter(|v| **v == 0.0).count();
        let total: usize = shape.iter().product();
        assert_eq!(zeros, total - total / shape[axis] * len, "slice case {k}");
    }
}

/// A DenseNet-style MLP on Gaussian blobs: `fc2` reads `[x, h1]`, the head `[x, h1, h2]`;
/// plus a weight assembled from two parameters by a concatenation along axis 0.
const DENSE: &str = r#"
model Dense {
    input x: [B, 5]
    label y: class[B] of 3
    param top: [2, 6] = normal(0, 0.3)
    param bottom: [3, 6] = normal(0, 0.3)
    fc1 = Dense(5 -> 6)
    fc2 = Dense(11 -> 4)
    fc3 = Dense(15 -> 3)
    h1 = tanh(fc1(x) + x @ concat(top, bottom, axis = 0))
    h2 = relu(fc2(concat(x, h1)))
    logits = fc3(concat(x, h1, h2, axis = 1))
    loss = cross_entropy(logits, y)
    metric accuracy(logits, y)
}
optimizer sgd(lr = 0.1)
train { data = blobs(n = 60, noise = 0.5), batch = 8, seed = 3 }
"#;

#[test]
fn jit_matches_the_interpreter_on_dense_connections() {
    jit_matches_interp(DENSE, Path::new("."), &[1, 7, 0], 4);
}

#[test]
fn the_ir_shows_concatenations_and_their_gradient_slices() {
    let grad = pipeline::ir(DENSE, Stage::Grad, 1).unwrap();
    assert!(grad.contains("concat[0] %"), "{grad}");
    assert!(grad.contains("concat[1] %"), "{grad}");
    // The gradient of [x, h1] (5 + 6) flows back to h1 through the slice 5..11.
    assert!(grad.contains("slice[1, 5..11]"), "{grad}");
    assert!(grad.contains("slice[0, 0..2]") && grad.contains("slice[0, 2..5]"), "{grad}");
    let kernels = pipeline::ir(DENSE, Stage::Kernels, 1).unwrap();
    assert!(kernels.contains("concat t"), "{kernels}");
    assert!(kernels.contains("slice t"), "{kernels}");
}

#[test]
fn the_example_trains_on_both_backends() {
    let src = std::fs::read_to_string("examples/dense_connections.nn").unwrap();
    let c = compile(&src);
    let base = Path::new("examples");
    for kind in [
        nnc::train::session::BackendKind::Interp,
        nnc::train::session::BackendKind::Jit { threads: 1 },
    ] {
        let o = nnc::train::session::Options { epochs: Some(5), quiet: true, ..Default::default() };
        let s = nnc::train::session::train(&c, kind, base, &o).unwrap();
        let acc = s.validation.as_ref().unwrap()[1];
        assert!(acc > 0.85, "{kind:?}: validation accuracy {acc}");
    }
}

// ---- the checker ------------------------------------------------------------------------

fn model(body: &str) -> String {
    format!(
        "model M {{\n    input x: [B, 4]\n    label y: class[B] of 2\n    param p: [3, 4] = zeros\n    fc = Dense(4 -> 2)\n{body}\n}}\noptimizer sgd(lr = 0.1)\n"
    )
}

/// The shape of the last concatenation `z = ...` in `body` builds.
fn shape_of(body: &str) -> String {
    let src = model(&format!("{body}\n    loss = cross_entropy(fc(x), y) + 0 * sum(z)"));
    let c = compile(&src);
    let is_concat = |v: &&nnc::check::Value| matches!(v.kind, nnc::check::ValueKind::Concat { .. });
    c.model.values.iter().rev().find(is_concat).map(|v| v.shape.to_string()).unwrap_or_default()
}

#[test]
fn concat_shapes_follow_torch_cat() {
    assert_eq!(shape_of("    z = concat(x, x)"), "[B,8]");
    assert_eq!(shape_of("    z = concat(x, x, x, axis = -1)"), "[B,12]");
    assert_eq!(shape_of("    z = concat(x, x, axis = 1)"), "[B,8]");
    assert_eq!(shape_of("    z = concat(p, p, axis = 0)"), "[6,4]");
    assert_eq!(shape_of("    z = concat(p, p, axis = -2)"), "[6,4]");
}

#[test]
fn concat_mistakes_are_reported_in_the_users_terms() {
    let err =
        |body: &str| first_error(&model(&format!("{body}\n    loss = cross_entropy(fc(x), y)")));
    assert_eq!(
        err("    z = concat(x, p)"),
        "concat along axis 1 needs equal sizes on the other axes: [B,4] and [3,4] differ on axis 0"
    );
    assert_eq!(
        err("    z = concat(x, x, axis = 0)"),
        "concat cannot join along the batch axis `B`"
    );
    assert_eq!(
        err("    z = concat(x, x, axis = 2)"),
        "axis must be an integer from -2 to 1 for [B,4], found 2"
    );
    assert_eq!(
        err("    z = concat(x, x, axis = 0.5)"),
        "axis must be an integer from -2 to 1 for [B,4], found 0.5"
    );
    assert_eq!(
        err("    z = concat(x, sum(x, axis = 1))"),
        "concat needs tensors of the same rank, but [B,4] and [B] differ"
    );
    assert_eq!(err("    z = concat(x, x, dim = 1)"), "concat has no parameter `dim`");
    assert_eq!(err("    z = concat(axis = 1)"), "concat needs at least one tensor");
    assert_eq!(
        err("    z = concat(1, x)"),
        "concat joins tensors along an axis, but this is a scalar"
    );
    assert_eq!(
        err("    z = flatten(sum(x, axis = 1))"),
        "flatten needs at least two dimensions, but this is [B]"
    );
}

/// The JIT's index kernels on views the language does not produce directly: slices and
/// concatenations of a middle and the last axis of batched 3-d values, and the gradients
/// (zero-padded placements of the slices, concatenations with zero blocks).
#[test]
fn jit_slices_pads_and_inner_concats_match_the_interpreter() {
    let mut g = Graph::new();
    let a = g.add_param("a", fixed(&[4, 5]));
    let xs = Shape(vec![Dim::Batch, Dim::Fixed(4), Dim::Fixed(5)]);
    let x = g.add_input("x", xs.clone(), InputKind::Features);
    let ab = g.broadcast(a, &xs);
    let y = g.mul(x, ab);
    let s = g.slice(y, 2, 1, 3); // [B,4,3]
    let c = g.concat(s, y, 2); // [B,4,8]
    let m = g.slice(c, 1, 1, 2); // [B,2,8]
    let th = g.unary(UnaryOp::Tanh, m);
    let loss = g.sum_all(th);
    g.add_output("loss", loss);
    let d = nnc::autodiff::grad(&mut g, loss, &[a]);
    g.add_output("grad.a", d[0]);
    g.add_output("c", c);
    let mut jit = nnc::jit::compile(&g, &g, 1).unwrap();
    let a0: Vec<f32> = values(40, 20).iter().map(|&v| v as f32).collect();
    jit.set_params(&[Tensor::new(vec![4, 5], a0.clone())]).unwrap();
    for batch in [1, 3, 7] {
        let xv: Vec<f32> =
            values(41 + batch as u64, batch * 20).iter().map(|&v| v as f32).collect();
        let inputs = [Tensor::new(vec![batch, 4, 5], xv)];
        let got = jit.step_full(&inputs, 0.0, 1).unwrap();
        let params = [Tensor::new(vec![4, 5], a0.clone())];
        let env = Env { inputs: &inputs, params: &params, states: &[], lr: 0.0, step: 1.0 };
        let want = eval(&g, &env).unwrap().outputs;
        for (k, (x, y)) in got.iter().zip(&want).enumerate() {
            assert_eq!(x.shape, y.shape, "output {k}");
            for (p, q) in x.data.iter().zip(&y.data) {
                assert!(
                    (p - q).abs() <= 1e-5 * (1.0 + q.abs()),
                    "batch {batch}, output {k}: {p} vs {q}"
                );
            }
        }
    }
}
