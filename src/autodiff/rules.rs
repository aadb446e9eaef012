//! The vector-Jacobian product (VJP) of every op: one rule per op, the math in a comment.
//!
//! For a node `out = op(args)` and the upstream gradient `g = ∂L/∂out` (shaped like `out`),
//! [`vjp`] appends the nodes computing `∂L/∂args[i]` for every operand `i` the caller wants.
//! Invariants: every returned gradient has exactly its operand's shape; operands the caller
//! does not want get `None` and no nodes are built for them (so e.g. `log(a)` of a `Pow` with
//! a constant exponent is never built); non-differentiable ops and operands (comparisons,
//! `Step`, `Sign`, `OneHot`, `ArgMax`, the labels of `SoftmaxCrossEntropy`, the ids of
//! `Gather`/`ScatterAdd`, the selector of `PoolPick`/`PoolRoute`) give `None`.
//! Rules reuse the forward output node where the derivative is a function of it (`tanh`,
//! `sigmoid`, `exp`, `sqrt`, `recip`, `softmax`, ...). Broadcasting is explicit in the IR, so
//! the only rule that sums over expanded axes is the one for [`Op::Broadcast`].

use crate::graph::{Axes, BinaryOp, Dim, Graph, NodeId, Op, Reduce, Shape, UnaryOp};

/// `∂L/∂args[i]` for each operand of node `v`, given `g = ∂L/∂v`; `wants[i]` says which
/// operands need one.
pub(super) fn vjp(gr: &mut Graph, v: NodeId, g: NodeId, wants: &[bool]) -> Vec<Option<NodeId>> {
    let node = gr.node(v).clone();
    let a = &node.args;
    let w = |i: usize| wants.get(i).copied().unwrap_or(false);
    match node.op {
        // Leaves: no operands.
        Op::Input(_) | Op::Param(_) | Op::State(_) | Op::Scalar(_) | Op::Const(_) => vec![],
        Op::Unary(op) => vec![if w(0) { unary(gr, op, a[0], v, g) } else { None }],
        Op::Binary(op) => binary(gr, op, (a[0], a[1]), v, g, (w(0), w(1))),
        // select(c, a, b):  ∂a = select(c, g, 0),  ∂b = select(c, 0, g),  c: none
        Op::Select => {
            let zero = gr.constant(0.0, node.shape.clone());
            let da = w(1).then(|| gr.select(a[0], g, zero));
            let db = w(2).then(|| gr.select(a[0], zero, g));
            vec![None, da, db]
        }
        // broadcast(a):  ∂a = reshape(reduce_sum(g, expanded axes), shape(a))
        Op::Broadcast => vec![Some(sum_to(gr, g, a[0]))],
        // reshape(a):  ∂a = reshape(g, shape(a))
        Op::Reshape => {
            let s = gr.shape(a[0]).clone();
            vec![Some(gr.reshape(g, &s))]
        }
        // transpose(a):  ∂a = transpose(g)
        Op::Transpose => vec![Some(gr.transpose(g))],
        // reduce_sum(a, axes):  ∂a = broadcast(g, shape(a))
        Op::ReduceSum(_) => {
            let s = gr.shape(a[0]).clone();
            vec![Some(gr.broadcast(g, &s))]
        }
        Op::ReduceMean(axes) => vec![Some(reduce_mean(gr, a[0], axes, g))],
        Op::ReduceMax(axes) => vec![Some(reduce_max(gr, a[0], axes, v, g))],
        Op::MatMul { ta, tb } => matmul(gr, (a[0], a[1]), (ta, tb), g, (w(0), w(1))),
        // s = softmax(a):  ∂a = s · (g − Σ_last(g · s))
        Op::Softmax => {
            let gs = gr.mul(g, v);
            let dot = sum_last_back(gr, gs);
            let centered = gr.sub(g, dot);
            vec![Some(gr.mul(v, centered))]
        }
        // o = log_softmax(a):  ∂a = g − softmax(a) · Σ_last(g),  softmax(a) = exp(o)
        Op::LogSoftmax => {
            let total = sum_last_back(gr, g);
            let s = gr.unary(UnaryOp::Exp, v);
            let st = gr.mul(s, total);
            vec![Some(gr.sub(g, st))]
        }
        Op::SoftmaxCrossEntropy => vec![Some(cross_entropy(gr, a[0], a[1], g)), None],
        Op::OneHot(_) | Op::ArgMax => vec![None],
        // concat(a, b) on axis k:  ∂a = g[.., 0..a_k, ..],  ∂b = g[.., a_k.., ..]
        Op::Concat { axis } => {
            let k = axis as usize;
            let (na, nb) = (gr.shape(a[0]).0[k].size(0), gr.shape(a[1]).0[k].size(0));
            let da = w(0).then(|| gr.slice(g, k, 0, na));
            let db = w(1).then(|| gr.slice(g, k, na, nb));
            vec![da, db]
        }
        // slice(a, k, s..s+n):  ∂a = g placed at s..s+n of zeros shaped like a
        Op::Slice { axis, start, .. } => {
            let size = gr.shape(a[0]).0[axis as usize].size(0);
            vec![Some(gr.pad(g, axis as usize, start as usize, size))]
        }
        // gather(table, ids):  ∂table = scatter_add(ids, g),  ids: none
        Op::Gather => {
            let v = gr.shape(a[0]).0[0].size(0) as u32;
            vec![w(0).then(|| gr.scatter_add(a[1], g, v)), None]
        }
        // scatter_add(ids, h):  ∂h = gather(g, ids),  ids: none
        Op::ScatterAdd(_) => vec![None, w(1).then(|| gr.gather(g, a[0]))],
        // A dropout mask is piecewise constant in the step: no gradient.
        Op::DropMask { .. } => vec![None],
        // y = conv(x, k):  ∂x = conv_grad_input(g, k),  ∂k = conv_grad_kernel(x, g)
        Op::Conv(win) => {
            let xs = gr.shape(a[0]).clone();
            let dx = w(0).then(|| gr.conv_grad_input(g, a[1], win, &xs));
            let dk = w(1).then(|| gr.conv_grad_kernel(a[0], g, win));
            vec![dx, dk]
        }
        // z = conv_grad_input(dy, k), bilinear:  ∂dy = conv(g, k),  ∂k = conv_grad_kernel(g, dy)
        Op::ConvGradInput(win) => {
            let ddy = w(0).then(|| gr.conv(g, a[1], win));
            let dk = w(1).then(|| gr.conv_grad_kernel(g, a[0], win));
            vec![ddy, dk]
        }
        // z = conv_grad_kernel(x, dy), bilinear:  ∂x = conv_grad_input(dy, g),  ∂dy = conv(x, g)
        Op::ConvGradKernel(win) => {
            let xs = gr.shape(a[0]).clone();
            let dx = w(0).then(|| gr.conv_grad_input(a[1], g, win, &xs));
            let ddy = w(1).then(|| gr.conv(a[0], g, win));
            vec![dx, ddy]
        }
        // pool_pick(s, h):  ∂h = pool_route(s, g),  s: none (piecewise constant)
        Op::PoolPick(win) => vec![None, w(1).then(|| gr.pool_route(a[0], g, win))],
        // pool_route(s, dy):  ∂dy = pool_pick(s, g),  s: none
        Op::PoolRoute(win) => vec![None, w(1).then(|| gr.pool_pick(a[0], g, win))],
    }
}

