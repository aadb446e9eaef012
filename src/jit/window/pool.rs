//! Max pooling's two window ops on the host: `pool_pick` takes, for each window, the element
//! of `h` at the first maximum of `s` (PyTorch's rule: a later element wins if greater or
//! NaN), and `pool_route` adds `dy` at that position. Direct loops, branch-free where the
//! data decides, vectorized across a row of windows.

use super::{Geometry, WindowOp};

/// For each output position along H (`a = 0`) or W (`a = 1`), the input range its pooling
/// window covers inside the image (padding clipped; pooling has no dilation).
fn pool_spans(g: &Geometry, a: usize) -> Vec<(usize, usize)> {
    let (n, k, s, p, outs) = match a {
        0 => (g.h, g.kh, g.sh, g.ph, g.ho),
        _ => (g.w, g.kw, g.sw, g.pw, g.wo),
    };
    (0..outs as usize)
        .map(|i| {
            let start = (i * s as usize) as isize - p as isize;
            let lo = start.max(0) as usize;
            let hi = ((start + k as isize).max(0) as usize).min(n as usize);
            (lo, hi.max(lo))
        })
        .collect()
}

/// The flat index in a channel plane `s` (rows of `w`) of the first maximum over rows `ys`
/// and columns `xs`, in row-major order: PyTorch's rule, a later element wins if greater or
/// NaN. Branch-free: which element is largest is data, not a pattern a predictor learns.
fn first_max(s: &[f32], w: usize, ys: (usize, usize), xs: (usize, usize)) -> usize {
    let mut at = ys.0 * w + xs.0;
    let mut m = s[at];
    for y in ys.0..ys.1 {
        for (x, &v) in s[y * w + xs.0..y * w + xs.1].iter().enumerate() {
            let wins = (v > m) | v.is_nan();
            m = if wins { v } else { m };
            at = if wins { y * w + xs.0 + x } else { at };
        }
    }
    at
}

/// [`first_max`] for one output row of 2×2 windows at stride 2 without padding (LeNet's
/// pooling), whose two input rows start `rows` (at flat index `base` of the plane, rows of
/// `w`): the four taps of each window in row-major order, in straight-line code. F's
/// pooling per step (`nnc bench examples/bench/f.nn --threads 1 --profile`, alternating
/// builds, two runs each): first layer pick 0.55-0.61 → 0.14-0.15 ms, route 0.59-0.67 →
/// 0.20-0.21 ms; second layer pick 0.37-0.41 → 0.06 ms, route 0.37-0.41 → 0.11 ms.
fn first_max_2x2(rows: &[f32], w: usize, base: usize, at: &mut [u32]) {
    let (r0, r1) = rows[..2 * w].split_at(w);
    for (j, (at, (p0, p1))) in
        at.iter_mut().zip(r0.chunks_exact(2).zip(r1.chunks_exact(2))).enumerate()
    {
        let taps = [(p0[0], 0), (p0[1], 1), (p1[0], w), (p1[1], w + 1)];
        let (mut m, mut best) = taps[0];
        for (v, k) in taps.into_iter().skip(1) {
            let wins = (v > m) | v.is_nan();
            m = if wins { v } else { m };
            best = if wins { k } else { best };
        }
        *at = (base + 2 * j + best) as u32;
    }
}

/// [`first_max`] for the output columns `js` of one output row at once, whose windows all
/// lie inside the image along W (`kw` columns from `j·sw − pw`): the same taps in the same
/// order, one tap at a time across the row, so the loop over `j` vectorizes (the stride is
/// a constant for the usual 1 and 2). `at[j]` gets the flat index in the plane; `m` is
/// scratch.
fn first_max_row(
    s: &[f32],
    g: &Geometry,
    ys: (usize, usize),
    js: (usize, usize),
    m: &mut [f32],
    at: &mut [u32],
) {
    match g.sw {
        1 => taps_across::<1>(s, g, ys, js, m, at),
        2 => taps_across::<2>(s, g, ys, js, m, at),
        _ => taps_across::<0>(s, g, ys, js, m, at),
    }
}

