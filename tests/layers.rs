//! Issue 4's layers, functions and modes against independent oracles:
//! - gradients of the normalization layers, weight normalization, the new activations,
//!   losses and penalties against central finite differences (f64, `graph::eval`);
//! - batch norm's training output, running statistics and evaluation output against
//!   PyTorch's definitions written out in f64 here;
//! - each new activation, loss and penalty against its formula;
//! - weight files with buffers, `--log-layers` probes and LSUV.

use nnc::graph::eval::{erf, eval, Env};
use nnc::graph::verify::verify;
use nnc::graph::Window;
use nnc::pipeline::{self, CompileOptions, Compiled};
use nnc::runtime::{Backend, Interp};
use nnc::tensor::Tensor;
use nnc::train::{lsuv, session, state};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

mod common;
use common::conv::reference_conv;

const H: f64 = 1e-6;

fn compile(src: &str) -> Compiled {
    pipeline::compile(src)
        .unwrap_or_else(|d| panic!("{}", nnc::diagnostic::render_all(&d, "t.nn", src)))
}

fn random(r: &mut ChaCha8Rng, shape: &[usize], lo: f64, hi: f64) -> Tensor<f64> {
    let n = shape.iter().product();
    Tensor::new(shape.to_vec(), (0..n).map(|_| r.random_range(lo..hi)).collect())
}

/// Random ±1 targets.
fn signs(r: &mut ChaCha8Rng, shape: &[usize]) -> Tensor<f64> {
    let n = shape.iter().product();
    Tensor::new(
        shape.to_vec(),
        (0..n).map(|_| if r.random_bool(0.5) { 1.0 } else { -1.0 }).collect(),
    )
}

/// Random values for every parameter of `c` (norm weights around 1, biases around 0 are
/// covered by the range) and random inputs of `batch` rows (class labels below `classes`).
fn setup(c: &Compiled, batch: usize, seed: u64) -> (Vec<Tensor<f64>>, Vec<Tensor<f64>>) {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    let params = c
        .model
        .params
        .iter()
        .map(|p| random(&mut r, &p.shape, -1.0, 1.0).map(|v| v + 0.1))
        .collect();
    let inputs = c
        .model
        .inputs
        .iter()
        .map(|i| {
            let shape = i.shape.concrete(batch);
            match i.kind {
                nnc::graph::InputKind::Classes(k) => {
                    let n = shape.iter().product();
                    Tensor::new(shape, (0..n).map(|_| r.random_range(0..k) as f64).collect())
                }
                nnc::graph::InputKind::Targets => signs(&mut r, &shape),
                nnc::graph::InputKind::Features => random(&mut r, &shape, -2.0, 2.0),
            }
        })
        .collect();
    (params, inputs)
}

fn buffers64(c: &Compiled) -> Vec<Tensor<f64>> {
    state::initial_buffers(&c.model).iter().map(|t| t.to_f64()).collect()
}

/// Outputs of `g` in f64 with the model's initial buffers.
fn run(
    g: &nnc::graph::Graph,
    c: &Compiled,
    p: &[Tensor<f64>],
    x: &[Tensor<f64>],
) -> Vec<Tensor<f64>> {
    let states = buffers64(c);
    let env = Env { inputs: x, params: p, states: &states, lr: 0.0, step: 1.0 };
    eval(g, &env).expect("eval").outputs
}

/// The `grad.*` outputs of `c.grad` against central differences of its `loss`, every
/// parameter element, to 1e-6 relative.
fn check_gradients(what: &str, src: &str) {
    let c = compile(src);
    verify(&c.grad).expect("grad verifies");
    let (params, inputs) = setup(&c, 5, 7);
    let out = run(&c.grad, &c, &params, &inputs);
    let mut p = params.clone();
    for (i, def) in c.model.params.iter().enumerate() {
        let k = c.grad.outputs.iter().position(|o| o.name == format!("grad.{}", def.name)).unwrap();
        for j in 0..params[i].numel() {
            let x = params[i].data[j];
            p[i].data[j] = x + H;
            let up = run(&c.grad, &c, &p, &inputs)[0].data[0];
            p[i].data[j] = x - H;
            let down = run(&c.grad, &c, &p, &inputs)[0].data[0];
            p[i].data[j] = x;
            let numeric = (up - down) / (2.0 * H);
            let got = out[k].data[j];
            assert!(
                (got - numeric).abs() <= 1e-6 * numeric.abs().max(1.0),
                "{what}: d loss / d {}[{j}]: autodiff {got} vs numeric {numeric}",
                def.name
            );
        }
    }
}

