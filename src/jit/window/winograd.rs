//! Stride-1 3×3 convolutions by Winograd's minimal filtering F(2×2, 3×3) (Lavin & Gray,
//! "Fast Algorithms for Convolutional Neural Networks", 2016): each 2×2 block of outputs
//! ("tile") of one channel pair takes 16 products instead of 36,
//!
//! ```text
//! y[tile] = Aᵀ [ Σ_c (G k[o, c] Gᵀ) ⊙ (Bᵀ d[c, tile] B) ] A
//! Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]   G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1]
//! Aᵀ = [1 1 1 0; 0 1 -1 -1]
//! ```
//!
//! with `d[c, tile]` the 4×4 patch of the zero-padded image the tile's windows cover. The sum
//! over `c` is, for each of the 16 elements `ξ` of the 4×4 transforms, one product
//! `M[ξ] [T, O/g] = V[ξ] [T, C/g] · U[ξ] [C/g, O/g]` over the `T` tiles, run by
//! [`tile::window_outer`] with `V` row-major (its rows are the `MR` pointers, the channels
//! its taps) and `U` packed as its B operand. The image is copied channel-last (`[hq, wq,
//! C/g]`, zero-padded) so each transform works on 8 channels at once; `M` is transformed
//! back into `yᵀ [L, O/g]`, then transposed into `y`. Tiles go through the three stages in
//! chunks ([`CHUNK_FLOATS`]) whose `V` and `M` stay in the L2 cache.
//!
//! The transforms' ±½ and sums round differently from the direct sum: results differ from
//! the other paths' in the last bits (relative 1e-6 on unit-scale data).
//!
//! The kernel gradient is the adjoint of the same bilinear form: `dk[o, c] = Gᵀ W[c, o] G` with
//! `W[ξ] = Σ_tiles V[ξ]ᵀ · Z[ξ]` and `Z = A dY Aᵀ` the 4×4 transform of each tile's 2×2
//! output gradient ([`kernel_grad`]).
//!
//! Per call, batch 32, one thread, best of 30 rounds of a scratch program calling
//! [`super::nnc_window`] that times this path and the one taken otherwise (module `gather`)
//! in turn, two runs; the input gradients are forward convolutions of `dy`
//! (`Geometry::transposed`); the kernel gradients' largest error against an f64 sum was
//! within 1.1× of the other path's:
//!
//! | conv (C×H×W → O, 3×3, stride 1, padding 1) | forward: gather | Winograd | input grad.: gather | Winograd | kernel grad.: gather | Winograd |
//! | ------------------------------------------ | ------- | -------- | ------- | -------- | ------- | -------- |
//! | 16×32×32 → 16 (G stage 1)                  | 1.88-1.98 ms | 1.60-1.63 ms | 1.90-1.93 ms | 1.62-1.64 ms | 1.67-1.78 ms | 1.50-1.53 ms |
//! | 32×16×16 → 32 (G stage 2)                  | 1.68-1.71 ms | 1.19-1.20 ms | 1.70-1.74 ms | 1.19-1.21 ms | 1.62 ms | 1.37-1.42 ms |
//! | 64×8×8 → 64 (G stage 3)                    | 1.68-1.69 ms | 1.08-1.09 ms | 1.71-1.73 ms | 1.12-1.13 ms | 1.67-1.78 ms | 1.93-1.94 ms |
//!
//! Half as much and twice as much [`CHUNK_FLOATS`] timed the same within the noise.

use super::{with_scratch, Geometry};
use crate::jit::tile::{self, MR, NR};
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// True if [`conv`] computes this forward convolution: 3×3 at stride 1 without dilation, on
/// a machine with the micro-kernels, input channels per group in whole vectors of 8 and
/// output channels per group in whole blocks of [`NR`].
pub(super) fn applies(g: &Geometry) -> bool {
    tile::available()
        && (g.kh, g.kw, g.sh, g.sw, g.dh, g.dw) == (3, 3, 1, 1, 1, 1)
        && ((g.c / g.groups) as usize).is_multiple_of(8)
        && ((g.o / g.groups) as usize).is_multiple_of(NR)
}

