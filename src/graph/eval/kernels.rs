//! Dense kernels of the reference interpreter: structural ops (broadcast, transpose,
//! reductions), matrix product and the row-wise softmax family. Each takes concrete row-major
//! tensors and returns a fresh one; none allocates per element.
//!
//! Indexing is done by one odometer, [`walk`], that visits a shape in row-major order and
//! keeps a strided offset up to date incrementally: broadcast is a walk of the result with
//! the operand's strides (0 on expanded axes), transpose a walk with swapped strides, and a
//! reduction a walk of the operand with the result's strides (0 on reduced axes).

use super::Real;
use crate::graph::{Axes, Reduce};
use crate::tensor::Tensor;

/// Row-major strides of `shape`.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for k in (0..shape.len().saturating_sub(1)).rev() {
        s[k] = s[k + 1] * shape[k + 1];
    }
    s
}

/// Calls `f(i, offset)` for every index of `shape` in row-major order, where `i` counts the
/// elements and `offset = Σₖ index[k]·strides[k]`.
pub fn walk(shape: &[usize], strides: &[usize], mut f: impl FnMut(usize, usize)) {
    let n: usize = shape.iter().product();
    let mut idx = vec![0usize; shape.len()];
    let mut off = 0usize;
    for i in 0..n {
        f(i, off);
        for k in (0..shape.len()).rev() {
            idx[k] += 1;
            off += strides[k];
            if idx[k] < shape[k] {
                break;
            }
            off -= strides[k] * shape[k];
            idx[k] = 0;
        }
    }
}

/// The elements of `src` read at the strided offsets of `shape`.
fn gather<T: Copy>(src: &[T], shape: &[usize], strides: &[usize]) -> Vec<T> {
    let mut out = Vec::with_capacity(shape.iter().product());
    walk(shape, strides, |_, off| out.push(src[off]));
    out
}

/// `f(a)` elementwise.
pub fn map<T: Real>(a: &Tensor<T>, f: impl Fn(T) -> T) -> Tensor<T> {
    Tensor { shape: a.shape.clone(), data: a.data.iter().map(|&x| f(x)).collect() }
}

/// `f(a, b)` elementwise; both have the same shape.
pub fn zip<T: Real>(a: &Tensor<T>, b: &Tensor<T>, f: impl Fn(T, T) -> T) -> Tensor<T> {
    let data = a.data.iter().zip(&b.data).map(|(&x, &y)| f(x, y)).collect();
    Tensor { shape: a.shape.clone(), data }
}

/// `a` where `c != 0`, else `b`.
pub fn select<T: Real>(c: &Tensor<T>, a: &Tensor<T>, b: &Tensor<T>) -> Tensor<T> {
    let data = c
        .data
        .iter()
        .zip(a.data.iter().zip(&b.data))
        .map(|(&c, (&x, &y))| if c != T::zero() { x } else { y })
        .collect();
    Tensor { shape: a.shape.clone(), data }
}

/// NumPy broadcast of `a` to `to`: `a`'s axes align with the trailing axes of `to`; an axis
/// of size 1 (or a missing leading axis) is read with stride 0.
pub fn broadcast<T: Real>(a: &Tensor<T>, to: &[usize]) -> Tensor<T> {
    let lead = to.len() - a.shape.len();
    let own = strides(&a.shape);
    let st: Vec<usize> = (0..to.len())
        .map(|k| match k.checked_sub(lead) {
            Some(j) if a.shape[j] != 1 => own[j],
            _ => 0,
        })
        .collect();
    Tensor { shape: to.to_vec(), data: gather(&a.data, to, &st) }
}

/// `[m, n] -> [n, m]`.
pub fn transpose<T: Real>(a: &Tensor<T>) -> Tensor<T> {
    let (m, n) = (a.shape[0], a.shape[1]);
    Tensor { shape: vec![n, m], data: gather(&a.data, &[n, m], &[1, n]) }
}

/// Reduction over `axes`, keeping them with size 1.
///
/// ```text
/// sum  = Σ x          mean = Σ x / count   (count = product of the reduced sizes)
/// max  = largest x    (−∞ over nothing; NaN if any x is NaN)
/// ```
pub fn reduce<T: Real>(a: &Tensor<T>, axes: Axes, kind: Reduce) -> Tensor<T> {
    let shape: Vec<usize> =
        a.shape.iter().enumerate().map(|(k, &d)| if axes.contains(k) { 1 } else { d }).collect();
    let mut st = strides(&shape);
    let rank = st.len();
    for k in axes.iter().filter(|&k| k < rank) {
        st[k] = 0;
    }
    let init = if kind == Reduce::Max { T::neg_infinity() } else { T::zero() };
    let mut out = vec![init; shape.iter().product()];
    match kind {
        Reduce::Sum | Reduce::Mean => walk(&a.shape, &st, |i, o| out[o] = out[o] + a.data[i]),
        Reduce::Max => walk(&a.shape, &st, |i, o| {
            let x = a.data[i];
            if x > out[o] || x.is_nan() {
                out[o] = x;
            }
        }),
    }
    if kind == Reduce::Mean {
        let count: usize = axes.iter().filter_map(|k| a.shape.get(k)).product();
        let c = T::from_f64(count as f64);
        out.iter_mut().for_each(|x| *x = *x / c);
    }
    Tensor { shape, data: out }
}

