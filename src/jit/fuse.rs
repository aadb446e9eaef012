//! Fusion: partitions a [`Graph`] into kernels, the JIT's kernel IR ([`Program`]).
//!
//! A program is a sequence of kernels run in order over buffers ([`Buf`]): the graph's
//! inputs, parameters and optimizer state, and temporaries (one per value some later
//! kernel, output or update reads). Kernel kinds:
//!
//! - [`LoopKernel`]: a fused loop over a `rows × cols` domain computing a small SSA program
//!   of [`KOp`]s: elementwise chains, broadcasts folded into load patterns, the softmax
//!   family and row reductions (several passes over each row), and *sinks*: stores, column
//!   reductions (bias gradients) and full reductions (losses) into buffers. Values used only
//!   inside the kernel stay in registers.
//! - [`GemmKernel`]: `C = op(A)·op(B)` through the GEMM trampoline, transposes as flags.
//! - [`GatherKernel`], [`ReduceKernel`]: scalar loops with general index arithmetic for the
//!   rare views and reductions no pattern covers.
//! - [`IndexKernel`]: concatenation, slicing, embedding lookup and scatter-add, over
//!   contiguous operands (copied first when they are views).
//! - [`WindowKernel`]: a convolution, one of its adjoints, or max pooling's pick or route,
//!   through the window trampoline, over contiguous operands.
//!
//! How nodes are placed (`partition`): nodes are visited in index order. Uniform nodes
//! (constants, runtime scalars, and elementwise ops, views and reductions of uniform
//! operands only; not a dropout mask, which differs per element, nor a softmax, product or
//! index op of them) are never placed: every kernel recomputes them inline, once.
//! Broadcast, reshape and transpose are views, resolved at each use. A matrix product becomes a
//! GEMM kernel, a window op a window kernel. Any other node joins a loop kernel where its operands can be read (registers or
//! a load pattern) and are not *late* (a column or full reduction is complete only after its
//! kernel), trying the newest kernel first and going back as far as the one computing its
//! latest operand, but never past a kernel that is not a loop; otherwise a new loop kernel
//! starts at the node. Then (`lower`) each stored value gets a buffer, each parameter/state
//! update is written in place when no later reader needs the old value (else through a
//! temporary and a copy kernel, which runs as early as the buffers it conflicts with allow:
//! `lower::hoist_updates`), and each loop kernel is lowered to its [`KOp`] program.
//!
//! Invariants: deterministic (index order, no hash-map iteration order); every kernel reads
//! only buffers written by earlier kernels or leaves; a kernel never writes a buffer it
//! reads at a different index.

mod lower;
mod partition;
pub mod view;

use super::window::Geometry;
use crate::graph::{BinaryOp, Graph, NodeId, ScalarArg, UnaryOp};
pub use view::{Domain, Level, Pat, Sym};

/// A buffer the kernels read or write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Buf {
    /// `graph.inputs[i]`: read-only, owned by the caller.
    Input(u32),
    /// `graph.params[i]`, persistent, updated in place.
    Param(u32),
    /// `graph.states[i]`, persistent, updated in place.
    State(u32),
    /// `program.temps[i]`.
    Temp(u32),
}

/// A temporary buffer: the value of one node.
#[derive(Clone, Debug, PartialEq)]
pub struct Temp {
    pub node: NodeId,
    /// Elements.
    pub size: Sym,
    /// First and last kernel using it (the end of the program for outputs; a copy's source
    /// lives until its copy kernel).
    pub live: (usize, usize),
}

/// A value of a loop kernel's program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct V(pub u32);

/// A combining rule of a reduction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RKind {
    /// `a + b`, from 0.
    Sum,
    /// Largest, NaN-propagating (the graph's `reduce_max`), from −∞.
    Max,
    /// Largest, NaN-skipping (`if x > m { m = x }`: the softmax family's max), from −∞.
    MaxNum,
    /// Smallest, NaN-skipping, from +∞ (the first index of a maximum).
    Min,
}

