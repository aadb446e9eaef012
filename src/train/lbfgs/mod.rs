//! L-BFGS as torch.optim.LBFGS computes it, on the host in f64, full batch.
//!
//! Unlike the other optimizers (graph code fused into the compiled step, `crate::update`),
//! L-BFGS needs the loss and the gradient at points it chooses, several times per step. Its
//! compiled step graph is therefore the gradient graph with no update (outputs: the loss,
//! the metrics, any probes, `grad.<param>`), and [`Lbfgs`] drives it through an oracle
//! `FnMut(&[f64]) -> (f64, Vec<f64>)` on the flat parameter vector (the parameters in graph
//! order, each row-major). [`Driver`] builds that oracle over a [`crate::runtime::Backend`]: set the
//! parameters, run the step graph on the whole training split, read the loss and gradients.
//!
//! One [`Lbfgs::step`] is one `optimizer.step(closure)` of PyTorch, with the same state
//! carried between steps (`d`, `t`, the curvature pairs, `H_diag`, `prev_flat_grad`,
//! `prev_loss`, the global iteration count) and the same tests, in this order:
//!
//! | when | rule |
//! |------|------|
//! | start | evaluate `f, g` at `x`; return at once if `max\|g\| ≤ tolerance_grad` |
//! | global iteration 1 | `d = −g`, history empty, `H_diag = 1`, `t = min(1, 1/Σ\|g\|)·lr` |
//! | later iterations | `y = g − g_prev`, `s = t·d`; if `y·s > 1e-10` push `(y, s, 1/y·s)` (dropping the oldest beyond `history_size`) and `H_diag = y·s/y·y`; `d = −H·g` by the two-loop recursion; `t = lr` |
//! | before moving | stop if `g·d > −tolerance_change` |
//! | strong_wolfe | `t, f, g` from [`strong_wolfe`] with at most `max_eval − evaluations` trials after its first (its own bracket tolerance stays 1e-9, as torch passes only the budget); `x += t·d` |
//! | none | `x += t·d`; re-evaluate `f, g` unless this is the step's last iteration |
//! | after moving | stop at `max_iter` iterations, `max_eval` evaluations, `max\|g\| ≤ tolerance_grad`, `max\|t·d\| ≤ tolerance_change` or `\|f − f_prev\| < tolerance_change` |
//!
//! The two-loop recursion (Nocedal & Wright, Algorithm 7.4) with `ρᵢ = 1/yᵢ·sᵢ`:
//! `q = −g`; for i newest to oldest `αᵢ = ρᵢ·sᵢ·q`, `q −= αᵢ·yᵢ`; `r = H_diag·q`; for i
//! oldest to newest `βᵢ = ρᵢ·yᵢ·r`, `r += (αᵢ − βᵢ)·sᵢ`; `d = r`.
//!
//! The learning rate is passed to every step, so a schedule sets it per step exactly as a
//! PyTorch scheduler stepped once per `optimizer.step(closure)` sets `param_groups[0]["lr"]`.
//! Our default `history_size` is 10 (docs/methods.md#lbfgs); PyTorch's is 100.

mod driver;
mod search;

pub use driver::{Driver, Layout};
pub use search::{cubic_interpolate, strong_wolfe, Search, Wolfe};

use std::collections::VecDeque;

use crate::check::{Hyper, LineSearch};
use crate::tensor::Tensor;
use search::{dot, max_abs, py_min};

/// The settings of L-BFGS other than `lr` (given to each step).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    pub max_iter: usize,
    pub max_eval: usize,
    pub tolerance_grad: f64,
    pub tolerance_change: f64,
    pub history_size: usize,
    pub line_search: LineSearch,
}

impl Config {
    /// The checked hyper-parameters of `optimizer lbfgs(...)`.
    pub fn of(h: &Hyper) -> Config {
        Config {
            max_iter: h.max_iter as usize,
            max_eval: h.max_eval as usize,
            tolerance_grad: h.tolerance_grad,
            tolerance_change: h.tolerance_change,
            history_size: h.history_size as usize,
            line_search: h.line_search,
        }
    }
}

impl Default for Config {
    /// `lbfgs()`'s defaults: torch's, but a history of 10 (torch: 100).
    fn default() -> Config {
        Config {
            max_iter: 20,
            max_eval: 25,
            tolerance_grad: 1e-7,
            tolerance_change: 1e-9,
            history_size: 10,
            line_search: LineSearch::StrongWolfe,
        }
    }
}

/// What one step did: the loss at its start (what PyTorch's `step` returns), its
/// iterations and its function evaluations.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepInfo {
    pub loss: f64,
    pub iterations: usize,
    pub evaluations: usize,
}

