//! `optimizer lbfgs`: the host-driven L-BFGS (`nnc::train::lbfgs`) against an independent
//! f64 implementation of torch.optim.LBFGS written here, on logistic regression whose loss
//! and gradient this file computes itself; convergence on convex quadratics; the strong
//! Wolfe conditions at every accepted step on Rosenbrock's function; the command line on
//! both backends; the checker's rules.

mod harness;

use harness::{compiled, first_error};
use nnc::check::LineSearch;
use nnc::graph::eval::{eval, Env};
use nnc::tensor::Tensor;
use nnc::train::lbfgs::{strong_wolfe, Config, Layout, Lbfgs, Wolfe};

// ---- an independent L-BFGS ------------------------------------------------------------

/// torch.optim.LBFGS (`step`, `_strong_wolfe`, `_cubic_interpolate` of torch/optim/lbfgs.py)
/// transcribed plainly: the state dict as fields, the bracket as arrays.
struct Reference {
    max_iter: usize,
    max_eval: usize,
    tol_grad: f64,
    tol_change: f64,
    history: usize,
    wolfe: bool,
    n_iter: usize,
    d: Vec<f64>,
    t: f64,
    dirs: Vec<Vec<f64>>,
    stps: Vec<Vec<f64>>,
    ro: Vec<f64>,
    h_diag: f64,
    prev_g: Vec<f64>,
    prev_loss: f64,
}

type Oracle<'a> = &'a mut dyn FnMut(&[f64]) -> (f64, Vec<f64>);

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
fn amax(a: &[f64]) -> f64 {
    a.iter().map(|v| v.abs()).fold(0.0, f64::max)
}
fn axpy(y: &[f64], a: f64, x: &[f64]) -> Vec<f64> {
    y.iter().zip(x).map(|(yi, xi)| yi + a * xi).collect()
}

fn cubic(x1: f64, f1: f64, g1: f64, x2: f64, f2: f64, g2: f64, b: Option<(f64, f64)>) -> f64 {
    let (lo, hi) = b.unwrap_or((x1.min(x2), x1.max(x2)));
    let d1 = g1 + g2 - 3.0 * (f1 - f2) / (x1 - x2);
    let sq = d1 * d1 - g1 * g2;
    if sq < 0.0 {
        return (lo + hi) / 2.0;
    }
    let d2 = sq.sqrt();
    let m = if x1 <= x2 {
        x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2.0 * d2))
    } else {
        x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2.0 * d2))
    };
    m.max(lo).min(hi)
}

/// `_strong_wolfe` with `c1 = 1e-4`, `tolerance_change = 1e-9` (torch's) and curvature
/// constant `c2` (torch's is 0.9): returns (f, g, t, evaluations).
#[allow(clippy::too_many_arguments)]
fn wolfe_search(
    obj: Oracle,
    x: &[f64],
    mut t: f64,
    d: &[f64],
    (f, g, gtd): (f64, &[f64], f64),
    c2: f64,
    max_ls: usize,
) -> (f64, Vec<f64>, f64, usize) {
    let (c1, tol) = (1e-4, 1e-9);
    let d_norm = amax(d);
    let (mut f_new, mut g_new) = obj(&axpy(x, t, d));
    let mut evals = 1;
    let mut gtd_new = dot(&g_new, d);
    let (mut t_prev, mut f_prev, mut g_prev, mut gtd_prev) = (0.0, f, g.to_vec(), gtd);
    let mut done = false;
    let mut it = 0;
    let mut single = false;
    while it < max_ls {
        if f_new > f + c1 * t * gtd || (it > 1 && f_new >= f_prev) {
            break;
        }
        if gtd_new.abs() <= -c2 * gtd {
            single = true;
            done = true;
            break;
        }
        if gtd_new >= 0.0 {
            break;
        }
        let next = cubic(
            t_prev,
            f_prev,
            gtd_prev,
            t,
            f_new,
            gtd_new,
            Some((t + 0.01 * (t - t_prev), t * 10.0)),
        );
        (t_prev, f_prev, g_prev, gtd_prev) = (t, f_new, g_new.clone(), gtd_new);
        t = next;
        (f_new, g_new) = obj(&axpy(x, t, d));
        evals += 1;
        gtd_new = dot(&g_new, d);
        it += 1;
    }
    if single {
        return (f_new, g_new, t, evals);
    }
    // Out of budget: [0, t] (its φ' values are not used then).
    let (mut bt, mut bf, mut bg, mut bgtd) = if it == max_ls {
        ([0.0, t], [f, f_new], [g.to_vec(), g_new], [gtd, gtd_new])
    } else {
        ([t_prev, t], [f_prev, f_new], [g_prev, g_new], [gtd_prev, gtd_new])
    };
    let mut insuf = false;
    let (mut lo, mut hi) = if bf[0] <= bf[1] { (0, 1) } else { (1, 0) };
    while !done && it < max_ls {
        if (bt[1] - bt[0]).abs() * d_norm < tol {
            break;
        }
        let mut t = cubic(bt[0], bf[0], bgtd[0], bt[1], bf[1], bgtd[1], None);
        let (bmax, bmin) = (bt[0].max(bt[1]), bt[0].min(bt[1]));
        let eps = 0.1 * (bmax - bmin);
        if (bmax - t).min(t - bmin) < eps {
            if insuf || t >= bmax || t <= bmin {
                t = if (t - bmax).abs() < (t - bmin).abs() { bmax - eps } else { bmin + eps };
                insuf = false;
            } else {
                insuf = true;
            }
        } else {
            insuf = false;
        }
        let (fn_, gn) = obj(&axpy(x, t, d));
        evals += 1;
        it += 1;
        let gtdn = dot(&gn, d);
        if fn_ > f + c1 * t * gtd || fn_ >= bf[lo] {
            (bt[hi], bf[hi], bg[hi], bgtd[hi]) = (t, fn_, gn, gtdn);
            (lo, hi) = if bf[0] <= bf[1] { (0, 1) } else { (1, 0) };
        } else {
            if gtdn.abs() <= -c2 * gtd {
                done = true;
            } else if gtdn * (bt[hi] - bt[lo]) >= 0.0 {
                (bt[hi], bf[hi], bg[hi], bgtd[hi]) = (bt[lo], bf[lo], bg[lo].clone(), bgtd[lo]);
            }
            (bt[lo], bf[lo], bg[lo], bgtd[lo]) = (t, fn_, gn, gtdn);
        }
    }
    (bf[lo], bg[lo].clone(), bt[lo], evals)
}

