//! Unit tests of the syntax stage: the spec's example, precedence, literal forms, spans,
//! the printer, rendered diagnostics, and a no-panic property test.

use super::ast::*;
use super::*;

/// A full example of the language: the statement forms README.md's *The language* describes.
const SPEC_EXAMPLE: &str = r#"
layer Residual(d) {                       // user-defined layer; constructor params are ints
    fc1 = Dense(d -> d, init = he_normal)  // sub-layer
    fc2 = Dense(d -> d, init = zeros)
    param gain: [d] = ones                 // own parameter, shape may use constructor params
    forward(x) = x + gain * fc2(relu(fc1(x)))     // short form
}

layer Mlp2(i, h, o) {
    fc1 = Dense(i -> h)
    fc2 = Dense(h -> o)
    forward(x) {                           // block form: bindings then `return`
        h1 = tanh(fc1(x))
        return fc2(h1)
    }
}

model Spirals {
    input x: [B, 2]                        // B: the symbolic batch dimension (any name, first dim)
    label y: class[B] of 3                 // class indices 0..2;  or  `label t: [B, 1]` (real targets)

    stem   = Dense(2 -> 64, init = he_normal)
    blocks = repeat 4 Residual(64)         // 4 copies; params blocks.0.fc1.weight, ...
    head   = Dense(64 -> 3)

    h      = relu(stem(x))
    logits = head(blocks(h))
    loss   = cross_entropy(logits, y) + 1e-4 * sum(square(head.weight))   // `loss` is special
    metric accuracy(logits, y)
}

optimizer sgd(lr = 0.1, momentum = 0.9, nesterov = true, weight_decay = 5e-4)
schedule constant
clip global_norm(1.0)
train { data = spirals(n = 600, noise = 0.2), batch = 32, epochs = 50, seed = 1,
        shuffle = true, validation = 0.2 }
"#;

fn ok(src: &str) -> File {
    match parse(src) {
        Ok(f) => f,
        Err(d) => panic!("{}", crate::diagnostic::render_all(&d, "test.nn", src)),
    }
}

/// The rendered diagnostic for a source that must fail to parse.
fn error(src: &str) -> String {
    match parse(src) {
        Ok(f) => panic!("parsed: {}", print::print(&f)),
        Err(d) => {
            assert_eq!(d.len(), 1, "parse stops at the first error");
            d[0].render("test.nn", src)
        }
    }
}

/// Parses `src` as the value of a `let` and prints that expression.
fn expr(src: &str) -> String {
    let file = ok(&format!("model M {{ v = {src} }}"));
    let Item::Model(m) = &file.items[0] else { panic!("not a model") };
    let Stmt::Let { value, .. } = &m.body[0] else { panic!("not a let") };
    let printed =
        print::print(&File { items: vec![Item::Clip { spec: value.clone(), span: m.span }] });
    printed.trim_end().strip_prefix("(clip ").and_then(|s| s.strip_suffix(')')).unwrap().into()
}

fn value(src: &str) -> Expr {
    let file = ok(&format!("clip {src}"));
    let Item::Clip { spec, .. } = &file.items[0] else { panic!("not a clip") };
    spec.clone()
}

fn call_args(e: &Expr) -> (&str, Vec<(Option<&str>, &Expr)>) {
    let ExprKind::Call { callee, args } = &e.kind else { panic!("not a call: {e:?}") };
    let args = args.iter().map(|a| (a.name.as_ref().map(|n| n.name.as_str()), &a.value));
    (callee.name.as_str(), args.collect())
}

fn number(e: &Expr) -> (f64, bool) {
    match e.kind {
        ExprKind::Number { value, int } => (value, int),
        _ => panic!("not a number: {e:?}"),
    }
}

