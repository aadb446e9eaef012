//! The convolutions that read the image in place through `tile`'s register blocks, with no
//! `cols` and no packing of the image: a forward convolution as `yᵀ [L, O/g] = cols · kᵀ`
//! ([`conv`], through [`tile::window_outer`]), a kernel gradient as `dkᵀ [K, O/g] = cols ·
//! dyᵀ` ([`kernel_grad`], through [`tile::taps_outer`]), and a strided input gradient as one
//! such product per phase of the input positions ([`input_grad`]). Row `(c, a, b)` of `cols`
//! at output position `(i, j)` is element `corner(i, j) + offset(c, a, b)` of the
//! zero-padded image ([`padded`], [`tap_offsets`]), so a block of `MR` rows of C is `MR`
//! pointers into it ([`Reads`]). The channels are the `NR` columns of C; `y`, `dy` and `dx`
//! are transposed between `[C, L]` and `[L, C]` around the products ([`tile::transpose`]).
//!
//! Per call, one thread, best of 30 rounds that time both paths in turn in one process; the
//! machine ran in both of its speed phases, so single rows carry about ±15% of noise (ranges
//! are over repeated runs):
//!
//! | conv (C×H×W → O, kernel, stride; batch 32) | forward: before | here | input grad.: before | here | kernel grad.: before | here |
//! | ------------------------------------------ | ------- | ---- | ------- | ---- | ------- | ---- |
//! | 3×32×32 → 16, 3×3, 1 (G's first)           | 0.53 ms | 0.57-0.58 ms | (not needed) | | 1.97 ms | 0.49 ms |
//! | 16×32×32 → 16, 3×3, 1 (G stage 1)          | 2.20 ms | 1.94 ms | 2.13 ms | 1.86 ms | 4.79 ms | 1.89 ms |
//! | 32×16×16 → 32, 3×3, 1 (G stage 2)          | 2.19 ms | 1.72 ms | 3.69 ms | 2.55 ms | 2.53 ms | 1.67 ms |
//! | 64×8×8 → 64, 3×3, 1 (G stage 3)            | 2.29 ms | 1.79 ms | 2.32 ms | 1.75 ms | 2.85 ms | 1.82 ms |
//! | 16×32×32 → 32, 3×3, 2 (G stage 2, first)   | 2.55 ms | 1.03 ms | 1.96-2.03 ms | 1.39-1.41 ms | 2.08 ms | 1.01 ms |
//! | 32×16×16 → 64, 3×3, 2 (G stage 3, first)   | 1.56 ms | 0.90 ms | 1.53-2.08 ms | 1.23-1.55 ms | 2.66 ms | 1.31 ms |
//! | 16×32×32 → 32, 1×1, 2 (G stage 2 shortcut) | 0.26 ms | 0.21 ms | 0.28-0.47 ms | 0.32-0.43 ms | 0.47 ms | 0.20 ms |
//! | 32×16×16 → 64, 1×1, 2 (G stage 3 shortcut) | 0.19 ms | 0.13 ms | 0.30-0.33 ms | 0.31-0.33 ms | 0.20 ms | 0.13 ms |
//! | 6×12×12 → 16, 5×5, 1, batch 64 (F conv2)   | 0.45 ms | 0.22 ms | (other path) | | 1.10 ms | 0.31 ms |
//!
//! "Before" is the path the op takes otherwise (module `window`): the shifted or banded
//! forward product; for the input gradient, the forward convolution over `dy` at stride 1
//! (whose forward product is then this module's) and `gemm` into `dcols` + col2im at other
//! strides; `gemm` over `E` examples for the kernel gradient. Every row is a gain or a tie
//! but the first forward one (0.04 ms of G's step), which is not worth a rule.

use super::{into_planes, with_scratch, Geometry};
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

