//! Register-tiled f32 micro-kernels for the convolutions, on x86-64 with AVX2 and FMA
//! ([`available`]); elsewhere `window` keeps its im2col + `gemm` path.
//!
//! Why not the `gemm` crate here: a convolution's product `y [O, L] = k [O, K] · cols [K, L]`
//! has few output channels (16 in G's first stage), so each element of `cols` takes part in
//! only `2·O` flop, and the crate packs `cols` into its own panels first: a second copy of
//! the largest operand, as costly as the product itself at `O = 16`. Here `cols` is read in
//! place, a band of output rows at a time small enough to stay in the L2 cache, and only the
//! kernel (`O·K` floats, once per call) is packed.
//!
//! [`outer`]: a `MR × NR` block of C (6 rows of 16 floats, 12 AVX registers) as a sum of
//! outer products, one per step along K: two vector loads of a B row, six broadcasts of A.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Rows of C per block (rows of A per packed panel).
pub const MR: usize = 6;
/// Columns of C per block: two AVX vectors.
pub const NR: usize = 16;

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

/// `C = A · B` for `rows × cols` of C (at most `MR × NR`) with `A` one packed panel of
/// [`pack_a`] (`k × MR`), `B` row-major with row stride `ldb`, `C` row-major with row stride
/// `ldc`.
///
/// # Safety
/// [`available`] is true; `a` holds `k·MR` floats; `b` holds `NR` readable floats from each
/// `t·ldb`, `t < k` (columns past `cols` are read, never used); `c` holds `rows` rows of
/// `cols` writable floats at stride `ldc`, overlapping neither input.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn outer(
    k: usize,
    a: *const f32,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    (rows, cols): (usize, usize),
    accumulate: bool,
) {
    let mut acc = [[_mm256_setzero_ps(); 2]; MR];
    for t in 0..k {
        let b0 = _mm256_loadu_ps(b.add(t * ldb));
        let b1 = _mm256_loadu_ps(b.add(t * ldb + 8));
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
pub unsafe fn outer(
    _k: usize,
    _a: *const f32,
    _b: *const f32,
    _ldb: usize,
    _c: *mut f32,
    _ldc: usize,
    _size: (usize, usize),
    _accumulate: bool,
) {
    unreachable!("tile::available() is false off x86-64")
}

/// Steps along K per pass over C: a B block of `KC × NR` floats (16 KiB) and an A panel
/// (6 KiB) stay in the L1 cache while a block of C is summed; later passes add to C.
pub const KC: usize = 256;

/// `C [m, n] = A · B` for `A` packed by [`pack_a`] (`m` rows, `k` columns) and `B` row-major
/// `[k, n]` with row stride `ldb` and at least `NR − 1` readable floats after its last
/// row's `n`; `C` row-major with row stride `ldc`. Each B block of `KC × NR` is used by
/// every panel of A before the next.
///
/// # Safety
/// [`available`] is true; the slices' lengths are checked.
pub unsafe fn product(
    a: &[f32],
    (m, n, k): (usize, usize, usize),
    b: &[f32],
    ldb: usize,
    c: &mut [f32],
    ldc: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(a.len() >= m.div_ceil(MR) * k * MR, "tile: A too short");
    assert!(k == 0 || b.len() >= (k - 1) * ldb + n.div_ceil(NR) * NR, "tile: B too short");
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
                outer(kc, panel, b.as_ptr().add(k0 * ldb + j), ldb, at, ldc, size, k0 > 0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            unsafe { product(&pack_a(&a, m, k), (m, n, k), &b, ldb, &mut c, ldc) };
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