impl Reference {
    fn new(c: &Config) -> Reference {
        Reference {
            max_iter: c.max_iter,
            max_eval: c.max_eval,
            tol_grad: c.tolerance_grad,
            tol_change: c.tolerance_change,
            history: c.history_size,
            wolfe: c.line_search == LineSearch::StrongWolfe,
            n_iter: 0,
            d: Vec::new(),
            t: 0.0,
            dirs: Vec::new(),
            stps: Vec::new(),
            ro: Vec::new(),
            h_diag: 1.0,
            prev_g: Vec::new(),
            prev_loss: 0.0,
        }
    }

    /// `LBFGS.step(closure)`; returns the loss at the start.
    fn step(&mut self, x: &mut Vec<f64>, lr: f64, obj: Oracle) -> f64 {
        let (mut loss, mut g) = obj(x);
        let orig = loss;
        let mut evals = 1;
        if amax(&g) <= self.tol_grad {
            return orig;
        }
        let mut n = 0;
        while n < self.max_iter {
            n += 1;
            self.n_iter += 1;
            if self.n_iter == 1 {
                self.d = g.iter().map(|v| -v).collect();
                (self.dirs, self.stps, self.ro, self.h_diag) = (vec![], vec![], vec![], 1.0);
            } else {
                let y: Vec<f64> = g.iter().zip(&self.prev_g).map(|(a, b)| a - b).collect();
                let s: Vec<f64> = self.d.iter().map(|v| v * self.t).collect();
                let ys = dot(&y, &s);
                if ys > 1e-10 {
                    if self.dirs.len() == self.history {
                        self.dirs.remove(0);
                        self.stps.remove(0);
                        self.ro.remove(0);
                    }
                    self.h_diag = ys / dot(&y, &y);
                    self.dirs.push(y);
                    self.stps.push(s);
                    self.ro.push(1.0 / ys);
                }
                let k = self.dirs.len();
                let mut al = vec![0.0; k];
                let mut q: Vec<f64> = g.iter().map(|v| -v).collect();
                for i in (0..k).rev() {
                    al[i] = dot(&self.stps[i], &q) * self.ro[i];
                    q = axpy(&q, -al[i], &self.dirs[i]);
                }
                let mut r: Vec<f64> = q.iter().map(|v| v * self.h_diag).collect();
                for (i, a) in al.iter().enumerate() {
                    let be = dot(&self.dirs[i], &r) * self.ro[i];
                    r = axpy(&r, a - be, &self.stps[i]);
                }
                self.d = r;
            }
            self.prev_g = g.clone();
            self.prev_loss = loss;
            self.t = if self.n_iter == 1 {
                (1.0 / g.iter().map(|v| v.abs()).sum::<f64>()).min(1.0) * lr
            } else {
                lr
            };
            let gtd = dot(&g, &self.d);
            if gtd > -self.tol_change {
                break;
            }
            let mut ls = 0;
            let mut opt = false;
            if self.wolfe {
                let max_ls = self.max_eval - evals;
                let r = wolfe_search(obj, x, self.t, &self.d, (loss, &g, gtd), 0.9, max_ls);
                (loss, g, self.t, ls) = r;
                *x = axpy(x, self.t, &self.d);
                opt = amax(&g) <= self.tol_grad;
            } else {
                *x = axpy(x, self.t, &self.d);
                if n != self.max_iter {
                    (loss, g) = obj(x);
                    opt = amax(&g) <= self.tol_grad;
                    ls = 1;
                }
            }
            evals += ls;
            if n == self.max_iter || evals >= self.max_eval || opt {
                break;
            }
            if amax(&self.d) * self.t.abs() <= self.tol_change
                || (loss - self.prev_loss).abs() < self.tol_change
            {
                break;
            }
        }
        orig
    }
}