/// `conv_grad_kernel` on examples `n0..n1` through [`tile::taps_outer`]: `dk[G]ᵀ [K, O/g] =
/// Σ_n cols[n] · dy[n, G]ᵀ`, where row `(c, a, b)` of `cols` is read in place from a
/// zero-padded copy of the image ([`padded`]) and `dy` is transposed to `[L, O/g]`. The sum
/// runs in `MR × NR` register blocks of `dkᵀ` over bands of output rows. `out` is the part's
/// own kernel, overwritten.
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
    into_planes(src, (h, w), (hp, wp), (ph, pw), planes);
    &planes[..cg * hp * wp]
}

/// Where a product of [`tile::window_outer`] blocks reads, in planes given later: the corner of
/// each output position (the last block of `MR` filled up by repeating the last position)
/// and each tap's offset from it.
struct Reads {
    /// Output positions (before the filling up).
    count: usize,
    corners: Vec<usize>,
    offs: Vec<usize>,
    /// One past the farthest element read.
    reach: usize,
}

impl Reads {
    fn new(mut corners: Vec<usize>, offs: Vec<usize>) -> Reads {
        let max = |v: &[usize]| v.iter().max().copied();
        let reach = match (max(&corners), max(&offs)) {
            (Some(c), Some(o)) => c + o + 1,
            _ => 0,
        };
        let count = corners.len();
        if let Some(&last) = corners.last() {
            corners.resize(count.div_ceil(MR) * MR, last);
        }
        Reads { count, corners, offs, reach }
    }

    /// `yt [P, N] = Σ_t planes[corner + offs[t]] ⊗ kt[t]` over the `P` positions (rounded up
    /// to `MR`), `packed` a kernel of `N` columns packed by [`tile::pack_bt`].
    fn product(&self, planes: &[f32], packed: &[f32], yt: &mut [f32]) {
        let k = self.offs.len();
        let n = packed.len() / k.max(1);
        let yt = &mut yt[..self.corners.len() * n];
        if k == 0 {
            return yt.fill(0.0);
        }
        assert!(planes.len() >= self.reach, "window: a tap outside the planes");
        for (q0, corner) in self.corners.chunks_exact(MR).enumerate() {
            let a = std::array::from_fn(|r| planes.as_ptr().wrapping_add(corner[r]));
            for (jb, kt) in packed.chunks_exact(k * NR).enumerate() {
                let c = (yt[q0 * MR * n + jb * NR..].as_mut_ptr(), n);
                // SAFETY: `applies` checked `tile::available()`; every tap lies in `planes`
                // (asserted above), `kt` holds `k` rows of `NR`, `c`'s `MR` rows of `NR`
                // lie in `yt`.
                unsafe { tile::window_outer::<false>(a, &self.offs, kt.as_ptr(), c) };
            }
        }
    }
}

/// A forward convolution on examples `n0..n1` through [`tile::window_outer`]: `y[n, G]ᵀ
/// [L, O/g] = cols · k[G]ᵀ`, a block of `MR` output positions against `NR` output channels,
/// each position's taps read in place from the padded image ([`padded`], [`tap_offsets`]),
/// then transposed into `y`.
pub(super) fn conv(g: &Geometry, (n0, n1): (usize, usize), x: &[f32], k: &[f32], y: &mut [f32]) {
    let (image, outs, _) = g.sizes();
    let (groups, kr, l) = (g.groups as usize, g.k_rows(), g.l());
    let (cg, og) = ((g.c / g.groups) as usize, (g.o / g.groups) as usize);
    let (hp, wp) = ((g.h + 2 * g.ph) as usize, (g.w + 2 * g.pw) as usize);
    let (wo, sh, sw) = (g.wo as usize, g.sh as usize, g.sw as usize);
    let corners = (0..l).map(|q| q / wo * sh * wp + q % wo * sw).collect();
    let reads = Reads::new(corners, tap_offsets(g, (hp, wp)));
    let packed: Vec<Vec<f32>> =
        (0..groups).map(|grp| tile::pack_bt(&k[grp * og * kr..], og, kr)).collect();
    with_scratch(cg * hp * wp + reads.corners.len() * og, |scratch| {
        let (planes, yt) = scratch.split_at_mut(cg * hp * wp);
        planes.fill(0.0);
        for n in n0..n1 {
            for grp in 0..groups {
                let planes = padded(g, &x[n * image..(n + 1) * image], grp, planes);
                reads.product(planes, &packed[grp], yt);
                let y = &mut y[(n - n0) * outs + grp * og * l..][..og * l];
                tile::transpose(&yt[..l * og], (l, og), y);
            }
        }
    })
}

