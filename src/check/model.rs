//! The checked model: what `check` produces and `lower` consumes. Every name is resolved,
//! every user-defined layer and `repeat` is inlined (each copy with its own parameters),
//! every value has a known shape, every hyper-parameter has a validated value.
//!
//! Values form an arena ([`ValueId`]) in which operands precede users, like the graph IR,
//! but at the level of the language: `Dense`, activations and losses are single values here
//! and are decomposed into primitives only by `lower`.

use crate::diagnostic::Span;
use crate::graph::{InputKind, Shape, Window};

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
    /// Persistent non-trainable tensors (batch norm's running statistics), in PyTorch's
    /// `named_buffers()` order. They are graph states updated by the training step, read in
    /// evaluation, and saved in weight files beside the parameters.
    pub buffers: Vec<BufferDef>,
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
    /// What the model predicts and the loss that scores it: the prediction operand of the
    /// file's first loss (what `nnc predict` reports).
    pub fn prediction(&self) -> Option<(ValueId, LossKind)> {
        self.values.iter().find_map(|v| match v.kind {
            ValueKind::Loss { kind, pred, .. } => Some((pred, kind)),
            _ => None,
        })
    }
    /// Total number of trainable scalars.
    pub fn param_count(&self) -> usize {
        self.params.iter().map(|p| p.shape.iter().product::<usize>()).sum()
    }
    /// Adds a pruning mask to every weight of two or more dimensions (Dense and convolution
    /// weights, not biases or normalization parameters): a buffer `<weight>_mask` of its
    /// shape, 1 at first, as `torch.nn.utils.prune` names it (`nnc prune`). The update
    /// multiplies the weight's gradient and its new value by it ([`Model::masks`]).
    pub fn add_masks(&mut self) {
        let masked: Vec<(String, Vec<usize>, Span)> = self
            .params
            .iter()
            .filter(|p| p.shape.len() >= 2)
            .map(|p| (format!("{}_mask", p.name), p.shape.clone(), p.span))
            .collect();
        for (name, shape, span) in masked {
            self.buffers.push(BufferDef { name, shape, init: 1.0, span });
        }
    }
    /// For each parameter, the buffer that masks it, if any (`<name>_mask`).
    pub fn masks(&self) -> Vec<Option<u32>> {
        let index = |name: String| self.buffers.iter().position(|b| b.name == name);
        self.params.iter().map(|p| index(format!("{}_mask", p.name)).map(|b| b as u32)).collect()
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

/// A persistent non-trainable tensor: `bn.running_mean`, `bn.running_var`,
/// `bn.num_batches_tracked` (PyTorch's `state_dict` names and shapes; the counter is `[]`).
#[derive(Clone, Debug, PartialEq)]
pub struct BufferDef {
    pub name: String,
    pub shape: Vec<usize>,
    /// Every element's value before the first training step.
    pub init: f64,
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

/// Parameter initializers (docs/methods.md#initializers). Gains and scales are explicit
/// numbers.
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
    /// Fixup (Zhang et al. 2019): He-normal `N(0, 2/fan_in)` scaled by `L^(−1/(2m−2))` for a
    /// residual branch layer, with `L` branches of `m ≥ 2` layers each.
    Fixup {
        branches: u32,
        layers: u32,
    },
    /// LSUV (Mishkin & Matas 2016): orthogonal here; the training session then rescales the
    /// weight on one data batch until its layer's output variance is 1 (`train::lsuv`).
    Lsuv,
    /// Delta-orthogonal (Xiao et al. 2018): a kernel `[out, in, taps...]` that is zero but at
    /// its centre tap (index `⌊(k − 1)/2⌋` along every tap axis), where it is `gain·Q`, Q
    /// `[out, in]` drawn as `orthogonal`. A Dense weight `[out, in]` is a one-tap kernel: there
    /// it is exactly `Orthogonal { gain }`, draw for draw.
    DeltaOrthogonal {
        gain: f64,
    },
    /// The 2-norm of each row of parameter `param` (a `[rows, ...]` tensor), as a `[rows, 1]`
    /// column: weight normalization's `g = ‖v‖`, so that `w = v` at the start
    /// [torch.nn.utils.weight_norm]. Not written by users.
    RowNormOf {
        param: u32,
    },
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
    /// A normalization layer applied to `x`, with its affine `weight` and `bias` (`[d]`,
    /// per feature) when it has them. Same shape as `x`.
    Norm {
        norm: Norm,
        x: ValueId,
        weight: Option<u32>,
        bias: Option<u32>,
    },
    /// `x @ wᵀ + bias` with the weight-normalized `w = g·v/‖v‖` (row-wise norm of `v`):
    /// `x: [N, in]`, `g: [out, 1]`, `v: [out, in]`, bias `[out]` [torch.nn.utils.weight_norm].
    WeightNormDense {
        x: ValueId,
        g: u32,
        v: u32,
        bias: Option<u32>,
    },
    /// Fraction of rows whose argmax equals the class label, scalar.
    Accuracy {
        pred: ValueId,
        target: ValueId,
    },
    /// `dropout(x, p)`: in training, each element of `x` zeroed with probability `p` and the
    /// rest scaled by `1/(1 − p)`, a new mask every step; the identity in evaluation. `p` is
    /// in `[0, 1)`. Same shape as `x` [Dropout].
    Dropout {
        x: ValueId,
        p: f64,
    },
    /// `a` and `b` joined along `axis` [torch.cat]: equal shapes except on `axis`, which
    /// is fixed (never the batch).
    Concat {
        a: ValueId,
        b: ValueId,
        axis: usize,
    },
    /// `x: [N, ...]` with the value's shape, the same values row-major: `flatten(x)`
    /// [torch.flatten(x, 1)] and `reshape(x, [...])` [torch.reshape].
    Reshape(ValueId),
    /// Rows of the table `weight [num, dim]` at the integer ids `ids [N...]` (an input
    /// declared `class[...] of V`, `V <= num`): `[N..., dim]` [Embedding].
    Embedding {
        ids: ValueId,
        weight: u32,
    },
    /// `conv(x, weight) + bias` with `x: [N, C, H, W]`, weight `[out, C/g, kh, kw]`, bias
    /// `[out]` added per channel [Conv2d].
    Conv2d {
        x: ValueId,
        weight: u32,
        bias: Option<u32>,
        win: Window,
    },
    /// Max or average pooling of `x: [N, C, H, W]` over the windows of `win` [MaxPool2d,
    /// AvgPool2d].
    Pool {
        x: ValueId,
        pool: Pool,
        win: Window,
    },
}

/// A pooling layer's combining rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pool {
    Max,
    Avg,
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
    /// tanh approximation `x/2·(1 + tanh(√(2/π)(x + 0.044715x³)))` [GELU(approximate='tanh')].
    GeluTanh,
    /// `x` if `x > 0`, else `α(eˣ − 1)` [ELU].
    Elu(f64),
    /// `x·sigmoid(x)` [SiLU].
    Silu,
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
    /// `−mean_i Σ_c q_ic log softmax(z_i)_c` with `q = (1 − ε)·onehot(y) + ε/C`
    /// (`ε = label_smoothing`, 0 gives `−mean_i log softmax(z_i)[y_i]`); `z: [N, C]`,
    /// `y: class[N] of C` [CrossEntropyLoss].
    CrossEntropy { label_smoothing: f64 },
    /// `mean softplus(−y·z)`, `y ∈ {−1, +1}`, same shape as `z`.
    Logistic,
    /// `mean softplus(z) − y·z`, `y ∈ {0, 1}`, same shape as `z`.
    BceWithLogits,
    /// `mean max(0, 1 − y·z)`, `y ∈ {−1, +1}`, same shape as `z`.
    Hinge,
    /// `mean` of `½d²` where `|d| < δ`, else `δ(|d| − ½δ)`, `d = z − y` [HuberLoss].
    Huber(f64),
    /// `mean |z − y|` [L1Loss].
    L1,
}

