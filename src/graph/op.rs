//! The closed set of primitive tensor operations of the graph IR, each with its semantics and
//! shape rule documented on its variant. Every tensor is `f32` (`f64` in gradient checks);
//! class labels are stored as exact small integers in floats.
//!
//! Shapes contain at most one symbolic dimension, the batch size `B`, so one graph (and one
//! compilation) serves every batch size. Layers, activations with parameters and losses are
//! decomposed into these primitives by `lower`; a few fused primitives (`Softmax`,
//! `LogSoftmax`, `SoftmaxCrossEntropy`) exist because they need their own stable formulas.

use std::fmt;

pub use super::window::Window;

/// One dimension: the symbolic batch size or a fixed size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dim {
    Batch,
    Fixed(u32),
}

impl Dim {
    /// The concrete size given the batch size.
    pub fn size(self, batch: usize) -> usize {
        match self {
            Dim::Batch => batch,
            Dim::Fixed(n) => n as usize,
        }
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Dim::Batch => write!(f, "B"),
            Dim::Fixed(n) => write!(f, "{n}"),
        }
    }
}

/// A tensor shape, outermost dimension first; `[]` is a scalar.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Shape(pub Vec<Dim>);

impl Shape {
    pub fn scalar() -> Shape {
        Shape(Vec::new())
    }
    pub fn fixed(dims: &[usize]) -> Shape {
        Shape(dims.iter().map(|&d| Dim::Fixed(d as u32)).collect())
    }
    pub fn rank(&self) -> usize {
        self.0.len()
    }
    pub fn dims(&self) -> &[Dim] {
        &self.0
    }
    /// Concrete sizes given the batch size.
    pub fn concrete(&self, batch: usize) -> Vec<usize> {
        self.0.iter().map(|d| d.size(batch)).collect()
    }
    /// Number of elements given the batch size.
    pub fn numel(&self, batch: usize) -> usize {
        self.0.iter().map(|d| d.size(batch)).product()
    }
    pub fn has_batch(&self) -> bool {
        self.0.contains(&Dim::Batch)
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, ",")?;
            }
            write!(f, "{d}")?;
        }
        write!(f, "]")
    }
}

/// A set of axes (bit i = axis i), for reductions. At most 8 axes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Axes(pub u8);

impl Axes {
    pub fn of(axes: &[usize]) -> Axes {
        Axes(axes.iter().fold(0u8, |m, &a| m | (1 << a)))
    }
    /// Every axis of a tensor of rank `rank`.
    pub fn all(rank: usize) -> Axes {
        Axes(((1u16 << rank) - 1) as u8)
    }
    pub fn contains(self, axis: usize) -> bool {
        axis < 8 && self.0 & (1 << axis) != 0
    }
    pub fn iter(self) -> impl Iterator<Item = usize> {
        (0..8).filter(move |&a| self.contains(a))
    }
}

/// An `f64` stored by its bits so that ops can be hashed and compared (interning).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct F64(pub u64);

impl F64 {
    pub fn new(v: f64) -> F64 {
        // One zero: -0.0 and 0.0 intern to the same constant.
        F64(if v == 0.0 { 0.0f64.to_bits() } else { v.to_bits() })
    }
    pub fn get(self) -> f64 {
        f64::from_bits(self.0)
    }
}

impl fmt::Debug for F64 {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}", self.get())
    }
}

/// Runtime scalars passed to every call of a compiled step: never baked into code, so a
/// schedule or the step count changes them without recompiling. Each is computed on the host
/// in f64 from the f64 hyper-parameters the user wrote ([`ScalarArg::value`]) and rounded
/// once when handed to an f32 step, so a step-dependent quantity such as `1 − 0.9999ᵗ` is as
/// exact as the learning rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScalarArg {
    /// The learning rate this step uses (after the schedule).
    Lr,
    /// The optimizer step count `t`, starting at 1.
    Step,
    /// `1 − βᵗ`: Adam's bias corrections.
    OneMinusPow(F64),
    /// RAdam's rectification for `β₂`: `r_t` when `ρ_t > 5`, else 0 (the unrectified step).
    RadamRect(F64),
    /// NAdam's gradient coefficient `(1 − μ_t)/(1 − Π_t)` for `(β₁, ψ)`.
    NadamGrad(F64, F64),
    /// NAdam's momentum coefficient `μ_{t+1}/(1 − Π_t·μ_{t+1})` for `(β₁, ψ)`.
    NadamMomentum(F64, F64),
    /// AdaBound's bound factors for `γ`: `1 − 1/(γt + 1)` and `1 + 1/(γt)`.
    AdaBoundLower(F64),
    AdaBoundUpper(F64),
    /// Adagrad's rate decay `1/(1 + (t − 1)·lr_decay)`.
    AdagradDecay(F64),
}