const HEAD: &str = "optimizer sgd(lr = 0.1)\n";

#[test]
fn batch_norm_and_layer_norm_gradients_match_finite_differences() {
    // A Dense before the norm checks the gradient with respect to the norm's input too.
    for (what, layer) in [
        ("batch_norm", "BatchNorm(6)"),
        ("layer_norm", "LayerNorm(6)"),
        ("group_norm", "GroupNorm(3, 6)"),
        ("batch_norm without affine", "BatchNorm(6, affine = false)"),
        ("layer_norm eps", "LayerNorm(6, eps = 0.1)"),
    ] {
        let src = format!(
            "model M {{ input x: [B, 4]  label t: [B, 3]
               fc1 = Dense(4 -> 6)  n = {layer}  fc2 = Dense(6 -> 3)
               loss = mse(fc2(tanh(n(fc1(x)))), t) }}\n{HEAD}"
        );
        check_gradients(what, &src);
    }
}

#[test]
fn weight_norm_activation_loss_and_penalty_gradients_match_finite_differences() {
    let cases = [
        ("weight_norm", "fc2(tanh(wn(fc1(x))))", "mse", ""),
        ("elu", "fc2(elu(fc1(x), alpha = 0.7))", "mse", ""),
        ("silu", "fc2(silu(fc1(x)))", "mse", ""),
        ("gelu tanh", "fc2(gelu(fc1(x), approximate = \"tanh\"))", "mse", ""),
        ("hinge", "fc2(tanh(fc1(x)))", "hinge", ""),
        ("huber", "fc2(tanh(fc1(x))) * 3", "huber", ""),
        ("l1", "fc2(tanh(fc1(x)))", "l1", ""),
        (
            "penalties",
            "fc2(tanh(fc1(x)))",
            "mse",
            " + l2_penalty(fc1, lambda = 0.3) + l1_penalty(fc2.weight, lambda = 0.2)",
        ),
    ];
    for (what, z, loss, extra) in cases {
        let src = format!(
            "model M {{ input x: [B, 4]  label t: [B, 3]
               fc1 = Dense(4 -> 6)  wn = Dense(6 -> 6, weight_norm = true)  fc2 = Dense(6 -> 3)
               loss = {loss}({z}, t){extra} }}\n{HEAD}"
        );
        check_gradients(what, &src);
    }
    let ce = format!(
        "model M {{ input x: [B, 4]  label y: class[B] of 3  fc1 = Dense(4 -> 3)
           loss = cross_entropy(fc1(x), y, label_smoothing = 0.2) }}\n{HEAD}"
    );
    check_gradients("cross_entropy with label smoothing", &ce);
}

// ---- batch norm against PyTorch's definitions ------------------------------------------

/// `x: [n, d]` row-major: per-feature mean and biased variance.
fn moments(x: &[f64], n: usize, d: usize) -> (Vec<f64>, Vec<f64>) {
    let mean: Vec<f64> =
        (0..d).map(|j| (0..n).map(|i| x[i * d + j]).sum::<f64>() / n as f64).collect();
    let var = (0..d)
        .map(|j| (0..n).map(|i| (x[i * d + j] - mean[j]).powi(2)).sum::<f64>() / n as f64)
        .collect();
    (mean, var)
}

/// `mean((y − t)²)` with `y = (x − μ)/√(σ² + ε)·w + b` per feature.
fn bn_mse(x: &[f64], t: &[f64], d: usize, mu: &[f64], var: &[f64], w: &[f64], b: &[f64]) -> f64 {
    let eps = 1e-5;
    let s: f64 = x
        .iter()
        .enumerate()
        .map(|(k, &v)| {
            let j = k % d;
            let y = (v - mu[j]) / (var[j] + eps).sqrt() * w[j] + b[j];
            (y - t[k]).powi(2)
        })
        .sum();
    s / x.len() as f64
}

fn close(what: &str, got: f64, want: f64, tol: f64) {
    assert!((got - want).abs() <= tol * want.abs().max(1.0), "{what}: {got} vs {want}");
}