/// Elementwise unary rules; `x` is the operand, `out = f(x)`.
fn unary(gr: &mut Graph, op: UnaryOp, x: NodeId, out: NodeId, g: NodeId) -> Option<NodeId> {
    use UnaryOp::*;
    let shape = gr.shape(x).clone();
    Some(match op {
        // −x:        ∂x = −g
        Neg => gr.neg(g),
        // e^x:       ∂x = g · e^x = g · out
        Exp => gr.mul(g, out),
        // log x:     ∂x = g / x
        Log => gr.div(g, x),
        // log(1+x):  ∂x = g / (1 + x)
        Log1p => {
            let one = gr.constant(1.0, shape);
            let d = gr.add2(one, x);
            gr.div(g, d)
        }
        // √x:        ∂x = g / (2 √x) = g / (2 · out)
        Sqrt => {
            let d = gr.scale(out, 2.0);
            gr.div(g, d)
        }
        // 1/x:       ∂x = −g / x² = −g · out²
        Recip => {
            let sq = gr.unary(Square, out);
            let p = gr.mul(g, sq);
            gr.neg(p)
        }
        // |x|:       ∂x = g · sign(x)
        Abs => {
            let s = gr.unary(Sign, x);
            gr.mul(g, s)
        }
        // x²:        ∂x = g · 2x
        Square => {
            let d = gr.scale(x, 2.0);
            gr.mul(g, d)
        }
        // t = tanh x:     ∂x = g · (1 − t²)
        Tanh => {
            let one = gr.constant(1.0, shape);
            let t2 = gr.unary(Square, out);
            let d = gr.sub(one, t2);
            gr.mul(g, d)
        }
        // s = sigmoid x:  ∂x = g · s · (1 − s)
        Sigmoid => {
            let one = gr.constant(1.0, shape);
            let c = gr.sub(one, out);
            let d = gr.mul(out, c);
            gr.mul(g, d)
        }
        // max(x, 0):      ∂x = g · step(x)
        Relu => {
            let s = gr.unary(Step, x);
            gr.mul(g, s)
        }
        // log(1 + e^x):   ∂x = g · sigmoid(x)
        Softplus => {
            let s = gr.unary(Sigmoid, x);
            gr.mul(g, s)
        }
        // erf x:          ∂x = g · 2/√π · e^(−x²)
        Erf => {
            let x2 = gr.unary(Square, x);
            let nx2 = gr.neg(x2);
            let e = gr.unary(Exp, nx2);
            let d = gr.scale(e, std::f64::consts::FRAC_2_SQRT_PI);
            gr.mul(g, d)
        }
        // sign, step: piecewise constant, no gradient
        Sign | Step => return None,
    })
}

