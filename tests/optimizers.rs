//! Optimizers against their formulas: for at least 20 steps, the compiled training step (run
//! by the reference interpreter in f64) must move the parameters as the update written here
//! independently (PyTorch's algorithms as documented, docs/methods.md for the others) moves
//! them, given the same gradients. Also: parameter groups (overrides, first match wins,
//! per-group clipping) and their mistakes.

mod harness;

use harness::{check, check_jit, first_error, names, zeros_like, TINY, TWO};

type P = Vec<Vec<f64>>;

/// Calls `f(i, j, θ, g)` for every element `j` of every parameter `i`.
fn each(ps: &mut [Vec<f64>], gs: &[Vec<f64>], mut f: impl FnMut(usize, usize, &mut f64, f64)) {
    for i in 0..ps.len() {
        for j in 0..ps[i].len() {
            f(i, j, &mut ps[i][j], gs[i][j]);
        }
    }
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

const STEPS: usize = 25;

// ---- SGD and the heavy ball ----------------------------------------------------------

#[test]
fn plain_sgd() {
    check(TINY, "optimizer sgd(lr = 0.1)", STEPS, &mut harness::sgd_with(|_| 0.1));
}

/// torch.optim.SGD with momentum μ, dampening τ, weight decay λ (and Nesterov).
fn sgd(
    lr: f64,
    mu: f64,
    tau: f64,
    wd: f64,
    nesterov: bool,
) -> impl FnMut(&mut [Vec<f64>], &[Vec<f64>], usize) {
    let mut bufs: P = Vec::new();
    move |ps, gs, t| {
        if t == 1 {
            bufs = zeros_like(ps);
        }
        each(ps, gs, |i, j, p, g| {
            let d = g + wd * *p;
            let b = &mut bufs[i][j];
            *b = if t == 1 { d } else { mu * *b + (1.0 - tau) * d };
            *p -= lr * if nesterov { d + mu * *b } else { *b };
        });
    }
}

#[test]
fn sgd_weight_decay_momentum_dampening() {
    check(
        TINY,
        "optimizer sgd(lr = 0.05, momentum = 0.9, dampening = 0.3, weight_decay = 0.01)",
        STEPS,
        &mut sgd(0.05, 0.9, 0.3, 0.01, false),
    );
}

#[test]
fn sgd_nesterov() {
    check(
        TWO,
        "optimizer sgd(lr = 0.05, momentum = 0.8, nesterov = true, weight_decay = 1e-3)",
        STEPS,
        &mut sgd(0.05, 0.8, 0.0, 1e-3, true),
    );
}

#[test]
fn heavy_ball_polyak() {
    let (lr, beta, wd) = (0.05, 0.8, 0.01);
    let mut prev: P = Vec::new();
    check(
        TWO,
        "optimizer heavy_ball(lr = 0.05, momentum = 0.8, weight_decay = 0.01)",
        STEPS,
        &mut |ps, gs, t| {
            if t == 1 {
                prev = ps.to_vec();
            }
            each(ps, gs, |i, j, p, g| {
                let old = *p;
                *p = old - lr * (g + wd * old) + beta * (old - prev[i][j]);
                prev[i][j] = old;
            });
        },
    );
}

// ---- Adagrad, RMSprop, Adadelta --------------------------------------------------------

/// torch.optim.Adagrad.
fn adagrad(
    lr: f64,
    lr_decay: f64,
    wd: f64,
    init: f64,
    eps: f64,
) -> impl FnMut(&mut [Vec<f64>], &[Vec<f64>], usize) {
    let mut sum: P = Vec::new();
    move |ps, gs, t| {
        if t == 1 {
            sum = ps.iter().map(|p| vec![init; p.len()]).collect();
        }
        let clr = lr / (1.0 + (t as f64 - 1.0) * lr_decay);
        each(ps, gs, |i, j, p, g| {
            let d = g + wd * *p;
            sum[i][j] += d * d;
            *p -= clr * d / (sum[i][j].sqrt() + eps);
        });
    }
}

#[test]
fn adagrad_defaults() {
    check(TINY, "optimizer adagrad()", STEPS, &mut adagrad(1e-2, 0.0, 0.0, 0.0, 1e-10));
}

#[test]
fn adagrad_lr_decay_accumulator_weight_decay() {
    check(
        TWO,
        "optimizer adagrad(lr = 0.1, lr_decay = 0.05, weight_decay = 0.01, initial_accumulator_value = 0.1, eps = 1e-6)",
        STEPS,
        &mut adagrad(0.1, 0.05, 0.01, 0.1, 1e-6),
    );
}

/// torch.optim.RMSprop.
fn rmsprop(
    lr: f64,
    alpha: f64,
    eps: f64,
    wd: f64,
    mu: f64,
    centered: bool,
) -> impl FnMut(&mut [Vec<f64>], &[Vec<f64>], usize) {
    let (mut v, mut ga, mut buf): (P, P, P) = (Vec::new(), Vec::new(), Vec::new());
    move |ps, gs, t| {
        if t == 1 {
            (v, ga, buf) = (zeros_like(ps), zeros_like(ps), zeros_like(ps));
        }
        each(ps, gs, |i, j, p, g| {
            let d = g + wd * *p;
            v[i][j] = alpha * v[i][j] + (1.0 - alpha) * d * d;
            let avg = if centered {
                ga[i][j] = alpha * ga[i][j] + (1.0 - alpha) * d;
                (v[i][j] - ga[i][j] * ga[i][j]).sqrt() + eps
            } else {
                v[i][j].sqrt() + eps
            };
            if mu > 0.0 {
                buf[i][j] = mu * buf[i][j] + d / avg;
                *p -= lr * buf[i][j];
            } else {
                *p -= lr * d / avg;
            }
        });
    }
}

#[test]
fn rmsprop_defaults() {
    check(TINY, "optimizer rmsprop()", STEPS, &mut rmsprop(1e-2, 0.99, 1e-8, 0.0, 0.0, false));
}

#[test]
fn rmsprop_centered_momentum_weight_decay() {
    check(
        TWO,
        "optimizer rmsprop(lr = 0.01, alpha = 0.9, eps = 1e-6, weight_decay = 0.01, momentum = 0.5, centered = true)",
        STEPS,
        &mut rmsprop(0.01, 0.9, 1e-6, 0.01, 0.5, true),
    );
}

/// torch.optim.Adadelta.
fn adadelta(
    lr: f64,
    rho: f64,
    eps: f64,
    wd: f64,
) -> impl FnMut(&mut [Vec<f64>], &[Vec<f64>], usize) {
    let (mut v, mut acc): (P, P) = (Vec::new(), Vec::new());
    move |ps, gs, t| {
        if t == 1 {
            (v, acc) = (zeros_like(ps), zeros_like(ps));
        }
        each(ps, gs, |i, j, p, g| {
            let d = g + wd * *p;
            v[i][j] = rho * v[i][j] + (1.0 - rho) * d * d;
            let delta = (acc[i][j] + eps).sqrt() / (v[i][j] + eps).sqrt() * d;
            acc[i][j] = rho * acc[i][j] + (1.0 - rho) * delta * delta;
            *p -= lr * delta;
        });
    }
}

#[test]
fn adadelta_defaults_and_options() {
    check(TINY, "optimizer adadelta()", STEPS, &mut adadelta(1.0, 0.9, 1e-6, 0.0));
    check(
        TWO,
        "optimizer adadelta(lr = 0.5, rho = 0.8, eps = 1e-5, weight_decay = 0.01)",
        STEPS,
        &mut adadelta(0.5, 0.8, 1e-5, 0.01),
    );
}

// ---- The Adam family ------------------------------------------------------------------

/// Adam's hyper-parameters for one parameter tensor.
#[derive(Clone, Copy)]
struct H {
    lr: f64,
    b1: f64,
    b2: f64,
    eps: f64,
    wd: f64,
}

/// torch.optim.Adam (`decoupled`: AdamW) with per-tensor hyper-parameters `hp(i)`, on
/// gradients first scaled by a global-norm `clip`. Counts the steps where AMSGrad's max
/// differed from `v` in `*max_used`.
fn adam_ref(
    hp: impl Fn(usize) -> H,
    decoupled: bool,
    amsgrad: bool,
    clip: Option<f64>,
    max_used: std::rc::Rc<std::cell::Cell<usize>>,
) -> impl FnMut(&mut [Vec<f64>], &[Vec<f64>], usize) {
    let (mut m, mut v, mut vmax): (P, P, P) = (Vec::new(), Vec::new(), Vec::new());
    move |ps, gs, t| {
        if t == 1 {
            (m, v, vmax) = (zeros_like(ps), zeros_like(ps), zeros_like(ps));
        }
        let n = gs.iter().flatten().map(|x| x * x).sum::<f64>().sqrt();
        let f = clip.map_or(1.0, |c| (c / (n + 1e-6)).min(1.0));
        each(ps, gs, |i, j, p, g| {
            let h = hp(i);
            let (c1, c2) = (1.0 - h.b1.powi(t as i32), 1.0 - h.b2.powi(t as i32));
            let mut d = g * f;
            if decoupled {
                *p *= 1.0 - h.lr * h.wd;
            } else {
                d += h.wd * *p;
            }
            m[i][j] = h.b1 * m[i][j] + (1.0 - h.b1) * d;
            v[i][j] = h.b2 * v[i][j] + (1.0 - h.b2) * d * d;
            let mut vv = v[i][j];
            if amsgrad {
                vmax[i][j] = vmax[i][j].max(v[i][j]);
                if vmax[i][j] > v[i][j] {
                    max_used.set(max_used.get() + 1);
                }
                vv = vmax[i][j];
            }
            *p -= (h.lr / c1) * m[i][j] / ((vv / c2).sqrt() + h.eps);
        });
    }
}

fn adam(
    lr: f64,
    b1: f64,
    b2: f64,
    eps: f64,
    wd: f64,
) -> impl FnMut(&mut [Vec<f64>], &[Vec<f64>], usize) {
    adam_ref(move |_| H { lr, b1, b2, eps, wd }, false, false, None, Default::default())
}

#[test]
fn adam_with_weight_decay() {
    check(
        TINY,
        "optimizer adam(lr = 0.01, betas = (0.8, 0.95), eps = 1e-6, weight_decay = 0.02)",
        STEPS,
        &mut adam(0.01, 0.8, 0.95, 1e-6, 0.02),
    );
}

#[test]
fn adam_defaults_with_global_norm_clipping() {
    let h = H { lr: 1e-3, b1: 0.9, b2: 0.999, eps: 1e-8, wd: 0.0 };
    check(
        TINY,
        "optimizer adam()\nclip global_norm(0.05)",
        STEPS,
        &mut adam_ref(move |_| h, false, false, Some(0.05), Default::default()),
    );
}

#[test]
fn amsgrad_keeps_the_max_of_v() {
    for items in [
        "optimizer adam(lr = 0.01, betas = (0.9, 0.8), amsgrad = true)",
        "optimizer amsgrad(lr = 0.01, betas = (0.9, 0.8))",
    ] {
        let used = std::rc::Rc::new(std::cell::Cell::new(0));
        let h = H { lr: 0.01, b1: 0.9, b2: 0.8, eps: 1e-8, wd: 0.0 };
        check(TWO, items, STEPS, &mut adam_ref(move |_| h, false, true, None, used.clone()));
        assert!(used.get() > 20, "{items}: the max mattered only {} times", used.get());
    }
}

#[test]
fn adamw_decoupled_decay() {
    let h = H { lr: 0.01, b1: 0.9, b2: 0.999, eps: 1e-8, wd: 0.1 };
    check(
        TWO,
        "optimizer adamw(lr = 0.01, weight_decay = 0.1)",
        STEPS,
        &mut adam_ref(move |_| h, true, false, None, Default::default()),
    );
    let h = H { wd: 0.01, lr: 1e-3, ..h };
    check(
        TINY,
        "optimizer adamw(amsgrad = true, betas = (0.9, 0.8))",
        STEPS,
        &mut adam_ref(move |_| H { b2: 0.8, ..h }, true, true, None, Default::default()),
    );
}

/// torch.optim.NAdam.
fn nadam(
    lr: f64,
    b1: f64,
    b2: f64,
    eps: f64,
    wd: f64,
    psi: f64,
) -> impl FnMut(&mut [Vec<f64>], &[Vec<f64>], usize) {
    let (mut m, mut v, mut prod): (P, P, f64) = (Vec::new(), Vec::new(), 1.0);
    move |ps, gs, t| {
        if t == 1 {
            (m, v, prod) = (zeros_like(ps), zeros_like(ps), 1.0);
        }
        let t = t as f64;
        let c2 = 1.0 - b2.powf(t);
        let mu = b1 * (1.0 - 0.5 * 0.96f64.powf(t * psi));
        let mu_next = b1 * (1.0 - 0.5 * 0.96f64.powf((t + 1.0) * psi));
        prod *= mu;
        let prod_next = prod * mu_next;
        each(ps, gs, |i, j, p, g| {
            let d = g + wd * *p;
            m[i][j] = b1 * m[i][j] + (1.0 - b1) * d;
            v[i][j] = b2 * v[i][j] + (1.0 - b2) * d * d;
            let denom = (v[i][j] / c2).sqrt() + eps;
            *p -= lr * (1.0 - mu) / (1.0 - prod) * d / denom;
            *p -= lr * mu_next / (1.0 - prod_next) * m[i][j] / denom;
        });
    }
}

#[test]
fn nadam_defaults_and_options() {
    check(TINY, "optimizer nadam()", STEPS, &mut nadam(2e-3, 0.9, 0.999, 1e-8, 0.0, 4e-3));
    check(
        TWO,
        "optimizer nadam(lr = 0.01, betas = (0.8, 0.9), weight_decay = 0.01, momentum_decay = 0.05)",
        STEPS,
        &mut nadam(0.01, 0.8, 0.9, 1e-8, 0.01, 0.05),
    );
}

/// torch.optim.RAdam; counts the rectified steps in `rectified`.
fn radam(
    lr: f64,
    b1: f64,
    b2: f64,
    eps: f64,
    wd: f64,
    rectified: std::rc::Rc<std::cell::Cell<usize>>,
) -> impl FnMut(&mut [Vec<f64>], &[Vec<f64>], usize) {
    let (mut m, mut v): (P, P) = (Vec::new(), Vec::new());
    move |ps, gs, t| {
        if t == 1 {
            (m, v) = (zeros_like(ps), zeros_like(ps));
        }
        let tf = t as f64;
        let (c1, c2) = (1.0 - b1.powf(tf), 1.0 - b2.powf(tf));
        let rho_inf = 2.0 / (1.0 - b2) - 1.0;
        let rho_t = rho_inf - 2.0 * tf * b2.powf(tf) / c2;
        if rho_t > 5.0 {
            rectified.set(rectified.get() + 1);
        }
        each(ps, gs, |i, j, p, g| {
            let d = g + wd * *p;
            m[i][j] = b1 * m[i][j] + (1.0 - b1) * d;
            v[i][j] = b2 * v[i][j] + (1.0 - b2) * d * d;
            let mhat = m[i][j] / c1;
            if rho_t > 5.0 {
                let rect = ((rho_t - 4.0) * (rho_t - 2.0) * rho_inf
                    / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
                    .sqrt();
                let adaptive = c2.sqrt() / (v[i][j].sqrt() + eps);
                *p -= mhat * lr * adaptive * rect;
            } else {
                *p -= mhat * lr;
            }
        });
    }
}

#[test]
fn radam_switches_to_the_rectified_step() {
    let r = std::rc::Rc::new(std::cell::Cell::new(0));
    check(
        TINY,
        "optimizer radam(lr = 0.01)",
        STEPS,
        &mut radam(0.01, 0.9, 0.999, 1e-8, 0.0, r.clone()),
    );
    // ρ_t > 5 from t = 6 on with β₂ = 0.999: both branches ran.
    assert_eq!(r.get(), STEPS - 5);
    let r = std::rc::Rc::new(std::cell::Cell::new(0));
    check(
        TWO,
        "optimizer radam(lr = 0.01, betas = (0.8, 0.9), eps = 1e-6, weight_decay = 0.01)",
        STEPS,
        &mut radam(0.01, 0.8, 0.9, 1e-6, 0.01, r.clone()),
    );
    assert!(r.get() > 0 && r.get() < STEPS, "rectified {} of {STEPS}", r.get());
}

/// The step-dependent scalars of the Adam family (bias corrections, RAdam's ρ_t and
/// rectification, NAdam's momentum products) are computed on the host in f64: through the
/// JIT, in f32, each of 100 steps with β₂ = 0.999 and 0.9999 gives the f64 formulas'
/// parameters to 1e-6 of each tensor's largest magnitude (measured: 1e-7 to 2e-7). Computed
/// in f32 from an f32-rounded β₂, as they were, the bias corrections alone put Adam 4e-5
/// off with β₂ = 0.9999 and 3e-6 with 0.999 at this learning rate, and RAdam with
/// β₂ = 0.9999 rectified from t = 2 instead of 6.
#[test]
fn jit_matches_the_f64_formulas_over_100_steps() {
    const N: usize = 100;
    for b2 in [0.999, 0.9999] {
        let betas = format!("betas = (0.9, {b2})");
        let h = H { lr: 0.05, b1: 0.9, b2, eps: 1e-8, wd: 0.0 };
        let none = || std::rc::Rc::new(std::cell::Cell::new(0));
        let rectified = none();
        let cases: Vec<(String, Box<dyn FnMut(&mut [Vec<f64>], &[Vec<f64>], usize)>)> = vec![
            (format!("adam(lr = 0.05, {betas})"), Box::new(adam(0.05, 0.9, b2, 1e-8, 0.0))),
            (
                format!("adamw(lr = 0.05, {betas}, weight_decay = 0.1)"),
                Box::new(adam_ref(move |_| H { wd: 0.1, ..h }, true, false, None, none())),
            ),
            (
                format!("amsgrad(lr = 0.05, {betas})"),
                Box::new(adam_ref(move |_| h, false, true, None, none())),
            ),
            (format!("nadam(lr = 0.05, {betas})"), Box::new(nadam(0.05, 0.9, b2, 1e-8, 0.0, 4e-3))),
            (
                format!("radam(lr = 0.05, {betas})"),
                Box::new(radam(0.05, 0.9, b2, 1e-8, 0.0, rectified.clone())),
            ),
        ];
        for (opt, mut update) in cases {
            let worst = check_jit(TWO, &format!("optimizer {opt}"), N, 1e-6, &mut *update);
            eprintln!("{opt}: largest error {worst:.2e} of the largest |θ|");
        }
        // ρ_t > 5 from t = 6 on, for β₂ = 0.9999 as for 0.999.
        assert_eq!(rectified.get(), N - 5, "β₂ = {b2}");
    }
}

/// torch.optim.Adamax.
fn adamax(
    lr: f64,
    b1: f64,
    b2: f64,
    eps: f64,
    wd: f64,
) -> impl FnMut(&mut [Vec<f64>], &[Vec<f64>], usize) {
    let (mut m, mut u): (P, P) = (Vec::new(), Vec::new());
    move |ps, gs, t| {
        if t == 1 {
            (m, u) = (zeros_like(ps), zeros_like(ps));
        }
        let clr = lr / (1.0 - b1.powi(t as i32));
        each(ps, gs, |i, j, p, g| {
            let d = g + wd * *p;
            m[i][j] = b1 * m[i][j] + (1.0 - b1) * d;
            u[i][j] = (b2 * u[i][j]).max(d.abs() + eps);
            *p -= clr * m[i][j] / u[i][j];
        });
    }
}

#[test]
fn adamax_defaults_and_options() {
    check(TINY, "optimizer adamax()", STEPS, &mut adamax(2e-3, 0.9, 0.999, 1e-8, 0.0));
    check(
        TWO,
        "optimizer adamax(lr = 0.01, betas = (0.8, 0.95), eps = 1e-6, weight_decay = 0.01)",
        STEPS,
        &mut adamax(0.01, 0.8, 0.95, 1e-6, 0.01),
    );
}

#[test]
fn adabound_clips_step_sizes_into_converging_bounds() {
    let (lr, fl, gamma, b1, b2, eps, wd): (f64, f64, f64, f64, f64, f64, f64) =
        (0.01, 0.05, 0.5, 0.9, 0.999, 1e-8, 1e-3);
    let (mut m, mut v): (P, P) = (Vec::new(), Vec::new());
    let (mut low, mut high) = (0, 0);
    check(
        TWO,
        "optimizer adabound(lr = 0.01, final_lr = 0.05, gamma = 0.5, weight_decay = 1e-3)",
        STEPS,
        &mut |ps, gs, t| {
            if t == 1 {
                (m, v) = (zeros_like(ps), zeros_like(ps));
            }
            let tf = t as f64;
            let size = lr * (1.0 - b2.powf(tf)).sqrt() / (1.0 - b1.powf(tf));
            let (lo, hi) = (fl * (1.0 - 1.0 / (gamma * tf + 1.0)), fl * (1.0 + 1.0 / (gamma * tf)));
            each(ps, gs, |i, j, p, g| {
                let d = g + wd * *p;
                m[i][j] = b1 * m[i][j] + (1.0 - b1) * d;
                v[i][j] = b2 * v[i][j] + (1.0 - b2) * d * d;
                let eta = size / (v[i][j].sqrt() + eps);
                low += usize::from(eta < lo);
                high += usize::from(eta > hi);
                *p -= eta.clamp(lo, hi) * m[i][j];
            });
        },
    );
    assert!(low > 0 && high > 0, "bounds hit: lower {low}, upper {high}");
}

#[test]
fn padam_partial_exponent() {
    let (lr, p_, b1, b2, eps): (f64, f64, f64, f64, f64) = (0.05, 0.125, 0.9, 0.999, 1e-8);
    let (mut m, mut v, mut vmax): (P, P, P) = (Vec::new(), Vec::new(), Vec::new());
    check(TWO, "optimizer padam(lr = 0.05)", STEPS, &mut |ps, gs, t| {
        if t == 1 {
            (m, v, vmax) = (zeros_like(ps), zeros_like(ps), zeros_like(ps));
        }
        let (c1, c2) = (1.0 - b1.powi(t as i32), 1.0 - b2.powi(t as i32));
        each(ps, gs, |i, j, p, g| {
            m[i][j] = b1 * m[i][j] + (1.0 - b1) * g;
            v[i][j] = b2 * v[i][j] + (1.0 - b2) * g * g;
            vmax[i][j] = vmax[i][j].max(v[i][j]);
            *p -= lr * (m[i][j] / c1) / ((vmax[i][j] / c2).powf(p_) + eps);
        });
    });
    // p = ½ without the max is Adam.
    check(
        TINY,
        "optimizer padam(lr = 0.01, partial = 0.5, amsgrad = false, weight_decay = 0.01)",
        STEPS,
        &mut adam(0.01, 0.9, 0.999, 1e-8, 0.01),
    );
}

// ---- Layer-wise: LARS and LAMB ---------------------------------------------------------

/// TINY with a zero bias: its norm is 0 on the first step (trust ratio 1).
const ZERO_BIAS: &str = r#"
model ZeroBias {
    input x: [B, 3]
    label y: [B, 2]
    fc = Dense(3 -> 2, init = normal(0, 0.5), bias_init = zeros)
    loss = mse(tanh(fc(x)), y)
}
"#;

fn lars(lr: f64, mu: f64, wd: f64, eta: f64) -> impl FnMut(&mut [Vec<f64>], &[Vec<f64>], usize) {
    let mut buf: P = Vec::new();
    move |ps, gs, t| {
        if t == 1 {
            buf = zeros_like(ps);
        }
        for i in 0..ps.len() {
            let (wn, gn) = (norm(&ps[i]), norm(&gs[i]));
            let local = if wn > 0.0 && gn > 0.0 { eta * wn / (gn + wd * wn) } else { 1.0 };
            for j in 0..ps[i].len() {
                buf[i][j] = mu * buf[i][j] + lr * local * (gs[i][j] + wd * ps[i][j]);
                ps[i][j] -= buf[i][j];
            }
        }
    }
}

#[test]
fn lars_trust_ratio_per_tensor() {
    check(
        TWO,
        "optimizer lars(lr = 0.5, momentum = 0.9, weight_decay = 1e-3, trust_coefficient = 0.02)",
        STEPS,
        &mut lars(0.5, 0.9, 1e-3, 0.02),
    );
    check(ZERO_BIAS, "optimizer lars(lr = 0.1)", STEPS, &mut lars(0.1, 0.9, 0.0, 1e-3));
}

fn lamb(
    lr: f64,
    b1: f64,
    b2: f64,
    eps: f64,
    wd: f64,
) -> impl FnMut(&mut [Vec<f64>], &[Vec<f64>], usize) {
    let (mut m, mut v): (P, P) = (Vec::new(), Vec::new());
    move |ps, gs, t| {
        if t == 1 {
            (m, v) = (zeros_like(ps), zeros_like(ps));
        }
        let (c1, c2) = (1.0 - b1.powi(t as i32), 1.0 - b2.powi(t as i32));
        for i in 0..ps.len() {
            let mut r = vec![0.0; ps[i].len()];
            for j in 0..ps[i].len() {
                let g = gs[i][j];
                m[i][j] = b1 * m[i][j] + (1.0 - b1) * g;
                v[i][j] = b2 * v[i][j] + (1.0 - b2) * g * g;
                r[j] = (m[i][j] / c1) / ((v[i][j] / c2).sqrt() + eps) + wd * ps[i][j];
            }
            let (wn, rn) = (norm(&ps[i]), norm(&r));
            let trust = if wn > 0.0 && rn > 0.0 { wn / rn } else { 1.0 };
            for j in 0..ps[i].len() {
                ps[i][j] -= lr * trust * r[j];
            }
        }
    }
}

#[test]
fn lamb_trust_ratio_per_tensor() {
    check(TWO, "optimizer lamb(lr = 0.01)", STEPS, &mut lamb(0.01, 0.9, 0.999, 1e-6, 0.01));
    check(
        ZERO_BIAS,
        "optimizer lamb(lr = 0.02, betas = (0.8, 0.9), eps = 1e-8, weight_decay = 0)",
        STEPS,
        &mut lamb(0.02, 0.8, 0.9, 1e-8, 0.0),
    );
}

// ---- Clipping --------------------------------------------------------------------------

#[test]
fn sgd_with_value_clipping() {
    let (lr, c) = (0.5, 0.02);
    check(TINY, "optimizer sgd(lr = 0.5)\nclip value(0.02)", STEPS, &mut |ps, gs, _| {
        each(ps, gs, |_, _, p, g| *p -= lr * g.clamp(-c, c));
    });
}

// ---- Parameter groups ------------------------------------------------------------------

#[test]
fn group_without_decay_on_biases() {
    let items = r#"optimizer sgd(lr = 0.1, momentum = 0.9, weight_decay = 0.05) { group "*.bias" (weight_decay = 0) }"#;
    let biases: Vec<bool> = names(TWO, items).iter().map(|n| n.ends_with(".bias")).collect();
    let mut bufs: P = Vec::new();
    check(TWO, items, STEPS, &mut |ps, gs, t| {
        if t == 1 {
            bufs = zeros_like(ps);
        }
        each(ps, gs, |i, j, p, g| {
            let wd = if biases[i] { 0.0 } else { 0.05 };
            let d = g + wd * *p;
            bufs[i][j] = if t == 1 { d } else { 0.9 * bufs[i][j] + d };
            *p -= 0.1 * bufs[i][j];
        });
    });
}

#[test]
fn groups_override_any_hyper_parameter_first_match_wins() {
    let items = r#"
optimizer adamw(lr = 0.01, weight_decay = 0.1) {
    group "fc2.*" (lr = 0.002, betas = (0.8, 0.9))
    group "*.bias", "gain" (weight_decay = 0, amsgrad = true)
}"#;
    let n = names(TWO, items);
    assert_eq!(n, ["gain", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]);
    // fc2.bias is in the first group only (first match wins): it keeps weight decay.
    let base = H { lr: 0.01, b1: 0.9, b2: 0.999, eps: 1e-8, wd: 0.1 };
    let hp = move |i: usize| match i {
        3 | 4 => H { lr: 0.002, b1: 0.8, b2: 0.9, ..base },
        0 | 2 => H { wd: 0.0, ..base },
        _ => base,
    };
    // AMSGrad only on gain and fc1.bias: run two references and take per tensor.
    let mut plain = adam_ref(hp, true, false, None, Default::default());
    let mut ams = adam_ref(hp, true, true, None, Default::default());
    check(TWO, items, STEPS, &mut |ps, gs, t| {
        let mut a = ps.to_vec();
        plain(ps, gs, t);
        ams(&mut a, gs, t);
        for i in [0, 2] {
            ps[i] = a[i].clone();
        }
    });
}

#[test]
fn group_lr_scales_the_schedule() {
    let items = r#"optimizer sgd(lr = 0.1) { group "*.bias" (lr = 0.01) }
schedule step(step_size = 4, gamma = 0.5)"#;
    let biases: Vec<bool> = names(TWO, items).iter().map(|n| n.ends_with(".bias")).collect();
    check(TWO, items, STEPS, &mut |ps, gs, t| {
        let f = 0.5f64.powi(((t - 1) / 4) as i32);
        each(ps, gs, |i, _, p, g| *p -= if biases[i] { 0.01 } else { 0.1 } * f * g);
    });
}

#[test]
fn per_group_clipping_after_the_global_clip() {
    let items = r#"optimizer sgd(lr = 0.2) {
    group "fc1.*" (clip = global_norm(0.05))
    group "*.bias" (clip = value(0.01))
}
clip global_norm(0.5)"#;
    let n = names(TWO, items);
    check(TWO, items, STEPS, &mut |ps, gs, _| {
        let total = gs.iter().flatten().map(|x| x * x).sum::<f64>().sqrt();
        let f = (0.5 / (total + 1e-6)).min(1.0);
        let mut g: P = gs.iter().map(|v| v.iter().map(|x| x * f).collect()).collect();
        let fc1: Vec<usize> = (0..n.len()).filter(|&i| n[i].starts_with("fc1.")).collect();
        let gn = fc1.iter().flat_map(|&i| &g[i]).map(|x| x * x).sum::<f64>().sqrt();
        let k = (0.05 / (gn + 1e-6)).min(1.0);
        for &i in &fc1 {
            g[i].iter_mut().for_each(|x| *x *= k);
        }
        g[4].iter_mut().for_each(|x| *x = x.clamp(-0.01, 0.01)); // fc2.bias
        each(ps, &g, |_, _, p, g| *p -= 0.2 * g);
    });
}

#[test]
fn group_mistakes_point_at_their_place() {
    let e = |items: &str| first_error(TWO, items);
    assert_eq!(
        e(r#"optimizer sgd(lr = 0.1) { group "*.bias" (weight_decya = 0) }"#),
        ("sgd has no parameter `weight_decya`".into(), "weight_decya".into())
    );
    assert_eq!(
        e(r#"optimizer sgd(lr = 0.1) { group "*.bais" (weight_decay = 0) }"#),
        ("no parameter matches \"*.bais\"".into(), "\"*.bais\"".into())
    );
    assert_eq!(
        e(r#"optimizer sgd(lr = 0.1) { group "*" (lr = 0.2) group "fc1.*" (lr = 0.3) }"#),
        ("this group gets no parameters".into(), "group \"fc1.*\" (lr = 0.3)".into())
    );
    assert_eq!(
        e(r#"optimizer adam { group "gain" (betas = (0.9, 1.0)) }"#),
        ("betas must be in [0, 1), found 1.0".into(), "1.0".into())
    );
    assert_eq!(
        e(
            r#"optimizer sgd(lr = 0.1, momentum = 0.9) { group "gain" (nesterov = true, dampening = 0.1) }"#
        ),
        ("nesterov needs momentum > 0 and dampening = 0".into(), "true".into())
    );
    assert_eq!(
        e(r#"optimizer sgd(lr = 0.1) { group "gain" (clip = norm(1)) }"#),
        ("unknown clipping rule `norm`".into(), "norm".into())
    );
    assert_eq!(
        e(r#"optimizer sgd(lr = 0.1) { gruop "gain" (lr = 1) }"#),
        ("expected `group`, found `gruop`".into(), "gruop".into())
    );
    assert_eq!(
        e("optimizer padam(partial = 0.7)"),
        ("partial must be in (0, 0.5], found 0.7".into(), "0.7".into())
    );
}

// ---- Projection (`clamp`) --------------------------------------------------------------

#[test]
fn sgd_with_clamp_projects_onto_the_box() {
    let (lr, lo, hi) = (0.5, -0.3, 0.25);
    let mut clamped = 0;
    check(TINY, "optimizer sgd(lr = 0.5, clamp = (-0.3, 0.25))", STEPS, &mut |ps, gs, _| {
        each(ps, gs, |_, _, p, g| {
            let free = *p - lr * g;
            clamped += usize::from(free < lo || free > hi);
            *p = free.clamp(lo, hi);
        });
    });
    assert!(clamped > 10, "the box must bind: {clamped} projections");
}

#[test]
fn clamp_per_group_overrides_the_optimizers_and_keeps_the_state() {
    // Adam's moments are those of the unprojected method; the bias of fc2 has its own box.
    let items =
        r#"optimizer adam(lr = 0.05, clamp = (-0.4, 0.4)) { group "fc2.bias" (clamp = (0, 0.1)) }"#;
    let n = names(TWO, items);
    let h = H { lr: 0.05, b1: 0.9, b2: 0.999, eps: 1e-8, wd: 0.0 };
    let mut adam = adam_ref(move |_| h, false, false, None, Default::default());
    check(TWO, items, STEPS, &mut |ps, gs, t| {
        adam(ps, gs, t);
        for (i, p) in ps.iter_mut().enumerate() {
            let (lo, hi) = if n[i] == "fc2.bias" { (0.0, 0.1) } else { (-0.4, 0.4) };
            p.iter_mut().for_each(|x| *x = x.clamp(lo, hi));
        }
    });
}

#[test]
fn clamp_mistakes_point_at_their_place() {
    let e = |items: &str| first_error(TWO, items);
    assert_eq!(
        e("optimizer sgd(lr = 0.1, clamp = (1, -1))"),
        ("clamp needs lo < hi, found (1, -1)".into(), "(1, -1)".into())
    );
    assert_eq!(
        e("optimizer adam(clamp = 2)"),
        ("clamp must be a pair of numbers, found 2".into(), "2".into())
    );
    assert_eq!(
        e(r#"optimizer adam { group "gain" (clamp = (0, 1), clamp = (0, 2)) }"#),
        ("`clamp` given twice".into(), "clamp = (0, 2)".into())
    );
    assert_eq!(
        e(r#"optimizer adam { group "gain" (clamp = (0, 0)) }"#),
        ("clamp needs lo < hi, found (0, 0)".into(), "(0, 0)".into())
    );
}
