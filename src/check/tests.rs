//! End-to-end tests of `check` from source text: the happy path (parameter names, shapes,
//! fans and initializers; inlining; sharing) and one test per kind of mistake, asserting
//! the message and where its primary label points.

use super::*;
use crate::diagnostic::render_all;
use crate::graph::{Dim, InputKind, Shape};
use crate::syntax::parse;

fn check_src(src: &str) -> Result<Model> {
    let file = parse(src).unwrap_or_else(|d| panic!("{}", render_all(&d, "t.nn", src)));
    check(&file)
}

fn ok(src: &str) -> Model {
    check_src(src).unwrap_or_else(|d| panic!("{}", render_all(&d, "t.nn", src)))
}

/// The diagnostics of a program that must fail.
fn errs(src: &str) -> Vec<Diagnostic> {
    match check_src(src) {
        Ok(_) => panic!("expected an error in:\n{src}"),
        Err(d) => d,
    }
}

/// The single diagnostic of a program with one mistake; asserts its message and that its
/// primary span covers exactly `at` (the first occurrence of that text after `after`).
fn one(src: &str, message: &str, at: &str) -> Diagnostic {
    one_after(src, message, "", at)
}

fn one_after(src: &str, message: &str, after: &str, at: &str) -> Diagnostic {
    let d = errs(src);
    let shown = render_all(&d, "t.nn", src);
    assert_eq!(d.len(), 1, "{shown}");
    assert_eq!(d[0].message, message, "{shown}");
    let from = src.find(after).expect("anchor") + after.len();
    let start = from + src[from..].find(at).expect("span text");
    assert_eq!(d[0].primary.span, Span::new(start, start + at.len()), "{shown}");
    d.into_iter().next().unwrap()
}

/// Wraps model statements into a file with an optimizer.
fn model(body: &str) -> String {
    format!("model M {{\n{body}\n}}\noptimizer sgd(lr = 0.1)\n")
}

const SPIRALS: &str = r#"
layer Residual(d) {
    fc1 = Dense(d -> d, init = he_normal)
    fc2 = Dense(d -> d, init = zeros)
    param gain: [d] = ones
    forward(x) = x + gain * fc2(relu(fc1(x)))
}

model Spirals {
    input x: [B, 2]
    label y: class[B] of 3

    stem   = Dense(2 -> 64, init = he_normal)
    blocks = repeat 4 Residual(64)
    head   = Dense(64 -> 3)

    h      = relu(stem(x))
    logits = head(blocks(h))
    loss   = cross_entropy(logits, y) + 1e-4 * sum(square(head.weight))
    metric accuracy(logits, y)
}

optimizer sgd(lr = 0.1, momentum = 0.9, nesterov = true, weight_decay = 5e-4)
schedule constant
clip global_norm(1.0)
train { data = spirals(n = 600, noise = 0.2), batch = 32, epochs = 50, seed = 1,
        shuffle = true, validation = 0.2 }
"#;

fn param<'m>(m: &'m Model, name: &str) -> &'m ParamDef {
    m.params.iter().find(|p| p.name == name).unwrap_or_else(|| panic!("no param {name}"))
}

#[test]
fn language_example_params_follow_pytorch() {
    let m = ok(SPIRALS);
    let names: Vec<&str> = m.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names.len(), 2 + 4 * 5 + 2);
    assert_eq!(&names[..3], ["stem.weight", "stem.bias", "blocks.0.gain"]);
    assert_eq!(
        &names[3..7],
        ["blocks.0.fc1.weight", "blocks.0.fc1.bias", "blocks.0.fc2.weight", "blocks.0.fc2.bias"]
    );
    assert_eq!(names[names.len() - 3], "blocks.3.fc2.bias");
    assert_eq!(&names[names.len() - 2..], ["head.weight", "head.bias"]);

    let w = param(&m, "stem.weight");
    assert_eq!(
        (w.shape.clone(), w.fan_in, w.fan_out, w.init.clone()),
        (vec![64, 2], 2, 64, Init::HeNormal)
    );
    let b = param(&m, "stem.bias");
    assert_eq!(
        (b.shape.clone(), b.fan_in, b.fan_out, b.init.clone()),
        (vec![64], 2, 64, Init::Default)
    );
    let h = param(&m, "head.weight");
    assert_eq!((h.shape.clone(), h.fan_in, h.fan_out), (vec![3, 64], 64, 3));
    assert_eq!(param(&m, "blocks.2.fc2.weight").init, Init::Zeros);
    let g = param(&m, "blocks.1.gain");
    assert_eq!(
        (g.shape.clone(), g.fan_in, g.fan_out, g.init.clone()),
        (vec![64], 64, 64, Init::Ones)
    );
    assert_eq!(m.param_count(), 2 * 64 + 64 + 4 * (2 * (64 * 64 + 64) + 64) + 64 * 3 + 3);
}

