//! The window ops at run time ([`crate::graph::window`]): convolutions as matrix products,
//! and max pooling's pick and route as direct loops (module `pool`). JIT code calls
//! [`nnc_window`] with a [`Geometry`] it lays out on its stack.
//!
//! One example `n` and one group `G` of a convolution, with `K = C/g·kh·kw` rows of taps and
//! `L = Ho·Wo` output positions:
//!
//! ```text
//! cols  [K, L]     = im2col(x[n], group G)        (taps in the padding read 0)
//! conv              y[n, G]  [O/g, L] = k[G] [O/g, K] · cols
//! conv_grad_input   dcols    [K, L]   = k[G]ᵀ · dy[n, G];   dx[n, G] = col2im(dcols)
//! conv_grad_kernel  dk[G]    [O/g, K] = Σ_n dy[n, G] · colsᵀ
//! ```
//!
//! Products, on a machine with AVX2 and FMA ([`tile::available`]):
//! - a forward 3×3 convolution at stride 1 without dilation, with input channels per group
//!   in multiples of 8 and output channels per group in blocks of 16, runs by Winograd's
//!   F(2×2, 3×3): 16 products for each 2×2 block of outputs instead of 36 (module
//!   `winograd`), and so does its kernel gradient on images of at least 64 such blocks;
//! - any other forward convolution or kernel gradient with output channels per group in
//!   blocks of 16 and a stride along W of 1 or 2 reads `cols` in place from the padded
//!   image, one register block of output positions (or taps) against 16 channels at a time
//!   (module `gather`);
//! - any other forward convolution with a real window (not 1×1) runs through [`tile`]'s
//!   packed-kernel micro-kernel: at stride 1 `cols`' rows are shifted views of a zero-padded
//!   copy of the image ([`conv_shifted`]); at other strides `cols` is made one band of
//!   output rows at a time ([`BAND_FLOATS`]) and read in place;
//! - an input gradient at stride 1 is the forward convolution of `dy` with the flipped
//!   kernel (`Geometry::transposed`), so it takes one of the two paths above; at a larger
//!   stride, without dilation, with input channels per group in blocks of 16, it is one
//!   stride-1 product per phase of the input positions (module `gather`).
//!
//! Every other product (1×1 forward at stride 1, the remaining input and kernel gradients,
//! machines without AVX2) calls [`matmul`], the `gemm` crate, over an im2col copy (none for
//! a 1×1 kernel at stride 1 without padding, whose `cols` is the image). Scratch lives in a
//! per-thread buffer, grown once. The paths sum in different orders, so their results
//! differ in the last bits.
//!
//! Threads: a window op of at least [`PAR_MIN_FLOP`] flop or [`PAR_MIN_FLOATS`] floats of
//! images (`Geometry::splits`) on a pool of more than one thread splits the batch into one
//! contiguous part per thread. Forward ops and `conv_grad_input` write disjoint examples;
//! `conv_grad_kernel` sums each part's examples into its own partial kernel and adds the
//! partials in part order, so a given thread count always gives the same bits.

use std::cell::RefCell;

mod gather;
mod pool;
mod winograd;

use super::gemm::matmul;
use super::pool::{split_point, Pool};
use super::tile;
use crate::graph::Window;

/// Window ops of fewer flop than this run on the calling thread (see the module doc). With
/// 4e6, every convolution of F (1.1e7-2.0e7 flop at batch 64) split and two threads ran F at
/// 1.03× one thread (0.85-1.18 over 3 rounds), G's (2.8e7-1.5e8 at batch 32) at 1.34×
/// (1.15-1.38): BENCHMARKS.md, session of 2026-12-07. Splitting pays from G's 7.5e7-flop
/// convolutions up, not at F's sizes.
pub const PAR_MIN_FLOP: f64 = 5.0e7;

/// Window ops that read and write at least this many floats of images (both per-example
/// operands over the batch) also split: G's 1×1 stride-2 shortcut convolutions (8.4e6 flop,
/// 7.9e5 floats) and its 3-channel first convolution (2.8e7 flop, 6.2e5 floats), whose
/// time goes to moving the data more than to the products; F's largest takes 2.8e5.
pub const PAR_MIN_FLOATS: usize = 1 << 19;

/// Which op a [`Geometry`] describes.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WindowOp {
    /// `(x, k) -> y`
    Conv = 0,
    /// `(dy, k) -> dx`
    ConvGradInput = 1,
    /// `(x, dy) -> dk`
    ConvGradKernel = 2,
    /// `(s, h) -> y`
    PoolPick = 3,
    /// `(s, dy) -> dx`
    PoolRoute = 4,
}