/// The curvature pairs `(yᵢ, sᵢ, ρᵢ = 1/yᵢ·sᵢ)`, oldest first.
#[derive(Clone, Debug, Default)]
struct History {
    y: VecDeque<Vec<f64>>,
    s: VecDeque<Vec<f64>>,
    rho: VecDeque<f64>,
}

/// L-BFGS with its state between steps (PyTorch's `optimizer.state`).
#[derive(Clone, Debug)]
pub struct Lbfgs {
    config: Config,
    /// Iterations over all steps (PyTorch's `state["n_iter"]`).
    n_iter: usize,
    /// Function evaluations over all steps.
    func_evals: usize,
    d: Vec<f64>,
    t: f64,
    history: History,
    h_diag: f64,
    prev_grad: Vec<f64>,
    prev_loss: f64,
}

impl Lbfgs {
    pub fn new(config: Config) -> Lbfgs {
        Lbfgs {
            config,
            n_iter: 0,
            func_evals: 0,
            d: Vec::new(),
            t: 0.0,
            history: History::default(),
            h_diag: 1.0,
            prev_grad: Vec::new(),
            prev_loss: 0.0,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Iterations over all steps so far.
    pub fn iterations(&self) -> usize {
        self.n_iter
    }

    /// Function evaluations over all steps so far.
    pub fn evaluations(&self) -> usize {
        self.func_evals
    }

    /// One step from `x` (updated in place) at learning rate `lr`; `f(x)` is the loss and
    /// its gradient (same length as `x`).
    pub fn step(
        &mut self,
        x: &mut [f64],
        lr: f64,
        mut f: impl FnMut(&[f64]) -> (f64, Vec<f64>),
    ) -> StepInfo {
        let c = self.config;
        let (mut loss, mut g) = f(x);
        let orig = loss;
        let mut evals = 1;
        self.func_evals += 1;
        let mut info = StepInfo { loss: orig, iterations: 0, evaluations: 1 };
        if max_abs(&g) <= c.tolerance_grad {
            return info;
        }
        while info.iterations < c.max_iter {
            info.iterations += 1;
            self.n_iter += 1;
            let t0 = self.direction(&g, lr);
            self.prev_grad.clone_from(&g);
            self.prev_loss = loss;
            self.t = t0;
            let gtd = dot(&g, &self.d);
            if gtd > -c.tolerance_change {
                break;
            }
            let mut opt_cond = false;
            let ls_evals = match c.line_search {
                LineSearch::StrongWolfe => {
                    // torch passes only the budget: c₁, c₂ and the search's own
                    // tolerance_change (1e-9) keep their defaults.
                    let w = Wolfe { max_ls: c.max_eval.saturating_sub(evals), ..Wolfe::default() };
                    let d = &self.d;
                    let phi = |t: f64| f(&moved(x, t, d));
                    let r = strong_wolfe(phi, d, (loss, &g, gtd), t0, &w);
                    (loss, g, self.t) = (r.f, r.g, r.t);
                    add(x, self.t, &self.d);
                    opt_cond = max_abs(&g) <= c.tolerance_grad;
                    r.evals
                }
                LineSearch::None => {
                    add(x, self.t, &self.d);
                    if info.iterations == c.max_iter {
                        0
                    } else {
                        (loss, g) = f(x);
                        opt_cond = max_abs(&g) <= c.tolerance_grad;
                        1
                    }
                }
            };
            evals += ls_evals;
            self.func_evals += ls_evals;
            if info.iterations == c.max_iter || evals >= c.max_eval || opt_cond {
                break;
            }
            // Lack of progress.
            if self.t.abs() * max_abs(&self.d) <= c.tolerance_change
                || (loss - self.prev_loss).abs() < c.tolerance_change
            {
                break;
            }
        }
        info.evaluations = evals;
        info
    }

    /// The state carried between steps, under the keys of PyTorch's `optimizer.state` for
    /// LBFGS: `old_dirs` holds the yᵢ and `old_stps` the sᵢ, one row per pair, oldest first;
    /// `ro` the ρᵢ; counters and scalars as 0-d tensors.
    pub fn state(&self) -> Vec<(&'static str, Tensor<f64>)> {
        let scalar = |x: f64| Tensor::new(vec![], vec![x]);
        let vector = |v: &[f64]| Tensor::new(vec![v.len()], v.to_vec());
        let rows = |v: &VecDeque<Vec<f64>>| {
            let width = v.front().map_or(0, Vec::len);
            Tensor::new(vec![v.len(), width], v.iter().flatten().copied().collect())
        };
        let h = &self.history;
        vec![
            ("n_iter", scalar(self.n_iter as f64)),
            ("func_evals", scalar(self.func_evals as f64)),
            ("d", vector(&self.d)),
            ("t", scalar(self.t)),
            ("old_dirs", rows(&h.y)),
            ("old_stps", rows(&h.s)),
            ("ro", vector(&h.rho.iter().copied().collect::<Vec<_>>())),
            ("H_diag", scalar(self.h_diag)),
            ("prev_flat_grad", vector(&self.prev_grad)),
            ("prev_loss", scalar(self.prev_loss)),
        ]
    }

    /// Restores what [`Lbfgs::state`] gave, each key through `get`; says what is missing or
    /// inconsistent.
    pub fn restore(
        &mut self,
        get: impl Fn(&str) -> Option<Tensor<f64>>,
    ) -> std::result::Result<(), String> {
        let take = |k: &str| get(k).ok_or_else(|| format!("no `{k}`"));
        let scalar = |k: &str| match take(k)? {
            t if t.shape.is_empty() && t.data.len() == 1 => Ok(t.data[0]),
            t => Err(format!("`{k}` has shape {:?}, not a scalar", t.shape)),
        };
        let count = |k: &str| {
            let v = scalar(k)?;
            (v >= 0.0 && v.fract() == 0.0).then_some(v as usize).ok_or(format!("`{k}` is {v}"))
        };
        let (y, s, rho) = (take("old_dirs")?, take("old_stps")?, take("ro")?.data);
        let k = rho.len();
        if y.shape != s.shape || y.shape.len() != 2 || y.shape[0] != k {
            return Err(format!("curvature pairs of shapes {:?}, {:?}, {k}", y.shape, s.shape));
        }
        if k > self.config.history_size {
            let m = format!("{k} curvature pairs, more than history_size");
            return Err(m);
        }
        let rows = |t: &Tensor<f64>| -> VecDeque<Vec<f64>> {
            t.data.chunks(t.shape[1].max(1)).take(k).map(<[f64]>::to_vec).collect()
        };
        self.history = History { y: rows(&y), s: rows(&s), rho: rho.into() };
        self.n_iter = count("n_iter")?;
        self.func_evals = count("func_evals")?;
        self.d = take("d")?.data;
        self.t = scalar("t")?;
        self.h_diag = scalar("H_diag")?;
        self.prev_grad = take("prev_flat_grad")?.data;
        self.prev_loss = scalar("prev_loss")?;
        Ok(())
    }

    /// Sets `self.d` for the gradient `g` (updating the curvature pairs first after the first
    /// iteration); returns the initial step.
    fn direction(&mut self, g: &[f64], lr: f64) -> f64 {
        if self.n_iter == 1 {
            self.d = g.iter().map(|v| -v).collect();
            self.history = History::default();
            self.h_diag = 1.0;
            let l1: f64 = g.iter().map(|v| v.abs()).sum();
            return py_min(1.0, 1.0 / l1) * lr;
        }
        self.remember(g);
        self.d = self.two_loop(g);
        lr
    }

    /// Pushes the pair of the last move, `y = g − g_prev`, `s = t·d`, if `y·s > 1e-10`.
    fn remember(&mut self, g: &[f64]) {
        let y: Vec<f64> = g.iter().zip(&self.prev_grad).map(|(a, b)| a - b).collect();
        let s: Vec<f64> = self.d.iter().map(|v| v * self.t).collect();
        let ys = dot(&y, &s);
        if ys > 1e-10 {
            let h = &mut self.history;
            if h.y.len() == self.config.history_size {
                h.y.pop_front();
                h.s.pop_front();
                h.rho.pop_front();
            }
            self.h_diag = ys / dot(&y, &y);
            h.y.push_back(y);
            h.s.push_back(s);
            h.rho.push_back(1.0 / ys);
        }
    }

    /// `−H·g` by the two-loop recursion over the stored pairs.
    fn two_loop(&self, g: &[f64]) -> Vec<f64> {
        let h = &self.history;
        let k = h.y.len();
        let mut q: Vec<f64> = g.iter().map(|v| -v).collect();
        let mut al = vec![0.0; k];
        for i in (0..k).rev() {
            al[i] = dot(&h.s[i], &q) * h.rho[i];
            add(&mut q, -al[i], &h.y[i]);
        }
        let mut r: Vec<f64> = q.iter().map(|v| v * self.h_diag).collect();
        for (i, a) in al.iter().enumerate() {
            let be = dot(&h.y[i], &r) * h.rho[i];
            add(&mut r, a - be, &h.s[i]);
        }
        r
    }
}

/// `x += a·v`.
fn add(x: &mut [f64], a: f64, v: &[f64]) {
    for (xi, vi) in x.iter_mut().zip(v) {
        *xi += a * vi;
    }
}

/// `x + t·d`.
fn moved(x: &[f64], t: f64, d: &[f64]) -> Vec<f64> {
    x.iter().zip(d).map(|(xi, di)| xi + t * di).collect()
}

#[cfg(test)]
mod tests;