#[test]
fn language_example_inputs_values_and_settings() {
    let m = ok(SPIRALS);
    assert_eq!(m.name, "Spirals");
    assert_eq!(m.inputs.len(), 2);
    assert_eq!(m.inputs[0].shape, Shape(vec![Dim::Batch, Dim::Fixed(2)]));
    assert_eq!(m.inputs[0].kind, InputKind::Features);
    assert_eq!(
        (m.inputs[1].shape.clone(), m.inputs[1].kind),
        (Shape(vec![Dim::Batch]), InputKind::Classes(3))
    );
    assert!(m.inputs[1].is_label);
    // Operands precede users.
    for (i, v) in m.values.iter().enumerate() {
        for op in elaborate::operands(&v.kind) {
            assert!((op.0 as usize) < i);
        }
    }
    assert_eq!(m.value(m.loss).shape, Shape::scalar());
    assert!(matches!(m.value(m.loss).kind, ValueKind::Arith(ArithOp::Add, _, _)));
    assert_eq!(m.metrics.len(), 1);
    assert_eq!(m.metrics[0].name, "accuracy");
    // 4 inlined copies of the block, each with its own parameters, and their layer paths.
    let dense: Vec<(u32, Option<String>)> = m
        .values
        .iter()
        .filter_map(|v| match v.kind {
            ValueKind::Dense { weight, .. } => Some((weight, v.layer.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(dense.len(), 2 + 4 * 2);
    assert_eq!(m.params[dense[1].0 as usize].name, "blocks.0.fc1.weight");
    assert_eq!(dense[1].1.as_deref(), Some("blocks.0.fc1"));
    assert_eq!(m.params[dense[8].0 as usize].name, "blocks.3.fc2.weight");
    let (o, h) = (&m.optimizer, &m.optimizer.hyper);
    assert_eq!((o.method, o.groups.len()), (Method::Sgd, 0));
    assert_eq!(
        (h.lr, h.momentum, h.dampening, h.nesterov, h.weight_decay),
        (0.1, 0.9, 0.0, true, 5e-4)
    );
    assert_eq!(m.clip, Some(Clip::GlobalNorm(1.0)));
    let t = &m.train;
    assert_eq!(
        (t.batch, t.epochs, t.steps, t.seed, t.shuffle, t.validation),
        (32, Some(50), None, 1, true, 0.2)
    );
    assert!(matches!(t.data, Some(DataSpec::Synthetic { kind: Synthetic::Spirals, n: 600, .. })));
}

#[test]
fn shared_instance_shares_parameters() {
    let m = ok(&model(
        "input x: [B, 4]\n label t: [B, 4]\n fc = Dense(4 -> 4)\n loss = mse(fc(fc(x)), t)",
    ));
    assert_eq!(m.params.len(), 2);
    let weights: Vec<u32> = m
        .values
        .iter()
        .filter_map(|v| match v.kind {
            ValueKind::Dense { weight, .. } => Some(weight),
            _ => None,
        })
        .collect();
    assert_eq!(weights, [0, 0]);
}

#[test]
fn user_layer_instance_names_and_model_params() {
    let src = r#"
        layer Scale(n) { param g: [n] = constant(0.5)  forward(x) = g * x }
        layer Block(i, o) {
            fc = Dense(i -> 2 * o, bias = false, init = xavier_uniform(gain = 2))
            s = Scale(2 * o)
            forward(a, b) { h = s(fc(a)) + b  return h }
        }
        model M {
            input x: [B, 3]
            label t: [B, 1]
            param w: [8, 1] = normal(std = 0.1)
            r = Block(3, 4)
            out = r(x, 1) @ w
            loss = mse(out, t) + 0.01 * sum(square(r.s.g)) + mean(abs(r.fc.weight))
        }
        optimizer adam
    "#;
    let m = ok(src);
    let names: Vec<&str> = m.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["w", "r.fc.weight", "r.s.g"]);
    assert_eq!(param(&m, "w").init, Init::Normal { mean: 0.0, std: 0.1 });
    assert_eq!((param(&m, "w").fan_in, param(&m, "w").fan_out), (1, 8));
    assert_eq!(param(&m, "r.fc.weight").shape, vec![8, 3]);
    assert_eq!(param(&m, "r.fc.weight").init, Init::XavierUniform { gain: 2.0 });
    assert_eq!(param(&m, "r.s.g").init, Init::Constant(0.5));
    let h = &m.optimizer.hyper;
    assert_eq!(m.optimizer.method, Method::Adam);
    assert_eq!(
        (h.lr, h.beta1, h.beta2, h.eps, h.weight_decay, h.amsgrad),
        (1e-3, 0.9, 0.999, 1e-8, 0.0, false)
    );
    assert_eq!(m.train.data, None);
    assert_eq!((m.train.batch, m.train.epochs), (32, None));
}

#[test]
fn builtins_map_to_value_kinds() {
    let m = ok(&model(
        "input x: [N, 5]\n label t: [N, 5]\n
         a = leaky_relu(x, slope = 0.2)\n b = sum(a, axis = 1)\n c = mean(softmax(x))\n
         d = -log_softmax(x)\n e = gelu(sigmoid(tanh(softplus(identity(x)))))\n
         loss = bce_with_logits(e, t) + logistic(d, t) + c + mean(b) / 2",
    ));
    let kinds: Vec<&ValueKind> = m.values.iter().map(|v| &v.kind).collect();
    assert!(kinds
        .iter()
        .any(|k| matches!(k, ValueKind::Unary(UnaryFn::LeakyRelu(s), _) if *s == 0.2)));
    assert!(kinds
        .iter()
        .any(|k| matches!(k, ValueKind::Reduce { op: ReduceFn::Sum, axis: Some(1), .. })));
    assert!(kinds.iter().any(|k| matches!(k, ValueKind::Unary(UnaryFn::Neg, _))));
    assert!(kinds.iter().any(|k| matches!(k, ValueKind::Loss { kind: LossKind::Logistic, .. })));
    let b = m
        .values
        .iter()
        .find(|v| matches!(v.kind, ValueKind::Reduce { axis: Some(1), .. }))
        .unwrap();
    assert_eq!(b.shape, Shape(vec![Dim::Batch]));
}

// ---- names ------------------------------------------------------------------------------

#[test]
fn unknown_layer_suggests_dense() {
    let d = one(
        &model("input x: [B, 2]\n fc = Dens(2 -> 1)\n loss = mean(fc(x))"),
        "unknown layer `Dens`",
        "Dens",
    );
    assert_eq!(d.notes, ["did you mean `Dense`?"]);
}

#[test]
fn unknown_function_suggests_builtin() {
    let d =
        one(&model("input x: [B, 2]\n loss = mean(rleu(x))"), "unknown function `rleu`", "rleu");
    assert_eq!(d.notes, ["did you mean `relu`?"]);
}

#[test]
fn undefined_and_used_before_definition() {
    let d = one(
        &model("input x: [B, 2]\n h1 = relu(x)\n loss = mean(h2)"),
        "`h2` is not defined",
        "h2",
    );
    assert_eq!(d.notes, ["did you mean `h1`?"]);
    let src = model("input x: [B, 2]\n loss = mean(x) + softmx");
    let d = one(&src, "`softmx` is not defined", "softmx");
    assert_eq!(d.notes, ["did you mean `softmax`?"]);
    let src = "layer L(d) { forward(h) = h + x }\n".to_string()
        + &model("input x: [B, 2]\n l = L(2)\n loss = mean(l(x))");
    let d = one_after(&src, "`x` is not defined", "h + ", "x");
    assert!(d.notes[0].starts_with("`x` belongs to the model"), "{:?}", d.notes);
    let d = one_after(
        &model("input x: [B, 2]\n loss = mean(h)\n h = relu(x)"),
        "`h` is used before it is defined",
        "mean(",
        "h",
    );
    assert_eq!(d.secondary[0].message, "defined later here");
}

#[test]
fn duplicate_names_point_at_both() {
    let src = model("input x: [B, 2]\n h = relu(x)\n h = tanh(x)\n loss = mean(h)");
    let d = one_after(&src, "`h` is defined twice", "relu(x)", "h");
    assert_eq!(
        d.secondary[0].span,
        Span::new(src.find("h =").unwrap(), src.find("h =").unwrap() + 1)
    );
    let src = "layer L(d) { fc = Dense(d -> d)  forward(fc) = fc }\n".to_string()
        + &model("input x: [B, 2]\n loss = mean(x)");
    one_after(&src, "`fc` is defined twice", "forward(", "fc");
}

#[test]
fn missing_loss_and_duplicate_items() {
    one("model M { input x: [B, 2] }\noptimizer adam", "model `M` has no `loss`", "M");
    let src = format!("{}optimizer adam\n", model("input x: [B, 2]\n loss = mean(x)"));
    one(&src, "more than one `optimizer` in this file", "optimizer adam");
    one("model M { input x: [B, 2]  loss = mean(x) }", "no `optimizer` for this model", "M");
}

#[test]
fn layer_misuse() {
    one_after(
        &model("input x: [B, 2]\n fc = Dense(2 -> 2)\n loss = mean(fc)"),
        "`fc` is a layer, not a value",
        "mean(",
        "fc",
    );
    one(
        &model("input x: [B, 2]\n loss = mean(Dense(2 -> 2))"),
        "`Dense(...)` creates a layer, not a value",
        "Dense",
    );
    let src = "layer L(d) { fc = Dense(d -> d)  forward(x) = fc(x) }\n".to_string()
        + &model("input x: [B, 2]\n l = L(2)\n loss = mean(l.fc.wieght)");
    let d = one(&src, "`fc` has no field `wieght`", "wieght");
    assert_eq!(d.notes[0], "did you mean `weight`?");
    one_after(
        &format!(
            "layer A(d) {{ a = A(d)  forward(x) = a(x) }}\n{}",
            model("input x: [B, 2]\n a = A(2)\n loss = mean(a(x))")
        ),
        "layer `A` contains itself",
        "a = ",
        "A",
    );
    // Deep but finite nesting is not recursion: the limit is named as such.
    let mut layers = String::new();
    for i in 0..40 {
        layers += &format!("layer L{i}(d) {{ n = L{}(d)  forward(x) = n(x) }}\n", i + 1);
    }
    layers += "layer L40(d) { fc = Dense(d -> d)  forward(x) = fc(x) }\n";
    let src = layers + &model("input x: [B, 2]\n l = L0(2)\n loss = mean(l(x))");
    let d = errs(&src);
    assert_eq!(d[0].message, "user layers nest more than 32 levels deep", "{d:?}");
    assert!(!d.iter().any(|d| d.message.contains("contains itself")), "{d:?}");
}

// ---- shapes -----------------------------------------------------------------------------

#[test]
fn dense_feature_mismatch_names_the_source() {
    let src = model("input x: [B, 64]\n fc1 = Dense(64 -> 64)\n fc2 = Dense(128 -> 10)\n loss = mean(fc2(relu(fc1(x))))");
    let d = one_after(
        &src,
        "fc2 expects 128 input features but receives 64 from fc1",
        "loss",
        "relu(fc1(x))",
    );
    assert_eq!(d.secondary[0].span.start as usize, src.find("128").unwrap());
    one_after(
        &model("input x: [B, 3]\n fc = Dense(2 -> 1)\n loss = mean(fc(x))"),
        "fc expects 2 input features but receives 3 from `x`",
        "fc(",
        "x",
    );
}

#[test]
fn broadcast_and_matmul_errors() {
    let src = model("input x: [B, 10]\n input z: [B, 3]\n loss = mean(x + z)");
    one_after(&src, "cannot add [B,10] and [B,3]: shapes do not broadcast", "x + ", "z");
    let src = model("input x: [B, 64]\n param w: [32, 10]\n loss = mean(x @ w)");
    one_after(&src, "`@` needs the inner dimensions to agree: [B,64] @ [32,10]", "x @ ", "w");
}

#[test]
fn loss_target_errors() {
    let src = model(
        "input x: [B, 4]\n label t: [B, 1]\n fc = Dense(4 -> 10)\n loss = cross_entropy(fc(x), t)",
    );
    let d = one_after(
        &src,
        "cross_entropy expects class labels `class[B] of 10`, but `t` is real-valued [B,1]",
        "fc(x), ",
        "t",
    );
    assert_eq!(d.secondary[0].message, "`t` declared here");
    let src = model("input x: [B, 4]\n label y: class[B] of 10\n fc = Dense(4 -> 3)\n loss = cross_entropy(fc(x), y)");
    let d = one(&src, "cross_entropy: logits have 3 classes but `y` has 10", "fc(x)");
    assert_eq!(d.secondary[0].span.start as usize, src.find("10").unwrap());
    let src =
        model("input x: [B, 4]\n label t: [B, 2]\n fc = Dense(4 -> 1)\n loss = mse(fc(x), t)");
    one_after(&src, "mse: prediction [B,1] and target [B,2] differ", "fc(x), ", "t");
    let src = model(
        "input x: [B, 4]\n label y: class[B] of 2\n fc = Dense(4 -> 2)\n loss = mse(fc(x), y)",
    );
    one_after(&src, "mse needs a real-valued target, but `y` holds class labels", "fc(x), ", "y");
    let src = model("input x: [B, 4]\n label y: class[B] of 2\n loss = mean(x * y)");
    one_after(&src, "`y` holds class labels, not numbers", "x * ", "y");
}

#[test]
fn loss_and_metric_must_be_scalars() {
    let src = model("input x: [B, 4]\n label t: [B, 4]\n loss = square(x - t)");
    one(&src, "the loss must be a scalar, but it has shape [B,4]", "square(x - t)");
    let src = model("input x: [B, 4]\n loss = mean(x)\n metric abs(x)");
    one(&src, "a metric must be a scalar, but this has shape [B,4]", "abs(x)");
    let src = model("input x: [B, 4]\n label y: class[B] of 4\n loss = mean(x) + accuracy(x, y)");
    one(&src, "the loss cannot depend on accuracy: it has no gradient", "accuracy(x, y)");
}

#[test]
fn repeat_and_user_layer_calls() {
    let src = "layer Down(d) { fc = Dense(d -> d / 2)  forward(x) = fc(x) }\n".to_string()
        + &model("input x: [B, 64]\n blocks = repeat 3 Down(64)\n loss = mean(blocks(x))");
    let d = one(&src, "repeat needs Down to keep the shape: [B,64] becomes [B,32]", "blocks(x)");
    assert_eq!(d.secondary[0].message, "`blocks` repeats Down here");
    let src = "layer P(d) { fc = Dense(d -> d)  forward(a, b) = fc(a) + b }\n".to_string()
        + &model("input x: [B, 4]\n p = P(4)\n loss = mean(p(x))");
    one(&src, "`p` takes 2 tensors (a, b) but receives 1", "p(x)");
    let src = "layer P(d) { fc = Dense(d -> d)  forward(a) = fc(a) }\n".to_string()
        + &model("input x: [B, 4]\n p = P(4, 5)\n loss = mean(p(x))");
    one(&src, "P takes 1 argument but 2 were given", "5");
}

#[test]
fn errors_inside_layers_point_into_the_layer_and_at_the_call() {
    let src = "layer R(d) { fc = Dense(d -> 3)  forward(x) = x + fc(x) }\n".to_string()
        + &model("input x: [B, 4]\n r = R(4)\n loss = mean(r(x))");
    let d = one_after(&src, "cannot add [B,4] and [B,3]: shapes do not broadcast", "x + ", "fc(x)");
    assert_eq!(d.secondary.last().unwrap().message, "in this call of `r`");
    // Four copies, one report.
    let src = "layer R(d) { fc = Dense(d -> d)  forward(x) = fc(x) + square }\n".to_string()
        + &model("input x: [B, 4]\n r = repeat 4 R(4)\n loss = mean(r(x))");
    one(&src, "`square` is a function, not a value", "square");
}

#[test]
fn input_declarations() {
    one(
        &model("input x: [64, 2]\n loss = mean(x)"),
        "the first dimension of `x` must be the batch",
        "64",
    );
    one(&model("input x: [B, 0]\n loss = mean(x)"), "a dimension must be positive, found 0", "0");
    one_after(
        &model("input x: [B, 2]\n label y: class[B] of 1\n loss = mean(x)"),
        "a class label needs at least 2 classes, found 1",
        "of ",
        "1",
    );
    one(
        &model("input x: [B, 2]\n label y: [N, 1]\n loss = mean(x)"),
        "the batch dimension is called `B`, not `N`",
        "N",
    );
}

// ---- hyper-parameters ----------------------------------------------------------------

fn with(items: &str) -> String {
    format!("model M {{ input x: [B, 2]  label y: class[B] of 2  fc = Dense(2 -> 2)  loss = cross_entropy(fc(x), y) }}\n{items}\n")
}

#[test]
fn optimizer_errors() {
    let d = one(
        &with("optimizer sgd(lr = 0.1, momentun = 0.9)"),
        "sgd has no parameter `momentun`",
        "momentun",
    );
    assert_eq!(d.notes[0], "did you mean `momentum`?");
    one(
        &with("optimizer sgd(momentum = 0.9)"),
        "missing required `lr` for sgd",
        "sgd(momentum = 0.9)",
    );
    one(&with("optimizer sgd(0.1, lr = 0.2)"), "`lr` given twice", "lr = 0.2");
    let d = one(&with("optimizer SGD(lr = 0.1)"), "unknown optimizer `SGD`", "SGD");
    assert_eq!(d.notes[0], "did you mean `sgd`?");
    one(&with("optimizer sgd(lr = -0.1)"), "lr must be positive, found -0.1", "-0.1");
    one(
        &with("optimizer sgd(lr = 0.1, nesterov = true)"),
        "nesterov needs momentum > 0 and dampening = 0",
        "true",
    );
    one(&with("optimizer adam(betas = (0.9, 1.5))"), "betas must be in [0, 1), found 1.5", "1.5");
}

#[test]
fn train_errors() {
    let o = "optimizer adam\n";
    one(
        &with(&format!("{o}train {{ batch = 0 }}")),
        "batch must be a positive integer, found 0",
        "0",
    );
    one(
        &with(&format!("{o}train {{ validation = 1.5 }}")),
        "validation must be in [0, 1), found 1.5",
        "1.5",
    );
    let d =
        one(&with(&format!("{o}train {{ epoch = 3 }}")), "unknown train setting `epoch`", "epoch");
    assert_eq!(d.notes[0], "did you mean `epochs`?");
    one(&with(&format!("{o}clip value(0)")), "c must be positive, found 0", "0");
    let d = one(&with(&format!("{o}schedule cosin(T = 9)")), "unknown schedule `cosin`", "cosin");
    assert_eq!(d.notes[0], "did you mean `cosine`?");
}

#[test]
fn data_fit() {
    let o = "optimizer adam\n";
    let m = ok(&with(&format!("{o}train {{ data = xor(n = 100) }}")));
    assert!(matches!(m.train.data, Some(DataSpec::Synthetic { kind: Synthetic::Xor, n: 100, .. })));
    let m = ok(&with(&format!("{o}train {{ data = csv(\"d.csv\") }}")));
    assert!(matches!(&m.train.data, Some(DataSpec::Csv { label, .. }) if label == "y"));
    let src = format!("model M {{ input x: [B, 5]  label y: class[B] of 2  fc = Dense(5 -> 2)  loss = cross_entropy(fc(x), y) }}\n{o}train {{ data = xor() }}");
    one(&src, "xor makes 2 features, but `x` has 5", "xor()");
    let src = format!("model M {{ input x: [B, 2]  label t: [B, 1]  fc = Dense(2 -> 1)  loss = mse(fc(x), t) }}\n{o}train {{ data = spirals }}");
    one(
        &src,
        "spirals needs class labels `class[B] of C`, but `t` is real-valued [B,1]",
        "spirals",
    );
    one(
        &with(&format!("{o}train {{ data = teacher }}")),
        "teacher makes real-valued targets `[B, T]`, but `y` holds class labels",
        "teacher",
    );
    one(
        &with(&format!("{o}train {{ data = linear(n = 64) }}")),
        "linear makes real-valued targets `[B, T]`, but `y` holds class labels",
        "linear(n = 64)",
    );
    let src = format!("model M {{ input x: [B, 4]  label t: [B, 3]  fc = Dense(4 -> 3)  loss = mse(fc(x), t) }}\n{o}train {{ data = linear(n = 64, noise = 0) }}");
    let m = ok(&src);
    assert!(matches!(
        m.train.data,
        Some(DataSpec::Synthetic { kind: Synthetic::Linear, n: 64, .. })
    ));
}

#[test]
fn initializer_errors() {
    let src = model("input x: [B, 2]\n fc = Dense(2 -> 2, init = he_norml)\n loss = mean(fc(x))");
    let d = one(&src, "unknown initializer `he_norml`", "he_norml");
    assert_eq!(d.notes[0], "did you mean `he_normal`?");
    one_after(
        &model("input x: [B, 2]\n param w: [2] = normal(std = 0)\n loss = mean(x * w)"),
        "std must be positive, found 0",
        "std = ",
        "0",
    );
    one(
        &model("input x: [B, 2]\n param w: [2] = uniform(1, -1)\n loss = mean(x * w)"),
        "uniform needs low < high, found (1, -1)",
        "uniform(1, -1)",
    );
    one(
        &model("input x: [B, 2]\n param w: [2] = orthogonal\n loss = mean(x * w)"),
        "orthogonal needs a parameter with at least 2 dimensions",
        "orthogonal",
    );
}

#[test]
fn independent_mistakes_are_all_reported() {
    let src = "model M {\n input x: [B, 2]\n h = rleu(x)\n loss = mean(h2)\n}\noptimizer sgd(lr = 0)\ntrain { batch = 0 }\n";
    let d = errs(src);
    let msgs: Vec<&str> = d.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        msgs,
        [
            "unknown function `rleu`",
            "`h2` is not defined",
            "lr must be positive, found 0",
            "batch must be a positive integer, found 0"
        ]
    );
}

#[test]
fn hostile_inputs_do_not_panic() {
    let cases = [
        "",
        "model M {}",
        "layer L() { forward() = 1 }\nmodel M { l = L()  loss = l() } optimizer adam",
        "model M { input x: [B, 99999999999]  loss = mean(x) } optimizer adam",
        "model M { input x: [B, 2]  param w: [65536, 65536, 65536]  loss = mean(x) } optimizer adam",
        "layer R(d) { f = Dense(d -> d)  forward(x) = f(x) }\nmodel M { input x: [B, 2]  r = repeat 1000000 R(2)  loss = mean(r(x)) } optimizer adam",
        "layer R(d) { forward(x) = x }\nmodel M { input x: [B, 2]  r = repeat 10000 repeat 10000 R(2)  loss = mean(r(x)) } optimizer adam",
        "layer R(d) { f = Dense(d -> d * 9223372036854775807)  forward(x) = f(x) }\nmodel M { input x: [B, 2]  r = R(2)  loss = mean(r(x)) } optimizer adam",
        "layer R(d) { f = Dense(d -> d / 0)  forward(x) = f(x) }\nmodel M { input x: [B, 2]  r = R(2)  loss = mean(r(x)) } optimizer adam",
        "model M { input x: [B]  label y: class[B, 2] of 2  loss = sum(x, axis = 3) } optimizer adam",
        "model M { input x: [B, 2]  loss = mean(x.weight) + \"s\" + (1, 2) } optimizer adam(lr = \"a\", betas = 3)",
        "model M { input x: [B, 2]  loss = cross_entropy(x, x) + accuracy(1, 2) } optimizer adam",
        "model M { input x: [B, 2]  param w: [2147483647, 2147483647, 2147483647, 2147483647] = xavier_normal  loss = mean(x) } optimizer adam",
        "layer R(d) { f = Dense(d -> d)  forward(x) = f(x) }\nmodel M { input x: [B, 30000]  r = repeat 10000 R(30000)  loss = mean(r(x)) } optimizer adam",
        "model M { input x: [B, 2]  r = repeat 200 repeat 200 repeat 200 Dense(2 -> 2)  loss = mean(r(x)) } optimizer adam",
    ];
    for src in cases {
        if let Ok(file) = parse(src) {
            let _ = check(&file);
        }
    }
}

// ---- case files ------------------------------------------------------------------------

fn nn_files(dir: &str, prefix: &str) -> Vec<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| {
        let name = p.file_name().unwrap().to_string_lossy();
        name.starts_with(prefix) && name.ends_with(".nn")
    });
    v.sort();
    v
}