// ---- logistic regression, by hand and through nnc ---------------------------------------

const LOGREG: &str = r#"
model LogReg {
    input x: [B, 4]
    label y: [B, 1]
    fc = Dense(4 -> 1, init = normal(0, 0.5))
    loss = bce_with_logits(fc(x), y) + l2_penalty(fc.weight, lambda = 0.01)
}
"#;

const N: usize = 40;

/// Features on scales 1, 5, 0.3, 2 (an ill-conditioned problem) and noisy 0/1 labels.
fn logreg_data() -> (Vec<[f64; 4]>, Vec<f64>) {
    let scale = [1.0, 5.0, 0.3, 2.0];
    let x: Vec<[f64; 4]> = (0..N)
        .map(|i| std::array::from_fn(|j| scale[j] * ((i * 7 + j * 13) as f64 * 0.37).sin()))
        .collect();
    let y = (0..N)
        .map(|i| {
            let z = x[i][0] - 0.4 * x[i][1] + 2.0 * x[i][2] + 0.5 * x[i][3] + 0.2;
            // A deterministic "coin" that disagrees with the sign now and then.
            let u = ((i as f64) * 1.618).fract();
            f64::from(u < 1.0 / (1.0 + (-z).exp()))
        })
        .collect();
    (x, y)
}

/// `mean(softplus(z) − y·z) + λ/2·‖w‖²` and its gradient, `x = [w₀..w₃, b]`.
fn logreg_loss(x: &[f64], data: &(Vec<[f64; 4]>, Vec<f64>)) -> (f64, Vec<f64>) {
    let (w, b, lambda) = (&x[..4], x[4], 0.01);
    let (mut f, mut g) = (0.0, vec![0.0; 5]);
    for (xi, &yi) in data.0.iter().zip(&data.1) {
        let z = dot(w, xi) + b;
        let softplus = z.max(0.0) + (-z.abs()).exp().ln_1p();
        f += softplus - yi * z;
        let r = 1.0 / (1.0 + (-z).exp()) - yi;
        for j in 0..4 {
            g[j] += r * xi[j];
        }
        g[4] += r;
    }
    let n = N as f64;
    g.iter_mut().for_each(|v| *v /= n);
    for j in 0..4 {
        g[j] += lambda * w[j];
    }
    (f / n + lambda / 2.0 * dot(w, w), g)
}

/// nnc's side: the step graph of `items` run by the f64 interpreter as the oracle of
/// `nnc::train::lbfgs::Lbfgs`; the reference: this file's L-BFGS on this file's gradient.
/// Compares every parameter after every step.
fn check_against_reference(items: &str, steps: usize) -> Lbfgs {
    let c = compiled(LOGREG, &format!("{items}\ntrain {{ steps = {steps} }}"));
    let config = Config::of(&c.model.optimizer.hyper);
    let layout = Layout::of(&c.opt).unwrap();
    let data = logreg_data();
    let xs: Vec<f64> = data.0.iter().flatten().copied().collect();
    let inputs = [Tensor::new(vec![N, 4], xs), Tensor::new(vec![N, 1], data.1.clone())];
    let init = nnc::train::init::init_params(&c.model.params, 3);
    let mut ours = layout.flatten(&init.iter().map(|t| t.to_f64()).collect::<Vec<_>>());
    let mut theirs = ours.clone();
    let (mut nnc_lbfgs, mut reference) = (Lbfgs::new(config), Reference::new(&config));
    for t in 1..=steps {
        let lr = nnc::schedule::lr_at(&c.model, &c.model.train, t as u64);
        let info = nnc_lbfgs.step(&mut ours, lr, |p: &[f64]| {
            let params = layout.tensors(p, |v| v);
            let env = Env { inputs: &inputs, params: &params, states: &[], lr, step: t as f64 };
            let ev = eval(&c.opt, &env).unwrap();
            (ev.outputs[0].data[0], layout.gradient(&ev.outputs).unwrap())
        });
        let loss = reference.step(&mut theirs, lr, &mut |p| logreg_loss(p, &data));
        assert!((info.loss - loss).abs() <= 1e-9 * (1.0 + loss.abs()), "{items} step {t}");
        for (k, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            assert!(
                a.is_finite() && (a - b).abs() <= 1e-6 * b.abs().max(1e-3),
                "{items} step {t}, element {k}: {a} vs {b}"
            );
        }
    }
    nnc_lbfgs
}

