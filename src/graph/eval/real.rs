//! The float types the interpreter runs in (`f32` for training, `f64` for gradient checks)
//! and the one special function `std` lacks: the error function.
//!
//! [`erf`] is accurate to a few ulps in `f64` everywhere (tested against tabulated values to
//! 1e-15 relative). It uses two expansions, each without cancellation where it is used:
//!
//! ```text
//! |x| < 3:  erf(x)  = 2/√π · e^(−x²) · Σₙ (2x²)ⁿ·x / (1·3·5···(2n+1))      (positive terms)
//! |x| ≥ 3:  erfc(x) = e^(−x²)/√π · 1/(x + (1/2)/(x + (2/2)/(x + (3/2)/(x + …))))
//!           erf(x)  = 1 − erfc(x)           (erfc(3) ≈ 2e−5, so its error barely shows)
//! |x| ≥ 6:  erf(x)  = ±1                    (erfc(6) ≈ 2e−17 < ulp(1)/2)
//! ```
//!
//! `e^(−x²)` is computed as `e^(−hi)·(1 − lo)` with `x² = hi + lo` split exactly by a fused
//! multiply-add, so the rounding of `x²` (relative error up to 9·ε at x = 3) does not leak in.

use std::fmt;

use num_traits::Float;

/// A float type the interpreter can evaluate in.
///
/// The conversions are named `from_f64`/`as_f64` (not `to_f64`) so that they do not clash
/// with `num_traits::ToPrimitive::to_f64`, which every `Float` also has.
pub trait Real: Float + fmt::Debug + fmt::Display + Send + Sync + 'static {
    /// The nearest value of this type.
    fn from_f64(x: f64) -> Self;
    /// The exact value as an `f64`.
    fn as_f64(self) -> f64;
    /// The error function `2/√π ∫₀ˣ e^(−t²) dt`.
    fn erf(self) -> Self;
}

impl Real for f64 {
    fn from_f64(x: f64) -> f64 {
        x
    }
    fn as_f64(self) -> f64 {
        self
    }
    fn erf(self) -> f64 {
        erf(self)
    }
}

impl Real for f32 {
    fn from_f64(x: f64) -> f32 {
        x as f32
    }
    fn as_f64(self) -> f64 {
        self as f64
    }
    fn erf(self) -> f32 {
        erf(self as f64) as f32
    }
}

const FRAC_2_SQRT_PI: f64 = std::f64::consts::FRAC_2_SQRT_PI;
/// `1/√π`
const FRAC_1_SQRT_PI: f64 = 0.5 * FRAC_2_SQRT_PI;
/// Terms of the continued fraction: at x = 3 the tail below 60 terms is under 1e-13
/// relative, which is 1e-18 relative in `erf`.
const CF_TERMS: u32 = 60;

/// The error function in `f64`, odd, `erf(±∞) = ±1`, `erf(NaN) = NaN`.
pub fn erf(x: f64) -> f64 {
    let a = x.abs();
    if a.is_nan() {
        x
    } else if a >= 6.0 {
        1.0f64.copysign(x)
    } else if a >= 3.0 {
        (1.0 - erfc_cf(a)).copysign(x)
    } else {
        erf_series(x)
    }
}

/// `e^(−x²)`, with the rounding error of `x²` compensated.
fn exp_neg_square(x: f64) -> f64 {
    let hi = x * x;
    let lo = x.mul_add(x, -hi);
    (-hi).exp() * (1.0 - lo)
}

/// `erf(x)` by the series of positive terms; converges for every x, used for |x| < 3.
pub(super) fn erf_series(x: f64) -> f64 {
    let two_x2 = 2.0 * x * x;
    let (mut term, mut sum) = (x, x);
    let mut n = 0.0;
    while term.abs() > sum.abs() * 1e-17 {
        n += 1.0;
        term *= two_x2 / (2.0 * n + 1.0);
        sum += term;
    }
    FRAC_2_SQRT_PI * exp_neg_square(x) * sum
}

/// `erfc(x)` for `x ≥ 3` by its continued fraction, evaluated from the tail.
pub(super) fn erfc_cf(x: f64) -> f64 {
    let mut t = x;
    for k in (1..=CF_TERMS).rev() {
        t = x + (k as f64 * 0.5) / t;
    }
    FRAC_1_SQRT_PI * exp_neg_square(x) / t
}
