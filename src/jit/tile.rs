//! Register-tiled f32 micro-kernels for the convolutions, on x86-64 with AVX2 and FMA
//! ([`available`]); elsewhere `window` keeps its im2col + `gemm` path.
//!
//! Why not the `gemm` crate here: a convolution's product `y [O, L] = k [O, K] · cols [K, L]`
//! has few output channels (16 in G's first stage), so each element of `cols` takes part in
//! only `2·O` flop, and the crate packs `cols` into its own panels first: a second copy of
//! the largest operand, as costly as the product itself at `O = 16`. Here only the kernel
//! (`O·K` floats, once per call) is packed, and B is read in place through [`Rows`]: a band
//! of `cols` small enough to stay in the L2 cache ([`Strided`]), or, at stride 1, shifted
//! views of the padded image with no `cols` at all ([`Shifted`]).
//!
//! [`outer`]: a `MR × NR` block of C (6 rows of 16 floats, 12 AVX registers) as a sum of
//! outer products, one per step along K: two vector loads of a B row, six broadcasts of A.
//! [`window_outer`] and [`taps_outer`] are the same block with A read through `MR` pointers
//! into a padded image instead of a packed panel, and B a small transposed operand (the
//! kernel, or the output gradient): the convolutions of `window`'s `gather` module, which
//! need no copy of the image at all. [`transpose`] moves their operands between `[O, L]`
//! and `[L, O]`.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Rows of C per block (rows of A per packed panel).
pub const MR: usize = 6;
/// Columns of C per block: two AVX vectors.
pub const NR: usize = 16;

/// The rows of a B operand `[k, n]`, each contiguous: row `t` starts at [`Rows::row`]`(t)`,
/// and at least `n` rounded up to [`NR`] floats can be read from there.
pub trait Rows: Copy {
    /// Where row `t` starts.
    fn row(self, t: usize) -> *const f32;
    /// The same operand from row `t0` and column `j` on.
    fn from(self, t0: usize, j: usize) -> Self;
}

/// A row-major matrix: row `t` at `b + t·ld`.
#[derive(Clone, Copy)]
pub struct Strided {
    b: *const f32,
    ld: usize,
}

impl Strided {
    /// `b` as `k` rows of stride `ld`, of which `n` columns are used.
    pub fn new(b: &[f32], ld: usize, (k, n): (usize, usize)) -> Strided {
        assert!(k == 0 || b.len() >= (k - 1) * ld + n.div_ceil(NR) * NR, "tile: B too short");
        Strided { b: b.as_ptr(), ld }
    }
}

impl Rows for Strided {
    fn row(self, t: usize) -> *const f32 {
        self.b.wrapping_add(t * self.ld)
    }
    fn from(self, t0: usize, j: usize) -> Self {
        Strided { b: self.b.wrapping_add(t0 * self.ld + j), ld: self.ld }
    }
}

/// Shifted views of one buffer: row `t` at `b + offs[t]` (a convolution's taps over a padded
/// image, [`crate::jit::window`]).
#[derive(Clone, Copy)]
pub struct Shifted<'a> {
    b: *const f32,
    offs: &'a [usize],
}

impl<'a> Shifted<'a> {
    /// The rows of `b` at `offs`, of which `n` columns are used.
    pub fn new(b: &[f32], offs: &'a [usize], n: usize) -> Shifted<'a> {
        let end = offs.iter().max().map_or(0, |o| o + n.div_ceil(NR) * NR);
        assert!(b.len() >= end, "tile: B too short");
        Shifted { b: b.as_ptr(), offs }
    }
}

impl Rows for Shifted<'_> {
    fn row(self, t: usize) -> *const f32 {
        self.b.wrapping_add(self.offs[t])
    }
    fn from(self, t0: usize, j: usize) -> Self {
        Shifted { b: self.b.wrapping_add(j), offs: &self.offs[t0..] }
    }
}

