//! The Adam family: first and second moment estimates `exp_avg`, `exp_avg_sq` with bias
//! corrections `1 − βᵗ` and the other step-dependent factors as runtime scalars
//! ([`ScalarArg`], computed on the host in f64).

use super::Ctx;
use crate::graph::{BinaryOp, NodeId, ScalarArg, UnaryOp, F64};

/// `m = β₁m + (1−β₁)d`, `v = β₂v + (1−β₂)d²`, states `exp_avg` and `exp_avg_sq` updated.
fn moments(u: &mut Ctx, d: NodeId) -> (NodeId, NodeId) {
    let (b1, b2) = (u.h.beta1, u.h.beta2);
    let (mi, m) = u.state("exp_avg", 0.0);
    let (vi, v) = u.state("exp_avg_sq", 0.0);
    let m = u.ema(m, b1, d);
    let v1 = u.g.scale(v, b2);
    let sq = u.un(UnaryOp::Square, d);
    let g2 = u.g.scale(sq, 1.0 - b2);
    let v = u.g.add2(v1, g2);
    u.set(mi, m);
    u.set(vi, v);
    (m, v)
}

/// With `amsgrad`: `v̂ = max(v̂, v)` kept in state `max_exp_avg_sq`; else `v`.
fn max_if_amsgrad(u: &mut Ctx, v: NodeId) -> NodeId {
    if !u.h.amsgrad {
        return v;
    }
    let (xi, vmax) = u.state("max_exp_avg_sq", 0.0);
    let vmax = u.bin(BinaryOp::Max, vmax, v);
    u.set(xi, vmax);
    vmax
}

/// `θ·(1 − lr·λ)` (AdamW's decoupled decay), or `θ` when λ = 0.
fn decoupled_decay(u: &mut Ctx) -> NodeId {
    let wd = u.h.weight_decay;
    if wd == 0.0 {
        return u.theta;
    }
    let lr = u.lr();
    let k = u.sconst(wd);
    let lrk = u.g.mul(lr, k);
    let one = u.sconst(1.0);
    let f = u.g.sub(one, lrk);
    let f = u.bcast(f);
    u.g.mul(u.theta, f)
}

/// torch.optim.Adam / AdamW: Adam: `g += λθ`; AdamW: `θ −= lr·λ·θ` first. Then
/// `θ −= (lr/(1−β₁ᵗ))·m/(√v̂/√(1−β₂ᵗ) + ε)` with `v̂ = v`, or with amsgrad the running max
/// of `v` (state `max_exp_avg_sq`).
pub(super) fn adam(u: &mut Ctx, decoupled: bool) -> NodeId {
    let (b1, b2, eps) = (u.h.beta1, u.h.beta2, u.h.eps);
    let d = if decoupled { u.grad } else { u.decayed() };
    let (m, v) = moments(u, d);
    let v = max_if_amsgrad(u, v);
    // c₁ = lr/(1−β₁ᵗ), c₂ = 1/√(1−β₂ᵗ), scalars.
    let lr = u.lr();
    let corr1 = u.one_minus_pow_t(b1);
    let c1 = u.g.div(lr, corr1);
    let corr2 = u.one_minus_pow_t(b2);
    let r = u.un(UnaryOp::Sqrt, corr2);
    let c2 = u.un(UnaryOp::Recip, r);
    let c1 = u.bcast(c1);
    let c2 = u.bcast(c2);
    let root = u.un(UnaryOp::Sqrt, v);
    let scaled = u.g.mul(root, c2);
    let e = u.konst(eps);
    let denom = u.g.add2(scaled, e);
    let ratio = u.g.div(m, denom);
    let delta = u.g.mul(c1, ratio);
    let theta = if decoupled { decoupled_decay(u) } else { u.theta };
    u.g.sub(theta, delta)
}

/// `√(v/(1−β₂ᵗ)) + ε`, elementwise.
fn corrected_denom(u: &mut Ctx, v: NodeId) -> NodeId {
    let corr2 = u.one_minus_pow_t(u.h.beta2);
    let corr2 = u.bcast(corr2);
    let vhat = u.g.div(v, corr2);
    let root = u.un(UnaryOp::Sqrt, vhat);
    let e = u.konst(u.h.eps);
    u.g.add2(root, e)
}

