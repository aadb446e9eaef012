//! One loop kernel's program: each placed node becomes [`KOp`]s (shared by value: common
//! subexpressions within a kernel are computed once), uniform nodes are recomputed inline
//! from constants and runtime scalars, operands from other kernels become loads, and
//! stored or late values become sinks. The softmax family expands into row reductions and
//! elementwise code, with the max trick:
//!
//! ```text
//! m = max_j z    d = z − m    e = exp d    s = Σ_j e    lse = log s
//! softmax = e / s             log_softmax = d − lse
//! xent    = (m − z[y]) + lse, z[y] = Σ_j (j = y ? z : 0)
//! argmax  = min_j (z = max_j z ? j : C)      one_hot = (j = y)
//! drop_mask = (hash(key, i·cols + j) >> 8 < T) ? 1/keep : 0,  key = key(salt, step) (Inv)
//! ```

use std::collections::HashMap;

use super::super::partition::{Home, Ref, Role};
use super::super::view::{classify, Domain, Level, Pat, Sym};
use super::super::{KOp, LoopKernel, RKind, Sink, SinkKind, V};
use super::Lower;
use crate::graph::{BinaryOp, NodeId, Op, UnaryOp};

/// Builds one loop kernel's program; ops are shared by value (CSE within the kernel).
pub(super) struct KBuilder<'a, 'g> {
    l: &'a Lower<'g>,
    k: usize,
    dom: Domain,
    ops: Vec<KOp>,
    levels: Vec<Level>,
    memo: HashMap<KOp, V>,
    vals: HashMap<NodeId, V>,
    pub(super) sinks: Vec<Sink>,
}

impl<'a, 'g> KBuilder<'a, 'g> {
    pub(super) fn new(l: &'a Lower<'g>, k: usize, dom: Domain) -> Self {
        KBuilder {
            l,
            k,
            dom,
            ops: vec![],
            levels: vec![],
            memo: HashMap::new(),
            vals: HashMap::new(),
            sinks: vec![],
        }
    }

    fn push(&mut self, op: KOp) -> V {
        if let Some(&v) = self.memo.get(&op) {
            return v;
        }
        let lv = |v: V| self.levels[v.0 as usize];
        let level = match op {
            KOp::Load(_, p) => match p {
                Pat::Full => Level::Elem,
                Pat::Row | Pat::RowMap(_) => Level::Row,
                Pat::Col => Level::Col,
                Pat::Scalar => Level::Inv,
            },
            KOp::Const(_) | KOp::Arg(_) | KOp::Count(_) => Level::Inv,
            KOp::Iota => Level::Col,
            KOp::Unary(_, x) => lv(x),
            KOp::Binary(_, x, y) => lv(x).join(lv(y)),
            KOp::Select(c, x, y) => lv(c).join(lv(x)).join(lv(y)),
            KOp::RowReduce(..) => Level::Row,
            KOp::DropKey { step, .. } => lv(step),
            KOp::DropMask { .. } => Level::Elem,
        };
        let v = V(self.ops.len() as u32);
        self.ops.push(op);
        self.levels.push(level);
        self.memo.insert(op, v);
        v
    }

    fn c(&mut self, x: f32) -> V {
        self.push(KOp::Const(x.to_bits()))
    }
    fn un(&mut self, op: UnaryOp, x: V) -> V {
        self.push(KOp::Unary(op, x))
    }
    fn bin(&mut self, op: BinaryOp, x: V, y: V) -> V {
        self.push(KOp::Binary(op, x, y))
    }