/// Each `tests/cases/errors/check_*.nn` parses and fails `check` with exactly one
/// diagnostic; run with `--nocapture` to read them.
#[test]
fn error_case_files_have_one_mistake_each() {
    let files = nn_files("tests/cases/errors", "check_");
    assert!(files.len() >= 15, "{}", files.len());
    for path in files {
        let src = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let d = errs(&src);
        let shown = render_all(&d, &name, &src);
        println!("{shown}");
        assert_eq!(d.len(), 1, "{name}:\n{shown}");
    }
}

/// The valid case files and the examples check.
#[test]
fn ok_case_files_and_examples_check() {
    let mut files = nn_files("tests/cases/ok", "");
    files.extend(nn_files("examples", ""));
    assert!(!files.is_empty());
    for path in files {
        let src = std::fs::read_to_string(&path).unwrap();
        let m = ok(&src);
        println!("{}: {} params, {} values", path.display(), m.param_count(), m.values.len());
    }
}

/// (program, the message of its one diagnostic).
const MORE_MISTAKES: &[(&str, &str)] = &[
    ("@ forward(x) = x  loss = mean(x)", "`forward` is only allowed inside a `layer`"),
    ("layer L(d) { metric mean(d)  forward(x) = x }", "`metric` belongs in the `model`, not in a layer"),
    ("layer L(d) { fc = Dense(d -> d) }", "layer `L` has no `forward`"),
    ("layer L(d) { forward(x) = x  forward(y) = y }", "layer `L` has two `forward`s"),
    ("layer L(a, b) { forward(x, y) = x + y }\n@ r = repeat 2 L(2, 2)  loss = mean(r(x))", "`repeat` chains copies, so L must take one tensor"),
    ("layer Dense(d) { forward(x) = x }", "`Dense` is a built-in layer"),
    ("layer L(d) { forward(x) = x }\nlayer L(d) { forward(x) = x }", "layer `L` is defined twice"),
    ("layer L(d) { h = 2  forward(x) = x }", "`h` is not a layer"),
    ("layer L(d) { forward(x) { f = Dense(d -> d)  return f(x) } }", "layers cannot be created inside `forward`"),
    ("@ loss = mean(x.weight)", "`x` is not a layer, so it has no fields"),
    ("@ loss = mean(x(x))", "`x` is not a function or a layer"),
    ("layer R(d) { fc = Dense(d -> d)  forward(x) = fc(x) }\n@ r = repeat 2 R(2)  loss = mean(r.fc.weight)", "`r` is a stack of 2 R layers; its parts have no names"),
    ("@ fc = Dense(2 -> 2, bias = false, bias_init = zeros)  loss = mean(fc(x))", "`bias_init` given for a layer without bias"),
    ("@ fc = Dense(2, 2)  loss = mean(fc(x))", "Dense takes its sizes as `in -> out`"),
    ("layer R(d) { fc = Dense(d -> d / 2)  forward(x) = fc(x) }\n@ r = R(7)  loss = mean(r(x))", "Dense's output size: 7 / 2 is not a whole number"),
    ("@ loss = sum(x, axis = 2)", "axis must be an integer from 0 to 1 for [B,2], found 2"),
    ("@ loss = softmax(1)", "softmax needs at least one dimension"),
    ("@ fc = Dense(2 -> 2)  loss = mean(fc(x = x))", "layers take their tensors as positional arguments"),
    ("@ fc = Dense(2 -> 2)  loss = mean(fc(x, x))", "`fc` takes 1 tensor but receives 2"),
    ("@ loss = mean(x + \"a\")", "expected a tensor, found the string \"a\""),
    ("@ param w: [B, 2]  loss = mean(x * w)", "a parameter's shape cannot contain the batch size"),
    ("@ loss = mean(x)  metric relu", "`relu` is a function, not a value"),
    ("@ fc = Dense(2 -> 2)  loss = fc", "`fc` is a layer, not a value"),
    ("@ label y: class[B, 2] of 3  loss = mean(x)", "class labels have one dimension, the batch"),
    ("@ label t: [B, 2]  loss = mean(x)  metric accuracy(x, t)", "accuracy expects class labels `class[B] of 2`, but `t` is real-valued [B,2]"),
    ("@ label y: class[B] of 2  loss = mean(x)  metric mean(y)", "`y` holds class labels, not numbers"),
    ("@ label y: class[B] of 2  loss = logistic(x, y)", "logistic needs a real-valued target, but `y` holds class labels"),
    ("@ input z: [B, 2]  loss = mean(x)  label t: [B, 1]", "`data` feeds exactly one `input`, but the model declares 2"),
    ("@ loss = mean(x)  label y: class[B] of 3", "moons makes 2 classes, but `y` has 3"),
    ("@ loss = mean(x)  label y: [B, 3]", "csv gives one label column: `y` must be `class[B] of C` or `[B,1]`, but is [B,3]"),
    ("@ loss = mean(x)  loss = mean(x * 2)", "`loss` is defined twice"),
    ("@ h = x  h = Dense(2 -> 2)  loss = mean(x)", "`h` is defined twice"),
    ("layer A(d) { b = B(d)  forward(x) = b(x) }\nlayer B(d) { a = A(d)  forward(x) = a(x) }\n@ a = A(2)  loss = mean(a(x))", "layer `A` contains itself"),
    ("@ r = repeat 0 Dense(2 -> 2)  loss = mean(r(x))", "`repeat` needs at least one copy, found 0"),
    ("@ r = repeat 2 relu(x)  loss = mean(r(x))", "`repeat` needs a layer to copy"),
    ("@ label y: [N, 1]  loss = mean(x)", "the batch dimension is called `B`, not `N`"),
    ("@ label y: [B, N]  loss = mean(x)", "`N` is not a size"),
    ("layer L(d) { forward(h) = h + x }\n@ l = L(2)  loss = mean(l(x))", "`x` is not defined"),
];

