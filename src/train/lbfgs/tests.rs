//! The interpolation and the line search on functions whose answers are known in closed
//! form; the two-loop recursion against an explicit inverse-Hessian product.

use super::*;

#[test]
fn cubic_interpolation_finds_the_minimiser_of_a_cubic() {
    // p(t) = t³ − 3t: p' = 3t² − 3, local minimum at t = 1.
    let p = |t: f64| (t * t * t - 3.0 * t, 3.0 * t * t - 3.0);
    for (a, b) in [(0.0, 2.0), (2.0, 0.0), (-0.5, 1.5), (0.9, 3.0)] {
        let ((fa, ga), (fb, gb)) = (p(a), p(b));
        let t = cubic_interpolate((a, fa, ga), (b, fb, gb), None);
        assert!((t - 1.0).abs() < 1e-12, "from ({a}, {b}): {t}");
    }
}

#[test]
fn cubic_interpolation_of_a_quadratic_is_its_vertex_and_respects_bounds() {
    // q(t) = (t − 0.3)²
    let q = |t: f64| ((t - 0.3) * (t - 0.3), 2.0 * (t - 0.3));
    let ((f0, g0), (f1, g1)) = (q(0.0), q(1.0));
    let t = cubic_interpolate((0.0, f0, g0), (1.0, f1, g1), None);
    assert!((t - 0.3).abs() < 1e-12, "{t}");
    // Clamped into the bounds.
    assert_eq!(cubic_interpolate((0.0, f0, g0), (1.0, f1, g1), Some((0.5, 2.0))), 0.5);
    // No minimiser (d₁² < g₁g₂: a concave piece): the middle of the bounds.
    let t = cubic_interpolate((0.0, 0.0, 2.0), (1.0, 1.0, 2.0), Some((2.0, 4.0)));
    assert_eq!(t, 3.0);
}

/// φ(t) = f(x + t·d) for f(x) = Σ cᵢ(xᵢ − 1)⁴ + xᵢ²: smooth, convex, not quadratic.
fn quartic(x: &[f64]) -> (f64, Vec<f64>) {
    let c = [1.0, 3.0, 0.5];
    let f = x.iter().zip(c).map(|(v, c)| c * (v - 1.0).powi(4) + v * v).sum();
    let g = x.iter().zip(c).map(|(v, c)| 4.0 * c * (v - 1.0).powi(3) + 2.0 * v).collect();
    (f, g)
}

#[test]
fn strong_wolfe_step_meets_both_conditions() {
    let x = [3.0, -2.0, 0.5];
    let (f0, g0) = quartic(&x);
    let d: Vec<f64> = g0.iter().map(|v| -v).collect();
    let gtd = dot(&g0, &d);
    for t0 in [1e-4, 1e-2, 1.0, 10.0] {
        let w = Wolfe::default();
        let r = strong_wolfe(|t| quartic(&moved(&x, t, &d)), &d, (f0, &g0, gtd), t0, &w);
        assert!(r.wolfe, "t0 = {t0}: {r:?}");
        let (f, g) = quartic(&moved(&x, r.t, &d));
        assert_eq!((f, &g), (r.f, &r.g));
        assert!(f <= f0 + w.c1 * r.t * gtd, "t0 = {t0}: Armijo");
        assert!(dot(&g, &d).abs() <= -w.c2 * gtd, "t0 = {t0}: curvature");
        assert!(r.evals >= 1 && r.evals <= w.max_ls + 1);
    }
}

#[test]
fn out_of_budget_returns_the_better_end() {
    // max_ls = 0: one trial, then the lower of the start and that trial.
    let x = [3.0, -2.0, 0.5];
    let (f0, g0) = quartic(&x);
    let d: Vec<f64> = g0.iter().map(|v| -v).collect();
    let w = Wolfe { max_ls: 0, ..Wolfe::default() };
    let phi = |t| quartic(&moved(&x, t, &d));
    let far = strong_wolfe(phi, &d, (f0, &g0, dot(&g0, &d)), 100.0, &w);
    assert_eq!((far.t, far.f, far.evals, far.wolfe), (0.0, f0, 1, false));
}

#[test]
fn two_loop_applies_the_bfgs_inverse_hessian() {
    // With one pair (y, s) and H₀ = γI the recursion gives −H·g for
    // H = (I − ρsyᵀ)γ(I − ρysᵀ) + ρssᵀ.
    let mut l = Lbfgs::new(Config::default());
    let (y, s, gamma) = (vec![1.0, 2.0, -1.0], vec![0.5, 1.0, 0.25], 0.7);
    let rho = 1.0 / dot(&y, &s);
    l.history.y.push_back(y.clone());
    l.history.s.push_back(s.clone());
    l.history.rho.push_back(rho);
    l.h_diag = gamma;
    let g = [0.3, -1.0, 2.0];
    let d = l.two_loop(&g);
    // v = (I − ρysᵀ)g; u = γv; Hg = (I − ρsyᵀ)u + ρs(sᵀg)
    let sg = dot(&s, &g);
    let v: Vec<f64> = (0..3).map(|i| g[i] - rho * y[i] * sg).collect();
    let u: Vec<f64> = v.iter().map(|a| gamma * a).collect();
    let yu = dot(&y, &u);
    let hg: Vec<f64> = (0..3).map(|i| u[i] - rho * s[i] * yu + rho * s[i] * sg).collect();
    for i in 0..3 {
        assert!((d[i] + hg[i]).abs() < 1e-14, "{i}: {} vs {}", d[i], -hg[i]);
    }
}

#[test]
fn converges_on_the_quartic_and_stops_at_a_stationary_point() {
    let mut l = Lbfgs::new(Config::default());
    let mut x = vec![3.0, -2.0, 0.5];
    let first = l.step(&mut x, 1.0, quartic);
    assert!(first.iterations >= 1 && first.evaluations <= 25);
    for _ in 0..5 {
        l.step(&mut x, 1.0, quartic);
    }
    // The minimiser, coordinate by coordinate (4c(v − 1)³ + 2v = 0), by bisection.
    for (i, c) in [1.0, 3.0, 0.5].into_iter().enumerate() {
        let (mut lo, mut hi) = (0.0f64, 1.0f64);
        for _ in 0..100 {
            let mid = (lo + hi) / 2.0;
            if 4.0 * c * (mid - 1.0).powi(3) + 2.0 * mid > 0.0 {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        // f'' ≥ 2, so |x − x*| ≤ |f'(x)|/2; the stop on |Δf| < 1e-9 leaves |f'| ~ 1e-5.
        assert!((x[i] - lo).abs() < 1e-5, "{i}: {} vs {lo}", x[i]);
    }
    // At the optimum a step evaluates once and returns.
    let before = l.iterations();
    let again = l.step(&mut x, 1.0, |p| (quartic(p).0, vec![0.0; 3]));
    assert_eq!((again.iterations, again.evaluations, l.iterations()), (0, 1, before));
}
