//! The window ops of the graph IR (`graph::window`): convolution, its two adjoints, and max
//! pooling's pick and route.
//!
//! Oracles: an independent convolution (the image padded explicitly, groups taken one at a
//! time) for values; the adjoint identities in f64; central finite differences in f64 for
//! the gradients of all five ops (so second derivatives of a convolution are checked too);
//! PyTorch's tie rule for max pooling by hand; the interpreter for the JIT on random
//! geometries (stride, padding, dilation, groups, odd sizes, batch 1, one and two threads).

mod index_harness;

use index_harness::{gradient_check, random, weighted_loss};
use nnc::autodiff::grad;
use nnc::graph::eval::{eval, Env};
use nnc::graph::{Dim, Graph, InputKind, Shape, UnaryOp, Window};
use nnc::jit;
use nnc::tensor::Tensor;

mod common;
use common::conv::reference_conv;
use common::differential::{differential, noise};

fn win(k: u16, s: u16, p: u16, d: u16, g: u16) -> Window {
    Window { kernel: [k, k], stride: [s, s], pad: [p, p], dilation: [d, d], groups: g }
}

fn image_shape(c: usize, h: usize, w: usize) -> Shape {
    Shape(vec![Dim::Batch, Dim::Fixed(c as u32), Dim::Fixed(h as u32), Dim::Fixed(w as u32)])
}

fn run(g: &Graph, inputs: &[Tensor<f64>], params: &[Tensor<f64>]) -> Vec<Tensor<f64>> {
    let env = Env { inputs, params, states: &[], lr: 0.0, step: 1.0 };
    eval(g, &env).expect("eval").outputs
}

/// `(channels, height, width, out channels, window)`: padded, strided, dilated, grouped,
/// depthwise, 1×1, odd sizes, a kernel as large as the padded image. The dilated one and
/// the second grouped one (`O·H·W ≤ C·Ho·Wo` at stride 1) take the JIT's transposed path
/// for the input gradient (`jit::window`).
fn geometries() -> Vec<(usize, usize, usize, usize, Window)> {
    vec![
        (1, 5, 5, 2, win(3, 1, 0, 1, 1)),
        (2, 6, 5, 3, win(3, 1, 1, 1, 1)),
        (2, 7, 7, 2, win(3, 2, 1, 1, 1)),
        (1, 7, 6, 2, win(2, 2, 0, 1, 1)),
        (2, 7, 7, 2, win(3, 1, 2, 2, 1)),
        (4, 5, 4, 6, win(3, 1, 1, 1, 2)),
        (4, 6, 5, 4, win(3, 1, 1, 1, 2)),
        (3, 5, 5, 3, win(3, 2, 1, 1, 3)),
        (3, 4, 5, 4, win(1, 1, 0, 1, 1)),
        (2, 3, 3, 1, win(5, 1, 1, 1, 1)),
        (
            2,
            5,
            5,
            2,
            Window { kernel: [3, 1], stride: [2, 1], pad: [1, 0], dilation: [1, 1], groups: 1 },
        ),
    ]
}

fn kernel_shape(c: usize, o: usize, w: &Window) -> Vec<usize> {
    vec![o, c / w.groups as usize, w.kernel[0] as usize, w.kernel[1] as usize]
}

#[test]
fn conv_matches_an_independent_computation() {
    for (t, (c, h, wd, o, w)) in geometries().into_iter().enumerate() {
        if w.kernel[0] != w.kernel[1] {
            continue; // the oracle takes one stride and padding for both axes
        }
        let mut g = Graph::new();
        let x = g.add_input("x", image_shape(c, h, wd), InputKind::Features);
        let k = g.add_param("k", Shape::fixed(&kernel_shape(c, o, &w)));
        let y = g.conv(x, k, w);
        g.add_output("y", y);
        for batch in [1, 3] {
            let xs = random(&[batch, c, h, wd], t as u64);
            let ks = random(&kernel_shape(c, o, &w), 100 + t as u64);
            let got = &run(&g, std::slice::from_ref(&xs), std::slice::from_ref(&ks))[0];
            let want = reference_conv(&xs, &ks, &w);
            assert_eq!(got.shape, want.shape, "geometry {t}");
            for (a, b) in got.data.iter().zip(&want.data) {
                assert!((a - b).abs() <= 1e-12, "geometry {t}: {a} vs {b}");
            }
        }
    }
}

