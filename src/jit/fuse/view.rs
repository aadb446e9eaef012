//! Symbolic sizes and strided views: how a value is laid out in the buffer it is read from.
//!
//! Every size of a JIT program is a monomial `c·Bᵉ` ([`Sym`]) in the batch size `B`, with
//! `e ≤ 1` (a shape has at most one batch dimension; `fuse` rejects others up front). A
//! view is a shape plus one stride per dimension, in elements of its base buffer; broadcast,
//! transpose and most reshapes are views and cost nothing.
//!
//! [`classify`] decides how a kernel reads a view at a point `(i, j)` of its `rows × cols`
//! domain, where the flat index of an element is `i·cols + j`:
//!
//! ```text
//! Full    base[i·cols + j]     the value has the domain's own layout
//! Row     base[i]              one value per row   (e.g. [B,1] broadcast to [B,10])
//! RowMap  base[(i / d) % m]    one value per row, shared by rows (a per-channel [C]
//!                              broadcast to images [B,C,H,W] read in a (B·C)×(H·W)
//!                              domain is `i % C`; in (B·C·H)×W it is `(i / H) % C`)
//! Col     base[j]              one value per column (e.g. a bias [10] broadcast to [B,10])
//! Scalar  base[0]              one value
//! ```
//! Anything else (a transposed read, a broadcast in the middle) is not a pattern: the
//! operand is first copied by a gather kernel.

use std::fmt;

use crate::graph::{Dim, Shape};

/// A size `c·Bᵉ` with `e ∈ {0, 1}`; zero is always `0·B⁰`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sym {
    pub c: u64,
    pub e: u8,
}

impl Sym {
    pub const ZERO: Sym = Sym { c: 0, e: 0 };
    pub const ONE: Sym = Sym { c: 1, e: 0 };

    pub fn fixed(c: u64) -> Sym {
        Sym { c, e: 0 }
    }
    pub fn of(d: Dim) -> Sym {
        match d {
            Dim::Batch => Sym { c: 1, e: 1 },
            Dim::Fixed(n) => Sym::fixed(n as u64),
        }
    }
    /// The product; `None` if it would have `B²`.
    pub fn checked_mul(self, o: Sym) -> Option<Sym> {
        if self.c == 0 || o.c == 0 {
            return Some(Sym::ZERO);
        }
        let e = self.e + o.e;
        (e <= 1).then_some(Sym { c: self.c * o.c, e })
    }
    /// The size when it does not depend on `B`.
    pub fn constant(self) -> Option<u64> {
        (self.e == 0).then_some(self.c)
    }
    pub fn is_one(self) -> bool {
        self == Sym::ONE
    }
    pub fn has_batch(self) -> bool {
        self.e > 0
    }
    /// The concrete size for batch size `batch`.
    pub fn eval(self, batch: usize) -> usize {
        self.c as usize * if self.e == 1 { batch } else { 1 }
    }
    /// The product of `dims`.
    pub fn product(dims: &[Sym]) -> Sym {
        dims.iter().fold(Sym::ONE, |a, &d| a * d)
    }
}

/// The product of sizes known to be a dimension product of one valid shape (so at most
/// one `B`; `fuse` checks every shape first).
impl std::ops::Mul for Sym {
    type Output = Sym;
    fn mul(self, o: Sym) -> Sym {
        self.checked_mul(o).expect("a product of dimensions of one shape has at most one B")
    }
}

impl fmt::Display for Sym {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match (self.c, self.e) {
            (c, 0) => write!(f, "{c}"),
            (1, _) => write!(f, "B"),
            (c, _) => write!(f, "{c}·B"),
        }
    }
}

/// The dims of `s` as sizes; `None` if the shape has more than one batch dimension.
pub fn dims_of(s: &Shape) -> Option<Vec<Sym>> {
    let dims: Vec<Sym> = s.dims().iter().map(|&d| Sym::of(d)).collect();
    dims.iter().try_fold(Sym::ONE, |a, &d| a.checked_mul(d))?;
    Some(dims)
}

/// Row-major strides of `dims`.
pub fn contiguous(dims: &[Sym]) -> Vec<Sym> {
    let mut s = vec![Sym::ONE; dims.len()];
    for k in (0..dims.len().saturating_sub(1)).rev() {
        s[k] = s[k + 1] * dims[k + 1];
    }
    s
}

/// True if `strides[k] = scale · contiguous(dims)[k]` on every non-unit dim (a unit dim's
/// index is always 0, so its stride never matters). `scale = 0` means all-zero strides.
pub fn linear(dims: &[Sym], strides: &[Sym], scale: Sym) -> bool {
    let c = contiguous(dims);
    dims.iter().zip(strides.iter().zip(&c)).all(|(d, (s, c))| {
        d.is_one()
            || match (scale == Sym::ZERO, c.checked_mul(scale)) {
                (true, _) => *s == Sym::ZERO,
                (false, Some(want)) => *s == want,
                (false, None) => false,
            }
    })
}

