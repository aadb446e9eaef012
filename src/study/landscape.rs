//! Loss landscapes (`nnc landscape`; Li et al., "Visualizing the Loss Landscape of Neural
//! Nets", NeurIPS 2018): the loss at `θ + a·d₁` on a grid of `a`, or at `θ + a·d₁ + b·d₂` on
//! a grid of `(a, b)`, for directions `d` of the parameters' shapes.
//!
//! Random directions are drawn N(0, 1) from the seed (stream [`Stream::Landscape`], one per
//! direction), then scaled tensor by tensor ([`Norm`]). Filter normalization, Li et al.'s
//! default, gives each filter (a row of a Dense weight `[out, in]`, an output channel of a
//! convolution's `[out, in, kh, kw]`: a slice along the first axis) the norm of the same
//! filter of `θ`, so that the picture does not depend on the scale of a layer, which a
//! network invariant to it (ReLU, batch norm) does not see. A parameter of one dimension
//! (a bias, batch norm's weight and bias) is a single filter, or with `ignore_bias_bn` gets
//! no direction at all (Li et al.'s `--xignore biasbn`). Buffers are kept.
//!
//! PCA directions ([`pca`]) are Li et al.'s for drawing a training trajectory: the principal
//! components of the snapshots' offsets `θ_i − θ` from the final weights (centred, as
//! scikit-learn's PCA centres), unit vectors, each signed so that the run's first snapshot
//! lies at a coordinate ≥ 0; the trajectory is drawn at its projections `(θ_i − θ)·d_k`.

use rand::Rng;
use rand_distr::StandardNormal;

use crate::check::Model;
use crate::tensor::Tensor;
use crate::train::data::{self, Stream};
use crate::train::state::Weights;

/// How a direction is scaled to the weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Norm {
    /// Each filter (slice along the first axis) to the norm of `θ`'s.
    Filter,
    /// Each tensor to the norm of `θ`'s.
    Layer,
    /// As drawn.
    None,
}

/// Random direction number `index` (from 0) of `seed`, scaled to `theta`.
pub fn random(
    model: &Model,
    theta: &Weights,
    seed: u64,
    index: u64,
    norm: Norm,
    ignore_bias_bn: bool,
) -> Vec<Tensor<f32>> {
    let mut rng = data::rng(seed, Stream::Landscape, index);
    let mut d: Vec<Tensor<f32>> = model
        .params
        .iter()
        .map(|p| {
            let n = p.shape.iter().product();
            Tensor::new(
                p.shape.clone(),
                (0..n).map(|_| rng.sample::<f32, _>(StandardNormal)).collect(),
            )
        })
        .collect();
    normalize(&mut d, &theta.params, norm, ignore_bias_bn);
    d
}

/// Scales each tensor of `d` to the matching one of `theta` as `norm` says.
pub fn normalize(d: &mut [Tensor<f32>], theta: &[Tensor<f32>], norm: Norm, ignore_bias_bn: bool) {
    let l2 = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    for (d, t) in d.iter_mut().zip(theta) {
        if t.shape.len() <= 1 && ignore_bias_bn {
            d.data.iter_mut().for_each(|v| *v = 0.0);
            continue;
        }
        let rows = match norm {
            Norm::Filter if t.shape.len() > 1 => t.shape[0],
            Norm::Filter | Norm::Layer => 1,
            Norm::None => continue,
        };
        let per = t.data.len() / rows.max(1);
        for (dr, tr) in d.data.chunks_mut(per.max(1)).zip(t.data.chunks(per.max(1))) {
            let (nd, nt) = (l2(dr), l2(tr));
            let scale = if nd > 0.0 { nt / nd } else { 0.0 };
            dr.iter_mut().for_each(|v| *v = (*v as f64 * scale) as f32);
        }
    }
}

/// `θ + Σ_k c_k·d_k` (parameters only; the buffers are `θ`'s), summed in f64.
pub fn shifted(theta: &Weights, dirs: &[Vec<Tensor<f32>>], c: &[f64]) -> Weights {
    let params = theta
        .params
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let data = (0..t.data.len())
                .map(|e| {
                    let moved: f64 =
                        dirs.iter().zip(c).map(|(d, ck)| ck * d[i].data[e] as f64).sum();
                    (t.data[e] as f64 + moved) as f32
                })
                .collect();
            Tensor::new(t.shape.clone(), data)
        })
        .collect();
    Weights { params, buffers: theta.buffers.clone() }
}

/// `‖d‖` over every tensor.
pub fn norm(d: &[Tensor<f32>]) -> f64 {
    d.iter().flat_map(|t| &t.data).map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt()
}

/// The principal directions of a trajectory, and where its snapshots lie on them.
#[derive(Clone, Debug)]
pub struct Pca {
    /// Unit directions, in parameter order and shapes.
    pub dirs: Vec<Vec<Tensor<f32>>>,
    /// The share of the offsets' variance each direction explains.
    pub explained: Vec<f64>,
    /// Each snapshot's coordinates on the directions.
    pub path: Vec<Vec<f64>>,
}