impl ScalarArg {
    /// The value at learning rate `lr` and step `t` (from 1), in f64: the one definition
    /// both backends use.
    pub fn value(self, lr: f64, t: f64) -> f64 {
        match self {
            ScalarArg::Lr => lr,
            ScalarArg::Step => t,
            ScalarArg::OneMinusPow(b) => -(t * b.get().ln()).exp_m1(),
            ScalarArg::RadamRect(b2) => {
                // ρ∞ = 2/(1−β₂) − 1, ρ_t = ρ∞ − 2t·β₂ᵗ/(1−β₂ᵗ) (torch.optim.RAdam).
                let b2 = b2.get();
                let rho_inf = 2.0 / (1.0 - b2) - 1.0;
                let bt = b2.powf(t);
                let rho_t = rho_inf - 2.0 * t * bt / (1.0 - bt);
                if rho_t > 5.0 {
                    ((rho_t - 4.0) * (rho_t - 2.0) * rho_inf
                        / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
                        .sqrt()
                } else {
                    0.0
                }
            }
            ScalarArg::NadamGrad(b1, psi) => {
                let mu = nadam_mu(b1.get(), psi.get(), t);
                (1.0 - mu) / (1.0 - nadam_product(b1.get(), psi.get(), t))
            }
            ScalarArg::NadamMomentum(b1, psi) => {
                let next = nadam_mu(b1.get(), psi.get(), t + 1.0);
                next / (1.0 - nadam_product(b1.get(), psi.get(), t) * next)
            }
            ScalarArg::AdaBoundLower(gamma) => 1.0 - 1.0 / (gamma.get() * t + 1.0),
            ScalarArg::AdaBoundUpper(gamma) => 1.0 + 1.0 / (gamma.get() * t),
            ScalarArg::AdagradDecay(k) => 1.0 / (1.0 + (t - 1.0) * k.get()),
        }
    }
}

impl fmt::Display for ScalarArg {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            ScalarArg::Lr => write!(f, "lr"),
            ScalarArg::Step => write!(f, "step"),
            ScalarArg::OneMinusPow(b) => write!(f, "1-{b:?}^t"),
            ScalarArg::RadamRect(b2) => write!(f, "radam_rect({b2:?})"),
            ScalarArg::NadamGrad(b1, psi) => write!(f, "nadam_grad({b1:?}, {psi:?})"),
            ScalarArg::NadamMomentum(b1, psi) => write!(f, "nadam_momentum({b1:?}, {psi:?})"),
            ScalarArg::AdaBoundLower(g) => write!(f, "adabound_lower({g:?})"),
            ScalarArg::AdaBoundUpper(g) => write!(f, "adabound_upper({g:?})"),
            ScalarArg::AdagradDecay(k) => write!(f, "adagrad_decay({k:?})"),
        }
    }
}

/// NAdam's `μ_k = β₁(1 − ½·0.96^(kψ))`.
fn nadam_mu(b1: f64, psi: f64, k: f64) -> f64 {
    b1 * (1.0 - 0.5 * 0.96f64.powf(k * psi))
}

/// NAdam's `Π_t = μ₁μ₂…μ_t` (torch.optim.NAdam's `mu_product`). Every factor is at most
/// `β₁ < 1`, so the loop stops once the product is below 1e-30, where `1 − Π` is 1 in f64.
fn nadam_product(b1: f64, psi: f64, t: f64) -> f64 {
    let mut p = 1.0;
    let mut k = 1.0;
    while k <= t && p >= 1e-30 {
        p *= nadam_mu(b1, psi, k);
        k += 1.0;
    }
    p
}

/// Elementwise functions of one operand. Shape rule: the result has the operand's shape.
/// Their values: `graph::scalar`. `VARIANTS` lists them all (strum).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, strum::VariantArray)]
pub enum UnaryOp {
    Neg,
    Exp,
    Log,
    /// `log(1 + x)`, accurate near 0.
    Log1p,
    Sqrt,
    /// `1 / x`
    Recip,
    Abs,
    /// `-1, 0, 1` by the sign of x.
    Sign,
    Square,
    Tanh,
    /// `1 / (1 + e^-x)`
    Sigmoid,
    /// `max(x, 0)`
    Relu,
    /// Heaviside: `1` where `x > 0`, else `0` (the derivative of relu).
    Step,
    /// `log(1 + e^x)`, computed stably as `max(x,0) + log1p(e^-|x|)`.
    Softplus,
    /// The error function.
    Erf,
}