/// torch.optim.NAdam: `g += λθ`; `μ_t = β₁(1 − ½·0.96^(tψ))`, `Π_t = μ₁…μ_t`; m, v as
/// Adam; `d = √(v/(1−β₂ᵗ)) + ε`; `θ −= lr(1−μ_t)/(1−Π_t)·g/d + lr·μ_{t+1}/(1−Π_t·μ_{t+1})·m/d`.
/// The two coefficients are runtime scalars (PyTorch's state `mu_product` is `Π_t`, a
/// function of `t` computed on the host).
pub(super) fn nadam(u: &mut Ctx) -> NodeId {
    let d = u.decayed();
    let (b1, psi) = (F64::new(u.h.beta1), F64::new(u.h.momentum_decay));
    let (m, v) = moments(u, d);
    let denom = corrected_denom(u, v);
    let lr = u.lr();
    let a = u.arg(ScalarArg::NadamGrad(b1, psi));
    let a = u.g.mul(lr, a);
    let b = u.arg(ScalarArg::NadamMomentum(b1, psi));
    let b = u.g.mul(lr, b);
    let a = u.bcast(a);
    let b = u.bcast(b);
    let gd = u.g.div(d, denom);
    let md = u.g.div(m, denom);
    let s1 = u.g.mul(a, gd);
    let s2 = u.g.mul(b, md);
    let delta = u.g.add2(s1, s2);
    u.g.sub(u.theta, delta)
}

/// torch.optim.RAdam: `g += λθ`; m, v as Adam; `m̂ = m/(1−β₁ᵗ)`; `ρ∞ = 2/(1−β₂) − 1`,
/// `ρ_t = ρ∞ − 2tβ₂ᵗ/(1−β₂ᵗ)`; if `ρ_t > 5`:
/// `θ −= lr·m̂·r·√(1−β₂ᵗ)/(√v + ε)` with `r = √((ρ_t−4)(ρ_t−2)ρ∞/((ρ∞−4)(ρ∞−2)ρ_t))`,
/// else `θ −= lr·m̂`. `r` is a runtime scalar, 0 when `ρ_t ≤ 5`; the switch is a compare
/// and select on it.
pub(super) fn radam(u: &mut Ctx) -> NodeId {
    let (b2, eps) = (u.h.beta2, u.h.eps);
    let d = u.decayed();
    let (m, v) = moments(u, d);
    let corr1 = u.one_minus_pow_t(u.h.beta1);
    let corr2 = u.one_minus_pow_t(b2);
    let rect = u.arg(ScalarArg::RadamRect(F64::new(b2)));
    let zero = u.sconst(0.0);
    let on = u.bin(BinaryOp::Gt, rect, zero);
    let lr = u.lr();
    // Scalars: lr/(1−β₁ᵗ) for the plain step, times r·√(1−β₂ᵗ) for the rectified one.
    let plain = u.g.div(lr, corr1);
    let root2 = u.un(UnaryOp::Sqrt, corr2);
    let k = u.g.mul(plain, rect);
    let k = u.g.mul(k, root2);
    let plain = u.bcast(plain);
    let k = u.bcast(k);
    let on = u.bcast(on);
    let root = u.un(UnaryOp::Sqrt, v);
    let e = u.konst(eps);
    let denom = u.g.add2(root, e);
    let adaptive = u.g.div(m, denom);
    let rectified = u.g.mul(k, adaptive);
    let sgd = u.g.mul(plain, m);
    let delta = u.g.select(on, rectified, sgd);
    u.g.sub(u.theta, delta)
}

