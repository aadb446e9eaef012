//! The abstract syntax tree of a `.nn` file: exactly what was written, with spans, and no
//! meaning attached. Names are not resolved, numbers are not range-checked, shapes are not
//! inferred: that is `check`'s job. Built by the lalrpop grammar; printed by `nnc ir --stage ast`.

use crate::diagnostic::Span;

/// An identifier as written, with its span.
#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// A whole source file: items in source order.
#[derive(Clone, Debug, PartialEq)]
pub struct File {
    pub items: Vec<Item>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    /// `model Name { stmt* }`
    Model(ModelDecl),
    /// `layer Name(p1, p2) { stmt* }` — a user-defined layer with constructor parameters.
    Layer(LayerDecl),
    /// `optimizer sgd(lr = 0.1, momentum = 0.9)`; the expression is a `Call` (or a bare `Name`).
    /// Optional parameter groups follow in braces: `{ group "*.bias" (weight_decay = 0) }`.
    Optimizer { spec: Expr, groups: Vec<Group>, span: Span },
    /// `schedule warmup(200) then cosine(to = 1e-5)`: one or more parts joined by `then`.
    Schedule { parts: Vec<Expr>, span: Span },
    /// `clip global_norm(1.0)`
    Clip { spec: Expr, span: Span },
    /// `train { data = csv("digits.csv", label = "label"), batch = 64, epochs = 20 }`
    Train { settings: Vec<Arg>, span: Span },
}

/// `group "*.bias", "norm*" (weight_decay = 0, clip = value(1))`: a parameter group of the
/// optimizer, selecting parameters by name patterns, with its own hyper-parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub patterns: Vec<Pattern>,
    pub args: Vec<Arg>,
    pub span: Span,
}

/// A string literal used as a name pattern, e.g. `"*.bias"`.
#[derive(Clone, Debug, PartialEq)]
pub struct Pattern {
    pub text: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ModelDecl {
    pub name: Ident,
    pub body: Vec<Stmt>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LayerDecl {
    pub name: Ident,
    /// Constructor parameters, e.g. `d` in `layer Residual(d)`; integers at use sites.
    pub params: Vec<Ident>,
    pub body: Vec<Stmt>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    /// `input x: [B, 64]`
    Input { name: Ident, ty: TypeExpr, span: Span },
    /// `label y: class[B] of 10` or `label y: [B, 1]`
    Label { name: Ident, ty: TypeExpr, span: Span },
    /// `param g: [d] = ones` — a trainable tensor owned by the enclosing model or layer.
    Param { name: Ident, shape: Vec<DimExpr>, init: Option<Expr>, span: Span },
    /// `name = expr`: a layer instance (`fc1 = Dense(2 -> 8)`, `blocks = repeat 4 Res(8)`)
    /// or a value (`h = relu(fc1(x))`); `check` tells them apart by the callee.
    Let { name: Ident, value: Expr, span: Span },
    /// `metric accuracy(logits, y)`
    Metric { value: Expr, span: Span },
    /// `forward(x) = expr` or `forward(x) { h = ...  return expr }` (layers only).
    Forward { args: Vec<Ident>, body: Vec<Stmt>, result: Expr, span: Span },
}

/// A tensor type as written after `input`/`label`.
#[derive(Clone, Debug, PartialEq)]
pub enum TypeExpr {
    /// `[B, 64]`: real-valued.
    Tensor { dims: Vec<DimExpr>, span: Span },
    /// `class[B] of 10`: integer class indices in `0..classes`.
    Class { dims: Vec<DimExpr>, classes: Expr, span: Span },
}

/// One dimension of a written shape.
#[derive(Clone, Debug, PartialEq)]
pub enum DimExpr {
    /// A literal size, `64`.
    Int { value: i64, span: Span },
    /// A name: the symbolic batch dimension `B`, or a layer constructor parameter `d`.
    Name(Ident),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// A numeric literal; `int` is true when written without `.`/exponent (`64`, not `64.0`).
    Number { value: f64, int: bool },
    /// `"digits.csv"` (escapes already processed).
    Str(String),
    /// `true` / `false`
    Bool(bool),
    /// A bare name: a value, a layer, an initializer like `he_normal`, ...
    Name(String),
    /// `fc1.weight`, `blocks.0` is not allowed: the field is a name.
    Field { base: Box<Expr>, field: Ident },
    /// `f(a, b, key = v)`: a builtin function, a layer instance, or a constructor.
    Call { callee: Ident, args: Vec<Arg> },
    /// `-x`
    Neg(Box<Expr>),
    /// `a + b`, `a @ b`, ...
    Binary { op: BinOp, lhs: Box<Expr>, rhs: Box<Expr> },
    /// `(0.9, 0.999)`: two or more elements.
    Tuple(Vec<Expr>),
    /// `[30, 60, 90]`
    List(Vec<Expr>),
    /// `64 -> 128`, only meaningful as a layer constructor argument.
    Arrow { from: Box<Expr>, to: Box<Expr> },
    /// `repeat 4 Residual(64)`: `count` copies of the layer built by `layer`.
    Repeat { count: Box<Expr>, layer: Box<Expr> },
}

/// A call or settings argument: positional (`name == None`) or keyword (`name = value`).
#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    pub name: Option<Ident>,
    pub value: Expr,
    pub span: Span,
}

/// Binary operators, loosest to tightest: `+ -` < `* /` < `@`; `-x` binds tighter still.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    MatMul,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::MatMul => "@",
        }
    }
}
