//! The convolutions that read the image in place through `tile`'s register blocks, with no
//! `cols` and no packing of the image: a forward convolution as `yᵀ [L, O/g] = cols · kᵀ`
//! ([`conv`], through [`tile::window_outer`]) and a kernel gradient as `dkᵀ [K, O/g] = cols ·
//! dyᵀ` ([`kernel_grad`], through [`tile::taps_outer`]). Row `(c, a, b)` of `cols` at output
//! position `(i, j)` is element `corner(i, j) + offset(c, a, b)` of the zero-padded image
//! ([`padded`], [`tap_offsets`]), so a block of `MR` rows of C is `MR` pointers into it. The
//! output channels are the `NR` columns of C; `y` and `dy` are transposed between `[O, L]`
//! and `[L, O]` around the products ([`tile::transpose`]).
//!
//! Used for every forward convolution and kernel gradient that [`applies`] to, and through
//! [`Geometry::transposed`] for stride-1 input gradients. Per call, one thread, best of 30
//! rounds that time both paths in turn in one process (one run; the 3×3 `K = 27` forward row
//! is three):
//!
//! | conv (C×H×W → O, kernel, stride; batch 32) | forward: before | here | input grad.: before | here | kernel grad.: before | here |
//! | ------------------------------------------ | ------- | ---- | ------- | ---- | ------- | ---- |
//! | 3×32×32 → 16, 3×3, 1 (G's first)           | 0.53 ms | 0.57-0.58 ms | (not needed) | | 1.97 ms | 0.49 ms |
//! | 16×32×32 → 16, 3×3, 1 (G stage 1)          | 2.20 ms | 1.94 ms | 2.13 ms | 1.86 ms | 4.79 ms | 1.89 ms |
//! | 32×16×16 → 32, 3×3, 1 (G stage 2)          | 2.19 ms | 1.72 ms | 3.69 ms | 2.55 ms | 2.53 ms | 1.67 ms |
//! | 64×8×8 → 64, 3×3, 1 (G stage 3)            | 2.29 ms | 1.79 ms | 2.32 ms | 1.75 ms | 2.85 ms | 1.82 ms |
//! | 16×32×32 → 32, 3×3, 2 (G stage 2, first)   | 2.55 ms | 1.03 ms | `gemm` + col2im | | 2.08 ms | 1.01 ms |
//! | 32×16×16 → 64, 3×3, 2 (G stage 3, first)   | 1.56 ms | 0.90 ms | `gemm` + col2im | | 2.66 ms | 1.31 ms |
//! | 16×32×32 → 32, 1×1, 2 (G stage 2 shortcut) | 0.26 ms | 0.21 ms | `gemm` + col2im | | 0.47 ms | 0.20 ms |
//! | 32×16×16 → 64, 1×1, 2 (G stage 3 shortcut) | 0.19 ms | 0.13 ms | `gemm` + col2im | | 0.20 ms | 0.13 ms |
//! | 6×12×12 → 16, 5×5, 1, batch 64 (F conv2)   | 0.45 ms | 0.22 ms | `gemm` + col2im | | 1.10 ms | 0.31 ms |
//!
//! "Before" is the path the op takes otherwise: `window`'s shifted or banded forward
//! product, the transposed forward for the input gradient, `gemm` over `E` examples for the
//! kernel gradient. The machine ran in both of its speed phases during the run, so single
//! rows carry about ±15% of noise; every row but the first forward one is a clear gain, and
//! that one (0.04 ms of G's step) is not worth a rule.

use super::{with_scratch, Geometry};
use crate::jit::tile::{self, MR, NR};

/// True if this module computes the convolution (forward or kernel gradient) `g` describes:
/// on a machine with the micro-kernels, output channels per group in whole blocks of
/// [`NR`], a stride along W of 1 or 2, and at least one tap.
pub(super) fn applies(g: &Geometry) -> bool {
    tile::available()
        && ((g.o / g.groups) as usize).is_multiple_of(NR)
        && matches!(g.sw, 1 | 2)
        && g.k_rows() > 0
}