/// Strides of `a` (dims `from`, strides `st`) broadcast NumPy-style to `to`.
pub fn broadcast(from: &[Sym], st: &[Sym], to: &[Sym]) -> Vec<Sym> {
    let lead = to.len() - from.len();
    (0..to.len())
        .map(|k| match k.checked_sub(lead) {
            Some(j) if !from[j].is_one() => st[j],
            _ => Sym::ZERO,
        })
        .collect()
}

/// Strides of a reshape of `(from, st)` to `to`, if it is still a strided view: a
/// contiguous or all-zero view stays one, and dropping or inserting unit dims keeps the
/// strides of the others.
pub fn reshape(from: &[Sym], st: &[Sym], to: &[Sym]) -> Option<Vec<Sym>> {
    if linear(from, st, Sym::ONE) {
        return Some(contiguous(to));
    }
    if linear(from, st, Sym::ZERO) {
        return Some(vec![Sym::ZERO; to.len()]);
    }
    let keep = |d: &[Sym], s: &[Sym]| -> Vec<(Sym, Sym)> {
        d.iter().zip(s).filter(|(d, _)| !d.is_one()).map(|(d, s)| (*d, *s)).collect()
    };
    let old = keep(from, st);
    let new_dims: Vec<Sym> = to.iter().copied().filter(|d| !d.is_one()).collect();
    if old.iter().map(|p| p.0).ne(new_dims.iter().copied()) {
        return None;
    }
    let mut it = old.iter().map(|p| p.1);
    Some(to.iter().map(|d| if d.is_one() { Sym::ZERO } else { it.next().unwrap() }).collect())
}

/// How a kernel value is indexed; also how a load or store addresses its buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pat {
    Full,
    Row,
    /// A load only (a Row-level value): `base[(i / div) % modulo]`, never the identity map.
    RowMap(RowMap),
    Col,
    Scalar,
}

/// The index `(i / div) % modulo` of a row `i` (no `%` when `modulo` is `None`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RowMap {
    pub div: u64,
    pub modulo: Option<u64>,
}

/// The [`RowMap`] by which the row index `i` of a row-major walk over `dims` addresses the
/// view `(dims, strides)`, if it is one other than the identity: innermost, dims of stride 0
/// (their product is `div`); then a contiguous run (stride 1, then each the product of the
/// ones inside; its size is `modulo`); then, outermost, dims of stride 0 again (none: no
/// `%`). Unit dims do not count; `div` and `modulo` are constants.
pub fn row_map(dims: &[Sym], strides: &[Sym]) -> Option<RowMap> {
    let axes: Vec<(Sym, Sym)> =
        dims.iter().zip(strides).filter(|(d, _)| !d.is_one()).map(|(d, s)| (*d, *s)).collect();
    let inner = axes.iter().rev().take_while(|(_, s)| *s == Sym::ZERO).count();
    let div = Sym::product(&axes[axes.len() - inner..].iter().map(|a| a.0).collect::<Vec<_>>());
    let rest = &axes[..axes.len() - inner];
    let (mut run, mut want) = (0, Sym::ONE);
    for (d, s) in rest.iter().rev() {
        if *s != want {
            break;
        }
        run += 1;
        want = want.checked_mul(*d)?;
    }
    let outer = &rest[..rest.len() - run];
    if run == 0 || outer.iter().any(|(_, s)| *s != Sym::ZERO) {
        return None;
    }
    let modulo = if outer.is_empty() { None } else { Some(want.constant()?) };
    let map = RowMap { div: div.constant()?, modulo };
    (map != RowMap { div: 1, modulo: None }).then_some(map)
}

/// Where in a kernel's domain a value varies: `Inv` (once per kernel), `Row` (once per
/// row `i`), `Col` (per column `j`), `Elem` (per element). `Row ⊔ Col = Elem`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    Inv,
    Row,
    Col,
    Elem,
}

impl Level {
    pub fn join(self, o: Level) -> Level {
        match (self, o) {
            (Level::Row, Level::Col) | (Level::Col, Level::Row) => Level::Elem,
            (a, b) => a.max(b),
        }
    }
    /// True if a value of level `self` is available where level `o` is computed.
    pub fn within(self, o: Level) -> bool {
        self.join(o) == o
    }
    /// The pattern a value of this level is stored and reloaded with (never a
    /// [`Pat::RowMap`]).
    pub fn pat(self) -> Pat {
        match self {
            Level::Inv => Pat::Scalar,
            Level::Row => Pat::Row,
            Level::Col => Pat::Col,
            Level::Elem => Pat::Full,
        }
    }
}