#[test]
fn batch_norm_running_statistics_and_eval_mode_follow_pytorch() {
    let src = format!(
        "model M {{ input x: [B, 3]  label t: [B, 3]  bn = BatchNorm(3, momentum = 0.3)
           loss = mse(bn(x), t) }}\n{HEAD}"
    );
    let c = compile(&src);
    assert_eq!(c.opt.states.len(), 3, "running_mean, running_var, num_batches_tracked");
    assert_eq!(c.forward.states, c.opt.states[..3].to_vec(), "eval states are a prefix");
    let mut r = ChaCha8Rng::seed_from_u64(3);
    let (w, b) = (random(&mut r, &[3], 0.5, 1.5).data, random(&mut r, &[3], -0.5, 0.5).data);
    let params =
        vec![Tensor::new(vec![3], w.clone()).to_f32(), Tensor::new(vec![3], b.clone()).to_f32()];
    let mut be = Interp::new(&c.opt, &c.forward, params);
    let (m, d) = (0.3, 3);
    let (mut rm, mut rv) = (vec![0.0; 3], vec![1.0; 3]);
    for (step, n) in [4usize, 7, 2].into_iter().enumerate() {
        let x = random(&mut r, &[n, d], -3.0, 5.0);
        let t = random(&mut r, &[n, d], -1.0, 1.0);
        // lr = 0: the parameters stay, the buffers move.
        let out = be.step(&[x.to_f32(), t.to_f32()], 0.0, step as u64 + 1).unwrap();
        // Training: batch mean, biased variance.
        let (mu, var) = moments(&x.data, n, d);
        close("training loss", out[0] as f64, bn_mse(&x.data, &t.data, d, &mu, &var, &w, &b), 1e-5);
        // running ← (1 − m)·running + m·stat, with the unbiased variance σ²·n/(n − 1)
        for j in 0..d {
            rm[j] = (1.0 - m) * rm[j] + m * mu[j];
            rv[j] = (1.0 - m) * rv[j] + m * var[j] * n as f64 / (n as f64 - 1.0);
        }
        let bufs = be.buffers().unwrap();
        for j in 0..d {
            close("running_mean", bufs[0].data[j] as f64, rm[j], 1e-5);
            close("running_var", bufs[1].data[j] as f64, rv[j], 1e-5);
        }
        assert_eq!(bufs[2].data, vec![step as f32 + 1.0], "num_batches_tracked");
        assert!(bufs[2].shape.is_empty());
    }
    // Evaluation: the running statistics, and nothing moves.
    let x = random(&mut r, &[6, d], -3.0, 5.0);
    let t = random(&mut r, &[6, d], -1.0, 1.0);
    let before = be.buffers().unwrap();
    let eval_loss = be.evaluate(&[x.to_f32(), t.to_f32()]).unwrap()[0] as f64;
    close("eval loss", eval_loss, bn_mse(&x.data, &t.data, d, &rm, &rv, &w, &b), 1e-5);
    assert_eq!(be.buffers().unwrap(), before);
    // Train and eval differ on the same batch: batch statistics against running ones.
    let (mu, var) = moments(&x.data, 6, d);
    let train_loss = bn_mse(&x.data, &t.data, d, &mu, &var, &w, &b);
    assert!((train_loss - eval_loss).abs() > 0.1, "{train_loss} vs {eval_loss}");
    let out = be.step(&[x.to_f32(), t.to_f32()], 0.0, 4).unwrap();
    close("training loss on the same batch", out[0] as f64, train_loss, 1e-5);
}

#[test]
fn batch_norm_applied_twice_updates_its_statistics_twice() {
    let src = format!(
        "model M {{ input x: [B, 2]  label t: [B, 2]  bn = BatchNorm(2, momentum = 0.5)
           loss = mse(bn(x) + bn(2 * x), t) }}\n{HEAD}"
    );
    let c = compile(&src);
    verify(&c.opt).unwrap();
    let x = Tensor::new(vec![2, 2], vec![0.0, 1.0, 2.0, 5.0]);
    let t = Tensor::full(vec![2, 2], 0.0);
    let params = state::initial(&c.model, 0, None).unwrap().params;
    let mut be = Interp::new(&c.opt, &c.forward, params);
    be.step(&[x.to_f32(), t.to_f32()], 0.0, 1).unwrap();
    // means [1, 3] then [2, 6]: 0.5·(0.5·0 + 0.5·1) + 0.5·2 = 1.25, and 3.75
    let b = be.buffers().unwrap();
    assert_eq!(b[0].data, vec![1.25, 3.75]);
    assert_eq!(b[2].data, vec![2.0]);
}

// ---- activations, losses and penalties against their formulas --------------------------

