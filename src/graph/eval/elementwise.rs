//! The elementwise rules of the interpreter: one line per [`UnaryOp`] / [`BinaryOp`], the
//! math in a comment. Each match arm instantiates its own loop (no dispatch per element).

use super::kernels::{map, zip};
use super::Real;
use crate::graph::{BinaryOp, UnaryOp};
use crate::tensor::Tensor;

/// `1` if `c` holds, else `0`.
fn indicator<T: Real>(c: bool) -> T {
    if c {
        T::one()
    } else {
        T::zero()
    }
}

/// `1 / (1 + e^−x)`, never overflowing: for `x < 0` it is computed as `e^x / (1 + e^x)`.
fn sigmoid<T: Real>(x: T) -> T {
    if x >= T::zero() {
        T::one() / (T::one() + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::one() + e)
    }
}

/// `ln(1 + eˣ)` as `max(x, 0) + ln(1 + e^−|x|)`: no overflow, exact for large |x|.
fn softplus<T: Real>(x: T) -> T {
    x.max(T::zero()) + (-x.abs()).exp().ln_1p()
}

/// `−1, 0, 1` by the sign of `x`; NaN stays NaN.
fn sign<T: Real>(x: T) -> T {
    if x > T::zero() {
        T::one()
    } else if x < T::zero() {
        -T::one()
    } else if x.is_nan() {
        x
    } else {
        T::zero()
    }
}

/// `op(a)` elementwise.
pub fn unary<T: Real>(op: UnaryOp, a: &Tensor<T>) -> Tensor<T> {
    let zero = T::zero();
    match op {
        UnaryOp::Neg => map(a, |x| -x),                               // −x
        UnaryOp::Exp => map(a, |x| x.exp()),                          // eˣ
        UnaryOp::Log => map(a, |x| x.ln()),                           // ln x
        UnaryOp::Log1p => map(a, |x| x.ln_1p()),                      // ln(1 + x)
        UnaryOp::Sqrt => map(a, |x| x.sqrt()),                        // √x
        UnaryOp::Recip => map(a, |x| x.recip()),                      // 1/x
        UnaryOp::Abs => map(a, |x| x.abs()),                          // |x|
        UnaryOp::Sign => map(a, sign),                                // sgn x
        UnaryOp::Square => map(a, |x| x * x),                         // x²
        UnaryOp::Tanh => map(a, |x| x.tanh()),                        // tanh x
        UnaryOp::Sigmoid => map(a, sigmoid),                          // 1/(1 + e⁻ˣ)
        UnaryOp::Relu => map(a, |x| if x > zero { x } else { zero }), // max(x, 0)
        UnaryOp::Step => map(a, |x| indicator(x > zero)),             // [x > 0]
        UnaryOp::Softplus => map(a, softplus),                        // ln(1 + eˣ)
        UnaryOp::Erf => map(a, |x| x.erf()),                          // erf x
    }
}

/// `op(a, b)` elementwise; `a` and `b` have the same shape.
pub fn binary<T: Real>(op: BinaryOp, a: &Tensor<T>, b: &Tensor<T>) -> Tensor<T> {
    match op {
        BinaryOp::Add => zip(a, b, |x, y| x + y),           // a + b
        BinaryOp::Sub => zip(a, b, |x, y| x - y),           // a − b
        BinaryOp::Mul => zip(a, b, |x, y| x * y),           // a · b
        BinaryOp::Div => zip(a, b, |x, y| x / y),           // a / b
        BinaryOp::Max => zip(a, b, |x, y| x.max(y)),        // max(a, b)
        BinaryOp::Min => zip(a, b, |x, y| x.min(y)),        // min(a, b)
        BinaryOp::Pow => zip(a, b, |x, y| x.powf(y)),       // aᵇ
        BinaryOp::Gt => zip(a, b, |x, y| indicator(x > y)), // [a > b]
        BinaryOp::Ge => zip(a, b, |x, y| indicator(x >= y)), // [a ≥ b]
        BinaryOp::Eq => zip(a, b, |x, y| indicator(x == y)), // [a = b]
    }
}