#[test]
fn the_adjoints_satisfy_their_identities() {
    // Σ conv(x, k)·dy = Σ x·conv_grad_input(dy, k) = Σ k·conv_grad_kernel(x, dy)
    for (t, (c, h, wd, o, w)) in geometries().into_iter().enumerate() {
        let mut g = Graph::new();
        let xs = image_shape(c, h, wd);
        let x = g.add_input("x", xs.clone(), InputKind::Features);
        let k = g.add_param("k", Shape::fixed(&kernel_shape(c, o, &w)));
        let y = g.conv(x, k, w);
        let dy = g.add_input("dy", g.shape(y).clone(), InputKind::Features);
        let dx = g.conv_grad_input(dy, k, w, &xs);
        let dk = g.conv_grad_kernel(x, dy, w);
        let sums = [(y, dy), (x, dx), (k, dk)].map(|(a, b)| {
            let p = g.mul(a, b);
            g.sum_all(p)
        });
        for (i, s) in sums.iter().enumerate() {
            g.add_output(format!("s{i}"), *s);
        }
        let batch = 2;
        let dyshape = g.shape(y).concrete(batch);
        let inputs = [random(&xs.concrete(batch), t as u64), random(&dyshape, 50 + t as u64)];
        let out = run(&g, &inputs, &[random(&kernel_shape(c, o, &w), 100 + t as u64)]);
        let v: Vec<f64> = out.iter().map(|s| s.data[0]).collect();
        assert!((v[0] - v[1]).abs() <= 1e-12 * v[0].abs().max(1.0), "geometry {t}: {v:?}");
        assert!((v[0] - v[2]).abs() <= 1e-12 * v[0].abs().max(1.0), "geometry {t}: {v:?}");
    }
}

#[test]
fn gradients_of_every_window_op_match_finite_differences() {
    for (t, (c, h, wd, o, w)) in geometries().into_iter().enumerate() {
        let ks = kernel_shape(c, o, &w);
        let batch = if t % 2 == 0 { 1 } else { 2 };
        let (seed, xdims) = (t as u64, [batch, c, h, wd]);
        let image = Shape::fixed(&xdims);
        // conv(x, k), x and k parameters.
        let mut g = Graph::new();
        let x = g.add_param("x", image.clone());
        let k = g.add_param("k", Shape::fixed(&ks));
        let y = g.conv(x, k, w);
        let ydims = g.shape(y).concrete(1);
        let loss = weighted_loss(&mut g, y);
        let params = [random(&xdims, seed), random(&ks, seed + 1)];
        gradient_check(&format!("conv {t}"), &g, loss, &params, &[random(&ydims, seed + 2)]);
        // conv_grad_input(dy, k) and conv_grad_kernel(x, dy): the second derivatives.
        let mut g = Graph::new();
        let dy = g.add_param("dy", Shape::fixed(&ydims));
        let k = g.add_param("k", Shape::fixed(&ks));
        let dx = g.conv_grad_input(dy, k, w, &image);
        let loss = weighted_loss(&mut g, dx);
        let params = [random(&ydims, seed + 3), random(&ks, seed + 4)];
        let what = format!("conv_grad_input {t}");
        gradient_check(&what, &g, loss, &params, &[random(&xdims, seed + 5)]);
        let mut g = Graph::new();
        let x = g.add_param("x", image.clone());
        let dy = g.add_param("dy", Shape::fixed(&ydims));
        let dk = g.conv_grad_kernel(x, dy, w);
        let loss = weighted_loss(&mut g, dk);
        let params = [random(&xdims, seed + 6), random(&ydims, seed + 7)];
        let what = format!("conv_grad_kernel {t}");
        gradient_check(&what, &g, loss, &params, &[random(&ks, seed + 8)]);
    }
}

