//! Column loops: the innermost loop of a loop kernel, over the columns `j0..jend` of one
//! row (or the elements of a flat kernel), calling a body per vector.
//!
//! ```text
//! unrolled:  while j + 4u ≤ end: u bodies at j, j+4, … (u independent accumulators)
//! vector:    while j + 4 ≤ end:  one body
//! scalar:    while j < end:      one body on one element
//! ```
//! When the trip count is a small constant ([`STRAIGHT_MAX`]), the loop is straight-line
//! code instead: one body per vector at constant columns, and the last `n mod 4` columns as
//! one partial vector (masked lanes) rather than scalars; loops that cannot run are left out.
//! Reductions combine the accumulators lane-wise, then across lanes.

use cranelift::prelude::*;

use super::ops::{self, Mode};
use super::Fx;
use crate::jit::fuse::RKind;

/// Constant column counts up to this are emitted as straight-line code.
pub const STRAIGHT_MAX: u64 = 32;

/// What one body of a column loop computes: a vector, the first `r` lanes of a vector (the
/// tail of a row of constant width), or one element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Lanes {
    Vec,
    Tail(u8),
    Scalar,
}

impl Lanes {
    pub(super) fn mode(self) -> Mode {
        if self == Lanes::Scalar {
            Mode::Scalar
        } else {
            Mode::Vec
        }
    }
}

/// Where a body runs: column `j`, known at compile time as `jc` in straight-line code.
#[derive(Clone, Copy, Debug)]
pub(super) struct At {
    pub j: Value,
    pub jc: Option<i64>,
    pub lanes: Lanes,
}

/// A column loop's accumulators and shape.
pub(super) struct Spec<'a> {
    pub kinds: &'a [RKind],
    pub unroll: usize,
    /// Straight-line code may end with a masked partial vector instead of scalars.
    pub masked_tail: bool,
}

/// The body of a column loop: `(where, accumulators) → accumulators`.
pub(super) type Body<'b> = dyn FnMut(&mut Fx, At, &[Value]) -> Vec<Value> + 'b;