/// `op(a) @ op(b)`, `op` transposing when its flag is set. The transposes are materialized
/// first; the product itself is the cache-friendly i-k-j loop over row-major operands.
pub fn matmul<T: Real>(a: &Tensor<T>, b: &Tensor<T>, ta: bool, tb: bool) -> Tensor<T> {
    let a_t;
    let a = if ta {
        a_t = transpose(a);
        &a_t
    } else {
        a
    };
    let b_t;
    let b = if tb {
        b_t = transpose(b);
        &b_t
    } else {
        b
    };
    let (m, k, n) = (a.shape[0], a.shape[1], b.shape[1]);
    let mut out = vec![T::zero(); m * n];
    if n > 0 {
        for (orow, arow) in out.chunks_exact_mut(n).zip(a.data.chunks_exact(k.max(1))) {
            for (&aip, brow) in arow.iter().zip(b.data.chunks_exact(n)) {
                for (o, &bv) in orow.iter_mut().zip(brow) {
                    *o = *o + aip * bv;
                }
            }
        }
    }
    Tensor { shape: vec![m, n], data: out }
}

/// Length of the last axis (rows of the softmax family); a scalar is one row of one.
fn row_len<T>(a: &Tensor<T>) -> usize {
    a.shape.last().copied().unwrap_or(1)
}

/// `(max, log Σ e^(x − max))` of one non-empty row.
fn max_and_log_sum_exp<T: Real>(row: &[T]) -> (T, T) {
    let m = row.iter().fold(T::neg_infinity(), |m, &x| if x > m { x } else { m });
    let s = row.iter().fold(T::zero(), |s, &x| s + (x - m).exp());
    (m, s.ln())
}

/// Softmax over the last axis: `e^(x − max) / Σ e^(x − max)`.
pub fn softmax<T: Real>(a: &Tensor<T>) -> Tensor<T> {
    let mut out = a.clone();
    let c = row_len(a);
    if c > 0 {
        for row in out.data.chunks_exact_mut(c) {
            let (m, lse) = max_and_log_sum_exp(row);
            row.iter_mut().for_each(|x| *x = (*x - m - lse).exp());
        }
    }
    out
}

/// Log-softmax over the last axis: `x − max − log Σ e^(x − max)`.
pub fn log_softmax<T: Real>(a: &Tensor<T>) -> Tensor<T> {
    let mut out = a.clone();
    let c = row_len(a);
    if c > 0 {
        for row in out.data.chunks_exact_mut(c) {
            let (m, lse) = max_and_log_sum_exp(row);
            row.iter_mut().for_each(|x| *x = (*x - m) - lse);
        }
    }
    out
}

/// A class label as an index in `0..classes`, or `Err(label)` if it is not one.
fn class_index<T: Real>(label: T, classes: usize) -> Result<usize, f64> {
    let v = label.as_f64();
    if v >= 0.0 && v.fract() == 0.0 && v < classes as f64 {
        Ok(v as usize)
    } else {
        Err(v)
    }
}

/// Per-row cross entropy of logits `z: [N, C]` against labels `y: [N]`:
/// `−log softmax(z)[y] = (max − z[y]) + log Σ e^(z − max)`. `Err(label)` on a bad label.
pub fn softmax_xent<T: Real>(z: &Tensor<T>, y: &Tensor<T>) -> Result<Tensor<T>, f64> {
    let c = z.shape[1];
    let mut out = Vec::with_capacity(y.data.len());
    for (i, &label) in y.data.iter().enumerate() {
        let k = class_index(label, c)?;
        let row = &z.data[i * c..(i + 1) * c];
        let (m, lse) = max_and_log_sum_exp(row);
        out.push((m - row[k]) + lse);
    }
    Ok(Tensor { shape: y.shape.clone(), data: out })
}

/// Labels `y: [N]` to one-hot rows `[N, C]`. `Err(label)` on a bad label.
pub fn one_hot<T: Real>(y: &Tensor<T>, c: usize) -> Result<Tensor<T>, f64> {
    let mut out = vec![T::zero(); y.data.len() * c];
    for (i, &label) in y.data.iter().enumerate() {
        out[i * c + class_index(label, c)?] = T::one();
    }
    Ok(Tensor { shape: vec![y.data.len(), c], data: out })
}

/// Index of the first largest element of each row (last axis), as a float; NaN for an
/// empty row.
pub fn argmax<T: Real>(a: &Tensor<T>) -> Tensor<T> {
    let c = *a.shape.last().expect("argmax of a scalar");
    let shape = a.shape[..a.shape.len() - 1].to_vec();
    let rows: usize = shape.iter().product();
    let data = (0..rows)
        .map(|r| {
            let row = &a.data[r * c..(r + 1) * c];
            let best = (1..c).fold(0, |b, j| if row[j] > row[b] { j } else { b });
            if c == 0 {
                T::nan()
            } else {
                T::from_f64(best as f64)
            }
        })
        .collect();
    Tensor { shape, data }
}
