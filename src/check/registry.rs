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
pub const LAYERS: &[Builtin] = &[b(
    "Dense",
    &[req("in -> out"), opt("init", "default"), opt("bias", "true"), opt("bias_init", "default")],
    "fully connected: [N, in] -> [N, out]; params `weight` [out, in] and `bias` [out]",
)];

/// Elementwise activations: the result has the operand's shape.
pub const ACTIVATIONS: &[Builtin] = &[
    b("identity", X, "x"),
    b("relu", X, "max(x, 0)"),
    b("leaky_relu", &[req("x"), opt("slope", "0.01")], "x if x > 0 else slope * x"),
    b("tanh", X, "hyperbolic tangent"),
    b("sigmoid", X, "1 / (1 + exp(-x))"),
    b("softplus", X, "log(1 + exp(x)), computed stably"),
    b("gelu", X, "x * Phi(x) (erf form)"),
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
        &[req("logits"), req("labels")],
        "-mean log softmax(logits)[labels]; logits [N, C], labels class[N] of C",
    ),
    b("logistic", PRED_TARGET, "mean softplus(-target * pred); target in {-1, +1}, same shape"),
    b(
        "bce_with_logits",
        PRED_TARGET,
        "mean softplus(pred) - target * pred; target in {0, 1}, same shape",
    ),
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
];

/// Optimizers (PyTorch's definitions and defaults).
pub const OPTIMIZERS: &[Builtin] = &[
    b(
        "sgd",
        &[
            req("lr"),
            opt("momentum", "0"),
            opt("dampening", "0"),
            opt("nesterov", "false"),
            opt("weight_decay", "0"),
        ],
        "stochastic gradient descent with optional (Nesterov) momentum [torch.optim.SGD]",
    ),
    b(
        "adam",
        &[
            opt("lr", "1e-3"),
            opt("betas", "(0.9, 0.999)"),
            opt("eps", "1e-8"),
            opt("weight_decay", "0"),
        ],
        "Adam with bias correction [torch.optim.Adam]",
    ),
];

/// Learning-rate schedules.
pub const SCHEDULES: &[Builtin] = &[b("constant", NO_PARAMS, "the optimizer's lr at every step")];

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
    b("xor", N_NOISE, "2 features, 2 classes: noisy corners of a square, label x0 xor x1"),
    b("spirals", N_NOISE, "2 features, one spiral arm per class"),
    b("moons", N_NOISE, "2 features, 2 classes: two interleaving half circles"),
    b("blobs", N_NOISE, "F features, one Gaussian cluster per class"),
    b("teacher", N_NOISE, "regression targets from a fixed random tanh MLP, plus noise"),
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
];

/// Every table with a title, in the order `nnc list` prints them.
pub const ALL: &[(&str, &[Builtin])] = &[
    ("layers", LAYERS),
    ("activations", ACTIVATIONS),
    ("math", MATH),
    ("reductions", REDUCTIONS),
    ("losses", LOSSES),
    ("metrics", METRICS),
    ("initializers", INITIALIZERS),
    ("optimizers", OPTIMIZERS),
    ("schedules", SCHEDULES),
    ("clips", CLIPS),
    ("data sets", DATASETS),
    ("train settings", TRAIN_SETTINGS),
];

/// The tables of functions callable in expressions.
pub const FUNCTION_TABLES: &[&[Builtin]] = &[ACTIVATIONS, MATH, REDUCTIONS, LOSSES, METRICS];

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

/// The names of `table`.
pub fn names(table: &'static [Builtin]) -> impl Iterator<Item = &'static str> {
    table.iter().map(|b| b.name)
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