/// Normalization layers (PyTorch's definitions; `d` is the feature count, the last axis).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Norm {
    /// `(x − mean)/√(var + eps)` over the last axis, biased variance [LayerNorm].
    Layer { eps: f64 },
    /// `x: [N, d]`, per feature over the batch [BatchNorm1d]. Training: batch mean and biased
    /// variance; the running statistics (buffers `buffer`, `buffer + 1`, `buffer + 2`:
    /// `running_mean`, `running_var`, `num_batches_tracked`) move by
    /// `r = (1 − momentum)·r + momentum·batch statistic`, with the unbiased variance.
    /// Evaluation: `(x − running_mean)/√(running_var + eps)`.
    Batch { eps: f64, momentum: f64, buffer: u32 },
    /// `x: [N, d]`, the `d` features split into `groups` consecutive groups of `d/groups`,
    /// each normalized over its features [GroupNorm].
    Group { groups: u32, eps: f64 },
}

/// The optimizer: its method, the hyper-parameters of every parameter that no group selects,
/// and the parameter groups (PyTorch's `param_groups`). A parameter belongs to the first
/// group with a pattern matching its name.
#[derive(Clone, Debug, PartialEq)]
pub struct Optimizer {
    pub method: Method,
    /// The values written in the `optimizer` call, defaults filled in.
    pub hyper: Hyper,
    pub groups: Vec<ParamGroup>,
}

