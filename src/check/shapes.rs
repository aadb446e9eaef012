//! Shape rules of the language, as pure functions on [`Shape`]s (the batch dimension is the
//! symbol `Dim::Batch`), plus PyTorch's fan-in/fan-out and shape printing in the user's
//! batch name. Diagnostics are built by the callers, which know the source.
//!
//! | rule        | shapes                                                           |
//! |-------------|------------------------------------------------------------------|
//! | broadcast   | align right; each pair equal or one is 1; `B` pairs with `B`/1   |
//! | matmul      | `[m, k] @ [k, n] -> [m, n]`                                      |
//! | dense       | `[N, in] -> [N, out]`                                            |
//! | reduce      | all axes: `[]`; axis `k < rank`: axis `k` removed                |
//! | elementwise | the operand's shape                                              |

use crate::graph::{Dim, Shape};

/// NumPy broadcasting: shapes are aligned on their last dimension; each aligned pair must
/// be equal or contain a `1` (the other wins); missing leading dimensions count as `1`.
/// The batch `B` broadcasts only with `B` or `1`, as its size is unknown until run time.
pub fn broadcast(a: &Shape, b: &Shape) -> Option<Shape> {
    let n = a.rank().max(b.rank());
    let at = |s: &Shape, i: usize| {
        let pad = n - s.rank();
        if i < pad {
            Dim::Fixed(1)
        } else {
            s.0[i - pad]
        }
    };
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let (x, y) = (at(a, i), at(b, i));
        out.push(match (x, y) {
            _ if x == y => x,
            (Dim::Fixed(1), _) => y,
            (_, Dim::Fixed(1)) => x,
            _ => return None,
        });
    }
    Some(Shape(out))
}

/// Why a matrix product is ill-shaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatMulError {
    /// The left (`true`) or right operand is not rank 2.
    Rank { left: bool },
    /// `[m, k] @ [k', n]` with `k != k'`.
    Inner,
}

/// `[m, k] @ [k, n] -> [m, n]`.
pub fn matmul(a: &Shape, b: &Shape) -> Result<Shape, MatMulError> {
    if a.rank() != 2 {
        return Err(MatMulError::Rank { left: true });
    }
    if b.rank() != 2 {
        return Err(MatMulError::Rank { left: false });
    }
    if a.0[1] != b.0[0] {
        return Err(MatMulError::Inner);
    }
    Ok(Shape(vec![a.0[0], b.0[1]]))
}

/// Why a dense layer cannot take its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DenseError {
    /// The input is not a matrix `[N, features]`.
    Rank,
    /// The input has this many features instead of the layer's `in`.
    Features(Dim),
}

/// `[N, in] -> [N, out]`.
pub fn dense(x: &Shape, inputs: usize, outputs: usize) -> Result<Shape, DenseError> {
    if x.rank() != 2 {
        return Err(DenseError::Rank);
    }
    if x.0[1] != Dim::Fixed(inputs as u32) {
        return Err(DenseError::Features(x.0[1]));
    }
    Ok(Shape(vec![x.0[0], Dim::Fixed(outputs as u32)]))
}

/// `sum`/`mean`: over all elements (`None`, result `[]`) or one axis, which is removed.
/// The caller has checked `axis < rank`.
pub fn reduce(x: &Shape, axis: Option<usize>) -> Shape {
    match axis {
        None => Shape::scalar(),
        Some(k) => {
            Shape(x.0.iter().enumerate().filter(|&(i, _)| i != k).map(|(_, &d)| d).collect())
        }
    }
}

/// PyTorch's `(fan_in, fan_out)` of a parameter: `[out, in, k...]` gives
/// `fan_in = in·∏k`, `fan_out = out·∏k`; a vector `[n]` gives `(n, n)`, a scalar `(1, 1)`.
/// Saturates instead of overflowing (such a parameter is refused for its size anyway).
pub fn fans(shape: &[usize]) -> (usize, usize) {
    match shape {
        [] => (1, 1),
        [n] => (*n, *n),
        [out, inp, rest @ ..] => {
            let field = rest.iter().fold(1usize, |a, &k| a.saturating_mul(k));
            (inp.saturating_mul(field), out.saturating_mul(field))
        }
    }
}

/// A shape as the user wrote it, with their batch name: `[B,64]`, `[]`.
pub fn show(shape: &Shape, batch: &str) -> String {
    let dims: Vec<String> = shape
        .0
        .iter()
        .map(|d| match d {
            Dim::Batch => batch.to_string(),
            Dim::Fixed(n) => n.to_string(),
        })
        .collect();
    format!("[{}]", dims.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(dims: &[i64]) -> Shape {
        Shape(dims.iter().map(|&d| if d < 0 { Dim::Batch } else { Dim::Fixed(d as u32) }).collect())
    }
    const B: i64 = -1;

    #[test]
    fn broadcasting_follows_numpy_with_a_symbolic_batch() {
        assert_eq!(broadcast(&s(&[B, 10]), &s(&[10])), Some(s(&[B, 10])));
        assert_eq!(broadcast(&s(&[]), &s(&[B, 3])), Some(s(&[B, 3])));
        assert_eq!(broadcast(&s(&[B, 1]), &s(&[1, 4])), Some(s(&[B, 4])));
        assert_eq!(broadcast(&s(&[B, 10]), &s(&[B, 3])), None);
        assert_eq!(broadcast(&s(&[B]), &s(&[5])), None);
        assert_eq!(broadcast(&s(&[1]), &s(&[B])), Some(s(&[B])));
    }

    #[test]
    fn matmul_and_dense_shapes() {
        assert_eq!(matmul(&s(&[B, 64]), &s(&[64, 10])), Ok(s(&[B, 10])));
        assert_eq!(matmul(&s(&[B, 64]), &s(&[32, 10])), Err(MatMulError::Inner));
        assert_eq!(matmul(&s(&[64]), &s(&[64, 10])), Err(MatMulError::Rank { left: true }));
        assert_eq!(dense(&s(&[B, 64]), 64, 128), Ok(s(&[B, 128])));
        assert_eq!(dense(&s(&[B, 32]), 64, 128), Err(DenseError::Features(Dim::Fixed(32))));
        assert_eq!(dense(&s(&[B]), 64, 128), Err(DenseError::Rank));
    }

    #[test]
    fn reductions_remove_axes() {
        assert_eq!(reduce(&s(&[B, 3]), None), s(&[]));
        assert_eq!(reduce(&s(&[B, 3]), Some(1)), s(&[B]));
        assert_eq!(reduce(&s(&[B, 3]), Some(0)), s(&[3]));
    }

    #[test]
    fn fans_match_pytorch() {
        assert_eq!(fans(&[128, 64]), (64, 128));
        assert_eq!(fans(&[16, 3, 5, 5]), (75, 400));
        assert_eq!(fans(&[7]), (7, 7));
        assert_eq!(fans(&[]), (1, 1));
        assert_eq!(fans(&[2, usize::MAX, 3]).0, usize::MAX);
        assert_eq!(show(&s(&[B, 64]), "N"), "[N,64]");
    }
}
