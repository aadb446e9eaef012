//! Adagrad, RMSprop and Adadelta: per-element step sizes from running sums or averages of
//! squared gradients (torch.optim's definitions).

use super::Ctx;
use crate::graph::{BinaryOp, NodeId, ScalarArg, UnaryOp, F64};

/// torch.optim.Adagrad: `g += λθ`; `sum += g²`; `θ −= lr_t·g/(√sum + ε)` with
/// `lr_t = lr/(1 + (t−1)·lr_decay)`. State `sum`, starting at `initial_accumulator_value`.
pub(super) fn adagrad(u: &mut Ctx) -> NodeId {
    let (lr_decay, eps, init) = (u.h.lr_decay, u.h.eps, u.h.initial_accumulator_value);
    let d = u.decayed();
    let (si, sum) = u.state("sum", init);
    let sq = u.un(UnaryOp::Square, d);
    let sum = u.g.add2(sum, sq);
    u.set(si, sum);
    let root = u.un(UnaryOp::Sqrt, sum);
    let e = u.konst(eps);
    let denom = u.g.add2(root, e);
    let step = u.g.div(d, denom);
    if lr_decay == 0.0 {
        return u.descend(step);
    }
    // lr_t / lr = 1 / (1 + (t − 1)·lr_decay), a runtime scalar.
    let decay = u.arg(ScalarArg::AdagradDecay(F64::new(lr_decay)));
    let lr = u.lr();
    let clr = u.g.mul(lr, decay);
    let clr = u.bcast(clr);
    let delta = u.g.mul(clr, step);
    u.g.sub(u.theta, delta)
}

/// torch.optim.RMSprop: `g += λθ`; `v = αv + (1−α)g²`; centered: `ḡ = αḡ + (1−α)g`,
/// `a = √max(v − ḡ², 0) + ε`, else `a = √v + ε`; momentum μ > 0: `b = μb + g/a`,
/// `θ −= lr·b`, else `θ −= lr·g/a`. States `square_avg`, `grad_avg`, `momentum_buffer`.
/// (The `max(·, 0)` only guards rounding; PyTorch would take the root of a tiny negative.)
pub(super) fn rmsprop(u: &mut Ctx) -> NodeId {
    let (alpha, eps, mu, centered) = (u.h.alpha, u.h.eps, u.h.momentum, u.h.centered);
    let d = u.decayed();
    let sq = u.un(UnaryOp::Square, d);
    let (vi, v) = u.state("square_avg", 0.0);
    let v = u.ema(v, alpha, sq);
    u.set(vi, v);
    let var = if centered {
        let (gi, ga) = u.state("grad_avg", 0.0);
        let ga = u.ema(ga, alpha, d);
        u.set(gi, ga);
        let ga2 = u.un(UnaryOp::Square, ga);
        let diff = u.g.sub(v, ga2);
        let zero = u.konst(0.0);
        u.bin(BinaryOp::Max, diff, zero)
    } else {
        v
    };
    let root = u.un(UnaryOp::Sqrt, var);
    let e = u.konst(eps);
    let avg = u.g.add2(root, e);
    let step = u.g.div(d, avg);
    if mu <= 0.0 {
        return u.descend(step);
    }
    let (bi, buf) = u.state("momentum_buffer", 0.0);
    let mb = u.g.scale(buf, mu);
    let b = u.g.add2(mb, step);
    u.set(bi, b);
    u.descend(b)
}

/// torch.optim.Adadelta: `g += λθ`; `v = ρv + (1−ρ)g²`;
/// `Δ = √(acc + ε)/√(v + ε)·g`; `acc = ρ·acc + (1−ρ)Δ²`; `θ −= lr·Δ`.
/// States `square_avg`, `acc_delta`.
pub(super) fn adadelta(u: &mut Ctx) -> NodeId {
    let (rho, eps) = (u.h.rho, u.h.eps);
    let d = u.decayed();
    let sq = u.un(UnaryOp::Square, d);
    let (vi, v) = u.state("square_avg", 0.0);
    let (ai, acc) = u.state("acc_delta", 0.0);
    let v = u.ema(v, rho, sq);
    u.set(vi, v);
    let e = u.konst(eps);
    let ve = u.g.add2(v, e);
    let std = u.un(UnaryOp::Sqrt, ve);
    let ae = u.g.add2(acc, e);
    let rms = u.un(UnaryOp::Sqrt, ae);
    let ratio = u.g.div(rms, std);
    let delta = u.g.mul(ratio, d);
    let d2 = u.un(UnaryOp::Square, delta);
    let acc = u.ema(acc, rho, d2);
    u.set(ai, acc);
    u.descend(delta)
}