#[test]
fn more_mistakes_each_give_one_diagnostic() {
    for (i, (body, message)) in MORE_MISTAKES.iter().enumerate() {
        let mut src = match body.split_once('@') {
            Some((layers, stmts)) => format!("{layers}model M {{ input x: [B, 2]  {stmts} }}\n"),
            None => format!("{body}\nmodel M {{ input x: [B, 2]  loss = mean(x) }}\n"),
        };
        src.push_str("optimizer adam\n");
        match *message {
            m if m.starts_with("moons") => src.push_str("train { data = moons }"),
            m if m.starts_with("csv") => src.push_str("train { data = csv(\"a.csv\") }"),
            m if m.starts_with("`data`") => src.push_str("train { data = csv(\"a.csv\") }"),
            _ => {}
        }
        let d = errs(&src);
        let shown = render_all(&d, "t.nn", &src);
        assert_eq!(d.len(), 1, "case {i}:\n{shown}");
        assert_eq!(d[0].message, *message, "case {i}:\n{shown}");
    }
}

#[test]
fn deep_nesting_within_the_parser_limits_does_not_overflow() {
    let mut src = String::from("layer L0(d) { forward(x) = relu(x) }\n");
    for k in 1..=20 {
        let open = "(1 + ".repeat(80);
        let close = ")".repeat(80);
        src += &format!("layer L{k}(d) {{ s = L{}(d)  forward(x) = {open}s(x){close} }}\n", k - 1);
    }
    src += "model M { input x: [B, 2]  l = L20(2)  loss = mean(l(x)) }\noptimizer adam\n";
    let file = parse(&src).unwrap_or_else(|d| panic!("{}", render_all(&d, "t.nn", &src)));
    let d = check(&file).expect_err("too deep");
    assert!(d[0].message.contains("levels deep once layers are inlined"), "{}", d[0].message);
}