/// Evaluates the loss of `src` (f64, eval graph) with inputs `x`, `t` and parameters `p`.
fn loss_of(src: &str, p: Vec<Tensor<f64>>, inputs: &[Tensor<f64>]) -> f64 {
    let c = compile(src);
    run(&c.forward, &c, &p, inputs)[0].data[0]
}

fn elementwise_case(expr: &str, f: impl Fn(f64) -> f64) {
    let src = format!(
        "model M {{ input x: [B, 4]  label t: [B, 4]  param s: [4] = ones
           loss = sum({expr} * t) }}\n{HEAD}"
    );
    let mut r = ChaCha8Rng::seed_from_u64(11);
    let x = random(&mut r, &[6, 4], -4.0, 4.0);
    let t = random(&mut r, &[6, 4], -1.0, 1.0);
    let want: f64 = x.data.iter().zip(&t.data).map(|(&a, &b)| f(a) * b).sum();
    let got = loss_of(&src, vec![Tensor::full(vec![4], 1.0)], &[x, t]);
    close(expr, got, want, 1e-12);
}

#[test]
fn activations_follow_their_formulas() {
    let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
    elementwise_case(
        "elu(x * s, alpha = 0.7)",
        |x| if x > 0.0 { x } else { 0.7 * (x.exp() - 1.0) },
    );
    elementwise_case("elu(x * s)", |x| if x > 0.0 { x } else { x.exp() - 1.0 });
    elementwise_case("silu(x * s)", |x| x * sigmoid(x));
    elementwise_case("gelu(x * s)", |x| 0.5 * x * (1.0 + erf(x / 2f64.sqrt())));
    elementwise_case("gelu(x * s, approximate = \"none\")", |x| {
        0.5 * x * (1.0 + erf(x / 2f64.sqrt()))
    });
    let k = (2.0 / std::f64::consts::PI).sqrt();
    elementwise_case("gelu(x * s, approximate = \"tanh\")", |x| {
        0.5 * x * (1.0 + (k * (x + 0.044715 * x.powi(3))).tanh())
    });
    // Large positive inputs: no overflow in elu's unused branch, in value or gradient.
    let c = compile(&format!(
        "model M {{ input x: [B, 1]  label t: [B, 1]  param s: [1] = ones  loss = mean(elu(x * s)) }}\n{HEAD}"
    ));
    let out = run(
        &c.grad,
        &c,
        &[Tensor::full(vec![1], 1.0)],
        &[Tensor::full(vec![1, 1], 1000.0), Tensor::full(vec![1, 1], 0.0)],
    );
    assert_eq!(out[0].data[0], 1000.0);
    assert_eq!(out[1].data[0], 1000.0, "d/ds elu(1000 s) = 1000");
}

fn pair_loss(call: &str, f: impl Fn(f64, f64) -> f64, t_signs: bool) {
    let src = format!(
        "model M {{ input x: [B, 3]  label t: [B, 3]  param s: [3] = ones  loss = {call} }}\n{HEAD}"
    );
    let mut r = ChaCha8Rng::seed_from_u64(12);
    let z = random(&mut r, &[8, 3], -3.0, 3.0);
    let t = if t_signs { signs(&mut r, &[8, 3]) } else { random(&mut r, &[8, 3], -2.0, 2.0) };
    let want = z.data.iter().zip(&t.data).map(|(&a, &b)| f(a, b)).sum::<f64>() / 24.0;
    close(call, loss_of(&src, vec![Tensor::full(vec![3], 1.0)], &[z, t]), want, 1e-12);
}

#[test]
fn losses_follow_their_formulas() {
    pair_loss("hinge(x * s, t)", |z, t| (1.0 - t * z).max(0.0), true);
    pair_loss("l1(x * s, t)", |z, t| (z - t).abs(), false);
    let huber = |delta: f64| {
        move |z: f64, t: f64| {
            let d = (z - t).abs();
            if d < delta {
                0.5 * d * d
            } else {
                delta * (d - 0.5 * delta)
            }
        }
    };
    pair_loss("huber(x * s, t)", huber(1.0), false);
    pair_loss("huber(x * s, t, delta = 0.5)", huber(0.5), false);
    pair_loss("huber(x * s, t, delta = 3)", huber(3.0), false);
}

