//! The builtin tables of the language, as data: every layer, function, loss, metric,
//! initializer, optimizer, schedule, clip, data set and train setting the checker knows, with
//! its parameters, their defaults (as text) and a one-line description.
//!
//! The checker binds call arguments against these parameter lists and draws its "did you
//! mean" suggestions from them; `nnc list` and the README reference print them. Invariant:
//! every name here is implemented by the checker (a unit test in `check` walks the tables),
//! and a parameter with `default: None` is required.

/// One parameter of a builtin: its name and its default as written in `.nn` source
/// (`None` when the parameter is required).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Param {
    pub name: &'static str,
    pub default: Option<&'static str>,
}

/// One builtin: name, parameters in positional order, and a one-line description.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Builtin {
    pub name: &'static str,
    pub params: &'static [Param],
    pub doc: &'static str,
}

impl Builtin {
    /// The call signature as a user writes it, e.g. `sgd(lr, momentum = 0, ...)`.
    pub fn signature(&self) -> String {
        let params: Vec<String> = self
            .params
            .iter()
            .map(|p| match p.default {
                Some(d) => format!("{} = {d}", p.name),
                None => p.name.to_string(),
            })
            .collect();
        format!("{}({})", self.name, params.join(", "))
    }
    /// Index of the parameter called `name`.
    pub fn param_index(&self, name: &str) -> Option<usize> {
        self.params.iter().position(|p| p.name == name)
    }
}

const fn req(name: &'static str) -> Param {
    Param { name, default: None }
}
const fn opt(name: &'static str, default: &'static str) -> Param {
    Param { name, default: Some(default) }
}
const fn b(name: &'static str, params: &'static [Param], doc: &'static str) -> Builtin {
    Builtin { name, params, doc }
}

const X: &[Param] = &[req("x")];
const PRED_TARGET: &[Param] = &[req("pred"), req("target")];
const NO_PARAMS: &[Param] = &[];
const GAIN: &[Param] = &[opt("gain", "1")];
const N_NOISE: &[Param] = &[opt("n", "200"), opt("noise", "0.1")];

/// Built-in layers (constructors). User-defined `layer`s join these in scope.
pub const LAYERS: &[Builtin] = &[
    b(
        "Dense",
        &[
            req("in -> out"),
            opt("init", "default"),
            opt("bias", "true"),
            opt("bias_init", "default"),
            opt("weight_norm", "false"),
        ],
        "fully connected: [N, in] -> [N, out]; params `weight` [out, in] and `bias` [out]; \
         weight_norm: `weight_g` [out, 1], `weight_v` [out, in], w = g v / |v| per row",
    ),
    b(
        "LayerNorm",
        &[req("d"), opt("eps", "1e-5"), opt("affine", "true")],
        "(x - mean) / sqrt(var + eps) over the last axis (size d), then * weight + bias \
         [LayerNorm]",
    ),
    b(
        "BatchNorm",
        &[req("d"), opt("eps", "1e-5"), opt("momentum", "0.1"), opt("affine", "true")],
        "[N, d] per feature over the batch; running_mean/running_var buffers for eval \
         [BatchNorm1d]",
    ),
    b(
        "BatchNorm2d",
        &[req("d"), opt("eps", "1e-5"), opt("momentum", "0.1"), opt("affine", "true")],
        "[N, d, H, W] per channel over N, H and W; running_mean/running_var buffers for eval \
         [BatchNorm2d]",
    ),
    b(
        "GroupNorm",
        &[req("groups"), req("d"), opt("eps", "1e-5"), opt("affine", "true")],
        "[N, d] or [N, d, H, W]: each group of d / groups channels normalized together (over \
         H and W too) [GroupNorm]",
    ),
    b(
        "Conv2d",
        &[
            req("in -> out"),
            req("kernel"),
            opt("stride", "1"),
            opt("padding", "0"),
            opt("dilation", "1"),
            opt("groups", "1"),
            opt("bias", "true"),
            opt("init", "default"),
            opt("bias_init", "default"),
        ],
        "2-D convolution: [N, in, H, W] -> [N, out, Ho, Wo]; params `weight` [out, in/groups, \
         kh, kw] and `bias` [out]; sizes an integer or a pair (h, w); padding a size or \
         \"same\" (stride 1, odd kernel) [Conv2d]",
    ),
    b(
        "MaxPool2d",
        &[req("kernel"), opt("stride", "kernel"), opt("padding", "0")],
        "[N, C, H, W] -> [N, C, Ho, Wo]: the maximum of each window; its gradient goes to the \
         first maximum; padding at most half the kernel [MaxPool2d]",
    ),
    b(
        "AvgPool2d",
        &[req("kernel"), opt("stride", "kernel"), opt("padding", "0")],
        "[N, C, H, W] -> [N, C, Ho, Wo]: the mean of each window, padding counted as zeros \
         [AvgPool2d]",
    ),
    b(
        "Embedding",
        &[req("num -> dim"), opt("init", "normal(0, 1)")],
        "rows of `weight` [num, dim] at integer ids: ids [N, ...] (an input `class[N, ...] of V`, \
         V <= num) -> [N, ..., dim] [Embedding]",
    ),
];

