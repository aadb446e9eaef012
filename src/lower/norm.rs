//! Normalization layers and weight normalization, decomposed into reductions, broadcasts and
//! elementwise ops, as PyTorch defines them (`x̂` then `y = x̂·weight + bias` when affine):
//!
//! | layer      | mode  | `x̂`                                                                 |
//! |------------|-------|---------------------------------------------------------------------|
//! | layer norm | both  | `(x − μ)/√(σ² + ε)`, μ and biased σ² over the last axis              |
//! | group norm | both  | `[N, d, ...]` viewed as `[N, G, d/G·...]`, normalized over the last axis |
//! | batch norm | train | `(x − μ)/√(σ² + ε)`, μ and biased σ² over every axis but 1 (channels) |
//! | batch norm | eval  | `(x − running_mean)/√(running_var + ε)`                              |
//!
//! Training-mode batch norm also moves its buffers (PyTorch's `momentum` convention):
//! `running_mean ← (1 − m)·running_mean + m·μ`,
//! `running_var ← (1 − m)·running_var + m·σ²·n/(n − 1)` (the unbiased variance; `n` is the
//! batch size, read at run time as `Σ` of a `[B, 1]` constant of ones, and `n − 1` is taken
//! as at least 1 so that a batch of one leaves a finite value where PyTorch raises), and
//! `num_batches_tracked ← num_batches_tracked + 1`. On images `[N, d, H, W]` (BatchNorm2d,
//! GroupNorm) the statistics and the affine parameters are per channel, and `n` is `B·H·W`.
//!
//! Weight normalization: `w = g·v/‖v_i‖` with the 2-norm of each row `v_i` of `v`
//! (`torch.nn.utils.weight_norm(..., dim = 0)`, no epsilon), then `x·wᵀ + b` as Dense.

use super::{Lowering, Mode};
use crate::check::Norm;
use crate::graph::{Axes, BinaryOp, Dim, Graph, NodeId, Reduce, Shape, UnaryOp};

/// A normalization layer applied to `x`, with its optional affine parameters. `x` is
/// `[N, d]` or images `[N, d, H, W]` (batch and group norm), `[..., d]` (layer norm).
pub(super) fn normalize(
    g: &mut Graph,
    cx: &mut Lowering,
    norm: Norm,
    x: NodeId,
    weight: Option<u32>,
    bias: Option<u32>,
) -> NodeId {
    let shape = g.shape(x).clone();
    let rank = shape.rank();
    let xhat = match norm {
        Norm::Layer { eps } => standardize(g, x, Axes::of(&[rank - 1]), eps).0,
        Norm::Group { groups, eps } => {
            // [N, d, ...] viewed as [N, G, d/G·...], normalized over the last axis.
            let per: u32 = shape.dims()[1..].iter().map(|&d| fixed(d)).product();
            let grouped =
                Shape(vec![shape.dims()[0], Dim::Fixed(groups), Dim::Fixed(per / groups)]);
            let xg = g.reshape(x, &grouped);
            let xhat = standardize(g, xg, Axes::of(&[2]), eps).0;
            g.reshape(xhat, &shape)
        }
        Norm::Batch { eps, momentum, buffer } => match cx.mode {
            Mode::Train => {
                let axes: Vec<usize> = (0..rank).filter(|&a| a != 1).collect();
                let (xhat, mean, var) = standardize(g, x, Axes::of(&axes), eps);
                update_running(g, cx, buffer, momentum, mean, var, &shape);
                xhat
            }
            Mode::Eval => {
                let (rm, rv) = (cx.buffer(g, buffer), cx.buffer(g, buffer + 1));
                let rm = per_channel(g, rm, &shape);
                let xc = g.sub(x, rm);
                let den = root_plus(g, rv, eps);
                let den = per_channel(g, den, &shape);
                g.div(xc, den)
            }
        },
    };
    affine(g, xhat, weight, bias, !matches!(norm, Norm::Layer { .. }))
}

/// `(x̂, μ, σ²)` over `axes`: `x̂ = (x − μ)/√(σ² + ε)` with the biased variance; μ and σ²
/// keep the axes with size 1.
fn standardize(g: &mut Graph, x: NodeId, axes: Axes, eps: f64) -> (NodeId, NodeId, NodeId) {
    let shape = g.shape(x).clone();
    let mean = mean_over(g, x, axes);
    let mb = g.broadcast(mean, &shape);
    let xc = g.sub(x, mb);
    let sq = g.unary(UnaryOp::Square, xc);
    let var = mean_over(g, sq, axes);
    let den = root_plus(g, var, eps);
    let den = g.broadcast(den, &shape);
    (g.div(xc, den), mean, var)
}