/// The domain of a loop kernel: `rows × cols` points `(i, j)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Domain {
    pub rows: Sym,
    pub cols: Sym,
}

impl Domain {
    /// `rows = product of all but the last dim`, `cols = last dim` (`1 × 1` for a scalar).
    pub fn of_dims(dims: &[Sym]) -> Domain {
        match dims.split_last() {
            Some((last, rest)) => Domain { rows: Sym::product(rest), cols: *last },
            None => Domain { rows: Sym::ONE, cols: Sym::ONE },
        }
    }
    /// How many values a value of `level` has.
    pub fn count(self, level: Level) -> Sym {
        match level {
            Level::Inv => Sym::ONE,
            Level::Row => self.rows,
            Level::Col => self.cols,
            Level::Elem => self.rows * self.cols,
        }
    }
    /// The index `split` with `product(dims[split..]) = cols`, if any.
    pub fn split(self, dims: &[Sym]) -> Option<usize> {
        (0..=dims.len()).rev().find(|&s| Sym::product(&dims[s..]) == self.cols)
    }
    /// True if a value of level `have`, kept in registers, is what pattern `p` reads at
    /// level `at` (same index at every point).
    pub fn same_index(self, have: Level, p: Pat) -> bool {
        let (r1, c1) = (self.rows.is_one(), self.cols.is_one());
        match (have, p) {
            (Level::Elem, Pat::Full) | (Level::Row, Pat::Row) | (Level::Inv, Pat::Scalar) => true,
            (Level::Elem, Pat::Row) => c1,
            (Level::Elem, Pat::Col) => r1,
            (Level::Elem, Pat::Scalar) | (Level::Inv, Pat::Full) => r1 && c1,
            (Level::Row, Pat::Full) => c1,
            (Level::Row, Pat::Scalar) | (Level::Inv, Pat::Row) => r1,
            (Level::Inv, Pat::Col) => c1,
            // A mapped row is another row's value: never the one in registers.
            (_, Pat::RowMap(_)) => false,
            _ => false,
        }
    }
}