/// Programs derived from the case files by deleting a line, changing a number or swapping
/// two names: `check` must answer each (with a model or diagnostics) without panicking.
#[test]
fn mutated_programs_never_panic() {
    let mut files = nn_files("tests/cases/ok", "");
    files.extend(nn_files("tests/cases/errors", "check_"));
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n.max(1) as u64) as usize
    };
    let numbers = ["0", "1", "-1", "2.5", "1e30", "3", "65536"];
    for path in files {
        let src = std::fs::read_to_string(&path).unwrap();
        let words: Vec<&str> = src
            .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
            .filter(|w| !w.is_empty())
            .collect();
        for _ in 0..60 {
            let lines: Vec<&str> = src.lines().collect();
            let mutated = match next(3) {
                0 => {
                    let k = next(lines.len());
                    lines
                        .iter()
                        .enumerate()
                        .filter(|&(i, _)| i != k)
                        .map(|(_, l)| *l)
                        .collect::<Vec<_>>()
                        .join("\n")
                }
                1 => {
                    let w = words[next(words.len())];
                    src.replacen(w, numbers[next(numbers.len())], 1 + next(2))
                }
                _ => {
                    let (a, b) = (words[next(words.len())], words[next(words.len())]);
                    src.replacen(a, b, 1 + next(3))
                }
            };
            if let Ok(file) = parse(&mutated) {
                if let Err(d) = check(&file) {
                    assert!(!d.is_empty());
                }
            }
        }
    }
}