/// True if [`input_grad`] computes this input gradient: strided, not dilated, input
/// channels per group in whole blocks of [`NR`] (stride-1 input gradients are forward
/// convolutions already, `Geometry::transposed`).
pub(super) fn input_grad_applies(g: &Geometry) -> bool {
    tile::available()
        && (g.sh, g.sw) != (1, 1)
        && (g.dh, g.dw) == (1, 1)
        && ((g.c / g.groups) as usize).is_multiple_of(NR)
}

/// One axis of a strided input gradient split by phase: input position `y` (of `n`) takes
/// the taps `a ≡ y + p (mod s)`, at output position `(y + p − a) / s`. With `pad` rows of
/// zeros before the output rows, phase `r`'s positions `y0 + s·u` read from row
/// `(y + p − a_max) / s + pad` on, tap `a` at `(a_max − a) / s` rows further.
struct Phases {
    n: usize,
    s: usize,
    p: usize,
    /// Per phase: its first position `y0`, its taps from the last, `a_max` first.
    phases: Vec<(usize, Vec<usize>)>,
    pad: usize,
    /// Rows of the padded output gradient.
    len: usize,
}

impl Phases {
    /// The axis with `n` input positions, `no` output positions, kernel `k`, stride `s`,
    /// padding `p`.
    fn new(n: usize, no: usize, k: usize, s: usize, p: usize) -> Phases {
        let phases = (0..s)
            .map(|r| ((r + s - p % s) % s, (0..k).rev().filter(|a| a % s == r).collect()))
            .collect();
        let mut axis = Phases { n, s, p, phases, pad: 0, len: no };
        // The first and last output rows read (before padding), over the phases.
        let spans: Vec<(isize, isize)> = (0..s)
            .filter_map(|r| {
                let (mut ys, taps) = (axis.positions(r), &axis.phases[r].1);
                let first = ys.next()?;
                let last = ys.last().unwrap_or(first);
                Some((axis.row(first, *taps.first()?), axis.row(last, *taps.last()?)))
            })
            .collect();
        axis.pad = spans.iter().map(|s| (-s.0).max(0) as usize).max().unwrap_or(0);
        let end = spans.iter().map(|s| (s.1 + 1).max(0) as usize).max().unwrap_or(0);
        axis.len = axis.pad + no.max(end);
        axis
    }

    /// The output row that input position `y` reads through tap `a` (of its phase), before
    /// padding.
    fn row(&self, y: usize, a: usize) -> isize {
        ((y + self.p) as isize - a as isize) / self.s as isize
    }

    /// [`Phases::row`] in the padded output gradient.
    fn at(&self, y: usize, a: usize) -> usize {
        (self.row(y, a) + self.pad as isize) as usize
    }

    /// Phase `r`'s input positions.
    fn positions(&self, r: usize) -> std::iter::StepBy<std::ops::Range<usize>> {
        (self.phases[r].0.min(self.n)..self.n).step_by(self.s)
    }
}

