//! The window ops of the graph IR, on images `[N, C, H, W]` (NCHW, as PyTorch): convolution
//! with its two adjoints, and max pooling as a *pick* and its adjoint, the *route*. Their
//! geometry ([`Window`]), shape rules and interning constructors.
//!
//! | op                  | operands                                 | result               |
//! |---------------------|------------------------------------------|----------------------|
//! | `conv[w]`           | `x [N, C, H, W]`, `k [O, C/g, kh, kw]`   | `[N, O, Ho, Wo]`     |
//! | `conv_grad_input[w]`| `dy [N, O, Ho, Wo]`, `k [O, C/g, kh, kw]`| `[N, C, H, W]`       |
//! | `conv_grad_kernel[w]`| `x [N, C, H, W]`, `dy [N, O, Ho, Wo]`   | `[O, C/g, kh, kw]`   |
//! | `pool_pick[w]`      | `s [N, C, H, W]`, `h [N, C, H, W]`       | `[N, C, Ho, Wo]`     |
//! | `pool_route[w]`     | `s [N, C, H, W]`, `dy [N, C, Ho, Wo]`    | `[N, C, H, W]`       |
//!
//! With `g` groups of `C/g` input and `O/g` output channels (output channel `o` reads the
//! input channels of group `o / (O/g)`), stride `s`, zero padding `p` and dilation `d`:
//!
//! ```text
//! Ho = ⌊(H + 2·p − d·(kh − 1) − 1) / s⌋ + 1        (Wo alike; at least 1)
//! conv(x, k)[n, o, i, j] = Σ_{c, a, b} x[n, G·C/g + c, i·s − p + a·d, j·s − p + b·d] · k[o, c, a, b]
//!                          (taps outside the image read 0)
//! ```
//!
//! `conv_grad_input(dy, k)` and `conv_grad_kernel(x, dy)` are the adjoints of `conv` in its
//! image and its kernel: `Σ conv(x, k)·dy = Σ x·conv_grad_input(dy, k) = Σ k·conv_grad_kernel(x, dy)`.
//! The three are bilinear and closed under differentiation (each one's gradients are the
//! other two), so second derivatives need no new op. `conv_grad_input`'s `H, W` are the
//! node's own: with a stride, several image sizes have the same output size.
//!
//! Pooling windows have no kernel operand (`kernel` gives their size) and one channel per
//! group (`groups` is 1). `pool_pick(s, h)[n, c, i, j]` is `h` at the position of the first
//! maximum of `s` in window `(i, j)` of channel `c` (row-major order over the window; padding
//! is never picked; NaN counts as a maximum, as in PyTorch's `MaxPool2d`), and
//! `pool_route(s, dy)` adds each `dy[n, c, i, j]` at that position: its adjoint in `h`. Max
//! pooling is `pool_pick(x, x)`: its gradient goes to the first maximum, as in PyTorch,
//! and is piecewise constant in the selector `s`.

use std::fmt;

use super::{Dim, Graph, NodeId, Op, Shape};

/// The geometry of a window op: kernel size, stride, zero padding and dilation (each as
/// `[along H, along W]`) and the number of channel groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Window {
    pub kernel: [u16; 2],
    pub stride: [u16; 2],
    pub pad: [u16; 2],
    pub dilation: [u16; 2],
    pub groups: u16,
}

impl Window {
    /// The output size along axis `a` (0: H, 1: W) of an input of size `n`, if at least 1.
    pub fn out_size(&self, a: usize, n: usize) -> Option<usize> {
        let reach = self.dilation[a] as usize * (self.kernel[a] as usize - 1) + 1;
        let padded = n + 2 * self.pad[a] as usize;
        (self.kernel[a] >= 1 && self.stride[a] >= 1 && self.dilation[a] >= 1 && padded >= reach)
            .then(|| (padded - reach) / self.stride[a] as usize + 1)
    }
    /// `(Ho, Wo)` for an input of `(H, W)`.
    pub fn out_hw(&self, (h, w): (usize, usize)) -> Option<(usize, usize)> {
        Some((self.out_size(0, h)?, self.out_size(1, w)?))
    }
    /// The input position along axis `a` that tap `t` of output position `i` reads; `None`
    /// in the padding.
    pub fn tap(&self, a: usize, i: usize, t: usize, n: usize) -> Option<usize> {
        let at = (i * self.stride[a] as usize + t * self.dilation[a] as usize)
            .checked_sub(self.pad[a] as usize)?;
        (at < n).then_some(at)
    }
    /// Taps per window (`kh·kw`).
    pub fn taps(&self) -> usize {
        self.kernel[0] as usize * self.kernel[1] as usize
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let pair = |p: [u16; 2]| format!("{}x{}", p[0], p[1]);
        write!(f, "k={}", pair(self.kernel))?;
        if self.stride != [1, 1] {
            write!(f, " s={}", pair(self.stride))?;
        }
        if self.pad != [0, 0] {
            write!(f, " p={}", pair(self.pad))?;
        }
        if self.dilation != [1, 1] {
            write!(f, " d={}", pair(self.dilation))?;
        }
        if self.groups != 1 {
            write!(f, " g={}", self.groups)?;
        }
        Ok(())
    }
}

