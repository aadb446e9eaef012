//! The optimization passes preserve semantics: random graphs evaluated by the reference
//! interpreter before and after `passes::optimize` agree, and the textbook cross-entropy
//! becomes the fused, overflow-free `SoftmaxCrossEntropy`.

use std::collections::BTreeMap;

use nnc::graph::eval::{eval, Env};
use nnc::graph::verify::verify;
use nnc::graph::{Axes, BinaryOp, Dim, Graph, InputKind, NodeId, Op, Reduce, Shape, UnaryOp};
use nnc::passes::{optimize, optimize_with_log};
use nnc::tensor::Tensor;

/// xorshift64*: a tiny deterministic generator, so the test needs no seeded-RNG API.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// Uniform in `[-1, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }
}

const BATCH: usize = 3;

fn bs() -> Shape {
    Shape(vec![Dim::Batch, Dim::Fixed(4)])
}

/// Builds random graphs over `x: [B, 4]` and parameters `p: [4, 4]`, `w: [4]`, `v: [1, 4]`.
/// Every pool node has shape `[B, 4]` and a known bound on its magnitude, and an op is only
/// added when its result stays under [`Gen::LIMIT`], so every value is finite (the `x·0 → 0`
/// rule assumes that) and rounding differences stay far below the tolerance.
struct Gen {
    g: Graph,
    rng: Rng,
    /// `(node, bound on |value|)`
    pool: Vec<(NodeId, f64)>,
}

impl Gen {
    const LIMIT: f64 = 1e4;
    const CONSTS: [f64; 7] = [0.0, 1.0, -1.0, 2.0, 0.5, -3.0, 1.0];

