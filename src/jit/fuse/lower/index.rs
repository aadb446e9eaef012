//! Lowering of index drafts (concat, slice, gather, scatter-add) to [`IndexKernel`]s and of
//! window drafts to [`WindowKernel`]s (their geometry from the image and output dims), and
//! the id checks of gathers whose ids are read straight from an input.
//!
//! The sizes of each [`IndexOp`] come from the node's `[outer, axis, inner]` view: a
//! concatenation joins rows of `a_k·inner` and `b_k·inner` floats, a slice takes
//! `len·inner` floats at `start·inner` of rows of `n·inner`; a gather copies rows of `D`.

use super::super::partition::{Draft, Home, Ref};
use super::super::view::Sym;
use super::super::{IndexKernel, IndexOp, LabelCheck, WindowKernel};
use super::Lower;
use crate::graph::{NodeId, Op};
use crate::jit::window::{Geometry, WindowOp};

impl Lower<'_> {
    pub(super) fn index_kernel(&self, node: NodeId, args: &[Ref]) -> IndexKernel {
        let n = self.g.node(node);
        let dims = |a: NodeId| self.d.dims[a.index()].clone();
        let split = |a: NodeId, axis: usize| {
            let d = dims(a);
            (Sym::product(&d[..axis]), d[axis], Sym::product(&d[axis + 1..]))
        };
        let op = match n.op {
            Op::Concat { axis } => {
                let (outer, ka, inner) = split(n.args[0], axis as usize);
                let kb = dims(n.args[1])[axis as usize];
                IndexOp::Concat { outer, ra: ka * inner, rb: kb * inner }
            }
            Op::Slice { axis, start, len } => {
                let (outer, k, inner) = split(n.args[0], axis as usize);
                let (from, len) =
                    (Sym::fixed(start as u64) * inner, Sym::fixed(len as u64) * inner);
                IndexOp::Slice { outer, row: k * inner, from, len }
            }
            Op::Gather => {
                let t = dims(n.args[0]);
                let count = Sym::product(&dims(n.args[1]));
                IndexOp::Gather { count, v: t[0].c as u32, d: t[1].c as u32 }
            }
            Op::ScatterAdd(v) => {
                let count = Sym::product(&dims(n.args[0]));
                let d = dims(n.args[1]).last().map_or(1, |s| s.c as u32);
                IndexOp::ScatterAdd { count, v, d }
            }
            Op::Input(_)
            | Op::Param(_)
            | Op::State(_)
            | Op::Scalar(_)
            | Op::Const(_)
            | Op::Unary(_)
            | Op::Binary(_)
            | Op::Select
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
            | Op::DropMask { .. }
            | Op::Conv(_)
            | Op::ConvGradInput(_)
            | Op::ConvGradKernel(_)
            | Op::PoolPick(_)
            | Op::PoolRoute(_) => unreachable!("an index draft is an index op"),
        };
        let srcs = args.iter().map(|r| self.base(r).0).collect();
        IndexKernel { op, srcs, out: self.buf(node), node }
    }

    /// The window kernel of a window op `node` over its contiguous operands `args`.
    pub(super) fn window_kernel(&self, node: NodeId, args: &[Ref]) -> WindowKernel {
        let n = self.g.node(node);
        let (op, win) = match n.op {
            Op::Conv(w) => (WindowOp::Conv, w),
            Op::ConvGradInput(w) => (WindowOp::ConvGradInput, w),
            Op::ConvGradKernel(w) => (WindowOp::ConvGradKernel, w),
            Op::PoolPick(w) => (WindowOp::PoolPick, w),
            Op::PoolRoute(w) => (WindowOp::PoolRoute, w),
            _ => unreachable!("a window draft is a window op"),
        };
        // The image and the (forward) output: which operand or result each is.
        let (image, out) = match op {
            WindowOp::Conv | WindowOp::PoolPick => (n.args[0], node),
            WindowOp::ConvGradInput => (node, n.args[0]),
            WindowOp::PoolRoute => (node, n.args[1]),
            WindowOp::ConvGradKernel => (n.args[0], n.args[1]),
        };
        let fixed = |d: &[Sym]| [1, 2, 3].map(|k| d[k].c as u32);
        let (i, o) = (&self.d.dims[image.index()], &self.d.dims[out.index()]);
        let geom = Geometry::new(op, &win, fixed(i), fixed(o));
        let srcs = [self.base(&args[0]).0, self.base(&args[1]).0];
        WindowKernel { geom, n: i[0], srcs, out: self.buf(node), node }
    }

    /// Gathers and scatter-adds whose ids are a graph input, checked before each run.
    pub(super) fn id_checks(&self) -> Vec<LabelCheck> {
        let mut v = Vec::new();
        for d in &self.d.kernels {
            let Draft::Index { node, args } = d else { continue };
            let (ids, count) = match self.g.node(*node).op {
                Op::Gather => (&args[1], self.d.dims[self.g.node(*node).args[0].index()][0].c),
                Op::ScatterAdd(c) => (&args[0], c as u64),
                // Only these read ids from a tensor.
                _ => continue,
            };
            let Ref::Base { node: leaf, .. } = ids else { continue };
            if let (Op::Input(i), Home::Leaf) = (self.g.node(*leaf).op, &self.d.home[leaf.index()])
            {
                let (node, classes) = (*node, count as usize);
                v.push(LabelCheck { node, input: i, classes, ids: true });
            }
        }
        v
    }
}