/// Everything but the batch size about one window op: images `[N, c, h, w]`, outputs
/// `[N, o, ho, wo]` (for pooling `o = c`), the kernel, stride, padding, dilation and groups.
/// Sixteen `u32` in this order, as JIT code stores them.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Geometry {
    pub op: u32,
    pub c: u32,
    pub h: u32,
    pub w: u32,
    pub o: u32,
    pub ho: u32,
    pub wo: u32,
    pub kh: u32,
    pub kw: u32,
    pub sh: u32,
    pub sw: u32,
    pub ph: u32,
    pub pw: u32,
    pub dh: u32,
    pub dw: u32,
    pub groups: u32,
}

impl Geometry {
    /// Op `op` with window `win` on images `[N, c, h, w]` whose (forward) outputs are
    /// `[N, o, ho, wo]`.
    pub fn new(op: WindowOp, win: &Window, [c, h, w]: [u32; 3], [o, ho, wo]: [u32; 3]) -> Geometry {
        let [kh, kw] = win.kernel.map(u32::from);
        let [sh, sw] = win.stride.map(u32::from);
        let [ph, pw] = win.pad.map(u32::from);
        let [dh, dw] = win.dilation.map(u32::from);
        let (op, groups) = (op as u32, win.groups as u32);
        Geometry { op, c, h, w, o, ho, wo, kh, kw, sh, sw, ph, pw, dh, dw, groups }
    }

    /// The fields in memory order.
    pub fn words(&self) -> [u32; 16] {
        let g = self;
        [
            g.op, g.c, g.h, g.w, g.o, g.ho, g.wo, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw,
            g.groups,
        ]
    }
    fn op(&self) -> WindowOp {
        match self.op {
            0 => WindowOp::Conv,
            1 => WindowOp::ConvGradInput,
            2 => WindowOp::ConvGradKernel,
            3 => WindowOp::PoolPick,
            _ => WindowOp::PoolRoute,
        }
    }
    /// Floats of one example's image, output; of the kernel.
    fn sizes(&self) -> (usize, usize, usize) {
        let image = (self.c * self.h * self.w) as usize;
        let out = (self.o * self.ho * self.wo) as usize;
        (image, out, self.o as usize * self.k_rows())
    }
    /// `K`: taps of one output channel.
    fn k_rows(&self) -> usize {
        (self.c / self.groups * self.kh * self.kw) as usize
    }
    /// `L`: output positions.
    fn l(&self) -> usize {
        (self.ho * self.wo) as usize
    }
    /// True when im2col is the identity (1×1, stride 1, no padding).
    fn pointwise(&self) -> bool {
        (self.kh, self.kw, self.sh, self.sw, self.ph, self.pw) == (1, 1, 1, 1, 0, 0)
    }
    /// True if the op on `n` examples is large enough to split across threads
    /// ([`PAR_MIN_FLOP`], [`PAR_MIN_FLOATS`]).
    pub fn splits(&self, n: usize) -> bool {
        let (image, out, _) = self.sizes();
        self.flop(n) >= PAR_MIN_FLOP || n * (image + out) >= PAR_MIN_FLOATS
    }
    /// Flop of the op on `n` examples.
    pub fn flop(&self, n: usize) -> f64 {
        match self.op() {
            WindowOp::PoolPick | WindowOp::PoolRoute => {
                (n * self.sizes().1) as f64 * (self.kh * self.kw) as f64
            }
            _ => 2.0 * n as f64 * self.sizes().1 as f64 * self.k_rows() as f64,
        }
    }
    /// For a `conv_grad_input` at stride 1 (not 1×1 unpadded, which copies nothing anyway),
    /// the forward convolution that computes it: over `dy` as the image, with the kernel
    /// flipped and its channel axes swapped ([`Geometry::flipped_kernel`]) and the padding
    /// `dilation·(k − 1) − padding`:
    /// `dx[c, y, x] = Σ_{o,a,b} dy[o, y − p' + a·d, x − p' + b·d] · k[o, c, kh−1−a, kw−1−b]`.
    /// One im2col of `dy` and one product per group replace the product into `dcols`
    /// (`K·L` floats written, then read again by col2im), when that im2col is no larger than
    /// `dcols` (`O·H·W ≤ C·Ho·Wo`). Measured with `nnc bench --profile`, one thread:
    ///
    /// | conv_grad_input | `O·H·W` vs `C·Ho·Wo` | dcols + col2im | transposed |
    /// | --------------- | ------------------- | -------------- | ---------- |
    /// | G, 16→16 3×3 on 32×32, batch 32 | 16384 = 16384 | 9.9 ms | 4.7 ms |
    /// | F, 6→16 5×5 on 12×12, batch 64 | 2304 > 384 | 0.95 ms | 3.3 ms |
    fn transposed(&self) -> Option<Geometry> {
        let reach = |d: u32, k: u32| d * (k - 1);
        let fits = self.op() == WindowOp::ConvGradInput
            && (self.sh, self.sw) == (1, 1)
            && !self.pointwise()
            && self.ph <= reach(self.dh, self.kh)
            && self.pw <= reach(self.dw, self.kw)
            && self.o * self.h * self.w <= self.c * self.ho * self.wo;
        fits.then(|| Geometry {
            op: WindowOp::Conv as u32,
            c: self.o,
            h: self.ho,
            w: self.wo,
            o: self.c,
            ho: self.h,
            wo: self.w,
            ph: reach(self.dh, self.kh) - self.ph,
            pw: reach(self.dw, self.kw) - self.pw,
            ..*self
        })
    }

