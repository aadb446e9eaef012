//! The index ops of the graph IR: their shape rules and interning constructors.
//!
//! | op                              | operands                     | result                 |
//! |---------------------------------|------------------------------|------------------------|
//! | `concat[k]`                     | `a`, `b`: equal but on `k`   | `a` with `a_k + b_k`   |
//! | `slice[k, s..s+n]`              | `a` with `a_k ≥ s + n`       | `a` with `n` on `k`    |
//! | `gather`                        | `table [V, D]`, `ids [N...]` | `[N..., D]`            |
//! | `scatter_add[V]`                | `ids [N...]`, `g [N..., D]`  | `[V, D]`               |
//!
//! Invariants: the joined, sliced and gathered axes are fixed (never the batch dimension: a
//! concatenation along it would have `2B` elements, which a [`Shape`] cannot express);
//! slices and concatenations are never empty on their axis. Ids are floats holding exact
//! integers, like class labels; the ops that read them are not differentiable in them.

use super::{Dim, Graph, NodeId, Op, Shape};

/// `a` and `b` joined along `axis`: equal ranks and dims except on `axis`, fixed there.
pub fn concat_shape(a: &Shape, b: &Shape, axis: usize) -> Option<Shape> {
    if a.rank() != b.rank() || axis >= a.rank() {
        return None;
    }
    let others = (0..a.rank()).filter(|&k| k != axis).all(|k| a.0[k] == b.0[k]);
    match (a.0[axis], b.0[axis]) {
        (Dim::Fixed(x), Dim::Fixed(y)) if others => {
            let mut s = a.clone();
            s.0[axis] = Dim::Fixed(x.checked_add(y)?);
            Some(s)
        }
        _ => None,
    }
}

/// `a` restricted to `start..start + len` on `axis` (fixed, in range, `len ≥ 1`).
pub fn slice_shape(a: &Shape, axis: usize, start: u32, len: u32) -> Option<Shape> {
    match a.0.get(axis) {
        Some(Dim::Fixed(n)) if len >= 1 && start.checked_add(len)? <= *n => {
            let mut s = a.clone();
            s.0[axis] = Dim::Fixed(len);
            Some(s)
        }
        _ => None,
    }
}

/// Rows of `table [V, D]` at `ids [N...]`: `[N..., D]`.
pub fn gather_shape(table: &Shape, ids: &Shape) -> Option<Shape> {
    match table.dims() {
        [Dim::Fixed(_), Dim::Fixed(d)] => {
            let mut s = ids.clone();
            s.0.push(Dim::Fixed(*d));
            Some(s)
        }
        _ => None,
    }
}

/// Rows of `g [N..., D]` summed by `ids [N...]` into `[V, D]`.
pub fn scatter_shape(ids: &Shape, g: &Shape, v: u32) -> Option<Shape> {
    match g.dims().split_last() {
        Some((Dim::Fixed(d), lead)) if lead == ids.dims() => {
            Some(Shape(vec![Dim::Fixed(v), Dim::Fixed(*d)]))
        }
        _ => None,
    }
}

impl Graph {
    /// `a` and `b` joined along `axis`. Panics if the shapes do not fit (a compiler bug:
    /// `check` validates user shapes).
    pub fn concat(&mut self, a: NodeId, b: NodeId, axis: usize) -> NodeId {
        let shape = concat_shape(self.shape(a), self.shape(b), axis)
            .unwrap_or_else(|| panic!("concat: %{} and %{} on axis {axis}", a.0, b.0));
        self.add(Op::Concat { axis: axis as u8 }, vec![a, b], shape)
    }

    /// Elements `start..start + len` of `a` along `axis`; `a` itself when that is all of it.
    pub fn slice(&mut self, a: NodeId, axis: usize, start: usize, len: usize) -> NodeId {
        if start == 0 && self.shape(a).0.get(axis) == Some(&Dim::Fixed(len as u32)) {
            return a;
        }
        let (start, len) = (start as u32, len as u32);
        let shape = slice_shape(self.shape(a), axis, start, len)
            .unwrap_or_else(|| panic!("slice: %{} axis {axis} {start}+{len}", a.0));
        self.add(Op::Slice { axis: axis as u8, start, len }, vec![a], shape)
    }