/// The first `k` principal directions of `snapshots` around `theta` (at least `k + 1`
/// snapshots), by the eigen-decomposition of the offsets' Gram matrix in f64.
pub fn pca(theta: &Weights, snapshots: &[Weights], k: usize) -> Option<Pca> {
    let n = snapshots.len();
    if n < k + 1 {
        return None;
    }
    let flat = |w: &Weights| -> Vec<f64> {
        let pairs = w.params.iter().zip(&theta.params);
        pairs
            .flat_map(|(a, b)| a.data.iter().zip(&b.data).map(|(x, y)| *x as f64 - *y as f64))
            .collect()
    };
    let offsets: Vec<Vec<f64>> = snapshots.iter().map(flat).collect();
    let p = offsets[0].len();
    let mean: Vec<f64> =
        (0..p).map(|e| offsets.iter().map(|o| o[e]).sum::<f64>() / n as f64).collect();
    let centred: Vec<Vec<f64>> =
        offsets.iter().map(|o| o.iter().zip(&mean).map(|(x, m)| x - m).collect()).collect();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let gram = nalgebra::DMatrix::from_fn(n, n, |i, j| dot(&centred[i], &centred[j]));
    let eig = nalgebra::SymmetricEigen::new(gram);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
    let total: f64 = eig.eigenvalues.iter().map(|v| v.max(0.0)).sum();
    let (mut dirs, mut explained, mut flat_dirs) = (Vec::new(), Vec::new(), Vec::new());
    for &j in &order[..k] {
        let lambda = eig.eigenvalues[j];
        if !(lambda > 0.0) {
            return None;
        }
        let u = eig.eigenvectors.column(j);
        let mut d: Vec<f64> =
            (0..p).map(|e| (0..n).map(|i| u[i] * centred[i][e]).sum::<f64>()).collect();
        let norm = dot(&d, &d).sqrt();
        let sign = if dot(&offsets[0], &d) < 0.0 { -1.0 } else { 1.0 };
        d.iter_mut().for_each(|x| *x *= sign / norm);
        explained.push(lambda / total);
        flat_dirs.push(d);
    }
    for d in &flat_dirs {
        let mut at = 0;
        let tensors = theta.params.iter().map(|t| {
            let data = d[at..at + t.data.len()].iter().map(|x| *x as f32).collect();
            at += t.data.len();
            Tensor::new(t.shape.clone(), data)
        });
        dirs.push(tensors.collect());
    }
    let path = offsets.iter().map(|o| flat_dirs.iter().map(|d| dot(o, d)).collect()).collect();
    Some(Pca { dirs, explained, path })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: Vec<usize>, data: Vec<f32>) -> Tensor<f32> {
        Tensor::new(shape, data)
    }

    #[test]
    fn filter_normalization_gives_each_row_the_norm_of_thetas() {
        let theta = [t(vec![2, 2], vec![3.0, 4.0, 0.0, 1.0]), t(vec![2], vec![1.0, 1.0])];
        let mut d = vec![t(vec![2, 2], vec![1.0, 0.0, 0.0, -2.0]), t(vec![2], vec![2.0, 0.0])];
        normalize(&mut d, &theta, Norm::Filter, false);
        assert_eq!(d[0].data, [5.0, 0.0, 0.0, -1.0]);
        assert_eq!(d[1].data, [2f32.sqrt(), 0.0]);
        let mut d2 = vec![t(vec![2, 2], vec![1.0, 0.0, 0.0, -2.0]), t(vec![2], vec![2.0, 0.0])];
        normalize(&mut d2, &theta, Norm::Layer, true);
        let s = (26f64 / 5.0).sqrt() as f32;
        assert_eq!(d2[0].data, [s, 0.0, 0.0, -2.0 * s]);
        assert_eq!(d2[1].data, [0.0, 0.0], "ignored: a bias gets no direction");
    }

    #[test]
    fn pca_finds_the_plane_of_a_planar_trajectory() {
        // Snapshots θ + a_i·u + b_i·v with orthogonal u, v (|u| = 2, |v| = 1) and a, b
        // uncorrelated (so that centring does not rotate them): the first
        // direction is ±u/2 (the larger spread), the second ±v, the path the (2a, b).
        let theta = Weights { params: vec![t(vec![4], vec![1.0, 2.0, 3.0, 4.0])], buffers: vec![] };
        let (u, v) = ([2.0f32, 0.0, 0.0, 0.0], [0.0f32, 0.0, 1.0, 0.0]);
        let ab = [(3.0, 0.3), (2.0, -0.3), (1.0, -0.3), (0.0, 0.3)];
        let snaps: Vec<Weights> = ab
            .iter()
            .map(|&(a, b)| {
                let data = (0..4).map(|e| theta.params[0].data[e] + a * u[e] + b * v[e]).collect();
                Weights { params: vec![t(vec![4], data)], buffers: vec![] }
            })
            .collect();
        let p = pca(&theta, &snaps, 2).unwrap();
        let d: Vec<Vec<f32>> = p.dirs.iter().map(|d| d[0].data.clone()).collect();
        assert!((d[0][0] - 1.0).abs() < 1e-6 && d[0][1..].iter().all(|x| x.abs() < 1e-6), "{d:?}");
        assert!((d[1][2].abs() - 1.0).abs() < 1e-6, "{d:?}");
        for (c, &(a, b)) in p.path.iter().zip(&ab) {
            assert!((c[0] - 2.0 * a as f64).abs() < 1e-5, "{c:?}");
            assert!((c[1].abs() - (b as f64).abs()).abs() < 1e-5, "{c:?}");
        }
        assert!(
            p.explained[0] > p.explained[1] && (p.explained.iter().sum::<f64>() - 1.0).abs() < 1e-9
        );
        assert!(pca(&theta, &snaps[..2], 2).is_none(), "two snapshots span one direction");
    }

    #[test]
    fn the_origin_is_theta_itself() {
        let w = Weights { params: vec![t(vec![3], vec![0.1, -0.2, 0.3])], buffers: vec![] };
        let d = vec![vec![t(vec![3], vec![1.0, 2.0, 3.0])], vec![t(vec![3], vec![-1.0, 0.5, 7.0])]];
        assert_eq!(shifted(&w, &d, &[0.0, 0.0]), w);
        assert_eq!(shifted(&w, &d, &[1.0, 2.0]).params[0].data, [-0.9, 2.8, 17.3]);
    }
}