#[test]
fn strong_wolfe_with_a_short_history_matches_the_reference() {
    // Three iterations per step and a history of 4: the pairs wrap around, and the state
    // (d, t, pairs, H_diag) carries from step to step.
    let l = check_against_reference("optimizer lbfgs(max_iter = 3, history_size = 4)", 25);
    assert!(l.iterations() >= 20, "only {} iterations: the test would be weak", l.iterations());
}

#[test]
fn tight_evaluation_budget_matches_the_reference() {
    // max_eval = 2 leaves the line search one trial (or none): its budget paths.
    let l = check_against_reference("optimizer lbfgs(max_iter = 2, max_eval = 2)", 25);
    assert!(l.iterations() >= 20);
}

#[test]
fn fixed_step_matches_the_reference() {
    check_against_reference(
        r#"optimizer lbfgs(lr = 0.3, max_iter = 4, history_size = 5, line_search = "none")"#,
        25,
    );
}

#[test]
fn defaults_and_a_schedule_match_the_reference() {
    check_against_reference("optimizer lbfgs()", 20);
    // The rate of step t is the schedule's, as a PyTorch scheduler stepped once per step.
    check_against_reference(
        "optimizer lbfgs(lr = 0.8, max_iter = 2, line_search = none)\nschedule cosine(T = 20, eta_min = 0.1)",
        22,
    );
}

#[test]
fn matches_the_reference_on_rosenbrock_where_the_line_search_zooms() {
    // Long initial steps (lr = 4) overshoot the valley: the zoom phase and its
    // safeguards; tight budgets cut the search short; a short history wraps.
    let configs = [
        (1.0, Config::default()),
        (4.0, Config { max_iter: 3, history_size: 2, ..Config::default() }),
        (4.0, Config { max_iter: 4, max_eval: 6, ..Config::default() }),
        (1.0, Config { max_iter: 2, max_eval: 2, ..Config::default() }),
        (2e-3, Config { max_iter: 5, line_search: LineSearch::None, ..Config::default() }),
    ];
    for (k, (lr, config)) in configs.into_iter().enumerate() {
        let mut l = Lbfgs::new(config);
        let mut reference = Reference::new(&config);
        let mut ours: Vec<f64> = vec![-1.2, 1.0, -0.5, 0.8];
        let mut theirs = ours.clone();
        for t in 1..=25 {
            let info = l.step(&mut ours, lr, rosenbrock);
            let loss = reference.step(&mut theirs, lr, &mut rosenbrock);
            assert!((info.loss - loss).abs() <= 1e-9 * (1.0 + loss.abs()), "config {k} step {t}");
            for (a, b) in ours.iter().zip(&theirs) {
                assert!(
                    (a - b).abs() <= 1e-6 * b.abs().max(1e-3),
                    "config {k} step {t}: {a} vs {b}"
                );
            }
        }
    }
}

// ---- convergence -------------------------------------------------------------------------

/// `½xᵀAx − bᵀx` with `A = QΛQᵀ`, eigenvalues from 1 to `kappa`, Q a product of Givens
/// rotations; returns the oracle's pieces and the minimiser `A⁻¹b`.
fn quadratic(n: usize, kappa: f64) -> (Vec<Vec<f64>>, Vec<f64>, Vec<f64>) {
    let lambda: Vec<f64> = (0..n).map(|i| kappa.powf(i as f64 / (n - 1) as f64)).collect();
    let mut q: Vec<Vec<f64>> =
        (0..n).map(|i| (0..n).map(|j| f64::from(u8::from(i == j))).collect()).collect();
    for (k, (i, j)) in (0..n).flat_map(|i| (i + 1..n).map(move |j| (i, j))).enumerate() {
        let th = 0.3 + 0.7 * k as f64;
        let (c, s) = (th.cos(), th.sin());
        for row in q.iter_mut() {
            let (a, b) = (row[i], row[j]);
            (row[i], row[j]) = (c * a - s * b, s * a + c * b);
        }
    }
    let a: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..n).map(|j| (0..n).map(|k| q[i][k] * lambda[k] * q[j][k]).sum()).collect())
        .collect();
    // Choose the minimiser, then b = A·x*.
    let xstar: Vec<f64> = (0..n).map(|i| (i as f64 * 0.9).cos() * 2.0).collect();
    let b = a.iter().map(|row| dot(row, &xstar)).collect();
    (a, b, xstar)
}

