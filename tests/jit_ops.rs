//! Every op through the JIT: for each [`OpKind`] (every variant of `Op`), small graphs that
//! use it in each of its forms (every `UnaryOp`, `BinaryOp` and `ScalarArg`, each `MatMul`
//! transpose, reductions over each axis, elementwise ops on whole tensors and on values
//! computed once per kernel) are compiled by the JIT and run against the interpreter
//! (`tests/common/differential.rs`: outputs, updated parameters and state, forward pass) at
//! batch sizes 1, 5 and 33. `graphs` matches on the kind exhaustively and the test walks
//! `OpKind::VARIANTS`: a new op cannot compile, or pass, without its graphs here.

use nnc::graph::{
    Axes, BinaryOp, Dim, Graph, InputKind, NodeId, Op, OpKind, Reduce, ScalarArg, Shape, Target,
    UnaryOp, Update, Window, F64,
};
use nnc::jit;
use nnc::tensor::Tensor;
use strum::VariantArray;

mod common;
use common::differential::{differential, noise};

/// Features per example, rows of the embedding table and its width.
const N: usize = 6;
const V: usize = 5;
const D: usize = 3;

/// The leaves every graph may use.
struct Leaves {
    x: NodeId,
    z: NodeId,
    y: NodeId,
    w: NodeId,
    m: NodeId,
    table: NodeId,
    s: NodeId,
}

/// `[B, N]`.
fn bn() -> Shape {
    Shape(vec![Dim::Batch, Dim::Fixed(N as u32)])
}

/// A graph with the leaves, an update of `w` and `s` from `out`, and `out` as its output.
fn graph(build: impl FnOnce(&mut Graph, &Leaves) -> Vec<NodeId>) -> Graph {
    let mut g = Graph::new();
    let x = g.add_input("x", bn(), InputKind::Features);
    let z = g.add_input("z", bn(), InputKind::Features);
    let y = g.add_input("y", Shape(vec![Dim::Batch]), InputKind::Classes(V as u32));
    let w = g.add_param("w", Shape::fixed(&[N]));
    let m = g.add_param("m", Shape::fixed(&[N, N]));
    let table = g.add_param("table", Shape::fixed(&[V, D]));
    let s = g.add_state("s", Shape::fixed(&[N]), 0.5);
    let l = Leaves { x, z, y, w, m, table, s };
    let outs = build(&mut g, &l);
    for (i, &o) in outs.iter().enumerate() {
        g.add_output(format!("out{i}"), o);
    }
    // Every graph is a training step: w and s move by the first output's mean.
    let lr = g.scalar(ScalarArg::Lr);
    let mean = g.mean_all(outs[0]);
    let step = g.mul(lr, mean);
    let step = g.broadcast(step, &Shape::fixed(&[N]));
    let w2 = g.sub(w, step);
    let k = g.constant(0.9, Shape::fixed(&[N]));
    let s2 = g.mul(s, k);
    let s2 = g.add2(s2, step);
    g.updates.push(Update { target: Target::Param(0), node: w2 });
    g.updates.push(Update { target: Target::State(0), node: s2 });
    g.compact()
}

/// `a` where every op is defined: `|a| + 0.25`.
fn positive(g: &mut Graph, a: NodeId) -> NodeId {
    let abs = g.unary(UnaryOp::Abs, a);
    let c = g.constant(0.25, g.shape(a).clone());
    g.add2(abs, c)
}

/// The operand an elementwise function sees: positive where it needs that.
fn domain(g: &mut Graph, op: Result<UnaryOp, BinaryOp>, a: NodeId) -> NodeId {
    match op {
        Ok(UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Log1p) | Err(BinaryOp::Pow) => positive(g, a),
        _ => a,
    }
}

/// `v` (`[]`) times `x`, so that a value computed once per kernel is an output's factor.
fn times_x(g: &mut Graph, l: &Leaves, v: NodeId) -> NodeId {
    let v = g.broadcast(v, &bn());
    g.mul(v, l.x)
}

