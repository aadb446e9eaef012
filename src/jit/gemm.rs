//! Row-major f32 matrix products for the JIT: `C (+)= op(A) · op(B)` through the `gemm`
//! crate (single-threaded kernels, `Parallelism::None`), with transposes folded into the
//! strides (never copied) and large products split across the [`Pool`].
//!
//! Shapes (all buffers dense and row-major):
//!
//! | operand | `op(X)` shape | stored as            | row stride, col stride of `op(X)` |
//! | ------- | ------------- | -------------------- | --------------------------------- |
//! | A       | `[m, k]`      | `[m, k]`, or `[k, m]` when `ta` | `(k, 1)`, or `(1, m)`  |
//! | B       | `[k, n]`      | `[k, n]`, or `[n, k]` when `tb` | `(n, 1)`, or `(1, k)`  |
//! | C       | `[m, n]`      | `[m, n]`             | `(n, 1)`                          |
//!
//! `accumulate = false` overwrites C (C is never read, so it may hold garbage, even NaN);
//! `accumulate = true` adds the product to C.
//!
//! Threads: a product of `2·m·n·k` flop at or above [`PAR_MIN_FLOP`] on a pool of more than
//! one thread is cut into one part per thread, along the rows of C when `m ≥ n`, else along
//! its columns; every part is an independent single-threaded gemm on disjoint rows (columns)
//! of C, so each element of C is computed by exactly one thread, over the whole `k` sum.
//! Part boundaries are rounded to multiples of [`SPLIT_ALIGN`] so the micro-kernel's
//! tiles stay full.
//!
//! Column-major C: the gemm crate packs `A·Bᵀ` (B stored `[n, k]`) slowly when C is row-major
//! and much wider than tall (the forward products `x·Wᵀ`), and runs `Aᵀ·B` with a narrow C
//! (a weight gradient of a layer with few inputs) with its micro-kernel mostly idle. Such
//! products ([`Product::c_cm`]) are computed column-major into a per-thread scratch buffer
//! (grown once, reused by every later call) and transposed into C; the tables in the docs of
//! [`CM_MIN_WIDTH`] and [`CM_MAX_NARROW`] give the measurements.
//!
//! JIT code calls [`nnc_gemm`] (an `extern "C"` function; see its contract).

use std::cell::RefCell;

use super::pool::{split_point, Pool};

/// Products of fewer flop than this run on the calling thread only. The second vCPU of this
/// machine kind adds 0-90% and waking a parked worker costs tens of µs, so only products of
/// a few milliseconds are worth splitting: with the AVX-512 kernels C's 1.0e8-flop products
/// (about 1 ms) ran slower split (2 threads 0.93x of 1), D's 1e9-flop ones 1.8x faster (see
/// BENCHMARKS.md for the measurements).
pub const PAR_MIN_FLOP: f64 = 2.5e8;

/// Part boundaries are multiples of this many rows or columns (when the dimension allows).
pub const SPLIT_ALIGN: usize = 16;

/// A product `A·Bᵀ` (`tb`, not `ta`) goes through a column-major scratch C when
/// `n ≥ CM_MIN_WIDTH·m`, `n ≥ 128`, `k ≥ 256` and `m ≥ 2`. Medians of 9 rounds here
/// (AVX-512 kernels, one thread), row-major C vs column-major C plus the transpose:
///
/// | m×n×k          | row-major C | column-major + transpose |
/// | -------------- | ----------- | ------------------------ |
/// | 256×2048×2048  | 27.0 ms     | 23.5 ms                  |
/// | 256×1024×2048  | 18.3 ms     | 15.1 ms                  |
/// | 128×512×512    | 1.40 ms     | 1.04 ms                  |
/// | 32×2048×2048   | 9.5 ms      | 3.7 ms                   |
/// | 64×128×784     | 0.159 ms    | 0.147 ms (n = 2m: left alone) |
/// | 256×256×256    | 0.251 ms    | 0.318 ms                 |
/// | 128×10×512     | 0.036 ms    | 0.072 ms                 |
pub const CM_MIN_WIDTH: usize = 4;