#[test]
fn cross_entropy_with_label_smoothing_is_pytorchs() {
    // loss_i = −Σ_c q_c log p_ic with q = (1 − ε)·onehot(y_i) + ε/C, mean over i
    let mut r = ChaCha8Rng::seed_from_u64(13);
    let z = random(&mut r, &[5, 4], -3.0, 3.0);
    let y = Tensor::new(vec![5], vec![0.0, 3.0, 1.0, 1.0, 2.0]);
    for eps in [0.0, 0.1, 0.35, 1.0] {
        let src = format!(
            "model M {{ input x: [B, 4]  label y: class[B] of 4  param s: [4] = ones
               loss = cross_entropy(x * s, y, label_smoothing = {eps}) }}\n{HEAD}"
        );
        let mut want = 0.0;
        for i in 0..5 {
            let row = &z.data[i * 4..i * 4 + 4];
            let lse = row.iter().map(|v| v.exp()).sum::<f64>().ln();
            for (c, v) in row.iter().enumerate() {
                let q = (1.0 - eps) * f64::from(c == y.data[i] as usize) + eps / 4.0;
                want -= q * (v - lse);
            }
        }
        want /= 5.0;
        let got = loss_of(&src, vec![Tensor::full(vec![4], 1.0)], &[z.clone(), y.clone()]);
        close(&format!("label_smoothing {eps}"), got, want, 1e-12);
    }
}

#[test]
fn penalties_sum_each_chosen_parameter_once() {
    let src = format!(
        "model M {{ input x: [B, 2]  label t: [B, 1]  fc1 = Dense(2 -> 3)  fc2 = Dense(3 -> 1)
           loss = l2_penalty(fc1, fc1.weight, lambda = 0.1) + l1_penalty(fc2.weight, lambda = 0.2) }}\n{HEAD}"
    );
    let mut r = ChaCha8Rng::seed_from_u64(14);
    let p: Vec<Tensor<f64>> = [vec![3, 2], vec![3], vec![1, 3], vec![1]]
        .iter()
        .map(|s| random(&mut r, s, -1.0, 1.0))
        .collect();
    let sq = |t: &Tensor<f64>| t.data.iter().map(|v| v * v).sum::<f64>();
    let ab = |t: &Tensor<f64>| t.data.iter().map(|v| v.abs()).sum::<f64>();
    // λ/2·Σθ² over fc1.weight and fc1.bias (fc1.weight named twice, counted once); λ·Σ|θ|
    let want = 0.05 * (sq(&p[0]) + sq(&p[1])) + 0.2 * ab(&p[2]);
    let inputs = [Tensor::full(vec![1, 2], 0.0), Tensor::full(vec![1, 1], 0.0)];
    close("penalty", loss_of(&src, p, &inputs), want, 1e-12);
}

// ---- weight files, probes, LSUV ---------------------------------------------------------

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("nnc-layers-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

const BN_NET: &str = "model BnNet { input x: [B, 2]  label y: class[B] of 2
    fc1 = Dense(2 -> 8)  bn = BatchNorm(8)  fc2 = Dense(8 -> 2)
    logits = fc2(relu(bn(fc1(x))))
    loss = cross_entropy(logits, y)  metric accuracy(logits, y) }
optimizer sgd(lr = 0.1)
train { data = xor(n = 64), batch = 16, steps = 3, shuffle = false }
";

#[test]
fn weights_round_trip_with_buffers() {
    let c = compile(BN_NET);
    let w0 = state::initial(&c.model, 1, None).unwrap();
    let mut be = session::backend_with(session::BackendKind::Interp, &c, w0).unwrap();
    let mut r = ChaCha8Rng::seed_from_u64(4);
    let x = random(&mut r, &[16, 2], -1.0, 1.0).to_f32();
    let y = Tensor::new(vec![16], (0..16).map(|i| (i % 2) as f32).collect());
    for t in 1..=3 {
        be.step(&[x.clone(), y.clone()], 0.1, t).unwrap();
    }
    let w = session::current_weights(&c.model, be.as_ref()).unwrap();
    assert_eq!(w.buffers[2].data, vec![3.0]);
    let dir = temp_dir("roundtrip");
    let path = dir.join("w.safetensors");
    state::save(&c.model, &w, &path).unwrap();
    let names: Vec<String> =
        nnc::train::weights::load(&path).unwrap().into_iter().map(|t| t.0).collect();
    for n in
        ["bn.running_mean", "bn.running_var", "bn.num_batches_tracked", "bn.weight", "fc1.bias"]
    {
        assert!(names.contains(&n.to_string()), "{n} in {names:?}");
    }
    let back = state::load(&c.model, &path).unwrap();
    assert_eq!(back, w);
    // A fresh backend from the file evaluates exactly as the trained one.
    let mut be2 = session::backend_with(session::BackendKind::Interp, &c, back).unwrap();
    let inputs = [x.clone(), y.clone()];
    assert_eq!(be2.evaluate(&inputs).unwrap(), be.evaluate(&inputs).unwrap());
    // A file without the running statistics is refused, naming them.
    let params: Vec<(String, &Tensor<f32>)> =
        c.model.params.iter().map(|p| p.name.clone()).zip(&w.params).collect();
    let short = dir.join("params_only.safetensors");
    nnc::train::weights::save(&short, &params).unwrap();
    let err = state::load(&c.model, &short).unwrap_err().to_string();
    assert!(err.contains("bn.running_mean") && err.contains("bn.running_var"), "{err}");
    std::fs::remove_dir_all(dir).ok();
}