/// Elementwise activations: the result has the operand's shape.
pub const ACTIVATIONS: &[Builtin] = &[
    b("identity", X, "x"),
    b("relu", X, "max(x, 0)"),
    b("leaky_relu", &[req("x"), opt("slope", "0.01")], "x if x > 0 else slope * x"),
    b("tanh", X, "hyperbolic tangent"),
    b("sigmoid", X, "1 / (1 + exp(-x))"),
    b("softplus", X, "log(1 + exp(x)), computed stably"),
    b(
        "gelu",
        &[req("x"), opt("approximate", "\"none\"")],
        "x * Phi(x) (erf form); approximate = \"tanh\": tanh approximation",
    ),
    b("elu", &[req("x"), opt("alpha", "1")], "x if x > 0 else alpha * (exp(x) - 1)"),
    b("silu", X, "x * sigmoid(x)"),
    b(
        "dropout",
        &[req("x"), opt("p", "0.5")],
        "training only: each element zeroed with probability p in [0, 1), the rest scaled by \
         1 / (1 - p), a new seeded mask every step; the identity in evaluation [Dropout]",
    ),
];

/// Elementwise math and the row-wise normalizers.
pub const MATH: &[Builtin] = &[
    b("exp", X, "e^x, elementwise"),
    b("log", X, "natural logarithm, elementwise"),
    b("sqrt", X, "square root, elementwise"),
    b("abs", X, "|x|, elementwise"),
    b("square", X, "x * x, elementwise"),
    b("softmax", X, "softmax over the last axis"),
    b("log_softmax", X, "log of softmax over the last axis, max-shifted"),
];

/// Functions that rearrange elements: joins and reshapes.
pub const SHAPES: &[Builtin] = &[
    b(
        "concat",
        &[req("x..."), opt("axis", "-1")],
        "two or more tensors joined along `axis` (negative counts from the end); shapes equal \
         except on that axis, which cannot be the batch [torch.cat]",
    ),
    b("flatten", X, "[N, d1, d2, ...] -> [N, d1 * d2 * ...], row-major [torch.flatten(x, 1)]"),
    b(
        "avg_pool2d",
        &[req("x"), req("kernel")],
        "[N, C, H, W] -> [N, C, H/k, W/k]: the mean of each k x k window at stride k, no \
         padding; H and W multiples of k [F.avg_pool2d(x, k)]",
    ),
    b(
        "global_avg_pool",
        X,
        "[N, C, H, W] -> [N, C]: the mean over H and W [F.adaptive_avg_pool2d(x, 1).flatten(1)]",
    ),
    b(
        "reshape",
        &[req("x"), req("shape")],
        "[N, ...] -> [N, shape...] with as many values per example, row-major; the batch \
         stays first: reshape(x, [1, 8, 8]) [torch.reshape(x, (N, *shape))]",
    ),
];

/// Reductions: over every element (result `[]`) or over one axis (removed).
pub const REDUCTIONS: &[Builtin] = &[
    b("sum", &[req("x"), opt("axis", "all")], "sum of all elements, or along `axis`"),
    b("mean", &[req("x"), opt("axis", "all")], "mean of all elements, or along `axis`"),
];