/// `[N, C, H, W]` with fixed `C, H, W`.
fn image(s: &Shape) -> Option<(Dim, usize, usize, usize)> {
    match s.dims() {
        [n, Dim::Fixed(c), Dim::Fixed(h), Dim::Fixed(w)] => {
            Some((*n, *c as usize, *h as usize, *w as usize))
        }
        _ => None,
    }
}

/// A fixed shape `[O, C/g, kh, kw]` matching the window's kernel: `(O, C/g)`.
fn kernel(s: &Shape, win: &Window) -> Option<(usize, usize)> {
    match s.dims() {
        [Dim::Fixed(o), Dim::Fixed(c), Dim::Fixed(kh), Dim::Fixed(kw)]
            if [*kh, *kw] == win.kernel.map(u32::from) =>
        {
            let (o, c, g) = (*o as usize, *c as usize, win.groups as usize);
            (g >= 1 && o % g == 0).then_some((o, c))
        }
        _ => None,
    }
}

fn shape(n: Dim, dims: [usize; 3]) -> Shape {
    Shape(std::iter::once(n).chain(dims.iter().map(|&d| Dim::Fixed(d as u32))).collect())
}

/// The result shape of `conv(x, k)`.
pub fn conv_shape(x: &Shape, k: &Shape, win: &Window) -> Option<Shape> {
    let (n, c, h, w) = image(x)?;
    let (o, cg) = kernel(k, win)?;
    let (ho, wo) = win.out_hw((h, w))?;
    (cg * win.groups as usize == c).then(|| shape(n, [o, ho, wo]))
}

/// Whether `conv_grad_input(dy, k)` can produce `result` (the image shape).
pub fn conv_grad_input_fits(dy: &Shape, k: &Shape, win: &Window, result: &Shape) -> bool {
    conv_shape(result, k, win).is_some_and(|y| y == *dy)
}

/// The result shape of `conv_grad_kernel(x, dy)`: the kernel's.
pub fn conv_grad_kernel_shape(x: &Shape, dy: &Shape, win: &Window) -> Option<Shape> {
    let (n, c, h, w) = image(x)?;
    let (m, o, ho, wo) = image(dy)?;
    let g = win.groups as usize;
    let fits = n == m && g >= 1 && c % g == 0 && o % g == 0 && win.out_hw((h, w))? == (ho, wo);
    fits.then(|| Shape::fixed(&[o, c / g, win.kernel[0] as usize, win.kernel[1] as usize]))
}

/// The result shape of `pool_pick(s, h)`.
pub fn pick_shape(s: &Shape, h: &Shape, win: &Window) -> Option<Shape> {
    let (n, c, hh, ww) = image(s)?;
    let (ho, wo) = win.out_hw((hh, ww))?;
    (s == h && win.groups == 1 && pool_padding_ok(win)).then(|| shape(n, [c, ho, wo]))
}

/// Whether `pool_route(s, dy)` can produce `result` (`s`'s shape).
pub fn route_fits(s: &Shape, dy: &Shape, win: &Window, result: &Shape) -> bool {
    s == result && pick_shape(s, s, win).is_some_and(|y| y == *dy)
}

/// Every pooling window holds a position of the image: padding at most half the kernel, no
/// dilation (PyTorch's rule).
fn pool_padding_ok(win: &Window) -> bool {
    (0..2).all(|a| win.dilation[a] == 1 && 2 * win.pad[a] <= win.kernel[a])
}

