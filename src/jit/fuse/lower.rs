//! Phase 2 of fusion: buffers and kernel programs.
//!
//! 1. Readers: for every value, which kernels read it and with which load pattern.
//! 2. Stored values: a value leaves registers (gets a buffer) when a later kernel, an output
//!    or an update copy reads it, or when its kernel is not a loop (GEMM, gather, reduce).
//! 3. Updates: `θ := v` is written in place (v's stores go straight to θ's buffer) when no
//!    kernel after v's reads the old θ and v's own kernel reads θ only at the index it
//!    writes (and not at all for a late v); otherwise v is stored in a temporary and copied
//!    into θ after every other kernel. A source that is itself a parameter or state is first
//!    copied to a temporary, so that no final copy reads what another one writes.
//! 4. Each loop draft becomes its [`KOp`] program (`kops`).
//! 5. Each kernel that writes a parameter or state (an update, a final copy) moves up to just
//!    after the last kernel it must follow ([`hoist_updates`]), then liveness is computed.

mod index;
mod kops;

use super::partition::{Draft, Drafts, Home, Ref, Role};
use super::view::{classify, Domain, Level, Pat, Sym};
use super::{Buf, KOp, Kernel, LabelCheck, LoopKernel, OutRef, Program, Sink, SinkKind, Temp, V};
use super::{GatherKernel, GemmKernel, ReduceKernel};
use crate::graph::{Graph, NodeId, Op, ScalarArg, Target};
use kops::KBuilder;
use std::collections::HashMap;

/// A kernel index meaning "after the program" (outputs, update copies).
const END: usize = usize::MAX;

/// One read of a value: by kernel `k`, with a load pattern when `k` is a loop kernel.
#[derive(Clone, Copy, Debug)]
struct Reader {
    k: usize,
    pat: Option<Pat>,
}

pub(super) fn lower(g: &Graph, d: Drafts) -> Program {
    let mut l = Lower {
        g,
        readers: vec![Vec::new(); g.len()],
        inplace: vec![None; g.len()],
        temp: vec![None; g.len()],
        temps: Vec::new(),
        d,
    };
    l.collect_readers();
    let (stage1, finals) = l.decide_updates();
    l.assign_temps();
    let mut kernels: Vec<Kernel> = (0..l.d.kernels.len()).map(|k| l.kernel(k)).collect();
    let mut copies = Vec::new();
    for (leaf, _) in &stage1 {
        let t = l.new_temp(*leaf);
        copies.push((l.buf(*leaf), t, *leaf));
    }
    for (i, (target, src)) in finals.iter().enumerate() {
        let from = match stage1.iter().position(|(_, j)| *j == i) {
            Some(s) => copies[s].1,
            None => l.buf(*src),
        };
        copies.push((from, *target, *src));
    }
    for (from, to, node) in copies {
        let size = l.size(node);
        kernels.push(Kernel::Loop(copy_kernel(from, to, size, node)));
    }
    hoist_updates(&mut kernels);
    let outputs = l.outputs();
    let labels = l.labels();
    let mut temps = l.temps;
    liveness(&mut temps, &kernels, &outputs);
    let mut args: Vec<ScalarArg> = g
        .nodes()
        .filter_map(|(_, n)| match n.op {
            Op::Scalar(a) => Some(a),
            _ => None,
        })
        .collect();
    args.sort();
    args.dedup();
    Program { kernels, temps, outputs, labels, args }
}