/// How a value of `level` in domain `dom` reads the view `(dims, strides)`, or `None` if
/// no pattern fits. Patterns are tried in the order Full, Row, Col, Scalar, so that a
/// degenerate domain (one row or one column) gets the most specific one.
pub fn classify(dims: &[Sym], strides: &[Sym], level: Level, dom: Domain) -> Option<Pat> {
    match level {
        Level::Inv => Some(Pat::Scalar),
        Level::Row | Level::Col => {
            // Every dim indexes the one varying coordinate.
            if linear(dims, strides, Sym::ONE) {
                Some(if level == Level::Row { Pat::Row } else { Pat::Col })
            } else if linear(dims, strides, Sym::ZERO) {
                Some(Pat::Scalar)
            } else {
                let map = row_map(dims, strides).filter(|_| level == Level::Row);
                map.map(Pat::RowMap)
            }
        }
        Level::Elem => {
            if linear(dims, strides, Sym::ONE) {
                return Some(Pat::Full);
            }
            if let Some(s) = dom.split(dims) {
                let (pd, sd) = dims.split_at(s);
                let (ps, ss) = strides.split_at(s);
                let fits = |a: Sym, b: Sym| linear(pd, ps, a) && linear(sd, ss, b);
                let table = [
                    (Pat::Full, dom.cols, Sym::ONE),
                    (Pat::Row, Sym::ONE, Sym::ZERO),
                    (Pat::Col, Sym::ZERO, Sym::ONE),
                    (Pat::Scalar, Sym::ZERO, Sym::ZERO),
                ];
                if let Some((p, _, _)) = table.iter().find(|(_, a, b)| fits(*a, *b)) {
                    return Some(*p);
                }
                if linear(sd, ss, Sym::ZERO) {
                    if let Some(map) = row_map(pd, ps) {
                        return Some(Pat::RowMap(map));
                    }
                }
            }
            linear(dims, strides, Sym::ZERO).then_some(Pat::Scalar)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Sym = Sym { c: 1, e: 1 };
    fn f(c: u64) -> Sym {
        Sym::fixed(c)
    }

    #[test]
    fn sizes_multiply_and_print() {
        assert_eq!(f(10) * B, Sym { c: 10, e: 1 });
        assert_eq!(B.checked_mul(B), None);
        assert_eq!(f(0) * B, Sym::ZERO);
        assert_eq!(format!("{} {} {}", f(7), B, f(3) * B), "7 B 3·B");
        assert_eq!(contiguous(&[B, f(4), f(3)]), vec![f(12), f(3), f(1)]);
    }

    #[test]
    fn broadcast_patterns_of_a_batch_by_ten_domain() {
        let dom = Domain { rows: B, cols: f(10) };
        let to = [B, f(10)];
        // A bias [10] → Col; a per-row value [B,1] → Row; a scalar → Scalar; itself → Full.
        let bias = broadcast(&[f(10)], &[f(1)], &to);
        assert_eq!(classify(&to, &bias, Level::Elem, dom), Some(Pat::Col));
        let per_row = broadcast(&[B, f(1)], &[f(1), f(1)], &to);
        assert_eq!(classify(&to, &per_row, Level::Elem, dom), Some(Pat::Row));
        let s = broadcast(&[], &[], &to);
        assert_eq!(classify(&to, &s, Level::Elem, dom), Some(Pat::Scalar));
        assert_eq!(classify(&to, &contiguous(&to), Level::Elem, dom), Some(Pat::Full));
        // A transposed read is no pattern.
        let t = [f(10), B];
        assert_eq!(
            classify(&t, &[f(1), f(10)], Level::Elem, Domain { rows: f(10), cols: B }),
            None
        );
    }

    #[test]
    fn reshapes_that_stay_views() {
        // [B] → [B,1] keeps the stride; a zero-stride view stays zero.
        assert_eq!(reshape(&[B], &[f(1)], &[B, f(1)]), Some(vec![f(1), f(1)]));
        assert_eq!(reshape(&[B], &[Sym::ZERO], &[B, f(1)]), Some(vec![Sym::ZERO, Sym::ZERO]));
        // A transposed [3,2] read as [6] is not a view.
        assert_eq!(reshape(&[f(3), f(2)], &[f(1), f(3)], &[f(6)]), None);
        // Transposed with unit dims inserted keeps its strides.
        let r = reshape(&[f(3), f(2)], &[f(1), f(3)], &[f(3), f(1), f(2)]);
        assert_eq!(r, Some(vec![f(1), Sym::ZERO, f(3)]));
    }

    #[test]
    fn per_channel_reads_of_images_are_mapped_rows() {
        let img = [B, f(16), f(32), f(32)];
        let chan = broadcast(&[f(16), f(1), f(1)], &[f(1), f(1), f(1)], &img);
        let per_image = broadcast(&[B, f(16), f(1), f(1)], &[f(16), f(1), f(1), f(1)], &img);
        let map = |div, modulo| Some(Pat::RowMap(RowMap { div, modulo }));
        // (B·C)×(H·W): a channel's value is row i % C, an (image, channel) value row i.
        let wide = Domain { rows: f(16) * B, cols: f(1024) };
        assert_eq!(classify(&img, &chan, Level::Elem, wide), map(1, Some(16)));
        assert_eq!(classify(&img, &per_image, Level::Elem, wide), Some(Pat::Row));
        // (B·C·H)×W: rows (i / H) % C and i / H.
        let narrow = Domain { rows: f(512) * B, cols: f(32) };
        assert_eq!(classify(&img, &chan, Level::Elem, narrow), map(32, Some(16)));
        assert_eq!(classify(&img, &per_image, Level::Elem, narrow), map(32, None));
        // Read at Row level in (B·C)×(H·W).
        let rows = [B, f(16)];
        let chan_rows = broadcast(&[f(16)], &[f(1)], &rows);
        assert_eq!(classify(&rows, &chan_rows, Level::Row, wide), map(1, Some(16)));
        assert_eq!(classify(&rows, &chan_rows, Level::Col, wide), None);
        // Neither the identity nor a transposed read is a map; nor a batch-sized modulo.
        assert_eq!(row_map(&[B, f(16)], &[f(16), f(1)]), None);
        assert_eq!(row_map(&[f(4), f(16)], &[f(1), f(4)]), None);
        assert_eq!(row_map(&[f(2), B, f(3)], &[Sym::ZERO, f(1), Sym::ZERO]), None);
        assert_eq!(
            row_map(&[f(2), f(5), f(1), f(3)], &[Sym::ZERO, f(1), Sym::ZERO, Sym::ZERO]),
            Some(RowMap { div: 3, modulo: Some(5) })
        );
    }

    #[test]
    fn degenerate_domains_prefer_the_specific_pattern() {
        let one_row = Domain { rows: f(1), cols: f(8) };
        assert_eq!(classify(&[f(8)], &[f(1)], Level::Elem, one_row), Some(Pat::Full));
        assert_eq!(classify(&[f(8)], &[Sym::ZERO], Level::Elem, one_row), Some(Pat::Row));
        assert!(one_row.same_index(Level::Row, Pat::Scalar));
        let dom = Domain { rows: B, cols: f(10) };
        assert!(!dom.same_index(Level::Row, Pat::Full));
        assert!(dom.same_index(Level::Inv, Pat::Scalar));
    }
}