#[test]
fn converges_on_a_convex_quadratic_in_the_iterations_torch_takes() {
    let n = 8;
    let (a, b, xstar) = quadratic(n, 100.0);
    let mut f = |x: &[f64]| {
        let ax: Vec<f64> = a.iter().map(|row| dot(row, x)).collect();
        let g: Vec<f64> = ax.iter().zip(&b).map(|(p, q)| p - q).collect();
        (0.5 * dot(x, &ax) - dot(&b, x), g)
    };
    // One iteration per step (max_eval as the default's), to count them.
    let config = Config { max_iter: 1, tolerance_change: 1e-14, ..Config::default() };
    let mut l = Lbfgs::new(config);
    let mut x = vec![0.0; n];
    let dist = |x: &[f64]| x.iter().zip(&xstar).map(|(p, q)| (p - q).abs()).fold(0.0, f64::max);
    while dist(&x) >= 1e-6 && l.iterations() < 200 {
        l.step(&mut x, 1.0, &mut f);
    }
    let err = dist(&x);
    assert!(err < 1e-6, "error {err} after {} iterations", l.iterations());
    // The inexact (c₂ = 0.9) Wolfe steps make it slower than conjugate gradients' n = 8 with
    // exact searches: torch.optim.LBFGS (2.x, float64, same settings and matrix) also takes
    // 44 iterations and 90 evaluations to get within 1e-6.
    assert_eq!((l.iterations(), l.evaluations()), (44, 90));
    // Plain steepest descent with the same line search is far from done after as many.
    let mut sd = vec![0.0; n];
    for _ in 0..l.iterations() {
        let (f0, g) = f(&sd);
        let d: Vec<f64> = g.iter().map(|v| -v).collect();
        let r = strong_wolfe(
            |t| f(&axpy(&sd, t, &d)),
            &d,
            (f0, &g, dot(&g, &d)),
            1.0,
            &Wolfe::default(),
        );
        sd = axpy(&sd, r.t, &d);
    }
    let sd_err = sd.iter().zip(&xstar).map(|(p, q)| (p - q).abs()).fold(0.0, f64::max);
    assert!(sd_err > 1e3 * err, "steepest descent error {sd_err}");
}

#[test]
fn least_squares_through_the_compiled_graph_reaches_the_normal_equations_solution() {
    // The step graph of a linear regression, run in f64: L-BFGS lands on the solution of
    // XᵀX·w = Xᵀy (solved here by Gaussian elimination) to 1e-6.
    let model = r#"
model Lsq {
    input x: [B, 3]
    label y: [B, 1]
    fit = Dense(3 -> 1, init = zeros, bias_init = zeros)
    loss = mse(fit(x), y)
}
"#;
    let c = compiled(model, "optimizer lbfgs()\ntrain { steps = 5 }");
    let layout = Layout::of(&c.opt).unwrap();
    let rows: Vec<[f64; 4]> = (0..30)
        .map(|i| {
            let f = |k: f64| ((i as f64 + 1.0) * k).sin();
            let x = [3.0 + f(0.7), 10.0 * f(1.3), 0.5 * f(2.9)];
            [x[0], x[1], x[2], 0.4 * x[0] - 0.05 * x[1] + 2.0 * x[2] + 1.0 + 0.1 * f(5.1)]
        })
        .collect();
    let xs: Vec<f64> = rows.iter().flat_map(|r| r[..3].to_vec()).collect();
    let ys: Vec<f64> = rows.iter().map(|r| r[3]).collect();
    let inputs = [Tensor::new(vec![30, 3], xs), Tensor::new(vec![30, 1], ys)];
    let mut l = Lbfgs::new(Config { tolerance_change: 1e-14, ..Config::default() });
    let mut x = vec![0.0; 4];
    for _ in 0..5 {
        l.step(&mut x, 1.0, |p: &[f64]| {
            let params = layout.tensors(p, |v| v);
            let env = Env { inputs: &inputs, params: &params, states: &[], lr: 1.0, step: 1.0 };
            let ev = eval(&c.opt, &env).unwrap();
            (ev.outputs[0].data[0], layout.gradient(&ev.outputs).unwrap())
        });
    }
    // Normal equations over [x, 1].
    let mut m = [[0.0; 5]; 4];
    for r in &rows {
        let v = [r[0], r[1], r[2], 1.0];
        for i in 0..4 {
            for j in 0..4 {
                m[i][j] += v[i] * v[j];
            }
            m[i][4] += v[i] * r[3];
        }
    }
    for k in 0..4 {
        let pivot = m[k];
        for row in m.iter_mut().skip(k + 1) {
            let f = row[k] / pivot[k];
            for (v, p) in row.iter_mut().zip(pivot).skip(k) {
                *v -= f * p;
            }
        }
    }
    let mut w = [0.0; 4];
    for i in (0..4).rev() {
        w[i] = (m[i][4] - (i + 1..4).map(|j| m[i][j] * w[j]).sum::<f64>()) / m[i][i];
    }
    for i in 0..4 {
        assert!((x[i] - w[i]).abs() < 1e-6 * (1.0 + w[i].abs()), "{i}: {} vs {}", x[i], w[i]);
    }
    assert!(l.iterations() <= 30, "{} iterations", l.iterations());
}