/// A strided input gradient on examples `n0..n1`, as `sh·sw` products of [`Reads`] over a
/// zero-padded copy of `dy`, one per phase of the input positions ([`Phases`]): phase
/// `(r, q)`'s input positions take the taps `(o, a, b)` with `a ≡ r`, `b ≡ q`, so each is a
/// stride-1 convolution of `dy` with the matching part of the kernel, and no product adds
/// zeros (as `dcols` + col2im would for the rows it drops). `dx` is overwritten.
pub(super) fn input_grad(
    g: &Geometry,
    (n0, n1): (usize, usize),
    dy: &[f32],
    k: &[f32],
    dx: &mut [f32],
) {
    let (image, outs, _) = g.sizes();
    let (groups, l) = (g.groups as usize, g.l());
    let (cg, og) = ((g.c / g.groups) as usize, (g.o / g.groups) as usize);
    if l == 0 {
        return dx[..(n1 - n0) * image].fill(0.0);
    }
    let [h, w, ho, wo, kh, kw] = [g.h, g.w, g.ho, g.wo, g.kh, g.kw].map(|v| v as usize);
    let rows = Phases::new(h, ho, kh, g.sh as usize, g.ph as usize);
    let cols = Phases::new(w, wo, kw, g.sw as usize, g.pw as usize);
    let (hq, wq) = (rows.len, cols.len);
    // Per phase: where it reads, its part of the kernel (per group), and its positions: rows
    // of `nv` from flat index `start` of a plane, `s` apart along both axes.
    let phases: Vec<(Reads, Vec<Vec<f32>>, (usize, usize))> = (0..rows.s)
        .flat_map(|r| (0..cols.s).map(move |q| (r, q)))
        .map(|(r, q)| {
            let ((y0, ta), (x0, tb)) = (&rows.phases[r], &cols.phases[q]);
            let (ys, xs) = (rows.positions(r), cols.positions(q));
            let nv = xs.len();
            let taps: Vec<(usize, usize, usize)> = (0..og)
                .flat_map(|o| ta.iter().flat_map(move |&a| tb.iter().map(move |&b| (o, a, b))))
                .collect();
            let offs = taps
                .iter()
                .map(|&(o, a, b)| o * hq * wq + (ta[0] - a) / rows.s * wq + (tb[0] - b) / cols.s)
                .collect();
            let corner = |y: usize, x: usize| rows.at(y, ta[0]) * wq + cols.at(x, tb[0]);
            let corners = match taps.is_empty() {
                true => Vec::new(),
                false => ys.flat_map(|y| xs.clone().map(move |x| corner(y, x))).collect(),
            };
            let packed = (0..groups)
                .map(|grp| {
                    let part: Vec<f32> = (0..cg)
                        .flat_map(|c| {
                            taps.iter().map(move |&(o, a, b)| {
                                k[(((grp * og + o) * cg + c) * kh + a) * kw + b]
                            })
                        })
                        .collect();
                    tile::pack_bt(&part, cg, taps.len())
                })
                .collect();
            (Reads::new(corners, offs), packed, (nv, *y0 * w + x0))
        })
        .collect();
    let sparse = phases.iter().any(|(reads, ..)| reads.corners.is_empty());
    let most = phases.iter().map(|(reads, ..)| reads.corners.len()).max().unwrap_or(0);
    with_scratch(og * hq * wq + 2 * most * cg, |scratch| {
        let (planes, rest) = scratch.split_at_mut(og * hq * wq);
        let (yt, moved) = rest.split_at_mut(most * cg);
        planes.fill(0.0);
        for n in n0..n1 {
            let dx = &mut dx[(n - n0) * image..(n - n0 + 1) * image];
            if sparse {
                dx.fill(0.0);
            }
            for grp in 0..groups {
                let src = &dy[n * outs + grp * og * l..][..og * l];
                into_planes(src, (ho, wo), (hq, wq), (rows.pad, cols.pad), planes);
                for (reads, packed, (nv, start)) in &phases {
                    if reads.corners.is_empty() {
                        continue;
                    }
                    let count = reads.count;
                    reads.product(planes, &packed[grp], yt);
                    tile::transpose(&yt[..count * cg], (count, cg), moved);
                    for (c, vals) in moved[..count * cg].chunks_exact(count).enumerate() {
                        let plane = &mut dx[(grp * cg + c) * h * w..][..h * w];
                        for (u, vals) in vals.chunks_exact(*nv).enumerate() {
                            let at = start + u * rows.s * w;
                            for (v, &val) in vals.iter().enumerate() {
                                plane[at + v * cols.s] = val;
                            }
                        }
                    }
                }
            }
        }
    })
}

/// Output positions per band of [`kernel_grad`] (whole output rows): the band of
/// `dyᵀ`, `KERNEL_GRAD_BAND × NR` floats (16 KiB), stays in the L1 cache while every panel
/// of taps passes over it.
const KERNEL_GRAD_BAND: usize = 256;
