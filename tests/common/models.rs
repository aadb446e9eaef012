//! Generated models and their data, for the tests that compare the JIT with the interpreter
//! (tests/jit.rs) and the bounded fuzzing run (tests/fuzz.rs).

use std::path::Path;

use nnc::pipeline::Compiled;
use nnc::tensor::Tensor;
use nnc::train::{data, session};

use super::differential::noise;

/// The model's data set, or (when its file is not in this repository) 300 random examples
/// of the right shapes.
pub fn dataset(c: &Compiled, base: &Path) -> data::Dataset {
    let spec = session::effective_spec(&c.model, &session::Options::default());
    if let Ok(ds) = session::load_data(&c.model, &spec, base, None) {
        return ds;
    }
    let shape = session::data_shape(&c.model).unwrap();
    let n = 300;
    let f = shape.feature_count();
    let x: Vec<f32> = (0..n * f).map(|i| noise(1, i as u64)).collect();
    let mut xs = vec![n];
    xs.extend(&shape.features);
    let y = match shape.label {
        data::LabelSpec::Classes(k) => Tensor::new(
            vec![n],
            (0..n)
                .map(|i| ((noise(2, i as u64) + 1.0) * k as f32 / 2.0).floor().min(k as f32 - 1.0))
                .collect(),
        ),
        data::LabelSpec::Targets(t) => {
            Tensor::new(vec![n, t], (0..n * t).map(|i| noise(3, i as u64)).collect())
        }
    };
    data::Dataset { x: Tensor::new(xs, x), y }
}

/// `steps` batches of `size` consecutive examples of the model's data, wrapping.
pub fn batches_of(
    c: &Compiled,
    base: &Path,
    size: usize,
    steps: usize,
) -> Result<Vec<Vec<Tensor<f32>>>, String> {
    let ds = dataset(c, base);
    let n = ds.len();
    Ok((0..steps)
        .map(|s| {
            let idx: Vec<usize> = (0..size.min(n)).map(|k| (s * size + k) % n).collect();
            let (x, y) = data::batch(&ds, &idx);
            session::inputs_for(&c.model, x, y)
        })
        .collect())
}

/// A small deterministic generator (SplitMix64).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[self.below(v.len())]
    }
}

/// Activations; the smooth ones come first (see `random_model`).
pub const ACTIVATIONS: [&str; 10] = [
    "tanh(#)",
    "sigmoid(#)",
    "softplus(#)",
    "gelu(#)",
    "gelu(#, approximate = \"tanh\")",
    "silu(#)",
    "relu(#)",
    "leaky_relu(#, slope = 0.1)",
    "elu(#, alpha = 0.5)",
    "identity(#)",
];
pub const SMOOTH: usize = 6;

/// The source of a random MLP: widths, depth, activations, normalization layers, a loss
/// (classification or regression), a penalty, an optimizer, a schedule and clipping.
///
/// Models whose gradients are exactly 0 in exact arithmetic are avoided, since there both
/// backends only amplify rounding noise: a batch norm removes every per-feature constant
/// shift of its input, so nothing may reach it through a linear path (no bias right before
/// it, and the activation before its layer must be smooth: through relu-like or identity
/// activations a shift stays a shift whenever the batch is on one side of the kink);
/// layer norms need 3 features (over 2 they output ±1), group norms 2 features per group.
pub fn random_model(seed: u64) -> String {
    let mut r = Rng(seed);
    let features = 1 + r.below(9);
    let classify = r.below(3) != 0;
    let outputs = 1 + r.below(5) + usize::from(classify);
    let depth = 1 + r.below(3);
    let mut layers = String::new();
    let mut expr = "x".to_string();
    let mut width = features;
    let mut smooth_before = true;
    for l in 0..depth {
        let w = 1 + r.below(24);
        let init =
            r.pick(&["default", "he_normal", "xavier_uniform", "lecun_normal", "orthogonal"]);
        let norm = match r.below(5) {
            0 if w >= 3 => "LayerNorm",
            1 if smooth_before => "BatchNorm",
            2 if w >= 4 && w.is_multiple_of(2) => "GroupNorm",
            _ => "",
        };
        let bias = if norm == "BatchNorm" { ", bias = false" } else { "" };
        layers += &format!("    fc{l} = Dense({width} -> {w}, init = {init}{bias})\n");
        expr = format!("fc{l}({expr})");
        if !norm.is_empty() {
            let groups = if norm == "GroupNorm" { "2, " } else { "" };
            layers += &format!("    norm{l} = {norm}({groups}{w})\n");
            expr = format!("norm{l}({expr})");
        }
        let a = r.below(ACTIVATIONS.len());
        smooth_before = a < SMOOTH;
        expr = ACTIVATIONS[a].replace('#', &expr);
        width = w;
    }
    layers += &format!("    out = Dense({width} -> {outputs})\n");
    let (label, loss, metric) = if classify {
        let smooth = r.pick(&["", ", label_smoothing = 0.1"]);
        (
            format!("label y: class[B] of {outputs}"),
            format!("cross_entropy(out({expr}), y{smooth})"),
            format!("    metric accuracy(out({expr}), y)\n"),
        )
    } else {
        let loss = r.pick(&["mse", "l1", "huber", "logistic", "bce_with_logits", "hinge"]);
        (format!("label y: [B, {outputs}]"), format!("{loss}(out({expr}), y)"), String::new())
    };
    let penalty = r.pick(&[
        "",
        " + 1e-3 * sum(square(out.weight))",
        " + l1_penalty(fc0.weight, lambda = 1e-4)",
    ]);
    let optimizer = r.pick(&[
        "sgd(lr = 0.05)",
        "sgd(lr = 0.05, momentum = 0.9, nesterov = true, weight_decay = 1e-3)",
        "heavy_ball(lr = 0.05)",
        "adagrad(lr = 0.05)",
        "rmsprop(lr = 0.01, momentum = 0.5, centered = true)",
        "adadelta()",
        "adam(lr = 0.01)",
        "adamw(lr = 0.01)",
        "amsgrad(lr = 0.01)",
        "nadam(lr = 0.01)",
        "radam(lr = 0.01)",
        "adamax(lr = 0.01)",
        "adabound(lr = 0.01)",
        "padam(lr = 0.01)",
        "lars(lr = 0.05)",
        "lamb(lr = 0.01)",
    ]);
    let schedule = r.pick(&["", "schedule warmup(2) then cosine(T = 10)\n", "schedule inv_sqrt\n"]);
    let clip = r.pick(&["", "clip global_norm(1.0)\n", "clip value(0.1)\n"]);
    let data = if classify { "blobs(n = 60)" } else { "teacher(n = 60)" };
    format!(
        "model R {{\n    input x: [B, {features}]\n    {label}\n{layers}    loss = {loss}{penalty}\n{metric}}}\n\
         optimizer {optimizer}\n{schedule}{clip}train {{ data = {data}, batch = 8, steps = 3, seed = {seed} }}\n"
    )
}