impl Optimizer {
    /// The base learning rate of parameters in no group (the schedule scales it).
    pub fn lr(&self) -> f64 {
        self.hyper.lr
    }
    /// The group parameter `i` belongs to (first matching group), if any.
    pub fn group_of(&self, i: u32) -> Option<&ParamGroup> {
        self.groups.iter().find(|g| g.params.contains(&i))
    }
    /// The hyper-parameters that apply to parameter `i`.
    pub fn hyper_of(&self, i: u32) -> &Hyper {
        self.group_of(i).map_or(&self.hyper, |g| &g.hyper)
    }
}

/// The update rules (docs/methods.md#optimizers; PyTorch's definitions where PyTorch has
/// the method).
/// `amsgrad(...)` is `Adam` with `amsgrad = true`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// torch.optim.SGD
    Sgd,
    /// Polyak: `θ_{t+1} = θ_t − lr·g + β(θ_t − θ_{t−1})`
    HeavyBall,
    /// torch.optim.Adagrad
    Adagrad,
    /// torch.optim.RMSprop
    Rmsprop,
    /// torch.optim.Adadelta
    Adadelta,
    /// torch.optim.Adam (and AMSGrad)
    Adam,
    /// torch.optim.AdamW
    AdamW,
    /// torch.optim.NAdam
    NAdam,
    /// torch.optim.RAdam
    RAdam,
    /// torch.optim.Adamax
    Adamax,
    /// AdaBound (Luo et al. 2019): Adam's per-element step size clipped into bounds that
    /// converge to `final_lr`.
    AdaBound,
    /// Padam (Chen & Gu 2018): `θ −= lr·m̂/(v̂^p + ε)`, partially adaptive.
    Padam,
    /// LARS (You et al. 2017): per-layer trust ratio, momentum.
    Lars,
    /// LAMB (You et al. 2019): Adam direction with a per-layer trust ratio.
    Lamb,
    /// torch.optim.LBFGS, full batch, driven from the host (`train::lbfgs`): its step graph is
    /// the gradient graph, with no update.
    Lbfgs,
}

impl Method {
    /// The name a `.nn` file uses (`adam` for AMSGrad too).
    pub fn name(self) -> &'static str {
        match self {
            Method::Sgd => "sgd",
            Method::HeavyBall => "heavy_ball",
            Method::Adagrad => "adagrad",
            Method::Rmsprop => "rmsprop",
            Method::Adadelta => "adadelta",
            Method::Adam => "adam",
            Method::AdamW => "adamw",
            Method::NAdam => "nadam",
            Method::RAdam => "radam",
            Method::Adamax => "adamax",
            Method::AdaBound => "adabound",
            Method::Padam => "padam",
            Method::Lars => "lars",
            Method::Lamb => "lamb",
            Method::Lbfgs => "lbfgs",
        }
    }
}