/// Losses: scalar, mean over the batch.
pub const LOSSES: &[Builtin] = &[
    b("mse", PRED_TARGET, "mean((pred - target)^2); real target of the same shape"),
    b(
        "cross_entropy",
        &[req("logits"), req("labels"), opt("label_smoothing", "0")],
        "-mean log softmax(logits)[labels]; logits [N, C], labels class[N] of C; \
         label_smoothing mixes in the uniform distribution [CrossEntropyLoss]",
    ),
    b("logistic", PRED_TARGET, "mean softplus(-target * pred); target in {-1, +1}, same shape"),
    b(
        "bce_with_logits",
        PRED_TARGET,
        "mean softplus(pred) - target * pred; target in {0, 1}, same shape",
    ),
    b("hinge", PRED_TARGET, "mean max(0, 1 - target * pred); target in {-1, +1}, same shape"),
    b(
        "huber",
        &[req("pred"), req("target"), opt("delta", "1")],
        "mean of d^2 / 2 where |d| < delta, else delta (|d| - delta / 2); d = pred - target \
         [HuberLoss]",
    ),
    b("l1", PRED_TARGET, "mean |pred - target| [L1Loss]"),
];

/// Penalties on chosen parameters, added to the loss by the user. Arguments: any number of
/// parameters (`fc1.weight`) or layers (all their parameters), each counted once, then
/// `lambda`.
pub const PENALTIES: &[Builtin] = &[
    b("l2_penalty", &[req("params..."), req("lambda")], "lambda / 2 * sum of theta^2"),
    b("l1_penalty", &[req("params..."), req("lambda")], "lambda * sum of |theta|"),
];

/// Metrics: scalar, reported during training and evaluation.
pub const METRICS: &[Builtin] = &[b(
    "accuracy",
    &[req("logits"), req("labels")],
    "fraction of rows whose argmax equals the class label",
)];

/// Parameter initializers, written `init = NAME` or `init = NAME(args)`.
pub const INITIALIZERS: &[Builtin] = &[
    b("default", NO_PARAMS, "U(+-1/sqrt(fan_in)), torch.nn.Linear's default"),
    b("zeros", NO_PARAMS, "all 0"),
    b("ones", NO_PARAMS, "all 1"),
    b("constant", &[req("c")], "all c"),
    b("normal", &[opt("mean", "0"), opt("std", "1")], "N(mean, std^2)"),
    b("uniform", &[opt("low", "-1"), opt("high", "1")], "U(low, high)"),
    b(
        "truncated_normal",
        &[opt("mean", "0"), opt("std", "1")],
        "N(mean, std^2) resampled outside mean +- 2 std",
    ),
    b("xavier_uniform", GAIN, "U(+-gain * sqrt(6 / (fan_in + fan_out)))"),
    b("xavier_normal", GAIN, "N(0, gain^2 * 2 / (fan_in + fan_out))"),
    b("he_uniform", NO_PARAMS, "U(+-sqrt(6 / fan_in)) (Kaiming, relu)"),
    b("he_normal", NO_PARAMS, "N(0, 2 / fan_in) (Kaiming, relu)"),
    b("kaiming_uniform", NO_PARAMS, "alias of he_uniform"),
    b("kaiming_normal", NO_PARAMS, "alias of he_normal"),
    b("lecun_uniform", NO_PARAMS, "U(+-sqrt(3 / fan_in))"),
    b("lecun_normal", NO_PARAMS, "N(0, 1 / fan_in)"),
    b("orthogonal", GAIN, "gain * Q from the QR of a Gaussian matrix (rank >= 2)"),
    b("identity", NO_PARAMS, "the identity matrix (rank 2)"),
    b(
        "delta_orthogonal",
        GAIN,
        "kernel [out, in, taps...]: orthogonal(gain) at the centre tap, 0 elsewhere; \
         on a Dense weight [out, in] (one tap) it is orthogonal(gain)",
    ),
    b(
        "fixup",
        &[req("branches"), req("layers")],
        "Fixup: N(0, 2 / fan_in) * branches^(-1 / (2 layers - 2)), for residual branch layers",
    ),
    b(
        "lsuv",
        NO_PARAMS,
        "orthogonal, then rescaled on one data batch until the layer's output variance is 1",
    ),
];