// ---- the strong Wolfe conditions -----------------------------------------------------------

/// Rosenbrock's function in `n` dimensions, `Σ 100(x_{i+1} − xᵢ²)² + (1 − xᵢ)²`.
fn rosenbrock(x: &[f64]) -> (f64, Vec<f64>) {
    let n = x.len();
    let mut f = 0.0;
    let mut g = vec![0.0; n];
    for i in 0..n - 1 {
        let (a, b) = (x[i + 1] - x[i] * x[i], 1.0 - x[i]);
        f += 100.0 * a * a + b * b;
        g[i] += -400.0 * x[i] * a - 2.0 * b;
        g[i + 1] += 200.0 * a;
    }
    (f, g)
}

/// `c₁ = 1e-4`, `c₂ = 0.9` at the move `s = x_new − x_old = t·d` (t > 0): Armijo
/// `f_new ≤ f_old + c₁·g_old·s` and curvature `|g_new·s| ≤ c₂·|g_old·s|`.
fn assert_strong_wolfe(old: &(f64, Vec<f64>), new: &(f64, Vec<f64>), s: &[f64], at: &str) {
    let gs = dot(&old.1, s);
    assert!(gs < 0.0, "{at}: not a descent step");
    assert!(new.0 <= old.0 + 1e-4 * gs, "{at}: Armijo fails: {} > {}", new.0, old.0 + 1e-4 * gs);
    assert!(dot(&new.1, s).abs() <= 0.9 * gs.abs(), "{at}: curvature fails");
}

#[test]
fn every_lbfgs_step_on_rosenbrock_meets_the_strong_wolfe_conditions() {
    // One iteration per step, so each step is one accepted line-search point: every step
    // that moves must meet both conditions, all the way to the minimiser (1, ..., 1).
    for n in [2, 5] {
        let config = Config { max_iter: 1, max_eval: 26, ..Config::default() };
        let mut l = Lbfgs::new(config);
        let mut x: Vec<f64> = (0..n).map(|i| if i % 2 == 0 { -1.2 } else { 1.0 }).collect();
        let mut steps = 0;
        while amax(&rosenbrock(&x).1) > 1e-5 {
            let old = rosenbrock(&x);
            let before = x.clone();
            l.step(&mut x, 1.0, rosenbrock);
            let s: Vec<f64> = x.iter().zip(&before).map(|(a, b)| a - b).collect();
            if s.iter().all(|v| *v == 0.0) {
                // L-BFGS stopped before moving: g·d > −tolerance_change (f ≈ 1e-10 here).
                break;
            }
            assert_strong_wolfe(&old, &rosenbrock(&x), &s, &format!("n = {n}, step {steps}"));
            steps += 1;
            assert!(steps < 200, "n = {n}: no convergence");
        }
        assert!(x.iter().all(|v| (v - 1.0).abs() < 1e-4), "n = {n}: {x:?}");
    }
}

#[test]
fn line_search_alone_meets_the_conditions_from_many_starts() {
    // Steepest descent on 2-d Rosenbrock from a grid of points, initial steps from tiny
    // (extrapolation) to huge (zoom).
    for i in 0..6 {
        for j in 0..6 {
            let x = [-2.0 + 0.8 * i as f64, -1.0 + 0.7 * j as f64];
            let old = rosenbrock(&x);
            let d: Vec<f64> = old.1.iter().map(|v| -v).collect();
            for t0 in [1e-6, 1e-3, 1.0] {
                let w = Wolfe::default();
                let r = strong_wolfe(
                    |t| rosenbrock(&axpy(&x, t, &d)),
                    &d,
                    (old.0, &old.1, dot(&old.1, &d)),
                    t0,
                    &w,
                );
                assert!(r.wolfe, "from {x:?}, t0 = {t0}: {r:?}");
                let s: Vec<f64> = d.iter().map(|v| r.t * v).collect();
                assert_strong_wolfe(
                    &old,
                    &rosenbrock(&axpy(&x, r.t, &d)),
                    &s,
                    &format!("{x:?} {t0}"),
                );
            }
        }
    }
}

