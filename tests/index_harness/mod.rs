//! Shared by tests/concat.rs and tests/embedding.rs (the index ops: concat, slice, gather,
//! scatter-add):
//! - [`gradient_check`]: a graph's autodiff gradients against central finite differences,
//!   both evaluated in `f64` by the reference interpreter;
//! - [`jit_matches_interp`]: a `.nn` program trained on both backends from the same
//!   parameters, losses and parameters compared after every step;
//! - [`compile`]: a program or its rendered diagnostics;
//! - [`random`] tensors and the [`weighted_loss`] the gradient checks differentiate.
#![allow(dead_code)]

use std::path::Path;

use nnc::autodiff::grad;
use nnc::graph::eval::{eval, Env};
use nnc::graph::verify::verify;
use nnc::graph::{BinaryOp, Graph, InputKind, NodeId, UnaryOp};
use nnc::pipeline::{self, Compiled};
use nnc::tensor::Tensor;
use nnc::train::data;
use nnc::train::session::{self, BackendKind, Options};

const H: f64 = 1e-6;
const TOL: f64 = 1e-6;

/// The compiled program, panicking with the rendered diagnostics.
pub fn compile(src: &str) -> Compiled {
    pipeline::compile(src)
        .unwrap_or_else(|d| panic!("{}", nnc::diagnostic::render_all(&d, "test.nn", src)))
}

/// The first diagnostic's message for a program that must not compile.
pub fn first_error(src: &str) -> String {
    match pipeline::compile(src) {
        Ok(_) => panic!("expected an error in:\n{src}"),
        Err(d) => d[0].message.clone(),
    }
}

fn run(g: &Graph, params: &[Tensor<f64>], inputs: &[Tensor<f64>]) -> Vec<Tensor<f64>> {
    let env = Env { inputs, params, states: &[], lr: 0.0, step: 1.0 };
    eval(g, &env).expect("eval").outputs
}

/// Checks `d loss / d param` for every parameter of `g` (whose output 0 is the scalar
/// `loss`): autodiff against `(L(p + h) − L(p − h)) / 2h`, to 1e-6 relative/absolute.
/// Returns the autodiff gradients.
pub fn gradient_check(
    what: &str,
    g: &Graph,
    loss: NodeId,
    params: &[Tensor<f64>],
    inputs: &[Tensor<f64>],
) -> Vec<Tensor<f64>> {
    let mut gg = g.clone();
    let wrt: Vec<NodeId> = (0..params.len() as u32).map(|i| gg.param(i)).collect();
    let grads = grad(&mut gg, loss, &wrt);
    verify(&gg).unwrap_or_else(|e| panic!("{what}: {}", e.join("\n")));
    gg.outputs.clear();
    for (i, d) in grads.into_iter().enumerate() {
        gg.add_output(format!("grad.{i}"), d);
    }
    let analytic = run(&gg, params, inputs);
    let mut p = params.to_vec();
    for i in 0..params.len() {
        for j in 0..params[i].numel() {
            let x = params[i].data[j];
            p[i].data[j] = x + H;
            let up = run(g, &p, inputs)[0].data[0];
            p[i].data[j] = x - H;
            let down = run(g, &p, inputs)[0].data[0];
            p[i].data[j] = x;
            let (a, n) = (analytic[i].data[j], (up - down) / (2.0 * H));
            assert!(
                (a - n).abs() <= TOL * n.abs().max(1.0),
                "{what}: d/dparam{i}[{j}]: autodiff {a} vs numeric {n}"
            );
        }
    }
    analytic
}

/// `loss = Σ w ⊙ y²` for the node `y` (weights `w` an extra input, so the upstream gradient
/// is neither constant nor linear in the parameters).
pub fn weighted_loss(g: &mut Graph, y: NodeId) -> NodeId {
    let w = g.add_input("w", g.shape(y).clone(), InputKind::Features);
    let sq = g.unary(UnaryOp::Square, y);
    let p = g.binary(BinaryOp::Mul, w, sq);
    let l = g.sum_all(p);
    g.add_output("loss", l);
    l
}

/// A tensor of `shape` holding [`values`]`(seed, ..)`.
pub fn random(shape: &[usize], seed: u64) -> Tensor<f64> {
    Tensor::new(shape.to_vec(), values(seed, shape.iter().product()))
}

/// Deterministic values in `[-1, 1)`.
pub fn values(seed: u64, n: usize) -> Vec<f64> {
    (0..n as u64)
        .map(|i| {
            let h =
                (seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i).wrapping_mul(0xD1B5_4A32_D192_ED03);
            ((h >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

/// `|a − b| ≤ 2e-5·(|b| + scale)` elementwise, `scale` the largest `|b|` of the group.
fn close(what: &str, got: &[Tensor<f32>], want: &[Tensor<f32>]) {
    assert_eq!(got.len(), want.len(), "{what}");
    let scale = want.iter().flat_map(|t| &t.data).fold(0f32, |m, x| m.max(x.abs()));
    for (k, (a, b)) in got.iter().zip(want).enumerate() {
        assert_eq!(a.shape, b.shape, "{what} #{k}");
        for (i, (x, y)) in a.data.iter().zip(&b.data).enumerate() {
            let tol = 2e-5 * (y.abs() + scale);
            assert!((x - y).abs() <= tol, "{what} #{k}[{i}]: jit {x}, interp {y}");
        }
    }
}

/// Trains the program `src` (data relative to `base`) for `steps` steps of each batch size
/// in `sizes` (0 = the whole data set) on the interpreter and on the JIT, both from the
/// program's initial parameters, and compares every step's outputs (loss, metrics) and the
/// parameters after it. The JIT is compiled once and serves every batch size; the program's
/// optimizer must keep no state (plain SGD), so that resetting the parameters restarts it.
pub fn jit_matches_interp(src: &str, base: &Path, sizes: &[usize], steps: usize) {
    let c = compile(src);
    assert!(c.opt.states.is_empty(), "use an optimizer without state");
    let spec = session::effective_spec(&c.model, &Options::default());
    let ds = session::load_data(&c.model, &spec, base, None).expect("data");
    let params = session::initial_params(&c.model, spec.seed, None).unwrap();
    let mut jit = session::make_backend(BackendKind::Jit { threads: 1 }, &c, params.clone())
        .expect("the JIT compiles");
    for &size in sizes {
        let size = if size == 0 { ds.len() } else { size };
        let mut interp = session::make_backend(BackendKind::Interp, &c, params.clone()).unwrap();
        jit.set_params(&params).unwrap();
        for t in 1..=steps as u64 {
            let start = (t as usize - 1) * size;
            let idx: Vec<usize> = (start..start + size).map(|k| k % ds.len()).collect();
            let (x, y) = data::batch(&ds, &idx);
            let inputs = session::inputs_for(&c.model, x, y);
            let want = interp.step_full(&inputs, 0.05, t).unwrap();
            let got = jit.step_full(&inputs, 0.05, t).unwrap();
            let what = format!("batch {size}, step {t}");
            close(&format!("{what} outputs"), &got, &want);
            close(&format!("{what} parameters"), &jit.params(), &interp.params());
        }
    }
}