/// Every hyper-parameter any method reads, like one PyTorch `param_group` dict: a method
/// reads only its own (its registry entry lists them); the others keep their zero default.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Hyper {
    pub lr: f64,
    /// SGD, heavy ball (β), RMSprop, LARS momentum.
    pub momentum: f64,
    pub dampening: f64,
    pub nesterov: bool,
    /// Coupled (`g += λθ`) except AdamW's (`θ −= lr·λ·θ`) and LAMB/LARS's (in the ratio).
    pub weight_decay: f64,
    /// `betas = (beta1, beta2)`.
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Adam/AdamW: keep `max_exp_avg_sq`; Padam: the same max in `v̂`.
    pub amsgrad: bool,
    /// RMSprop smoothing constant.
    pub alpha: f64,
    pub centered: bool,
    /// Adadelta decay.
    pub rho: f64,
    /// Adagrad: `lr_t = lr / (1 + (t−1)·lr_decay)`.
    pub lr_decay: f64,
    pub initial_accumulator_value: f64,
    /// NAdam's ψ.
    pub momentum_decay: f64,
    /// AdaBound's bounds converge to `final_lr`, at speed `gamma`.
    pub final_lr: f64,
    pub gamma: f64,
    /// Padam's exponent `p`.
    pub partial: f64,
    /// LARS's η.
    pub trust_coefficient: f64,
    /// `clamp = (lo, hi)`, any method: after the update each element is projected onto
    /// `[lo, hi]` (projected gradient descent); `lo < hi`.
    pub clamp: Option<(f64, f64)>,
    /// L-BFGS [torch.optim.LBFGS]: iterations and function evaluations per step, the
    /// first-order optimality (`max |g| ≤ tolerance_grad`) and progress (`tolerance_change`)
    /// tolerances, the number of curvature pairs kept, the line search.
    pub max_iter: u64,
    pub max_eval: u64,
    pub tolerance_grad: f64,
    pub tolerance_change: f64,
    pub history_size: u64,
    pub line_search: LineSearch,
}

/// L-BFGS's line search [torch.optim.LBFGS's `line_search_fn`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LineSearch {
    /// A fixed step `lr` per iteration (torch's `line_search_fn=None`).
    #[default]
    None,
    /// A step meeting the strong Wolfe conditions, by bracketing and cubic-interpolation
    /// zoom (torch's `"strong_wolfe"`).
    StrongWolfe,
}

impl LineSearch {
    /// The names a `.nn` file uses: `line_search = "strong_wolfe"` or `"none"`.
    pub const NAMES: [(&'static str, LineSearch); 2] =
        [("strong_wolfe", LineSearch::StrongWolfe), ("none", LineSearch::None)];
    pub fn from_name(name: &str) -> Option<LineSearch> {
        LineSearch::NAMES.iter().find(|(n, _)| *n == name).map(|(_, l)| *l)
    }
}

/// A parameter group: the parameters whose names match one of `patterns` (and no earlier
/// group's), with their own hyper-parameters (the optimizer's, overridden) and clipping.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamGroup {
    /// Glob patterns over parameter names: `*` matches any run of characters (dots too).
    pub patterns: Vec<String>,
    pub hyper: Hyper,
    /// Clipping of this group's gradients, after the global `clip`.
    pub clip: Option<Clip>,
    /// Indices into [`Model::params`] of the parameters this group owns, ascending.
    pub params: Vec<u32>,
    pub span: Span,
}

/// Learning-rate schedule, evaluated on the host each step (`crate::schedule`): one or more
/// phases run one after the other (`warmup(200) then cosine(T = 1000)`); each phase but the
/// last has a length, and each counts its own steps from 1.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    pub phases: Vec<Phase>,
}

impl Default for Schedule {
    fn default() -> Schedule {
        Schedule { phases: vec![Phase::Constant] }
    }
}

