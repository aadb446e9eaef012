//! Phase 1 of fusion: which kernel computes each live node, at which level, in which role
//! (the placement rules are in the parent module's doc).
//!
//! The output is a list of draft kernels plus, per node, where its value lives ([`Home`]) and
//! how its operands are read ([`Ref`]). Nothing here decides buffers: `lower` does, once
//! every reader of every value is known.

use super::view::{self, classify, contiguous, linear, Domain, Level, Pat, Sym};
use super::RKind;
use crate::graph::{Graph, NodeId, Op, Reduce, Target};

/// A view op: its result is its operand's data under new strides (or a copy of it).
#[derive(Clone, Copy, Debug)]
enum View {
    Broadcast,
    Reshape,
    Transpose,
}

/// An operand as a kernel sees it.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Ref {
    /// A uniform node: computed inline from constants and runtime scalars.
    Uniform(NodeId),
    /// A view (`dims`, `strides`) of the value of `node`, which is a leaf or placed in a
    /// kernel (never a view node, unless that view was gathered into a buffer).
    Base { node: NodeId, dims: Vec<Sym>, strides: Vec<Sym> },
}

/// Where a node's value lives.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Home {
    Dead,
    /// An input, parameter or state.
    Leaf,
    /// A view of `base` (a non-view node) with these strides over the node's own dims.
    View {
        base: NodeId,
        strides: Vec<Sym>,
    },
    /// Computed by kernel `k` at `level`; `late` values (column and full reductions) are
    /// complete only when the kernel ends.
    Kernel {
        k: usize,
        level: Level,
        late: bool,
    },
    /// Uniform and never materialized.
    Inline,
}

/// What a node placed in a loop kernel computes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Role {
    Elementwise,
    /// A reduction over unit axes only: the operand itself.
    Identity,
    RowReduce(RKind, Option<Sym>),
    ColReduce(RKind, Option<Sym>),
    FullReduce(RKind, Option<Sym>),
    Softmax,
    LogSoftmax,
    Xent,
    ArgMax,
    OneHot,
    /// A dropout mask (Elem: it varies with the flat index, never uniform).
    DropMask,
}

/// A node placed in a loop kernel: its role, operands and the level each operand is read at.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Placed {
    pub role: Role,
    pub refs: Vec<Ref>,
    pub arg_levels: Vec<Level>,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Draft {
    Loop {
        dom: Domain,
        nodes: Vec<NodeId>,
    },
    /// Operands are contiguous or transposed-contiguous views.
    Gemm {
        node: NodeId,
        a: Ref,
        b: Ref,
    },
    Gather {
        node: NodeId,
        src: Ref,
    },
    Reduce {
        node: NodeId,
        src: Ref,
        kind: RKind,
        mean: Option<Sym>,
    },
    /// Materializes a uniform node.
    Fill {
        node: NodeId,
    },
    /// A concat, slice, gather or scatter-add; its operands are contiguous views.
    Index {
        node: NodeId,
        args: Vec<Ref>,
    },
    /// A window op; its operands are contiguous views.
    Window {
        node: NodeId,
        args: Vec<Ref>,
    },
}

/// The result of partitioning.
pub(super) struct Drafts {
    pub kernels: Vec<Draft>,
    pub home: Vec<Home>,
    pub placed: Vec<Option<Placed>>,
    pub dims: Vec<Vec<Sym>>,
    pub uniform: Vec<bool>,
    /// One per graph output, materialized (a Base ref).
    pub outputs: Vec<Ref>,
    /// One per graph update: `None` when the update keeps the value (`θ := θ`).
    pub updates: Vec<(Target, Option<Ref>)>,
}

/// The most graph nodes one loop kernel takes (a node beyond starts a new kernel). Code
/// generation of a kernel grows faster than linearly with its size (register allocation over
/// values live across the whole kernel), so a bound keeps compile time linear in the model.
pub const MAX_KERNEL_NODES: usize = 64;