    /// `k [O, C/g, kh, kw]` as the kernel of [`Geometry::transposed`]: `[C, O/g, kh, kw]`
    /// with `kf[G·C/g + c, o, a, b] = k[G·O/g + o, c, kh−1−a, kw−1−b]`.
    fn flipped_kernel(&self, k: &[f32]) -> Vec<f32> {
        let (cg, og) = ((self.c / self.groups) as usize, (self.o / self.groups) as usize);
        let (kh, kw) = (self.kh as usize, self.kw as usize);
        let mut f = vec![0.0; k.len()];
        for grp in 0..self.groups as usize {
            for o in 0..og {
                for c in 0..cg {
                    for a in 0..kh {
                        for b in 0..kw {
                            let from = (((grp * og + o) * cg + c) * kh + a) * kw + b;
                            let to =
                                (((grp * cg + c) * og + o) * kh + kh - 1 - a) * kw + kw - 1 - b;
                            f[to] = k[from];
                        }
                    }
                }
            }
        }
        f
    }

    /// The input position along H (`a = 0`) or W (`a = 1`) that tap `t` of output position
    /// `i` reads; `None` in the padding.
    fn tap(&self, a: usize, i: usize, t: usize) -> Option<usize> {
        self.window().tap(a, i, t, if a == 0 { self.h } else { self.w } as usize)
    }

    /// The graph's geometry of this op (the inverse of [`Geometry::new`]'s window part).
    fn window(&self) -> Window {
        let pair = |a: u32, b: u32| [a as u16, b as u16];
        Window {
            kernel: pair(self.kh, self.kw),
            stride: pair(self.sh, self.sw),
            pad: pair(self.ph, self.pw),
            dilation: pair(self.dh, self.dw),
            groups: self.groups as u16,
        }
    }
}