/// Elementwise functions of two operands. Shape rule: both operands have the same shape,
/// which is the result's (broadcasting is explicit, see [`Op::Broadcast`]). Their values:
/// `graph::scalar`. `VARIANTS` lists them all (strum).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, strum::VariantArray)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Max,
    Min,
    /// `a^b` for `a > 0` (or integer `b`).
    Pow,
    /// `1` where `a > b`, else `0`. Not differentiable (zero gradient).
    Gt,
    /// `1` where `a >= b`, else `0`. Not differentiable.
    Ge,
    /// `1` where `a == b`, else `0`. Not differentiable.
    Eq,
}

/// A graph node's operation. `args` are the node's operands, in the order given here.
/// [`OpKind`] names the variants without their data (`OpKind::VARIANTS` lists them all).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, strum::EnumDiscriminants)]
#[strum_discriminants(name(OpKind), derive(strum::VariantArray))]
pub enum Op {
    /// Data fed each step: `graph.inputs[i]`. No operands. Shape: the input's declared shape.
    Input(u32),
    /// A trainable parameter `graph.params[i]`. No operands. Shape: the parameter's (fixed).
    Param(u32),
    /// Optimizer state `graph.states[i]` (momentum, Adam moments), zero at the start.
    State(u32),
    /// A runtime scalar. No operands. Shape `[]`.
    Scalar(ScalarArg),
    /// A tensor filled with one value. No operands. Shape: any (the node's).
    Const(F64),
    /// `f(a)` elementwise. Shape: `a`'s.
    Unary(UnaryOp),
    /// `f(a, b)` elementwise. Shape: `a` and `b` have the node's shape.
    Binary(BinaryOp),
    /// `(c, a, b)`: `a` where `c != 0`, else `b`. All three have the node's shape.
    Select,
    /// `(a)` expanded NumPy-style to the node's shape: `a`'s dims align with the trailing
    /// dims of the result; each is equal to the result's or `1`.
    Broadcast,
    /// `(a)` with the same elements (row-major) in the node's shape.
    Reshape,
    /// `(a)`: `[m, n] -> [n, m]`.
    Transpose,
    /// `(a)` summed over `axes`, keeping them with size 1 (rank is preserved).
    ReduceSum(Axes),
    /// `(a)` averaged over `axes`, keeping them with size 1. The count may involve `B`.
    ReduceMean(Axes),
    /// `(a)` maximum over `axes`, keeping them with size 1. Gradient split among ties.
    ReduceMax(Axes),
    /// `(a, b)`: `op(a) @ op(b)` where `op` transposes when the flag is set.
    /// `[m, k] @ [k, n] -> [m, n]` after the transposes; rank 2 only.
    MatMul { ta: bool, tb: bool },
    /// `(a)`: softmax over the last axis. Shape: `a`'s.
    Softmax,
    /// `(a)`: `a - logsumexp(a)` over the last axis, max-shifted. Shape: `a`'s.
    LogSoftmax,
    /// `(z, y)`: `z` logits `[N, C]`, `y` class indices `[N]`; per-row `-log softmax(z)[y]`
    /// computed with the max trick. Shape `[N]`. Differentiable in `z` only.
    SoftmaxCrossEntropy,
    /// `(y)`: class indices `[N]` to one-hot rows `[N, C]`. Not differentiable.
    OneHot(u32),
    /// `(a)`: index of the largest element along the last axis (first on ties), as a float.
    /// `[N, C] -> [N]`. Not differentiable.
    ArgMax,
    /// `(a, b)`: `a` and `b` joined along `axis` (torch.cat). Both have the node's rank and
    /// its dims except on `axis`, where both are fixed and the node's is their sum.
    Concat { axis: u8 },
    /// `(a)`: elements `start..start + len` of `a` along `axis` (a fixed axis of `a`), every
    /// element of the other axes. Shape: `a`'s with `len` on `axis`.
    Slice { axis: u8, start: u32, len: u32 },
    /// `(table, ids)`: `table [V, D]` (fixed), `ids [N...]` integer row indices stored as
    /// floats; row `ids[n]` of `table` for every `n`: `[N..., D]` (torch.nn.Embedding).
    /// Differentiable in `table` only. An id outside `0..V` is an error in the interpreter
    /// and clamped into range by the JIT (which never reads out of bounds).
    Gather,
    /// `(ids, g)`: `ids [N...]`, `g [N..., D]` -> `[V, D]` where row `v` is the sum of the
    /// rows `g[n]` with `ids[n] = v` (zero if none): the gradient of [`Op::Gather`] with
    /// respect to its table. Differentiable in `g` only; ids as for `Gather`.
    ScatterAdd(u32),
    /// `(t)`: a dropout mask, `t` the runtime scalar step (`[]`). Shape: any (the node's).
    /// Element `i` (flat, row-major) is `1/keep` with probability `keep`, else 0, drawn by
    /// the counter-based hash of `graph::dropout` from `(salt, t, i)`: the same bits on
    /// every backend, a new mask every step. Piecewise constant (zero gradient); never
    /// folded or shared between sites (each site has its own salt).
    DropMask { keep: F64, salt: u32 },
    /// `(x, k)`: 2-D convolution of images `x [N, C, H, W]` with a kernel `k [O, C/g, kh,
    /// kw]`: `[N, O, Ho, Wo]` (`graph::window` gives the formula). Bilinear.
    Conv(Window),
    /// `(dy, k)`: the adjoint of [`Op::Conv`] in its image: `[N, O, Ho, Wo]` to the node's
    /// `[N, C, H, W]` (a transposed convolution). Bilinear.
    ConvGradInput(Window),
    /// `(x, dy)`: the adjoint of [`Op::Conv`] in its kernel: `[O, C/g, kh, kw]`. Bilinear.
    ConvGradKernel(Window),
    /// `(s, h)`: `h` at the first maximum of `s` in each window: `[N, C, Ho, Wo]`. Max
    /// pooling is `pool_pick(x, x)`. Linear in `h`, piecewise constant in `s`.
    PoolPick(Window),
    /// `(s, dy)`: each `dy` element added at the first maximum of `s` in its window: `s`'s
    /// shape. The adjoint of [`Op::PoolPick`] in `h`; piecewise constant in `s`.
    PoolRoute(Window),
}