#[test]
fn spec_example_items() {
    let file = ok(SPEC_EXAMPLE);
    let kinds: Vec<&str> = file
        .items
        .iter()
        .map(|i| match i {
            Item::Model(_) => "model",
            Item::Layer(_) => "layer",
            Item::Optimizer { .. } => "optimizer",
            Item::Schedule { .. } => "schedule",
            Item::Clip { .. } => "clip",
            Item::Train { .. } => "train",
        })
        .collect();
    assert_eq!(kinds, ["layer", "layer", "model", "optimizer", "schedule", "clip", "train"]);

    let Item::Layer(res) = &file.items[0] else { unreachable!() };
    assert_eq!(res.name.name, "Residual");
    assert_eq!(res.params.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["d"]);
    assert_eq!(res.body.len(), 4);
    let Stmt::Param { name, shape, init, .. } = &res.body[2] else { panic!("{:?}", res.body[2]) };
    assert_eq!(name.name, "gain");
    assert!(matches!(&shape[..], [DimExpr::Name(d)] if d.name == "d"));
    assert_eq!(init.as_ref().unwrap().kind, ExprKind::Name("ones".into()));
    let Stmt::Forward { args, body, result, .. } = &res.body[3] else { panic!() };
    assert_eq!((args.len(), body.len()), (1, 0));
    assert!(matches!(result.kind, ExprKind::Binary { op: BinOp::Add, .. }));

    let Item::Layer(mlp) = &file.items[1] else { unreachable!() };
    assert_eq!(mlp.params.len(), 3);
    let Stmt::Forward { body, result, .. } = &mlp.body[2] else { panic!() };
    assert!(matches!(&body[..], [Stmt::Let { name, .. }] if name.name == "h1"));
    assert_eq!(call_args(result).0, "fc2");

    let Item::Train { settings, .. } = &file.items[6] else { unreachable!() };
    let names: Vec<&str> =
        settings.iter().map(|a| a.name.as_ref().unwrap().name.as_str()).collect();
    assert_eq!(names, ["data", "batch", "epochs", "seed", "shuffle", "validation"]);
    assert_eq!(settings[4].value.kind, ExprKind::Bool(true));
}

#[test]
fn spec_example_model() {
    let file = ok(SPEC_EXAMPLE);
    let Item::Model(m) = &file.items[2] else { unreachable!() };
    assert_eq!(m.name.name, "Spirals");
    assert_eq!(m.body.len(), 9);
    let Stmt::Input { name, ty: TypeExpr::Tensor { dims, .. }, .. } = &m.body[0] else { panic!() };
    assert_eq!(name.name, "x");
    assert!(
        matches!(&dims[..], [DimExpr::Name(b), DimExpr::Int { value: 2, .. }] if b.name == "B")
    );
    let Stmt::Label { ty: TypeExpr::Class { dims, classes, .. }, .. } = &m.body[1] else {
        panic!()
    };
    assert_eq!(dims.len(), 1);
    assert_eq!(number(classes), (3.0, true));

    let Stmt::Let { name, value, .. } = &m.body[3] else { panic!() };
    assert_eq!(name.name, "blocks");
    let ExprKind::Repeat { count, layer } = &value.kind else { panic!("{value:?}") };
    assert_eq!(number(count), (4.0, true));
    let (callee, args) = call_args(layer);
    assert_eq!(callee, "Residual");
    assert_eq!(number(args[0].1), (64.0, true));

    let Stmt::Let { value, .. } = &m.body[2] else { panic!() };
    let (_, args) = call_args(value);
    let ExprKind::Arrow { from, to } = &args[0].1.kind else { panic!() };
    assert_eq!((number(from), number(to)), ((2.0, true), (64.0, true)));
    assert_eq!(args[1].0, Some("init"));

    let Stmt::Let { name, value, .. } = &m.body[7] else { panic!() };
    assert_eq!(name.name, "loss");
    let ExprKind::Binary { op: BinOp::Add, rhs, .. } = &value.kind else { panic!() };
    let ExprKind::Binary { op: BinOp::Mul, lhs, .. } = &rhs.kind else { panic!() };
    assert_eq!(number(lhs), (1e-4, false));
    assert!(matches!(&m.body[8], Stmt::Metric { .. }));
}

#[test]
fn spec_example_prints() {
    let printed = print::print(&ok(SPEC_EXAMPLE));
    let expected = r#"(layer Residual (d)
  (let fc1 (call Dense (-> d d) init=he_normal))
  (let fc2 (call Dense (-> d d) init=zeros))
  (param gain [d] ones)
  (forward (x) (return (+ x (* gain (call fc2 (call relu (call fc1 x))))))))
(layer Mlp2 (i h o)
  (let fc1 (call Dense (-> i h)))
  (let fc2 (call Dense (-> h o)))
  (forward (x)
    (let h1 (call tanh (call fc1 x)))
    (return (call fc2 h1))))
(model Spirals
  (input x (tensor [B, 2]))
  (label y (class [B] 3))
  (let stem (call Dense (-> 2 64) init=he_normal))
  (let blocks (repeat 4 (call Residual 64)))
  (let head (call Dense (-> 64 3)))
  (let h (call relu (call stem x)))
  (let logits (call head (call blocks h)))
  (let loss
    (+ (call cross_entropy logits y) (* 0.0001 (call sum (call square (. head weight))))))
  (metric (call accuracy logits y)))