thread_local! {
    /// The `cols` (or `dcols`) of the convolutions run on this thread.
    static COLS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// For tap `b` along W: the output columns `j_lo..j_hi` whose input column
/// `j·sw + b·dw − pw` lies in the image, and the input column of `j_lo`.
fn col_range(g: &Geometry, b: usize) -> (usize, usize, usize) {
    let (sw, w, wo) = (g.sw as usize, g.w as usize, g.wo as usize);
    let shift = b * g.dw as usize;
    let pw = g.pw as usize;
    // j·sw + shift ≥ pw  and  j·sw + shift < w + pw
    let lo = pw.saturating_sub(shift).div_ceil(sw).min(wo);
    let hi = (w + pw).saturating_sub(shift).div_ceil(sw).clamp(lo, wo);
    (lo, hi, (lo * sw + shift).saturating_sub(pw))
}

/// `cols [K, (i1 − i0)·Wo]` of the channels `c0..c0 + C/g` of one example's image `x`, for
/// the output rows `i0..i1`: row `(c, a, b)` holds, at output position `(i, j)`, the pixel
/// that tap `(a, b)` reads (0 in the padding). Whole runs of columns are copied: one copy per
/// output row, or per tap when the output rows are as wide as the input's
/// ([`same_width_row`]).
fn im2col(
    g: &Geometry,
    x: &[f32],
    c0: usize,
    (i0, i1): (usize, usize),
    (cols, ld): (&mut [f32], usize),
) {
    let (h, w, wo) = (g.h as usize, g.w as usize, g.wo as usize);
    let l = (i1 - i0) * wo;
    let same_width = (g.sh, g.sw) == (1, 1) && wo == w;
    let mut rows = cols.chunks_mut(ld).map(|row| &mut row[..l]);
    for c in c0..c0 + (g.c / g.groups) as usize {
        let plane = &x[c * h * w..(c + 1) * h * w];
        for a in 0..g.kh as usize {
            for b in 0..g.kw as usize {
                let row = rows.next().expect("K rows");
                let (lo, hi, x0) = col_range(g, b);
                if same_width {
                    same_width_row(g, plane, a, (lo, hi, x0), (i0, i1), row);
                    continue;
                }
                for (i, out) in (i0..i1).zip(row.chunks_exact_mut(wo)) {
                    let Some(y) = g.tap(0, i, a) else {
                        out.fill(0.0);
                        continue;
                    };
                    out[..lo].fill(0.0);
                    out[hi..].fill(0.0);
                    if hi > lo {
                        copy_strided(&plane[y * w + x0..], g.sw as usize, &mut out[lo..hi]);
                    }
                }
            }
        }
    }
}

/// `out[k] = src[k·stride]`, with the usual strides 1 and 2 as constants so the loop
/// vectorizes.
fn copy_strided(src: &[f32], stride: usize, out: &mut [f32]) {
    fn at<const S: usize>(src: &[f32], stride: usize, out: &mut [f32]) {
        let s = if S == 0 { stride } else { S };
        let src = &src[..(out.len() - 1) * s + 1];
        for (k, v) in out.iter_mut().enumerate() {
            *v = src[k * s];
        }
    }
    match stride {
        1 => copy_runs(&src[..out.len()], out),
        2 => at::<2>(src, 2, out),
        _ => at::<0>(src, stride, out),
    }
}

/// `dst[k·stride] += v[k]`, with the usual strides 1 and 2 as constants so the loop
/// vectorizes ([`copy_strided`]'s adjoint).
fn add_strided(v: &[f32], stride: usize, dst: &mut [f32]) {
    fn at<const S: usize>(v: &[f32], stride: usize, dst: &mut [f32]) {
        let s = if S == 0 { stride } else { S };
        let dst = &mut dst[..(v.len() - 1) * s + 1];
        for (k, v) in v.iter().enumerate() {
            dst[k * s] += v;
        }
    }
    match stride {
        1 => at::<1>(v, 1, dst),
        2 => at::<2>(v, 2, dst),
        _ => at::<0>(v, stride, dst),
    }
}

/// `out = src` in runs of 8 floats of constant length, so short rows (F's are 8 to 24 floats)
/// are a few moves, not a call to `memcpy`.
fn copy_runs(src: &[f32], out: &mut [f32]) {
    let (mut o, mut s) = (out.chunks_exact_mut(8), src.chunks_exact(8));
    for (o, s) in (&mut o).zip(&mut s) {
        let s: &[f32; 8] = s.try_into().expect("runs of 8");
        <&mut [f32; 8]>::try_from(o).expect("runs of 8").copy_from_slice(s);
    }
    for (o, s) in o.into_remainder().iter_mut().zip(s.remainder()) {
        *o = *s;
    }
}

/// One row of [`im2col`] over the output rows `i0..i1` (tap row `a` of one channel `plane`;
/// `lo..hi` and `x0` the [`col_range`] of its tap column) at stride 1 with `wo = w`: output
/// position `i·w + j` reads input `(i + a·dh − ph)·w + j + b·dw − pw`, a fixed shift, so the
/// output rows whose input row is in the image are one copy; then the columns in the
/// padding, which that copy filled from the neighbouring input rows, and the rows outside
/// the image are zeroed.
fn same_width_row(
    g: &Geometry,
    plane: &[f32],
    a: usize,
    (lo, hi, x0): (usize, usize, usize),
    (i0, i1): (usize, usize),
    row: &mut [f32],
) {
    let w = g.w as usize;
    let valid = (i0..i1).filter(|&i| g.tap(0, i, a).is_some());
    let (Some(v0), Some(v1)) = (valid.clone().next(), valid.last()) else {
        return row.fill(0.0);
    };
    if hi == lo {
        return row.fill(0.0);
    }
    let y0 = g.tap(0, v0, a).expect("in the image");
    let (start, end) = ((v0 - i0) * w + lo, (v1 - i0) * w + hi);
    row[start..end].copy_from_slice(&plane[y0 * w + x0..][..end - start]);
    row[..start].fill(0.0);
    row[end..].fill(0.0);
    for i in v0 - i0..v1 - i0 {
        row[i * w + hi..(i + 1) * w + lo].fill(0.0);
    }
}

/// `dx[c0..] += col2im(dcols)`: every tap's value added at the position it read.
fn col2im(g: &Geometry, dcols: &[f32], c0: usize, dx: &mut [f32]) {
    let (h, w, l, wo, sw) = (g.h as usize, g.w as usize, g.l(), g.wo as usize, g.sw as usize);
    let mut rows = dcols[..g.k_rows() * l].chunks_exact(l);
    for c in c0..c0 + (g.c / g.groups) as usize {
        let plane = &mut dx[c * h * w..(c + 1) * h * w];
        for a in 0..g.kh as usize {
            for b in 0..g.kw as usize {
                let row = rows.next().expect("K rows");
                let (lo, hi, x0) = col_range(g, b);
                for (i, vals) in row.chunks_exact(wo).enumerate() {
                    let Some(y) = g.tap(0, i, a) else { continue };
                    if hi == lo {
                        continue;
                    }
                    add_strided(&vals[lo..hi], sw, &mut plane[y * w + x0..]);
                }
            }
        }
    }
}

/// Copies the planes `[_, h, w]` of `src` into the planes `[_, hp, wp]` of `planes`, each at
/// row `top` and column `left` (the rest of `planes` is left as it is: the zero padding).
fn into_planes(
    src: &[f32],
    (h, w): (usize, usize),
    (hp, wp): (usize, usize),
    (top, left): (usize, usize),
    planes: &mut [f32],
) {
    for (src, dst) in src.chunks_exact((h * w).max(1)).zip(planes.chunks_mut(hp * wp)) {
        for (row, r) in src.chunks_exact(w.max(1)).zip(top..) {
            dst[r * wp + left..][..w].copy_from_slice(row);
        }
    }
}

/// Runs `f` with a scratch of `len` floats.
fn with_scratch(len: usize, f: impl FnOnce(&mut [f32])) {
    COLS.with_borrow_mut(|cols| {
        if cols.len() < len {
            cols.resize(len, 0.0);
        }
        f(&mut cols[..len])
    })
}

/// Floats of `cols` a band of output rows of a tiled convolution may take: the band stays in
/// the L2 cache while every panel of the kernel passes over it.
const BAND_FLOATS: usize = 48 * 1024;

/// One example and group of a forward convolution through the micro-kernels: `y [O/g, L] =
/// k · cols`, `cols` made one band of output rows at a time (`scratch` holds a band).
fn conv_tiled(
    g: &Geometry,
    x: &[f32],
    c0: usize,
    packed: &[f32],
    y: &mut [f32],
    scratch: &mut [f32],
) {
    let (k, wo, ho, og) = (g.k_rows(), g.wo as usize, g.ho as usize, (g.o / g.groups) as usize);
    // Bands of whole NR-column blocks where the output rows allow it.
    let fit = (BAND_FLOATS / (k * wo).max(1)).clamp(1, ho);
    let aligned = (1..=fit).rev().find(|r| r * wo % tile::NR == 0);
    let band = aligned.unwrap_or(fit);
    for i0 in (0..ho).step_by(band) {
        let i1 = (i0 + band).min(ho);
        let n = (i1 - i0) * wo;
        im2col(g, x, c0, (i0, i1), (scratch, n));
        let cols = tile::Strided::new(&scratch[..k * n + tile::NR], n, (k, n));
        // SAFETY: `tile::available()` was checked by the caller; lengths are checked inside.
        unsafe { tile::product(packed, (og, n, k), cols, &mut y[i0 * wo..], g.l()) };
    }
}

/// True if [`conv_shifted`] computes this forward convolution (stride 1, not 1×1): it beats
/// im2col in bands ([`conv_tiled`]) on every shape measured, even where most of the padded
/// row is dropped. Per call, batch 32 (G) or 64 (F and below), one thread, best of 7 × 5,
/// three runs of a scratch program calling [`nnc_window`], alternating between the two
/// paths:
///
/// | conv (C×H×W → O, kernel, padding) | `wp / wo` | im2col bands | shifted |
/// | --------------------------------- | --------- | ------------ | ------- |
/// | 16×32×32 → 16, 3×3, 1 (G stage 1) | 1.06 | 2.96-3.01 ms | 2.21-2.27 ms |
/// | 32×16×16 → 32, 3×3, 1 (G stage 2) | 1.13 | 2.71-2.76 ms | 2.25-2.38 ms |
/// | 64×8×8 → 64, 3×3, 1 (G stage 3)   | 1.25 | 2.55-3.54 ms | 2.30-2.37 ms |
/// | 1×28×28 → 6, 5×5, 0 (F conv1)     | 1.17 | 0.37-0.63 ms | 0.24-0.35 ms |
/// | 6×12×12 → 16, 5×5, 0 (F conv2)    | 1.5  | 0.98-1.01 ms | 0.45-0.70 ms |
/// | 16×8×8 → 16, 5×5, 0               | 2.0  | 1.58-1.74 ms | 0.76-0.78 ms |
/// | 16×6×6 → 32, 5×5, 0               | 3.0  | 1.30-1.38 ms | 0.76-0.79 ms |
fn shifted(g: &Geometry) -> bool {
    (g.sh, g.sw) == (1, 1) && !g.pointwise()
}

/// Floats of the zero-padded planes of [`conv_shifted`], and [`tile::NR`] plus a row to spare,
/// which the last taps' rows read past.
fn padded_len(g: &Geometry) -> usize {
    let (hp, wp) = ((g.h + 2 * g.ph) as usize, (g.w + 2 * g.pw) as usize);
    (g.c / g.groups) as usize * hp * wp + wp + tile::NR
}

/// Floats of scratch [`conv_shifted`] takes: the padded planes, then the output at the
/// padded width.
fn shifted_len(g: &Geometry) -> usize {
    padded_len(g) + (g.o / g.groups * g.ho * (g.w + 2 * g.pw)) as usize
}

/// One example and group of a stride-1 forward convolution without im2col: the channels
/// `c0..c0 + C/g` of `x` are copied into zero-padded planes `[hp, wp]`, where tap `(c, a, b)`
/// of output position `(i, j)` is element `i·wp + j` of the plane shifted by `c·hp·wp +
/// a·dh·wp + b·dw`. So each row of `cols` is a shifted view of the padded image
/// ([`tile::Shifted`]) and the product runs over `ho × wp` positions, of which the `wp −
/// wo` at the end of each row are dropped when `y` is written.
fn conv_shifted(
    g: &Geometry,
    x: &[f32],
    c0: usize,
    packed: &[f32],
    y: &mut [f32],
    scratch: &mut [f32],
) {
    let (h, w, ph, pw) = (g.h as usize, g.w as usize, g.ph as usize, g.pw as usize);
    let (hp, wp, ho, wo) = (h + 2 * ph, w + 2 * pw, g.ho as usize, g.wo as usize);
    let (cg, og, k) = ((g.c / g.groups) as usize, (g.o / g.groups) as usize, g.k_rows());
    let (planes, out) = scratch.split_at_mut(padded_len(g));
    planes.fill(0.0);
    into_planes(&x[c0 * h * w..][..cg * h * w], (h, w), (hp, wp), (ph, pw), planes);
    let offs: Vec<usize> = (0..cg)
        .flat_map(|c| {
            (0..g.kh as usize).flat_map(move |a| (0..g.kw as usize).map(move |b| (c, a, b)))
        })
        .map(|(c, a, b)| c * hp * wp + a * g.dh as usize * wp + b * g.dw as usize)
        .collect();
    let n = ho * wp;
    let out = &mut out[..og * n];
    let rows = tile::Shifted::new(planes, &offs, n);
    // SAFETY: `tile::available()` was checked by the caller; lengths are checked inside.
    unsafe { tile::product(packed, (og, n, k), rows, out, n) };
    for (y, full) in y.chunks_exact_mut(wo).zip(out.chunks_exact(wp)) {
        y.copy_from_slice(&full[..wo]);
    }
}

/// The convolution ops on examples `n0..n1` of the operands; `out` holds those examples'
/// outputs (for `conv_grad_kernel`, the part's own kernel, overwritten).
fn conv_part<'a>(
    g: &Geometry,
    (n0, n1): (usize, usize),
    a: &'a [f32],
    b: &'a [f32],
    out: &mut [f32],
) {
    if let Some(t) = g.transposed() {
        let flipped = g.flipped_kernel(b);
        return conv_part(&t, (n0, n1), a, &flipped, out);
    }
    match g.op() {
        WindowOp::Conv if winograd::applies(g) => return winograd::conv(g, (n0, n1), a, b, out),
        WindowOp::Conv if gather::applies(g) => return gather::conv(g, (n0, n1), a, b, out),
        WindowOp::ConvGradKernel if winograd::kernel_grad_applies(g) => {
            return winograd::kernel_grad(g, (n0, n1), a, b, out)
        }
        WindowOp::ConvGradKernel if gather::applies(g) => {
            return gather::kernel_grad(g, (n0, n1), a, b, out)
        }
        WindowOp::ConvGradKernel => return conv_grad_kernel_part(g, (n0, n1), a, b, out),
        WindowOp::ConvGradInput if gather::input_grad_applies(g) => {
            return gather::input_grad(g, (n0, n1), a, b, out)
        }
        _ => {}
    }
    let (image, outs, _) = g.sizes();
    let (groups, k, l) = (g.groups as usize, g.k_rows(), g.l());
    let (cg, og) = ((g.c / g.groups) as usize, (g.o / g.groups) as usize);
    let tiled = g.op() == WindowOp::Conv && !g.pointwise() && tile::available();
    let packed: Vec<Vec<f32>> = match tiled {
        true => (0..groups).map(|grp| tile::pack_a(&b[grp * og * k..], og, k)).collect(),
        false => Vec::new(),
    };
    // `cols` (or `dcols`), and `tile::NR` more, which the micro-kernel may read past a band's
    // last row; or the padded image of `conv_shifted`.
    let scratch_len = match () {
        _ if g.pointwise() => 0,
        _ if tiled && shifted(g) => shifted_len(g),
        _ => k * l + tile::NR,
    };
    with_scratch(scratch_len, |scratch| {
        for n in n0..n1 {
            for grp in 0..groups {
                let kernel = |t: &'a [f32]| -> &'a [f32] { &t[grp * og * k..(grp + 1) * og * k] };
                match g.op() {
                    WindowOp::Conv if tiled => {
                        let x = &a[n * image..(n + 1) * image];
                        let y = &mut out[(n - n0) * outs + grp * og * l..][..og * l];
                        match shifted(g) {
                            true => conv_shifted(g, x, grp * cg, &packed[grp], y, scratch),
                            false => conv_tiled(g, x, grp * cg, &packed[grp], y, scratch),
                        }
                    }
                    WindowOp::Conv => {
                        let x = &a[n * image..(n + 1) * image];
                        let y = &mut out[(n - n0) * outs + grp * og * l..][..og * l];
                        let cols = if g.pointwise() {
                            &x[grp * cg * l..(grp + 1) * cg * l]
                        } else {
                            im2col(g, x, grp * cg, (0, g.ho as usize), (scratch, l));
                            &scratch[..k * l]
                        };
                        matmul(og, l, k, kernel(b), false, cols, false, y, false);
                    }
                    WindowOp::ConvGradInput => {
                        let dy = &a[n * outs + grp * og * l..][..og * l];
                        let dx = &mut out[(n - n0) * image..(n - n0 + 1) * image];
                        if g.pointwise() {
                            let dx = &mut dx[grp * cg * l..(grp + 1) * cg * l];
                            matmul(k, l, og, kernel(b), true, dy, false, dx, false);
                        } else {
                            if grp == 0 {
                                dx.fill(0.0);
                            }
                            let dcols = &mut scratch[..k * l];
                            matmul(k, l, og, kernel(b), true, dy, false, dcols, false);
                            col2im(g, dcols, grp * cg, dx);
                        }
                    }
                    WindowOp::ConvGradKernel => unreachable!("conv_grad_kernel_part"),
                    WindowOp::PoolPick | WindowOp::PoolRoute => unreachable!("not a convolution"),
                }
            }
        }
    })
}