fn csv(path: &std::path::Path) -> (Vec<String>, Vec<Vec<f64>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(String::from).collect();
    let rows = lines.map(|l| l.split(',').map(|v| v.parse().unwrap()).collect()).collect();
    (header, rows)
}

#[test]
fn log_layers_writes_gradient_weight_and_activation_statistics() {
    let plain = compile(BN_NET);
    assert_eq!(plain.opt.reported().len(), 2, "loss and accuracy");
    assert_eq!(plain.opt.probes().count(), 0, "no probes without --log-layers");
    let checks = plain.opt.checks().count();
    assert_eq!(checks, plain.opt.params.len(), "a finite check per parameter");
    assert_eq!(plain.opt.outputs.len(), 2 + checks);
    let c =
        pipeline::compile_with(BN_NET, &CompileOptions { log_layers: true, ..Default::default() })
            .unwrap();
    verify(&c.opt).unwrap();
    let dir = temp_dir("probes");
    let log = dir.join("run.csv");
    let o = session::Options {
        log: Some(log.clone()),
        log_layers: true,
        quiet: true,
        seed: Some(5),
        ..Default::default()
    };
    let s = session::train(&c, session::BackendKind::Interp, &dir, &o).unwrap();
    assert_eq!(s.names, vec!["loss", "accuracy"]);
    let (head, rows) = csv(&dir.join("run.layers.csv"));
    let mut want = vec!["step".to_string(), "epoch".to_string()];
    for l in ["fc1", "bn", "fc2"] {
        want.push(format!("act_mean.{l}"));
        want.push(format!("act_var.{l}"));
    }
    let params = ["fc1.weight", "fc1.bias", "bn.weight", "bn.bias", "fc2.weight", "fc2.bias"];
    want.extend(params.iter().map(|p| format!("grad_norm.{p}")));
    want.extend(params.iter().map(|p| format!("weight_norm.{p}")));
    assert_eq!(head, want);
    assert_eq!(rows.len(), 3);
    assert_eq!(rows.iter().map(|r| r[0]).collect::<Vec<_>>(), vec![1.0, 2.0, 3.0]);
    let col = |name: &str| head.iter().position(|h| h == name).unwrap();
    // Step 1 against an independent computation: the initial weights and the first batch
    // (file order), their norms and gradient norms.
    let spec = session::effective_spec(&c.model, &o);
    let ds = session::load_data(&c.model, &spec, &dir, None).unwrap();
    let (x, y) = nnc::train::data::batch(&ds, &(0..16).collect::<Vec<_>>());
    let w0 = state::initial(&c.model, 5, None).unwrap();
    let inputs = session::inputs_for(&c.model, x, y);
    let grads = session::gradients(&c, session::BackendKind::Interp, &inputs, &w0.params).unwrap();
    let norm = |t: &Tensor<f32>| t.data.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
    for (i, p) in params.iter().enumerate() {
        close(
            &format!("weight_norm {p}"),
            rows[0][col(&format!("weight_norm.{p}"))],
            norm(&w0.params[i]),
            1e-5,
        );
        close(
            &format!("grad_norm {p}"),
            rows[0][col(&format!("grad_norm.{p}"))],
            norm(&grads[i]),
            1e-4,
        );
    }
    // Training-mode batch norm with weight 1, bias 0 at step 1: mean 0, variance ≈ 1.
    assert!(rows[0][col("act_mean.bn")].abs() < 1e-5);
    assert!((rows[0][col("act_var.bn")] - 1.0).abs() < 1e-3);
    // --log-layers without --log is refused.
    let o2 = session::Options { log: None, ..o };
    assert!(session::train(&c, session::BackendKind::Interp, &dir, &o2)
        .unwrap_err()
        .to_string()
        .contains("--log"));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn lsuv_brings_every_layer_output_to_unit_variance() {
    let src = "model M { input x: [B, 10]  label t: [B, 1]
        fc1 = Dense(10 -> 32, init = lsuv)  fc2 = Dense(32 -> 32, init = lsuv)
        fc3 = Dense(32 -> 1)
        loss = mse(fc3(tanh(fc2(tanh(fc1(x * 5))))), t) }
        optimizer sgd(lr = 0.1)";
    let c = compile(src);
    assert_eq!(lsuv::layers(&c.model), vec![("fc1".to_string(), 0), ("fc2".to_string(), 2)]);
    let mut r = ChaCha8Rng::seed_from_u64(21);
    let x = random(&mut r, &[64, 10], -1.0, 1.0).to_f32();
    let t = Tensor::full(vec![64, 1], 0.0f32);
    let mut w = state::initial(&c.model, 9, None).unwrap();
    let orthogonal = w.params[0].clone();
    let reports =
        lsuv::calibrate(&c.model, &mut w.params, &w.buffers, &[x.clone(), t.clone()]).unwrap();
    assert_eq!(reports.len(), 2);
    assert!(reports[0].rescalings > 0, "x·5 through an orthogonal map is far from unit variance");
    // Independently: the variance of each layer's output, by hand, in f64.
    let dense = |h: &[f64], wt: &Tensor<f32>, b: &Tensor<f32>, n_in: usize| -> Vec<f64> {
        let n_out = b.numel();
        (0..64)
            .flat_map(|i| {
                (0..n_out).map(move |o| {
                    b.data[o] as f64
                        + (0..n_in)
                            .map(|k| h[i * n_in + k] * wt.data[o * n_in + k] as f64)
                            .sum::<f64>()
                })
            })
            .collect()
    };
    let var = |v: &[f64]| {
        let m = v.iter().sum::<f64>() / v.len() as f64;
        v.iter().map(|a| (a - m).powi(2)).sum::<f64>() / v.len() as f64
    };
    let x5: Vec<f64> = x.data.iter().map(|&v| v as f64 * 5.0).collect();
    let h1 = dense(&x5, &w.params[0], &w.params[1], 10);
    assert!((var(&h1) - 1.0).abs() < lsuv::TOL, "fc1 variance {}", var(&h1));
    let a1: Vec<f64> = h1.iter().map(|v| v.tanh()).collect();
    let h2 = dense(&a1, &w.params[2], &w.params[3], 32);
    assert!((var(&h2) - 1.0).abs() < lsuv::TOL, "fc2 variance {}", var(&h2));
    // Only a rescaling of the orthogonal draw.
    let k = w.params[0].data[0] / orthogonal.data[0];
    for (a, b) in w.params[0].data.iter().zip(&orthogonal.data) {
        assert!((a - k * b).abs() < 1e-5 * k.abs());
    }
    // Deterministic.
    let mut again = state::initial(&c.model, 9, None).unwrap();
    lsuv::calibrate(&c.model, &mut again.params, &again.buffers, &[x, t]).unwrap();
    assert_eq!(again, w);
}