/// One instruction of a loop kernel. Its level (where it varies) is the join of its
/// operands' levels, except where noted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KOp {
    /// A buffer read with a pattern (Full: Elem, Row: Row, Col: Col, Scalar: Inv).
    Load(Buf, Pat),
    /// A constant, by its f32 bits.
    Const(u32),
    /// A runtime scalar.
    Arg(ScalarArg),
    /// A size as a float (a reduction's count).
    Count(Sym),
    /// The column index `j` as a float (Col).
    Iota,
    Unary(UnaryOp, V),
    Binary(BinaryOp, V, V),
    /// `a` where `c ≠ 0`, else `b`.
    Select(V, V, V),
    /// The reduction of an Elem value over its row (Row).
    RowReduce(RKind, V),
    /// `graph::dropout::key(salt, t)` of the step value `t`, as f32 bits (Inv).
    DropKey {
        salt: u32,
        step: V,
    },
    /// A dropout mask element at the kernel's flat index `i·cols + j` (Elem, whatever the
    /// operand's level): `scale` (f32 bits) where `hash(key, index) >> 8 < threshold`, else 0.
    DropMask {
        threshold: u32,
        scale: u32,
        key: V,
    },
}

/// Where a value goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SinkKind {
    /// Stored at the index of `level` (Elem: `i·cols+j`, Row: `i`, Inv: `0`).
    Store(Level),
    /// Reduced over the rows into `buf[j]`.
    ColReduce(RKind),
    /// Reduced over everything into `buf[0]`.
    FullReduce(RKind),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Sink {
    pub value: V,
    pub buf: Buf,
    pub kind: SinkKind,
    /// Divide the reduction by this count at the end (a mean).
    pub mean: Option<Sym>,
    /// The graph node whose value this is.
    pub node: NodeId,
}

/// A fused loop; see the module doc.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LoopKernel {
    pub dom: Domain,
    /// One loop over `rows·cols` elements (no row structure is needed).
    pub flat: bool,
    pub ops: Vec<KOp>,
    pub levels: Vec<Level>,
    pub sinks: Vec<Sink>,
    /// The graph nodes computed here, in order.
    pub nodes: Vec<NodeId>,
    /// A human label: `fused`, `fill`, `copy`.
    pub what: &'static str,
}

/// `out = op(a)·op(b)` with `op(a): [m,k]`, `op(b): [k,n]`; `a` stored `[m,k]` (or `[k,m]`
/// when `ta`), `b` stored `[k,n]` (or `[n,k]` when `tb`), all dense row-major.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GemmKernel {
    pub m: Sym,
    pub n: Sym,
    pub k: Sym,
    pub a: Buf,
    pub ta: bool,
    pub b: Buf,
    pub tb: bool,
    pub out: Buf,
    pub node: NodeId,
}

/// `out[flat index] = src[Σ idx·strides]` over `dims` (a view made contiguous).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GatherKernel {
    pub src: Buf,
    pub dims: Vec<Sym>,
    pub strides: Vec<Sym>,
    pub out: Buf,
    pub node: NodeId,
}

/// A reduction by general index arithmetic: every element of the view `(dims, strides)` of
/// `src` is combined into `out[Σ idx·out_strides]` (zero strides on reduced axes).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReduceKernel {
    pub src: Buf,
    pub dims: Vec<Sym>,
    pub strides: Vec<Sym>,
    pub out_strides: Vec<Sym>,
    pub out_size: Sym,
    pub kind: RKind,
    pub mean: Option<Sym>,
    pub out: Buf,
    pub node: NodeId,
}

/// What an [`IndexKernel`] computes, over contiguous operands (`srcs`, in the graph op's
/// operand order). Rows are runs of consecutive floats; ids are clamped into `0..v`.
///
/// ```text
/// Concat      for o < outer:  out[o·(ra+rb) ..] = a[o·ra .. +ra] ++ b[o·rb .. +rb]
/// Slice       for o < outer:  out[o·len ..] = a[o·row + from .. +len]
/// Gather      for n < count:  out[n·d ..] = table[clamp(ids[n])·d .. +d]
/// ScatterAdd  out = 0;  for n < count:  out[clamp(ids[n])·d .. +d] += g[n·d .. +d]
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IndexOp {
    Concat { outer: Sym, ra: Sym, rb: Sym },
    Slice { outer: Sym, row: Sym, from: Sym, len: Sym },
    Gather { count: Sym, v: u32, d: u32 },
    ScatterAdd { count: Sym, v: u32, d: u32 },
}