/// True if [`kernel_grad`] computes this kernel gradient: as [`applies`], on images of at
/// least [`KERNEL_GRAD_TILES`] tiles.
pub(super) fn kernel_grad_applies(g: &Geometry) -> bool {
    applies(g) && (g.ho as usize).div_ceil(2) * (g.wo as usize).div_ceil(2) >= KERNEL_GRAD_TILES
}

/// Tiles per image from which [`kernel_grad`] pays: each image's `W` is summed on its own
/// (`16·C/g·O/g` floats added per image, as accurate as the direct sum; one running sum
/// over the batch was 50× less accurate on G's first stage), which at G's third stage (16
/// tiles of 64 channels) costs more than the products save (the module doc's table).
const KERNEL_GRAD_TILES: usize = 64;

/// Floats of `V` and `M` per chunk of tiles: 128 KiB, a quarter of the L2 cache of the
/// machines measured.
const CHUNK_FLOATS: usize = 32 * 1024;

/// The sizes of one call: channels per group, tiles down and across, the padded image's
/// rows and columns (room for every tile's 4×4 patch), tiles per chunk.
struct Tiles {
    cg: usize,
    og: usize,
    th: usize,
    tw: usize,
    hq: usize,
    wq: usize,
    chunk: usize,
}

impl Tiles {
    fn new(g: &Geometry) -> Tiles {
        let (cg, og) = ((g.c / g.groups) as usize, (g.o / g.groups) as usize);
        let (th, tw) = ((g.ho as usize).div_ceil(2), (g.wo as usize).div_ceil(2));
        let hq = ((g.h + 2 * g.ph) as usize).max(2 * th + 2);
        let wq = ((g.w + 2 * g.pw) as usize).max(2 * tw + 2);
        let fit = CHUNK_FLOATS / (16 * (cg + og));
        let chunk = (fit / MR * MR).min((th * tw).div_ceil(MR) * MR).max(MR);
        Tiles { cg, og, th, tw, hq, wq, chunk }
    }
}

/// `U[ξ]` of each group, packed by [`tile::pack_bt`]: `[O/g, C/g]` with element `(o, c)` the
/// `ξ`-th of `G k[o, c] Gᵀ`.
fn kernels(g: &Geometry, t: &Tiles, k: &[f32]) -> Vec<Vec<Vec<f32>>> {
    let (cg, og) = (t.cg, t.og);
    (0..g.groups as usize)
        .map(|grp| {
            let mut u = vec![vec![0.0f32; og * cg]; 16];
            for (oc, taps) in k[grp * og * cg * 9..][..og * cg * 9].chunks_exact(9).enumerate() {
                // G k: rows of 3, then (G k) Gᵀ: rows of 4.
                let gk: [[f32; 3]; 4] = std::array::from_fn(|r| {
                    std::array::from_fn(|j| {
                        let col = [taps[j], taps[3 + j], taps[6 + j]];
                        g_row(r, col)
                    })
                });
                for (r, row) in gk.iter().enumerate() {
                    for j in 0..4 {
                        u[r * 4 + j][oc] = g_row(j, *row);
                    }
                }
            }
            u.iter().map(|m| tile::pack_bt(m, og, cg)).collect()
        })
        .collect()
}

/// Row `r` of `G` applied to `v`.
fn g_row(r: usize, [a, b, c]: [f32; 3]) -> f32 {
    match r {
        0 => a,
        1 => 0.5 * (a + b + c),
        2 => 0.5 * (a - b + c),
        _ => c,
    }
}