/// `conv(x, k) + bias` in f64, `x [n, c, h, w]`, stride `s`, zero padding `p`, one group.
fn conv_bias(x: Tensor<f64>, k: &Tensor<f32>, b: &Tensor<f32>, s: u16, p: u16) -> Vec<f64> {
    let win = Window { kernel: [3, 3], stride: [s, s], pad: [p, p], dilation: [1, 1], groups: 1 };
    let y = reference_conv(&x, &k.to_f64(), &win);
    let plane = y.shape[2] * y.shape[3];
    let bias = |i: usize| b.data[i / plane % b.numel()] as f64;
    y.data.iter().enumerate().map(|(i, v)| v + bias(i)).collect()
}

#[test]
fn lsuv_brings_every_conv_output_to_unit_variance() {
    // Mishkin & Matas's setting: convolutions, the variance over every element of the
    // layer's output [N, O, Ho, Wo]; the second layer sees the first already rescaled.
    let src = "model M { input x: [B, 2, 5, 5]  label t: [B, 16]
        c1 = Conv2d(2 -> 6, 3, padding = 1, init = lsuv)
        c2 = Conv2d(6 -> 4, 3, stride = 2, init = lsuv)
        loss = mse(flatten(c2(relu(c1(x * 5)))), t) }
        optimizer sgd(lr = 0.1)";
    let c = compile(src);
    assert_eq!(lsuv::layers(&c.model), vec![("c1".to_string(), 0), ("c2".to_string(), 2)]);
    let mut r = ChaCha8Rng::seed_from_u64(31);
    let x = random(&mut r, &[32, 2, 5, 5], -1.0, 1.0).to_f32();
    let t = Tensor::full(vec![32, 16], 0.0f32);
    let mut w = state::initial(&c.model, 4, None).unwrap();
    let drawn = w.params.clone();
    let reports = lsuv::calibrate(&c.model, &mut w.params, &w.buffers, &[x.clone(), t]).unwrap();
    assert!(reports.iter().all(|r| r.rescalings > 0), "{reports:?}");
    let var = |v: &[f64]| {
        let m = v.iter().sum::<f64>() / v.len() as f64;
        v.iter().map(|a| (a - m).powi(2)).sum::<f64>() / v.len() as f64
    };
    let x5: Vec<f64> = x.data.iter().map(|&v| v as f64 * 5.0).collect();
    let h1 = conv_bias(Tensor::new(vec![32, 2, 5, 5], x5), &w.params[0], &w.params[1], 1, 1);
    assert!((var(&h1) - 1.0).abs() < lsuv::TOL, "c1 variance {}", var(&h1));
    let a1: Vec<f64> = h1.iter().map(|v| v.max(0.0)).collect();
    let h2 = conv_bias(Tensor::new(vec![32, 6, 5, 5], a1), &w.params[2], &w.params[3], 2, 0);
    assert!((var(&h2) - 1.0).abs() < lsuv::TOL, "c2 variance {}", var(&h2));
    // The kernels are rescaled draws; the biases are untouched.
    for (p, before) in w.params.iter().zip(&drawn) {
        let k = p.data[0] / before.data[0];
        assert!(p.data.iter().zip(&before.data).all(|(a, b)| (a - k * b).abs() < 1e-5 * k.abs()));
    }
    assert_eq!((&w.params[1], &w.params[3]), (&drawn[1], &drawn[3]));
}