/// Moré & Thuente's (1994) line-search test functions φ(α) (0 to 5) and wavy parabolas (6
/// to 8), as `f` of a 1-d `x` (search from 0 along d = 1): value and derivative. Each has
/// φ'(0) < 0.
fn more_thuente(k: usize, x: &[f64]) -> (f64, Vec<f64>) {
    let a = x[0];
    let (f, g) = match k {
        // −α/(α² + 2): minimiser √2.
        0 => (-a / (a * a + 2.0), (a * a - 2.0) / (a * a + 2.0).powi(2)),
        // (α + 0.004)⁵ − 2(α + 0.004)⁴: minimiser 1.596.
        1 => {
            let b = a + 0.004;
            (b.powi(5) - 2.0 * b.powi(4), 5.0 * b.powi(4) - 8.0 * b.powi(3))
        }
        // A kink smoothed over 1 ± 0.01, with sin wiggles of 39 periods: many local minima.
        2 => {
            let (beta, l) = (0.01, 39.0);
            let pi = std::f64::consts::PI;
            let (p0, d0) = if a <= 1.0 - beta {
                (1.0 - a, -1.0)
            } else if a >= 1.0 + beta {
                (a - 1.0, 1.0)
            } else {
                ((a - 1.0).powi(2) / (2.0 * beta) + beta / 2.0, (a - 1.0) / beta)
            };
            let c = 2.0 * (1.0 - beta) / (l * pi);
            (p0 + c * (l * pi * a / 2.0).sin(), d0 + c * l * pi / 2.0 * (l * pi * a / 2.0).cos())
        }
        // Yanai, Ozawa and Kaneko's functions (β₁, β₂).
        3..=5 => {
            let (b1, b2) = [(0.001, 0.001), (0.01, 0.001), (0.001, 0.01)][k - 3];
            let gamma = |b: f64| (1.0 + b * b).sqrt() - b;
            let (u, v) = (((1.0 - a).powi(2) + b2 * b2).sqrt(), (a * a + b1 * b1).sqrt());
            (gamma(b1) * u + gamma(b2) * v, gamma(b1) * (a - 1.0) / u + gamma(b2) * a / v)
        }
        // Not monotone: a parabola (α − m)²/s under waves A·sin(ωα), with bumps where the
        // value rises while the search extrapolates (the first two from t0 = 3 and 1.9 with
        // c₂ = 0.1 reach a second trial above the first: bracketed from the third on only).
        _ => {
            let (amp, w, m, s) =
                [(0.03, 7.75, 3.5, 15.0), (0.19, 15.6, 2.26, 1.32), (0.05, 8.0, 3.0, 10.0)][k - 6];
            let (q, dq) = ((a - m).powi(2) / s, 2.0 * (a - m) / s);
            (q + amp * (w * a).sin(), dq + amp * w * (w * a).cos())
        }
    };
    (f, vec![g])
}

#[test]
fn line_search_matches_the_reference_on_more_thuente_functions() {
    // Initial steps from 1e-3 (extrapolation up to ×10 per trial) to 1e3 (zoom), a strict
    // curvature constant (c₂ = 0.1: long zooms), budgets down to none.
    let mut zoomed = 0;
    for k in 0..9 {
        let f0 = more_thuente(k, &[0.0]);
        let start = (f0.0, &f0.1[..], f0.1[0]);
        assert!(f0.1[0] < 0.0);
        for t0 in [1e-3, 0.03, 0.1, 0.3, 1.0, 1.9, 3.0, 10.0, 1e3] {
            for c2 in [0.9, 0.1] {
                for max_ls in [25, 4, 1, 0] {
                    let w = Wolfe { c2, max_ls, ..Wolfe::default() };
                    let ours = strong_wolfe(|t| more_thuente(k, &[t]), &[1.0], start, t0, &w);
                    let mut obj = |x: &[f64]| more_thuente(k, x);
                    let (f, g, t, evals) =
                        wolfe_search(&mut obj, &[0.0], t0, &[1.0], start, c2, max_ls);
                    let at = format!("function {k}, t0 {t0}, c2 {c2}, max_ls {max_ls}");
                    assert!(
                        (ours.t - t).abs() <= 1e-12 * t.abs().max(1.0),
                        "{at}: {} vs {t}",
                        ours.t
                    );
                    assert_eq!((ours.f, &ours.g, ours.evals), (f, &g, evals), "{at}");
                    zoomed += usize::from(evals > 2);
                }
            }
        }
    }
    assert!(zoomed > 50, "only {zoomed} searches took more than two trials");
}

// ---- the command line ------------------------------------------------------------------------