    fn new(seed: u64) -> Gen {
        let mut g = Graph::new();
        let x = g.add_input("x", bs(), InputKind::Features);
        let p = g.add_param("p", Shape::fixed(&[4, 4]));
        let w = g.add_param("w", Shape::fixed(&[4]));
        let v = g.add_param("v", Shape::fixed(&[1, 4]));
        let wb = g.broadcast(w, &bs());
        let v1 = g.broadcast(w, &Shape::fixed(&[1, 4]));
        let vb = g.broadcast(v1, &bs());
        let vv = g.broadcast(v, &bs());
        let xp = g.matmul(x, p, false, true);
        let pool = vec![(x, 1.0), (wb, 1.0), (vb, 1.0), (vv, 1.0), (xp, 4.0)];
        Gen { g, rng: Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1), pool }
    }

    fn any(&mut self) -> (NodeId, f64) {
        let i = self.rng.below(self.pool.len());
        // favour recent nodes so that graphs get deep
        let j = self.pool.len() - 1 - self.rng.below(self.pool.len().min(4));
        self.pool[if self.rng.below(2) == 0 { i } else { j }]
    }

    fn konst(&mut self) -> (NodeId, f64) {
        let c = self.rng.pick(&Self::CONSTS);
        (self.g.constant(c, bs()), c.abs())
    }

    /// An operand: a pool node, a constant, a negated pool node or a broadcast constant.
    fn operand(&mut self) -> (NodeId, f64) {
        match self.rng.below(6) {
            0 | 1 => self.konst(),
            2 => {
                let (a, b) = self.any();
                (self.g.neg(a), b)
            }
            3 => {
                let c = self.rng.pick(&Self::CONSTS);
                let k = self.g.constant(c, Shape::fixed(&[4]));
                (self.g.broadcast(k, &bs()), c.abs())
            }
            _ => self.any(),
        }
    }

    fn unary(&mut self, a: NodeId, b: f64) -> (NodeId, f64) {
        use UnaryOp::*;
        let op = self.rng.pick(&[Neg, Tanh, Sigmoid, Relu, Abs, Softplus, Exp, Square, Erf]);
        let bound = match op {
            Tanh | Sigmoid | Erf => 1.0,
            Softplus => b + 1.0,
            Exp => b.exp(),
            Square => b * b,
            _ => b,
        };
        (self.g.unary(op, a), bound)
    }

    fn binary(&mut self) -> (NodeId, f64) {
        let ((a, ba), (c, bc)) = (self.operand(), self.operand());
        let (a, ba, c, bc) = if self.rng.below(2) == 0 { (a, ba, c, bc) } else { (c, bc, a, ba) };
        match self.rng.below(7) {
            6 => {
                // (a ∘ k1) ∘ k2 with constants
                let op = self.rng.pick(&[BinaryOp::Add, BinaryOp::Mul]);
                let (k1, b1) = self.konst();
                let (k2, b2) = self.konst();
                let inner = self.g.binary(op, k1, a);
                let outer = self.g.binary(op, inner, k2);
                let bound = if op == BinaryOp::Add { ba + b1 + b2 } else { ba * b1 * b2 };
                (outer, bound)
            }
            0 => (self.g.add2(a, c), ba + bc),
            1 => (self.g.sub(a, c), ba + bc),
            2 | 3 => (self.g.mul(a, c), ba * bc),
            4 => {
                let op = self.rng.pick(&[BinaryOp::Max, BinaryOp::Min]);
                (self.g.binary(op, a, c), ba.max(bc))
            }
            _ => {
                // a / (1 + c²)
                let sq = self.g.unary(UnaryOp::Square, c);
                let one = self.g.constant(1.0, bs());
                let d = self.g.add2(one, sq);
                (self.g.div(a, d), ba)
            }
        }
    }

    /// A reduction of `a` broadcast back to `[B, 4]`.
    fn reduction(&mut self, a: NodeId, b: f64) -> (NodeId, f64) {
        let kind = self.rng.pick(&[Reduce::Sum, Reduce::Mean, Reduce::Max]);
        let axes = self.rng.pick(&[Axes::of(&[0]), Axes::of(&[1]), Axes::all(2)]);
        let r = self.g.reduce(kind, a, axes);
        let r = if self.rng.below(2) == 0 {
            // through a rank-1 view when the batch axis is gone
            let s = self.g.shape(r).clone();
            if s.dims()[0] == Dim::Fixed(1) {
                let flat = self.g.reshape(r, &Shape(vec![s.dims()[1]]));
                self.g.broadcast(flat, &Shape(vec![Dim::Fixed(1), s.dims()[1]]))
            } else {
                r
            }
        } else {
            r
        };
        let bound = if kind == Reduce::Sum { 4.0 * BATCH as f64 * b } else { b };
        (self.g.broadcast(r, &bs()), bound)
    }

    fn layout(&mut self, a: NodeId) -> NodeId {
        let g = &mut self.g;
        match self.rng.below(3) {
            0 => {
                let t = g.transpose(a);
                g.transpose(t)
            }
            1 => {
                let r = g.reshape(a, &Shape(vec![Dim::Batch, Dim::Fixed(2), Dim::Fixed(2)]));
                let r = g.reshape(r, &Shape(vec![Dim::Fixed(2), Dim::Batch, Dim::Fixed(2)]));
                g.reshape(r, &bs())
            }
            _ => {
                let r = g.add(Op::Reshape, vec![a], bs());
                g.add(Op::Broadcast, vec![r], bs())
            }
        }
    }

    /// A log-of-something pattern the stabilizer knows.
    fn logs(&mut self, a: NodeId, b: f64) -> (NodeId, f64) {
        let g = &mut self.g;
        let one = g.constant(1.0, bs());
        match self.rng.below(5) {
            0 => {
                let s = g.add(Op::Softmax, vec![a], bs());
                (g.unary(UnaryOp::Log, s), 2.0 * b + 2.0)
            }
            1 => {
                let sq = g.unary(UnaryOp::Square, a);
                let s = g.add2(sq, one);
                (g.unary(UnaryOp::Log, s), 2.0 * b.max(1.0).ln() + 1.0)
            }
            2 => {
                let s = g.unary(UnaryOp::Sigmoid, a);
                (g.unary(UnaryOp::Log, s), b + 1.0)
            }
            3 if b < 30.0 => {
                let e = g.unary(UnaryOp::Exp, a);
                let s = g.add2(one, e);
                (g.unary(UnaryOp::Log, s), b + 1.0)
            }
            _ => {
                let s = g.unary(UnaryOp::Sigmoid, a);
                let c = g.sub(one, s);
                (g.unary(UnaryOp::Log, c), b + 1.0)
            }
        }
    }

    fn step(&mut self) {
        let (a, b) = self.any();
        let (n, bound) = match self.rng.below(8) {
            0 | 1 => self.unary(a, b),
            2..=4 => self.binary(),
            5 => self.reduction(a, b),
            6 => (self.layout(a), b),
            _ => self.logs(a, b),
        };
        if bound < Self::LIMIT {
            self.pool.push((n, bound));
        }
    }

    fn graph(mut self, steps: usize) -> Graph {
        for _ in 0..steps {
            self.step();
        }
        let k = self.pool.len();
        for i in 0..3 {
            let (n, _) = self.pool[k - 1 - i];
            self.g.add_output(format!("o{i}"), n);
        }
        let (last, _) = self.pool[k - 1];
        let m = self.g.mean_all(last);
        self.g.add_output("mean", m);
        self.g
    }
}

