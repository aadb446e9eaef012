//! Loop kernels to Cranelift: `fn(ctx, start, end, bufs)`.
//!
//! ```text
//! entry:   buffer addresses; Inv values (once, exact scalar math); sink initialization
//! rows:    for i in start..end                       (flat kernels: one "row" start..end)
//!            Row values available at pass 0 (per-row loads)
//!            for each pass p: column loop over j, accumulating the row reductions fed
//!                             in pass p; the last pass also runs the in-loop sinks
//!                             (stores, column and full reductions)
//!                             then the Row values that became available
//!            per-row sinks (stores of Row values, full reductions of them)
//! epilogue: means of column/full reductions, stores of Inv values
//! ```
//! Column loops (`columns`) unroll [`UNROLL`] vectors, or [`UNROLL_MATH`] when the body calls
//! vectorized math, and none beyond [`UNROLL_BODY_MAX`] values. Rows of a small constant width are straight-line code; there every pass
//! of a row is one block, so a later pass reuses the vector values an earlier one computed
//! (the row's memo) instead of recomputing them. In wider rows, a vectorized math value
//! (tanh, exp, ...) that several passes need is computed once, in the first, and kept for
//! the others in a row scratch on the stack ([`SCRATCH_MAX`] columns at most).

use std::collections::HashMap;

use cranelift::prelude::*;

use super::columns::{column_loop, At, Lanes, Spec, STRAIGHT_MAX};
use super::dropout;
use super::ops::{self, Mode};
use super::{data_flags, Addr, Fx};
use crate::graph::BinaryOp;
use crate::jit::fuse::{Buf, KOp, Level, LoopKernel, Pat, RKind, SinkKind, V};

/// Vectors per iteration of the unrolled column loop.
pub const UNROLL: usize = 4;
/// The same for loops calling vectorized math, whose bodies are long (the rational tanh is
/// 30 instructions). Two copies per iteration halve the loop overhead and give the
/// out-of-order core two independent chains: E's tanh kernels ran 15-20% faster than with
/// one (`nnc bench examples/bench/e.nn --profile`, alternating: 19.5 → 16.5 µs and 35 → 32 µs);
/// four were no faster than two and double the code.
pub const UNROLL_MATH: usize = 2;
/// The most values a column loop's body may have and still be unrolled: a longer body has
/// independent work enough for the core, and copies of it only cost compile time (a
/// 4,000-value chain's Cranelift time fell from 1,261 to 727 ms at the same steps/s; no
/// kernel of configs A–E or `examples/*.nn` is that long: BENCHMARKS.md).
pub const UNROLL_BODY_MAX: usize = 64;
/// Widest constant row whose multi-pass math values are kept in a row scratch (floats).
pub const SCRATCH_MAX: u64 = 4096;

/// True if the kernel may be split across the pool: more than one thread, disjoint row
/// ranges can run in parallel (no shared accumulator), and it is not known to be too small.
pub fn may_split(k: &LoopKernel, threads: usize) -> bool {
    let independent =
        k.sinks.iter().all(|s| matches!(s.kind, SinkKind::Store(Level::Elem | Level::Row)));
    let small =
        (k.dom.rows * k.dom.cols).constant().is_some_and(|n| n < super::PAR_MIN_ELEMS as u64);
    threads > 1 && independent && !small
}

fn is_vec(l: Level) -> bool {
    matches!(l, Level::Elem | Level::Col)
}

pub(super) fn emit(fx: &mut Fx, k: &LoopKernel, threads: usize) {
    let p = fx.entry_params();
    let (start, end) = (p[1], p[2]);
    // A flat kernel of constant size that is never split runs over `0..n`, statically.
    let whole = (k.dom.rows * k.dom.cols).constant().filter(|_| k.flat && !may_split(k, threads));
    let mut st = St::new(fx, k);
    st.plan_scratch(fx);
    for v in 0..k.ops.len() {
        if k.levels[v] == Level::Inv {
            st.scalar_op(fx, v, true);
        }
    }
    st.init_sinks(fx);
    if let Some(n) = whole {
        st.row = st.ptr.clone();
        let (zero, n_) = (fx.iconst(0), fx.iconst(n as i64));
        st.pass(fx, 0, zero, n_, Some(n));
    } else if k.flat {
        st.row = st.ptr.clone();
        st.pass(fx, 0, start, end, None);
    } else {
        st.rows(fx, start, end);
    }
    st.epilogue(fx);
    fx.b.ins().return_(&[]);
}