/// Every scalar the optimizers use.
fn scalars() -> [ScalarArg; 9] {
    [
        ScalarArg::Lr,
        ScalarArg::Step,
        ScalarArg::OneMinusPow(F64::new(0.999)),
        ScalarArg::RadamRect(F64::new(0.99)),
        ScalarArg::NadamGrad(F64::new(0.9), F64::new(4e-3)),
        ScalarArg::NadamMomentum(F64::new(0.9), F64::new(4e-3)),
        ScalarArg::AdaBoundLower(F64::new(1e-3)),
        ScalarArg::AdaBoundUpper(F64::new(1e-3)),
        ScalarArg::AdagradDecay(F64::new(0.01)),
    ]
}

/// The graphs that exercise `kind`.
fn graphs(kind: OpKind) -> Vec<Graph> {
    match kind {
        OpKind::Input => vec![graph(|_, l| vec![l.x])],
        OpKind::Param => vec![graph(|g, l| {
            let w = g.broadcast(l.w, &bn());
            vec![g.add2(w, l.x), l.m]
        })],
        OpKind::State => vec![graph(|g, l| {
            let s = g.broadcast(l.s, &bn());
            vec![g.mul(s, l.x)]
        })],
        OpKind::Scalar => scalars()
            .iter()
            .map(|&a| {
                graph(|g, l| {
                    let v = g.scalar(a);
                    vec![times_x(g, l, v)]
                })
            })
            .collect(),
        OpKind::Const => vec![graph(|g, l| {
            let c = g.constant(0.5, bn());
            vec![g.mul(c, l.x)]
        })],
        OpKind::Unary => UnaryOp::VARIANTS
            .iter()
            .map(|&u| {
                graph(|g, l| {
                    // On a whole tensor, and on a value computed once per kernel.
                    let a = domain(g, Ok(u), l.x);
                    let whole = g.unary(u, a);
                    let mean = g.mean_all(l.z);
                    let mean = domain(g, Ok(u), mean);
                    let once = g.unary(u, mean);
                    vec![whole, times_x(g, l, once)]
                })
            })
            .collect(),
        OpKind::Binary => BinaryOp::VARIANTS
            .iter()
            .map(|&b| {
                graph(|g, l| {
                    let a = domain(g, Err(b), l.x);
                    let whole = g.binary(b, a, l.z);
                    let (mx, mz) = (g.mean_all(l.x), g.mean_all(l.z));
                    let mx = domain(g, Err(b), mx);
                    let once = g.binary(b, mx, mz);
                    vec![whole, times_x(g, l, once)]
                })
            })
            .collect(),
        OpKind::Select => vec![graph(|g, l| {
            let c = g.binary(BinaryOp::Gt, l.x, l.z);
            vec![g.select(c, l.x, l.z)]
        })],
        OpKind::Broadcast => vec![graph(|g, l| {
            let rows = g.reduce(Reduce::Sum, l.x, Axes::of(&[1]));
            let rows = g.broadcast(rows, &bn());
            let w = g.broadcast(l.w, &bn());
            vec![g.mul(rows, w)]
        })],
        OpKind::Reshape => vec![graph(|g, l| {
            let flat = g.reshape(l.m, &Shape::fixed(&[N * N]));
            let back = g.reshape(flat, &Shape::fixed(&[N, N]));
            let xm = g.matmul(l.x, back, false, false);
            let split = g.reshape(l.x, &Shape(vec![Dim::Batch, Dim::Fixed(2), Dim::Fixed(3)]));
            let sum = g.reduce(Reduce::Sum, split, Axes::of(&[2]));
            vec![xm, sum]
        })],
        OpKind::Transpose => vec![graph(|g, l| {
            let mt = g.transpose(l.m);
            let xt = g.transpose(l.x);
            let back = g.transpose(xt);
            vec![g.matmul(back, mt, false, false), xt]
        })],
        OpKind::ReduceSum | OpKind::ReduceMean | OpKind::ReduceMax => {
            let r = match kind {
                OpKind::ReduceSum => Reduce::Sum,
                OpKind::ReduceMean => Reduce::Mean,
                _ => Reduce::Max,
            };
            vec![graph(|g, l| {
                let rows = g.reduce(r, l.x, Axes::of(&[1]));
                let cols = g.reduce(r, l.x, Axes::of(&[0]));
                let all = g.reduce(r, l.x, Axes::of(&[0, 1]));
                let m = g.reduce(r, l.m, Axes::of(&[0]));
                let rows = g.broadcast(rows, &bn());
                vec![g.mul(rows, l.z), cols, all, m]
            })]
        }
        OpKind::MatMul => vec![graph(|g, l| {
            vec![
                g.matmul(l.x, l.m, false, false),
                g.matmul(l.x, l.z, true, false),
                g.matmul(l.x, l.m, false, true),
                g.matmul(l.m, l.z, true, true),
            ]
        })],
        OpKind::Softmax => vec![graph(|g, l| {
            let s = bn();
            vec![g.add(Op::Softmax, vec![l.x], s)]
        })],
        OpKind::LogSoftmax => vec![graph(|g, l| {
            let s = bn();
            vec![g.add(Op::LogSoftmax, vec![l.x], s)]
        })],
        OpKind::SoftmaxCrossEntropy => vec![graph(|g, l| {
            let logits = g.slice(l.x, 1, 0, V);
            vec![g.add(Op::SoftmaxCrossEntropy, vec![logits, l.y], Shape(vec![Dim::Batch]))]
        })],
        OpKind::OneHot => vec![graph(|g, l| {
            let s = Shape(vec![Dim::Batch, Dim::Fixed(V as u32)]);
            let oh = g.add(Op::OneHot(V as u32), vec![l.y], s);
            let xs = g.slice(l.x, 1, 1, V);
            vec![g.mul(oh, xs)]
        })],
        OpKind::ArgMax => vec![graph(|g, l| {
            let am = g.add(Op::ArgMax, vec![l.x], Shape(vec![Dim::Batch]));
            let hit = g.binary(BinaryOp::Eq, am, l.y);
            vec![am, hit]
        })],
        OpKind::Concat => vec![graph(|g, l| vec![g.concat(l.x, l.z, 1), g.concat(l.m, l.m, 0)])],
        OpKind::Slice => vec![graph(|g, l| vec![g.slice(l.x, 1, 2, 3), g.slice(l.m, 0, 1, 4)])],
        OpKind::Gather => vec![graph(|g, l| vec![g.gather(l.table, l.y)])],
        OpKind::ScatterAdd => vec![graph(|g, l| {
            let rows = g.slice(l.x, 1, 0, D);
            vec![g.scatter_add(l.y, rows, V as u32)]
        })],
        OpKind::DropMask => vec![graph(|g, l| {
            let t = g.scalar(ScalarArg::Step);
            let keep = F64::new(0.7);
            let mask = g.add(Op::DropMask { keep, salt: 11 }, vec![t], bn());
            vec![g.mul(mask, l.x)]
        })],
        // Images [B, 1, 2, 3] from x and z; a kernel [4, 1, 3, 3] from m; padded and strided.
        OpKind::Conv | OpKind::ConvGradInput | OpKind::ConvGradKernel => [pad1(3), wide(2)]
            .into_iter()
            .map(|win| {
                graph(|g, l| {
                    let (x, k) = (image(g, l.x), kernel(g, l.m, win));
                    let y = g.conv(x, k, win);
                    let out = match kind {
                        OpKind::Conv => y,
                        OpKind::ConvGradInput => g.conv_grad_input(y, k, win, &g.shape(x).clone()),
                        _ => g.conv_grad_kernel(x, y, win),
                    };
                    vec![out]
                })
            })
            .collect(),
        OpKind::PoolPick | OpKind::PoolRoute => [Window { pad: [0, 0], ..wide(2) }, wide(2)]
            .into_iter()
            .map(|win| {
                graph(|g, l| {
                    let (x, z) = (image(g, l.x), image(g, l.z));
                    let y = g.pool_pick(x, z, win);
                    let out = if kind == OpKind::PoolPick { y } else { g.pool_route(x, y, win) };
                    vec![out]
                })
            })
            .collect(),
    }
}

