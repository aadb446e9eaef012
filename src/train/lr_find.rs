//! The learning-rate range test (Smith, "Cyclical Learning Rates for Training Neural
//! Networks", 2017; the smoothing and stopping rule of fastai's `lr_find`): train with the
//! learning rate growing exponentially from `min` to `max`, one step at each, and read the
//! loss against the rate. The schedule is the file's `exponential(gamma)` with
//! `gamma = (max/min)^(1/(steps−1))` ([`gamma`]); this module reads the result.

/// Weight of the past in the smoothed loss (fastai's β).
pub const BETA: f64 = 0.98;
/// The test stops where the smoothed loss exceeds this multiple of its minimum.
pub const BLOW_UP: f64 = 4.0;

/// The per-step factor that takes the rate from `min` at the first step to `max` at the
/// `steps`-th.
pub fn gamma(min: f64, max: f64, steps: usize) -> f64 {
    (max / min).powf(1.0 / (steps.max(2) - 1) as f64)
}

/// One step of the test: its rate, its batch loss and the smoothed loss.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub step: u64,
    pub lr: f64,
    pub loss: f64,
    pub smoothed: f64,
}

/// What the curve suggests.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reading {
    /// The point of the lowest smoothed loss.
    pub min: Point,
    /// The point before the minimum where the smoothed loss falls fastest against log(lr)
    /// (a central difference), if there are points enough.
    pub steepest: Option<Point>,
    /// The step the test stopped reading at (the loss blew up or stopped being finite), if
    /// it did before the end.
    pub stopped: Option<u64>,
}

/// Smooths `(step, lr, loss)` rows (bias-corrected exponential moving average) and keeps
/// them up to the first whose smoothed loss is not finite or exceeds [`BLOW_UP`] times the
/// lowest so far. Returns the kept points and the step it stopped at, if any.
pub fn smooth(rows: &[(u64, f64, f64)]) -> (Vec<Point>, Option<u64>) {
    let mut avg = 0.0;
    let mut best = f64::INFINITY;
    let mut kept = Vec::new();
    for (i, &(step, lr, loss)) in rows.iter().enumerate() {
        avg = BETA * avg + (1.0 - BETA) * loss;
        let smoothed = avg / (1.0 - BETA.powi(i as i32 + 1));
        if !smoothed.is_finite() || smoothed > BLOW_UP * best {
            return (kept, Some(step));
        }
        best = best.min(smoothed);
        kept.push(Point { step, lr, loss, smoothed });
    }
    (kept, None)
}

/// Reads the kept points of [`smooth`]; `None` for an empty curve.
pub fn read(points: &[Point], stopped: Option<u64>) -> Option<Reading> {
    let lowest =
        (0..points.len()).min_by(|&i, &j| points[i].smoothed.total_cmp(&points[j].smoothed))?;
    let slope = |i: usize| {
        let (a, b) = (points[i - 1], points[i + 1]);
        (b.smoothed - a.smoothed) / (b.lr.ln() - a.lr.ln())
    };
    let steepest = (1..lowest.min(points.len().saturating_sub(1)))
        .min_by(|&i, &j| slope(i).total_cmp(&slope(j)))
        .map(|i| points[i]);
    Some(Reading { min: points[lowest], steepest, stopped })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gamma_reaches_max_at_the_last_step() {
        let g = gamma(1e-6, 10.0, 100);
        assert!((1e-6 * g.powi(99) / 10.0 - 1.0).abs() < 1e-12);
    }

    #[test]
    fn a_synthetic_curve_is_read_where_it_falls_fastest_and_stopped_where_it_blows_up() {
        // loss(lr) = 1 − tanh(log10(lr) + 3) until lr = 1, then it explodes.
        let rows: Vec<(u64, f64, f64)> = (0..120)
            .map(|i| {
                let lr = 1e-6 * 10f64.powf(i as f64 * 0.06);
                let loss = if lr < 1.0 { 1.0 - (lr.log10() + 3.0).tanh() } else { 1e3 * lr };
                (i + 1, lr, loss)
            })
            .collect();
        let (points, stopped) = smooth(&rows);
        // The first rate past 1 blows the smoothed loss past 4x its minimum.
        let first_past = rows.iter().find(|r| r.1 >= 1.0).unwrap().0;
        assert!(stopped.is_some_and(|s| s >= first_past && s < first_past + 3), "{stopped:?}");
        let r = read(&points, stopped).unwrap();
        // tanh falls fastest at log10(lr) = −3; the smoothing lags it by a few steps.
        let at = r.steepest.unwrap().lr.log10();
        assert!((-3.0..-2.0).contains(&at), "{at}");
        assert!(r.min.lr > 1e-2, "{:?}", r.min);
    }

    #[test]
    fn smoothing_is_bias_corrected() {
        let (p, stopped) = smooth(&[(1, 0.1, 2.0), (2, 0.2, 2.0)]);
        assert_eq!(stopped, None);
        assert!((p[0].smoothed - 2.0).abs() < 1e-12 && (p[1].smoothed - 2.0).abs() < 1e-12);
        assert_eq!(smooth(&[(1, 0.1, f64::NAN)]), (vec![], Some(1)));
    }
}
