//! The one scalar definition of every elementwise op: [`UnaryOp::apply`] and
//! [`BinaryOp::apply`], generic over the float type. The interpreter (`graph::eval`, in f32
//! and f64), constant folding (`passes::fold`, in f64) and the JIT's exact calls (values
//! computed once per kernel, `jit::codegen::ops`, in f32) all evaluate these; the JIT's
//! vectorized code follows them (`jit::codegen::ops` says where, and how NaN behaves).
//!
//! ```text
//! neg −x       exp eˣ       log ln x      log1p ln(1 + x)   sqrt √x      recip 1/x
//! abs |x|      sign −1, 0, 1 (NaN stays NaN)                square x²    tanh tanh x
//! sigmoid 1/(1 + e⁻ˣ), as eˣ/(1 + eˣ) for x < 0: never overflows
//! relu x > 0 ? x : 0, NaN stays NaN                             erf 2/√π ∫₀ˣ e^(−t²) dt
//! step x > 0 ? 1 : 0 (NaN: 0, as relu's gradient in PyTorch)
//! softplus ln(1 + eˣ) as max(x, 0) + ln(1 + e^−|x|): no overflow, exact for large |x|
//! add sub mul div; max, min: NaN if either operand is NaN (torch.maximum); pow aᵇ (powf)
//! gt, ge, eq: 1 or 0 (a comparison with NaN is 0)
//!
//! NaN propagates as in PyTorch: a NaN parameter cannot hide behind a relu or a clamp and
//! leave a finite loss.
//! ```

use super::eval::Real;
use super::{BinaryOp, UnaryOp};

/// `1` if `c` holds, else `0`.
fn indicator<T: Real>(c: bool) -> T {
    if c {
        T::one()
    } else {
        T::zero()
    }
}

impl UnaryOp {
    /// `op(x)`.
    pub fn apply<T: Real>(self, x: T) -> T {
        let zero = T::zero();
        match self {
            UnaryOp::Neg => -x,
            UnaryOp::Exp => x.exp(),
            UnaryOp::Log => x.ln(),
            UnaryOp::Log1p => x.ln_1p(),
            UnaryOp::Sqrt => x.sqrt(),
            UnaryOp::Recip => x.recip(),
            UnaryOp::Abs => x.abs(),
            UnaryOp::Sign if x > zero => T::one(),
            UnaryOp::Sign if x < zero => -T::one(),
            UnaryOp::Sign if x.is_nan() => x,
            UnaryOp::Sign => zero,
            UnaryOp::Square => x * x,
            UnaryOp::Tanh => x.tanh(),
            UnaryOp::Sigmoid if x >= zero => T::one() / (T::one() + (-x).exp()),
            UnaryOp::Sigmoid => x.exp() / (T::one() + x.exp()),
            UnaryOp::Relu if x > zero || x.is_nan() => x,
            UnaryOp::Relu => zero,
            UnaryOp::Step => indicator(x > zero),
            UnaryOp::Softplus => x.max(zero) + (-x.abs()).exp().ln_1p(),
            UnaryOp::Erf => x.erf(),
        }
    }

    /// True for the transcendental functions, which the JIT computes by the vectorized
    /// approximations of `jit::vmath` (or, once per kernel, by an exact call to
    /// [`UnaryOp::apply`]); the others are a few exact float instructions everywhere.
    pub fn is_transcendental(self) -> bool {
        match self {
            UnaryOp::Exp
            | UnaryOp::Log
            | UnaryOp::Log1p
            | UnaryOp::Tanh
            | UnaryOp::Sigmoid
            | UnaryOp::Softplus
            | UnaryOp::Erf => true,
            UnaryOp::Neg
            | UnaryOp::Sqrt
            | UnaryOp::Recip
            | UnaryOp::Abs
            | UnaryOp::Sign
            | UnaryOp::Square
            | UnaryOp::Relu
            | UnaryOp::Step => false,
        }
    }
}

impl BinaryOp {
    /// `op(a, b)`.
    pub fn apply<T: Real>(self, a: T, b: T) -> T {
        match self {
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
            BinaryOp::Div => a / b,
            BinaryOp::Max | BinaryOp::Min if a.is_nan() || b.is_nan() => a + b,
            BinaryOp::Max => a.max(b),
            BinaryOp::Min => a.min(b),
            BinaryOp::Pow => a.powf(b),
            BinaryOp::Gt => indicator(a > b),
            BinaryOp::Ge => indicator(a >= b),
            BinaryOp::Eq => indicator(a == b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::VariantArray;

    #[test]
    fn formulas() {
        assert_eq!(UnaryOp::Sign.apply(-3.0), -1.0);
        assert_eq!(UnaryOp::Sign.apply(0.0), 0.0);
        assert!(UnaryOp::Sign.apply(f64::NAN).is_nan());
        assert_eq!(UnaryOp::Step.apply(0.0), 0.0);
        assert!(UnaryOp::Relu.apply(f64::NAN).is_nan());
        assert!((UnaryOp::Softplus.apply(0.0) - 2f64.ln()).abs() < 1e-15);
        assert_eq!(BinaryOp::Ge.apply(1.0, 1.0), 1.0);
        assert_eq!(BinaryOp::Gt.apply(f64::NAN, 1.0), 0.0);
        for (a, b) in [(f64::NAN, 1.0), (1.0, f64::NAN)] {
            assert!(BinaryOp::Max.apply(a, b).is_nan() && BinaryOp::Min.apply(a, b).is_nan());
        }
        assert_eq!(BinaryOp::Pow.apply(2.0, 10.0), 1024.0);
        assert_eq!(UnaryOp::Erf.apply(0.0), 0.0);
        assert!(UnaryOp::Sigmoid.apply(-800.0) >= 0.0);
    }

    /// The sigmoid's two branches meet, and nothing overflows at ±1000.
    #[test]
    fn stable_forms() {
        for op in [UnaryOp::Sigmoid, UnaryOp::Softplus] {
            for x in [-1000.0, -1e-9, 0.0, 1e-9, 1000.0f64] {
                assert!(op.apply(x).is_finite(), "{op:?}({x})");
            }
        }
        assert_eq!(UnaryOp::Sigmoid.apply(0.0f64), 0.5);
        assert_eq!(UnaryOp::Softplus.apply(1000.0f64), 1000.0);
    }

    /// f32 and f64 agree to f32 rounding on every op (NaN where both are NaN).
    #[test]
    fn f32_follows_f64() {
        for &op in UnaryOp::VARIANTS {
            for x in [-2.5f64, -0.75, 0.3, 1.7] {
                let (a, b) = (op.apply(x as f32) as f64, op.apply(x));
                let both_nan = a.is_nan() && b.is_nan();
                assert!(
                    both_nan || (a - b).abs() <= 4e-7 * b.abs().max(1.0),
                    "{op:?}({x}): {a} vs {b}"
                );
            }
        }
        for &op in BinaryOp::VARIANTS {
            let (a, b) = (op.apply(1.5f32, 0.75) as f64, op.apply(1.5f64, 0.75));
            assert!((a - b).abs() <= 4e-7 * b.abs().max(1.0), "{op:?}: {a} vs {b}");
        }
    }
}
