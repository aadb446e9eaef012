//! Optimizers against their formulas: for several steps, the compiled training step (run by
//! the reference interpreter in f64) must move the parameters exactly as the textbook update
//! written here independently (PyTorch's definitions, CATALOG.md) moves them, given the
//! same gradients.

use nnc::graph::eval::{apply_updates, eval, Env};
use nnc::pipeline::compile;
use nnc::tensor::Tensor;

const MODEL: &str = r#"
model Tiny {
    input x: [B, 3]
    label y: [B, 2]
    fc = Dense(3 -> 2, init = normal(0, 0.5))
    loss = mse(tanh(fc(x)), y)
}
"#;

fn batch(step: usize) -> Vec<Tensor<f64>> {
    let x: Vec<f64> = (0..12).map(|i| ((i * 7 + step * 3) % 11) as f64 / 5.0 - 1.0).collect();
    let y: Vec<f64> = (0..8).map(|i| ((i * 5 + step) % 7) as f64 / 3.0 - 1.0).collect();
    vec![Tensor::new(vec![4, 3], x), Tensor::new(vec![4, 2], y)]
}

/// Runs `steps` steps of `optimizer` both ways and compares after every step. `update`
/// gets every parameter, every gradient and the step count `t` (from 1).
fn check(
    optimizer: &str,
    steps: usize,
    update: &mut dyn FnMut(&mut [Vec<f64>], &[Vec<f64>], usize),
) {
    let src = format!("{MODEL}\n{optimizer}\n");
    let c = compile(&src).unwrap_or_else(|d| panic!("{d:?}"));
    let init = nnc::train::init::init_params(&c.model.params, 7);
    let mut params: Vec<Tensor<f64>> = init.iter().map(|t| t.to_f64()).collect();
    let mut reference: Vec<Vec<f64>> = params.iter().map(|p| p.data.clone()).collect();
    let mut states: Vec<Tensor<f64>> =
        c.opt.states.iter().map(|s| Tensor::full(s.shape.concrete(0), s.init)).collect();
    let lr = c.model.optimizer.lr();
    for t in 1..=steps {
        let inputs = batch(t);
        // Gradients at the reference parameters, from the gradient graph.
        let ref_params: Vec<Tensor<f64>> = params
            .iter()
            .zip(&reference)
            .map(|(p, r)| Tensor::new(p.shape.clone(), r.clone()))
            .collect();
        let env = Env { inputs: &inputs, params: &ref_params, states: &[], lr, step: t as f64 };
        let ev = eval(&c.grad, &env).unwrap();
        let grads: Vec<Vec<f64>> = c
            .grad
            .params
            .iter()
            .map(|p| {
                ev.outputs[c
                    .grad
                    .outputs
                    .iter()
                    .position(|o| o.name == format!("grad.{}", p.name))
                    .unwrap()]
                .data
                .clone()
            })
            .collect();
        update(&mut reference, &grads, t);
        let env = Env { inputs: &inputs, params: &params, states: &states, lr, step: t as f64 };
        let ev = eval(&c.opt, &env).unwrap();
        apply_updates(&c.opt, &ev, &mut params, &mut states);
        for (a, b) in params.iter().zip(&reference) {
            for (x, y) in a.data.iter().zip(b) {
                assert!(
                    (x - y).abs() <= 1e-10 * (1.0 + y.abs()),
                    "{optimizer} step {t}: {x} vs {y}"
                );
            }
        }
    }
}

/// Zero buffers shaped like the parameters.
fn zeros_like(p: &[Vec<f64>]) -> Vec<Vec<f64>> {
    p.iter().map(|v| vec![0.0; v.len()]).collect()
}

#[test]
fn plain_sgd() {
    let lr = 0.1;
    check("optimizer sgd(lr = 0.1)", 6, &mut |ps, gs, _| {
        for (p, g) in ps.iter_mut().zip(gs) {
            for (p, g) in p.iter_mut().zip(g) {
                *p -= lr * g;
            }
        }
    });
}