/// `avg_pool2d` and `global_avg_pool` are the means of their windows (against a direct
/// computation on a numbered image), and their gradients, through a parameter that scales
/// the image, match finite differences.
#[test]
fn average_pooling_is_the_mean_of_each_window() {
    use nnc::lower::{lower_with, LowerOptions, Mode};
    let model = |pooled: &str, t: usize| {
        format!(
            "model P {{\n    input x: [B, 2, 4, 6]\n    label t: [B, {t}]\n    param s: [2, 4, 6] = ones\n    loss = mse({pooled}, t)\n}}\noptimizer sgd(lr = 0.1)\n"
        )
    };
    let x = Tensor::new(vec![1, 2, 4, 6], (0..48).map(|v| v as f64).collect());
    let at = |c: usize, i: usize, j: usize| (c * 24 + i * 6 + j) as f64;
    for (pooled, t, want) in [
        (
            "flatten(avg_pool2d(x * s, 2))",
            12,
            (0..2)
                .flat_map(|c| (0..2).flat_map(move |i| (0..3).map(move |j| (c, i, j))))
                .map(|(c, i, j)| {
                    (at(c, 2 * i, 2 * j)
                        + at(c, 2 * i, 2 * j + 1)
                        + at(c, 2 * i + 1, 2 * j)
                        + at(c, 2 * i + 1, 2 * j + 1))
                        / 4.0
                })
                .collect::<Vec<f64>>(),
        ),
        ("global_avg_pool(x * s)", 2, vec![11.5, 35.5]),
    ] {
        let src = model(pooled, t);
        let c = compile(&src);
        let o = LowerOptions { mode: Mode::Eval, probes: false, prediction: true };
        let g = lower_with(&c.model, o);
        let params = vec![Tensor::new(vec![2, 4, 6], vec![1.0; 48])];
        let out = run(&g, &c, &params, &[x.clone(), Tensor::new(vec![1, t], vec![0.0; t])]);
        assert_eq!(out.last().unwrap().data, want, "{pooled}");
        check_gradients(pooled, &src);
    }
}
