//! Differential tests of the JIT against the reference interpreter (`graph::eval` in f32):
//! for every example and `tests/cases/ok` model, and for randomly generated models and
//! graphs, the JIT's outputs, updated parameters and optimizer state after several steps
//! equal the interpreter's, at batch sizes 1, 7 and the whole data set (at most 2000, or 256
//! for a model with convolutions or pooling; random models at 1, 7 and 60, random graphs at
//! 1, 7 and 33), all through one compilation (the batch size changes between calls).
//!
//! Closeness and the comparison itself: `tests/common/differential.rs`.

use std::path::{Path, PathBuf};

use nnc::graph::eval::{eval, Env};
use nnc::graph::Graph;
use nnc::jit;
use nnc::pipeline;
use nnc::runtime::Backend;
use nnc::tensor::Tensor;
use nnc::train::session;

mod common;
use common::differential::{all_close, differential, noise, to64};
use common::models::{batches_of, dataset, random_model, Rng};

/// Every example and ok case, and the small benchmark configurations.
fn programs() -> Vec<PathBuf> {
    let mut files = common::programs();
    // The small benchmark configurations too (C and D are too large for the f64 reference):
    // E's regression head becomes a two-pass row kernel that keeps its tanh in a scratch.
    files.extend(["a", "b", "e"].map(|c| PathBuf::from(format!("examples/bench/{c}.nn"))));
    files
}