/// A forward 3×3 stride-1 convolution on examples `n0..n1` (see the module doc); `y` holds
/// those examples' outputs, overwritten.
pub(super) fn conv(g: &Geometry, (n0, n1): (usize, usize), x: &[f32], k: &[f32], y: &mut [f32]) {
    let (image, outs, _) = g.sizes();
    let t = Tiles::new(g);
    let (cg, og, l) = (t.cg, t.og, g.l());
    let (h, w) = (g.h as usize, g.w as usize);
    let packed = kernels(g, &t, k);
    let offs: Vec<usize> = (0..cg).collect();
    let lens = [t.hq * t.wq * cg, 16 * t.chunk * cg, 16 * t.chunk * og, l * og];
    with_scratch(lens.iter().sum(), |scratch| {
        let (nhwc, rest) = scratch.split_at_mut(lens[0]);
        let (v, rest) = rest.split_at_mut(lens[1]);
        let (m, yt) = rest.split_at_mut(lens[2]);
        nhwc.fill(0.0);
        for n in n0..n1 {
            for grp in 0..g.groups as usize {
                channel_last(g, &t, &x[n * image + grp * cg * h * w..][..cg * h * w], nhwc);
                for t0 in (0..t.th * t.tw).step_by(t.chunk) {
                    let count = t.chunk.min(t.th * t.tw - t0);
                    // SAFETY: `applies` checked `tile::available()`.
                    unsafe { transform_in(&t, nhwc, (t0, count), v) };
                    for (xi, u) in packed[grp].iter().enumerate() {
                        let vx = &v[xi * t.chunk * cg..][..t.chunk * cg];
                        let mx = &mut m[xi * t.chunk * og..][..t.chunk * og];
                        for (rb, mb) in mx.chunks_exact_mut(MR * og).enumerate() {
                            if rb * MR >= count {
                                break;
                            }
                            let a = std::array::from_fn(|r| vx[(rb * MR + r) * cg..].as_ptr());
                            for (jb, kt) in u.chunks_exact(cg * NR).enumerate() {
                                // SAFETY: `tile::available()`; each `a[r]` holds `cg` floats
                                // (the chunk's rows, `chunk` a multiple of MR), `kt` `cg` rows
                                // of NR, `mb` MR rows of `og ≥ (jb + 1)·NR`.
                                unsafe {
                                    let c = mb[jb * NR..].as_mut_ptr();
                                    tile::window_outer::<false>(a, &offs, kt.as_ptr(), (c, og));
                                }
                            }
                        }
                    }
                    // SAFETY: as above.
                    unsafe { transform_out(g, &t, m, (t0, count), yt) };
                }
                let y = &mut y[(n - n0) * outs + grp * og * l..][..og * l];
                tile::transpose(&yt[..l * og], (l, og), y);
            }
        }
    })
}

/// One group's channels `[C/g, h, w]` of one image into the interior of the zero-padded
/// channel-last `nhwc [hq, wq, C/g]` (whose padding is left as it is).
fn channel_last(g: &Geometry, t: &Tiles, src: &[f32], nhwc: &mut [f32]) {
    let (h, w, ph, pw) = (g.h as usize, g.w as usize, g.ph as usize, g.pw as usize);
    for r in 0..h {
        let row = &mut nhwc[((r + ph) * t.wq + pw) * t.cg..];
        tile::transpose_strided((&src[r * w..], h * w), (t.cg, w), (row, t.cg));
    }
}