/// A concat, slice, gather or scatter-add node: scalar loops with run-time addressing.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IndexKernel {
    pub op: IndexOp,
    pub srcs: Vec<Buf>,
    pub out: Buf,
    pub node: NodeId,
}

/// A window op (convolution, its adjoints, pooling's pick and route) over contiguous NCHW
/// operands, through the window trampoline ([`super::window`]): `geom` is everything but the
/// batch size `n`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WindowKernel {
    pub geom: Geometry,
    pub n: Sym,
    pub srcs: [Buf; 2],
    pub out: Buf,
    pub node: NodeId,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    Loop(LoopKernel),
    Gemm(GemmKernel),
    Gather(GatherKernel),
    Reduce(ReduceKernel),
    Index(IndexKernel),
    Window(WindowKernel),
}

/// Where a graph output can be read after the program ran: a view of a buffer.
#[derive(Clone, Debug, PartialEq)]
pub struct OutRef {
    pub name: String,
    pub buf: Buf,
    pub dims: Vec<Sym>,
    pub strides: Vec<Sym>,
}

/// Class labels read by `softmax_xent`/`one_hot` straight from an input, checked before a
/// run like `graph::eval` does (`node` is reported in the error).
#[derive(Clone, Debug, PartialEq)]
pub struct LabelCheck {
    pub node: NodeId,
    pub input: u32,
    pub classes: usize,
    /// Ids of `gather`/`scatter_add` rather than class labels (reported as
    /// [`EvalError::Id`](crate::graph::eval::EvalError::Id)).
    pub ids: bool,
}

/// A graph as kernels.
#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    pub kernels: Vec<Kernel>,
    pub temps: Vec<Temp>,
    pub outputs: Vec<OutRef>,
    pub labels: Vec<LabelCheck>,
    /// The runtime scalars the program reads, sorted, each once.
    pub args: Vec<ScalarArg>,
}

/// Partitions the live nodes of `g` into kernels. Errors for graphs the JIT cannot run
/// (a shape with two batch dimensions).
pub fn fuse(g: &Graph) -> Result<Program, super::JitError> {
    for (id, n) in g.nodes() {
        if view::dims_of(&n.shape).is_none() {
            return Err(super::JitError::Unsupported(format!(
                "node %{} has shape {}: the JIT supports one batch dimension per shape",
                id.0, n.shape
            )));
        }
    }
    let drafts = partition::partition(g);
    Ok(lower::lower(g, drafts))
}

