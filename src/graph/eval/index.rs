//! Interpreter kernels of the index ops ([`crate::graph::indexing`]): concatenation,
//! slicing, embedding lookup and its adjoint. Each views its tensors as
//! `[outer, axis, inner]` around the joined or sliced axis, or as rows of `D` floats.
//!
//! ```text
//! concat:      out[o, j, i] = a[o, j, i]            for j < a_k
//!                           = b[o, j − a_k, i]      for j ≥ a_k
//! slice:       out[o, j, i] = a[o, start + j, i]
//! gather:      out[n, :]    = table[ids[n], :]
//! scatter_add: out[v, :]    = Σ_{n : ids[n] = v} g[n, :]      (duplicates accumulate)
//! ```
//! An id that is not an integer in `0..V` is `Err(id)`: user data, never a panic.

use super::Real;
use crate::tensor::Tensor;

/// Elements before and after `axis` of `shape`.
fn outer_inner(shape: &[usize], axis: usize) -> (usize, usize) {
    (shape[..axis].iter().product(), shape[axis + 1..].iter().product())
}

/// `a` and `b` joined along `axis`.
pub fn concat<T: Real>(a: &Tensor<T>, b: &Tensor<T>, axis: usize) -> Tensor<T> {
    let (outer, inner) = outer_inner(&a.shape, axis);
    let (ra, rb) = (a.shape[axis] * inner, b.shape[axis] * inner);
    let mut data = Vec::with_capacity(a.data.len() + b.data.len());
    for o in 0..outer {
        data.extend_from_slice(&a.data[o * ra..(o + 1) * ra]);
        data.extend_from_slice(&b.data[o * rb..(o + 1) * rb]);
    }
    let mut shape = a.shape.clone();
    shape[axis] += b.shape[axis];
    Tensor { shape, data }
}

/// Elements `start..start + len` of `a` along `axis`.
pub fn slice<T: Real>(a: &Tensor<T>, axis: usize, start: usize, len: usize) -> Tensor<T> {
    let (outer, inner) = outer_inner(&a.shape, axis);
    let row = a.shape[axis] * inner;
    let mut data = Vec::with_capacity(outer * len * inner);
    for o in 0..outer {
        let from = o * row + start * inner;
        data.extend_from_slice(&a.data[from..from + len * inner]);
    }
    let mut shape = a.shape.clone();
    shape[axis] = len;
    Tensor { shape, data }
}

/// `id` as a row index in `0..rows`, or `Err(id)`.
fn row_index<T: Real>(id: T, rows: usize) -> Result<usize, f64> {
    let v = id.as_f64();
    if v >= 0.0 && v.fract() == 0.0 && v < rows as f64 {
        Ok(v as usize)
    } else {
        Err(v)
    }
}

/// Rows of `table [V, D]` at `ids`: `[ids..., D]`.
pub fn gather<T: Real>(table: &Tensor<T>, ids: &Tensor<T>) -> Result<Tensor<T>, f64> {
    let (v, d) = (table.shape[0], table.shape[1]);
    let mut data = Vec::with_capacity(ids.data.len() * d);
    for &id in &ids.data {
        let r = row_index(id, v)?;
        data.extend_from_slice(&table.data[r * d..(r + 1) * d]);
    }
    let mut shape = ids.shape.clone();
    shape.push(d);
    Ok(Tensor { shape, data })
}

/// Rows of `g [ids..., D]` added into row `ids[n]` of a zero `[v, D]` table.
pub fn scatter_add<T: Real>(ids: &Tensor<T>, g: &Tensor<T>, v: usize) -> Result<Tensor<T>, f64> {
    let d = *g.shape.last().expect("scatter_add of a scalar");
    let mut out = vec![T::zero(); v * d];
    for (&id, row) in ids.data.iter().zip(g.data.chunks_exact(d.max(1))) {
        let r = row_index(id, v)?;
        for (o, &x) in out[r * d..(r + 1) * d].iter_mut().zip(row) {
            *o = *o + x;
        }
    }
    Ok(Tensor { shape: vec![v, d], data: out })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize], data: &[f64]) -> Tensor<f64> {
        Tensor::new(shape.to_vec(), data.to_vec())
    }

    #[test]
    fn concat_and_slice_by_hand() {
        let a = t(&[2, 2], &[1.0, 2.0, 3.0, 4.0]);
        let b = t(&[2, 1], &[5.0, 6.0]);
        let c = concat(&a, &b, 1);
        assert_eq!(c, t(&[2, 3], &[1.0, 2.0, 5.0, 3.0, 4.0, 6.0]));
        assert_eq!(concat(&a, &a, 0), t(&[4, 2], &[1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0]));
        assert_eq!(slice(&c, 1, 1, 2), t(&[2, 2], &[2.0, 5.0, 4.0, 6.0]));
        assert_eq!(slice(&c, 0, 1, 1), t(&[1, 3], &[3.0, 4.0, 6.0]));
    }

    #[test]
    fn gather_and_scatter_add_by_hand() {
        let table = t(&[3, 2], &[0.0, 1.0, 10.0, 11.0, 20.0, 21.0]);
        let ids = t(&[2, 2], &[2.0, 0.0, 2.0, 2.0]);
        let rows = gather(&table, &ids).unwrap();
        let want = [20.0, 21.0, 0.0, 1.0, 20.0, 21.0, 20.0, 21.0];
        assert_eq!(rows, t(&[2, 2, 2], &want));
        // Repeated ids accumulate; an unused row stays zero.
        let g = t(&[2, 2, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        let s = scatter_add(&ids, &g, 3).unwrap();
        assert_eq!(s, t(&[3, 2], &[3.0, 4.0, 0.0, 0.0, 13.0, 16.0]));
    }

    #[test]
    fn bad_ids_are_errors() {
        let table = t(&[3, 2], &[0.0; 6]);
        assert_eq!(gather(&table, &t(&[1], &[3.0])), Err(3.0));
        assert_eq!(gather(&table, &t(&[1], &[-1.0])), Err(-1.0));
        assert_eq!(gather(&table, &t(&[1], &[1.5])), Err(1.5));
        assert!(gather(&table, &t(&[1], &[f64::NAN])).is_err());
        assert_eq!(scatter_add(&t(&[1], &[7.0]), &t(&[1, 2], &[1.0, 1.0]), 3), Err(7.0));
    }
}