const BETAS: Param = opt("betas", "(0.9, 0.999)");
const NO_DECAY: Param = opt("weight_decay", "0");

/// Optimizers (PyTorch's definitions and defaults; all in docs/methods.md#optimizers).
/// Every one but `lbfgs` (which takes no groups) takes `weight_decay`, so a parameter group
/// can switch decay off for biases. The default texts are parsed by the checker: they are
/// the defaults (lbfgs's `max_eval` is derived from `max_iter` as torch does).
pub const OPTIMIZERS: &[Builtin] = &[
    b(
        "sgd",
        &[
            req("lr"),
            opt("momentum", "0"),
            opt("dampening", "0"),
            opt("nesterov", "false"),
            NO_DECAY,
        ],
        "SGD with optional (Nesterov) momentum and dampening [torch.optim.SGD]",
    ),
    b(
        "heavy_ball",
        &[req("lr"), opt("momentum", "0.9"), NO_DECAY],
        "Polyak: theta += -lr * g + momentum * (theta - previous theta)",
    ),
    b(
        "adagrad",
        &[
            opt("lr", "1e-2"),
            opt("lr_decay", "0"),
            NO_DECAY,
            opt("initial_accumulator_value", "0"),
            opt("eps", "1e-10"),
        ],
        "sum of squared gradients; lr / (1 + (t - 1) lr_decay) [torch.optim.Adagrad]",
    ),
    b(
        "rmsprop",
        &[
            opt("lr", "1e-2"),
            opt("alpha", "0.99"),
            opt("eps", "1e-8"),
            NO_DECAY,
            opt("momentum", "0"),
            opt("centered", "false"),
        ],
        "running mean of squared gradients, optional momentum and centering [torch.optim.RMSprop]",
    ),
    b(
        "adadelta",
        &[opt("lr", "1"), opt("rho", "0.9"), opt("eps", "1e-6"), NO_DECAY],
        "step from the ratio of running RMS of updates and gradients [torch.optim.Adadelta]",
    ),
    b(
        "adam",
        &[opt("lr", "1e-3"), BETAS, opt("eps", "1e-8"), NO_DECAY, opt("amsgrad", "false")],
        "Adam with bias correction; amsgrad keeps max_exp_avg_sq [torch.optim.Adam]",
    ),
    b(
        "amsgrad",
        &[opt("lr", "1e-3"), BETAS, opt("eps", "1e-8"), NO_DECAY],
        "adam(amsgrad = true) [torch.optim.Adam(amsgrad=True)]",
    ),
    b(
        "adamw",
        &[
            opt("lr", "1e-3"),
            BETAS,
            opt("eps", "1e-8"),
            opt("weight_decay", "0.01"),
            opt("amsgrad", "false"),
        ],
        "Adam with decoupled weight decay theta -= lr * weight_decay * theta [torch.optim.AdamW]",
    ),
    b(
        "nadam",
        &[opt("lr", "2e-3"), BETAS, opt("eps", "1e-8"), NO_DECAY, opt("momentum_decay", "4e-3")],
        "Adam with Nesterov momentum and the mu_product schedule [torch.optim.NAdam]",
    ),
    b(
        "radam",
        &[opt("lr", "1e-3"), BETAS, opt("eps", "1e-8"), NO_DECAY],
        "rectified Adam: SGD with momentum until rho_t > 5 [torch.optim.RAdam]",
    ),
    b(
        "adamax",
        &[opt("lr", "2e-3"), BETAS, opt("eps", "1e-8"), NO_DECAY],
        "Adam with the infinity norm exp_inf [torch.optim.Adamax]",
    ),
    b(
        "adabound",
        &[
            opt("lr", "1e-3"),
            BETAS,
            opt("final_lr", "0.1"),
            opt("gamma", "1e-3"),
            opt("eps", "1e-8"),
            NO_DECAY,
        ],
        "Adam step sizes clipped into bounds converging to final_lr (Luo et al. 2019)",
    ),
    b(
        "padam",
        &[
            opt("lr", "0.1"),
            BETAS,
            opt("partial", "0.125"),
            opt("eps", "1e-8"),
            NO_DECAY,
            opt("amsgrad", "true"),
        ],
        "partially adaptive: theta -= lr * m_hat / (v_hat^partial + eps) (Chen & Gu 2018)",
    ),
    b(
        "lars",
        &[req("lr"), opt("momentum", "0.9"), NO_DECAY, opt("trust_coefficient", "1e-3")],
        "momentum SGD with a per-tensor trust ratio (You et al. 2017)",
    ),
    b(
        "lamb",
        &[opt("lr", "1e-3"), BETAS, opt("eps", "1e-6"), opt("weight_decay", "0.01")],
        "Adam direction plus decay, scaled per tensor by |theta| / |r| (You et al. 2019)",
    ),
    b(
        "lbfgs",
        &[
            opt("lr", "1"),
            opt("max_iter", "20"),
            opt("max_eval", "max_iter * 5 / 4"),
            opt("tolerance_grad", "1e-7"),
            opt("tolerance_change", "1e-9"),
            opt("history_size", "10"),
            opt("line_search", "\"strong_wolfe\""),
        ],
        "full-batch L-BFGS, one step = up to max_iter iterations on all the training data; \
         line_search \"strong_wolfe\" or \"none\" (fixed step lr) [torch.optim.LBFGS]",
    ),
];