impl Kernel {
    /// The buffers this kernel reads.
    pub fn reads(&self) -> Vec<Buf> {
        let mut v = match self {
            Kernel::Loop(l) => l
                .ops
                .iter()
                .filter_map(|op| match op {
                    KOp::Load(b, _) => Some(*b),
                    _ => None,
                })
                .chain(l.sinks.iter().filter_map(|s| match s.kind {
                    SinkKind::Store(_) => None,
                    _ => Some(s.buf),
                }))
                .collect(),
            Kernel::Gemm(k) => vec![k.a, k.b],
            Kernel::Gather(k) => vec![k.src],
            Kernel::Reduce(k) => vec![k.src],
            Kernel::Index(k) => k.srcs.clone(),
            Kernel::Window(k) => k.srcs.to_vec(),
        };
        v.sort();
        v.dedup();
        v
    }
    /// The buffers this kernel writes.
    pub fn writes(&self) -> Vec<Buf> {
        let mut v = match self {
            Kernel::Loop(l) => l.sinks.iter().map(|s| s.buf).collect(),
            Kernel::Gemm(k) => vec![k.out],
            Kernel::Gather(k) => vec![k.out],
            Kernel::Reduce(k) => vec![k.out],
            Kernel::Index(k) => vec![k.out],
            Kernel::Window(k) => vec![k.out],
        };
        v.sort();
        v.dedup();
        v
    }
    /// Every buffer this kernel names, in a fixed order, repeats included.
    fn bufs_mut(&mut self) -> Vec<&mut Buf> {
        match self {
            Kernel::Loop(l) => {
                let loads = l.ops.iter_mut().filter_map(|op| match op {
                    KOp::Load(b, _) => Some(b),
                    _ => None,
                });
                loads.chain(l.sinks.iter_mut().map(|s| &mut s.buf)).collect()
            }
            Kernel::Gemm(k) => vec![&mut k.a, &mut k.b, &mut k.out],
            Kernel::Gather(k) => vec![&mut k.src, &mut k.out],
            Kernel::Reduce(k) => vec![&mut k.src, &mut k.out],
            Kernel::Index(k) => k.srcs.iter_mut().chain([&mut k.out]).collect(),
            Kernel::Window(k) => k.srcs.iter_mut().chain([&mut k.out]).collect(),
        }
    }
    /// What this kernel's code depends on: the kernel with its buffers renamed `Temp(0)`,
    /// `Temp(1)`, … in order of first mention and its graph nodes cleared; and the buffers
    /// in that order. Kernels of equal shape differ only in where their buffers are, so
    /// they can run the same code given their buffers' addresses.
    pub fn shape(&self) -> (Kernel, Vec<Buf>) {
        let mut k = self.clone();
        let mut bufs: Vec<Buf> = Vec::new();
        for b in k.bufs_mut() {
            let i = bufs.iter().position(|x| x == b).unwrap_or_else(|| {
                bufs.push(*b);
                bufs.len() - 1
            });
            *b = Buf::Temp(i as u32);
        }
        match &mut k {
            Kernel::Loop(l) => {
                l.nodes.clear();
                l.sinks.iter_mut().for_each(|s| s.node = NodeId(0));
            }
            Kernel::Gemm(g) => g.node = NodeId(0),
            Kernel::Gather(g) => g.node = NodeId(0),
            Kernel::Reduce(r) => r.node = NodeId(0),
            Kernel::Index(i) => i.node = NodeId(0),
            Kernel::Window(w) => w.node = NodeId(0),
        }
        (k, bufs)
    }
    /// The graph nodes this kernel computes.
    pub fn nodes(&self) -> Vec<NodeId> {
        match self {
            Kernel::Loop(l) => l.nodes.clone(),
            Kernel::Gemm(k) => vec![k.node],
            Kernel::Gather(k) => vec![k.node],
            Kernel::Reduce(k) => vec![k.node],
            Kernel::Index(k) => vec![k.node],
            Kernel::Window(k) => vec![k.node],
        }
    }
}

impl LoopKernel {
    /// For each op, the pass of a row in which it can first be computed: loads and
    /// constants 0, a row reduction one more than its operand (it is complete after that
    /// pass), everything else the max of its operands.
    pub fn avail(&self) -> Vec<usize> {
        let mut a = vec![0usize; self.ops.len()];
        for (i, op) in self.ops.iter().enumerate() {
            a[i] = match *op {
                KOp::Unary(_, x) => a[x.0 as usize],
                KOp::Binary(_, x, y) => a[x.0 as usize].max(a[y.0 as usize]),
                KOp::Select(c, x, y) => a[c.0 as usize].max(a[x.0 as usize]).max(a[y.0 as usize]),
                KOp::RowReduce(_, x) => a[x.0 as usize] + 1,
                KOp::Load(..)
                | KOp::Const(_)
                | KOp::Arg(_)
                | KOp::Count(_)
                | KOp::Iota
                | KOp::DropKey { .. }
                | KOp::DropMask { .. } => 0,
            };
        }
        a
    }
    /// The number of passes over each row: enough to feed every row reduction and sink.
    pub fn passes(&self) -> usize {
        let a = self.avail();
        let reds = self.ops.iter().filter_map(|op| match op {
            KOp::RowReduce(_, x) => Some(a[x.0 as usize]),
            _ => None,
        });
        let sinks = self.sinks.iter().filter(|s| self.in_loop(s)).map(|s| a[s.value.0 as usize]);
        reds.chain(sinks).max().map_or(1, |p| p + 1)
    }
    /// True if a sink runs inside the column loop (in the last pass), not once per row or
    /// once per kernel.
    pub fn in_loop(&self, s: &Sink) -> bool {
        match s.kind {
            SinkKind::Store(l) => l == Level::Elem || l == Level::Col,
            SinkKind::ColReduce(_) => true,
            SinkKind::FullReduce(_) => {
                matches!(self.levels[s.value.0 as usize], Level::Elem | Level::Col)
            }
        }
    }
}