(optimizer (call sgd lr=0.1 momentum=0.9 nesterov=true weight_decay=0.0005))
(schedule constant)
(clip (call global_norm 1.0))
(train
  data=(call spirals n=600 noise=0.2)
  batch=32
  epochs=50
  seed=1
  shuffle=true
  validation=0.2)
"#;
    assert_eq!(printed, expected);
    // Printing is a function of the tree: comments and layout do not show.
    let squashed = "layer Residual(d){fc1=Dense(d->d,init=he_normal)fc2=Dense(d->d,init=zeros)\
        param gain:[d]=ones forward(x)=x+gain*fc2(relu(fc1(x)))}";
    assert!(expected.starts_with(&print::print(&ok(squashed))));
}

#[test]
fn precedence_and_associativity() {
    assert_eq!(expr("a + b * c @ d"), "(+ a (* b (@ c d)))");
    assert_eq!(expr("-x @ w"), "(@ (neg x) w)");
    assert_eq!(expr("a @ -w"), "(@ a (neg w))");
    assert_eq!(expr("-fc1.weight"), "(neg (. fc1 weight))");
    assert_eq!(expr("a - b - c"), "(- (- a b) c)");
    assert_eq!(expr("a / b * c"), "(* (/ a b) c)");
    assert_eq!(expr("a @ b @ c"), "(@ (@ a b) c)");
    assert_eq!(expr("a * b + c * d"), "(+ (* a b) (* c d))");
    assert_eq!(expr("(a + b) * c"), "(* (+ a b) c)");
    assert_eq!(expr("--x - -1"), "(- (neg (neg x)) (neg 1))");
    assert_eq!(expr("f(x).a.b"), "(. (. (call f x) a) b)");
    assert_eq!(expr("repeat n L(d) "), "(repeat n (call L d))");
    assert_eq!(expr("f(a + b -> c * d)"), "(call f (-> (+ a b) (* c d)))");
}

#[test]
fn tuples_parentheses_and_lists() {
    assert_eq!(expr("(a)"), "a");
    assert_eq!(expr("((a))"), "a");
    assert_eq!(expr("(0.9, 0.999)"), "(tuple 0.9 0.999)");
    assert_eq!(expr("(a, b, c,)"), "(tuple a b c)");
    assert_eq!(expr("((a, b))"), "(tuple a b)");
    assert_eq!(expr("[30, 60, 90]"), "(list 30 60 90)");
    assert_eq!(expr("[]"), "(list)");
    assert_eq!(expr("[1,]"), "(list 1)");
    // The span of a parenthesized expression covers its parentheses.
    assert_eq!(value("(a)").span, Span::new(5, 8));
    assert_eq!(value("(a, b)").span, Span::new(5, 11));
    assert!(error("clip (a,)").contains("a tuple needs at least two elements"));
}

#[test]
fn trailing_commas_everywhere() {
    let src = "layer L(a, b,) { forward(x, y,) = x }\n\
               model M { input x: [B, 2,] label y: class[B,] of 3, }";
    // The stray `,` after `of 3` is an error: statements are not comma-separated.
    assert!(error(src).contains("expected a statement or `}`, found `,`"));
    let file = ok("layer L(a, b,) { param p: [a, b,] forward(x, y,) = f(x, k = y,) }\n\
                   train { batch = 3, }  optimizer sgd(lr = 0.1,)");
    let Item::Layer(l) = &file.items[0] else { panic!() };
    assert_eq!(l.params.len(), 2);
    let Stmt::Forward { args, result, .. } = &l.body[1] else { panic!() };
    assert_eq!(args.len(), 2);
    assert_eq!(call_args(result).1.len(), 2);
    assert!(matches!(&file.items[1], Item::Train { settings, .. } if settings.len() == 1));
    // Empty lists of everything are fine.
    ok("layer L() { forward() = f() } train { }");
}