    /// The value of a uniform node, computed inline.
    pub(super) fn uniform(&mut self, u: NodeId) -> V {
        let node = self.l.g.node(u);
        let a = |i: usize| node.args[i];
        match node.op {
            Op::Const(c) => self.c(c.get() as f32),
            Op::Scalar(s) => self.push(KOp::Arg(s)),
            Op::Unary(op) => {
                let x = self.uniform(a(0));
                self.un(op, x)
            }
            Op::Binary(op) => {
                let (x, y) = (self.uniform(a(0)), self.uniform(a(1)));
                self.bin(op, x, y)
            }
            Op::Select => {
                let (c, x, y) = (self.uniform(a(0)), self.uniform(a(1)), self.uniform(a(2)));
                self.push(KOp::Select(c, x, y))
            }
            Op::ReduceSum(ax) => {
                let x = self.uniform(a(0));
                let d = &self.l.d.dims[a(0).index()];
                let count = Sym::product(
                    &ax.iter().filter(|&i| i < d.len()).map(|i| d[i]).collect::<Vec<_>>(),
                );
                if count.is_one() {
                    x
                } else {
                    let n = self.push(KOp::Count(count));
                    self.bin(BinaryOp::Mul, x, n)
                }
            }
            // Views, means and maxima of a uniform value are that value.
            Op::Input(_)
            | Op::Param(_)
            | Op::State(_)
            | Op::Broadcast
            | Op::Reshape
            | Op::Transpose
            | Op::ReduceMean(_)
            | Op::ReduceMax(_)
            | Op::MatMul { .. }
            | Op::Softmax
            | Op::LogSoftmax
            | Op::SoftmaxCrossEntropy
            | Op::OneHot(_)
            | Op::ArgMax
            | Op::Concat { .. }
            | Op::Slice { .. }
            | Op::Gather
            | Op::ScatterAdd(_)
            | Op::DropMask { .. } => self.uniform(a(0)),
            Op::Conv(_)
            | Op::ConvGradInput(_)
            | Op::ConvGradKernel(_)
            | Op::PoolPick(_)
            | Op::PoolRoute(_) => unreachable!("a window op is never uniform"),
        }
    }

    fn operand(&mut self, r: &Ref, at: Level) -> V {
        match r {
            Ref::Uniform(u) => self.uniform(*u),
            Ref::Base { node, dims, strides } => {
                if let Home::Kernel { k, .. } = self.l.d.home[node.index()] {
                    if k == self.k {
                        return self.vals[node];
                    }
                }
                let p =
                    classify(dims, strides, at, self.dom).expect("partition checked the pattern");
                self.push(KOp::Load(self.l.buf(*node), p))
            }
        }
    }

    /// `max_j z`, `d = z − max`, `e = exp d`, `s = Σ_j e` and `log s` of a row.
    fn row_stats(&mut self, z: V) -> [V; 5] {
        let m = self.push(KOp::RowReduce(RKind::MaxNum, z));
        let d = self.bin(BinaryOp::Sub, z, m);
        let e = self.un(UnaryOp::Exp, d);
        let s = self.push(KOp::RowReduce(RKind::Sum, e));
        let lse = self.un(UnaryOp::Log, s);
        [m, d, e, s, lse]
    }