impl Graph {
    /// `conv(x, k)`. Panics if the shapes do not fit (a compiler bug: `check` validates
    /// user shapes).
    pub fn conv(&mut self, x: NodeId, k: NodeId, win: Window) -> NodeId {
        let shape = conv_shape(self.shape(x), self.shape(k), &win)
            .unwrap_or_else(|| panic!("conv: %{} with kernel %{} ({win})", x.0, k.0));
        self.add(Op::Conv(win), vec![x, k], shape)
    }
    /// `conv_grad_input(dy, k)` with the image shape `image`.
    pub fn conv_grad_input(&mut self, dy: NodeId, k: NodeId, win: Window, image: &Shape) -> NodeId {
        self.add(Op::ConvGradInput(win), vec![dy, k], image.clone())
    }
    /// `conv_grad_kernel(x, dy)`.
    pub fn conv_grad_kernel(&mut self, x: NodeId, dy: NodeId, win: Window) -> NodeId {
        let shape = conv_grad_kernel_shape(self.shape(x), self.shape(dy), &win)
            .unwrap_or_else(|| panic!("conv_grad_kernel: %{} and %{} ({win})", x.0, dy.0));
        self.add(Op::ConvGradKernel(win), vec![x, dy], shape)
    }
    /// `pool_pick(s, h)`; max pooling is `pool_pick(x, x)`.
    pub fn pool_pick(&mut self, s: NodeId, h: NodeId, win: Window) -> NodeId {
        let shape = pick_shape(self.shape(s), self.shape(h), &win)
            .unwrap_or_else(|| panic!("pool_pick: %{} and %{} ({win})", s.0, h.0));
        self.add(Op::PoolPick(win), vec![s, h], shape)
    }
    /// `pool_route(s, dy)`.
    pub fn pool_route(&mut self, s: NodeId, dy: NodeId, win: Window) -> NodeId {
        let shape = self.shape(s).clone();
        self.add(Op::PoolRoute(win), vec![s, dy], shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn win(k: u16, s: u16, p: u16, d: u16, g: u16) -> Window {
        Window { kernel: [k, k], stride: [s, s], pad: [p, p], dilation: [d, d], groups: g }
    }

    #[test]
    fn output_sizes_follow_pytorch() {
        // torch.nn.Conv2d's formula on a few cases computed by hand.
        assert_eq!(win(3, 1, 0, 1, 1).out_size(0, 8), Some(6));
        assert_eq!(win(3, 1, 1, 1, 1).out_size(0, 8), Some(8));
        assert_eq!(win(3, 2, 1, 1, 1).out_size(0, 8), Some(4));
        assert_eq!(win(3, 2, 1, 1, 1).out_size(0, 7), Some(4));
        assert_eq!(win(3, 1, 0, 2, 1).out_size(0, 8), Some(4));
        assert_eq!(win(5, 1, 0, 1, 1).out_size(0, 4), None, "a kernel larger than the image");
        assert_eq!(win(5, 1, 1, 1, 1).out_size(0, 3), Some(1));
    }

    #[test]
    fn conv_shapes_check_channels_and_groups() {
        let x = Shape(vec![Dim::Batch, Dim::Fixed(4), Dim::Fixed(8), Dim::Fixed(8)]);
        let k = Shape::fixed(&[6, 2, 3, 3]);
        let y = Shape(vec![Dim::Batch, Dim::Fixed(6), Dim::Fixed(6), Dim::Fixed(6)]);
        assert_eq!(conv_shape(&x, &k, &win(3, 1, 0, 1, 2)), Some(y.clone()));
        assert_eq!(conv_shape(&x, &k, &win(3, 1, 0, 1, 1)), None, "4 channels, kernel reads 2");
        assert_eq!(conv_shape(&x, &Shape::fixed(&[6, 2, 5, 5]), &win(3, 1, 0, 1, 2)), None);
        assert!(conv_grad_input_fits(&y, &k, &win(3, 1, 0, 1, 2), &x));
        assert_eq!(conv_grad_kernel_shape(&x, &y, &win(3, 1, 0, 1, 2)), Some(k));
        let pooled = Shape(vec![Dim::Batch, Dim::Fixed(4), Dim::Fixed(4), Dim::Fixed(4)]);
        assert_eq!(pick_shape(&x, &x, &win(2, 2, 0, 1, 1)), Some(pooled.clone()));
        assert_eq!(pick_shape(&x, &x, &win(2, 2, 2, 1, 1)), None, "padding over half the kernel");
        assert!(route_fits(&x, &pooled, &win(2, 2, 0, 1, 1), &x));
    }
}
