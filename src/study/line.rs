//! Loss and metrics along a [`Path`] between two solutions (`nnc line`, Garipov et al. 2018;
//! Draxler et al. 2018): at each `t` of a grid, the weights `θ(t)`, batch norm's statistics
//! recomputed for them on the training data ([`super::bn`]) unless told to mix the
//! endpoints', then the evaluation-mode loss and metrics on the training split and the
//! validation split, as `nnc eval` computes them. The barrier of a path is its highest loss
//! on `[0, 1]` above the mean of its endpoints' losses.

use super::bn;
use super::path::Path;
use crate::check::Model;
use crate::error::Result;
use crate::runtime::{Backend, Outputs};
use crate::train::data::Dataset;
use crate::train::session;
use crate::train::state::Weights;

/// What to compute along the path.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    /// Points on `[0, 1]`, both ends included (at least 2).
    pub points: usize,
    /// Also this far beyond each end, at the same spacing.
    pub extend: f64,
    /// Recompute batch norm's statistics at each point (else the endpoints' are mixed).
    pub recompute_bn: bool,
    /// Batch size of the statistics pass (the file's training batch).
    pub batch: usize,
    /// Batch size of the evaluation.
    pub eval_batch: usize,
}

/// Loss then metrics (the forward graph's outputs) at `t`.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub t: f64,
    pub train: Outputs,
    pub validation: Option<Outputs>,
}

/// The grid: `points` values from 0 to 1 and as many of the same spacing as fit in
/// `extend` beyond each end (rounded to the nearest count).
pub fn grid(points: usize, extend: f64) -> Vec<f64> {
    let n = points.max(2) - 1;
    let extra = (extend.max(0.0) * n as f64).round() as i64;
    (-extra..=n as i64 + extra).map(|i| i as f64 / n as f64).collect()
}

/// Evaluates `path` at every `t` of `ts`. `be` is a backend of the model; it is left
/// holding the last point's weights.
pub fn evaluate(
    model: &Model,
    be: &mut dyn Backend,
    path: &Path,
    ts: &[f64],
    train: &Dataset,
    validation: Option<&Dataset>,
    s: &Settings,
) -> Result<Vec<Point>> {
    ts.iter()
        .map(|&t| {
            let (train, validation) = at(model, be, &path.at(t), train, validation, s)?;
            Ok(Point { t, train, validation })
        })
        .collect()
}

/// The loss and metrics of `w` on the training split and the validation split, batch
/// norm's statistics recomputed first if `s` says so. `be` is left holding `w`.
pub fn at(
    model: &Model,
    be: &mut dyn Backend,
    w: &Weights,
    train: &Dataset,
    validation: Option<&Dataset>,
    s: &Settings,
) -> Result<(Outputs, Option<Outputs>)> {
    match s.recompute_bn && !bn::batch_norms(model).is_empty() {
        true => {
            bn::recompute(model, be, w, train, s.batch)?;
        }
        false => {
            be.set_params(&w.params)?;
            if !w.buffers.is_empty() {
                be.set_buffers(&w.buffers)?;
            }
        }
    }
    let t = session::evaluate(model, be, train, s.eval_batch)?;
    let v = validation.map(|v| session::evaluate(model, be, v, s.eval_batch)).transpose()?;
    Ok((t, v))
}

/// A summary of one output along `[0, 1]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Barrier {
    pub start: f64,
    pub end: f64,
    pub max: f64,
    /// Where the maximum is.
    pub t_max: f64,
    /// Mean over the grid's points on `[0, 1]`.
    pub mean: f64,
    /// `max − (start + end)/2`.
    pub height: f64,
}

/// The barrier of `values` (`(t, value)` on a grid that holds 0 and 1); points outside
/// `[0, 1]` are ignored, and a value that is not finite is the maximum.
pub fn barrier(values: &[(f64, f64)]) -> Barrier {
    let inside: Vec<(f64, f64)> =
        values.iter().copied().filter(|&(t, _)| (0.0..=1.0).contains(&t)).collect();
    let at = |x: f64| inside.iter().find(|p| p.0 == x).map_or(f64::NAN, |p| p.1);
    let (start, end) = (at(0.0), at(1.0));
    let (t_max, max) = inside.iter().copied().fold((f64::NAN, f64::NEG_INFINITY), |m, p| {
        match m.1.is_nan() || p.1 <= m.1 {
            true => m,
            false => p,
        }
    });
    let mean = inside.iter().map(|p| p.1).sum::<f64>() / inside.len().max(1) as f64;
    Barrier { start, end, max, t_max, mean, height: max - (start + end) / 2.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grid_holds_both_ends_and_extends_at_its_spacing() {
        let g = grid(61, 0.0);
        assert_eq!((g.len(), g[0], g[60], g[30]), (61, 0.0, 1.0, 0.5));
        let g = grid(61, 0.25);
        assert_eq!((g.len(), g[0], g[90]), (91, -0.25, 1.25));
        assert!(g.contains(&0.0) && g.contains(&1.0));
        assert_eq!(grid(2, 0.0), vec![0.0, 1.0]);
    }

    #[test]
    fn the_barrier_is_the_peak_above_the_endpoints_mean() {
        let v = [(-0.5, 9.0), (0.0, 1.0), (0.5, 4.0), (1.0, 3.0), (1.5, 9.0)];
        let b = barrier(&v);
        assert_eq!((b.start, b.end, b.max, b.t_max), (1.0, 3.0, 4.0, 0.5));
        assert_eq!((b.mean, b.height), (8.0 / 3.0, 2.0));
        let b = barrier(&[(0.0, 1.0), (0.5, f64::NAN), (1.0, 1.0)]);
        assert!(b.max.is_nan() && b.t_max == 0.5);
    }
}