/// Learning-rate schedules; `t` counts optimizer steps from 1 and `e = t - 1` (PyTorch's
/// `last_epoch` with one scheduler step per optimizer step). Parts join with `then`.
pub const SCHEDULES: &[Builtin] = &[
    b("constant", NO_PARAMS, "the optimizer's lr at every step"),
    b("step", &[req("step_size"), opt("gamma", "0.1")], "lr * gamma^floor(e / step_size) [StepLR]"),
    b(
        "multistep",
        &[req("milestones"), opt("gamma", "0.1")],
        "lr * gamma^(number of milestones <= e) [MultiStepLR]",
    ),
    b("exponential", &[req("gamma")], "lr * gamma^e [ExponentialLR]"),
    b("inverse_time", &[req("k"), opt("power", "1")], "lr / (1 + k e)^power"),
    b("inv_sqrt", NO_PARAMS, "lr / sqrt(t)"),
    b(
        "polynomial",
        &[req("total"), opt("power", "1"), opt("end", "0")],
        "(lr - end) (1 - min(e, total) / total)^power + end [PolynomialLR]; lasts total steps",
    ),
    b(
        "cosine",
        &[req("T"), opt("eta_min", "0")],
        "eta_min + (lr - eta_min) (1 + cos(pi e / T)) / 2 [CosineAnnealingLR]; lasts T steps",
    ),
    b(
        "sgdr",
        &[req("T0"), opt("T_mult", "1"), opt("eta_min", "0")],
        "cosine restarted after T0, T0 T_mult, ... steps [CosineAnnealingWarmRestarts]",
    ),
    b(
        "cyclic",
        &[
            req("base_lr"),
            req("max_lr"),
            opt("step_size", "2000"),
            opt("step_size_down", "step_size"),
            opt("mode", "triangular"),
            opt("gamma", "1"),
        ],
        "base_lr to max_lr and back; mode triangular, triangular2 or exp_range [CyclicLR]",
    ),
    b(
        "one_cycle",
        &[
            req("max_lr"),
            req("total_steps"),
            opt("pct_start", "0.3"),
            opt("div_factor", "25"),
            opt("final_div_factor", "1e4"),
            opt("anneal", "cos"),
            opt("three_phase", "false"),
        ],
        "max_lr / div_factor up to max_lr, then down [OneCycleLR]; lasts total_steps",
    ),
    b(
        "warmup",
        &[req("steps"), opt("from", "0")],
        "lr * (from + (1 - from) min(e, steps) / steps) [LinearLR]; lasts steps",
    ),
];

/// Gradient clipping, applied before the optimizer update.
pub const CLIPS: &[Builtin] = &[
    b("global_norm", &[req("c")], "scale all gradients so their joint 2-norm is at most c"),
    b("value", &[req("c")], "clamp every gradient element to [-c, c]"),
];