/// True if this machine runs the micro-kernels (AVX2 and FMA).
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A row-major `[m, k]` matrix as `ceil(m / MR)` panels of `k × MR` floats: panel `p` holds
/// `a[p·MR + r, t]` at `t·MR + r`, and 0 for rows past `m`.
pub fn pack_a(a: &[f32], m: usize, k: usize) -> Vec<f32> {
    let panels = m.div_ceil(MR);
    let mut out = vec![0.0; panels * k * MR];
    if k == 0 {
        return out;
    }
    for (r, row) in a[..m * k].chunks_exact(k).enumerate() {
        let panel = &mut out[r / MR * k * MR..];
        for (t, &v) in row.iter().enumerate() {
            panel[t * MR + r % MR] = v;
        }
    }
    out
}

/// `out [n, m] = aᵀ` for a row-major `a [m, n]`: 8×8 blocks transposed in registers where
/// [`available`] (each row of a block is one 32-byte load or store, so rows 4 KiB apart, which
/// share a set of the L1 cache, are each touched once per block), the rest element by element.
pub fn transpose(a: &[f32], (m, n): (usize, usize), out: &mut [f32]) {
    transpose_strided((a, n), (m, n), (out, m));
}

/// [`transpose`] with row strides: `out[j·ldo + i] = a[i·lda + j]` for `i < m`, `j < n`.
pub fn transpose_strided(
    (a, lda): (&[f32], usize),
    (m, n): (usize, usize),
    (out, ldo): (&mut [f32], usize),
) {
    if m == 0 || n == 0 {
        return;
    }
    let (a, out) = (&a[..(m - 1) * lda + n], &mut out[..(n - 1) * ldo + m]);
    let (m8, n8) = if available() { (m / 8 * 8, n / 8 * 8) } else { (0, 0) };
    for i in (0..m8).step_by(8) {
        for j in (0..n8).step_by(8) {
            // SAFETY: `available()`; rows i..i+8 of `a` hold columns j..j+8, rows j..j+8 of
            // `out` columns i..i+8 (the slices' lengths above).
            unsafe {
                transpose8(a[i * lda + j..].as_ptr(), lda, out[j * ldo + i..].as_mut_ptr(), ldo)
            };
        }
    }
    let rest = (0..m).flat_map(|i| (if i < m8 { n8 } else { 0 }..n).map(move |j| (i, j)));
    for (i, j) in rest {
        out[j * ldo + i] = a[i * lda + j];
    }
}

/// One 8×8 block of [`transpose`]: rows of `a` at stride `lda`, rows of `out` at `ldo`.
///
/// # Safety
/// [`available`] is true; 8 rows of 8 floats are readable at `a` and writable at `out`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn transpose8(a: *const f32, lda: usize, out: *mut f32, ldo: usize) {
    let r: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(a.add(i * lda)));
    let lo = |i: usize| _mm256_unpacklo_ps(r[i], r[i + 1]);
    let hi = |i: usize| _mm256_unpackhi_ps(r[i], r[i + 1]);
    let t = [lo(0), hi(0), lo(2), hi(2), lo(4), hi(4), lo(6), hi(6)];
    let u = [
        _mm256_shuffle_ps::<0x44>(t[0], t[2]),
        _mm256_shuffle_ps::<0xEE>(t[0], t[2]),
        _mm256_shuffle_ps::<0x44>(t[1], t[3]),
        _mm256_shuffle_ps::<0xEE>(t[1], t[3]),
        _mm256_shuffle_ps::<0x44>(t[4], t[6]),
        _mm256_shuffle_ps::<0xEE>(t[4], t[6]),
        _mm256_shuffle_ps::<0x44>(t[5], t[7]),
        _mm256_shuffle_ps::<0xEE>(t[5], t[7]),
    ];
    for i in 0..4 {
        _mm256_storeu_ps(out.add(i * ldo), _mm256_permute2f128_ps::<0x20>(u[i], u[i + 4]));
        _mm256_storeu_ps(out.add((i + 4) * ldo), _mm256_permute2f128_ps::<0x31>(u[i], u[i + 4]));
    }
}

/// Unreachable off x86-64 ([`available`] is false there).
///
/// # Safety
/// Never call it.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn transpose8(_a: *const f32, _lda: usize, _out: *mut f32, _ldo: usize) {
    unreachable!("tile::available() is false off x86-64")
}