/// A product `Aᵀ·B` (`ta`, not `tb`: a weight gradient `dYᵀ·x`) goes through a column-major
/// scratch C when it is narrow, `n ≤ CM_MAX_NARROW` and `m ≥ 2n` (a first layer with few
/// inputs): the crate's micro-kernel runs along the contiguous dimension of C, which row-major
/// would make the narrow one. GFLOP/s here (median of 9), row-major C vs column-major C
/// (the transpose of an `m×n` this small costs well under 1%):
///
/// | m×n×k       | row-major C | column-major C |
/// | ----------- | ----------- | -------------- |
/// | 64×10×256   | 33.5        | 129.7          |
/// | 32×4×128    | 10.8        | 94.4           |
/// | 1024×2×256  | 6.2         | 41.4           |
/// | 64×32×256   | 81.6        | 101.6          |
/// | 32×32×32    | 61.4        | 64.1 (m < 2n: left alone) |
/// | 10×128×64   | 84.8        | 24.3           |
pub const CM_MAX_NARROW: usize = 32;

/// True if `C = op(A)·op(B)` runs faster computed column-major (see [`CM_MIN_WIDTH`],
/// [`CM_MAX_NARROW`]).
fn column_major_c((m, n, k): (usize, usize, usize), ta: bool, tb: bool) -> bool {
    let wide = tb && !ta && n >= CM_MIN_WIDTH * m && n >= 128 && k >= 256 && m >= 2;
    let narrow = ta && !tb && n <= CM_MAX_NARROW && m >= 2 * n;
    wide || narrow
}

/// `flags` bit of [`nnc_gemm`]: A is stored transposed (`[k, m]`).
pub const GEMM_TA: u32 = 1;
/// `flags` bit of [`nnc_gemm`]: B is stored transposed (`[n, k]`).
pub const GEMM_TB: u32 = 2;
/// `flags` bit of [`nnc_gemm`]: add the product to C instead of overwriting it.
pub const GEMM_ACC: u32 = 4;

/// One product's operands as raw pointers with strides (the layout table in the module doc).
#[derive(Clone, Copy)]
struct Product {
    m: usize,
    n: usize,
    k: usize,
    a: *const f32,
    a_rs: isize,
    a_cs: isize,
    b: *const f32,
    b_rs: isize,
    b_cs: isize,
    c: *mut f32,
    accumulate: bool,
    /// Compute C column-major in a scratch buffer, then transpose it into C (module doc).
    c_cm: bool,
}