/// `conv_grad_kernel` on examples `n0..n1` through [`taps_outer`]: `dk[G]ᵀ [K, O/g] =
/// Σ_n cols[n] · dy[n, G]ᵀ`, where row `(c, a, b)` of `cols` is read in place from a
/// zero-padded copy of the image ([`padded`]) and `dy` is
/// transposed to `[L, O/g]`. The sum runs in `MR × NR` register blocks of `dkᵀ` over bands of
/// output rows. `out` is the part's own kernel, overwritten.
pub(super) fn kernel_grad(
    g: &Geometry,
    (n0, n1): (usize, usize),
    x: &[f32],
    dy: &[f32],
    out: &mut [f32],
) {
    let (image, outs, _) = g.sizes();
    let (groups, k, l) = (g.groups as usize, g.k_rows(), g.l());
    let (cg, og) = ((g.c / g.groups) as usize, (g.o / g.groups) as usize);
    let (hp, wp) = ((g.h + 2 * g.ph) as usize, (g.w + 2 * g.pw) as usize);
    let (ho, wo, sh, sw) = (g.ho as usize, g.wo as usize, g.sh as usize, g.sw as usize);
    let kp = k.div_ceil(MR) * MR;
    let mut offs = tap_offsets(g, (hp, wp));
    offs.resize(kp, 0);
    // The last position any tap reads lies in the padded planes.
    let last = ho.saturating_sub(1) * sh * wp + wo.saturating_sub(1) * sw;
    assert!(l == 0 || offs.iter().max().map_or(0, |o| o + last) < cg * hp * wp);
    let band = (KERNEL_GRAD_BAND / wo.max(1)).clamp(1, ho.max(1));
    with_scratch(cg * hp * wp + l * og + kp * og, |scratch| {
        let (planes, rest) = scratch.split_at_mut(cg * hp * wp);
        let (dyt, dkt) = rest.split_at_mut(l * og);
        planes.fill(0.0);
        for grp in 0..groups {
            dkt.fill(0.0);
            for n in n0..n1 {
                let base = padded(g, &x[n * image..(n + 1) * image], grp, planes).as_ptr();
                tile::transpose(&dy[n * outs + grp * og * l..][..og * l], (og, l), dyt);
                for i0 in (0..ho).step_by(band) {
                    let rows = (i0 + band).min(ho) - i0;
                    for jb in (0..og).step_by(NR) {
                        let b = (dyt[i0 * wo * og + jb..].as_ptr(), og);
                        for p in 0..kp / MR {
                            let a = std::array::from_fn(|r| {
                                base.wrapping_add(offs[p * MR + r] + i0 * sh * wp)
                            });
                            let c = (dkt[p * MR * og + jb..].as_mut_ptr(), og);
                            // SAFETY: `applies` checked `tile::available()`; every tap lies
                            // in the planes (asserted above), `b`'s rows in `dyt`, `c`'s `MR`
                            // rows in `dkt` (`kp` rows of `og`).
                            unsafe {
                                match sw {
                                    1 => tile::taps_outer::<1>(a, (rows, wo, sh * wp), b, c),
                                    _ => tile::taps_outer::<2>(a, (rows, wo, sh * wp), b, c),
                                }
                            }
                        }
                    }
                }
            }
            tile::transpose(&dkt[..k * og], (k, og), &mut out[grp * og * k..(grp + 1) * og * k]);
        }
    })
}

/// Where tap `(c, a, b)` of a window lies from the window's corner, in order of `K`, in one
/// group's zero-padded planes `[C/g, hp, wp]`.
fn tap_offsets(g: &Geometry, (hp, wp): (usize, usize)) -> Vec<usize> {
    let (kh, kw) = (g.kh as usize, g.kw as usize);
    (0..(g.c / g.groups) as usize)
        .flat_map(|c| (0..kh).flat_map(move |a| (0..kw).map(move |b| (c, a, b))))
        .map(|(c, a, b)| c * hp * wp + a * g.dh as usize * wp + b * g.dw as usize)
        .collect()
}

