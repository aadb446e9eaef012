//! Layer-wise adaptive methods for large batches: one trust ratio per parameter tensor,
//! computed from 2-norms that are reductions to scalars (docs/methods.md#lars, #lamb).

use super::Ctx;
use crate::graph::{BinaryOp, NodeId, UnaryOp};

/// `[a > 0]·[b > 0]`, a scalar indicator: both norms are non-zero.
fn both_positive(u: &mut Ctx, a: NodeId, b: NodeId) -> NodeId {
    let zero = u.sconst(0.0);
    let pa = u.bin(BinaryOp::Gt, a, zero);
    let pb = u.bin(BinaryOp::Gt, b, zero);
    u.g.mul(pa, pb)
}

/// `num/den` where `ok`, else 1; the denominator is replaced by 1 where not `ok`, so no
/// infinity is ever computed.
fn ratio_or_one(u: &mut Ctx, ok: NodeId, num: NodeId, den: NodeId) -> NodeId {
    let one = u.sconst(1.0);
    let safe = u.g.select(ok, den, one);
    let r = u.g.div(num, safe);
    u.g.select(ok, r, one)
}

/// LARS (You et al. 2017): per tensor `local = η‖θ‖/(‖g‖ + λ‖θ‖)` (1 where a norm is 0);
/// `b = μb + lr·local·(g + λθ)` (state `momentum_buffer`); `θ −= b`.
pub(super) fn lars(u: &mut Ctx) -> NodeId {
    let (mu, wd, eta) = (u.h.momentum, u.h.weight_decay, u.h.trust_coefficient);
    let wn = u.norm(u.theta);
    let gn = u.norm(u.grad);
    let ok = both_positive(u, wn, gn);
    let num = u.g.scale(wn, eta);
    let wdn = u.g.scale(wn, wd);
    let den = u.g.add2(gn, wdn);
    let local = ratio_or_one(u, ok, num, den);
    let lr = u.lr();
    let k = u.g.mul(lr, local);
    let k = u.bcast(k);
    let d = u.decayed();
    let step = u.g.mul(k, d);
    let (bi, buf) = u.state("momentum_buffer", 0.0);
    let mb = u.g.scale(buf, mu);
    let b = u.g.add2(mb, step);
    u.set(bi, b);
    u.g.sub(u.theta, b)
}

/// LAMB (You et al. 2019): m, v as Adam (states `exp_avg`, `exp_avg_sq`);
/// `r = m̂/(√v̂ + ε) + λθ`; per tensor `θ −= lr·(‖θ‖/‖r‖)·r` (ratio 1 where a norm is 0).
pub(super) fn lamb(u: &mut Ctx) -> NodeId {
    let (b1, b2, eps, wd) = (u.h.beta1, u.h.beta2, u.h.eps, u.h.weight_decay);
    let (mi, m) = u.state("exp_avg", 0.0);
    let (vi, v) = u.state("exp_avg_sq", 0.0);
    let m = u.ema(m, b1, u.grad);
    let sq = u.un(UnaryOp::Square, u.grad);
    let v = u.ema(v, b2, sq);
    u.set(mi, m);
    u.set(vi, v);
    let corr1 = u.one_minus_pow_t(b1);
    let corr2 = u.one_minus_pow_t(b2);
    let corr1 = u.bcast(corr1);
    let corr2 = u.bcast(corr2);
    let mhat = u.g.div(m, corr1);
    let vhat = u.g.div(v, corr2);
    let root = u.un(UnaryOp::Sqrt, vhat);
    let e = u.konst(eps);
    let denom = u.g.add2(root, e);
    let r = u.g.div(mhat, denom);
    let r = if wd == 0.0 {
        r
    } else {
        let d = u.g.scale(u.theta, wd);
        u.g.add2(r, d)
    };
    let wn = u.norm(u.theta);
    let rn = u.norm(r);
    let ok = both_positive(u, wn, rn);
    let trust = ratio_or_one(u, ok, wn, rn);
    let lr = u.lr();
    let k = u.g.mul(lr, trust);
    let k = u.bcast(k);
    let delta = u.g.mul(k, r);
    u.g.sub(u.theta, delta)
}