/// Where a pass's accumulator goes: a row reduction op, or a full-reduction sink.
#[derive(Clone, Copy)]
enum Acc {
    Row(usize),
    Full(usize),
}

struct St<'k> {
    k: &'k LoopKernel,
    avail: Vec<usize>,
    passes: usize,
    /// Scalar values of Inv ops and of Row ops (current row).
    scalar: Vec<Option<Value>>,
    /// Their splats, for the ops vector code uses.
    splat: Vec<Option<Value>>,
    vec_use: Vec<bool>,
    ptr: HashMap<Buf, Value>,
    /// Where the current row of a Full-pattern buffer starts.
    row: HashMap<Buf, Value>,
    i: Option<Value>,
    cols: Value,
    /// Vector values of the current row by `(op, constant column)`: in straight-line rows
    /// every pass is one block, so later passes reuse what earlier ones computed.
    memo: std::cell::RefCell<HashMap<(usize, i64), Value>>,
    /// Math ops needed by several passes: the scratch holding them and the pass computing
    /// them.
    scratch: HashMap<usize, (codegen::ir::StackSlot, usize)>,
    /// The pass being emitted.
    cur_pass: usize,
}

impl<'k> St<'k> {
    fn new(fx: &mut Fx, k: &'k LoopKernel) -> St<'k> {
        let n = k.ops.len();
        let mut vec_use = vec![false; n];
        for (v, op) in k.ops.iter().enumerate() {
            if is_vec(k.levels[v]) {
                for a in args(op) {
                    vec_use[a.0 as usize] = true;
                }
            }
        }
        for s in k.sinks.iter().filter(|s| k.in_loop(s)) {
            vec_use[s.value.0 as usize] = true;
        }
        let uses_batch = k.dom.cols.has_batch()
            || k.ops.iter().any(|op| matches!(op, KOp::Count(s) if s.has_batch()));
        if uses_batch {
            fx.batch();
        }
        let mut ptr = HashMap::new();
        let bufs = k.ops.iter().filter_map(|op| match op {
            KOp::Load(b, _) => Some(*b),
            _ => None,
        });
        for b in bufs.chain(k.sinks.iter().map(|s| s.buf)) {
            ptr.entry(b).or_insert_with(|| fx.ptr(b));
        }
        let cols = fx.sym(k.dom.cols);
        St {
            k,
            avail: k.avail(),
            passes: k.passes(),
            scalar: vec![None; n],
            splat: vec![None; n],
            vec_use,
            ptr,
            row: HashMap::new(),
            i: None,
            cols,
            memo: Default::default(),
            scratch: HashMap::new(),
            cur_pass: 0,
        }
    }

    /// The values pass `p` feeds: row reductions available there and, in the last pass,
    /// the in-loop sinks.
    fn pass_roots(&self, p: usize) -> Vec<V> {
        let k = self.k;
        let reds = k.ops.iter().filter_map(|op| match *op {
            KOp::RowReduce(_, x) if self.avail[x.0 as usize] == p => Some(x),
            _ => None,
        });
        let last = p + 1 == self.passes;
        let sinks = k.sinks.iter().filter(|s| last && k.in_loop(s)).map(|s| s.value);
        reds.chain(sinks).collect()
    }

    /// Gives each math op needed by more than one pass of a wide constant row a scratch.
    fn plan_scratch(&mut self, fx: &mut Fx) {
        let Some(cols) = self.k.dom.cols.constant() else { return };
        if self.passes < 2 || self.k.flat || cols <= STRAIGHT_MAX || cols > SCRATCH_MAX {
            return;
        }
        let mut first: HashMap<usize, (usize, usize)> = HashMap::new();
        for p in 0..self.passes {
            let roots = self.pass_roots(p);
            for v in self.needed(roots.into_iter(), p).into_iter().filter(|&v| self.calls_math(v)) {
                first.entry(v).or_insert((p, 0)).1 += 1;
            }
        }
        let mut shared: Vec<(usize, usize)> =
            first.into_iter().filter(|(_, (_, n))| *n > 1).map(|(v, (p, _))| (v, p)).collect();
        shared.sort();
        for (v, p) in shared {
            let size = (4 * cols) as u32;
            let data = StackSlotData::new(StackSlotKind::ExplicitSlot, size, 4);
            self.scratch.insert(v, (fx.b.create_sized_stack_slot(data), p));
        }
    }

    /// The value of `v` in `mode` at the current point (`vals`: this body's vector values).
    fn get(&self, fx: &mut Fx, v: V, mode: Mode, vals: &HashMap<u32, Value>) -> Value {
        let i = v.0 as usize;
        if is_vec(self.k.levels[i]) {
            return vals[&v.0];
        }
        match mode {
            Mode::Vec => self.splat[i].unwrap_or_else(|| {
                let s = self.scalar[i].expect("value computed before use");
                ops::splat(fx, s)
            }),
            Mode::Scalar => self.scalar[i].expect("value computed before use"),
        }
    }

    /// Computes an Inv or Row op as a scalar (and its splat if vector code uses it).
    fn scalar_op(&mut self, fx: &mut Fx, v: usize, exact: bool) {
        let s = |st: &St, x: V| st.scalar[x.0 as usize].expect("operand computed first");
        let val = match self.k.ops[v] {
            KOp::Load(b, Pat::Scalar) => fx.b.ins().load(types::F32, data_flags(), self.ptr[&b], 0),
            KOp::Load(b, p) => {
                let mut i = self.i.expect("a row load inside the row loop");
                if let Pat::RowMap(m) = p {
                    if m.div > 1 {
                        i = fx.b.ins().udiv_imm_u(i, m.div as i64);
                    }
                    if let Some(c) = m.modulo {
                        i = fx.b.ins().urem_imm_u(i, c as i64);
                    }
                }
                let a = fx.addr(self.ptr[&b], i);
                fx.load(types::F32, a)
            }
            KOp::Const(bits) => fx.b.ins().f32const(f32::from_bits(bits)),
            KOp::Arg(a) => fx.arg(a),
            KOp::Count(n) => {
                let n = fx.sym(n);
                fx.b.ins().fcvt_from_sint(types::F32, n)
            }
            KOp::Unary(op, x) => {
                let x = s(self, x);
                ops::unary(fx, op, x, Mode::Scalar, exact)
            }
            KOp::Binary(op, x, y) => {
                let (x, y) = (s(self, x), s(self, y));
                ops::binary(fx, op, x, y, Mode::Scalar, exact)
            }
            KOp::Select(c, x, y) => {
                let (c, x, y) = (s(self, c), s(self, x), s(self, y));
                ops::select(fx, c, x, y, Mode::Scalar)
            }
            KOp::DropKey { salt, step } => {
                let t = s(self, step);
                dropout::key(fx, salt, t)
            }
            KOp::RowReduce(..) | KOp::Iota | KOp::DropMask { .. } => {
                unreachable!("not a scalar op")
            }
        };
        self.set_scalar(fx, v, val);
    }

    /// Records a scalar value (and its splat, when vector code uses it), computed here once
    /// for the loops that follow.
    fn set_scalar(&mut self, fx: &mut Fx, v: usize, val: Value) {
        self.scalar[v] = Some(val);
        if self.vec_use[v] {
            self.splat[v] = Some(ops::splat(fx, val));
        }
    }

    fn init_sinks(&mut self, fx: &mut Fx) {
        for s in &self.k.sinks {
            let init = match s.kind {
                SinkKind::ColReduce(kind) | SinkKind::FullReduce(kind) => ops::init(kind),
                SinkKind::Store(_) => continue,
            };
            let p = self.ptr[&s.buf];
            if let SinkKind::ColReduce(_) = s.kind {
                self.each_column(fx, p, &mut |fx, _, mode| ops::fconst(fx, init, mode));
            } else {
                let c = fx.b.ins().f32const(init);
                fx.b.ins().store(data_flags(), c, p, 0);
            }
        }
    }

    /// Over the kernel's columns of buffer `p` (a column reduction's row), vector by vector:
    /// stores `f(address, mode)` at each.
    fn each_column(&self, fx: &mut Fx, p: Value, f: &mut dyn FnMut(&mut Fx, Addr, Mode) -> Value) {
        let (zero, cols) = (fx.iconst(0), self.cols);
        let spec = Spec { kinds: &[], unroll: UNROLL, masked_tail: false };
        column_loop(fx, (zero, cols), self.k.dom.cols.constant(), spec, &mut |fx, at, _| {
            let a = fx.addr(p, at.j);
            let v = f(fx, a, at.lanes.mode());
            fx.store(v, a);
            vec![]
        });
    }

    /// The row loop over `start..end`.
    fn rows(&mut self, fx: &mut Fx, start: Value, end: Value) {
        let hdr = fx.block(&[types::I64]);
        let (body, exit) = (fx.b.create_block(), fx.b.create_block());
        fx.jump(hdr, &[start]);
        fx.b.switch_to_block(hdr);
        let i = fx.b.block_params(hdr)[0];
        let more = fx.b.ins().icmp(IntCC::SignedLessThan, i, end);
        fx.b.ins().brif(more, body, &[], exit, &[]);
        fx.b.switch_to_block(body);
        self.i = Some(i);
        self.memo.borrow_mut().clear();
        let base = fx.b.ins().imul(i, self.cols);
        let full: Vec<Buf> = self.full_bufs();
        self.row = full
            .into_iter()
            .map(|b| {
                let a = fx.addr(self.ptr[&b], base);
                (b, fx.pointer(a))
            })
            .collect();
        self.row_ops(fx, 0);
        let zero = fx.iconst(0);
        for p in 0..self.passes {
            self.pass(fx, p, zero, self.cols, self.k.dom.cols.constant());
            self.row_ops(fx, p + 1);
        }
        self.row_sinks(fx);
        let next = fx.b.ins().iadd_imm_s(i, 1);
        fx.jump(hdr, &[next]);
        fx.b.switch_to_block(exit);
    }

    /// Buffers read or written with the Full pattern.
    fn full_bufs(&self) -> Vec<Buf> {
        let loads = self.k.ops.iter().filter_map(|op| match op {
            KOp::Load(b, Pat::Full) => Some(*b),
            _ => None,
        });
        let stores = self.k.sinks.iter().filter_map(|s| match s.kind {
            SinkKind::Store(Level::Elem) => Some(s.buf),
            _ => None,
        });
        let mut v: Vec<Buf> = loads.chain(stores).collect();
        v.sort();
        v.dedup();
        v
    }

    /// The Row ops (other than row reductions) that become available after `a` passes.
    fn row_ops(&mut self, fx: &mut Fx, a: usize) {
        for v in 0..self.k.ops.len() {
            let row = self.k.levels[v] == Level::Row && self.avail[v] == a;
            if row && !matches!(self.k.ops[v], KOp::RowReduce(..)) {
                self.scalar_op(fx, v, false);
            }
        }
    }

    fn row_sinks(&mut self, fx: &mut Fx) {
        for s in &self.k.sinks {
            if self.k.in_loop(s) {
                continue;
            }
            let p = self.ptr[&s.buf];
            match s.kind {
                SinkKind::Store(Level::Row) => {
                    let x = self.scalar[s.value.0 as usize].expect("row value");
                    let a = fx.addr(p, self.i.expect("row loop"));
                    fx.store(x, a);
                }
                SinkKind::FullReduce(kind) => {
                    let x = self.scalar[s.value.0 as usize].expect("row value");
                    let old = fx.b.ins().load(types::F32, data_flags(), p, 0);
                    let new = ops::combine(fx, kind, old, x, Mode::Scalar);
                    fx.b.ins().store(data_flags(), new, p, 0);
                }
                _ => {}
            }
        }
    }

    /// Pass `p` over the columns `j0..jend` of the current row.
    fn pass(&mut self, fx: &mut Fx, p: usize, j0: Value, jend: Value, fixed: Option<u64>) {
        let k = self.k;
        let last = p + 1 == self.passes;
        let mut accs: Vec<(RKind, V, Acc)> = Vec::new();
        for (v, op) in k.ops.iter().enumerate() {
            if let KOp::RowReduce(kind, x) = *op {
                if self.avail[x.0 as usize] == p {
                    accs.push((kind, x, Acc::Row(v)));
                }
            }
        }
        let mut sinks = Vec::new();
        for (si, s) in k.sinks.iter().enumerate().filter(|(_, s)| last && k.in_loop(s)) {
            match s.kind {
                SinkKind::FullReduce(kind) => accs.push((kind, s.value, Acc::Full(si))),
                _ => sinks.push(si),
            }
        }
        if accs.is_empty() && sinks.is_empty() {
            return;
        }
        let roots = accs.iter().map(|a| a.1).chain(sinks.iter().map(|&si| k.sinks[si].value));
        let needed = self.needed(roots, p);
        self.cur_pass = p;
        let kinds: Vec<RKind> = accs.iter().map(|a| a.0).collect();
        let inputs: Vec<V> = accs.iter().map(|a| a.1).collect();
        let unroll = match needed.len() {
            n if n > UNROLL_BODY_MAX => 1,
            _ if needed.iter().any(|&v| self.calls_math(v)) => UNROLL_MATH,
            _ => UNROLL,
        };
        let spec = Spec { kinds: &kinds, unroll, masked_tail: true };
        let st = &*self;
        let fin = column_loop(fx, (j0, jend), fixed, spec, &mut |fx, at, acc| {
            let vals = st.body(fx, &needed, at);
            st.sinks_at(fx, &sinks, &vals, at);
            let mode = at.lanes.mode();
            let mut out = Vec::with_capacity(acc.len());
            for ((&kind, &x), &a) in kinds.iter().zip(&inputs).zip(acc) {
                let mut x = st.get(fx, x, mode, &vals);
                if let Lanes::Tail(r) = at.lanes {
                    x = ops::first_lanes(fx, x, r, ops::init(kind));
                }
                out.push(ops::combine(fx, kind, a, x, mode));
            }
            out
        });
        for ((kind, _, target), s) in accs.into_iter().zip(fin) {
            match target {
                Acc::Row(v) => self.set_scalar(fx, v, s),
                Acc::Full(si) => {
                    let ptr = self.ptr[&k.sinks[si].buf];
                    let old = fx.b.ins().load(types::F32, data_flags(), ptr, 0);
                    let new = ops::combine(fx, kind, old, s, Mode::Scalar);
                    fx.b.ins().store(data_flags(), new, ptr, 0);
                }
            }
        }
    }

    /// True if op `v` is a vectorized math function (exp, log, tanh, pow, ...).
    fn calls_math(&self, v: usize) -> bool {
        match self.k.ops[v] {
            KOp::Unary(u, _) => u.is_transcendental(),
            KOp::Binary(op, _, y) => op == BinaryOp::Pow && self.constant(y).is_none(),
            KOp::Load(..)
            | KOp::Const(_)
            | KOp::Arg(_)
            | KOp::Count(_)
            | KOp::Iota
            | KOp::Select(..)
            | KOp::RowReduce(..)
            | KOp::DropKey { .. }
            | KOp::DropMask { .. } => false,
        }
    }

    /// The value of a constant op.
    fn constant(&self, v: V) -> Option<f32> {
        match self.k.ops[v.0 as usize] {
            KOp::Const(bits) => Some(f32::from_bits(bits)),
            _ => None,
        }
    }

    /// The vector-level ops the given values depend on in pass `p`, in order (a value kept
    /// in a scratch by an earlier pass is reloaded, not recomputed from its operands).
    fn needed(&self, roots: impl Iterator<Item = V>, p: usize) -> Vec<usize> {
        let mut want = vec![false; self.k.ops.len()];
        let mut stack: Vec<usize> = roots.map(|v| v.0 as usize).collect();
        while let Some(v) = stack.pop() {
            if want[v] || !is_vec(self.k.levels[v]) {
                continue;
            }
            want[v] = true;
            if self.scratch.get(&v).is_some_and(|&(_, first)| first < p) {
                continue;
            }
            stack.extend(args(&self.k.ops[v]).map(|a| a.0 as usize));
        }
        (0..want.len()).filter(|&v| want[v]).collect()
    }

    /// The vector-level values at `at` (one vector, a partial one or one element).
    fn body(&self, fx: &mut Fx, needed: &[usize], at: At) -> HashMap<u32, Value> {
        let (mode, j) = (at.lanes.mode(), at.j);
        let mut vals: HashMap<u32, Value> = HashMap::new();
        for &v in needed {
            let key = at.jc.map(|c| (v, c));
            if let Some(val) = key.and_then(|k| self.memo.borrow().get(&k).copied()) {
                vals.insert(v as u32, val);
                continue;
            }
            let kept = self.scratch.get(&v).map(|&(slot, first)| {
                let base = fx.b.ins().stack_addr(types::I64, slot, 0);
                (fx.addr(base, j), first == self.cur_pass)
            });
            if let Some((a, false)) = kept {
                let val = fx.b.ins().load(mode.ty(), MemFlagsData::trusted(), a.base, a.off);
                vals.insert(v as u32, val);
                continue;
            }
            let val = match self.k.ops[v] {
                KOp::Load(b, p) => {
                    let base = if p == Pat::Full { self.row[&b] } else { self.ptr[&b] };
                    let a = fx.addr(base, j);
                    match at.lanes {
                        Lanes::Tail(r) => {
                            let mut x = ops::fconst(fx, 0.0, Mode::Vec);
                            for l in 0..r {
                                let e = fx.load(types::F32, a.plus(4 * l as i32));
                                x = fx.b.ins().insertlane(x, e, l);
                            }
                            x
                        }
                        _ => fx.load(mode.ty(), a),
                    }
                }
                KOp::Iota => {
                    let jf = fx.b.ins().fcvt_from_sint(types::F32, j);
                    match mode {
                        Mode::Scalar => jf,
                        Mode::Vec => {
                            let s = ops::splat(fx, jf);
                            let l = ops::lanes(fx);
                            fx.b.ins().fadd(s, l)
                        }
                    }
                }
                KOp::Unary(op, x) => {
                    let x = self.get(fx, x, mode, &vals);
                    ops::unary(fx, op, x, mode, false)
                }
                KOp::Binary(BinaryOp::Pow, x, y) if self.constant(y).is_some() => {
                    let x = self.get(fx, x, mode, &vals);
                    ops::pow_const(fx, x, self.constant(y).expect("constant"), mode)
                }
                KOp::Binary(op, x, y) => {
                    let (x, y) = (self.get(fx, x, mode, &vals), self.get(fx, y, mode, &vals));
                    ops::binary(fx, op, x, y, mode, false)
                }
                KOp::Select(c, x, y) => {
                    let c = self.get(fx, c, mode, &vals);
                    let (x, y) = (self.get(fx, x, mode, &vals), self.get(fx, y, mode, &vals));
                    ops::select(fx, c, x, y, mode)
                }
                KOp::DropMask { threshold, scale, key } => {
                    let k = self.get(fx, key, mode, &vals);
                    // The flat index of column j: `i·cols + j` (flat kernels: `j`).
                    let index = match self.i {
                        Some(i) => {
                            let r = fx.b.ins().imul(i, self.cols);
                            fx.b.ins().iadd(r, j)
                        }
                        None => j,
                    };
                    dropout::mask(fx, k, index, (threshold, scale), mode)
                }
                KOp::Const(_)
                | KOp::Arg(_)
                | KOp::Count(_)
                | KOp::RowReduce(..)
                | KOp::DropKey { .. } => unreachable!("scalar-level op in vector code"),
            };
            if let Some(k) = key {
                self.memo.borrow_mut().insert(k, val);
            }
            if let Some((a, true)) = kept {
                fx.b.ins().store(MemFlagsData::trusted(), val, a.base, a.off);
            }
            vals.insert(v as u32, val);
        }
        vals
    }

    /// The in-loop stores and column reductions at `at`.
    fn sinks_at(&self, fx: &mut Fx, sinks: &[usize], vals: &HashMap<u32, Value>, at: At) {
        let mode = at.lanes.mode();
        for &si in sinks {
            let s = &self.k.sinks[si];
            let x = self.get(fx, s.value, mode, vals);
            let base = match s.kind {
                SinkKind::Store(Level::Elem) => self.row[&s.buf],
                _ => self.ptr[&s.buf],
            };
            let a = fx.addr(base, at.j);
            // A partial vector is stored and reduced lane by lane.
            let lanes: Vec<(Value, i32)> = match at.lanes {
                Lanes::Tail(r) => {
                    (0..r).map(|l| (fx.b.ins().extractlane(x, l), 4 * l as i32)).collect()
                }
                _ => vec![(x, 0)],
            };
            let ty = if let Lanes::Tail(_) = at.lanes { types::F32 } else { mode.ty() };
            let lane_mode = if let Lanes::Tail(_) = at.lanes { Mode::Scalar } else { mode };
            for (x, off) in lanes {
                match s.kind {
                    SinkKind::Store(_) => fx.store(x, a.plus(off)),
                    SinkKind::ColReduce(kind) => {
                        let old = fx.load(ty, a.plus(off));
                        let new = ops::combine(fx, kind, old, x, lane_mode);
                        fx.store(new, a.plus(off));
                    }
                    SinkKind::FullReduce(_) => unreachable!("accumulated, not stored"),
                }
            }
        }
    }

    /// Means of the reductions and stores of values computed once.
    fn epilogue(&mut self, fx: &mut Fx) {
        for s in &self.k.sinks {
            let p = self.ptr[&s.buf];
            match (s.kind, s.mean) {
                (SinkKind::ColReduce(_), Some(n)) => {
                    let n = fx.sym(n);
                    let nf = fx.b.ins().fcvt_from_sint(types::F32, n);
                    self.each_column(fx, p, &mut |fx, a, mode| {
                        let x = fx.load(mode.ty(), a);
                        let d = if mode == Mode::Vec { ops::splat(fx, nf) } else { nf };
                        fx.b.ins().fdiv(x, d)
                    });
                }
                (SinkKind::FullReduce(_), Some(n)) => {
                    let n = fx.sym(n);
                    let nf = fx.b.ins().fcvt_from_sint(types::F32, n);
                    let x = fx.b.ins().load(types::F32, data_flags(), p, 0);
                    let q = fx.b.ins().fdiv(x, nf);
                    fx.b.ins().store(data_flags(), q, p, 0);
                }
                (SinkKind::Store(Level::Inv), _) => {
                    let x = self.scalar[s.value.0 as usize].expect("inv value");
                    fx.b.ins().store(data_flags(), x, p, 0);
                }
                _ => {}
            }
        }
    }
}

/// The operands of an op.
fn args(op: &KOp) -> impl Iterator<Item = V> {
    let v: Vec<V> = match *op {
        KOp::Unary(_, x) | KOp::RowReduce(_, x) => vec![x],
        KOp::DropKey { step: x, .. } | KOp::DropMask { key: x, .. } => vec![x],
        KOp::Binary(_, x, y) => vec![x, y],
        KOp::Select(c, x, y) => vec![c, x, y],
        KOp::Load(..) | KOp::Const(_) | KOp::Arg(_) | KOp::Count(_) | KOp::Iota => vec![],
    };
    v.into_iter()
}