/// A row-major `[m, k]` matrix, `m` a multiple of [`NR`], as the B operand `aᵀ [k, m]` of
/// [`window_outer`]: `m / NR` panels of `k × NR` floats, panel `p` holding `a[p·NR + o, t]`
/// at `t·NR + o`.
pub fn pack_bt(a: &[f32], m: usize, k: usize) -> Vec<f32> {
    assert!(m.is_multiple_of(NR), "tile: pack_bt takes whole panels");
    let mut out = vec![0.0; m * k];
    for (r, row) in a[..m * k].chunks_exact(k.max(1)).enumerate() {
        let panel = &mut out[r / NR * k * NR..];
        for (t, &v) in row.iter().enumerate() {
            panel[t * NR + r % NR] = v;
        }
    }
    out
}

/// `C = A · B` for `rows × cols` of C (at most `MR × NR`) with `A` one packed panel of
/// [`pack_a`] (`k × MR`), `B` the first `k` rows of `b`, `C` row-major with row stride `ldc`.
///
/// # Safety
/// [`available`] is true; `a` holds `k·MR` floats; `b`'s rows `t < k` hold `NR` readable
/// floats each (columns past `cols` are read, never used); `c` holds `rows` rows of `cols`
/// writable floats at stride `ldc`, overlapping neither input.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn outer<R: Rows>(
    k: usize,
    a: *const f32,
    b: R,
    c: *mut f32,
    ldc: usize,
    (rows, cols): (usize, usize),
    accumulate: bool,
) {
    let mut acc = [[_mm256_setzero_ps(); 2]; MR];
    for t in 0..k {
        let row = b.row(t);
        let b0 = _mm256_loadu_ps(row);
        let b1 = _mm256_loadu_ps(row.add(8));
        let at = a.add(t * MR);
        for (r, acc) in acc.iter_mut().enumerate() {
            let av = _mm256_broadcast_ss(&*at.add(r));
            acc[0] = _mm256_fmadd_ps(av, b0, acc[0]);
            acc[1] = _mm256_fmadd_ps(av, b1, acc[1]);
        }
    }
    if cols == NR {
        for (r, acc) in acc.iter().enumerate().take(rows) {
            let (c0, c1) = (c.add(r * ldc), c.add(r * ldc + 8));
            if accumulate {
                _mm256_storeu_ps(c0, _mm256_add_ps(_mm256_loadu_ps(c0), acc[0]));
                _mm256_storeu_ps(c1, _mm256_add_ps(_mm256_loadu_ps(c1), acc[1]));
            } else {
                _mm256_storeu_ps(c0, acc[0]);
                _mm256_storeu_ps(c1, acc[1]);
            }
        }
        return;
    }
    let mut tile = [0f32; NR];
    for (r, acc) in acc.iter().enumerate().take(rows) {
        _mm256_storeu_ps(tile.as_mut_ptr(), acc[0]);
        _mm256_storeu_ps(tile.as_mut_ptr().add(8), acc[1]);
        let row = std::slice::from_raw_parts_mut(c.add(r * ldc), cols);
        for (c, v) in row.iter_mut().zip(tile) {
            *c = if accumulate { *c + v } else { v };
        }
    }
}

/// Unreachable off x86-64 ([`available`] is false there).
///
/// # Safety
/// Never call it.
#[cfg(not(target_arch = "x86_64"))]
pub unsafe fn outer<R: Rows>(
    _k: usize,
    _a: *const f32,
    _b: R,
    _c: *mut f32,
    _ldc: usize,
    _size: (usize, usize),
    _accumulate: bool,
) {
    unreachable!("tile::available() is false off x86-64")
}