/// torch.optim.Adamax: `g += λθ`; `m = β₁m + (1−β₁)g`; `u = max(β₂u, |g| + ε)` (state
/// `exp_inf`); `θ −= lr/(1−β₁ᵗ)·m/u`.
pub(super) fn adamax(u: &mut Ctx) -> NodeId {
    let (b1, b2, eps) = (u.h.beta1, u.h.beta2, u.h.eps);
    let d = u.decayed();
    let (mi, m) = u.state("exp_avg", 0.0);
    let (ii, inf) = u.state("exp_inf", 0.0);
    let m = u.ema(m, b1, d);
    u.set(mi, m);
    let decayed = u.g.scale(inf, b2);
    let a = u.un(UnaryOp::Abs, d);
    let e = u.konst(eps);
    let ae = u.g.add2(a, e);
    let inf = u.bin(BinaryOp::Max, decayed, ae);
    u.set(ii, inf);
    let lr = u.lr();
    let corr1 = u.one_minus_pow_t(b1);
    let clr = u.g.div(lr, corr1);
    let clr = u.bcast(clr);
    let ratio = u.g.div(m, inf);
    let delta = u.g.mul(clr, ratio);
    u.g.sub(u.theta, delta)
}

/// AdaBound (Luo et al. 2019, the authors' implementation): `g += λθ`; m, v as Adam;
/// `η = clamp(lr·√(1−β₂ᵗ)/(1−β₁ᵗ)/(√v + ε), η_l, η_u)` elementwise with
/// `f = final_lr·lr_t/lr` (the schedule moves the bounds too), `η_l = f(1 − 1/(γt + 1))`,
/// `η_u = f(1 + 1/(γt))`; `θ −= η·m`.
pub(super) fn adabound(u: &mut Ctx) -> NodeId {
    let (b1, b2, eps, gamma) = (u.h.beta1, u.h.beta2, u.h.eps, u.h.gamma);
    let d = u.decayed();
    let (m, v) = moments(u, d);
    let lr = u.lr();
    let corr1 = u.one_minus_pow_t(b1);
    let corr2 = u.one_minus_pow_t(b2);
    let root2 = u.un(UnaryOp::Sqrt, corr2);
    let size = u.g.mul(lr, root2);
    let size = u.g.div(size, corr1);
    // f = final_lr·lr_t/lr; the bounds f·(1 − 1/(γt+1)) and f·(1 + 1/(γt)), scalars.
    let f = u.g.scale(lr, u.h.final_lr / u.h.lr);
    let lower = u.arg(ScalarArg::AdaBoundLower(F64::new(gamma)));
    let lower = u.g.mul(f, lower);
    let upper = u.arg(ScalarArg::AdaBoundUpper(F64::new(gamma)));
    let upper = u.g.mul(f, upper);
    let size = u.bcast(size);
    let lower = u.bcast(lower);
    let upper = u.bcast(upper);
    let root = u.un(UnaryOp::Sqrt, v);
    let e = u.konst(eps);
    let denom = u.g.add2(root, e);
    let eta = u.g.div(size, denom);
    let eta = u.bin(BinaryOp::Max, eta, lower);
    let eta = u.bin(BinaryOp::Min, eta, upper);
    let delta = u.g.mul(eta, m);
    u.g.sub(u.theta, delta)
}

/// Padam (Chen & Gu 2018; docs/methods.md#padam): `g += λθ`; m, v as Adam; with amsgrad
/// `v` is the running max (state `max_exp_avg_sq`); `m̂ = m/(1−β₁ᵗ)`, `v̂ = v/(1−β₂ᵗ)`;
/// `θ −= lr·m̂/(v̂^p + ε)`. `p = ½` without amsgrad is Adam.
pub(super) fn padam(u: &mut Ctx) -> NodeId {
    let (b1, b2, eps, p) = (u.h.beta1, u.h.beta2, u.h.eps, u.h.partial);
    let d = u.decayed();
    let (m, v) = moments(u, d);
    let v = max_if_amsgrad(u, v);
    let lr = u.lr();
    let corr1 = u.one_minus_pow_t(b1);
    let c1 = u.g.div(lr, corr1);
    let c1 = u.bcast(c1);
    let corr2 = u.one_minus_pow_t(b2);
    let corr2 = u.bcast(corr2);
    let vhat = u.g.div(v, corr2);
    let pk = u.konst(p);
    let vp = u.bin(BinaryOp::Pow, vhat, pk);
    let e = u.konst(eps);
    let denom = u.g.add2(vp, e);
    let ratio = u.g.div(m, denom);
    let delta = u.g.mul(c1, ratio);
    u.g.sub(u.theta, delta)
}