/// The product of a kernel gradient sums over at least this many output positions: as many
/// examples side by side as it takes (`E = ⌈KERNEL_GRAD_K / L⌉`). Per call, one thread, best
/// of 30 rounds that time both paths in turn in one process, two runs:
///
/// | conv_grad_kernel (C×H×W → O, kernel, stride) | `L` | `E` | one example per product | `E` examples |
/// | -------------------------------------------- | --- | --- | ----------------------- | ------------ |
/// | 6×12×12 → 16, 5×5, 1 (F conv2, batch 64)    | 64  | 8 | 1.18, 0.82 ms | 0.90, 0.63 ms |
/// | 64×8×8 → 64, 3×3, 1 (G stage 3)             | 64  | 8 | 2.69, 3.73 ms | 2.36, 3.29 ms |
/// | 32×16×16 → 64, 3×3, 2 (G stage 3, first)    | 64  | 8 | 1.69, 2.89 ms | 1.51, 2.64 ms |
/// | 32×16×16 → 32, 3×3, 1 (G stage 2)           | 256 | 2 | 2.55, 3.47 ms | 2.55, 3.52 ms |
/// | 16×32×32 → 16, 3×3, 1 (G stage 1)           | 1024 | 1 | 3.74, 5.40 ms | 3.78, 5.04 ms |
const KERNEL_GRAD_K: usize = 512;

