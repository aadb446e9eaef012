//! Index kernels to Cranelift: concatenation, slicing, embedding lookup and scatter-add as
//! scalar loops with run-time addressing (the semantics are on [`IndexOp`]). The kernel
//! function has the usual `(ctx, start, end, bufs)` signature but always runs whole: a
//! scatter-add accumulates into shared rows, and the others are copies too cheap to split.
//!
//! Memory safety: every id is converted with saturation (`NaN` → 0) and clamped into
//! `0..V` before it scales an address, so a bad id reads or writes a valid row, never
//! outside the table (the runtime rejects ids read straight from an input beforehand, with
//! the interpreter's error). Every other offset is a product of sizes from the plan.

use cranelift::prelude::*;

use super::generic::for_range;
use super::Fx;
use crate::jit::fuse::{IndexKernel, IndexOp};

pub(super) fn emit(fx: &mut Fx, k: &IndexKernel) {
    let out = fx.ptr(k.out);
    let srcs: Vec<Value> = k.srcs.iter().map(|&b| fx.ptr(b)).collect();
    let zero = fx.iconst(0);
    match k.op {
        IndexOp::Concat { outer, ra, rb } => {
            let (outer, ra, rb) = (fx.sym(outer), fx.sym(ra), fx.sym(rb));
            let row = fx.b.ins().iadd(ra, rb);
            for_range(fx, zero, outer, &mut |fx, o| {
                let dst = fx.b.ins().imul(o, row);
                let (sa, sb) = (fx.b.ins().imul(o, ra), fx.b.ins().imul(o, rb));
                copy(fx, (srcs[0], sa), (out, dst), ra);
                let dst_b = fx.b.ins().iadd(dst, ra);
                copy(fx, (srcs[1], sb), (out, dst_b), rb);
            });
        }
        IndexOp::Slice { outer, row, from, len } => {
            let (outer, row, from, len) = (fx.sym(outer), fx.sym(row), fx.sym(from), fx.sym(len));
            for_range(fx, zero, outer, &mut |fx, o| {
                let at = fx.b.ins().imul(o, row);
                let src = fx.b.ins().iadd(at, from);
                let dst = fx.b.ins().imul(o, len);
                copy(fx, (srcs[0], src), (out, dst), len);
            });
        }
        IndexOp::Gather { count, v, d } => {
            let (count, d) = (fx.sym(count), fx.iconst(d as i64));
            let (table, ids) = (srcs[0], srcs[1]);
            for_range(fx, zero, count, &mut |fx, n| {
                let r = row_of(fx, ids, n, v);
                let src = fx.b.ins().imul(r, d);
                let dst = fx.b.ins().imul(n, d);
                copy(fx, (table, src), (out, dst), d);
            });
        }
        IndexOp::ScatterAdd { count, v, d } => {
            let total = fx.iconst(v as i64 * d as i64);
            let (count, d) = (fx.sym(count), fx.iconst(d as i64));
            let (ids, g) = (srcs[0], srcs[1]);
            let fzero = fx.b.ins().f32const(0.0);
            for_range(fx, zero, total, &mut |fx, e| {
                let a = fx.addr(out, e);
                fx.store(fzero, a);
            });
            for_range(fx, zero, count, &mut |fx, n| {
                let r = row_of(fx, ids, n, v);
                let (dst, src) = (fx.b.ins().imul(r, d), fx.b.ins().imul(n, d));
                let z = fx.iconst(0);
                for_range(fx, z, d, &mut |fx, j| {
                    let (o, i) = (fx.b.ins().iadd(dst, j), fx.b.ins().iadd(src, j));
                    let (oa, ia) = (fx.addr(out, o), fx.addr(g, i));
                    let old = fx.load(types::F32, oa);
                    let x = fx.load(types::F32, ia);
                    let sum = fx.b.ins().fadd(old, x);
                    fx.store(sum, oa);
                });
            });
        }
    }
    fx.b.ins().return_(&[]);
}

/// `clamp(trunc(ids[n]), 0, v − 1)` as an i64 (saturating conversion: NaN gives 0).
fn row_of(fx: &mut Fx, ids: Value, n: Value, v: u32) -> Value {
    let a = fx.addr(ids, n);
    let id = fx.load(types::F32, a);
    let i = fx.b.ins().fcvt_to_sint_sat(types::I64, id);
    let (lo, hi) = (fx.iconst(0), fx.iconst(v.saturating_sub(1) as i64));
    let below = fx.b.ins().icmp(IntCC::SignedLessThan, i, lo);
    let i = fx.b.ins().select(below, lo, i);
    let above = fx.b.ins().icmp(IntCC::SignedGreaterThan, i, hi);
    fx.b.ins().select(above, hi, i)
}

/// `dst[dst_off + j] = src[src_off + j]` for `j < n`.
fn copy(fx: &mut Fx, (src, so): (Value, Value), (dst, d_off): (Value, Value), n: Value) {
    let zero = fx.iconst(0);
    for_range(fx, zero, n, &mut |fx, j| {
        let (s, d) = (fx.b.ins().iadd(so, j), fx.b.ins().iadd(d_off, j));
        let (sa, da) = (fx.addr(src, s), fx.addr(dst, d));
        let x = fx.load(types::F32, sa);
        fx.store(x, da);
    });
}