#[test]
fn literals() {
    assert_eq!(number(&value("64")), (64.0, true));
    assert_eq!(number(&value("64.0")), (64.0, false));
    assert_eq!(number(&value("1.")), (1.0, false));
    assert_eq!(number(&value("1e-3")), (1e-3, false));
    assert_eq!(number(&value("2.5E2")), (250.0, false));
    assert_eq!(value(r#""a\"b\\n\n""#).kind, ExprKind::Str("a\"b\\n\n".into()));
    assert_eq!(value("false").kind, ExprKind::Bool(false));
    assert_eq!(expr("f(1, 1.0, 1e-5, \"s\")"), "(call f 1 1.0 1e-5 \"s\")");
}

#[test]
fn keyword_argument_names_may_be_keywords() {
    let csv = value(r#"csv("d.csv", label = "y", class = 2)"#);
    let (_, args) = call_args(&csv);
    assert_eq!(args[1].0, Some("label"));
    assert_eq!(args[2].0, Some("class"));
}

#[test]
fn schedule_parts_and_spans() {
    let src = "schedule warmup(200) then cosine(to = 1e-5)\nmodel M {\n  h = a + b\n}";
    let file = ok(src);
    let Item::Schedule { parts, span } = &file.items[0] else { panic!() };
    assert_eq!(parts.len(), 2);
    assert_eq!(&src[span.start as usize..span.end as usize], &src[..43]);
    let Item::Model(m) = &file.items[1] else { panic!() };
    assert_eq!(m.name.span.line(src), 2);
    let Stmt::Let { name, value, span } = &m.body[0] else { panic!() };
    assert_eq!(&src[span.start as usize..span.end as usize], "h = a + b");
    assert_eq!(&src[value.span.start as usize..value.span.end as usize], "a + b");
    assert_eq!(name.span.line(src), 3);
}

#[test]
fn rendered_errors() {
    let src = "model M {\n    fc1 = Dense(64 = 3)\n}\n";
    assert_eq!(
        error(src),
        "error: expected `)`, `,` or `->`, found `=`
  ┌─ test.nn:2:20
  │
2 │     fc1 = Dense(64 = 3)
  │                    ^ unexpected `=`

"
    );
    let src = "model M {\n    h = relu(fc1(x)\n    y = h\n}\n";
    assert_eq!(
        error(src),
        "error: expected `)`, `,` or `->`, found `y`
  ┌─ test.nn:3:5
  │
2 │     h = relu(fc1(x)
  │             - this `(` is never closed
3 │     y = h
  │     ^ unexpected `y`

"
    );
    let src = "model M {\n    h = relu(x)\n";
    assert_eq!(
        error(src),
        "error: unexpected end of file
  ┌─ test.nn:2:16
  │
1 │ model M {
  │         - this `{` is never closed
2 │     h = relu(x)
  │                ^ expected a statement or `}` after this

"
    );
    let src = "train { data = csv(\"a.csv), batch = 3 }";
    assert_eq!(
        error(src),
        "error: unterminated string
  ┌─ test.nn:1:20
  │
1 │ train { data = csv(\"a.csv), batch = 3 }
  │                    ^^^^^^^^^^^^^^^^^^^^ this string has no closing `\"`
  │
  = strings end on the line they start

"
    );
}

#[test]
fn error_messages() {
    let first_line = |src: &str| error(src).lines().next().unwrap().to_string();
    assert_eq!(first_line("model M { h = }"), "error: expected an expression, found `}`");
    assert_eq!(first_line("model M { x = a +* b }"), "error: expected an expression, found `*`");
    assert_eq!(first_line("model M {} foo"), "error: expected an item, found `foo`");
    assert_eq!(first_line("model M { input x [B] }"), "error: expected `:`, found `[`");
    assert_eq!(first_line("model M { x = y.0 }"), "error: expected a name, found `0`");
    assert_eq!(first_line("model model {}"), "error: expected a name, found keyword `model`");
    assert_eq!(first_line("model M { x = 1 $ }"), "error: unexpected character `$`");
    assert_eq!(first_line("model M { x = 1; }"), "error: unexpected character `;`");
    assert_eq!(first_line("train { a = \"\\q\" }"), "error: unknown escape `\\q` in string");
    assert!(error("model M { label = 3 }").contains("`label` is a keyword"));
    assert!(error("model M { x = b.0 }").contains("cannot be indexed"));
    assert!(error("model M {} foo").contains("the items of a file are"));
}

#[test]
fn case_files_parse_as_their_directory_says() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    for (sub, want_ok) in [("ok", true), ("errors", false)] {
        for src in case_files(&dir.join(sub), "syntax_") {
            assert_eq!(parse(&src.1).is_ok(), want_ok, "{}", src.0);
        }
    }
}

/// `(path, text)` of the `.nn` files in `dir` whose names start with `prefix`.
fn case_files(dir: &std::path::Path, prefix: &str) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<(String, String)> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "nn"))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(prefix)))
        .filter_map(|p| Some((p.display().to_string(), std::fs::read_to_string(&p).ok()?)))
        .collect();
    files.sort();
    files
}

/// Parses, then prints or renders: nothing may panic, and spans must lie in the source.
fn survive(src: &str) {
    match parse(src) {
        Ok(file) => {
            print::print(&file);
        }
        Err(diags) => {
            assert_eq!(diags.len(), 1);
            let s = diags[0].primary.span;
            assert!(s.start <= s.end && s.end as usize <= src.len(), "{s:?} in {src:?}");
            diags[0].render("fuzz.nn", src);
        }
    }
}

/// A deterministic xorshift generator: the tests need no seedable crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn no_panic_on_truncated_programs() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut programs = vec![("spec".to_string(), SPEC_EXAMPLE.to_string())];
    programs.extend(case_files(&root.join("examples"), ""));
    programs.extend(case_files(&root.join("tests/cases/ok"), ""));
    programs.extend(case_files(&root.join("tests/cases/errors"), ""));
    for (_, src) in &programs {
        for cut in (0..=src.len()).filter(|&i| src.is_char_boundary(i)) {
            survive(&src[..cut]);
        }
    }
}

