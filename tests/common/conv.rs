//! An independent convolution for the integration tests' oracles.

use nnc::graph::Window;
use nnc::tensor::Tensor;

/// The oracle: `x` padded with zeros into a larger image, then for each group separately the
/// textbook sum over channels and taps at `(i·s + a·d, j·s + b·d)` of the padded image.
pub fn reference_conv(x: &Tensor<f64>, k: &Tensor<f64>, w: &Window) -> Tensor<f64> {
    let [n, c, h, wd] = x.shape[..] else { panic!() };
    let [o, cg, kh, kw] = k.shape[..] else { panic!() };
    let (p, s, d, g) =
        (w.pad[0] as usize, w.stride[0] as usize, w.dilation[0] as usize, w.groups as usize);
    let (hp, wp) = (h + 2 * p, wd + 2 * p);
    let mut padded = vec![0.0; n * c * hp * wp];
    for (idx, v) in x.data.iter().enumerate() {
        let (b, ch, y, xx) = (idx / (c * h * wd), idx / (h * wd) % c, idx / wd % h, idx % wd);
        padded[((b * c + ch) * hp + y + p) * wp + xx + p] = *v;
    }
    let ho = (hp - d * (kh - 1) - 1) / s + 1;
    let wo = (wp - d * (kw - 1) - 1) / s + 1;
    let og = o / g;
    let mut out = vec![0.0; n * o * ho * wo];
    for group in 0..g {
        for b in 0..n {
            for oc in group * og..(group + 1) * og {
                for i in 0..ho {
                    for j in 0..wo {
                        let mut acc = 0.0;
                        for ci in 0..cg {
                            let ch = group * cg + ci;
                            for a in 0..kh {
                                for bb in 0..kw {
                                    let v = padded
                                        [((b * c + ch) * hp + i * s + a * d) * wp + j * s + bb * d];
                                    acc += v * k.data[((oc * cg + ci) * kh + a) * kw + bb];
                                }
                            }
                        }
                        out[((b * o + oc) * ho + i) * wo + j] = acc;
                    }
                }
            }
        }
    }
    Tensor::new(vec![n, o, ho, wo], out)
}
