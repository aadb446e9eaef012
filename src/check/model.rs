//! The checked model: what `check` produces and `lower` consumes. Every name is resolved,
//! every user-defined layer and `repeat` is inlined (each copy with its own parameters),
//! every value has a known shape, every hyper-parameter has a validated value.
//!
//! Values form an arena ([`ValueId`]) in which operands precede users, like the graph IR,
//! but at the level of the language: `Dense`, activations and losses are single values here
//! and are decomposed into primitives only by `lower`.

use crate::diagnostic::Span;
use crate::graph::{InputKind, Shape};

/// Index into [`Model::values`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub u32);

#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    pub name: String,
    /// `input` and `label` declarations, in source order.
    pub inputs: Vec<ModelInput>,
    /// Trainable parameters with PyTorch `state_dict` names, in PyTorch's `named_parameters()`
    /// order: a module's own `param`s first, then its sub-layers', each in declaration order.
    pub params: Vec<ParamDef>,
    /// The forward computation; operands precede users.
    pub values: Vec<Value>,
    /// The scalar training loss (including any penalty terms the user added).
    pub loss: ValueId,
    pub metrics: Vec<MetricDef>,
    pub optimizer: Optimizer,
    pub schedule: Schedule,
    pub clip: Option<Clip>,
    pub train: TrainSpec,
}