/// `conv_grad_kernel` on examples `n0..n1`: `dk[G] = Σ_n dy[n, G] · cols[n]ᵀ`, each product
/// over `E` examples at once, `[O/g, E·L] · [K, E·L]ᵀ`: the `cols` of the examples side by
/// side (row stride `E·L`) and their `dy` copied alongside. `out` is the part's own kernel,
/// overwritten.
fn conv_grad_kernel_part(
    g: &Geometry,
    (n0, n1): (usize, usize),
    x: &[f32],
    dy: &[f32],
    out: &mut [f32],
) {
    let (image, outs, _) = g.sizes();
    let (groups, k, l) = (g.groups as usize, g.k_rows(), g.l());
    let (cg, og) = ((g.c / g.groups) as usize, (g.o / g.groups) as usize);
    let e_max = KERNEL_GRAD_K.div_ceil(l).clamp(1, (n1 - n0).max(1));
    with_scratch((k + og) * e_max * l, |scratch| {
        let (cols, dys) = scratch.split_at_mut(k * e_max * l);
        for grp in 0..groups {
            let dk = &mut out[grp * og * k..(grp + 1) * og * k];
            for n in (n0..n1).step_by(e_max) {
                let e = e_max.min(n1 - n);
                let ld = e * l;
                for (j, n) in (n..n + e).enumerate() {
                    let xn = &x[n * image..(n + 1) * image];
                    if g.pointwise() {
                        let rows = xn[grp * cg * l..(grp + 1) * cg * l].chunks_exact(l);
                        for (r, row) in rows.enumerate() {
                            cols[r * ld + j * l..][..l].copy_from_slice(row);
                        }
                    } else {
                        im2col(g, xn, grp * cg, (0, g.ho as usize), (&mut cols[j * l..], ld));
                    }
                    let rows = dy[n * outs + grp * og * l..][..og * l].chunks_exact(l);
                    for (o, row) in rows.enumerate() {
                        dys[o * ld + j * l..][..l].copy_from_slice(row);
                    }
                }
                matmul(og, k, ld, &dys[..og * ld], false, &cols[..k * ld], true, dk, n > n0);
            }
        }
    })
}