/// Runs `body` over `j0..jend` (see the module doc) with one accumulator per `spec.kinds`;
/// returns the accumulators reduced to scalars. `fixed` is the trip count when it is a
/// constant and `j0 = 0`.
pub(super) fn column_loop(
    fx: &mut Fx,
    (j0, jend): (Value, Value),
    fixed: Option<u64>,
    spec: Spec,
    body: &mut Body,
) -> Vec<Value> {
    let (kinds, unroll) = (spec.kinds, spec.unroll);
    let init = |fx: &mut Fx, mode| {
        kinds.iter().map(|&k| ops::fconst(fx, ops::init(k), mode)).collect::<Vec<_>>()
    };
    if let Some(n) = fixed.filter(|&n| n <= STRAIGHT_MAX) {
        let nv = n / 4;
        let tail = spec.masked_tail && n % 4 != 0;
        let sets = ((nv + u64::from(tail)) as usize).clamp(1, unroll.max(2));
        let mut acc: Vec<Vec<Value>> = (0..sets).map(|_| init(fx, Mode::Vec)).collect();
        let chunks = (0..nv)
            .map(|q| (4 * q, Lanes::Vec))
            .chain(tail.then_some((4 * nv, Lanes::Tail((n % 4) as u8))));
        for (q, (jc, lanes)) in chunks.enumerate() {
            let j = fx.iconst(jc as i64);
            let a = acc[q % sets].clone();
            acc[q % sets] = body(fx, At { j, jc: Some(jc as i64), lanes }, &a);
        }
        let v = combine_sets(fx, kinds, acc);
        let mut s: Vec<Value> =
            kinds.iter().zip(&v).map(|(&k, &x)| ops::hreduce(fx, k, x)).collect();
        if !tail {
            for t in 4 * nv..n {
                let j = fx.iconst(t as i64);
                s = body(fx, At { j, jc: Some(t as i64), lanes: Lanes::Scalar }, &s);
            }
        }
        return s;
    }
    let step = (4 * unroll) as i64;
    let (need_u, need_v, need_s) = match fixed {
        Some(n) => {
            (n >= step as u64 && unroll > 1, n % step as u64 >= 4 || unroll == 1, n % 4 != 0)
        }
        None => (unroll > 1, true, true),
    };
    let vec_at = |j| At { j, jc: None, lanes: Lanes::Vec };
    let (mut j, mut accv) = (j0, init(fx, Mode::Vec));
    if need_u {
        let mut tys = vec![types::I64];
        tys.extend(std::iter::repeat_n(types::F32X4, unroll * kinds.len()));
        let hdr = fx.block(&tys);
        let (bb, exit) = (fx.b.create_block(), fx.b.create_block());
        let mut start = vec![j];
        for _ in 0..unroll {
            start.extend(init(fx, Mode::Vec));
        }
        fx.jump(hdr, &start);
        fx.b.switch_to_block(hdr);
        let ps = fx.b.block_params(hdr).to_vec();
        let next = fx.b.ins().iadd_imm_s(ps[0], step);
        let fits = fx.b.ins().icmp(IntCC::SignedLessThanOrEqual, next, jend);
        fx.b.ins().brif(fits, bb, &[], exit, &[]);
        fx.b.switch_to_block(bb);
        let sets: Vec<Vec<Value>> =
            ps[1..].chunks(kinds.len().max(1)).map(|c| c.to_vec()).collect();
        let mut back = vec![next];
        for u in 0..unroll {
            let ju = fx.b.ins().iadd_imm_s(ps[0], 4 * u as i64);
            let a = sets.get(u).cloned().unwrap_or_default();
            back.extend(body(fx, vec_at(ju), &a));
        }
        fx.jump(hdr, &back);
        fx.b.switch_to_block(exit);
        j = ps[0];
        accv = if kinds.is_empty() { vec![] } else { combine_sets(fx, kinds, sets) };
    }
    if need_v {
        let mut tys = vec![types::I64];
        tys.extend(std::iter::repeat_n(types::F32X4, kinds.len()));
        let (hdr, bb, exit) = (fx.block(&tys), fx.b.create_block(), fx.b.create_block());
        let mut start = vec![j];
        start.extend(&accv);
        fx.jump(hdr, &start);
        fx.b.switch_to_block(hdr);
        let ps = fx.b.block_params(hdr).to_vec();
        let next = fx.b.ins().iadd_imm_s(ps[0], 4);
        let fits = fx.b.ins().icmp(IntCC::SignedLessThanOrEqual, next, jend);
        fx.b.ins().brif(fits, bb, &[], exit, &[]);
        fx.b.switch_to_block(bb);
        let mut back = vec![next];
        back.extend(body(fx, vec_at(ps[0]), &ps[1..]));
        fx.jump(hdr, &back);
        fx.b.switch_to_block(exit);
        j = ps[0];
        accv = ps[1..].to_vec();
    }
    let mut s: Vec<Value> =
        kinds.iter().zip(&accv).map(|(&k, &x)| ops::hreduce(fx, k, x)).collect();
    if need_s {
        let mut tys = vec![types::I64];
        tys.extend(std::iter::repeat_n(types::F32, kinds.len()));
        let (hdr, bb, exit) = (fx.block(&tys), fx.b.create_block(), fx.b.create_block());
        let mut start = vec![j];
        start.extend(&s);
        fx.jump(hdr, &start);
        fx.b.switch_to_block(hdr);
        let ps = fx.b.block_params(hdr).to_vec();
        let more = fx.b.ins().icmp(IntCC::SignedLessThan, ps[0], jend);
        fx.b.ins().brif(more, bb, &[], exit, &[]);
        fx.b.switch_to_block(bb);
        let next = fx.b.ins().iadd_imm_s(ps[0], 1);
        let mut back = vec![next];
        back.extend(body(fx, At { j: ps[0], jc: None, lanes: Lanes::Scalar }, &ps[1..]));
        fx.jump(hdr, &back);
        fx.b.switch_to_block(exit);
        s = ps[1..].to_vec();
    }
    s
}

/// Sets of vector accumulators combined lane-wise into one.
fn combine_sets(fx: &mut Fx, kinds: &[RKind], sets: Vec<Vec<Value>>) -> Vec<Value> {
    let mut it = sets.into_iter();
    let mut acc = it.next().unwrap_or_default();
    for set in it {
        acc = kinds
            .iter()
            .zip(acc.iter().zip(&set))
            .map(|(&k, (&a, &b))| ops::combine(fx, k, a, b, Mode::Vec))
            .collect();
    }
    acc
}