thread_local! {
    /// The column-major C of [`Product::c_cm`] products run on this thread.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

// SAFETY: a Product is only shared by `split`, whose parts write disjoint parts of C.
unsafe impl Sync for Product {}

impl Product {
    /// The operands of `C (+)= op(A)·op(B)`; pointers are not dereferenced here.
    fn new(
        (m, n, k): (usize, usize, usize),
        a: *const f32,
        ta: bool,
        b: *const f32,
        tb: bool,
        c: *mut f32,
        accumulate: bool,
    ) -> Product {
        let (a_rs, a_cs) = if ta { (1, m as isize) } else { (k as isize, 1) };
        let (b_rs, b_cs) = if tb { (1, k as isize) } else { (n as isize, 1) };
        let c_cm = column_major_c((m, n, k), ta, tb);
        Product { m, n, k, a, a_rs, a_cs, b, b_rs, b_cs, c, accumulate, c_cm }
    }

    fn flop(&self) -> f64 {
        2.0 * self.m as f64 * self.n as f64 * self.k as f64
    }

    /// Rows `r0..r1` of C: the same B, A and C moved down by `r0` rows.
    fn rows(&self, r0: usize, r1: usize) -> Product {
        Product {
            m: r1 - r0,
            a: self.a.wrapping_offset(r0 as isize * self.a_rs),
            c: self.c.wrapping_add(r0 * self.n),
            ..*self
        }
    }

    /// Columns `c0..c1` of C: the same A, B and C moved right by `c0` columns (C keeps its
    /// row stride `n`).
    fn cols(&self, c0: usize, c1: usize) -> Product {
        Product {
            n: c1 - c0,
            b: self.b.wrapping_offset(c0 as isize * self.b_cs),
            c: self.c.wrapping_add(c0),
            ..*self
        }
    }

    /// Runs the product on this thread.
    ///
    /// # Safety
    /// The pointers address the buffers the layout table describes for this product's
    /// (`m`, `n`, `k`); C does not overlap A or B.
    unsafe fn run_here(&self, c_rs: isize) {
        if self.m == 0 || self.n == 0 {
            return;
        }
        if self.k == 0 {
            // An empty sum: C = 0, or C unchanged when accumulating.
            if !self.accumulate {
                for i in 0..self.m {
                    std::ptr::write_bytes(self.c.offset(i as isize * c_rs), 0, self.n);
                }
            }
            return;
        }
        if !self.c_cm {
            return self.gemm(self.c, 1, c_rs, self.accumulate);
        }
        SCRATCH.with_borrow_mut(|scratch| {
            let (m, n) = (self.m, self.n);
            if scratch.len() < m * n {
                scratch.resize(m * n, 0.0);
            }
            self.gemm(scratch.as_mut_ptr(), m as isize, 1, false);
            transpose_into(&scratch[..m * n], m, n, self.c, c_rs as usize, self.accumulate);
        })
    }

    /// The gemm crate's product into `c` with the given column and row strides.
    ///
    /// # Safety
    /// As [`Product::run_here`], with `c` addressing this product's C in those strides.
    unsafe fn gemm(&self, c: *mut f32, c_cs: isize, c_rs: isize, accumulate: bool) {
        gemm::gemm(
            self.m,
            self.n,
            self.k,
            c,
            c_cs,
            c_rs,
            accumulate,
            self.a,
            self.a_cs,
            self.a_rs,
            self.b,
            self.b_cs,
            self.b_rs,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }

    /// Runs the product, split across `pool` when it has at least `min_flop` flop.
    ///
    /// # Safety
    /// As [`Product::run_here`].
    unsafe fn run(&self, pool: Option<&Pool>, min_flop: f64) {
        let c_rs = self.n as isize;
        let pool = match pool {
            Some(p) if p.threads() > 1 && self.flop() >= min_flop => p,
            _ => return self.run_here(c_rs),
        };
        let by_rows = self.m >= self.n;
        let len = if by_rows { self.m } else { self.n };
        let parts = pool.threads().min(len.div_ceil(SPLIT_ALIGN)).max(1);
        let me = *self;
        pool.parallel_for(parts, &|p| {
            let (lo, hi) = aligned_part(len, parts, p);
            let part = if by_rows { me.rows(lo, hi) } else { me.cols(lo, hi) };
            // SAFETY: the parts cover disjoint rows (or columns) of C; the rest is read-only.
            unsafe { part.run_here(c_rs) }
        });
    }
}

/// `C (+)= Sᵀ` for a column-major `m×n` S (`S[j·m + i]` is element `(i, j)`) and a row-major
/// C of row stride `c_rs`, in 8×8 tiles so both sides are read and written a line at a time.
///
/// # Safety
/// `c` addresses an `m×n` block of row stride `c_rs` that nothing else accesses meanwhile
/// (other threads may write other columns of the same rows, so no slice spans the rows).
unsafe fn transpose_into(s: &[f32], m: usize, n: usize, c: *mut f32, c_rs: usize, acc: bool) {
    let put = |i: usize, j: usize, v: f32| {
        // SAFETY: (i, j) lies in the block, per the contract.
        let c = unsafe { &mut *c.add(i * c_rs + j) };
        *c = if acc { *c + v } else { v };
    };
    let (m8, n8) = (m / 8 * 8, n / 8 * 8);
    for i0 in (0..m8).step_by(8) {
        for j0 in (0..n8).step_by(8) {
            let mut tile = [[0f32; 8]; 8];
            for (jj, col) in s[j0 * m + i0..].chunks(m).take(8).enumerate() {
                for ii in 0..8 {
                    tile[ii][jj] = col[ii];
                }
            }
            for (ii, row) in tile.iter().enumerate() {
                row.iter().enumerate().for_each(|(jj, &v)| put(i0 + ii, j0 + jj, v));
            }
        }
    }
    let rest = (0..m8).flat_map(|i| (n8..n).map(move |j| (i, j)));
    for (i, j) in rest.chain((m8..m).flat_map(|i| (0..n).map(move |j| (i, j)))) {
        put(i, j, s[j * m + i]);
    }
}

/// Part `p` of `0..len` cut into `parts` pieces whose inner boundaries are multiples of
/// [`SPLIT_ALIGN`] (the last piece takes the remainder).
fn aligned_part(len: usize, parts: usize, p: usize) -> (usize, usize) {
    let blocks = len.div_ceil(SPLIT_ALIGN);
    let (a, b) = split_point(blocks, parts, p);
    ((a * SPLIT_ALIGN).min(len), (b * SPLIT_ALIGN).min(len))
}

/// Checks that the slices hold the shapes the layout table asks for.
fn check_lengths(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &[f32]) {
    assert_eq!(a.len(), m * k, "matmul: A must hold m·k = {}·{} values", m, k);
    assert_eq!(b.len(), k * n, "matmul: B must hold k·n = {}·{} values", k, n);
    assert_eq!(c.len(), m * n, "matmul: C must hold m·n = {}·{} values", m, n);
}

/// `C (+)= op(A)·op(B)` on the calling thread (layouts in the module doc).
///
/// Panics if a slice's length is not the one its shape asks for.
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    ta: bool,
    b: &[f32],
    tb: bool,
    c: &mut [f32],
    accumulate: bool,
) {
    matmul_on(None, m, n, k, a, ta, b, tb, c, accumulate)
}

/// As [`matmul`], split across `pool`'s threads when the product is large (module doc).
#[allow(clippy::too_many_arguments)]
pub fn matmul_on(
    pool: Option<&Pool>,
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    ta: bool,
    b: &[f32],
    tb: bool,
    c: &mut [f32],
    accumulate: bool,
) {
    check_lengths(m, n, k, a, b, c);
    let p = Product::new((m, n, k), a.as_ptr(), ta, b.as_ptr(), tb, c.as_mut_ptr(), accumulate);
    // SAFETY: the lengths were checked; `c` is a unique borrow, so it overlaps neither input.
    unsafe { p.run(pool, PAR_MIN_FLOP) }
}

/// The trampoline JIT code calls: `C (+)= op(A)·op(B)` with `flags` a combination of
/// [`GEMM_TA`], [`GEMM_TB`], [`GEMM_ACC`], split across `pool` when large. In Cranelift
/// terms the signature is `(i64 pool, i64 m, i64 n, i64 k, i64 a, i64 b, i64 c, i32 flags)`
/// with the host's C calling convention, and no return value.
///
/// # Safety
/// - `pool` is null (run on the calling thread) or points to a live [`Pool`];
/// - `a` points to `m·k` readable f32, `b` to `k·n`, `c` to `m·n` writable f32, laid out as
///   the module doc's table says for the flags' transposes (any pointer may be dangling
///   when its count is 0);
/// - `c` overlaps neither `a` nor `b`, and nothing else accesses `c` during the call;
/// - with [`GEMM_ACC`], `c` holds initialized values.
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn nnc_gemm(
    pool: *const Pool,
    m: u64,
    n: u64,
    k: u64,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    flags: u32,
) {
    let p = Product::new(
        (m as usize, n as usize, k as usize),
        a,
        flags & GEMM_TA != 0,
        b,
        flags & GEMM_TB != 0,
        c,
        flags & GEMM_ACC != 0,
    );
    p.run(pool.as_ref(), PAR_MIN_FLOP)
}

/// The `nnc_gemm` signature, for storing the trampoline's address.
pub type GemmFn =
    unsafe extern "C" fn(*const Pool, u64, u64, u64, *const f32, *const f32, *mut f32, u32);

#[cfg(test)]
mod tests {
    use super::*;

    /// A value that is not a small integer pattern, deterministic in `(seed, i)`.
    fn data(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| {
                let h = (i as u32).wrapping_mul(2654435761).wrapping_add(seed.wrapping_mul(40503));
                ((h >> 8) % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    /// The oracle: the textbook triple loop over the stored layouts, in f64.
    #[allow(clippy::too_many_arguments)]
    fn naive(
        (m, n, k): (usize, usize, usize),
        a: &[f32],
        ta: bool,
        b: &[f32],
        tb: bool,
        c0: &[f32],
        acc: bool,
    ) -> Vec<f32> {
        let mut c = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = if acc { c0[i * n + j] as f64 } else { 0.0 };
                for p in 0..k {
                    let av = if ta { a[p * m + i] } else { a[i * k + p] };
                    let bv = if tb { b[j * k + p] } else { b[p * n + j] };
                    s += av as f64 * bv as f64;
                }
                c[i * n + j] = s as f32;
            }
        }
        c
    }

    fn close(got: &[f32], want: &[f32], k: usize) -> bool {
        let tol = 1e-5 * (k as f32).max(1.0);
        got.iter().zip(want).all(|(g, w)| (g - w).abs() <= tol * (1.0 + w.abs()))
    }

    /// Every transpose/accumulate combination of one shape against the oracle; products of
    /// `min_flop` or more are split across `pool`.
    fn check(pool: Option<&Pool>, min_flop: f64, (m, n, k): (usize, usize, usize)) {
        for (ta, tb, acc) in (0..8).map(|bits| (bits & 1 != 0, bits & 2 != 0, bits & 4 != 0)) {
            let (a, b) = (data(m * k, 1), data(k * n, 2));
            let c0 = data(m * n, 3);
            let want = naive((m, n, k), &a, ta, &b, tb, &c0, acc);
            let mut c = if acc { c0.clone() } else { vec![f32::NAN; m * n] };
            let p = Product::new((m, n, k), a.as_ptr(), ta, b.as_ptr(), tb, c.as_mut_ptr(), acc);
            unsafe { p.run(pool, min_flop) };
            assert!(
                close(&c, &want, k),
                "m {m} n {n} k {k} ta {ta} tb {tb} acc {acc}: {:?} vs {:?}",
                &c[..c.len().min(4)],
                &want[..want.len().min(4)]
            );
        }
    }

    #[test]
    fn matches_the_triple_loop_for_every_transpose_and_odd_sizes() {
        let sizes = [1, 7, 33, 65];
        for &m in &sizes {
            for &n in &sizes {
                for &k in &sizes {
                    check(None, PAR_MIN_FLOP, (m, n, k));
                }
            }
        }
    }

    #[test]
    fn column_major_c_products_match_the_triple_loop() {
        // Wide, deep A·Bᵀ products and narrow Aᵀ·B ones take the scratch-and-transpose path;
        // odd sizes exercise the tiles' tails, forced splits (by columns for the wide ones, by
        // rows for the narrow ones) the parts' offsets and row stride.
        let wide = [(2, 128, 256), (7, 130, 260), (33, 257, 300), (9, 1000, 256)];
        let narrow = [(64, 10, 256), (33, 7, 65), (70, 32, 3), (16, 1, 5)];
        let cases =
            wide.map(|d| (d, false, true)).into_iter().chain(narrow.map(|d| (d, true, false)));
        for (dims, ta, tb) in cases {
            let (m, n, k) = dims;
            assert!(column_major_c(dims, ta, tb), "{m}x{n}x{k} should take the column-major path");
            check(None, PAR_MIN_FLOP, dims);
            for threads in [2, 3] {
                check(Some(&Pool::new(threads)), 0.0, dims);
            }
        }
    }

    #[test]
    fn empty_products() {
        check(None, PAR_MIN_FLOP, (0, 5, 3));
        check(None, PAR_MIN_FLOP, (4, 0, 3));
        // k = 0: C = 0 (overwrite) or unchanged (accumulate).
        let mut c = vec![f32::NAN; 6];
        matmul(2, 3, 0, &[], false, &[], false, &mut c, false);
        assert_eq!(c, vec![0.0; 6]);
        let mut c = vec![2.5; 6];
        matmul(2, 3, 0, &[], false, &[], false, &mut c, true);
        assert_eq!(c, vec![2.5; 6]);
    }

    #[test]
    fn split_products_match_the_triple_loop() {
        // Forced splits (threshold 0): by rows (m ≥ n) and by columns, sizes around the
        // alignment, two and three threads.
        for threads in [2, 3] {
            let pool = Pool::new(threads);
            for dims in [(70, 45, 33), (17, 90, 7), (33, 33, 65), (1, 40, 3), (50, 16, 1)] {
                check(Some(&pool), 0.0, dims);
            }
        }
    }

    #[test]
    fn the_public_api_splits_large_products() {
        let (m, n, k) = (256, 512, 1000);
        assert!(2.0 * (m * n * k) as f64 >= PAR_MIN_FLOP);
        let (a, b) = (data(m * k, 7), data(k * n, 8));
        let mut one = vec![0.0; m * n];
        let mut two = vec![0.0; m * n];
        matmul(m, n, k, &a, false, &b, true, &mut one, false);
        matmul_on(Some(&Pool::new(2)), m, n, k, &a, false, &b, true, &mut two, false);
        assert!(close(&two, &one, k));
        // Spot-check the one-thread result against the oracle on a few entries.
        for (i, j) in [(0, 0), (255, 511), (100, 300)] {
            let want: f64 = (0..k).map(|p| a[i * k + p] as f64 * b[j * k + p] as f64).sum();
            assert!((one[i * n + j] as f64 - want).abs() < 1e-3, "({i}, {j})");
        }
    }

    #[test]
    fn aligned_parts_cover_the_range() {
        for len in [1usize, 15, 16, 17, 100, 1000] {
            for parts in 1..=4 {
                let parts = parts.min(len.div_ceil(SPLIT_ALIGN));
                let mut next = 0;
                for p in 0..parts {
                    let (a, b) = aligned_part(len, parts, p);
                    assert_eq!(a, next);
                    assert!(b > a || len == 0, "len {len} parts {parts} p {p}");
                    assert!(a % SPLIT_ALIGN == 0);
                    next = b;
                }
                assert_eq!(next, len);
            }
        }
    }

    #[test]
    fn the_trampoline_reads_flags_and_pool() {
        let (m, n, k) = (7, 33, 65);
        let (a, b) = (data(m * k, 4), data(k * n, 5));
        let c0 = data(m * n, 6);
        let pool = Pool::new(2);
        for pool in [std::ptr::null(), &pool as *const Pool] {
            for flags in 0..8u32 {
                let (ta, tb, acc) = (flags & GEMM_TA != 0, flags & GEMM_TB != 0, flags & 4 != 0);
                let want = naive((m, n, k), &a, ta, &b, tb, &c0, acc);
                let mut c = c0.clone();
                let f: GemmFn = nnc_gemm;
                unsafe {
                    f(
                        pool,
                        m as u64,
                        n as u64,
                        k as u64,
                        a.as_ptr(),
                        b.as_ptr(),
                        c.as_mut_ptr(),
                        flags,
                    )
                };
                assert!(close(&c, &want, k), "flags {flags}");
            }
        }
    }

    /// The measurement behind `PAR_MIN_FLOP` (BENCHMARKS.md): 1-thread vs forced 2-thread
    /// times of MLP-shaped products, with some single-threaded memory work between calls so
    /// the worker parks as in a training step. Run on a quiet machine with
    /// `cargo test --release --lib split_speedup -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn split_speedup() {
        use std::time::Instant;
        let (one, two) = (Pool::new(1), Pool::new(2));
        let mut other = vec![1.0f32; 1 << 16];
        let shapes = [(64, 128, 128), (64, 128, 784), (128, 256, 256), (128, 512, 512)];
        for (m, n, k) in shapes.into_iter().chain([(128, 512, 784), (256, 2048, 1024)]) {
            let (a, b, mut c) = (data(m * k, 1), data(k * n, 2), vec![0.0; m * n]);
            let mut time = |pool: &Pool| {
                let p = Product::new(
                    (m, n, k),
                    a.as_ptr(),
                    false,
                    b.as_ptr(),
                    true,
                    c.as_mut_ptr(),
                    false,
                );
                let mut best = f64::MAX;
                for _ in 0..20 {
                    other.iter_mut().for_each(|x| *x = *x * 0.999 + 0.001);
                    let t0 = Instant::now();
                    unsafe { p.run(Some(pool), 0.0) };
                    best = best.min(t0.elapsed().as_secs_f64());
                }
                best
            };
            let (t1, t2) = (time(&one), time(&two));
            let flop = 2.0 * (m * n * k) as f64;
            println!(
                "{m}x{n}x{k}: {flop:.1e} flop, 1 thread {:.0} µs, 2 threads {:.0} µs, x{:.2}",
                t1 * 1e6,
                t2 * 1e6,
                t1 / t2
            );
        }
    }

    #[test]
    #[should_panic(expected = "A must hold")]
    fn wrong_lengths_panic() {
        let mut c = vec![0.0; 4];
        matmul(2, 2, 2, &[1.0; 3], false, &[1.0; 4], false, &mut c, false);
    }
}
