//! The strong-Wolfe line search of torch.optim.LBFGS (`_strong_wolfe`, `_cubic_interpolate`,
//! themselves ports of Torch7's `lswolfe.lua` and `polyinterp.lua`), re-derived here in f64.
//!
//! Along a descent direction `d` from `x` (`φ(t) = f(x + t·d)`, `φ'(t) = ∇f(x + t·d)·d`,
//! `φ'(0) = gtd < 0`), a step `t` satisfies the strong Wolfe conditions when
//!
//! | condition | formula |
//! |-----------|---------|
//! | sufficient decrease (Armijo) | `φ(t) ≤ φ(0) + c₁·t·φ'(0)` |
//! | curvature (strong) | `\|φ'(t)\| ≤ −c₂·φ'(0)` |
//!
//! with `c₁ = 1e-4`, `c₂ = 0.9`. The search first brackets: from the initial guess, it
//! extrapolates (cubic interpolation bounded to `[t + 0.01(t − t_prev), 10t]`) until a trial
//! fails Armijo, stops decreasing (`φ(t) ≥ φ(t_prev)`, from the third trial on), satisfies
//! the curvature condition (done) or has `φ'(t) ≥ 0`; then it zooms into the bracket by
//! cubic interpolation, forcing trials at least a tenth of the bracket away from its ends
//! when interpolation stalls there, until a trial meets both conditions, the bracket is
//! shorter than `tolerance_change` (measured as `|Δt|·max|d|`), or `max_ls` trials are
//! spent. It returns the lowest point of the bracket; `wolfe` says whether both conditions
//! were met there.
//!
//! Python's `min`/`max` of two numbers are kept as written (`py_min`, `py_max`): they keep
//! the first argument on ties and on NaN, which `f64::min`/`f64::max` do not.

/// The constants and budget of one search (torch's defaults by `Default`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Wolfe {
    /// Sufficient-decrease constant `c₁`.
    pub c1: f64,
    /// Curvature constant `c₂` (`c₁ < c₂ < 1`).
    pub c2: f64,
    /// Stop zooming when `|bracket width|·max|d|` falls below this.
    pub tolerance_change: f64,
    /// At most this many evaluations after the first.
    pub max_ls: usize,
}

impl Default for Wolfe {
    fn default() -> Wolfe {
        Wolfe { c1: 1e-4, c2: 0.9, tolerance_change: 1e-9, max_ls: 25 }
    }
}

/// The point the search returns: step, value, gradient there, the number of evaluations it
/// made, and whether both strong Wolfe conditions hold at it.
#[derive(Clone, Debug, PartialEq)]
pub struct Search {
    pub t: f64,
    pub f: f64,
    pub g: Vec<f64>,
    pub evals: usize,
    pub wolfe: bool,
}

/// One evaluated step: `t`, `φ(t)`, `∇f(x + t·d)`, `φ'(t)`.
#[derive(Clone, Debug)]
struct Trial {
    t: f64,
    f: f64,
    g: Vec<f64>,
    gtd: f64,
}

/// Python's `max(a, b)`: `b` only if `b > a`.
pub(super) fn py_max(a: f64, b: f64) -> f64 {
    if b > a {
        b
    } else {
        a
    }
}

/// Python's `min(a, b)`: `b` only if `b < a`.
pub(super) fn py_min(a: f64, b: f64) -> f64 {
    if b < a {
        b
    } else {
        a
    }
}

pub(super) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

pub(super) fn max_abs(a: &[f64]) -> f64 {
    a.iter().fold(0.0, |m, x| py_max(m, x.abs()))
}

/// The minimiser of the cubic through `(x1, f1)` and `(x2, f2)` with slopes `g1`, `g2`,
/// clamped to `bounds` (default: between the two points); the middle of the bounds when the
/// cubic has no minimiser.
///
/// With `d₁ = g₁ + g₂ − 3(f₁ − f₂)/(x₁ − x₂)` and `d₂ = √(d₁² − g₁g₂)`, the cubic's
/// stationary point of positive curvature is, writing `x₂` for the larger point,
/// `x₂ − (x₂ − x₁)·(g₂ + d₂ − d₁)/(g₂ − g₁ + 2d₂)` (symmetrically when `x₁ > x₂`); it exists
/// iff `d₁² ≥ g₁g₂`.
pub fn cubic_interpolate(
    (x1, f1, g1): (f64, f64, f64),
    (x2, f2, g2): (f64, f64, f64),
    bounds: Option<(f64, f64)>,
) -> f64 {
    let (lo, hi) = bounds.unwrap_or(if x1 <= x2 { (x1, x2) } else { (x2, x1) });
    let d1 = g1 + g2 - 3.0 * (f1 - f2) / (x1 - x2);
    let d2_square = d1 * d1 - g1 * g2;
    if d2_square >= 0.0 {
        let d2 = d2_square.sqrt();
        let min_pos = if x1 <= x2 {
            x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2.0 * d2))
        } else {
            x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2.0 * d2))
        };
        py_min(py_max(min_pos, lo), hi)
    } else {
        (lo + hi) / 2.0
    }
}