/// One schedule phase. `e = t − 1` is PyTorch's `last_epoch` when its scheduler is stepped
/// once per optimizer step (the rate at step `t` is PyTorch's after `t − 1` `step()` calls).
#[derive(Clone, Debug, PartialEq)]
pub enum Phase {
    /// `lr`
    Constant,
    /// `lr·γ^⌊e/step_size⌋` [StepLR]
    Step { step_size: u64, gamma: f64 },
    /// `lr·γ^(number of milestones ≤ e)` [MultiStepLR]
    MultiStep { milestones: Vec<u64>, gamma: f64 },
    /// `lr·γ^e` [ExponentialLR]
    Exponential { gamma: f64 },
    /// `lr/(1 + k·e)^p`
    InverseTime { k: f64, power: f64 },
    /// `lr/√t`
    InvSqrt,
    /// `(lr − end)·(1 − min(e, total)/total)^power + end` [PolynomialLR when end = 0]
    Polynomial { total: u64, power: f64, end: f64 },
    /// `η_min + (lr − η_min)(1 + cos(π·e/T))/2` [CosineAnnealingLR]
    Cosine { t_max: u64, eta_min: f64 },
    /// Cosine annealing restarted after `T₀`, `T₀·T_mult`, ... steps
    /// [CosineAnnealingWarmRestarts].
    Sgdr { t0: u64, t_mult: u64, eta_min: f64 },
    /// Between `base_lr` and `max_lr`, up in `up` steps and down in `down` [CyclicLR].
    Cyclic { base_lr: f64, max_lr: f64, up: u64, down: u64, mode: CyclicMode, gamma: f64 },
    /// [OneCycleLR]: from `max_lr/div_factor` up to `max_lr` over `pct_start` of the steps,
    /// then down to `max_lr/(div_factor·final_div_factor)`.
    OneCycle {
        max_lr: f64,
        total_steps: u64,
        pct_start: f64,
        div_factor: f64,
        final_div_factor: f64,
        anneal: Anneal,
        three_phase: bool,
    },
    /// Linear warmup `lr·(from + (1 − from)·min(e, steps)/steps)` [LinearLR with
    /// start_factor = from, total_iters = steps]; `from = 0` starts at rate 0.
    Warmup { steps: u64, from: f64 },
}

/// CyclicLR's amplitude policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CyclicMode {
    /// Constant amplitude.
    Triangular,
    /// Amplitude halved each cycle.
    Triangular2,
    /// Amplitude times `γ^e`.
    ExpRange,
}

/// OneCycleLR's annealing between phase ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anneal {
    Cos,
    Linear,
}

/// The `scale_lr` train setting: a factor applied to every scheduled learning rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LrScale {
    /// `scale_lr = 2.5`
    Factor(f64),
    /// `scale_lr = batch / reference` (Goyal et al.'s linear scaling rule) or, with `sqrt`,
    /// `scale_lr = sqrt(batch / reference)`; follows `--batch`.
    Batch { reference: f64, sqrt: bool },
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
    /// Multiplies every scheduled learning rate (the linear scaling rule); default none.
    pub scale_lr: Option<LrScale>,
    /// Seed of the validation split alone (default: `seed`), so that runs of different
    /// seeds can hold out the same examples.
    pub split_seed: Option<u64>,
}

impl TrainSpec {
    /// The seed the validation split is drawn with.
    pub fn split_seed(&self) -> u64 {
        self.split_seed.unwrap_or(self.seed)
    }
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
    /// `idx("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")`: MNIST's format.
    Idx { images: String, labels: String, span: Span },
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
    /// Benchmarks: features `N(0,1)`, labels uniform classes or `N(0,1)` targets (no signal).
    Random,
    /// Regression: `y = A·x + noise`, `x ~ N(0, I)`, a fixed teacher matrix `A` with singular
    /// values 8, 4, 2, 1, ... (for deep linear networks).
    Linear,
    /// Bag of tokens: `T` ids in `0..V` per example (an id input `class[B, T] of V`), C
    /// classes; each token is uniform over the vocabulary with probability `noise`, else
    /// uniform over its class's own ids `{v : v mod C = class}`.
    Tokens,
}