/// A `k×k` window at stride 1, padded by 1.
fn pad1(k: u16) -> Window {
    Window { kernel: [k, k], stride: [1, 1], pad: [1, 1], dilation: [1, 1], groups: 1 }
}

/// A `k×k` window at stride 2, padded by 1.
fn wide(k: u16) -> Window {
    Window { stride: [2, 2], ..pad1(k) }
}

/// `[B, N]` as images `[B, 1, 2, 3]`.
fn image(g: &mut Graph, a: NodeId) -> NodeId {
    g.reshape(a, &Shape(vec![Dim::Batch, Dim::Fixed(1), Dim::Fixed(2), Dim::Fixed(3)]))
}

/// A kernel `[4, 1, k, k]` from the first elements of `[N, N]`.
fn kernel(g: &mut Graph, m: NodeId, win: Window) -> NodeId {
    let k = win.kernel[0] as usize;
    let flat = g.reshape(m, &Shape::fixed(&[N * N]));
    let taps = g.slice(flat, 0, 0, 4 * k * k);
    g.reshape(taps, &Shape::fixed(&[4, 1, k, k]))
}

fn random(shape: Vec<usize>, seed: u64, scale: f32) -> Tensor<f32> {
    let n = shape.iter().product();
    Tensor::new(shape, (0..n).map(|i| scale * noise(seed, i as u64)).collect())
}