pub(super) fn partition(g: &Graph) -> Drafts {
    let n = g.len();
    let dims: Vec<Vec<Sym>> =
        g.nodes().map(|(_, node)| view::dims_of(&node.shape).expect("checked by fuse")).collect();
    let mut p = Partition {
        g,
        open: None,
        d: Drafts {
            kernels: Vec::new(),
            home: vec![Home::Dead; n],
            placed: vec![None; n],
            dims,
            uniform: vec![false; n],
            outputs: Vec::new(),
            updates: Vec::new(),
        },
    };
    let live = g.live();
    for id in g.ids().filter(|id| live[id.index()]) {
        p.place(id);
    }
    p.roots();
    p.d
}

struct Partition<'g> {
    g: &'g Graph,
    /// The newest loop kernel, while no other kernel came after it: nodes without computed
    /// operands may join it.
    open: Option<usize>,
    d: Drafts,
}

impl Partition<'_> {
    fn place(&mut self, id: NodeId) {
        let node = self.g.node(id);
        let uniform = match node.op {
            Op::Const(_) | Op::Scalar(_) => true,
            Op::Input(_) | Op::Param(_) | Op::State(_) => false,
            Op::Unary(_) | Op::Binary(_) | Op::Select | Op::Broadcast | Op::Reshape => {
                node.args.iter().all(|a| self.d.uniform[a.index()])
            }
            Op::Transpose | Op::ReduceSum(_) | Op::ReduceMean(_) | Op::ReduceMax(_) => {
                node.args.iter().all(|a| self.d.uniform[a.index()])
            }
            // Computed from the step scalar only, but different at every element.
            Op::DropMask { .. } => false,
            Op::MatMul { .. }
            | Op::Softmax
            | Op::LogSoftmax
            | Op::SoftmaxCrossEntropy
            | Op::OneHot(_)
            | Op::ArgMax
            | Op::Concat { .. }
            | Op::Slice { .. }
            | Op::Gather
            | Op::ScatterAdd(_)
            | Op::Conv(_)
            | Op::ConvGradInput(_)
            | Op::ConvGradKernel(_)
            | Op::PoolPick(_)
            | Op::PoolRoute(_) => false,
        };
        self.d.uniform[id.index()] = uniform;
        if uniform {
            self.d.home[id.index()] = Home::Inline;
            return;
        }
        match node.op {
            Op::Input(_) | Op::Param(_) | Op::State(_) => self.d.home[id.index()] = Home::Leaf,
            Op::Broadcast => self.place_view(id, View::Broadcast),
            Op::Reshape => self.place_view(id, View::Reshape),
            Op::Transpose => self.place_view(id, View::Transpose),
            Op::MatMul { .. } => self.place_gemm(id),
            Op::Concat { .. } | Op::Slice { .. } | Op::Gather | Op::ScatterAdd(_) => {
                self.place_index(id)
            }
            Op::Conv(_)
            | Op::ConvGradInput(_)
            | Op::ConvGradKernel(_)
            | Op::PoolPick(_)
            | Op::PoolRoute(_) => self.place_window(id),
            Op::Scalar(_)
            | Op::Const(_)
            | Op::Unary(_)
            | Op::Binary(_)
            | Op::Select
            | Op::ReduceSum(_)
            | Op::ReduceMean(_)
            | Op::ReduceMax(_)
            | Op::Softmax
            | Op::LogSoftmax
            | Op::SoftmaxCrossEntropy
            | Op::OneHot(_)
            | Op::ArgMax
            | Op::DropMask { .. } => self.place_compute(id),
        }
    }

    // ---- views and operands ----------------------------------------------------------------

    /// The non-view node holding `a`'s data and `a`'s strides in it.
    fn view_of(&self, a: NodeId) -> (NodeId, Vec<Sym>) {
        match &self.d.home[a.index()] {
            Home::View { base, strides } => (*base, strides.clone()),
            _ => (a, contiguous(&self.d.dims[a.index()])),
        }
    }

    fn resolve(&self, a: NodeId) -> Ref {
        if self.d.uniform[a.index()] && !matches!(self.d.home[a.index()], Home::Kernel { .. }) {
            return Ref::Uniform(a);
        }
        let (node, strides) = self.view_of(a);
        Ref::Base { node, dims: self.d.dims[a.index()].clone(), strides }
    }

    fn place_view(&mut self, id: NodeId, view: View) {
        let node = self.g.node(id);
        let a = node.args[0];
        let (base, st) = self.view_of(a);
        let (from, to) = (&self.d.dims[a.index()], &self.d.dims[id.index()]);
        let strides = match view {
            View::Broadcast => Some(view::broadcast(from, &st, to)),
            View::Transpose => Some(st.iter().rev().copied().collect()),
            View::Reshape => view::reshape(from, &st, to),
        };
        match strides {
            Some(strides) => self.d.home[id.index()] = Home::View { base, strides },
            // A reshape of a non-contiguous view: copy the operand, whose flat order is ours.
            None => {
                let src = self.resolve(a);
                self.push(Draft::Gather { node: id, src }, id);
            }
        }
    }

    /// Appends a kernel (closing the open one) computing `node` at Elem level.
    fn push(&mut self, k: Draft, node: NodeId) -> usize {
        self.open = None;
        self.d.kernels.push(k);
        let k = self.d.kernels.len() - 1;
        self.d.home[node.index()] = Home::Kernel { k, level: Level::Elem, late: false };
        k
    }

    /// `a` in a buffer of its own shape, contiguous: filled when uniform, gathered when its
    /// view is not a plain strided matrix/vector read. Returns the ref to read it by.
    fn materialize(&mut self, a: NodeId, transposed_ok: bool) -> Ref {
        match self.resolve(a) {
            Ref::Uniform(u) => {
                self.push(Draft::Fill { node: u }, u);
                self.resolve(a)
            }
            Ref::Base { node, dims, strides } => {
                let rev = |v: &[Sym]| v.iter().rev().copied().collect::<Vec<_>>();
                let ok = linear(&dims, &strides, Sym::ONE)
                    || (transposed_ok
                        && dims.len() == 2
                        && linear(&rev(&dims), &rev(&strides), Sym::ONE));
                if ok {
                    return Ref::Base { node, dims, strides };
                }
                let src = Ref::Base { node, dims, strides };
                self.push(Draft::Gather { node: a, src }, a);
                self.resolve(a)
            }
        }
    }

    fn place_gemm(&mut self, id: NodeId) {
        let args = self.g.node(id).args.clone();
        let a = self.materialize(args[0], true);
        let b = self.materialize(args[1], true);
        self.push(Draft::Gemm { node: id, a, b }, id);
    }

    /// An index kernel over contiguous copies of the operands (views are gathered first).
    fn place_index(&mut self, id: NodeId) {
        let args = self.g.node(id).args.clone();
        let args = args.iter().map(|&a| self.materialize(a, false)).collect();
        self.push(Draft::Index { node: id, args }, id);
    }

    /// A window kernel over contiguous copies of the operands.
    fn place_window(&mut self, id: NodeId) {
        let args = self.g.node(id).args.clone();
        let args = args.iter().map(|&a| self.materialize(a, false)).collect();
        self.push(Draft::Window { node: id, args }, id);
    }

    // ---- loop kernels ----------------------------------------------------------------------

    fn place_compute(&mut self, id: NodeId) {
        for k in self.join_candidates(id) {
            if self.try_join(k, id) {
                return;
            }
        }
        let Some(dom) = self.anchor(id) else {
            return self.place_generic_reduce(id);
        };
        // Operands no pattern reads in a fresh kernel are copied first.
        let args = self.g.node(id).args.clone();
        for (&a, level) in args.iter().zip(self.arg_levels(id, dom)) {
            if let Ref::Base { dims, strides, .. } = self.resolve(a) {
                if classify(&dims, &strides, level, dom).is_none() {
                    self.materialize(a, false);
                }
            }
        }
        self.open = None;
        self.d.kernels.push(Draft::Loop { dom, nodes: Vec::new() });
        let k = self.d.kernels.len() - 1;
        self.open = Some(k);
        if !self.try_join(k, id) {
            assert!(
                matches!(
                    self.g.node(id).op,
                    Op::ReduceSum(_) | Op::ReduceMean(_) | Op::ReduceMax(_)
                ),
                "fuse: %{} does not fit a kernel of its own",
                id.0
            );
            self.d.kernels.pop();
            self.open = None;
            self.place_generic_reduce(id);
        }
    }

    /// The loop kernels `id` may join, in the order tried: the newest first (where its
    /// consumers will be), back to the kernel of its latest computed operand (earlier
    /// kernels run before that operand exists) but not across another kind of kernel (a
    /// value computed before a matrix product and used after it would be stored across it),
    /// so that a node still joins a kernel of its shape when unrelated nodes came in between;
    /// a node with no computed operand only tries the open kernel.
    fn join_candidates(&self, id: NodeId) -> Vec<usize> {
        let producer = self.g.node(id).args.iter().filter_map(|&a| match self.resolve(a) {
            Ref::Base { node, .. } => match self.d.home[node.index()] {
                Home::Kernel { k, .. } => Some(k),
                _ => None,
            },
            Ref::Uniform(_) => None,
        });
        let is_loop = |k: &usize| matches!(self.d.kernels[*k], Draft::Loop { .. });
        let barrier = (0..self.d.kernels.len()).rev().find(|k| !is_loop(k)).map_or(0, |k| k + 1);
        let room = |k: &usize| match &self.d.kernels[*k] {
            Draft::Loop { nodes, .. } => nodes.len() < MAX_KERNEL_NODES,
            _ => false,
        };
        match producer.max() {
            Some(p) => (p.max(barrier)..self.d.kernels.len()).rev().filter(room).collect(),
            None => self.open.into_iter().filter(room).collect(),
        }
    }

    /// The levels a fresh kernel anchored at `id` reads its operands at.
    fn arg_levels(&self, id: NodeId, dom: Domain) -> Vec<Level> {
        let node = self.g.node(id);
        let numel = Sym::product(&self.d.dims[id.index()]);
        let own = if numel == Sym::ONE && dom.count(Level::Elem) == Sym::ONE {
            Level::Inv
        } else {
            Level::Elem
        };
        match node.op {
            Op::SoftmaxCrossEntropy => vec![Level::Elem, Level::Row],
            Op::OneHot(_) => vec![Level::Row],
            Op::DropMask { .. } => vec![Level::Inv],
            Op::Unary(_) | Op::Binary(_) | Op::Select => vec![own; node.args.len()],
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
            | Op::ArgMax
            | Op::Concat { .. }
            | Op::Slice { .. }
            | Op::Gather
            | Op::ScatterAdd(_)
            | Op::Conv(_)
            | Op::ConvGradInput(_)
            | Op::ConvGradKernel(_)
            | Op::PoolPick(_)
            | Op::PoolRoute(_) => vec![Level::Elem],
        }
    }

    /// The domain of a new kernel starting at `id`; `None` for a reduction no loop kernel
    /// can do (its reduced axes are neither a prefix nor a suffix).
    fn anchor(&self, id: NodeId) -> Option<Domain> {
        let node = self.g.node(id);
        let own = &self.d.dims[id.index()];
        match node.op {
            Op::SoftmaxCrossEntropy | Op::ArgMax => {
                Some(Domain::of_dims(&self.d.dims[node.args[0].index()]))
            }
            Op::ReduceSum(ax) | Op::ReduceMean(ax) | Op::ReduceMax(ax) => {
                let ad = &self.d.dims[node.args[0].index()];
                let nonunit: Vec<usize> = (0..ad.len()).filter(|&x| !ad[x].is_one()).collect();
                let red: Vec<usize> = nonunit.iter().copied().filter(|&x| ax.contains(x)).collect();
                if red.is_empty() {
                    return Some(Domain::of_dims(own));
                }
                let split = if red[..] == nonunit[nonunit.len() - red.len()..] {
                    red[0]
                } else if red[..] == nonunit[..red.len()] {
                    red[red.len() - 1] + 1
                } else {
                    return None;
                };
                Some(Domain { rows: Sym::product(&ad[..split]), cols: Sym::product(&ad[split..]) })
            }
            // Trailing unit dims do not make a row structure: [B,1] is one row of B.
            Op::Unary(_) | Op::Binary(_) | Op::Select => {
                let keep = own.iter().rposition(|d| !d.is_one()).map_or(0, |k| k + 1);
                Some(self.elementwise_domain(id, &own[..keep]))
            }
            Op::Input(_)
            | Op::Param(_)
            | Op::State(_)
            | Op::Scalar(_)
            | Op::Const(_)
            | Op::Broadcast
            | Op::Reshape
            | Op::Transpose
            | Op::MatMul { .. }
            | Op::Softmax
            | Op::LogSoftmax
            | Op::OneHot(_)
            | Op::Concat { .. }
            | Op::Slice { .. }
            | Op::Gather
            | Op::ScatterAdd(_)
            | Op::DropMask { .. }
            | Op::Conv(_)
            | Op::ConvGradInput(_)
            | Op::ConvGradKernel(_)
            | Op::PoolPick(_)
            | Op::PoolRoute(_) => Some(Domain::of_dims(own)),
        }
    }

    /// The domain of an elementwise kernel over `dims`: the last dim as columns, unless an
    /// operand is then a row map that divides the row index (a per-channel value of
    /// images, `(i / H) % C` in `(N·C·H) × W`); then the widest columns that read every
    /// operand without dividing (`i % C` in `(N·C) × (H·W)`), if a split has them.
    fn elementwise_domain(&self, id: NodeId, dims: &[Sym]) -> Domain {
        let refs: Vec<Ref> = self.g.node(id).args.iter().map(|&a| self.resolve(a)).collect();
        let undivided = |dom: Domain| {
            refs.iter().all(|r| match r {
                Ref::Uniform(_) => true,
                Ref::Base { dims, strides, .. } => {
                    match classify(dims, strides, Level::Elem, dom) {
                        Some(Pat::RowMap(m)) => m.div == 1,
                        p => p.is_some(),
                    }
                }
            })
        };
        let split =
            |s: usize| Domain { rows: Sym::product(&dims[..s]), cols: Sym::product(&dims[s..]) };
        let default = Domain::of_dims(dims);
        (1..dims.len()).rev().map(split).find(|&d| undivided(d)).unwrap_or(default)
    }

    fn place_generic_reduce(&mut self, id: NodeId) {
        let node = self.g.node(id);
        let a = node.args[0];
        let (kind, mean) = self.reduce_kind(id);
        let src = self.resolve(a);
        self.push(Draft::Reduce { node: id, src, kind, mean }, id);
    }

    /// The combining rule of a reduction node and, for a mean, the count it divides by.
    fn reduce_kind(&self, id: NodeId) -> (RKind, Option<Sym>) {
        let node = self.g.node(id);
        let (reduce, ax) = node.op.reduction().expect("placed as a reduction");
        let ad = &self.d.dims[node.args[0].index()];
        let count = |ax: crate::graph::Axes| {
            Sym::product(
                &ad.iter()
                    .enumerate()
                    .filter(|(x, _)| ax.contains(*x))
                    .map(|(_, d)| *d)
                    .collect::<Vec<_>>(),
            )
        };
        match reduce {
            Reduce::Sum => (RKind::Sum, None),
            Reduce::Mean => (RKind::Sum, Some(count(ax))),
            Reduce::Max => (RKind::Max, None),
        }
    }

    fn dom(&self, k: usize) -> Domain {
        match &self.d.kernels[k] {
            Draft::Loop { dom, .. } => *dom,
            _ => unreachable!("open kernels are loops"),
        }
    }

    /// True if `r` can be read at level `l` in kernel `k`: by a load pattern, or from
    /// registers when it is computed there (same index, available, not late).
    fn fits(&self, k: usize, r: &Ref, l: Level) -> bool {
        let Ref::Base { node, dims, strides } = r else { return true };
        let dom = self.dom(k);
        let Some(p) = classify(dims, strides, l, dom) else { return false };
        match self.d.home[node.index()] {
            Home::Kernel { k: kb, level, late } if kb == k => {
                !late && level.within(l) && dom.same_index(level, p)
            }
            _ => true,
        }
    }

    /// The level of `r` if it is computed (not late) in kernel `k`.
    fn level_in(&self, k: usize, r: &Ref) -> Option<Level> {
        match r {
            Ref::Base { node, .. } => match self.d.home[node.index()] {
                Home::Kernel { k: kb, level, late: false } if kb == k => Some(level),
                _ => None,
            },
            Ref::Uniform(_) => None,
        }
    }

    /// Adds `id` to loop kernel `k` if it fits there (see the module doc of `fuse`).
    fn try_join(&mut self, k: usize, id: NodeId) -> bool {
        let dom = self.dom(k);
        let node = self.g.node(id);
        let refs: Vec<Ref> = node.args.iter().map(|&a| self.resolve(a)).collect();
        let numel = Sym::product(&self.d.dims[id.index()]);
        let last_is_cols = |a: NodeId| {
            let d = &self.d.dims[a.index()];
            d.last().copied().unwrap_or(Sym::ONE) == dom.cols
                && Sym::product(d) == dom.count(Level::Elem)
        };
        // An op over each whole row of its operand, computed at level `l`.
        let row_op = |l: Level, role: Role| {
            let ok = last_is_cols(node.args[0]) && self.fits(k, &refs[0], Level::Elem);
            ok.then(|| (l, role, vec![Level::Elem]))
        };
        let found: Option<(Level, Role, Vec<Level>)> = match node.op {
            Op::Unary(_) | Op::Binary(_) | Op::Select => self
                .join_level(k, numel, &refs)
                .map(|l| (l, Role::Elementwise, vec![l; refs.len()])),
            Op::ReduceSum(ax) | Op::ReduceMean(ax) | Op::ReduceMax(ax) => {
                self.join_reduce(k, id, &refs[0], ax)
            }
            Op::Softmax => row_op(Level::Elem, Role::Softmax),
            Op::LogSoftmax => row_op(Level::Elem, Role::LogSoftmax),
            Op::ArgMax => row_op(Level::Row, Role::ArgMax),
            Op::SoftmaxCrossEntropy => {
                let ok = last_is_cols(node.args[0])
                    && self.fits(k, &refs[0], Level::Elem)
                    && self.fits(k, &refs[1], Level::Row);
                ok.then(|| (Level::Row, Role::Xent, vec![Level::Elem, Level::Row]))
            }
            Op::OneHot(c) => {
                let ok = Sym::fixed(c as u64) == dom.cols
                    && numel == dom.count(Level::Elem)
                    && self.fits(k, &refs[0], Level::Row);
                ok.then(|| (Level::Elem, Role::OneHot, vec![Level::Row]))
            }
            // Elem only: its index is the kernel's flat index `i·cols + j`, which is the
            // mask's own row-major index exactly when it has one element per point.
            Op::DropMask { .. } => (numel == dom.count(Level::Elem))
                .then(|| (Level::Elem, Role::DropMask, vec![Level::Inv])),
            Op::Input(_)
            | Op::Param(_)
            | Op::State(_)
            | Op::Scalar(_)
            | Op::Const(_)
            | Op::Broadcast
            | Op::Reshape
            | Op::Transpose
            | Op::MatMul { .. }
            | Op::Concat { .. }
            | Op::Slice { .. }
            | Op::Gather
            | Op::ScatterAdd(_)
            | Op::Conv(_)
            | Op::ConvGradInput(_)
            | Op::ConvGradKernel(_)
            | Op::PoolPick(_)
            | Op::PoolRoute(_) => None,
        };
        let Some((level, role, arg_levels)) = found else { return false };
        let late = matches!(role, Role::ColReduce(..) | Role::FullReduce(..));
        self.d.home[id.index()] = Home::Kernel { k, level, late };
        self.d.placed[id.index()] = Some(Placed { role, refs, arg_levels });
        if let Draft::Loop { nodes, .. } = &mut self.d.kernels[k] {
            nodes.push(id);
        }
        true
    }

    /// The lowest level an elementwise node with operands `refs` can be computed at. A Row
    /// level needs a Row operand computed in the kernel: unrelated vectors that happen to
    /// have `rows` elements get their own (vectorized) kernel instead.
    fn join_level(&self, k: usize, numel: Sym, refs: &[Ref]) -> Option<Level> {
        let dom = self.dom(k);
        [Level::Inv, Level::Row, Level::Elem].into_iter().find(|&l| {
            dom.count(l) == numel
                && refs.iter().all(|r| self.fits(k, r, l))
                && (l != Level::Row || refs.iter().any(|r| self.level_in(k, r) == Some(Level::Row)))
        })
    }

    /// A reduction in kernel `k`: over each row (Row), over the rows into a column vector
    /// (late), over everything (late), or over unit axes only (the operand itself).
    fn join_reduce(
        &self,
        k: usize,
        id: NodeId,
        r: &Ref,
        ax: crate::graph::Axes,
    ) -> Option<(Level, Role, Vec<Level>)> {
        let dom = self.dom(k);
        let (kind, mean) = self.reduce_kind(id);
        let ad = &self.d.dims[self.g.node(id).args[0].index()];
        let numel = Sym::product(&self.d.dims[id.index()]);
        let red = |x: &usize| ax.contains(*x) && !ad[*x].is_one();
        if !(0..ad.len()).any(|x| red(&x)) {
            // Σ, mean or max over unit axes: the value itself.
            let only = std::slice::from_ref(r);
            return self.join_level(k, numel, only).map(|l| (l, Role::Identity, vec![l]));
        }
        let an = Sym::product(ad);
        if an == dom.count(Level::Elem) && self.fits(k, r, Level::Elem) {
            let s = dom.split(ad)?;
            let nonunit = |range: std::ops::Range<usize>| {
                range.filter(|&x| !ad[x].is_one()).collect::<Vec<_>>()
            };
            let (pre, suf) = (nonunit(0..s), nonunit(s..ad.len()));
            let all = |v: &[usize]| v.iter().all(red);
            let none = |v: &[usize]| !v.iter().any(red);
            let role = if none(&pre) && all(&suf) {
                Role::RowReduce(kind, mean)
            } else if all(&pre) && none(&suf) {
                Role::ColReduce(kind, mean)
            } else if all(&pre) && all(&suf) {
                Role::FullReduce(kind, mean)
            } else {
                return None;
            };
            let level = match role {
                Role::RowReduce(..) => Level::Row,
                Role::ColReduce(..) => Level::Col,
                _ => Level::Inv,
            };
            return Some((level, role, vec![Level::Elem]));
        }
        let all_red = (0..ad.len()).all(|x| ad[x].is_one() || red(&x));
        let row_ok = an == dom.rows
            && self.level_in(k, r) == Some(Level::Row)
            && self.fits(k, r, Level::Row);
        (row_ok && all_red).then(|| (Level::Inv, Role::FullReduce(kind, mean), vec![Level::Row]))
    }

    // ---- roots -----------------------------------------------------------------------------

    /// Materializes the outputs (read after the run) and the update sources.
    fn roots(&mut self) {
        let outs: Vec<NodeId> = self.g.outputs.iter().map(|o| o.node).collect();
        for n in outs {
            let r = match self.resolve(n) {
                Ref::Uniform(_) => self.materialize(n, false),
                r => r,
            };
            self.d.outputs.push(r);
        }
        let ups: Vec<(Target, NodeId)> =
            self.g.updates.iter().map(|u| (u.target, u.node)).collect();
        for (t, n) in ups {
            let r = self.update_source(t, n);
            self.d.updates.push((t, r));
        }
    }

    /// The contiguous value an update copies or writes in place; `None` for `θ := θ`.
    fn update_source(&mut self, t: Target, n: NodeId) -> Option<Ref> {
        let r = self.materialize(n, false);
        let Ref::Base { node, .. } = &r else { unreachable!("materialized") };
        let same = match self.g.node(*node).op {
            Op::Param(i) => t == Target::Param(i),
            Op::State(i) => t == Target::State(i),
            _ => false,
        };
        (!same).then_some(r)
    }
}