fn nnc(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nnc")).args(args).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

#[test]
fn example_trains_to_the_same_weights_on_both_backends() {
    let dir = std::env::temp_dir().join(format!("nnc-lbfgs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (mut weights, mut last) = (Vec::new(), Vec::new());
    for backend in ["interp", "jit"] {
        let (w, log) =
            (dir.join(format!("{backend}.safetensors")), dir.join(format!("{backend}.csv")));
        let args = ["train", "examples/lbfgs.nn", "--backend", backend, "--quiet"];
        let (code, out, err) =
            nnc(&[&args[..], &["--save", w.to_str().unwrap(), "--log", log.to_str().unwrap()]]
                .concat());
        assert_eq!(code, 0, "{backend}: {err}");
        assert!(out.contains("trained 10 steps (10 epochs)"), "{out}");
        // One log row per optimizer step; the loss falls from ln 3 to the minimum 0.28488 by
        // step 3 and stays.
        let rows: Vec<Vec<f64>> = std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
            .collect();
        assert_eq!(rows.len(), 10);
        assert!((rows[0][2] - 3f64.ln()).abs() < 1e-6, "{backend}: {:?}", rows[0]);
        assert!(rows.windows(2).all(|p| p[1][2] <= p[0][2] + 1e-6), "{backend}: {rows:?}");
        assert!(rows[2..].iter().all(|r| (r[2] - 0.28488).abs() < 1e-5), "{backend}: {rows:?}");
        last.push(rows[9][2]);
        weights.push(nnc::train::weights::load(&w).unwrap());
    }
    // The same minimum. Near it an f32 loss cannot tell apart points closer than about
    // √(2·1e-7/λ_min) ≈ 5e-3 (λ_min ≈ 0.01, the penalty's curvature), which is where the
    // two backends' roundings may leave them; they agree to about 1e-3.
    assert!((last[0] - last[1]).abs() < 2e-6 * last[1], "final losses {last:?}");
    for ((name, a), (_, b)) in weights[0].iter().zip(&weights[1]) {
        for (x, y) in a.data.iter().zip(&b.data) {
            assert!((x - y).abs() <= 5e-3 * (1.0 + y.abs()), "{name}: interp {x} vs jit {y}");
        }
    }
}

// ---- the checker -------------------------------------------------------------------------------

#[test]
fn hyper_parameters_are_checked_where_written() {
    let cases = [
        ("optimizer lbfgs(max_iter = 0)", "max_iter must be a positive integer, found 0", "0"),
        (
            "optimizer lbfgs(history_size = 2.5)",
            "history_size must be a positive integer, found 2.5",
            "2.5",
        ),
        (
            "optimizer lbfgs(tolerance_grad = -1)",
            "tolerance_grad must be non-negative, found -1",
            "-1",
        ),
        (
            r#"optimizer lbfgs(line_search = "wolfe")"#,
            r#"line_search must be "strong_wolfe" or "none", found the string "wolfe""#,
            r#""wolfe""#,
        ),
        (
            "optimizer lbfgs(weight_decay = 0.1)",
            "lbfgs has no parameter `weight_decay`",
            "weight_decay",
        ),
        (
            r#"optimizer lbfgs() { group "*.bias" (lr = 0.1) }"#,
            "lbfgs takes no parameter groups",
            r#"group "*.bias" (lr = 0.1)"#,
        ),
        ("optimizer lbfgs(clamp = (-1, 1))", "lbfgs takes no `clamp`", "clamp = (-1, 1)"),
        ("optimizer lbfgs()\nclip global_norm(1)", "lbfgs cannot clip gradients", "global_norm(1)"),
    ];
    for (items, message, at) in cases {
        let (m, text) = first_error(LOGREG, items);
        assert_eq!((m.as_str(), text.as_str()), (message, at), "{items}");
    }
}

#[test]
fn defaults_and_the_derived_evaluation_budget() {
    let h = compiled(LOGREG, "optimizer lbfgs()").model.optimizer.hyper;
    assert_eq!((h.lr, h.max_iter, h.max_eval, h.history_size), (1.0, 20, 25, 10));
    assert_eq!((h.tolerance_grad, h.tolerance_change), (1e-7, 1e-9));
    assert_eq!(h.line_search, LineSearch::StrongWolfe);
    // max_eval = max_iter * 5 / 4 in integers, as torch, unless given.
    let h = compiled(LOGREG, "optimizer lbfgs(max_iter = 7)").model.optimizer.hyper;
    assert_eq!(h.max_eval, 8);
    let h = compiled(LOGREG, "optimizer lbfgs(max_iter = 7, max_eval = 3, line_search = none)")
        .model
        .optimizer
        .hyper;
    assert_eq!((h.max_eval, h.line_search), (3, LineSearch::None));
}

#[test]
fn the_step_graph_is_the_gradient_graph_without_updates() {
    let c = compiled(LOGREG, "optimizer lbfgs()");
    assert!(c.step.updates.is_empty());
    let names: Vec<&str> = c.opt.outputs.iter().map(|o| o.name.as_str()).collect();
    assert!(names.contains(&"grad.fc.weight") && names.contains(&"grad.fc.bias"), "{names:?}");
    assert_eq!(names[0], "loss");
}