/// Three batches of `size` examples: x, z in [-2, 2), labels in `0..V`.
fn batches(size: usize) -> Vec<Vec<Tensor<f32>>> {
    (0..3)
        .map(|b| {
            let k = 100 * size as u64 + b;
            let y = random(vec![size], k + 2, 1.0).map(|v| ((v + 1.0) * V as f32 / 2.0).floor());
            vec![random(vec![size, N], k, 2.0), random(vec![size, N], k + 1, 2.0), y]
        })
        .collect()
}

#[test]
fn every_op_matches_the_interpreter() {
    let params =
        vec![random(vec![N], 1, 1.0), random(vec![N, N], 2, 1.0), random(vec![V, D], 3, 1.0)];
    let mut failures = Vec::new();
    let mut count = 0;
    for &kind in OpKind::VARIANTS {
        for (i, g) in graphs(kind).into_iter().enumerate() {
            nnc::graph::verify::verify(&g).unwrap_or_else(|e| panic!("{kind:?} #{i}: {e:?}"));
            let mut forward = g.clone();
            forward.updates.clear();
            let mut jit = match jit::compile(&g, &forward, 1) {
                Ok(j) => j,
                Err(e) => {
                    failures.push(format!("{kind:?} #{i}: does not compile: {e}"));
                    continue;
                }
            };
            for size in [1, 5, 33] {
                if let Err(e) = differential(&g, &forward, &mut jit, &params, &batches(size), 0.1) {
                    let text = nnc::graph::print::print(&g, None);
                    failures.push(format!("{kind:?} #{i} at batch {size}: {e}\n{text}"));
                }
            }
            count += 1;
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    let (u, b) = (UnaryOp::VARIANTS.len(), BinaryOp::VARIANTS.len());
    assert!(count >= OpKind::VARIANTS.len() + u + b + scalars().len() - 3, "{count} graphs");
}

/// NaN propagates as in PyTorch through relu, max, min and max-reductions, on both backends
/// (`relu(NaN) = 0` once hid a NaN parameter behind a finite loss).
#[test]
fn nan_propagates_like_pytorch() {
    let graphs = [
        graph(|g, l| vec![g.unary(UnaryOp::Relu, l.x)]),
        graph(|g, l| vec![g.binary(BinaryOp::Max, l.x, l.z), g.binary(BinaryOp::Max, l.z, l.x)]),
        graph(|g, l| vec![g.binary(BinaryOp::Min, l.x, l.z), g.binary(BinaryOp::Min, l.z, l.x)]),
        graph(|g, l| vec![g.reduce(Reduce::Max, l.x, Axes::of(&[1]))]),
    ];
    let params =
        vec![random(vec![N], 1, 1.0), random(vec![N, N], 2, 1.0), random(vec![V, D], 3, 1.0)];
    for (i, g) in graphs.iter().enumerate() {
        let mut forward = g.clone();
        forward.updates.clear();
        let mut jit = jit::compile(g, &forward, 1).unwrap();
        for size in [1, 5, 33] {
            let mut b = batches(size);
            for batch in &mut b {
                batch[0].data[0] = f32::NAN;
                batch[1].data[size * N - 1] = f32::NAN;
            }
            differential(g, &forward, &mut jit, &params, &b, 0.1)
                .unwrap_or_else(|e| panic!("graph {i} at batch {size}: {e}"));
            let out = jit.forward_full(&b[0]).unwrap();
            assert!(out[0].data[0].is_nan(), "graph {i}: the NaN was dropped: {:?}", out[0]);
        }
    }
}