/// Moves every kernel that writes a parameter or state up to just after the nearest earlier
/// kernel it conflicts with (one writes a buffer the other reads or writes), so that an
/// update runs right after its gradient: the gradient's buffer is then free for the next
/// one (the plan reuses it) and still in cache. Kernels that do not conflict commute, and
/// an update never passes a reader of the old value it overwrites, so the in-place
/// decisions of step 3 still hold.
///
/// The kernels are taken in order, as if each moved update were removed and reinserted
/// right after its nearest conflict; instead of moving it, it gets a sort key: kernel `k`
/// stays at `[k]`, the `c`-th update moved after kernel `j` gets `key(j) ++ [−c]` (after
/// `j` and before what earlier updates were put after `j`), and the order is the keys'
/// sorted order. The nearest conflict is the largest key among the last writers of what
/// the update reads or writes and the last readers of what it writes: linear in the
/// kernels, where moving them was quadratic (0.8 s of 5,000 stacked layers).
fn hoist_updates(kernels: &mut Vec<Kernel>) {
    let access: Vec<(Vec<Buf>, Vec<Buf>)> =
        kernels.iter().map(|k| (k.reads(), k.writes())).collect();
    let keys = hoist_keys(&access);
    let mut order: Vec<(Vec<i64>, Kernel)> = keys.into_iter().zip(kernels.drain(..)).collect();
    order.sort_by(|a, b| a.0.cmp(&b.0));
    kernels.extend(order.into_iter().map(|(_, k)| k));
}

/// The sort key of each kernel, given what each reads and writes (see [`hoist_updates`]).
fn hoist_keys(access: &[(Vec<Buf>, Vec<Buf>)]) -> Vec<Vec<i64>> {
    let mut keys: Vec<Vec<i64>> = Vec::with_capacity(access.len());
    let (mut writer, mut reader) = (HashMap::<Buf, usize>::new(), HashMap::<Buf, usize>::new());
    let mut moved = 0;
    for (k, (r, w)) in access.iter().enumerate() {
        let key = match w.iter().any(|b| matches!(b, Buf::Param(_) | Buf::State(_))) {
            false => vec![k as i64],
            true => {
                let last = r.iter().chain(w).filter_map(|b| writer.get(b));
                let last = last.chain(w.iter().filter_map(|b| reader.get(b)));
                let nearest = last.max_by(|&&a, &&b| keys[a].cmp(&keys[b]));
                moved += 1;
                let mut key = nearest.map_or_else(Vec::new, |&j| keys[j].clone());
                key.push(-moved);
                key
            }
        };
        keys.push(key);
        for (bufs, last) in [(w, &mut writer), (r, &mut reader)] {
            for b in bufs {
                let e = last.entry(*b).or_insert(k);
                if keys[*e] < keys[k] {
                    *e = k;
                }
            }
        }
    }
    keys
}

/// `to := from` over `size` elements, one flat loop.
fn copy_kernel(from: Buf, to: Buf, size: Sym, node: NodeId) -> LoopKernel {
    LoopKernel {
        dom: Domain { rows: Sym::ONE, cols: size },
        flat: true,
        ops: vec![KOp::Load(from, Pat::Full)],
        levels: vec![Level::Elem],
        sinks: vec![Sink {
            value: V(0),
            buf: to,
            kind: SinkKind::Store(Level::Elem),
            mean: None,
            node,
        }],
        nodes: vec![],
        what: "copy",
    }
}

/// First and last kernel touching each temporary; outputs live to the end.
fn liveness(temps: &mut [Temp], kernels: &[Kernel], outputs: &[OutRef]) {
    let end = kernels.len();
    for t in temps.iter_mut() {
        t.live = (usize::MAX, 0);
    }
    let mut touch = |b: Buf, k: usize| {
        if let Buf::Temp(i) = b {
            let t = &mut temps[i as usize];
            t.live = (t.live.0.min(k), t.live.1.max(k));
        }
    };
    for (k, kernel) in kernels.iter().enumerate() {
        for b in kernel.reads().into_iter().chain(kernel.writes()) {
            touch(b, k);
        }
    }
    for o in outputs {
        touch(o.buf, end);
    }
}

struct Lower<'g> {
    g: &'g Graph,
    d: Drafts,
    readers: Vec<Vec<Reader>>,
    /// The parameter/state buffer a value is written to in place.
    inplace: Vec<Option<Buf>>,
    temp: Vec<Option<u32>>,
    temps: Vec<Temp>,
}