/// `(channels, height, width, window)` of pooling: PyTorch's usual 2×2/2, overlapping 3×3/2
/// with padding, odd sizes with a window that does not tile them.
fn pools() -> Vec<(usize, usize, usize, Window)> {
    vec![
        (2, 4, 6, win(2, 2, 0, 1, 1)),
        (1, 7, 7, win(3, 2, 1, 1, 1)),
        (2, 5, 3, win(2, 1, 0, 1, 1)),
        (1, 5, 5, win(3, 3, 1, 1, 1)),
        (2, 5, 7, win(2, 2, 0, 1, 1)),
    ]
}

#[test]
fn max_pool_gradients_match_finite_differences() {
    for (t, (c, h, wd, w)) in pools().into_iter().enumerate() {
        let xdims = [2, c, h, wd];
        let mut g = Graph::new();
        let x = g.add_param("x", Shape::fixed(&xdims));
        let y = g.pool_pick(x, x, w);
        let ydims = g.shape(y).concrete(1);
        let loss = weighted_loss(&mut g, y);
        // Distinct values more than 2h apart: no tie moves under the differences.
        let n: usize = xdims.iter().product();
        let perm: Vec<f64> = (0..n).map(|i| ((i * 37 + 11) % n) as f64 / n as f64 - 0.5).collect();
        let xs = Tensor::new(xdims.to_vec(), perm);
        let grads = gradient_check(&format!("max pool {t}"), &g, loss, &[xs], &[random(&ydims, 9)]);
        assert!(grads[0].data.iter().any(|v| *v != 0.0));
        // pool_route(s, dy) in dy: its gradient is pool_pick(s, g).
        let mut g = Graph::new();
        let s = g.add_input("s", Shape::fixed(&xdims), InputKind::Features);
        let dy = g.add_param("dy", Shape::fixed(&ydims));
        let r = g.pool_route(s, dy, w);
        let loss = weighted_loss(&mut g, r);
        let inputs = [random(&xdims, 20 + t as u64), random(&xdims, 30 + t as u64)];
        gradient_check(&format!("pool route {t}"), &g, loss, &[random(&ydims, 40)], &inputs);
    }
}