fn random_tensor(rng: &mut Rng, shape: &Shape) -> Tensor<f64> {
    let dims = shape.concrete(BATCH);
    let n = dims.iter().product();
    Tensor::new(dims, (0..n).map(|_| rng.unit()).collect())
}

fn run(g: &Graph, inputs: &[Tensor<f64>], params: &[Tensor<f64>]) -> Vec<Tensor<f64>> {
    let env = Env { inputs, params, states: &[], lr: 0.1, step: 1.0 };
    eval(g, &env).expect("evaluates").outputs
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn optimize_preserves_random_graphs() {
    let mut fired_total: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut before, mut after) = (0, 0);
    for seed in 0..300u64 {
        let g = Gen::new(seed).graph(30);
        verify(&g).unwrap_or_else(|e| panic!("seed {seed}: generated graph invalid: {e:?}"));
        let (o, fired) = optimize_with_log(&g);
        verify(&o).unwrap_or_else(|e| panic!("seed {seed}: optimized graph invalid: {e:?}"));
        for (name, n) in fired {
            *fired_total.entry(name).or_default() += n;
        }
        before += g.compact().len();
        after += o.len();

        let mut rng = Rng(seed + 12345);
        let inputs: Vec<_> = g.inputs.iter().map(|i| random_tensor(&mut rng, &i.shape)).collect();
        let params: Vec<_> = g.params.iter().map(|p| random_tensor(&mut rng, &p.shape)).collect();
        let (want, got) = (run(&g, &inputs, &params), run(&o, &inputs, &params));
        for ((w, r), out) in want.iter().zip(&got).zip(&g.outputs) {
            assert_eq!(w.shape, r.shape, "seed {seed} output {}", out.name);
            for (i, (&a, &b)) in w.data.iter().zip(&r.data).enumerate() {
                assert!(a.is_finite(), "seed {seed}: generator made a non-finite value");
                assert!(close(a, b, 1e-6), "seed {seed} {}[{i}]: {a} vs optimized {b}", out.name);
            }
        }
    }
    // The test is only as good as the rewrites it exercises.
    for rule in [
        "fold-unary",
        "fold-binary",
        "fold-layout",
        "fold-reduce",
        "add-zero",
        "mul-one",
        "mul-zero",
        "zero-sub",
        "mul-neg-one",
        "neg-neg",
        "sub-neg",
        "add-neg",
        "mul-const-const",
        "reshape-reshape",
        "broadcast-broadcast",
        "transpose-transpose",
        "reduce-broadcast",
        "log-softmax",
        "log1p",
        "softplus",
        "log-sigmoid",
        "log-one-minus-sigmoid",
    ] {
        assert!(fired_total.contains_key(rule), "rule {rule} never fired: {fired_total:?}");
    }
    assert!(after < before, "optimize removed nothing: {before} → {after} nodes");
    eprintln!("{before} → {after} nodes; fired: {fired_total:?}");
}