#[test]
fn sgd_weight_decay_momentum_dampening() {
    let (lr, mu, tau, wd) = (0.05, 0.9, 0.3, 0.01);
    let mut bufs: Vec<Vec<f64>> = Vec::new();
    check(
        "optimizer sgd(lr = 0.05, momentum = 0.9, dampening = 0.3, weight_decay = 0.01)",
        8,
        &mut |ps, gs, t| {
            if t == 1 {
                bufs = zeros_like(ps);
            }
            for ((p, g), b) in ps.iter_mut().zip(gs).zip(bufs.iter_mut()) {
                for j in 0..p.len() {
                    let d = g[j] + wd * p[j];
                    b[j] = if t == 1 { d } else { mu * b[j] + (1.0 - tau) * d };
                    p[j] -= lr * b[j];
                }
            }
        },
    );
}

#[test]
fn sgd_nesterov() {
    let (lr, mu) = (0.05, 0.8);
    let mut bufs: Vec<Vec<f64>> = Vec::new();
    check("optimizer sgd(lr = 0.05, momentum = 0.8, nesterov = true)", 8, &mut |ps, gs, t| {
        if t == 1 {
            bufs = zeros_like(ps);
        }
        for ((p, g), b) in ps.iter_mut().zip(gs).zip(bufs.iter_mut()) {
            for j in 0..p.len() {
                b[j] = if t == 1 { g[j] } else { mu * b[j] + g[j] };
                p[j] -= lr * (g[j] + mu * b[j]);
            }
        }
    });
}

/// Adam as torch.optim.Adam computes it, on gradients already scaled by `clip`.
fn adam(
    lr: f64,
    b1: f64,
    b2: f64,
    eps: f64,
    wd: f64,
    clip: Option<f64>,
) -> impl FnMut(&mut [Vec<f64>], &[Vec<f64>], usize) {
    let (mut m, mut v): (Vec<Vec<f64>>, Vec<Vec<f64>>) = (Vec::new(), Vec::new());
    move |ps, gs, t| {
        if t == 1 {
            m = zeros_like(ps);
            v = zeros_like(ps);
        }
        let norm = gs.iter().flatten().map(|x| x * x).sum::<f64>().sqrt();
        let f = clip.map_or(1.0, |c| (c / (norm + 1e-6)).min(1.0));
        let (c1, c2) = (1.0 - b1.powi(t as i32), 1.0 - b2.powi(t as i32));
        for i in 0..ps.len() {
            for j in 0..ps[i].len() {
                let d = gs[i][j] * f + wd * ps[i][j];
                m[i][j] = b1 * m[i][j] + (1.0 - b1) * d;
                v[i][j] = b2 * v[i][j] + (1.0 - b2) * d * d;
                ps[i][j] -= (lr / c1) * m[i][j] / ((v[i][j] / c2).sqrt() + eps);
            }
        }
    }
}

#[test]
fn adam_with_weight_decay() {
    check(
        "optimizer adam(lr = 0.01, betas = (0.8, 0.95), eps = 1e-6, weight_decay = 0.02)",
        8,
        &mut adam(0.01, 0.8, 0.95, 1e-6, 0.02, None),
    );
}

#[test]
fn adam_defaults_with_global_norm_clipping() {
    check(
        "optimizer adam()\nclip global_norm(0.05)",
        6,
        &mut adam(1e-3, 0.9, 0.999, 1e-8, 0.0, Some(0.05)),
    );
}

#[test]
fn sgd_with_value_clipping() {
    let (lr, c) = (0.5, 0.02);
    check("optimizer sgd(lr = 0.5)\nclip value(0.02)", 5, &mut |ps, gs, _| {
        for (p, g) in ps.iter_mut().zip(gs) {
            for (p, g) in p.iter_mut().zip(g) {
                *p -= lr * g.clamp(-c, c);
            }
        }
    });
}