#[test]
fn max_pool_routes_ties_to_the_first_maximum_like_pytorch() {
    // A 2×4 image after a relu: zeros tie. torch.nn.MaxPool2d(2) gives each window's gradient
    // to its first (row-major) maximum: [[1, 0, 1, 0], [0, 0, 0, 0]] for upstream ones, and a
    // NaN is a maximum wherever it is.
    let mut g = Graph::new();
    let x = g.add_param("x", Shape::fixed(&[1, 1, 2, 4]));
    let y = g.pool_pick(x, x, win(2, 2, 0, 1, 1));
    let l = g.sum_all(y);
    g.add_output("loss", l);
    let mut gg = g.clone();
    let p = gg.param(0);
    let d = grad(&mut gg, l, &[p])[0];
    gg.add_output("grad", d);
    gg.add_output("y", y);
    let xs = Tensor::new(vec![1, 1, 2, 4], vec![0.0, 0.0, 0.0, -1.0, 0.0, 0.0, f64::NAN, 0.0]);
    let out = run(&gg, &[], &[xs]);
    assert_eq!(out[1].data, vec![1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
    assert_eq!(out[2].data[0], 0.0);
    assert!(out[2].data[1].is_nan());
}

/// A training step of `conv → relu → max pool → Σ w ⊙ ·²` with its gradients, for the JIT.
fn step_graph(c: usize, h: usize, wd: usize, o: usize, w: Window, pool: bool) -> Graph {
    let mut g = Graph::new();
    let x = g.add_input("x", image_shape(c, h, wd), InputKind::Features);
    let k = g.add_param("k", Shape::fixed(&kernel_shape(c, o, &w)));
    let y = g.conv(x, k, w);
    let r = g.unary(UnaryOp::Tanh, y);
    let r = if pool && g.shape(r).dims()[2..].iter().all(|d| *d >= Dim::Fixed(2)) {
        g.pool_pick(r, r, win(2, 2, 0, 1, 1))
    } else {
        r
    };
    let m = g.mean_all(r);
    let sq = g.unary(UnaryOp::Square, r);
    let loss = g.mean_all(sq);
    let loss = g.add2(loss, m);
    g.add_output("loss", loss);
    // The input and kernel gradients as outputs, so the JIT's conv_grad_input and
    // conv_grad_kernel are compared directly (in the parameters after a step, a kernel
    // gradient's error is scaled down by the learning rate).
    let d = grad(&mut g, loss, &[x, k]);
    g.add_output("dx", d[0]);
    g.add_output("dk", d[1]);
    sgd_on_the_first_param(&mut g, k, loss);
    g.compact()
}

/// `θ := θ − lr·∂loss/∂θ` for the graph's first parameter `theta`.
fn sgd_on_the_first_param(g: &mut Graph, theta: nnc::graph::NodeId, loss: nnc::graph::NodeId) {
    let d = grad(g, loss, &[theta])[0];
    let lr = g.scalar(nnc::graph::ScalarArg::Lr);
    let lr = g.broadcast(lr, &g.shape(theta).clone());
    let step = g.mul(lr, d);
    let next = g.sub(theta, step);
    g.updates.push(nnc::graph::Update { target: nnc::graph::Target::Param(0), node: next });
}

#[test]
fn jit_pooling_matches_the_interpreter_on_ties_and_padding() {
    // relu(x + b) over images quantized to quarters: zeros and other ties in most windows, so
    // the JIT must route each window's gradient to the same first maximum as the interpreter,
    // on padded, overlapping and odd-sized windows (the JIT treats the columns whose windows
    // reach into the padding apart from the others).
    let quarter = |v: f32| (v * 2.0).round() / 4.0;
    for (t, (c, h, wd, w)) in pools().into_iter().enumerate() {
        let mut g = Graph::new();
        let x = g.add_input("x", image_shape(c, h, wd), InputKind::Features);
        let b = g.add_param("b", Shape::fixed(&[c, h, wd]));
        let bb = g.broadcast(b, &g.shape(x).clone());
        let s = g.add2(x, bb);
        let r = g.unary(UnaryOp::Relu, s);
        let y = g.pool_pick(r, r, w);
        let loss = weighted_loss(&mut g, y);
        let pooled = g.shape(y).concrete(1);
        sgd_on_the_first_param(&mut g, b, loss);
        let g = g.compact();
        let mut forward = g.clone();
        forward.updates.clear();
        let params = vec![Tensor::new(vec![c, h, wd], vec![0.0; c * h * wd])];
        let ydims = |n: usize| [n].into_iter().chain(pooled[1..].iter().copied()).collect();
        for threads in [1, 2] {
            let mut jit = jit::compile(&g, &forward, threads).expect("the JIT compiles");
            for batch in [1, 3] {
                let batches: Vec<Vec<Tensor<f32>>> = (0..2)
                    .map(|k| {
                        let seed = 100 * t as u64 + 10 * batch as u64 + k;
                        let xs = [batch, c, h, wd];
                        let n = xs.iter().product::<usize>();
                        let x = (0..n).map(|i| quarter(noise(seed, i as u64))).collect();
                        let yd: Vec<usize> = ydims(batch);
                        let m = yd.iter().product::<usize>();
                        let wt = (0..m).map(|i| noise(seed + 7, i as u64)).collect();
                        vec![Tensor::new(xs.to_vec(), x), Tensor::new(yd, wt)]
                    })
                    .collect();
                differential(&g, &forward, &mut jit, &params, &batches, 0.1)
                    .unwrap_or_else(|e| panic!("pool {t}, {threads} threads, batch {batch}: {e}"));
            }
        }
    }
}

#[test]
fn jit_matches_the_interpreter_on_random_geometries() {
    // Output channels per group a multiple of 16 take the JIT's `gather` path (forward and
    // kernel gradient, `jit::window`): odd sizes at strides 1, 2 and 3 (the last falls back),
    // dilated and grouped, 1×1 at stride 2, unequal strides. Input channels per group a
    // multiple of 16 at a stride over 1 take its phase-split input gradient: odd sizes, 1×1
    // and 2×2 at stride 3 (phases without taps), 5×5 at stride 2, grouped, unequal strides,
    // dilated (which falls back). 3×3 at stride 1 with input channels per group a multiple
    // of 8 and output channels per group of 16 take its Winograd path (forward, and the input
    // gradient where the flipped shape qualifies too, and the kernel gradient from 64 tiles
    // per image: the 21×19 and 24×24 ones): odd output sizes (partial tiles) in more tiles
    // than one chunk, no padding, padding 2, grouped. The last is large enough at
    // batch 7 (7.4e7 flop, over jit::window::PAR_MIN_FLOP) to be split across two threads.
    let mut cases = geometries();
    let tall = |s: [u16; 2]| Window {
        kernel: [3, 1],
        stride: s,
        pad: [1, 0],
        dilation: [1, 1],
        groups: 1,
    };
    cases.extend([
        (3, 9, 7, 16, win(3, 2, 1, 1, 1)),
        (4, 7, 6, 32, win(3, 1, 2, 2, 2)),
        (5, 6, 6, 16, win(1, 2, 0, 1, 1)),
        (2, 8, 8, 16, win(2, 3, 0, 1, 1)),
        (2, 5, 7, 32, tall([1, 2])),
        (16, 9, 7, 16, win(3, 2, 1, 1, 1)),
        (16, 7, 7, 16, win(1, 3, 0, 1, 1)),
        (16, 8, 7, 32, win(2, 3, 1, 1, 1)),
        (16, 9, 9, 16, win(5, 2, 2, 1, 1)),
        (32, 7, 8, 32, win(3, 2, 0, 1, 2)),
        (16, 7, 5, 16, tall([3, 2])),
        (16, 9, 9, 16, win(3, 2, 2, 2, 1)),
        (16, 21, 19, 16, win(3, 1, 1, 1, 1)),
        (8, 7, 9, 16, win(3, 1, 0, 1, 1)),
        (32, 6, 5, 32, win(3, 1, 2, 1, 2)),
        (32, 24, 24, 32, win(3, 1, 1, 1, 1)),
    ]);
    for (t, (c, h, wd, o, w)) in cases.into_iter().enumerate() {
        let g = step_graph(c, h, wd, o, w, t % 2 == 0);
        let mut forward = g.clone();
        forward.updates.clear();
        let ks = kernel_shape(c, o, &w);
        let n: usize = ks.iter().product();
        let params = vec![Tensor::new(ks, (0..n).map(|i| noise(t as u64, i as u64)).collect())];
        for threads in [1, 2] {
            let mut jit = jit::compile(&g, &forward, threads).expect("the JIT compiles");
            // 23: more examples than one product of the kernel gradient takes at these sizes
            // (jit::window's KERNEL_GRAD_K), so a part sums several products, the last one short.
            for batch in [1, 2, 7, 23] {
                let batches: Vec<Vec<Tensor<f32>>> = (0..2)
                    .map(|b| {
                        let dims = vec![batch, c, h, wd];
                        let len = dims.iter().product::<usize>();
                        let seed = 1000 * t as u64 + 10 * batch as u64 + b;
                        vec![Tensor::new(dims, (0..len).map(|i| noise(seed, i as u64)).collect())]
                    })
                    .collect();
                differential(&g, &forward, &mut jit, &params, &batches, 0.1).unwrap_or_else(|e| {
                    panic!("geometry {t}, {threads} threads, batch {batch}: {e}")
                });
            }
        }
    }
}