/// [`first_max_row`] at stride `SW` along W (0: the geometry's own stride).
fn taps_across<const SW: usize>(
    s: &[f32],
    g: &Geometry,
    ys: (usize, usize),
    (j0, j1): (usize, usize),
    m: &mut [f32],
    at: &mut [u32],
) {
    let (w, kw) = (g.w as usize, g.kw as usize);
    let sw = if SW == 0 { g.sw as usize } else { SW };
    let n = j1 - j0;
    if n == 0 {
        return;
    }
    let x0 = j0 * sw - g.pw as usize;
    let (m, at) = (&mut m[..n], &mut at[..n]);
    let row0 = &s[ys.0 * w + x0..][..(n - 1) * sw + 1];
    for j in 0..n {
        m[j] = row0[j * sw];
        at[j] = (ys.0 * w + x0 + j * sw) as u32;
    }
    for y in ys.0..ys.1 {
        for b in 0..kw {
            let first = y * w + x0 + b;
            let taps = &s[first..][..(n - 1) * sw + 1];
            for j in 0..n {
                let v = taps[j * sw];
                let wins = (v > m[j]) | v.is_nan();
                let mask = 0u32.wrapping_sub(wins as u32);
                m[j] = f32::from_bits((v.to_bits() & mask) | (m[j].to_bits() & !mask));
                at[j] = ((first + j * sw) as u32 & mask) | (at[j] & !mask);
            }
        }
    }
}

/// Pooling on examples `n0..n1`: pick `h` (or route `dy`) by the maxima of `s`; `out`
/// holds those examples' results. Output columns whose windows lie inside the image along
/// W go through [`first_max_row`], the others (padding) through [`first_max`].
pub(super) fn pool_part(
    g: &Geometry,
    (n0, n1): (usize, usize),
    s: &[f32],
    b: &[f32],
    out: &mut [f32],
) {
    let (plane, oplane, w, wo) = ((g.h * g.w) as usize, g.l(), g.w as usize, g.wo as usize);
    let route = g.op() == WindowOp::PoolRoute;
    let (rows, cols) = (pool_spans(g, 0), pool_spans(g, 1));
    let full = |j: usize| cols[j].1 - cols[j].0 == g.kw as usize;
    let lo = (0..wo).find(|&j| full(j)).unwrap_or(wo);
    let hi = (lo..wo).find(|&j| !full(j)).unwrap_or(wo);
    let (mut m, mut at) = (vec![0f32; wo], vec![0u32; wo]);
    let halving = (g.kh, g.kw, g.sh, g.sw, g.ph, g.pw) == (2, 2, 2, 2, 0, 0);
    let first = n0 * g.c as usize;
    for p in first..n1 * g.c as usize {
        let sp = &s[p * plane..(p + 1) * plane];
        let q = p - first;
        if route {
            out[q * plane..(q + 1) * plane].fill(0.0);
        }
        for (i, &ys) in rows.iter().enumerate() {
            if halving {
                first_max_2x2(&sp[2 * i * w..], w, 2 * i * w, &mut at);
            } else {
                first_max_row(sp, g, ys, (lo, hi), &mut m, &mut at[lo..]);
                for j in (0..lo).chain(hi..wo) {
                    at[j] = first_max(sp, w, ys, cols[j]) as u32;
                }
            }
            let o = p * oplane + i * wo;
            if route {
                let dst = &mut out[q * plane..(q + 1) * plane];
                for (&at, &d) in at.iter().zip(&b[o..o + wo]) {
                    dst[at as usize] += d;
                }
            } else {
                let dst = &mut out[q * oplane + i * wo..][..wo];
                for (y, &at) in dst.iter_mut().zip(&at) {
                    *y = b[p * plane + at as usize];
                }
            }
        }
    }
}