/// `C += Σ_t A_t ⊗ B_t` for a `MR × NR` block of C, the sum running over the positions of
/// `rows` output rows of `cols` positions each: `B_t` is row `t = i·cols + j` of `b` (row
/// stride `ldb`, `NR` floats read), `A_t` the `MR` floats at `a[r] + i·row_step + j·COL`
/// (a convolution's kernel gradient, [`crate::jit::window`]: `a[r]` the padded image seen
/// through tap `r`, `b` the output gradient transposed). `C` is row-major with row stride
/// `ldc`. `COL` is the input step between output columns (the stride along W).
///
/// # Safety
/// [`available`] is true; every address named above is readable, `c` holds `MR` rows of `NR`
/// writable floats at stride `ldc`, overlapping neither input.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn taps_outer<const COL: usize>(
    a: [*const f32; MR],
    (rows, cols, row_step): (usize, usize, usize),
    (b, ldb): (*const f32, usize),
    (c, ldc): (*mut f32, usize),
) {
    let mut acc = [[_mm256_setzero_ps(); 2]; MR];
    let mut bt = b;
    for i in 0..rows {
        let mut at = a.map(|p| p.add(i * row_step));
        for _ in 0..cols {
            let b0 = _mm256_loadu_ps(bt);
            let b1 = _mm256_loadu_ps(bt.add(8));
            for (acc, p) in acc.iter_mut().zip(&mut at) {
                let av = _mm256_broadcast_ss(&**p);
                acc[0] = _mm256_fmadd_ps(av, b0, acc[0]);
                acc[1] = _mm256_fmadd_ps(av, b1, acc[1]);
                // Past the last read after the last column: never dereferenced.
                *p = p.wrapping_add(COL);
            }
            bt = bt.wrapping_add(ldb);
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        let (c0, c1) = (c.add(r * ldc), c.add(r * ldc + 8));
        _mm256_storeu_ps(c0, _mm256_add_ps(_mm256_loadu_ps(c0), acc[0]));
        _mm256_storeu_ps(c1, _mm256_add_ps(_mm256_loadu_ps(c1), acc[1]));
    }
}

/// Unreachable off x86-64 ([`available`] is false there).
///
/// # Safety
/// Never call it.
#[cfg(not(target_arch = "x86_64"))]
pub unsafe fn taps_outer<const COL: usize>(
    _a: [*const f32; MR],
    _rows: (usize, usize, usize),
    _b: (*const f32, usize),
    _c: (*mut f32, usize),
) {
    unreachable!("tile::available() is false off x86-64")
}

/// `C = Σ_t A_t ⊗ B_t` for a `MR × NR` block of C, the sum running over `k` taps: `B_t` is
/// row `t` of `b` (`NR` floats, contiguous rows), `A_t` the `MR` floats at `a[r] + offs[t]`
/// (a convolution seen from its output positions, [`crate::jit::window`]: `a[r]` the padded
/// image at the corner of output position `r`'s window, `offs[t]` where tap `t` lies in the
/// window, `b` the kernel transposed). C is row-major with row stride `ldc`, overwritten,
/// or added to with `ADD`.
///
/// # Safety
/// [`available`] is true; every address named above is readable, `c` holds `MR` rows of `NR`
/// writable floats at stride `ldc`, overlapping neither input.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn window_outer<const ADD: bool>(
    a: [*const f32; MR],
    offs: &[usize],
    b: *const f32,
    (c, ldc): (*mut f32, usize),
) {
    let mut acc: [[__m256; 2]; MR] = match ADD {
        true => std::array::from_fn(|r| {
            [_mm256_loadu_ps(c.add(r * ldc)), _mm256_loadu_ps(c.add(r * ldc + 8))]
        }),
        false => [[_mm256_setzero_ps(); 2]; MR],
    };
    let mut bt = b;
    for &off in offs {
        let b0 = _mm256_loadu_ps(bt);
        let b1 = _mm256_loadu_ps(bt.add(8));
        for (acc, p) in acc.iter_mut().zip(&a) {
            let av = _mm256_broadcast_ss(&*p.add(off));
            acc[0] = _mm256_fmadd_ps(av, b0, acc[0]);
            acc[1] = _mm256_fmadd_ps(av, b1, acc[1]);
        }
        bt = bt.wrapping_add(NR);
    }
    for (r, acc) in acc.iter().enumerate() {
        _mm256_storeu_ps(c.add(r * ldc), acc[0]);
        _mm256_storeu_ps(c.add(r * ldc + 8), acc[1]);
    }
}

/// Unreachable off x86-64 ([`available`] is false there).
///
/// # Safety
/// Never call it.
#[cfg(not(target_arch = "x86_64"))]
pub unsafe fn window_outer<const ADD: bool>(
    _a: [*const f32; MR],
    _offs: &[usize],
    _b: *const f32,
    _c: (*mut f32, usize),
) {
    unreachable!("tile::available() is false off x86-64")
}

/// Steps along K per pass over C: a B block of `KC × NR` floats (16 KiB) and an A panel
/// (6 KiB) stay in the L1 cache while a block of C is summed; later passes add to C.
pub const KC: usize = 256;