/// The raw operands of one call, shared by the parts of a split.
#[derive(Clone, Copy)]
struct Call {
    g: Geometry,
    n: usize,
    a: *const f32,
    b: *const f32,
    out: *mut f32,
}

// SAFETY: parts of a split write disjoint examples of `out` (or their own partial kernels).
unsafe impl Sync for Call {}

impl Call {
    /// Floats of `a`, `b` and `out`.
    fn lens(&self) -> (usize, usize, usize) {
        let (image, outs, kernel) = self.g.sizes();
        let (n, out_n) = (self.n, self.n * self.g.sizes().1);
        match self.g.op() {
            WindowOp::Conv => (n * image, kernel, out_n),
            WindowOp::ConvGradInput => (out_n, kernel, n * image),
            WindowOp::ConvGradKernel => (n * image, out_n, kernel),
            WindowOp::PoolPick => (n * image, n * image, n * outs),
            WindowOp::PoolRoute => (n * image, n * outs, n * image),
        }
    }

    /// Floats of `out` per example (`None` for a kernel gradient, which every example adds to).
    fn out_per_example(&self) -> Option<usize> {
        let (image, outs, _) = self.g.sizes();
        match self.g.op() {
            WindowOp::Conv | WindowOp::PoolPick => Some(outs),
            WindowOp::ConvGradInput | WindowOp::PoolRoute => Some(image),
            WindowOp::ConvGradKernel => None,
        }
    }