/// The padded planes `[C/g, hp, wp]` of group `grp` of one example `x`, written into
/// `planes` (whose padding is already zero), or `x` itself when there is no padding.
fn padded<'a>(g: &Geometry, x: &'a [f32], grp: usize, planes: &'a mut [f32]) -> &'a [f32] {
    let (cg, h, w, ph, pw) = ((g.c / g.groups) as usize, g.h as usize, g.w as usize, g.ph, g.pw);
    let src = &x[grp * cg * h * w..][..cg * h * w];
    if (ph, pw) == (0, 0) {
        return src;
    }
    let (ph, pw) = (ph as usize, pw as usize);
    let (hp, wp) = (h + 2 * ph, w + 2 * pw);
    for (c, src) in src.chunks_exact(h * w).enumerate() {
        let dst = &mut planes[c * hp * wp..];
        for (row, r) in src.chunks_exact(w).zip(ph..) {
            dst[r * wp + pw..][..w].copy_from_slice(row);
        }
    }
    &planes[..cg * hp * wp]
}

/// A forward convolution on examples `n0..n1` through [`window_outer`]: `y[n, G]ᵀ
/// [L, O/g] = cols · k[G]ᵀ`, a block of `MR` output positions against `NR` output channels,
/// each position's taps read in place from the padded image ([`padded`], [`tap_offsets`]),
/// then transposed into `y`.
pub(super) fn conv(g: &Geometry, (n0, n1): (usize, usize), x: &[f32], k: &[f32], y: &mut [f32]) {
    let (image, outs, _) = g.sizes();
    let (groups, kr, l) = (g.groups as usize, g.k_rows(), g.l());
    let (cg, og) = ((g.c / g.groups) as usize, (g.o / g.groups) as usize);
    let (hp, wp) = ((g.h + 2 * g.ph) as usize, (g.w + 2 * g.pw) as usize);
    let (wo, sh, sw) = (g.wo as usize, g.sh as usize, g.sw as usize);
    let offs = tap_offsets(g, (hp, wp));
    // Each output position's window corner in the padded planes; the last block of `MR`
    // repeats the last position.
    let corners: Vec<usize> = (0..l.div_ceil(MR) * MR)
        .map(|q| q.min(l.max(1) - 1))
        .map(|q| q / wo * sh * wp + q % wo * sw)
        .collect();
    let last = corners.iter().max().copied().unwrap_or(0) + offs.iter().max().copied().unwrap_or(0);
    assert!(l == 0 || kr == 0 || last < cg * hp * wp, "window: a tap outside the planes");
    let packed: Vec<Vec<f32>> =
        (0..groups).map(|grp| tile::pack_bt(&k[grp * og * kr..], og, kr)).collect();
    let yt_len = l.div_ceil(MR) * MR * og;
    with_scratch(cg * hp * wp + yt_len, |scratch| {
        let (planes, yt) = scratch.split_at_mut(cg * hp * wp);
        planes.fill(0.0);
        for n in n0..n1 {
            for grp in 0..groups {
                let base = padded(g, &x[n * image..(n + 1) * image], grp, planes).as_ptr();
                for (q0, corner) in corners.chunks_exact(MR).enumerate() {
                    let a = std::array::from_fn(|r| base.wrapping_add(corner[r]));
                    for (jb, kt) in packed[grp].chunks_exact(kr * NR).enumerate() {
                        let c = (yt[q0 * MR * og + jb * NR..].as_mut_ptr(), og);
                        // SAFETY: `applies` checked `tile::available()`; every tap lies in
                        // the planes (asserted above), `kt` holds `kr` rows of `NR`, `c`'s
                        // `MR` rows of `NR` lie in `yt`.
                        unsafe { tile::window_outer(a, &offs, kt.as_ptr(), c) };
                    }
                }
                let y = &mut y[(n - n0) * outs + grp * og * l..][..og * l];
                tile::transpose(&yt[..l * og], (l, og), y);
            }
        }
    })
}

/// Output positions per band of [`kernel_grad`] (whole output rows): the band of
/// `dyᵀ`, `KERNEL_GRAD_BAND × NR` floats (16 KiB), stays in the L1 cache while every panel
/// of taps passes over it.
const KERNEL_GRAD_BAND: usize = 256;