/// Data sources for `train { data = ... }`.
pub const DATASETS: &[Builtin] = &[
    b(
        "csv",
        &[req("path"), opt("label", "the model's label name")],
        "CSV file with a header; the label column, every other column a feature",
    ),
    b("npz", &[req("path"), opt("x", "\"x\""), opt("y", "\"y\"")], "NumPy .npz archive"),
    b("npy", &[req("x"), req("y")], "two NumPy .npy files: features and labels"),
    b(
        "idx",
        &[req("images"), req("labels")],
        "two IDX files (MNIST's format, gzipped or not): images [N, ...] and labels [N]",
    ),
    b("xor", N_NOISE, "2 features, 2 classes: noisy corners of a square, label x0 xor x1"),
    b("spirals", N_NOISE, "2 features, one spiral arm per class"),
    b("moons", N_NOISE, "2 features, 2 classes: two interleaving half circles"),
    b("blobs", N_NOISE, "F features, one Gaussian cluster per class"),
    b("teacher", N_NOISE, "regression targets from a fixed random tanh MLP, plus noise"),
    b("random", N_NOISE, "benchmarks: N(0,1) features, uniform classes or N(0,1) targets; noise unused"),
    b("linear", N_NOISE, "regression y = A x + noise, x ~ N(0, I), fixed teacher A with singular values 8, 4, 2, 1, ..."),
    b(
        "tokens",
        N_NOISE,
        "bag of tokens for an id input class[B, T] of V: each token uniform over the V ids with \
         probability noise, else over its class's ids {v : v mod C = class}",
    ),
];

/// Settings of the `train { ... }` block (each written `key = value`).
pub const TRAIN_SETTINGS: &[Builtin] = &[
    b("data", NO_PARAMS, "where the examples come from (see data sets); default: the CLI's --data"),
    b("batch", NO_PARAMS, "examples per step, a positive integer (default 32)"),
    b("epochs", NO_PARAMS, "passes over the data, a positive integer (default 1)"),
    b("steps", NO_PARAMS, "optimizer steps, a positive integer; wins over epochs"),
    b("seed", NO_PARAMS, "seed of initialization, shuffling and synthetic data (default 0)"),
    b("shuffle", NO_PARAMS, "shuffle the examples every epoch (default true)"),
    b("validation", NO_PARAMS, "fraction held out for validation, in [0, 1) (default 0)"),
    b("split_seed", NO_PARAMS, "seed of the validation split alone (default: seed)"),
    b(
        "scale_lr",
        NO_PARAMS,
        "multiply every scheduled lr: a number, `batch / 256` (linear scaling) or `sqrt(batch / 256)`",
    ),
];

/// Every table with a title, in the order `nnc list` prints them.
pub const ALL: &[(&str, &[Builtin])] = &[
    ("layers", LAYERS),
    ("activations", ACTIVATIONS),
    ("math", MATH),
    ("shapes", SHAPES),
    ("reductions", REDUCTIONS),
    ("losses", LOSSES),
    ("penalties", PENALTIES),
    ("metrics", METRICS),
    ("initializers", INITIALIZERS),
    ("optimizers", OPTIMIZERS),
    ("schedules", SCHEDULES),
    ("clips", CLIPS),
    ("data sets", DATASETS),
    ("train settings", TRAIN_SETTINGS),
];

/// The tables of functions callable in expressions.
pub const FUNCTION_TABLES: &[&[Builtin]] =
    &[ACTIVATIONS, MATH, SHAPES, REDUCTIONS, LOSSES, PENALTIES, METRICS];

/// Finds `name` in `table`.
pub fn find(table: &'static [Builtin], name: &str) -> Option<&'static Builtin> {
    table.iter().find(|b| b.name == name)
}

/// The builtin function (activation, math, reduction, loss or metric) called `name`.
pub fn function(name: &str) -> Option<&'static Builtin> {
    FUNCTION_TABLES.iter().find_map(|t| t.iter().find(|b| b.name == name))
}

/// Every name of a function callable in expressions.
pub fn function_names() -> impl Iterator<Item = &'static str> {
    FUNCTION_TABLES.iter().flat_map(|t| t.iter().map(|b| b.name))
}