/// The mean over `axes`, keeping them with size 1: over the trailing run of `axes` first,
/// then over the rest. Each group has as many elements, so it is the mean over all of them,
/// and each step is a reduction over a suffix or a prefix of the axes, which the JIT fuses
/// into loops (batch norm on images reduces over axes 0, 2 and 3).
fn mean_over(g: &mut Graph, x: NodeId, axes: Axes) -> NodeId {
    let rank = g.shape(x).rank();
    let tail = (0..rank).rev().take_while(|&a| axes.contains(a)).collect::<Vec<_>>();
    let rest = axes.iter().filter(|a| !tail.contains(a)).collect::<Vec<_>>();
    let m = g.reduce(Reduce::Mean, x, Axes::of(&tail));
    g.reduce(Reduce::Mean, m, Axes::of(&rest))
}

/// `√(v + ε)`.
fn root_plus(g: &mut Graph, v: NodeId, eps: f64) -> NodeId {
    let e = g.constant(eps, g.shape(v).clone());
    let s = g.add2(v, e);
    g.unary(UnaryOp::Sqrt, s)
}

/// A per-channel vector `[d]` broadcast to `shape` (`[N, d]`, `[..., d]` or `[N, d, H, W]`,
/// where it is read as `[d, 1, 1]`).
fn per_channel(g: &mut Graph, v: NodeId, shape: &Shape) -> NodeId {
    let v = match shape.dims() {
        [_, c, _, _] => g.reshape(v, &Shape(vec![*c, Dim::Fixed(1), Dim::Fixed(1)])),
        _ => v,
    };
    g.broadcast(v, shape)
}

/// The running-statistics updates of a training-mode batch norm over `x: [B, d]` or
/// `[B, d, H, W]` (`shape`) whose batch mean and biased variance are `mean`, `var`
/// (`[1, d]`, `[1, d, 1, 1]`); `n` counts the values of a channel, `B·H·W`.
fn update_running(
    g: &mut Graph,
    cx: &mut Lowering,
    buffer: u32,
    m: f64,
    mean: NodeId,
    var: NodeId,
    shape: &Shape,
) {
    let d = Shape(vec![shape.dims()[1]]);
    let (mean, var) = (g.reshape(mean, &d), g.reshape(var, &d));
    // n/(max(n − 1, 1)), n the run-time batch size times the values per channel
    let ones = g.constant(1.0, Shape(vec![shape.dims()[0], Dim::Fixed(1)]));
    let n = g.sum_all(ones);
    let per: u32 = shape.dims()[2..].iter().map(|&d| fixed(d)).product();
    let n = if per > 1 { g.scale(n, per as f64) } else { n };
    let one = g.constant(1.0, Shape::scalar());
    let n1 = g.sub(n, one);
    let n1 = g.binary(BinaryOp::Max, n1, one);
    let corr = g.div(n, n1);
    let corr = g.broadcast(corr, &d);
    let unbiased = g.mul(var, corr);
    for (i, stat) in [(buffer, mean), (buffer + 1, unbiased)] {
        let old = cx.buffer(g, i);
        let kept = g.scale(old, 1.0 - m);
        let moved = g.scale(stat, m);
        let new = g.add2(kept, moved);
        cx.set_buffer(i, new);
    }
    let count = cx.buffer(g, buffer + 2);
    let one = g.constant(1.0, Shape::scalar());
    let count = g.add2(count, one);
    cx.set_buffer(buffer + 2, count);
}

/// `x̂·weight + bias`: per channel (see [`per_channel`]) for batch and group norm, along
/// the last axis for layer norm.
fn affine(
    g: &mut Graph,
    xhat: NodeId,
    weight: Option<u32>,
    bias: Option<u32>,
    channels: bool,
) -> NodeId {
    let shape = g.shape(xhat).clone();
    let spread = |g: &mut Graph, p: u32| {
        let p = g.param(p);
        if channels {
            per_channel(g, p, &shape)
        } else {
            g.broadcast(p, &shape)
        }
    };
    let mut y = xhat;
    if let Some(w) = weight {
        let w = spread(g, w);
        y = g.mul(y, w);
    }
    if let Some(b) = bias {
        let b = spread(g, b);
        y = g.add2(y, b);
    }
    y
}

/// `x·wᵀ + bias` with `w = g·v/‖v_i‖` (row norms); `out` is the result's shape.
pub(super) fn weight_norm_dense(
    g: &mut Graph,
    x: NodeId,
    gi: u32,
    vi: u32,
    bias: Option<u32>,
    out: &Shape,
) -> NodeId {
    let v = g.param(vi);
    let vshape = g.shape(v).clone();
    let sq = g.unary(UnaryOp::Square, v);
    let rows = g.reduce(Reduce::Sum, sq, Axes::of(&[1]));
    let norm = g.unary(UnaryOp::Sqrt, rows);
    let gp = g.param(gi);
    let scale = g.div(gp, norm);
    let scale = g.broadcast(scale, &vshape);
    let w = g.mul(v, scale);
    let y = g.matmul(x, w, false, true);
    match bias {
        Some(b) => {
            let b = g.param(b);
            let b = g.broadcast(b, out);
            g.add2(y, b)
        }
        None => y,
    }
}

fn fixed(d: Dim) -> u32 {
    match d {
        Dim::Fixed(n) => n,
        Dim::Batch => 1,
    }
}