/// Elementwise binary rules; `out = a ∘ b`.
fn binary(
    gr: &mut Graph,
    op: BinaryOp,
    (a, b): (NodeId, NodeId),
    out: NodeId,
    g: NodeId,
    (wa, wb): (bool, bool),
) -> Vec<Option<NodeId>> {
    use BinaryOp::*;
    let shape = gr.shape(a).clone();
    match op {
        // a + b:  ∂a = g,  ∂b = g
        Add => vec![Some(g), Some(g)],
        // a − b:  ∂a = g,  ∂b = −g
        Sub => vec![Some(g), wb.then(|| gr.neg(g))],
        // a · b:  ∂a = g · b,  ∂b = g · a
        Mul => {
            let da = wa.then(|| gr.mul(g, b));
            let db = wb.then(|| gr.mul(g, a));
            vec![da, db]
        }
        // a / b:  ∂a = g / b,  ∂b = −g · a / b² = −(g · out) / b
        Div => {
            let da = wa.then(|| gr.div(g, b));
            let db = wb.then(|| {
                let go = gr.mul(g, out);
                let q = gr.div(go, b);
                gr.neg(q)
            });
            vec![da, db]
        }
        // max(a, b):  ∂a = g · ([a > b] + ½[a = b]),  ∂b = g − ∂a   (ties split, as torch)
        Max => {
            let gt = gr.binary(Gt, a, b);
            split(gr, gt, (a, b), g)
        }
        // min(a, b):  ∂a = g · ([b > a] + ½[a = b]),  ∂b = g − ∂a
        Min => {
            let lt = gr.binary(Gt, b, a);
            split(gr, lt, (a, b), g)
        }
        // a^b:  ∂a = g · b · a^(b−1),  ∂b = g · out · log a
        Pow => {
            let da = wa.then(|| {
                let one = gr.constant(1.0, shape);
                let bm1 = gr.sub(b, one);
                let p = gr.binary(Pow, a, bm1);
                let bp = gr.mul(b, p);
                gr.mul(g, bp)
            });
            let db = wb.then(|| {
                let l = gr.unary(UnaryOp::Log, a);
                let ol = gr.mul(out, l);
                gr.mul(g, ol)
            });
            vec![da, db]
        }
        // comparisons: piecewise constant, no gradient
        Gt | Ge | Eq => vec![None, None],
    }
}

/// `∂a = g · (wins + ½[a = b])`, `∂b = g − ∂a`: the max/min rule given the strict mask.
fn split(gr: &mut Graph, wins: NodeId, (a, b): (NodeId, NodeId), g: NodeId) -> Vec<Option<NodeId>> {
    let eq = gr.binary(BinaryOp::Eq, a, b);
    let half = gr.scale(eq, 0.5);
    let mask = gr.add2(wins, half);
    let da = gr.mul(g, mask);
    let db = gr.sub(g, da);
    vec![Some(da), Some(db)]
}

/// `C = op(A) · op(B)` with `op` transposing when its flag is set. With `dC = g`:
/// ```text
/// C = A·B      dA = dC·Bᵀ       dB = Aᵀ·dC
/// C = Aᵀ·B     dA = B·dCᵀ       dB = A·dC
/// C = A·Bᵀ     dA = dC·B        dB = dCᵀ·A
/// C = Aᵀ·Bᵀ    dA = Bᵀ·dCᵀ      dB = dCᵀ·Aᵀ
/// ```
/// (each expressed with MatMul's own transpose flags, never a Transpose node).
fn matmul(
    gr: &mut Graph,
    (a, b): (NodeId, NodeId),
    flags: (bool, bool),
    g: NodeId,
    (wa, wb): (bool, bool),
) -> Vec<Option<NodeId>> {
    let da = wa.then(|| match flags {
        (false, false) => gr.matmul(g, b, false, true),
        (true, false) => gr.matmul(b, g, false, true),
        (false, true) => gr.matmul(g, b, false, false),
        (true, true) => gr.matmul(b, g, true, true),
    });
    let db = wb.then(|| match flags {
        (false, false) => gr.matmul(a, g, true, false),
        (true, false) => gr.matmul(a, g, false, false),
        (false, true) => gr.matmul(g, a, true, false),
        (true, true) => gr.matmul(g, a, true, true),
    });
    vec![da, db]
}