    pub(super) fn node(&mut self, n: NodeId) {
        let p = self.l.d.placed[n.index()].clone().expect("placed");
        let args: Vec<V> =
            p.refs.iter().zip(&p.arg_levels).map(|(r, l)| self.operand(r, *l)).collect();
        let op = self.l.g.node(n).op;
        let l = self.l;
        let buf = || l.buf(n);
        let value = match p.role {
            Role::Elementwise => match op {
                Op::Unary(u) => self.un(u, args[0]),
                Op::Binary(b) => self.bin(b, args[0], args[1]),
                Op::Select => self.push(KOp::Select(args[0], args[1], args[2])),
                Op::Input(_)
                | Op::Param(_)
                | Op::State(_)
                | Op::Scalar(_)
                | Op::Const(_)
                | Op::Broadcast
                | Op::Reshape
                | Op::Transpose
                | Op::ReduceSum(_)
                | Op::ReduceMean(_)
                | Op::ReduceMax(_)
                | Op::MatMul { .. }
                | Op::Softmax
                | Op::LogSoftmax
                | Op::SoftmaxCrossEntropy
                | Op::OneHot(_)
                | Op::ArgMax
                | Op::Concat { .. }
                | Op::Slice { .. }
                | Op::Gather
                | Op::ScatterAdd(_)
                | Op::DropMask { .. }
                | Op::Conv(_)
                | Op::ConvGradInput(_)
                | Op::ConvGradKernel(_)
                | Op::PoolPick(_)
                | Op::PoolRoute(_) => {
                    unreachable!("placed as elementwise only by partition::try_join")
                }
            },
            Role::Identity => args[0],
            Role::RowReduce(kind, mean) => {
                let r = self.push(KOp::RowReduce(kind, args[0]));
                match mean {
                    Some(c) => {
                        let c = self.push(KOp::Count(c));
                        self.bin(BinaryOp::Div, r, c)
                    }
                    None => r,
                }
            }
            Role::ColReduce(kind, mean) | Role::FullReduce(kind, mean) => {
                let kind = if matches!(p.role, Role::ColReduce(..)) {
                    SinkKind::ColReduce(kind)
                } else {
                    SinkKind::FullReduce(kind)
                };
                self.sinks.push(Sink { value: args[0], buf: buf(), kind, mean, node: n });
                return;
            }
            Role::Softmax => {
                // e / Σe reuses the exponentials of the sum (the interpreter computes
                // exp(d − lse); both are within a few ulp).
                let [_, _, e, s, _] = self.row_stats(args[0]);
                self.bin(BinaryOp::Div, e, s)
            }
            Role::LogSoftmax => {
                let [_, d, _, _, lse] = self.row_stats(args[0]);
                self.bin(BinaryOp::Sub, d, lse)
            }
            Role::Xent => {
                let (z, y) = (args[0], args[1]);
                let [m, _, _, _, lse] = self.row_stats(z);
                let j = self.push(KOp::Iota);
                let hit = self.bin(BinaryOp::Eq, j, y);
                let zero = self.c(0.0);
                let picked = self.push(KOp::Select(hit, z, zero));
                let zy = self.push(KOp::RowReduce(RKind::Sum, picked));
                let x = self.bin(BinaryOp::Sub, m, zy);
                self.bin(BinaryOp::Add, x, lse)
            }
            Role::ArgMax => {
                let z = args[0];
                let m = self.push(KOp::RowReduce(RKind::MaxNum, z));
                let at_max = self.bin(BinaryOp::Eq, z, m);
                let j = self.push(KOp::Iota);
                let none = self.push(KOp::Count(self.dom.cols));
                let idx = self.push(KOp::Select(at_max, j, none));
                self.push(KOp::RowReduce(RKind::Min, idx))
            }
            Role::OneHot => {
                let j = self.push(KOp::Iota);
                self.bin(BinaryOp::Eq, j, args[0])
            }
            Role::DropMask => {
                let Op::DropMask { keep, salt } = op else { unreachable!("a dropout mask") };
                let key = self.push(KOp::DropKey { salt, step: args[0] });
                let threshold = crate::graph::dropout::threshold(keep.get());
                let scale = ((1.0 / keep.get()) as f32).to_bits();
                self.push(KOp::DropMask { threshold, scale, key })
            }
        };
        self.vals.insert(n, value);
        if self.l.stored(n) {
            let Home::Kernel { level, .. } = self.l.d.home[n.index()] else { unreachable!() };
            self.sinks.push(Sink {
                value,
                buf: buf(),
                kind: SinkKind::Store(level),
                mean: None,
                node: n,
            });
        }
    }

    pub(super) fn finish(self, nodes: Vec<NodeId>, what: &'static str) -> LoopKernel {
        let mut k = LoopKernel {
            dom: self.dom,
            flat: false,
            ops: self.ops,
            levels: self.levels,
            sinks: self.sinks,
            nodes,
            what,
        };
        let rowwise = k.levels.iter().any(|l| matches!(l, Level::Row | Level::Col))
            || k.sinks.iter().any(|s| {
                matches!(s.kind, SinkKind::ColReduce(_) | SinkKind::Store(Level::Row | Level::Col))
            });
        k.flat = !rowwise && k.passes() == 1;
        k
    }
}