/// `loss = mean(−Σ_c onehot(y)·log softmax(z))` exactly as `lower` writes it.
fn naive_cross_entropy(classes: u32) -> Graph {
    let mut g = Graph::new();
    let zs = Shape(vec![Dim::Batch, Dim::Fixed(classes)]);
    let z = g.add_input("z", zs.clone(), InputKind::Features);
    let y = g.add_input("y", Shape(vec![Dim::Batch]), InputKind::Classes(classes));
    let oh = g.add(Op::OneHot(classes), vec![y], zs.clone());
    let sm = g.add(Op::Softmax, vec![z], zs.clone());
    let ls = g.unary(UnaryOp::Log, sm);
    let picked = g.mul(oh, ls);
    let rows = g.reduce(Reduce::Sum, picked, Axes::of(&[1]));
    let rows = g.reshape(rows, &Shape(vec![Dim::Batch]));
    let nll = g.neg(rows);
    let loss = g.mean_all(nll);
    g.add_output("loss", loss);
    g
}

/// `mean_i (logsumexp(z_i) − z_i[y_i])` in f64 with the max trick.
fn reference_loss(z: &[f64], y: &[f64], classes: usize) -> f64 {
    let rows: Vec<f64> = z
        .chunks(classes)
        .zip(y)
        .map(|(r, &c)| {
            let m = r.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            m + r.iter().map(|v| (v - m).exp()).sum::<f64>().ln() - r[c as usize]
        })
        .collect();
    rows.iter().sum::<f64>() / rows.len() as f64
}

fn loss_of(g: &Graph, z: &[f64], y: &[f64]) -> f64 {
    let zt = Tensor::new(vec![y.len(), z.len() / y.len()], z.to_vec());
    let yt = Tensor::new(vec![y.len()], y.to_vec());
    let out = run(g, &[zt, yt], &[]);
    assert!(out[0].shape.is_empty());
    out[0].data[0]
}

#[test]
fn cross_entropy_becomes_one_fused_node() {
    let g = naive_cross_entropy(3);
    let o = optimize(&g);
    verify(&o).unwrap();
    let ops: Vec<Op> = o.nodes().map(|(_, n)| n.op).collect();
    assert_eq!(ops.iter().filter(|op| **op == Op::SoftmaxCrossEntropy).count(), 1, "{ops:?}");
    for gone in [Op::Softmax, Op::LogSoftmax, Op::OneHot(3), Op::Unary(UnaryOp::Log)] {
        assert!(!ops.contains(&gone), "{gone:?} left in {ops:?}");
    }
    // z, y, sce, mean, reshape
    assert_eq!(o.len(), 5, "{ops:?}");

    let z = [0.3, -1.2, 2.0, 0.0, 0.5, -0.5, 1.5, 1.5, -3.0];
    let y = [2.0, 0.0, 1.0];
    let (naive, fused) = (loss_of(&g, &z, &y), loss_of(&o, &z, &y));
    let want = reference_loss(&z, &y, 3);
    assert!(close(naive, want, 1e-12), "{naive} vs {want}");
    assert!(close(fused, want, 1e-12), "{fused} vs {want}");
}

#[test]
fn fused_cross_entropy_survives_large_logits() {
    let g = naive_cross_entropy(3);
    let o = optimize(&g);
    let z = [1000.0, 0.0, -1000.0, -1000.0, 1000.0, 999.0, 5.0, 1000.0, 0.0];
    let y = [2.0, 2.0, 0.0];
    let naive = loss_of(&g, &z, &y);
    assert!(!naive.is_finite(), "the naive form was expected to overflow, got {naive}");
    let fused = loss_of(&o, &z, &y);
    let want = reference_loss(&z, &y, 3);
    assert!(fused.is_finite() && close(fused, want, 1e-12), "{fused} vs {want}");
}