/// `C [m, n] = A · B` for `A` packed by [`pack_a`] (`m` rows, `k` columns) and `B` `[k, n]`
/// ([`Strided`] or [`Shifted`], whose constructors check its length); `C` row-major with row
/// stride `ldc`. Each B block of `KC × NR` is used by every panel of A before the next.
///
/// # Safety
/// [`available`] is true; the slices' lengths are checked.
pub unsafe fn product<R: Rows>(
    a: &[f32],
    (m, n, k): (usize, usize, usize),
    b: R,
    c: &mut [f32],
    ldc: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(a.len() >= m.div_ceil(MR) * k * MR, "tile: A too short");
    assert!(c.len() >= (m - 1) * ldc + n, "tile: C too short");
    if k == 0 {
        // An empty sum.
        return c.chunks_mut(ldc).take(m).for_each(|row| row[..n].fill(0.0));
    }
    for j in (0..n).step_by(NR) {
        for k0 in (0..k).step_by(KC) {
            let kc = (k - k0).min(KC);
            for p in 0..m.div_ceil(MR) {
                let size = ((m - p * MR).min(MR), (n - j).min(NR));
                let panel = a.as_ptr().add(p * k * MR + k0 * MR);
                let at = c.as_mut_ptr().add(p * MR * ldc + j);
                outer(kc, panel, b.from(k0, j), at, ldc, size, k0 > 0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_matches_the_definition() {
        for (m, n) in [(1, 1), (8, 8), (16, 1024), (1024, 16), (13, 21), (24, 9), (0, 5)] {
            let a: Vec<f32> = (0..m * n).map(|i| i as f32).collect();
            let mut out = vec![f32::NAN; m * n];
            transpose(&a, (m, n), &mut out);
            for i in 0..m {
                for j in 0..n {
                    assert_eq!(out[j * m + i], a[i * n + j], "({m},{n}) at ({i},{j})");
                }
            }
        }
    }

    #[test]
    fn strided_transpose_touches_only_its_elements() {
        // Row strides past the rows' lengths (as Winograd's rows of an image into a padded
        // channel-last buffer); the gaps in `out` keep their values.
        for (m, n, lda, ldo) in
            [(16, 32, 1024, 16), (16, 32, 40, 24), (13, 21, 21, 15), (8, 3, 5, 9)]
        {
            let a: Vec<f32> = (0..(m - 1) * lda + n).map(|i| i as f32).collect();
            let mut out = vec![-1.0; (n - 1) * ldo + m];
            transpose_strided((&a, lda), (m, n), (&mut out, ldo));
            for (at, &v) in out.iter().enumerate() {
                let (j, i) = (at / ldo, at % ldo);
                let want = if i < m { a[i * lda + j] } else { -1.0 };
                assert_eq!(v, want, "({m},{n},{lda},{ldo}) at {at}");
            }
        }
    }

    #[test]
    fn product_matches_the_definition_on_ragged_sizes() {
        if !available() {
            return;
        }
        for (m, n, k) in [(1, 1, 1), (6, 16, 3), (7, 17, 5), (16, 64, 150), (13, 40, 0), (5, 3, 9)]
        {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32 - 6.0) / 4.0).collect();
            let ldb = n + 3;
            let b: Vec<f32> =
                (0..k * ldb + NR).map(|i| ((i * 5 % 11) as f32 - 5.0) / 8.0).collect();
            let ldc = n + 2;
            let mut c = vec![f32::NAN; m * ldc];
            let rows = Strided::new(&b, ldb, (k, n));
            unsafe { product(&pack_a(&a, m, k), (m, n, k), rows, &mut c, ldc) };
            for i in 0..m {
                for j in 0..ldc {
                    let got = c[i * ldc + j];
                    if j >= n {
                        assert!(got.is_nan(), "({m},{n},{k}) wrote outside C at ({i},{j})");
                        continue;
                    }
                    let want: f64 =
                        (0..k).map(|t| a[i * k + t] as f64 * b[t * ldb + j] as f64).sum();
                    assert!((got as f64 - want).abs() < 1e-3, "({m},{n},{k}) at ({i},{j})");
                }
            }
        }
    }
}