    /// Examples `part` of the call into `out`: those examples' outputs, or a whole kernel.
    ///
    /// # Safety
    /// `a` and `b` hold [`Call::lens`] floats.
    unsafe fn run_part(&self, part: (usize, usize), out: &mut [f32]) {
        let (la, lb, _) = self.lens();
        let a = std::slice::from_raw_parts(self.a, la);
        let b = std::slice::from_raw_parts(self.b, lb);
        match self.g.op() {
            WindowOp::PoolPick | WindowOp::PoolRoute => pool::pool_part(&self.g, part, a, b, out),
            _ => conv_part(&self.g, part, a, b, out),
        }
    }
}

/// The trampoline JIT code calls: the window op `geom` describes on `n` examples, `a` and
/// `b` its operands in the graph op's order, `out` its result (overwritten), split across
/// `pool` when large. In Cranelift terms `(i64 pool, i64 geom, i64 n, i64 a, i64 b,
/// i64 out)`, the host's C calling convention, no return value.
///
/// # Safety
/// - `pool` is null or points to a live [`Pool`]; `geom` to a valid [`Geometry`];
/// - `a`, `b` and `out` hold the floats of the shapes in the module doc (dangling only when
///   that count is 0); `out` overlaps neither input and nothing else accesses it meanwhile.
pub unsafe extern "C" fn nnc_window(
    pool: *const Pool,
    geom: *const Geometry,
    n: u64,
    a: *const f32,
    b: *const f32,
    out: *mut f32,
) {
    let call = Call { g: *geom, n: n as usize, a, b, out };
    let lout = call.lens().2;
    let parts = match pool.as_ref() {
        Some(p) if p.threads() > 1 && call.g.splits(call.n) => p.threads().min(call.n),
        _ => 1,
    };
    if lout == 0 {
        return;
    }
    if parts <= 1 {
        if call.n == 0 && call.g.op() == WindowOp::ConvGradKernel {
            std::slice::from_raw_parts_mut(out, lout).fill(0.0);
        }
        return call.run_part((0, call.n), std::slice::from_raw_parts_mut(out, lout));
    }
    let pool = &*pool;
    if let Some(per) = call.out_per_example() {
        pool.parallel_for(parts, &|p| {
            let (n0, n1) = split_point(call.n, parts, p);
            // SAFETY: the parts' example ranges, hence these slices, are disjoint.
            let out =
                unsafe { std::slice::from_raw_parts_mut(call.out.add(n0 * per), (n1 - n0) * per) };
            unsafe { call.run_part((n0, n1), out) }
        });
        return;
    }
    let mut partials = vec![0.0f32; lout * (parts - 1)];
    let pp = partials.as_mut_ptr() as usize;
    pool.parallel_for(parts, &|p| {
        let part = split_point(call.n, parts, p);
        // SAFETY: part 0 writes `out`, part p > 0 its own partial.
        let dst = unsafe {
            if p == 0 {
                std::slice::from_raw_parts_mut(call.out, lout)
            } else {
                std::slice::from_raw_parts_mut((pp as *mut f32).add((p - 1) * lout), lout)
            }
        };
        unsafe { call.run_part(part, dst) }
    });
    let out = std::slice::from_raw_parts_mut(out, lout);
    for partial in partials.chunks(lout) {
        out.iter_mut().zip(partial).for_each(|(o, v)| *o += v);
    }
}
