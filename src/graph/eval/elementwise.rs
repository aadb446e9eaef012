//! The elementwise ops of the interpreter: each element by the ops' one scalar definition
//! (`graph::scalar`).

use super::kernels::{map, zip};
use super::Real;
use crate::graph::{BinaryOp, UnaryOp};
use crate::tensor::Tensor;

/// `op(a)` elementwise.
pub fn unary<T: Real>(op: UnaryOp, a: &Tensor<T>) -> Tensor<T> {
    map(a, |x| op.apply(x))
}

/// `op(a, b)` elementwise; `a` and `b` have the same shape.
pub fn binary<T: Real>(op: BinaryOp, a: &Tensor<T>, b: &Tensor<T>) -> Tensor<T> {
    zip(a, b, |x, y| op.apply(x, y))
}