impl Lower<'_> {
    fn dom(&self, k: usize) -> Option<Domain> {
        match &self.d.kernels[k] {
            Draft::Loop { dom, .. } => Some(*dom),
            _ => None,
        }
    }

    fn size(&self, n: NodeId) -> Sym {
        Sym::product(&self.d.dims[n.index()])
    }

    fn read(&mut self, r: &Ref, k: usize, at: Option<Level>) {
        if let Ref::Base { node, dims, strides } = r {
            let pat = match (at, k) {
                (Some(l), k) if k != END => {
                    self.dom(k).and_then(|dom| classify(dims, strides, l, dom))
                }
                _ => None,
            };
            self.readers[node.index()].push(Reader { k, pat });
        }
    }

    fn collect_readers(&mut self) {
        for k in 0..self.d.kernels.len() {
            match self.d.kernels[k].clone() {
                Draft::Loop { nodes, .. } => {
                    for n in nodes {
                        let p = self.d.placed[n.index()].clone().expect("placed");
                        for (r, l) in p.refs.iter().zip(&p.arg_levels) {
                            self.read(r, k, Some(*l));
                        }
                    }
                }
                Draft::Gemm { a, b, .. } => {
                    self.read(&a, k, None);
                    self.read(&b, k, None);
                }
                Draft::Gather { src, .. } | Draft::Reduce { src, .. } => self.read(&src, k, None),
                Draft::Fill { .. } => {}
                Draft::Index { args, .. } | Draft::Window { args, .. } => {
                    args.iter().for_each(|r| self.read(r, k, None))
                }
            }
        }
        for r in self.d.outputs.clone() {
            self.read(&r, END, None);
        }
        // Update sources that are leaves are read (copied) after the program.
        for (_, r) in self.d.updates.clone() {
            if let Some(r @ Ref::Base { node, .. }) = &r {
                if self.d.home[node.index()] == Home::Leaf {
                    self.read(r, END, None);
                }
            }
        }
    }

    /// The graph node reading the old value of `t`, if the graph has one.
    fn leaf_of(&self, t: Target) -> Option<NodeId> {
        self.g.ids().find(|&id| {
            self.d.home[id.index()] == Home::Leaf
                && match (self.g.node(id).op, t) {
                    (Op::Param(i), Target::Param(j)) | (Op::State(i), Target::State(j)) => i == j,
                    _ => false,
                }
        })
    }

    /// In place where safe (module doc); returns the leaf sources to copy to temporaries
    /// first (leaf, index into the final copies) and the final copies (target, source).
    #[allow(clippy::type_complexity)]
    fn decide_updates(&mut self) -> (Vec<(NodeId, usize)>, Vec<(Buf, NodeId)>) {
        let (mut stage1, mut finals) = (Vec::new(), Vec::new());
        for (t, r) in self.d.updates.clone() {
            let Some(Ref::Base { node: b, .. }) = r else { continue };
            let target = match t {
                Target::Param(i) => Buf::Param(i),
                Target::State(i) => Buf::State(i),
            };
            if let Home::Kernel { k, level, late } = self.d.home[b.index()] {
                let is_loop = matches!(self.d.kernels[k], Draft::Loop { .. } | Draft::Fill { .. });
                if is_loop
                    && self.inplace[b.index()].is_none()
                    && self.safe_in_place(t, k, level, late)
                {
                    self.inplace[b.index()] = Some(target);
                    continue;
                }
            }
            if self.d.home[b.index()] == Home::Leaf {
                stage1.push((b, finals.len()));
            } else {
                self.readers[b.index()].push(Reader { k: END, pat: None });
            }
            finals.push((target, b));
        }
        (stage1, finals)
    }

    fn safe_in_place(&self, t: Target, k: usize, level: Level, late: bool) -> bool {
        let Some(leaf) = self.leaf_of(t) else { return true };
        let dom = self.dom(k);
        self.readers[leaf.index()].iter().all(|r| {
            r.k < k
                || (r.k == k
                    && !late
                    && matches!((r.pat, dom), (Some(p), Some(d)) if d.same_index(level, p)))
        })
    }

    fn stored(&self, n: NodeId) -> bool {
        if self.inplace[n.index()].is_some() {
            return true;
        }
        match self.d.home[n.index()] {
            Home::Kernel { k, late, .. } => {
                late || !matches!(self.d.kernels[k], Draft::Loop { .. })
                    || self.readers[n.index()].iter().any(|r| r.k != k)
            }
            _ => false,
        }
    }

    fn new_temp(&mut self, node: NodeId) -> Buf {
        self.temps.push(Temp { node, size: self.size(node), live: (0, 0) });
        Buf::Temp(self.temps.len() as u32 - 1)
    }

    fn assign_temps(&mut self) {
        for id in self.g.ids() {
            if self.stored(id) && self.inplace[id.index()].is_none() {
                let Buf::Temp(t) = self.new_temp(id) else { unreachable!() };
                self.temp[id.index()] = Some(t);
            }
        }
    }

    /// The buffer holding node `n`'s value.
    fn buf(&self, n: NodeId) -> Buf {
        if let Some(b) = self.inplace[n.index()] {
            return b;
        }
        match self.g.node(n).op {
            Op::Input(i) if self.d.home[n.index()] == Home::Leaf => Buf::Input(i),
            Op::Param(i) if self.d.home[n.index()] == Home::Leaf => Buf::Param(i),
            Op::State(i) if self.d.home[n.index()] == Home::Leaf => Buf::State(i),
            _ => {
                Buf::Temp(self.temp[n.index()].unwrap_or_else(|| panic!("%{} has no buffer", n.0)))
            }
        }
    }

    fn base(&self, r: &Ref) -> (Buf, Vec<Sym>, Vec<Sym>) {
        match r {
            Ref::Base { node, dims, strides } => (self.buf(*node), dims.clone(), strides.clone()),
            Ref::Uniform(u) => panic!("uniform %{} was not materialized", u.0),
        }
    }

    fn outputs(&self) -> Vec<OutRef> {
        self.g
            .outputs
            .iter()
            .zip(&self.d.outputs)
            .map(|(o, r)| {
                let (buf, dims, strides) = self.base(r);
                OutRef { name: o.name.clone(), buf, dims, strides }
            })
            .collect()
    }

    fn labels(&self) -> Vec<LabelCheck> {
        let mut v = Vec::new();
        for id in self.g.ids() {
            let Some(p) = &self.d.placed[id.index()] else { continue };
            let (r, classes) = match (p.role, self.g.node(id).op) {
                (Role::Xent, _) => (&p.refs[1], self.d.dims[self.g.node(id).args[0].index()][1].c),
                (Role::OneHot, Op::OneHot(c)) => (&p.refs[0], c as u64),
                _ => continue,
            };
            if let Ref::Base { node, .. } = r {
                if let (Op::Input(i), Home::Leaf) =
                    (self.g.node(*node).op, &self.d.home[node.index()])
                {
                    v.push(LabelCheck {
                        node: id,
                        input: i,
                        classes: classes as usize,
                        ids: false,
                    });
                }
            }
        }
        v.extend(self.id_checks());
        v
    }

    fn kernel(&self, k: usize) -> Kernel {
        match &self.d.kernels[k] {
            Draft::Loop { dom, nodes } => Kernel::Loop(self.loop_kernel(k, *dom, nodes)),
            Draft::Fill { node } => Kernel::Loop(self.fill_kernel(k, *node)),
            Draft::Gemm { node, a, b } => Kernel::Gemm(self.gemm(*node, a, b)),
            Draft::Index { node, args } => Kernel::Index(self.index_kernel(*node, args)),
            Draft::Window { node, args } => Kernel::Window(self.window_kernel(*node, args)),
            Draft::Gather { node, src } => {
                let (src, dims, strides) = self.base(src);
                Kernel::Gather(GatherKernel {
                    src,
                    dims,
                    strides,
                    out: self.buf(*node),
                    node: *node,
                })
            }
            Draft::Reduce { node, src, kind, mean } => {
                let (src, dims, strides) = self.base(src);
                let mut out_strides = super::view::contiguous(&self.d.dims[node.index()]);
                let (_, ax) = self.g.node(*node).op.reduction().expect("a reduce draft reduces");
                let rank = out_strides.len();
                for x in ax.iter().filter(|&x| x < rank) {
                    out_strides[x] = Sym::ZERO;
                }
                let (out, out_size) = (self.buf(*node), self.size(*node));
                let (kind, mean) = (*kind, *mean);
                Kernel::Reduce(ReduceKernel {
                    src,
                    dims,
                    strides,
                    out_strides,
                    out_size,
                    kind,
                    mean,
                    out,
                    node: *node,
                })
            }
        }
    }

    /// `out = op(a)·op(b)`: a contiguous operand keeps the node's transpose flag, a
    /// transposed-contiguous one flips it.
    fn gemm(&self, node: NodeId, a: &Ref, b: &Ref) -> GemmKernel {
        let Op::MatMul { ta, tb } = self.g.node(node).op else { unreachable!("gemm of a matmul") };
        let flag = |r: &Ref, t: bool| {
            let (_, dims, strides) = self.base(r);
            if super::view::linear(&dims, &strides, Sym::ONE) {
                t
            } else {
                !t
            }
        };
        let (ad, bd) = (self.dims_of(a), self.dims_of(b));
        let (m, k) = if ta { (ad[1], ad[0]) } else { (ad[0], ad[1]) };
        let n = if tb { bd[0] } else { bd[1] };
        let (abuf, bbuf) = (self.base(a).0, self.base(b).0);
        GemmKernel {
            m,
            n,
            k,
            a: abuf,
            ta: flag(a, ta),
            b: bbuf,
            tb: flag(b, tb),
            out: self.buf(node),
            node,
        }
    }

    fn dims_of(&self, r: &Ref) -> Vec<Sym> {
        self.base(r).1
    }

    fn fill_kernel(&self, k: usize, u: NodeId) -> LoopKernel {
        let dims = &self.d.dims[u.index()];
        let mut kb = KBuilder::new(self, k, Domain { rows: Sym::ONE, cols: Sym::product(dims) });
        let v = kb.uniform(u);
        kb.sinks.push(Sink {
            value: v,
            buf: self.buf(u),
            kind: SinkKind::Store(Level::Elem),
            mean: None,
            node: u,
        });
        kb.finish(vec![u], "fill")
    }

    fn loop_kernel(&self, k: usize, dom: Domain, nodes: &[NodeId]) -> LoopKernel {
        let mut kb = KBuilder::new(self, k, dom);
        for &n in nodes {
            kb.node(n);
        }
        kb.finish(nodes.to_vec(), "fused")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition: each update removed and reinserted right after its nearest
    /// earlier conflict, in order (quadratic).
    fn hoisted_by_moving(access: &[(Vec<Buf>, Vec<Buf>)]) -> Vec<usize> {
        let mut order: Vec<usize> = (0..access.len()).collect();
        for k in 0..order.len() {
            let (r, w) = &access[order[k]];
            if !w.iter().any(|b| matches!(b, Buf::Param(_) | Buf::State(_))) {
                continue;
            }
            let conflicts = |&j: &usize| {
                let (jr, jw) = &access[j];
                jw.iter().any(|b| r.contains(b) || w.contains(b))
                    || jr.iter().any(|b| w.contains(b))
            };
            let to = order[..k].iter().rposition(conflicts).map_or(0, |j| j + 1);
            let entry = order.remove(k);
            order.insert(to, entry);
        }
        order
    }

    #[test]
    fn hoisting_by_keys_is_hoisting_by_moving() {
        let mut state = 0x9e3779b97f4a7c15u64;
        let mut next = |n: u64| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) % n
        };
        for _ in 0..500 {
            let len = 1 + next(30) as usize;
            let buf = |next: &mut dyn FnMut(u64) -> u64| match next(3) {
                0 => Buf::Param(next(4) as u32),
                1 => Buf::State(next(3) as u32),
                _ => Buf::Temp(next(8) as u32),
            };
            let access: Vec<(Vec<Buf>, Vec<Buf>)> = (0..len)
                .map(|_| {
                    let reads = (0..next(4)).map(|_| buf(&mut next)).collect();
                    let writes = (0..1 + next(2)).map(|_| buf(&mut next)).collect();
                    (reads, writes)
                })
                .collect();
            let keys = hoist_keys(&access);
            let mut by_keys: Vec<usize> = (0..len).collect();
            by_keys.sort_by(|&a, &b| keys[a].cmp(&keys[b]));
            assert_eq!(by_keys, hoisted_by_moving(&access), "{access:?}");
        }
    }
}