/// A kernel gradient on examples `n0..n1`: with `Z = A dY Aᵀ` the 4×4 transform of each
/// tile's 2×2 output gradient (0 past the output's edge), `dk[o, c] = Gᵀ W[c, o] G` where
/// `W[ξ] [C/g, O/g] = Σ_{n, tiles} V[ξ]ᵀ · Z[ξ]` (the adjoint of [`conv`]'s bilinear form),
/// each product `[C/g, chunk] · [chunk, O/g]` run by [`tile::window_outer`] with the tiles as
/// its taps. `out` is the part's own kernel, overwritten.
pub(super) fn kernel_grad(
    g: &Geometry,
    (n0, n1): (usize, usize),
    x: &[f32],
    dy: &[f32],
    out: &mut [f32],
) {
    let (image, outs, _) = g.sizes();
    let t = Tiles::new(g);
    let (cg, og, l) = (t.cg, t.og, g.l());
    let (h, w) = (g.h as usize, g.w as usize);
    // Rows of W: the channels in whole blocks of MR (the rows past `cg` are never read).
    let cgp = cg.div_ceil(MR) * MR;
    let offs: Vec<usize> = (0..t.chunk).map(|tile| tile * cg).collect();
    // The image, V (and the MR - 1 floats its last block of channels reads past its end), Z,
    // dyᵀ, W of one example, W of all.
    let w_len = 16 * cgp * og;
    let lens = [t.hq * t.wq * cg, 16 * t.chunk * cg + MR, 16 * t.chunk * og, l * og, w_len, w_len];
    with_scratch(lens.iter().sum(), |scratch| {
        let (nhwc, rest) = scratch.split_at_mut(lens[0]);
        let (v, rest) = rest.split_at_mut(lens[1]);
        let (z, rest) = rest.split_at_mut(lens[2]);
        let (dyt, rest) = rest.split_at_mut(lens[3]);
        let (part, wsum) = rest.split_at_mut(lens[4]);
        nhwc.fill(0.0);
        for grp in 0..g.groups as usize {
            wsum.fill(0.0);
            for n in n0..n1 {
                channel_last(g, &t, &x[n * image + grp * cg * h * w..][..cg * h * w], nhwc);
                tile::transpose(&dy[n * outs + grp * og * l..][..og * l], (og, l), dyt);
                part.fill(0.0);
                for t0 in (0..t.th * t.tw).step_by(t.chunk) {
                    let count = t.chunk.min(t.th * t.tw - t0);
                    // SAFETY: `applies` checked `tile::available()`.
                    unsafe {
                        transform_in(&t, nhwc, (t0, count), v);
                        transform_dy(g, &t, dyt, (t0, count), z);
                    }
                    for (xi, wx) in part.chunks_exact_mut(cgp * og).enumerate() {
                        for cb in 0..cgp / MR {
                            let at = xi * t.chunk * cg + cb * MR;
                            let a = std::array::from_fn(|r| v[at + r..].as_ptr());
                            for jb in 0..og / NR {
                                let kt = z[((xi * og / NR + jb) * t.chunk) * NR..].as_ptr();
                                // SAFETY: `tile::available()`; `a[r] + offs[tile]` for `tile <
                                // count` lies in `v` (its MR - 1 spare floats included), `kt`
                                // holds `count` rows of NR, `wx`'s MR rows of `og` floats from
                                // row `cb·MR` lie in its `cgp` rows.
                                unsafe {
                                    let c = wx[cb * MR * og + jb * NR..].as_mut_ptr();
                                    tile::window_outer::<true>(a, &offs[..count], kt, (c, og));
                                }
                            }
                        }
                    }
                }
                wsum.iter_mut().zip(&*part).for_each(|(s, p)| *s += p);
            }
            let dk = &mut out[grp * og * cg * 9..][..og * cg * 9];
            for (oc, taps) in dk.chunks_exact_mut(9).enumerate() {
                let (o, c) = (oc / cg, oc % cg);
                let wv: [f32; 16] = std::array::from_fn(|xi| wsum[(xi * cgp + c) * og + o]);
                // Gᵀ W: rows of 4, then (Gᵀ W) G: rows of 3.
                let gw: [[f32; 4]; 3] = std::array::from_fn(|a| {
                    std::array::from_fn(|j| gt_row(a, std::array::from_fn(|i| wv[i * 4 + j])))
                });
                for (a, row) in gw.iter().enumerate() {
                    for b in 0..3 {
                        taps[a * 3 + b] = gt_row(b, *row);
                    }
                }
            }
        }
    })
}

/// Row `r` of `Gᵀ` applied to `v`.
fn gt_row(r: usize, [a, b, c, d]: [f32; 4]) -> f32 {
    match r {
        0 => a + 0.5 * (b + c),
        1 => 0.5 * (b - c),
        _ => 0.5 * (b + c) + d,
    }
}

/// `A m Aᵀ` of a 2×2 `m` (row-major) as a 4×4 (row-major), as [`b_transform`].
#[inline(always)]
fn z_transform<T: Copy>(
    m: [T; 4],
    add: impl Fn(T, T) -> T,
    sub: impl Fn(T, T) -> T,
    zero: T,
) -> [T; 16] {
    // A applied to 2 values: the columns of m, then the rows of A m.
    let a = |r: [T; 2]| [r[0], add(r[0], r[1]), sub(r[0], r[1]), sub(zero, r[1])];
    let cols: [[T; 4]; 2] = std::array::from_fn(|j| a([m[j], m[2 + j]]));
    let rows: [[T; 4]; 4] = std::array::from_fn(|i| a([cols[0][i], cols[1][i]]));
    std::array::from_fn(|xi| rows[xi / 4][xi % 4])
}