/// The VJP of `broadcast(a)`: `g` summed over the axes the broadcast expanded (the leading
/// axes `a` lacks and the axes where `a` has size 1 but the result does not), keeping dims,
/// then reshaped to `shape(a)`. When those axes are not contiguous (a per-channel vector
/// over images `[N, C, H, W]` expands axes 0, 2 and 3) the trailing run is summed first and
/// the rest after: two reductions over a suffix and a prefix, which the JIT runs as loops.
fn sum_to(gr: &mut Graph, g: NodeId, a: NodeId) -> NodeId {
    let to = gr.shape(a).clone();
    let from = gr.shape(g).clone();
    let lead = from.rank() - to.rank();
    let expanded =
        |i: usize| i < lead || (to.0[i - lead] == Dim::Fixed(1) && from.0[i] != Dim::Fixed(1));
    let tail: Vec<usize> = (0..from.rank()).rev().take_while(|&i| expanded(i)).collect();
    let rest: Vec<usize> =
        (0..from.rank()).filter(|&i| expanded(i) && !tail.contains(&i)).collect();
    let summed = gr.reduce(Reduce::Sum, g, Axes::of(&tail));
    let summed = gr.reduce(Reduce::Sum, summed, Axes::of(&rest));
    gr.reshape(summed, &to)
}

/// `m = reduce_mean(x, axes)`:  `∂x = broadcast(g / n, shape(x))` with `n` the number of
/// elements averaged. When every reduced axis is fixed `n` is a constant; when one is the
/// batch axis `B` (known only at run time), `n = reduce_sum(1 of shape(x), axes)`, a node
/// shaped like `m` that constant folding turns into a constant once `B` is known.
fn reduce_mean(gr: &mut Graph, x: NodeId, axes: Axes, g: NodeId) -> NodeId {
    let xs = gr.shape(x).clone();
    let symbolic = axes.iter().any(|i| xs.0[i] == Dim::Batch);
    let scaled = if symbolic {
        let ones = gr.constant(1.0, xs.clone());
        let n = gr.reduce(Reduce::Sum, ones, axes);
        gr.div(g, n)
    } else {
        let n: usize = axes.iter().map(|i| xs.0[i].size(1)).product();
        gr.scale(g, 1.0 / n as f64)
    };
    gr.broadcast(scaled, &xs)
}

/// `m = reduce_max(x, axes)`:  `∂x = [x = m] · broadcast(g / Σ_axes [x = m])`: the gradient
/// goes to the maxima, split equally among ties.
fn reduce_max(gr: &mut Graph, x: NodeId, axes: Axes, m: NodeId, g: NodeId) -> NodeId {
    let xs = gr.shape(x).clone();
    let mb = gr.broadcast(m, &xs);
    let mask = gr.binary(BinaryOp::Eq, x, mb);
    let ties = gr.reduce(Reduce::Sum, mask, axes);
    let share = gr.div(g, ties);
    let sb = gr.broadcast(share, &xs);
    gr.mul(mask, sb)
}

/// `l = softmax_cross_entropy(z, y)` per row:  `∂z = (softmax(z) − onehot(y)) · g[:, None]`;
/// the labels `y` get none.
fn cross_entropy(gr: &mut Graph, z: NodeId, y: NodeId, g: NodeId) -> NodeId {
    let zs = gr.shape(z).clone();
    let (n, c) = match zs.dims() {
        [n, Dim::Fixed(c)] => (*n, *c),
        _ => panic!("autodiff: softmax_cross_entropy logits {zs} need a fixed class axis"),
    };
    let s = gr.add(Op::Softmax, vec![z], zs.clone());
    let hot = gr.add(Op::OneHot(c), vec![y], zs.clone());
    let diff = gr.sub(s, hot);
    let col = gr.reshape(g, &Shape(vec![n, Dim::Fixed(1)]));
    let gb = gr.broadcast(col, &zs);
    gr.mul(diff, gb)
}

/// `Σ` over the last axis, broadcast back to the operand's shape.
fn sum_last_back(gr: &mut Graph, x: NodeId) -> NodeId {
    let xs = gr.shape(x).clone();
    let last = Axes::of(&[xs.rank() - 1]);
    let s = gr.reduce(Reduce::Sum, x, last);
    gr.broadcast(s, &xs)
}
