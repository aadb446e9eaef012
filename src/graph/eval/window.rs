//! Interpreter kernels of the window ops ([`crate::graph::window`]): convolution, its two
//! adjoints, and max pooling's pick and route, as direct loops over the taps.
//!
//! The three convolution ops are the same sum of products over one index set, each
//! accumulating into a different operand ([`conv_taps`] visits it):
//!
//! ```text
//! for n, o, i, j, c, a, b with (y, x) = (i·s − p + a·d, j·s − p + b·d) inside the image:
//!     conv:              y[n, o, i, j]  += x[n, G·C/g + c, y, x] · k[o, c, a, b]
//!     conv_grad_input:   dx[n, G·C/g + c, y, x] += dy[n, o, i, j] · k[o, c, a, b]
//!     conv_grad_kernel:  dk[o, c, a, b] += x[n, G·C/g + c, y, x] · dy[n, o, i, j]
//! ```
//! with `G = o / (O/g)` the group of output channel `o`.

use super::Real;
use crate::graph::Window;
use crate::tensor::Tensor;

/// The sizes of one convolution: images `[n, c, h, w]`, outputs `[n, o, ho, wo]`.
#[derive(Clone, Copy, Debug)]
struct Sizes {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    ho: usize,
    wo: usize,
}

impl Sizes {
    fn of(image: &[usize], out: &[usize]) -> Sizes {
        let (n, c, h, w) = (image[0], image[1], image[2], image[3]);
        Sizes { n, c, h, w, o: out[1], ho: out[2], wo: out[3] }
    }
}

/// Calls `f(x offset, kernel offset, output offset)` for every tap of the module doc, the
/// taps of one output element consecutively.
fn conv_taps(win: &Window, z: Sizes, mut f: impl FnMut(usize, usize, usize)) {
    let g = win.groups as usize;
    let (cg, og) = (z.c / g, z.o / g);
    let [kh, kw] = win.kernel.map(usize::from);
    for n in 0..z.n {
        for o in 0..z.o {
            let c0 = o / og * cg;
            for i in 0..z.ho {
                for j in 0..z.wo {
                    let yo = ((n * z.o + o) * z.ho + i) * z.wo + j;
                    for c in 0..cg {
                        for a in 0..kh {
                            let Some(y) = win.tap(0, i, a, z.h) else { continue };
                            for b in 0..kw {
                                let Some(x) = win.tap(1, j, b, z.w) else { continue };
                                let xo = ((n * z.c + c0 + c) * z.h + y) * z.w + x;
                                let ko = ((o * cg + c) * kh + a) * kw + b;
                                f(xo, ko, yo);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `conv(x, k)`, with the output shape `out`.
pub fn conv<T: Real>(x: &Tensor<T>, k: &Tensor<T>, win: &Window, out: Vec<usize>) -> Tensor<T> {
    let mut y = Tensor::full(out, T::zero());
    conv_taps(win, Sizes::of(&x.shape, &y.shape), |xo, ko, yo| {
        y.data[yo] = y.data[yo] + x.data[xo] * k.data[ko];
    });
    y
}

/// `conv_grad_input(dy, k)`, with the image shape `image`.
pub fn conv_grad_input<T: Real>(
    dy: &Tensor<T>,
    k: &Tensor<T>,
    win: &Window,
    image: Vec<usize>,
) -> Tensor<T> {
    let mut dx = Tensor::full(image, T::zero());
    conv_taps(win, Sizes::of(&dx.shape, &dy.shape), |xo, ko, yo| {
        dx.data[xo] = dx.data[xo] + dy.data[yo] * k.data[ko];
    });
    dx
}

/// `conv_grad_kernel(x, dy)`, with the kernel shape `kernel`.
pub fn conv_grad_kernel<T: Real>(
    x: &Tensor<T>,
    dy: &Tensor<T>,
    win: &Window,
    kernel: Vec<usize>,
) -> Tensor<T> {
    let mut dk = Tensor::full(kernel, T::zero());
    conv_taps(win, Sizes::of(&x.shape, &dy.shape), |xo, ko, yo| {
        dk.data[ko] = dk.data[ko] + x.data[xo] * dy.data[yo];
    });
    dk
}

/// For every pooling window in output order, the flat index into `s` of its first maximum
/// (NaN counts as a maximum; padding is never picked).
fn first_maxima<T: Real>(s: &Tensor<T>, win: &Window) -> Vec<usize> {
    let (nc, h, w) = (s.shape[0] * s.shape[1], s.shape[2], s.shape[3]);
    let (ho, wo) = win.out_hw((h, w)).expect("pool window fits the image");
    let [kh, kw] = win.kernel.map(usize::from);
    let mut at = Vec::with_capacity(nc * ho * wo);
    for plane in 0..nc {
        for i in 0..ho {
            for j in 0..wo {
                let mut best: Option<(usize, T)> = None;
                for a in 0..kh {
                    let Some(y) = win.tap(0, i, a, h) else { continue };
                    for b in 0..kw {
                        let Some(x) = win.tap(1, j, b, w) else { continue };
                        let idx = (plane * h + y) * w + x;
                        let v = s.data[idx];
                        // PyTorch's rule: a later element wins if greater, or NaN.
                        if best.is_none_or(|(_, m)| v > m || v.is_nan()) {
                            best = Some((idx, v));
                        }
                    }
                }
                at.push(best.expect("every pool window holds a position").0);
            }
        }
    }
    at
}

/// `pool_pick(s, h)`, with the output shape `out`.
pub fn pool_pick<T: Real>(
    s: &Tensor<T>,
    h: &Tensor<T>,
    win: &Window,
    out: Vec<usize>,
) -> Tensor<T> {
    let data = first_maxima(s, win).into_iter().map(|i| h.data[i]).collect();
    Tensor { shape: out, data }
}

/// `pool_route(s, dy)`: `s`'s shape.
pub fn pool_route<T: Real>(s: &Tensor<T>, dy: &Tensor<T>, win: &Window) -> Tensor<T> {
    let mut dx = Tensor::full(s.shape.clone(), T::zero());
    for (i, &at) in first_maxima(s, win).iter().enumerate() {
        dx.data[at] = dx.data[at] + dy.data[i];
    }
    dx
}