    /// `a` placed at `start..start + len` of a zero tensor whose `axis` has size `size`
    /// (the adjoint of [`Graph::slice`]): `a` between zero blocks, joined with `concat`.
    pub fn pad(&mut self, a: NodeId, axis: usize, start: usize, size: usize) -> NodeId {
        let shape = self.shape(a).clone();
        let len = shape.0[axis].size(0);
        let zeros = |g: &mut Graph, n: usize| {
            let mut s = shape.clone();
            s.0[axis] = Dim::Fixed(n as u32);
            g.constant(0.0, s)
        };
        let mut out = a;
        if start > 0 {
            let z = zeros(self, start);
            out = self.concat(z, out, axis);
        }
        if start + len < size {
            let z = zeros(self, size - start - len);
            out = self.concat(out, z, axis);
        }
        out
    }

    /// Rows of `table [V, D]` at `ids [N...]`.
    pub fn gather(&mut self, table: NodeId, ids: NodeId) -> NodeId {
        let shape = gather_shape(self.shape(table), self.shape(ids))
            .unwrap_or_else(|| panic!("gather: table %{} is not [V, D]", table.0));
        self.add(Op::Gather, vec![table, ids], shape)
    }

    /// Rows of `g [N..., D]` summed by `ids [N...]` into a `[v, D]` table.
    pub fn scatter_add(&mut self, ids: NodeId, g: NodeId, v: u32) -> NodeId {
        let shape = scatter_shape(self.shape(ids), self.shape(g), v)
            .unwrap_or_else(|| panic!("scatter_add: %{} does not fit ids %{}", g.0, ids.0));
        self.add(Op::ScatterAdd(v), vec![ids, g], shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(d: &[Dim]) -> Shape {
        Shape(d.to_vec())
    }
    const B: Dim = Dim::Batch;
    fn f(n: u32) -> Dim {
        Dim::Fixed(n)
    }

    #[test]
    fn concat_joins_a_fixed_axis_of_equal_shapes() {
        assert_eq!(concat_shape(&s(&[B, f(3)]), &s(&[B, f(4)]), 1), Some(s(&[B, f(7)])));
        assert_eq!(concat_shape(&s(&[f(2), f(3)]), &s(&[f(5), f(3)]), 0), Some(s(&[f(7), f(3)])));
        assert_eq!(concat_shape(&s(&[B, f(3)]), &s(&[B, f(4)]), 0), None);
        assert_eq!(concat_shape(&s(&[B, f(3)]), &s(&[f(2), f(4)]), 1), None);
        assert_eq!(concat_shape(&s(&[B, f(3)]), &s(&[B, f(3), f(1)]), 1), None);
        assert_eq!(concat_shape(&s(&[B, f(3)]), &s(&[B, f(3)]), 2), None);
    }

    #[test]
    fn slices_stay_in_range() {
        assert_eq!(slice_shape(&s(&[B, f(7)]), 1, 3, 4), Some(s(&[B, f(4)])));
        assert_eq!(slice_shape(&s(&[B, f(7)]), 1, 4, 4), None);
        assert_eq!(slice_shape(&s(&[B, f(7)]), 1, 0, 0), None);
        assert_eq!(slice_shape(&s(&[B, f(7)]), 0, 0, 1), None);
        assert_eq!(slice_shape(&s(&[B, f(7)]), 2, 0, 1), None);
    }

    #[test]
    fn gather_and_scatter_are_adjoint_in_shape() {
        let ids = s(&[B, f(4)]);
        let out = gather_shape(&s(&[f(50), f(8)]), &ids).unwrap();
        assert_eq!(out, s(&[B, f(4), f(8)]));
        assert_eq!(scatter_shape(&ids, &out, 50), Some(s(&[f(50), f(8)])));
        assert_eq!(scatter_shape(&s(&[B]), &out, 50), None);
        assert_eq!(gather_shape(&s(&[B, f(8)]), &ids), None);
    }
}