#[test]
fn no_panic_on_byte_soup() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..3000 {
        let len = rng.below(120);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        survive(&String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn no_panic_on_token_soup() {
    const PIECES: &[&str] = &[
        "model",
        "layer",
        "input",
        "label",
        "param",
        "metric",
        "forward",
        "return",
        "optimizer",
        "schedule",
        "clip",
        "train",
        "repeat",
        "then",
        "class",
        "of",
        "true",
        "false",
        "x",
        "M",
        "64",
        "1.5",
        "1e-3",
        "\"s\"",
        "{",
        "}",
        "(",
        ")",
        "[",
        "]",
        ",",
        ":",
        "=",
        "->",
        "+",
        "-",
        "*",
        "/",
        "@",
        ".",
        "//c\n",
        "/*c*/",
        "\"",
        "/*",
        "$",
        "é",
        "\n",
    ];
    let mut rng = Rng(42);
    for _ in 0..3000 {
        let n = rng.below(40);
        let src: Vec<&str> = (0..n).map(|_| PIECES[rng.below(PIECES.len())]).collect();
        survive(&src.join(" "));
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    for src in [
        format!("clip {}1{}", "(".repeat(100_000), ")".repeat(100_000)),
        format!("clip {}1", "-".repeat(100_000)),
        format!("clip 1{}", " + 1".repeat(100_000)),
        format!("clip {}", "[".repeat(100_000)),
        format!("clip {}2{}", "repeat ".repeat(100_000), " L(1)".repeat(100_000)),
        format!("clip x{}", ".y".repeat(100_000)),
        format!("clip 1{}", " + true".repeat(100_000)),
        format!("clip 1{}", " * f(1, 2)".repeat(100_000)),
    ] {
        let e = error(&src);
        assert!(e.contains("expression nested too deeply"), "{}", &e[..e.len().min(300)]);
    }
    // The deepest accepted expressions still print.
    let depth = super::lexer::MAX_DEPTH;
    print::print(&ok(&format!("clip {}1", "-".repeat(depth - 10))));
    print::print(&ok(&format!(
        "clip {}1{}",
        "f(".repeat(depth / 2 - 5),
        ")".repeat(depth / 2 - 5)
    )));
    // A long but flat program is fine.
    ok(&format!("model M {{ {} }}", "h = a + b * c(d, e -> f) ".repeat(2000)));
}

/// A UTF-8 byte-order mark before the first line is accepted, and spans still index the
/// text as given.
#[test]
fn byte_order_mark_is_accepted() {
    let plain = "model M {\n  input x: [B, 2]\n  loss = mean(x)\n}\n";
    let with_bom = format!("\u{feff}{plain}");
    assert!(parse(&with_bom).is_ok());
    let bad = format!("\u{feff}{}", plain.replace("mean(x)", "mean(x"));
    let d = parse(&bad).unwrap_err();
    let at = d[0].primary.span.start as usize;
    let want = bad.find("\n}").unwrap();
    assert!(at >= want && at <= want + 2, "span {at} vs {want}: {}", &bad[at..]);
}