/// `Bᵀ d B` of a 4×4 patch `d` (row-major), with `add` and `sub` elementwise on `T` (8
/// channels).
#[inline(always)]
fn b_transform<T: Copy>(d: [T; 16], add: impl Fn(T, T) -> T, sub: impl Fn(T, T) -> T) -> [T; 16] {
    // Bᵀ applied to 4 values: the rows of Bᵀ d column by column, then of (Bᵀ d) B row by row.
    let bt = |r: [T; 4]| [sub(r[0], r[2]), add(r[1], r[2]), sub(r[2], r[1]), sub(r[1], r[3])];
    let cols: [[T; 4]; 4] = std::array::from_fn(|j| bt(std::array::from_fn(|i| d[i * 4 + j])));
    let rows: [[T; 4]; 4] = std::array::from_fn(|i| bt(std::array::from_fn(|j| cols[j][i])));
    std::array::from_fn(|xi| rows[xi / 4][xi % 4])
}

/// `Aᵀ m A` of a 4×4 `m` (row-major) as a 2×2 block (row-major), as [`b_transform`].
#[inline(always)]
fn a_transform<T: Copy>(m: [T; 16], add: impl Fn(T, T) -> T, sub: impl Fn(T, T) -> T) -> [T; 4] {
    let at = |r: [T; 4]| [add(add(r[0], r[1]), r[2]), sub(sub(r[1], r[2]), r[3])];
    let cols: [[T; 2]; 4] = std::array::from_fn(|j| at(std::array::from_fn(|i| m[i * 4 + j])));
    let rows: [[T; 2]; 2] = std::array::from_fn(|i| at(std::array::from_fn(|j| cols[j][i])));
    [rows[0][0], rows[0][1], rows[1][0], rows[1][1]]
}

/// `V[ξ]` rows `0..count` for tiles `t0..t0 + count`: `v[(ξ·chunk + tile)·cg + c]`.
///
/// # Safety
/// `tile::available()` is true.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn transform_in(t: &Tiles, nhwc: &[f32], (t0, count): (usize, usize), v: &mut [f32]) {
    let cg = t.cg;
    assert!(
        nhwc.len() >= t.hq * t.wq * cg && v.len() >= 16 * t.chunk * cg && t0 + count <= t.th * t.tw
    );
    let (src, dst) = (nhwc.as_ptr(), v.as_mut_ptr());
    for tile in 0..count {
        let (ti, tj) = ((t0 + tile) / t.tw, (t0 + tile) % t.tw);
        let corner = (2 * ti * t.wq + 2 * tj) * cg;
        for c in (0..cg).step_by(8) {
            // SAFETY: the patch's rows 2ti..2ti+4 and columns 2tj..2tj+4 lie in the padded
            // image (`Tiles::new`), `c + 8 ≤ cg`; `tile < chunk` (asserted above).
            let d = std::array::from_fn(|p| {
                _mm256_loadu_ps(src.add(corner + ((p / 4) * t.wq + p % 4) * cg + c))
            });
            let vals = b_transform(d, |a, b| _mm256_add_ps(a, b), |a, b| _mm256_sub_ps(a, b));
            for (xi, val) in vals.into_iter().enumerate() {
                _mm256_storeu_ps(dst.add((xi * t.chunk + tile) * cg + c), val);
            }
        }
    }
}