#[test]
fn every_program_matches_the_interpreter_at_batch_sizes_1_7_and_all() {
    let mut failures = Vec::new();
    for path in programs() {
        let src = std::fs::read_to_string(&path).unwrap();
        let c = pipeline::compile(&src).unwrap_or_else(|_| panic!("{} compiles", path.display()));
        let base = path.parent().unwrap();
        let spec = session::effective_spec(&c.model, &session::Options::default());
        let params = session::initial_params(&c.model, spec.seed, None).unwrap();
        let mut jit = jit::compile(&c.opt, &c.forward, 1).unwrap();
        // The f64 reference sums convolutions tap by tap: a convolutional model's whole-data
        // batch is capped lower, so that its three steps take seconds, not minutes.
        let windows = c.opt.nodes().any(|(_, n)| n.op.window().is_some());
        let all = dataset(&c, base).len().min(if windows { 256 } else { 2000 });
        for size in [1, 7, all, 7] {
            let batches = batches_of(&c, base, size, 3).unwrap();
            if let Err(e) = differential(&c.opt, &c.forward, &mut jit, &params, &batches, 0.01) {
                failures.push(format!("{} at batch {size}: {e}", path.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `nnc grad`'s two engines: the JIT's gradients (the `grad` stage compiled as a program of
/// its own) equal the interpreter's, for every program at batch sizes 1 and 7.
#[test]
fn every_program_has_the_interpreters_gradients() {
    let mut failures = Vec::new();
    for path in programs() {
        let src = std::fs::read_to_string(&path).unwrap();
        let c = pipeline::compile(&src).unwrap();
        let base = path.parent().unwrap();
        let spec = session::effective_spec(&c.model, &session::Options::default());
        let params = session::initial_params(&c.model, spec.seed, None).unwrap();
        for size in [1, 7] {
            let inputs = &batches_of(&c, base, size, 1).unwrap()[0];
            let grads = |kind| session::gradients(&c, kind, inputs, &params);
            let jit = grads(session::BackendKind::Jit { threads: 1 });
            let interp = grads(session::BackendKind::Interp).unwrap();
            let exact = {
                let g = nnc::passes::optimize(&c.grad);
                let states = nnc::train::state::initial_buffers(&c.model);
                let env = Env {
                    inputs: &to64(inputs),
                    params: &to64(&params),
                    states: &to64(&states),
                    lr: 0.0,
                    step: 0.0,
                };
                let ev = eval(&g, &env).unwrap();
                let at = |p: &nnc::graph::ParamInfo| {
                    let name = format!("grad.{}", p.name);
                    ev.outputs[g.outputs.iter().position(|o| o.name == name).unwrap()].clone()
                };
                g.params.iter().map(at).collect::<Vec<_>>()
            };
            let what = format!("{} gradients at batch {size}", path.display());
            let jit = jit.map_err(|e| e.to_string());
            if let Err(e) = jit.and_then(|j| all_close(&what, &j, &interp, &exact)) {
                failures.push(e);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---- random models ----------------------------------------------------------------------

#[test]
fn random_models_match_the_interpreter() {
    let mut failures = Vec::new();
    let base = Path::new("examples");
    for seed in 0..40 {
        let src = random_model(seed);
        let c = match pipeline::compile(&src) {
            Ok(c) => c,
            Err(d) => panic!("{src}\n{}", nnc::diagnostic::render_all(&d, "random.nn", &src)),
        };
        let params = session::initial_params(&c.model, seed, None).unwrap();
        let mut jit = jit::compile(&c.opt, &c.forward, 1).unwrap();
        for size in [1, 7, 60] {
            let batches = batches_of(&c, base, size, 3).unwrap();
            if let Err(e) = differential(&c.opt, &c.forward, &mut jit, &params, &batches, 0.01) {
                failures.push(format!("seed {seed} at batch {size}: {e}\n{src}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---- random graphs ----------------------------------------------------------------------

use nnc::graph::{
    Axes, BinaryOp, Dim, InputKind, NodeId, Op, Reduce, Shape, Target, UnaryOp, Update,
};

/// Builds random elementwise/reduction/softmax/matmul graphs over `x, z: [B, n]`, labels
/// `y: [B]`, parameters `w: [n]`, `m: [n, n]` and a state `s: [n]`, with outputs and updates
/// of every parameter and the state. Operands of partial functions are made safe first
/// (`log`, `sqrt`, `pow` of `softplus(a) + 0.5`; division by `1 + a²`).
struct GraphGen<'a> {
    g: Graph,
    r: &'a mut Rng,
    n: usize,
    /// Values of shape `[B, n]`.
    pool: Vec<NodeId>,
}

impl GraphGen<'_> {
    fn bn(&self) -> Shape {
        Shape(vec![Dim::Batch, Dim::Fixed(self.n as u32)])
    }
    fn any(&mut self) -> NodeId {
        self.pool[self.r.below(self.pool.len())]
    }
    fn c(&mut self, v: f64, shape: &Shape) -> NodeId {
        self.g.constant(v, shape.clone())
    }
    fn positive(&mut self, a: NodeId) -> NodeId {
        let sp = self.g.unary(UnaryOp::Softplus, a);
        let half = self.c(0.5, &self.g.shape(a).clone());
        self.g.add2(sp, half)
    }
    fn unary(&mut self) -> NodeId {
        use UnaryOp::*;
        let ops = [
            Neg, Exp, Log, Log1p, Sqrt, Recip, Abs, Sign, Square, Tanh, Sigmoid, Relu, Step,
            Softplus, Erf,
        ];
        let op = ops[self.r.below(ops.len())];
        let a = self.any();
        let a = match op {
            Log | Sqrt | Recip | Log1p => self.positive(a),
            Exp => self.g.unary(Tanh, a),
            _ => a,
        };
        self.g.unary(op, a)
    }
    fn binary(&mut self) -> NodeId {
        use BinaryOp::*;
        let ops = [Add, Sub, Mul, Div, Max, Min, Pow, Gt, Ge, Eq];
        let op = ops[self.r.below(ops.len())];
        let (a, b) = (self.any(), self.any());
        match op {
            Div => {
                let sq = self.g.unary(UnaryOp::Square, b);
                let one = self.c(1.0, &self.bn());
                let d = self.g.add2(sq, one);
                self.g.div(a, d)
            }
            Pow => {
                let base = self.positive(a);
                let e = self.g.unary(UnaryOp::Tanh, b);
                self.g.binary(Pow, base, e)
            }
            _ => self.g.binary(op, a, b),
        }
    }
    /// A per-row statistic broadcast back: `a ∘ reduce(b, axis 1)`.
    fn row_stat(&mut self) -> NodeId {
        let (a, b) = (self.any(), self.any());
        let kind = [Reduce::Sum, Reduce::Mean, Reduce::Max][self.r.below(3)];
        let red = self.g.reduce(kind, b, Axes::of(&[1]));
        let red = if self.r.below(2) == 0 {
            let flat = self.g.reshape(red, &Shape(vec![Dim::Batch]));
            self.g.reshape(flat, &Shape(vec![Dim::Batch, Dim::Fixed(1)]))
        } else {
            red
        };
        let bc = self.g.broadcast(red, &self.bn());
        self.g.sub(a, bc)
    }
    /// A per-column or full statistic broadcast back.
    fn col_stat(&mut self) -> NodeId {
        let (a, b) = (self.any(), self.any());
        let kind = [Reduce::Sum, Reduce::Mean, Reduce::Max][self.r.below(3)];
        let axes = if self.r.below(2) == 0 { Axes::of(&[0]) } else { Axes::of(&[0, 1]) };
        let red = self.g.reduce(kind, b, axes);
        let bc = self.g.broadcast(red, &self.bn());
        self.g.mul(a, bc)
    }
    fn param_row(&mut self, w: NodeId) -> NodeId {
        let a = self.any();
        let bc = self.g.broadcast(w, &self.bn());
        self.g.add2(a, bc)
    }
    fn softmaxish(&mut self) -> NodeId {
        let a = self.any();
        let op = if self.r.below(2) == 0 { Op::Softmax } else { Op::LogSoftmax };
        self.g.add(op, vec![a], self.bn())
    }
    fn product(&mut self, m: NodeId) -> NodeId {
        let a = self.any();
        let tb = self.r.below(2) == 0;
        self.g.matmul(a, m, false, tb)
    }
    /// Elementwise work on a transposed view (the gather path), transposed back.
    fn transposed(&mut self) -> NodeId {
        let (a, b) = (self.any(), self.any());
        let (ta, tb) = (self.g.transpose(a), self.g.transpose(b));
        let s = self.g.mul(ta, tb);
        let t = self.g.unary(UnaryOp::Tanh, s);
        self.g.transpose(t)
    }
    fn select(&mut self) -> NodeId {
        let (a, b, c) = (self.any(), self.any(), self.any());
        let cond = self.g.binary(BinaryOp::Gt, a, b);
        self.g.select(cond, b, c)
    }
}

fn random_graph(seed: u64) -> Graph {
    let mut r = Rng(seed);
    let n = 1 + r.below(9);
    let mut g = Graph::new();
    let bn = Shape(vec![Dim::Batch, Dim::Fixed(n as u32)]);
    let x = g.add_input("x", bn.clone(), InputKind::Features);
    let z = g.add_input("z", bn.clone(), InputKind::Features);
    let y = g.add_input("y", Shape(vec![Dim::Batch]), InputKind::Classes(n as u32));
    let w = g.add_param("w", Shape::fixed(&[n]));
    let m = g.add_param("m", Shape::fixed(&[n, n]));
    let s = g.add_state("s", Shape::fixed(&[n]), 0.5);
    let mut gen = GraphGen { g, r: &mut r, n, pool: vec![x, z] };
    for _ in 0..6 + gen.r.below(10) {
        let v = match gen.r.below(10) {
            0 | 1 => gen.unary(),
            2 | 3 => gen.binary(),
            4 => gen.row_stat(),
            5 => gen.col_stat(),
            6 => gen.param_row(w),
            7 => gen.softmaxish(),
            8 => {
                if gen.r.below(2) == 0 {
                    gen.product(m)
                } else {
                    gen.transposed()
                }
            }
            _ => gen.select(),
        };
        gen.pool.push(v);
    }
    let last = *gen.pool.last().unwrap();
    let GraphGen { mut g, pool, .. } = gen;
    // Outputs: a loss-like mean, a cross entropy with its accuracy, and a few whole values.
    let loss = g.mean_all(last);
    g.add_output("loss", loss);
    let xe = g.add(Op::SoftmaxCrossEntropy, vec![pool[pool.len() / 2], y], Shape(vec![Dim::Batch]));
    let xe = g.mean_all(xe);
    g.add_output("xent", xe);
    let am = g.add(Op::ArgMax, vec![last], Shape(vec![Dim::Batch]));
    let hit = g.binary(BinaryOp::Eq, am, y);
    let acc = g.mean_all(hit);
    g.add_output("accuracy", acc);
    let oh = g.add(Op::OneHot(n as u32), vec![y], bn.clone());
    let picked = g.mul(oh, last);
    g.add_output("picked", picked);
    for (i, &v) in pool.iter().enumerate().skip(2).step_by(3) {
        g.add_output(format!("v{i}"), v);
    }
    // Updates: w and s from column sums, m from a product with the inputs.
    let lr = g.scalar(nnc::graph::ScalarArg::Lr);
    let col = g.reduce(Reduce::Sum, last, Axes::of(&[0]));
    let col = g.reshape(col, &Shape::fixed(&[n]));
    let lrn = g.broadcast(lr, &Shape::fixed(&[n]));
    let step = g.mul(lrn, col);
    let w2 = g.sub(w, step);
    let k = g.constant(0.9, Shape::fixed(&[n]));
    let decayed = g.mul(s, k);
    let sq = g.unary(UnaryOp::Square, col);
    let s2 = g.add2(decayed, sq);
    let gm = g.matmul(x, last, true, false);
    let lrm = g.broadcast(lr, &Shape::fixed(&[n, n]));
    let dm = g.mul(lrm, gm);
    let m2 = g.sub(m, dm);
    g.updates.push(Update { target: Target::Param(0), node: w2 });
    g.updates.push(Update { target: Target::Param(1), node: m2 });
    g.updates.push(Update { target: Target::State(0), node: s2 });
    g.compact()
}

#[test]
fn random_graphs_match_the_interpreter() {
    let mut failures = Vec::new();
    for seed in 0..150 {
        let g = random_graph(seed);
        if let Err(e) = nnc::graph::verify::verify(&g) {
            panic!("seed {seed}: {e:?}");
        }
        let mut fwd = g.clone();
        fwd.updates.clear();
        let n = g.params[0].shape.numel(0);
        let params = vec![
            Tensor::new(vec![n], (0..n).map(|i| noise(10 + seed, i as u64)).collect()),
            Tensor::new(vec![n, n], (0..n * n).map(|i| noise(20 + seed, i as u64)).collect()),
        ];
        let mut jit = jit::compile(&g, &fwd, 1).unwrap();
        for size in [1, 7, 33] {
            let batches: Vec<Vec<Tensor<f32>>> = (0..3)
                .map(|b| {
                    let k = seed * 10 + b;
                    let t = |s| {
                        Tensor::new(
                            vec![size, n],
                            (0..size * n).map(|i| 2.0 * noise(s, i as u64)).collect(),
                        )
                    };
                    let y = (0..size)
                        .map(|i| {
                            ((noise(k + 7, i as u64) + 1.0) * n as f32 / 2.0)
                                .floor()
                                .min(n as f32 - 1.0)
                        })
                        .collect();
                    vec![t(k + 1), t(k + 2), Tensor::new(vec![size], y)]
                })
                .collect();
            if let Err(e) = differential(&g, &fwd, &mut jit, &params, &batches, 0.05) {
                failures.push(format!(
                    "seed {seed} at batch {size}: {e}\n{}",
                    nnc::graph::print::print(&g, None)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

/// Two threads: kernels of a million elements or more (here Adam's update of a 1024×1024
/// weight) are split across the pool; results must not change. Adam's `eps` is 1e-3 so that
/// the first step, `g/(|g| + eps)`, is well-conditioned: with the default 1e-8 a gradient
/// element that cancels to ≈1e-9 over the batch turns its last-bit rounding (which differs
/// between the GEMM kernels of the two backends) into a 30% change of its update.
#[test]
fn two_threads_match_the_interpreter() {
    let src = "model Wide {\n    input x: [B, 1024]\n    label y: class[B] of 4\n    fc = Dense(1024 -> 1024)\n    \
               out = Dense(1024 -> 4)\n    loss = cross_entropy(out(tanh(fc(x))), y)\n}\n\
               optimizer adam(lr = 1e-3, eps = 1e-3)\ntrain { data = random(n = 8), batch = 2, steps = 2 }\n";
    let c = pipeline::compile(src).unwrap();
    let params = session::initial_params(&c.model, 3, None).unwrap();
    let mut jit = jit::compile(&c.opt, &c.forward, 2).unwrap();
    for size in [1, 3] {
        let batches = batches_of(&c, Path::new("examples"), size, 2).unwrap();
        differential(&c.opt, &c.forward, &mut jit, &params, &batches, 1e-3).unwrap();
    }
}

/// The forward program is compiled on first use (not before the first step), once: an
/// evaluation before any step and one after steps both equal the interpreter's.
#[test]
fn the_forward_pass_is_compiled_on_first_use_once() {
    let path = Path::new("examples/xor.nn");
    let c = pipeline::compile(&std::fs::read_to_string(path).unwrap()).unwrap();
    let params = session::initial_params(&c.model, 1, None).unwrap();
    let batches = batches_of(&c, path.parent().unwrap(), 4, 1).unwrap();
    let mut jit = jit::compile(&c.opt, &c.forward, 1).unwrap();
    jit.set_params(&params).unwrap();
    let interp = |params: &[Tensor<f32>]| {
        let mut i = nnc::runtime::Interp::new(&c.opt, &c.forward, params.to_vec());
        i.evaluate(&batches[0]).unwrap()
    };
    let close = |got: Vec<f32>, want: Vec<f32>| {
        let ok = got.iter().zip(&want).all(|(a, b)| (a - b).abs() <= 1e-5 * b.abs().max(1.0));
        assert!(ok && got.len() == want.len(), "{got:?} against {want:?}");
    };
    close(jit.evaluate(&batches[0]).unwrap(), interp(&params));
    assert_eq!(jit.ready_forward().unwrap(), 0.0, "compiled by the first evaluation");
    jit.step(&batches[0], 0.1, 1).unwrap();
    let after = jit.params();
    close(jit.evaluate(&batches[0]).unwrap(), interp(&after));
    let mut fresh = jit::compile(&c.opt, &c.forward, 1).unwrap();
    assert!(fresh.ready_forward().unwrap() > 0.0, "not compiled with the step");
}

/// Step times of the benchmark configurations (not a test: `cargo test --release --test jit
/// -- --ignored --nocapture`). Reports the best of 30 windows of 20 ms, which is robust to
/// other processes on the machine.
#[test]
#[ignore]
fn step_times() {
    for name in ["a", "b", "c", "d", "e", "../digits_mlp"] {
        let path = PathBuf::from(format!("examples/bench/{name}.nn"));
        let src = std::fs::read_to_string(&path).unwrap();
        let c = pipeline::compile(&src).unwrap();
        let spec = session::effective_spec(&c.model, &session::Options::default());
        let t0 = std::time::Instant::now();
        let mut jit = jit::compile(&c.opt, &c.forward, 1).unwrap();
        let compile = t0.elapsed();
        jit.set_params(&session::initial_params(&c.model, 1, None).unwrap()).unwrap();
        let batches = batches_of(&c, path.parent().unwrap(), spec.batch, 8).unwrap();
        let mut best = f64::INFINITY;
        let mut t = 0;
        for _ in 0..30 {
            let start = std::time::Instant::now();
            let mut n = 0;
            while start.elapsed().as_secs_f64() < 0.02 || n == 0 {
                t += 1;
                Backend::step(&mut jit, &batches[t % 8], 1e-3, t as u64).unwrap();
                n += 1;
            }
            best = best.min(start.elapsed().as_secs_f64() / n as f64);
        }
        eprintln!(
            "{name}: compile {:.1} ms, step {:.2} µs ({:.0} steps/s)",
            compile.as_secs_f64() * 1e3,
            best * 1e6,
            1.0 / best
        );
    }
}