impl Model {
    pub fn value(&self, id: ValueId) -> &Value {
        &self.values[id.0 as usize]
    }
    /// Total number of trainable scalars.
    pub fn param_count(&self) -> usize {
        self.params.iter().map(|p| p.shape.iter().product::<usize>()).sum()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ModelInput {
    pub name: String,
    /// Contains `Dim::Batch` as its first dimension.
    pub shape: Shape,
    pub kind: InputKind,
    /// Declared with `label` (the data's target column) rather than `input`.
    pub is_label: bool,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ParamDef {
    /// `fc1.weight`, `blocks.3.fc2.bias`, `scale.g`, ...
    pub name: String,
    /// Fixed dimensions; Dense weights are `[out, in]` as in PyTorch.
    pub shape: Vec<usize>,
    pub init: Init,
    /// PyTorch's fan-in/fan-out of the weight this parameter belongs to (a Dense bias uses its
    /// weight's fan-in, as torch.nn.Linear's default init does).
    pub fan_in: usize,
    pub fan_out: usize,
    pub span: Span,
}

/// Parameter initializers (CATALOG.md). Gains and scales are explicit numbers.
#[derive(Clone, Debug, PartialEq)]
pub enum Init {
    /// torch.nn.Linear's default: `U(±1/√fan_in)`.
    Default,
    Zeros,
    Ones,
    Constant(f64),
    Normal {
        mean: f64,
        std: f64,
    },
    Uniform {
        low: f64,
        high: f64,
    },
    /// `N(mean, std)` resampled outside `[mean-2std, mean+2std]`.
    TruncatedNormal {
        mean: f64,
        std: f64,
    },
    XavierUniform {
        gain: f64,
    },
    XavierNormal {
        gain: f64,
    },
    /// Kaiming for ReLU: `U(±√(6/fan_in))`.
    HeUniform,
    /// Kaiming for ReLU: `N(0, 2/fan_in)`.
    HeNormal,
    LecunUniform,
    LecunNormal,
    Orthogonal {
        gain: f64,
    },
    /// The identity matrix (square or rectangular, ones on the diagonal).
    Identity,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MetricDef {
    /// The metric function's name, e.g. `accuracy`.
    pub name: String,
    /// A scalar value.
    pub value: ValueId,
    pub span: Span,
}

/// One typed, shaped value of the forward computation.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    pub kind: ValueKind,
    pub shape: Shape,
    /// The source expression it came from (the call site for inlined layer bodies).
    pub span: Span,
    /// Which layer instance produced it, e.g. `fc1` or `blocks.2.fc1` (for IR comments).
    pub layer: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ValueKind {
    Input(u32),
    Param(u32),
    /// A scalar constant, shape `[]`.
    Const(f64),
    /// An elementwise function.
    Unary(UnaryFn, ValueId),
    /// NumPy-broadcasting arithmetic; the value's shape is the broadcast result.
    Arith(ArithOp, ValueId, ValueId),
    /// `a @ b`, both rank 2.
    MatMul(ValueId, ValueId),
    /// `x @ weightᵀ + bias` with `x: [N, in]`, weight `[out, in]`, bias `[out]`.
    Dense {
        x: ValueId,
        weight: u32,
        bias: Option<u32>,
    },
    /// `sum`/`mean` over one axis (removed from the shape) or over all (`[]`).
    Reduce {
        op: ReduceFn,
        x: ValueId,
        axis: Option<usize>,
    },
    /// Softmax / log-softmax over the last axis.
    Softmax(ValueId),
    LogSoftmax(ValueId),
    /// A loss, scalar, mean over the batch.
    Loss {
        kind: LossKind,
        pred: ValueId,
        target: ValueId,
    },
    /// Fraction of rows whose argmax equals the class label, scalar.
    Accuracy {
        pred: ValueId,
        target: ValueId,
    },
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnaryFn {
    Identity,
    Relu,
    LeakyRelu(f64),
    Tanh,
    Sigmoid,
    Softplus,
    /// erf form `x·Φ(x)`.
    Gelu,
    Neg,
    Exp,
    Log,
    Sqrt,
    Abs,
    Square,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceFn {
    Sum,
    Mean,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LossKind {
    /// `mean((z − y)²)` over all elements; `y` real, same shape as `z`.
    Mse,
    /// `−mean_i log softmax(z_i)[y_i]`; `z: [N, C]`, `y: class[N] of C`.
    CrossEntropy,
    /// `mean softplus(−y·z)`, `y ∈ {−1, +1}`, same shape as `z`.
    Logistic,
    /// `mean softplus(z) − y·z`, `y ∈ {0, 1}`, same shape as `z`.
    BceWithLogits,
}

/// The optimizer and its validated hyper-parameters (PyTorch's defaults where omitted).
#[derive(Clone, Debug, PartialEq)]
pub enum Optimizer {
    /// torch.optim.SGD
    Sgd { lr: f64, momentum: f64, dampening: f64, nesterov: bool, weight_decay: f64 },
    /// torch.optim.Adam
    Adam { lr: f64, beta1: f64, beta2: f64, eps: f64, weight_decay: f64 },
}

impl Optimizer {
    pub fn lr(&self) -> f64 {
        match self {
            Optimizer::Sgd { lr, .. } | Optimizer::Adam { lr, .. } => *lr,
        }
    }
}

/// Learning-rate schedule, evaluated on the host each step.
#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    Constant,
}

impl Schedule {
    /// The learning rate for optimizer step `t` (from 1) given the optimizer's base rate.
    pub fn lr(&self, base: f64, _t: u64) -> f64 {
        match self {
            Schedule::Constant => base,
        }
    }
}

/// Gradient clipping applied before the optimizer update.
#[derive(Clone, Debug, PartialEq)]
pub enum Clip {
    /// `g *= min(1, c / (‖concat(g)‖₂ + 1e-6))`
    GlobalNorm(f64),
    /// `g = clamp(g, −c, c)`
    Value(f64),
}

/// The `train { ... }` block, with defaults filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainSpec {
    pub data: Option<DataSpec>,
    /// Default 32.
    pub batch: usize,
    /// Stop after this many epochs (default 1 when neither is given) ...
    pub epochs: Option<usize>,
    /// ... or after this many optimizer steps (wins over `epochs`).
    pub steps: Option<usize>,
    /// Default 0.
    pub seed: u64,
    /// Default true.
    pub shuffle: bool,
    /// Fraction of examples held out for validation (taken from the end after a seeded
    /// shuffle), default 0.
    pub validation: f64,
}

/// Where the examples come from. Paths are as written (relative to the `.nn` file).
#[derive(Clone, Debug, PartialEq)]
pub enum DataSpec {
    /// `csv("digits.csv", label = "label")`: every other column is a feature.
    Csv { path: String, label: String, span: Span },
    /// `npz("data.npz", x = "x", y = "y")`
    Npz { path: String, x: String, y: String, span: Span },
    /// `npy(x = "x.npy", y = "y.npy")`
    Npy { x: String, y: String, span: Span },
    /// A built-in generator: `xor(n = 200)`, `spirals(n = 600, noise = 0.2)`, ...
    Synthetic { kind: Synthetic, n: usize, noise: f64, span: Span },
}

/// Built-in synthetic data sets: features and labels are shaped to fit the model's `input`
/// and `label` (checked by `check`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Synthetic {
    /// 2 features, 2 classes: the four corners of a square with noise, label = x₀ xor x₁.
    Xor,
    /// 2 features, C interleaved spiral arms (C from the label's class count).
    Spirals,
    /// 2 features, 2 classes: two interleaving half circles.
    Moons,
    /// F features, C Gaussian clusters.
    Blobs,
    /// Regression: targets from a fixed random teacher MLP (tanh, 32 hidden) plus noise.
    Teacher,
}