/// `yᵀ [L, O/g]` at the outputs of tiles `t0..t0 + count` from `M[ξ]`
/// (`m[(ξ·chunk + tile)·og + o]`), the positions past the output's edge dropped.
///
/// # Safety
/// `tile::available()` is true.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn transform_out(
    g: &Geometry,
    t: &Tiles,
    m: &[f32],
    (t0, count): (usize, usize),
    yt: &mut [f32],
) {
    let (og, ho, wo) = (t.og, g.ho as usize, g.wo as usize);
    assert!(m.len() >= 16 * t.chunk * og && yt.len() >= ho * wo * og && t0 + count <= t.th * t.tw);
    let (src, dst) = (m.as_ptr(), yt.as_mut_ptr());
    for tile in 0..count {
        let (ti, tj) = ((t0 + tile) / t.tw, (t0 + tile) % t.tw);
        for o in (0..og).step_by(8) {
            // SAFETY: `tile < chunk`, `o + 8 ≤ og` (asserted above).
            let mm =
                std::array::from_fn(|xi| _mm256_loadu_ps(src.add((xi * t.chunk + tile) * og + o)));
            let vals = a_transform(mm, |a, b| _mm256_add_ps(a, b), |a, b| _mm256_sub_ps(a, b));
            for (p, val) in vals.into_iter().enumerate() {
                let (i, j) = (2 * ti + p / 2, 2 * tj + p % 2);
                if i < ho && j < wo {
                    // SAFETY: `(i, j)` is an output position, `o + 8 ≤ og`.
                    _mm256_storeu_ps(dst.add((i * wo + j) * og + o), val);
                }
            }
        }
    }
}

/// `Z[ξ]` for tiles `t0..t0 + count` from `dyᵀ [L, O/g]`: the tile's 2×2 output gradient
/// (0 past the output's edge) transformed, at `z[((ξ·O/g/NR + o/NR)·chunk + tile)·NR + o%NR]`
/// (panels of NR output channels, as [`tile::window_outer`]'s B operand).
///
/// # Safety
/// `tile::available()` is true.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn transform_dy(
    g: &Geometry,
    t: &Tiles,
    dyt: &[f32],
    (t0, count): (usize, usize),
    z: &mut [f32],
) {
    let (og, ho, wo) = (t.og, g.ho as usize, g.wo as usize);
    assert!(z.len() >= 16 * t.chunk * og && dyt.len() >= ho * wo * og && t0 + count <= t.th * t.tw);
    let (src, dst) = (dyt.as_ptr(), z.as_mut_ptr());
    for tile in 0..count {
        let (ti, tj) = ((t0 + tile) / t.tw, (t0 + tile) % t.tw);
        for o in (0..og).step_by(8) {
            let m = std::array::from_fn(|p| {
                let (i, j) = (2 * ti + p / 2, 2 * tj + p % 2);
                match i < ho && j < wo {
                    // SAFETY: `(i, j)` is an output position, `o + 8 ≤ og`.
                    true => _mm256_loadu_ps(src.add((i * wo + j) * og + o)),
                    false => _mm256_setzero_ps(),
                }
            });
            let vals = z_transform(
                m,
                |a, b| _mm256_add_ps(a, b),
                |a, b| _mm256_sub_ps(a, b),
                _mm256_setzero_ps(),
            );
            for (xi, val) in vals.into_iter().enumerate() {
                let at = ((xi * og / NR + o / NR) * t.chunk + tile) * NR + o % NR;
                // SAFETY: `tile < chunk`, `o + 8 ≤ og` (asserted above).
                _mm256_storeu_ps(dst.add(at), val);
            }
        }
    }
}

/// Unreachable off x86-64 ([`tile::available`] is false there).
///
/// # Safety
/// Never call it.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn transform_dy(
    _g: &Geometry,
    _t: &Tiles,
    _dyt: &[f32],
    _tiles: (usize, usize),
    _z: &mut [f32],
) {
    unreachable!("tile::available() is false off x86-64")
}

/// Unreachable off x86-64 ([`tile::available`] is false there).
///
/// # Safety
/// Never call it.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn transform_in(_t: &Tiles, _nhwc: &[f32], _tiles: (usize, usize), _v: &mut [f32]) {
    unreachable!("tile::available() is false off x86-64")
}

/// Unreachable off x86-64 ([`tile::available`] is false there).
///
/// # Safety
/// Never call it.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn transform_out(
    _g: &Geometry,
    _t: &Tiles,
    _m: &[f32],
    _tiles: (usize, usize),
    _yt: &mut [f32],
) {
    unreachable!("tile::available() is false off x86-64")
}
