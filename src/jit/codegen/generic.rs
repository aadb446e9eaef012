//! The general kernels, scalar loops with index arithmetic, for views and reductions no
//! loop-kernel pattern covers (a transposed operand of an elementwise op, a reduction over a
//! middle axis). Correct for any shape and strides; not fast, and rare.
//!
//! ```text
//! gather:  for e in start..end:  out[e] = src[Σₖ idxₖ(e)·strideₖ]
//! reduce:  out[·] = init;  for e in 0..numel:  out[Σ idx·out_strideₖ] ⊕= src[Σ idx·strideₖ]
//!          then out /= count for a mean
//! ```
//! where `idx(e)` is the row-major multi-index of flat index `e` (divisions by the dims).

use cranelift::prelude::*;

use super::ops::{self, Mode};
use super::Fx;
use crate::jit::fuse::{GatherKernel, ReduceKernel, Sym};

/// Emits `for e in start..end { f(e) }`.
pub(super) fn for_range(fx: &mut Fx, start: Value, end: Value, f: &mut dyn FnMut(&mut Fx, Value)) {
    let hdr = fx.block(&[types::I64]);
    let (body, exit) = (fx.b.create_block(), fx.b.create_block());
    fx.jump(hdr, &[start]);
    fx.b.switch_to_block(hdr);
    let e = fx.b.block_params(hdr)[0];
    let more = fx.b.ins().icmp(IntCC::SignedLessThan, e, end);
    fx.b.ins().brif(more, body, &[], exit, &[]);
    fx.b.switch_to_block(body);
    f(fx, e);
    let next = fx.b.ins().iadd_imm_s(e, 1);
    fx.jump(hdr, &[next]);
    fx.b.switch_to_block(exit);
}

/// `Σₖ idxₖ(e)·stridesₖ[k]` for each stride set, `idx` the multi-index of `e` in `dims`.
fn offsets(fx: &mut Fx, e: Value, dims: &[Value], strides: &[Vec<Value>]) -> Vec<Value> {
    let mut offs: Vec<Value> = strides.iter().map(|_| fx.iconst(0)).collect();
    let mut rem = e;
    for k in (0..dims.len()).rev() {
        let idx = if k == 0 { rem } else { fx.b.ins().urem(rem, dims[k]) };
        if k > 0 {
            rem = fx.b.ins().udiv(rem, dims[k]);
        }
        for (o, st) in offs.iter_mut().zip(strides) {
            let t = fx.b.ins().imul(idx, st[k]);
            *o = fx.b.ins().iadd(*o, t);
        }
    }
    offs
}

fn syms(fx: &mut Fx, s: &[Sym]) -> Vec<Value> {
    s.iter().map(|&x| fx.sym(x)).collect()
}

pub(super) fn gather(fx: &mut Fx, g: &GatherKernel) {
    let p = fx.entry_params();
    let (start, end) = (p[1], p[2]);
    let (src, out) = (fx.ptr(g.src), fx.ptr(g.out));
    let dims = syms(fx, &g.dims);
    let strides = vec![syms(fx, &g.strides)];
    for_range(fx, start, end, &mut |fx, e| {
        let off = offsets(fx, e, &dims, &strides)[0];
        let a = fx.addr(src, off);
        let x = fx.load(types::F32, a);
        let o = fx.addr(out, e);
        fx.store(x, o);
    });
    fx.b.ins().return_(&[]);
}

pub(super) fn reduce(fx: &mut Fx, r: &ReduceKernel) {
    let (src, out) = (fx.ptr(r.src), fx.ptr(r.out));
    let dims = syms(fx, &r.dims);
    let strides = vec![syms(fx, &r.strides), syms(fx, &r.out_strides)];
    let (zero, out_n, n) = (fx.iconst(0), fx.sym(r.out_size), fx.sym(Sym::product(&r.dims)));
    let count = r.mean.map(|c| fx.sym(c));
    let init = fx.b.ins().f32const(ops::init(r.kind));
    for_range(fx, zero, out_n, &mut |fx, e| {
        let o = fx.addr(out, e);
        fx.store(init, o);
    });
    for_range(fx, zero, n, &mut |fx, e| {
        let offs = offsets(fx, e, &dims, &strides);
        let a = fx.addr(src, offs[0]);
        let x = fx.load(types::F32, a);
        let o = fx.addr(out, offs[1]);
        let old = fx.load(types::F32, o);
        let new = ops::combine(fx, r.kind, old, x, Mode::Scalar);
        fx.store(new, o);
    });
    if let Some(c) = count {
        let cf = fx.b.ins().fcvt_from_sint(types::F32, c);
        for_range(fx, zero, out_n, &mut |fx, e| {
            let o = fx.addr(out, e);
            let x = fx.load(types::F32, o);
            let q = fx.b.ins().fdiv(x, cf);
            fx.store(q, o);
        });
    }
    fx.b.ins().return_(&[]);
}