/// True for the penalty functions, whose arguments may be layers.
pub fn is_penalty(name: &str) -> bool {
    find(PENALTIES, name).is_some()
}

/// The names of `table`.
pub fn names(table: &'static [Builtin]) -> impl Iterator<Item = &'static str> {
    table.iter().map(|b| b.name)
}

/// The words `nnc list WORD` accepts: the first word of each title in [`ALL`].
pub fn list_words() -> Vec<&'static str> {
    ALL.iter().map(|(title, _)| title.split(' ').next().unwrap_or(title)).collect()
}

/// The table `nnc list WORD` prints, with its title.
pub fn list(word: &str) -> Option<(&'static str, &'static [Builtin])> {
    ALL.iter().copied().find(|(title, _)| title.split(' ').next() == Some(word))
}

/// Notes printed after a table by `nnc list`.
const LIST_NOTES: &[(&str, &str)] = &[
    (
        "optimizers",
        "parameter groups: optimizer NAME(...) { group \"PATTERN\", ... (any of its parameters, clip = RULE) }\n  \
         patterns match whole names, `*` any characters; the first matching group wins\n  \
         every optimizer and group also takes clamp = (lo, hi): each parameter element is projected onto [lo, hi] after the update\n  \
         lbfgs runs on the host, full batch: one step = torch's optimizer.step(closure) over the whole training split \
         (batch does not apply); no groups, clip or clamp; history_size 10 here, 100 in torch",
    ),
    ("schedules", "join phases with `then`: schedule warmup(200) then cosine(T = 1000)"),
    ("clips", "globally (`clip RULE`) or per parameter group (`clip = RULE`), global first"),
];

/// One table as `nnc list` prints it: the title, then each builtin's signature (its bare name
/// when it takes no arguments) and description.
pub fn render(title: &str, table: &[Builtin]) -> String {
    let mut out = format!("{title}:\n");
    for b in table {
        let head = if b.params.is_empty() { b.name.to_string() } else { b.signature() };
        out.push_str(&format!("  {head}\n      {}\n", b.doc));
    }
    if let Some((_, note)) = LIST_NOTES.iter().find(|(t, _)| *t == title) {
        out.push_str(&format!("  {note}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique_within_each_table_and_among_functions() {
        for (title, table) in ALL {
            let set: HashSet<_> = table.iter().map(|b| b.name).collect();
            assert_eq!(set.len(), table.len(), "duplicate in {title}");
        }
        let fns: Vec<_> = function_names().collect();
        let set: HashSet<_> = fns.iter().collect();
        assert_eq!(set.len(), fns.len());
    }

    #[test]
    fn required_parameters_come_first_except_in_layers() {
        for (title, table) in ALL {
            for b in *table {
                let first_opt = b.params.iter().position(|p| p.default.is_some());
                let last_req = b.params.iter().rposition(|p| p.default.is_none());
                if let (Some(o), Some(r)) = (first_opt, last_req) {
                    assert!(
                        r < o,
                        "{title}: {} has a required parameter after an optional",
                        b.name
                    );
                }
            }
        }
    }

    #[test]
    fn every_table_is_listable_under_its_first_word() {
        for word in list_words() {
            let (title, table) = list(word).unwrap();
            let text = render(title, table);
            for b in table {
                assert!(text.contains(b.name), "{word}: {} missing", b.name);
            }
        }
        let text = render("optimizers", OPTIMIZERS);
        let adamw = "adamw(lr = 1e-3, betas = (0.9, 0.999), eps = 1e-8, weight_decay = 0.01, \
                     amsgrad = false)";
        assert!(text.contains(&format!("  {adamw}\n")));
        assert!(render("schedules", SCHEDULES).contains("  inv_sqrt\n"));
    }

    #[test]
    fn signatures_read_like_source() {
        let sgd = find(OPTIMIZERS, "sgd").unwrap();
        assert_eq!(
            sgd.signature(),
            "sgd(lr, momentum = 0, dampening = 0, nesterov = false, weight_decay = 0)"
        );
        assert_eq!(function("leaky_relu").unwrap().signature(), "leaky_relu(x, slope = 0.01)");
        assert!(function("Dense").is_none());
    }
}