/// The strong-Wolfe search along `d` from the point with value `f` and gradient `g`
/// (`gtd = g·d < 0`), starting at step `t`. `phi(t)` evaluates `f(x + t·d)` and its
/// gradient.
pub fn strong_wolfe(
    mut phi: impl FnMut(f64) -> (f64, Vec<f64>),
    d: &[f64],
    (f, g, gtd): (f64, &[f64], f64),
    t: f64,
    w: &Wolfe,
) -> Search {
    let d_norm = max_abs(d);
    let mut evals = 0;
    let mut eval = |t: f64| {
        evals += 1;
        let (f, g) = phi(t);
        let gtd = dot(&g, d);
        Trial { t, f, g, gtd }
    };
    let start = Trial { t: 0.0, f, g: g.to_vec(), gtd };
    // Written as torch compares, so that a NaN value behaves the same.
    let fails_armijo = |tr: &Trial| tr.f > f + w.c1 * tr.t * gtd;
    let curvature = |tr: &Trial| tr.gtd.abs() <= -w.c2 * gtd;

    // Bracketing.
    let mut new = eval(t);
    let mut prev = start.clone();
    let mut ls_iter = 0;
    let mut bracket: Option<Vec<Trial>> = None;
    let mut done = false;
    while ls_iter < w.max_ls {
        if fails_armijo(&new) || (ls_iter > 1 && new.f >= prev.f) {
            bracket = Some(vec![prev, new.clone()]);
            break;
        }
        if curvature(&new) {
            bracket = Some(vec![new.clone()]);
            done = true;
            break;
        }
        if new.gtd >= 0.0 {
            bracket = Some(vec![prev, new.clone()]);
            break;
        }
        let bounds = (new.t + 0.01 * (new.t - prev.t), new.t * 10.0);
        let next =
            cubic_interpolate((prev.t, prev.f, prev.gtd), (new.t, new.f, new.gtd), Some(bounds));
        prev = std::mem::replace(&mut new, eval(next));
        ls_iter += 1;
    }
    let mut b = match bracket {
        Some(b) if ls_iter < w.max_ls => b,
        // Out of budget: between the start and the last trial.
        _ => vec![start, new],
    };
    let order = |b: &[Trial]| if b[0].f <= b[b.len() - 1].f { (0, 1) } else { (1, 0) };
    let (mut low, mut high) = order(&b);

    // Zoom.
    let mut insufficient = false;
    while !done && ls_iter < w.max_ls {
        if (b[1].t - b[0].t).abs() * d_norm < w.tolerance_change {
            break;
        }
        let raw = cubic_interpolate((b[0].t, b[0].f, b[0].gtd), (b[1].t, b[1].f, b[1].gtd), None);
        let t;
        (t, insufficient) =
            away_from_ends(raw, py_max(b[0].t, b[1].t), py_min(b[0].t, b[1].t), insufficient);
        let new = eval(t);
        ls_iter += 1;
        if fails_armijo(&new) || new.f >= b[low].f {
            b[high] = new;
            (low, high) = order(&b);
        } else {
            if curvature(&new) {
                done = true;
            } else if new.gtd * (b[high].t - b[low].t) >= 0.0 {
                // The old high end becomes the low one.
                b[high] = b[low].clone();
            }
            b[low] = new;
        }
    }
    let best = b.swap_remove(low);
    Search { t: best.t, f: best.f, g: best.g, evals, wolfe: done }
}

/// A zoom trial `t` within a tenth of the bracket `[lo, hi]` of an end: kept the first time
/// (if inside), else moved a tenth of the bracket in from the nearer end. Returns the trial
/// and whether progress was insufficient this time.
fn away_from_ends(t: f64, hi: f64, lo: f64, insufficient: bool) -> (f64, bool) {
    let eps = 0.1 * (hi - lo);
    if py_min(hi - t, t - lo) < eps {
        if insufficient || t >= hi || t <= lo {
            let t = if (t - hi).abs() < (t - lo).abs() { hi - eps } else { lo + eps };
            return (t, false);
        }
        return (t, true);
    }
    (t, false)
}
