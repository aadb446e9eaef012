//! Paths through weight space between two solutions `A` and `B`: the line
//! `θ(t) = (1 − t)·A + t·B` and the curves of mode connectivity (Garipov et al. 2018), each
//! a linear combination of its nodes `P_0 = A, P_1, …, P_k, P_{k+1} = B` (the `k` bends)
//! with coefficients that depend only on `t`:
//!
//! | curve     | `c_j(t)`                                                                       |
//! |-----------|--------------------------------------------------------------------------------|
//! | Bézier    | Bernstein `C(n, j)·tʲ·(1 − t)ⁿ⁻ʲ` with `n = k + 1`; one bend: `(1−t)², 2t(1−t), t²` |
//! | polychain | linear between consecutive nodes, `k + 1` segments of equal length in `t`    |
//!
//! With no bend both are the line. Outside `[0, 1]` (`nnc line --extend`) the Bézier
//! polynomial and the polychain's first or last segment continue. Batch norm's buffers
//! combine like the parameters (statistics recomputed at each point replace them: [`super::bn`]).

use crate::tensor::Tensor;
use crate::train::state::Weights;

/// How a path passes through its nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Curve {
    Bezier,
    Polychain,
}

/// The coefficients `c_j(t)` of `nodes` nodes (at least 2); they sum to 1.
pub fn coefficients(curve: Curve, nodes: usize, t: f64) -> Vec<f64> {
    assert!(nodes >= 2, "a path has two endpoints");
    let n = nodes - 1;
    let mut c = vec![0.0; nodes];
    match curve {
        Curve::Bezier => {
            let mut binom = 1.0;
            for (j, cj) in c.iter_mut().enumerate() {
                *cj = binom * t.powi(j as i32) * (1.0 - t).powi((n - j) as i32);
                binom = binom * (n - j) as f64 / (j + 1) as f64;
            }
        }
        Curve::Polychain => {
            let s = t * n as f64;
            let j = (s.floor().max(0.0) as usize).min(n - 1);
            let u = s - j as f64;
            c[j] = 1.0 - u;
            c[j + 1] = u;
        }
    }
    c
}

/// A path: its kind and nodes, the endpoints first and last.
#[derive(Clone, Debug)]
pub struct Path {
    pub curve: Curve,
    pub nodes: Vec<Weights>,
}

impl Path {
    /// The line from `a` to `b`.
    pub fn line(a: Weights, b: Weights) -> Path {
        Path { curve: Curve::Polychain, nodes: vec![a, b] }
    }

    /// The weights at `t`. A node whose coefficient is 0 contributes nothing (not even a
    /// rounding), so the path passes exactly through its endpoints.
    pub fn at(&self, t: f64) -> Weights {
        let c = coefficients(self.curve, self.nodes.len(), t);
        let params = combine(&c, |w| &w.params, &self.nodes);
        let buffers = combine(&c, |w| &w.buffers, &self.nodes);
        Weights { params, buffers }
    }
}

/// `Σ_j c_j·x_j` of each tensor of `part(node)`, summed in f64.
fn combine(
    c: &[f64],
    part: impl Fn(&Weights) -> &Vec<Tensor<f32>>,
    nodes: &[Weights],
) -> Vec<Tensor<f32>> {
    let first = part(&nodes[0]);
    (0..first.len())
        .map(|i| {
            let mut acc = vec![0.0f64; first[i].data.len()];
            for (cj, node) in c.iter().zip(nodes) {
                if *cj == 0.0 {
                    continue;
                }
                for (a, x) in acc.iter_mut().zip(&part(node)[i].data) {
                    *a += cj * *x as f64;
                }
            }
            Tensor::new(first[i].shape.clone(), acc.into_iter().map(|a| a as f32).collect())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coefficients_sum_to_one_and_pass_through_the_endpoints() {
        for curve in [Curve::Bezier, Curve::Polychain] {
            for nodes in 2..6 {
                for &t in &[-0.25, 0.0, 0.1, 0.5, 0.77, 1.0, 1.25] {
                    let c = coefficients(curve, nodes, t);
                    assert!((c.iter().sum::<f64>() - 1.0).abs() < 1e-12, "{curve:?} {nodes} {t}");
                }
                let (c0, c1) = (coefficients(curve, nodes, 0.0), coefficients(curve, nodes, 1.0));
                assert_eq!(c0[0], 1.0);
                assert!(c0[1..].iter().all(|&c| c == 0.0));
                assert_eq!(c1[nodes - 1], 1.0);
                assert!(c1[..nodes - 1].iter().all(|&c| c == 0.0));
            }
        }
    }

    #[test]
    fn one_bend_bezier_is_garipovs_quadratic() {
        let t: f64 = 0.3;
        let c = coefficients(Curve::Bezier, 3, t);
        let want = [(1.0 - t).powi(2), 2.0 * t * (1.0 - t), t * t];
        for (a, b) in c.iter().zip(want) {
            assert!((a - b).abs() < 1e-15);
        }
    }

    #[test]
    fn polychain_segments_and_the_line_beyond_the_ends() {
        // Two bends: three segments, t = 0.5 halfway along the middle one.
        assert_eq!(coefficients(Curve::Polychain, 4, 0.5), vec![0.0, 0.5, 0.5, 0.0]);
        assert_eq!(coefficients(Curve::Polychain, 2, -0.25), vec![1.25, -0.25]);
        assert_eq!(coefficients(Curve::Bezier, 2, 1.5), vec![-0.5, 1.5]);
    }

    #[test]
    fn a_bend_on_the_line_gives_the_line() {
        let w = |v: f32| Weights {
            params: vec![Tensor::new(vec![2], vec![v, 2.0 * v])],
            buffers: vec![],
        };
        let line = Path::line(w(1.0), w(3.0));
        for curve in [Curve::Bezier, Curve::Polychain] {
            let bent = Path { curve, nodes: vec![w(1.0), w(2.0), w(3.0)] };
            for &t in &[0.0, 0.2, 0.5, 0.9, 1.0] {
                let (a, b) = (line.at(t).params[0].data.clone(), bent.at(t).params[0].data.clone());
                for (x, y) in a.iter().zip(&b) {
                    assert!((x - y).abs() < 1e-6, "{curve:?} t={t}: {x} vs {y}");
                }
            }
        }
    }
}
