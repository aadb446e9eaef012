//! SGD and the heavy ball: momentum methods without per-element scaling.

use super::Ctx;
use crate::graph::{BinaryOp, NodeId};

/// `[t = 1]` broadcast to the parameter's shape: the first step, when momentum buffers and
/// the previous iterate are taken from the current step.
fn first_step(u: &mut Ctx) -> NodeId {
    let t = u.t();
    let t = u.bcast(t);
    let one = u.konst(1.0);
    u.bin(BinaryOp::Eq, t, one)
}

/// torch.optim.SGD: `g += λθ`; `b = μb + (1−τ)g` (b₁ = g); `g = g + μb` (nesterov) or `b`;
/// `θ −= lr·g`. State `momentum_buffer` when μ > 0.
pub(super) fn sgd(u: &mut Ctx) -> NodeId {
    let (mu, tau, nesterov) = (u.h.momentum, u.h.dampening, u.h.nesterov);
    let mut d = u.decayed();
    if mu != 0.0 {
        let (si, buf) = u.state("momentum_buffer", 0.0);
        let mb = u.g.scale(buf, mu);
        let dg = u.g.scale(d, 1.0 - tau);
        let later = u.g.add2(mb, dg);
        let first = first_step(u);
        let b = u.g.select(first, d, later);
        u.set(si, b);
        d = if nesterov {
            let mb = u.g.scale(b, mu);
            u.g.add2(d, mb)
        } else {
            b
        };
    }
    u.descend(d)
}

/// Polyak's heavy ball: `g += λθ`; `θ_{t+1} = θ_t − lr·g + β(θ_t − θ_{t−1})` with
/// `θ₀ = θ₁` (no momentum on the first step). State `previous` holds `θ_{t−1}`.
pub(super) fn heavy_ball(u: &mut Ctx) -> NodeId {
    let beta = u.h.momentum;
    let d = u.decayed();
    let (si, prev) = u.state("previous", 0.0);
    let first = first_step(u);
    let prev = u.g.select(first, u.theta, prev);
    u.set(si, u.theta);
    let moved = u.g.sub(u.theta, prev);
    let push = u.g.scale(moved, beta);
    let stepped = u.descend(d);
    u.g.add2(stepped, push)
}