impl Op {
    /// Operands an op takes.
    pub fn arity(&self) -> usize {
        match self {
            Op::Input(_) | Op::Param(_) | Op::State(_) | Op::Scalar(_) | Op::Const(_) => 0,
            Op::Binary(_) | Op::MatMul { .. } | Op::SoftmaxCrossEntropy => 2,
            Op::Concat { .. } | Op::Gather | Op::ScatterAdd(_) => 2,
            Op::Conv(_) | Op::ConvGradInput(_) | Op::ConvGradKernel(_) => 2,
            Op::PoolPick(_) | Op::PoolRoute(_) => 2,
            Op::Select => 3,
            _ => 1,
        }
    }
    /// A reduction's combining rule and reduced axes; `None` for every other op.
    pub fn reduction(&self) -> Option<(super::Reduce, Axes)> {
        use super::Reduce;
        match *self {
            Op::ReduceSum(ax) => Some((Reduce::Sum, ax)),
            Op::ReduceMean(ax) => Some((Reduce::Mean, ax)),
            Op::ReduceMax(ax) => Some((Reduce::Max, ax)),
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
            | Op::PoolRoute(_) => None,
        }
    }
    /// The geometry of a window op (a convolution, one of its adjoints, a pool pick or
    /// route); `None` for every other op.
    pub fn window(&self) -> Option<Window> {
        match *self {
            Op::Conv(w)
            | Op::ConvGradInput(w)
            | Op::ConvGradKernel(w)
            | Op::PoolPick(w)
            | Op::PoolRoute(w) => Some(w),
            _ => None,
        }
    }
    /// True for ops with no operands.
    pub fn is_leaf(&self) -> bool {
        self.arity() == 0
    }
    /// True if the op's value does not depend on its operands smoothly (gradient is zero).
    pub fn is_piecewise_constant(&self) -> bool {
        matches!(
            self,
            Op::Binary(BinaryOp::Gt | BinaryOp::Ge | BinaryOp::Eq)
                | Op::Unary(UnaryOp::Step | UnaryOp::Sign)
                | Op::OneHot(_)
                | Op::ArgMax
                | Op::DropMask { .. }
        )
    }
}
