//! Embeddings: `Embedding(num -> dim)` on an id input (`input tok: class[B, T] of V`), the
//! graph ops `gather` and `scatter_add` (the table's gradient), id data from CSV, NumPy and
//! the `tokens` synthetic set, and the JIT's index kernels.
//!
//! Oracles: hand-computed values; central finite differences in f64 (repeated ids
//! included); the interpreter for the JIT (losses and parameters after every step at batch
//! sizes 1, 7 and the whole data set); PyTorch's conventions for names and initialization
//! (`emb.weight [num, dim]`, `N(0, 1)`); the loaders' and checker's messages.

mod index_harness;

use std::path::{Path, PathBuf};
use std::process::Command;

use index_harness::{
    compile, first_error, gradient_check, jit_matches_interp, values, weighted_loss,
};
use nnc::graph::eval::{eval, Env};
use nnc::graph::{Dim, Graph, InputKind, Shape};
use nnc::tensor::Tensor;
use nnc::train::session::{self, BackendKind, Options};

fn t(shape: &[usize], data: Vec<f64>) -> Tensor<f64> {
    Tensor::new(shape.to_vec(), data)
}

fn batch_of(d: &[usize]) -> Shape {
    let mut v = vec![Dim::Batch];
    v.extend(d.iter().map(|&n| Dim::Fixed(n as u32)));
    Shape(v)
}

/// A fresh scratch directory for this test process.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nnc_embedding_{}_{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// ---- the graph ops ----------------------------------------------------------------------

#[test]
fn gather_and_scatter_add_evaluate_by_hand() {
    let mut g = Graph::new();
    let table = g.add_input("table", Shape::fixed(&[3, 2]), InputKind::Features);
    let ids = g.add_input("ids", Shape::fixed(&[2, 2]), InputKind::Classes(3));
    let rows = g.gather(table, ids);
    let back = g.scatter_add(ids, rows, 3);
    g.add_output("rows", rows);
    g.add_output("back", back);
    let inputs =
        [t(&[3, 2], vec![0.0, 1.0, 10.0, 11.0, 20.0, 21.0]), t(&[2, 2], vec![2.0, 0.0, 2.0, 2.0])];
    let env = Env { inputs: &inputs, params: &[], states: &[], lr: 0.0, step: 1.0 };
    let out = eval(&g, &env).unwrap().outputs;
    let rows = vec![20.0, 21.0, 0.0, 1.0, 20.0, 21.0, 20.0, 21.0];
    assert_eq!(out[0], t(&[2, 2, 2], rows));
    // Row 2 is looked up three times, so it comes back three times; row 1 never.
    assert_eq!(out[1], t(&[3, 2], vec![0.0, 1.0, 0.0, 0.0, 60.0, 63.0]));
}

#[test]
fn gather_gradient_with_repeated_ids_matches_finite_differences() {
    let mut g = Graph::new();
    let table = g.add_param("emb.weight", Shape::fixed(&[5, 3]));
    let ids = g.add_input("tok", batch_of(&[4]), InputKind::Classes(5));
    let rows = g.gather(table, ids);
    let loss = weighted_loss(&mut g, rows);
    // Id 1 three times, id 4 twice, id 2 never: the gradient rows accumulate.
    let tok = t(&[3, 4], vec![1.0, 4.0, 1.0, 0.0, 3.0, 1.0, 4.0, 0.0, 0.0, 3.0, 3.0, 3.0]);
    let w = t(&[3, 4, 3], values(7, 36));
    let params = [t(&[5, 3], values(1, 15))];
    let d = gradient_check("gather", &g, loss, &params, &[tok, w]);
    assert!(d[0].data[6..9].iter().all(|&v| v == 0.0), "an unused row gets no gradient");
    assert!(d[0].data[3..6].iter().all(|&v| v != 0.0));
}

#[test]
fn scatter_add_gradient_matches_finite_differences() {
    let mut g = Graph::new();
    let rows = g.add_param("rows", Shape::fixed(&[2, 3, 2]));
    let ids = g.add_input("ids", Shape::fixed(&[2, 3]), InputKind::Classes(4));
    let s = g.scatter_add(ids, rows, 4);
    let loss = weighted_loss(&mut g, s);
    let ids = t(&[2, 3], vec![3.0, 0.0, 3.0, 3.0, 1.0, 0.0]);
    let params = [t(&[2, 3, 2], values(2, 12))];
    gradient_check("scatter_add", &g, loss, &params, &[ids, t(&[4, 2], values(3, 8))]);
}

#[test]
fn the_jit_clamps_computed_ids_and_never_leaves_the_table() {
    // Ids computed by the graph (x·1) are not checked before the run: the kernels clamp
    // them into 0..V (NaN becomes 0), where the interpreter reports an error.
    let mut g = Graph::new();
    let table = g.add_param("table", Shape::fixed(&[4, 3]));
    let x = g.add_input("x", batch_of(&[2]), InputKind::Features);
    let rows_in = g.add_input("g", batch_of(&[2, 3]), InputKind::Features);
    let ids = g.scale(x, 1.0);
    let rows = g.gather(table, ids);
    let back = g.scatter_add(ids, rows_in, 4);
    g.add_output("rows", rows);
    g.add_output("back", back);
    let mut jit = nnc::jit::compile(&g, &g, 1).unwrap();
    let table_v: Vec<f32> = (0..12).map(|i| i as f32).collect();
    jit.set_params(&[Tensor::new(vec![4, 3], table_v.clone())]).unwrap();
    let x = Tensor::new(vec![2, 2], vec![1000.0, -5.0, f32::NAN, 2.7]);
    let gin = Tensor::new(vec![2, 2, 3], (1..=12).map(|i| i as f32).collect());
    let inputs = [x, gin];
    let out = jit.step_full(&inputs, 0.0, 1).unwrap();
    let want_rows: Vec<f32> =
        [3, 0, 0, 2].iter().flat_map(|&r| table_v[r * 3..r * 3 + 3].to_vec()).collect();
    assert_eq!(out[0].data, want_rows);
    // Rows of g go to ids 3, 0, 0, 2.
    let want_back =
        vec![4.0 + 7.0, 5.0 + 8.0, 6.0 + 9.0, 0.0, 0.0, 0.0, 10.0, 11.0, 12.0, 1.0, 2.0, 3.0];
    assert_eq!(out[1].data, want_back);
    let in64: Vec<Tensor<f64>> = inputs.iter().map(|t| t.to_f64()).collect();
    let p64 = [Tensor::new(vec![4, 3], table_v.iter().map(|&v| v as f64).collect())];
    let env = Env { inputs: &in64, params: &p64, states: &[], lr: 0.0, step: 1.0 };
    let err = eval(&g, &env).unwrap_err().to_string();
    assert!(err.starts_with("id 1000 is not an integer in 0..4"), "{err}");
}

// ---- programs ---------------------------------------------------------------------------

/// Token ids embedded, both flattened (order-sensitive) and averaged (a bag), joined with
/// `concat`, then an MLP; trained on the `tokens` set with plain SGD.
const BAG: &str = r#"
model Bag {
    input tok: class[B, 5] of 12
    label y: class[B] of 3
    emb = Embedding(12 -> 4)
    fc1 = Dense(24 -> 6)
    fc2 = Dense(6 -> 3)
    e = emb(tok)
    h = concat(flatten(e), mean(e, axis = 1))
    logits = fc2(tanh(fc1(h)))
    loss = cross_entropy(logits, y)
    metric accuracy(logits, y)
}
optimizer sgd(lr = 0.2)
train { data = tokens(n = 50, noise = 0.3), batch = 8, seed = 5 }
"#;

#[test]
fn jit_matches_the_interpreter_at_batch_sizes_1_7_and_all() {
    jit_matches_interp(BAG, Path::new("."), &[1, 7, 0], 4);
}

#[test]
fn both_backends_reject_an_out_of_range_id_alike() {
    let c = compile(BAG);
    let params = session::initial_params(&c.model, 5, None).unwrap();
    let tok = Tensor::new(vec![1, 5], vec![0.0, 1.0, 12.0, 2.0, 3.0]);
    let y = Tensor::new(vec![1], vec![0.0]);
    let inputs = session::inputs_for(&c.model, tok, y);
    let mut errs = Vec::new();
    for kind in [BackendKind::Interp, BackendKind::Jit { threads: 1 }] {
        let mut be = session::make_backend(kind, &c, params.clone()).unwrap();
        errs.push(be.step(&inputs, 0.1, 1).unwrap_err().to_string());
    }
    assert!(errs[0].starts_with("id 12 is not an integer in 0..12 (node %"), "{}", errs[0]);
    assert_eq!(errs[0], errs[1]);
}

#[test]
fn the_example_learns_on_both_backends() {
    let src = std::fs::read_to_string("examples/embedding.nn").unwrap();
    let c = compile(&src);
    let mut accs = Vec::new();
    for kind in [BackendKind::Interp, BackendKind::Jit { threads: 1 }] {
        let o = Options { quiet: true, ..Default::default() };
        let s = session::train(&c, kind, Path::new("examples"), &o).unwrap();
        let acc = s.validation.as_ref().unwrap()[1];
        assert!(acc > 0.85, "{kind:?}: validation accuracy {acc}");
        accs.push(acc);
    }
    assert!((accs[0] - accs[1]).abs() < 0.01, "{accs:?}");
}

#[test]
fn weights_are_saved_with_pytorch_names_and_layout() {
    let dir = scratch("weights");
    let w = dir.join("w.safetensors");
    let out = Command::new(env!("CARGO_BIN_EXE_nnc"))
        .args(["train", "tests/cases/ok/embedding_concat.nn", "--steps", "3", "--quiet", "--save"])
        .arg(&w)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tensors = nnc::train::weights::load(&w).unwrap();
    let names: Vec<(&str, &[usize])> =
        tensors.iter().map(|(n, t)| (n.as_str(), t.shape.as_slice())).collect();
    assert!(names.contains(&("emb.weight", &[10, 4][..])), "{names:?}");
    assert!(names.contains(&("fc2.weight", &[2, 17][..])), "{names:?}");
}

#[test]
fn the_table_starts_normal_like_torch_and_init_overrides_it() {
    let src = |init: &str| {
        format!(
            "model M {{\n input tok: class[B] of 1000\n label y: class[B] of 2\n emb = Embedding(1000 -> 64{init})\n fc = Dense(64 -> 2)\n loss = cross_entropy(fc(emb(tok)), y)\n}}\noptimizer sgd(lr = 0.1)\n"
        )
    };
    let c = compile(&src(""));
    assert_eq!(c.model.params[0].name, "emb.weight");
    assert_eq!(c.model.params[0].shape, vec![1000, 64]);
    let w = &nnc::train::init::init_params(&c.model.params, 3)[0].data;
    let n = w.len() as f64;
    let mean = w.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = w.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    assert!(mean.abs() < 0.02 && (var.sqrt() - 1.0).abs() < 0.02, "mean {mean}, var {var}");
    let c = compile(&src(", init = uniform(-0.1, 0.1)"));
    let w = &nnc::train::init::init_params(&c.model.params, 3)[0].data;
    assert!(w.iter().all(|v| v.abs() <= 0.1) && w.iter().any(|v| v.abs() > 0.09));
}

// ---- data -------------------------------------------------------------------------------

const CSV_MODEL: &str = r#"
model Ids {
    input tok: class[B, 3] of 5
    label y: class[B] of 2
    emb = Embedding(5 -> 2)
    fc = Dense(6 -> 2)
    loss = cross_entropy(fc(flatten(emb(tok))), y)
}
optimizer sgd(lr = 0.1)
train { data = csv("ids.csv", label = "label"), batch = 2 }
"#;

fn load_csv(text: &str) -> Result<nnc::train::data::Dataset, String> {
    let dir = scratch(&format!("csv{}", text.len()));
    std::fs::write(dir.join("ids.csv"), text).unwrap();
    let c = compile(CSV_MODEL);
    let spec = session::effective_spec(&c.model, &Options::default());
    session::load_data(&c.model, &spec, &dir, None).map_err(|e| e.to_string())
}

#[test]
fn csv_columns_feed_an_id_input_and_bad_ids_are_rejected_with_their_place() {
    let ds = load_csv("t0,t1,t2,label\n0,4,4,1\n3,2,1,0\n").unwrap();
    assert_eq!(ds.x.shape, vec![2, 3]);
    assert_eq!(ds.x.data, vec![0.0, 4.0, 4.0, 3.0, 2.0, 1.0]);
    for (cell, shown) in [("5", "5"), ("-1", "-1"), ("2.5", "2.5"), ("nan", "NaN")] {
        let err = load_csv(&format!("t0,t1,t2,label\n0,1,2,1\n3,{cell},1,0\n")).unwrap_err();
        assert!(
            err.ends_with(&format!(
                "ids.csv\", line 3, column \"t1\": id {shown} is not an integer in 0..5 (the input holds ids for an Embedding)"
            )),
            "{err}"
        );
    }
}

#[test]
fn npy_arrays_feed_an_id_input() {
    use npyz::WriterBuilder;
    let dir = scratch("npy");
    let write = |name: &str, shape: &[u64], data: &[i64]| {
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(shape)
            .writer(std::fs::File::create(dir.join(name)).unwrap())
            .begin_nd()
            .unwrap();
        w.extend(data.iter().copied()).unwrap();
        w.finish().unwrap();
    };
    write("x.npy", &[2, 3], &[0, 1, 4, 4, 3, 2]);
    write("bad.npy", &[2, 3], &[0, 1, 4, 4, 7, 2]);
    write("y.npy", &[2], &[1, 0]);
    let c = compile(
        &CSV_MODEL
            .replace("csv(\"ids.csv\", label = \"label\")", "npy(x = \"x.npy\", y = \"y.npy\")"),
    );
    let spec = session::effective_spec(&c.model, &Options::default());
    let ds = session::load_data(&c.model, &spec, &dir, None).unwrap();
    assert_eq!(ds.x.data, vec![0.0, 1.0, 4.0, 4.0, 3.0, 2.0]);
    let c = compile(
        &CSV_MODEL
            .replace("csv(\"ids.csv\", label = \"label\")", "npy(x = \"bad.npy\", y = \"y.npy\")"),
    );
    let spec = session::effective_spec(&c.model, &Options::default());
    let err = session::load_data(&c.model, &spec, &dir, None).unwrap_err().to_string();
    assert!(err.contains("bad.npy\", x[1, 1]: id 7 is not an integer in 0..5"), "{err}");
}

#[test]
fn the_tokens_set_is_shaped_balanced_in_range_and_deterministic() {
    let c = compile(BAG);
    let spec = session::effective_spec(&c.model, &Options::default());
    let ds = session::load_data(&c.model, &spec, Path::new("."), None).unwrap();
    assert_eq!(ds.x.shape, vec![50, 5]);
    assert!(ds.x.data.iter().all(|&v| (0.0..12.0).contains(&v) && v.fract() == 0.0));
    let mut counts = [0; 3];
    for &y in &ds.y.data {
        counts[y as usize] += 1;
    }
    assert_eq!(counts, [17, 17, 16]);
    // With noise 0.3 most tokens belong to their class (id mod 3 = class).
    let own = (0..50)
        .flat_map(|i| (0..5).map(move |j| (i, j)))
        .filter(|&(i, j)| (ds.x.data[i * 5 + j] as usize) % 3 == ds.y.data[i] as usize)
        .count();
    assert!(own > 150, "{own} of 250 tokens belong to their class");
    let again = session::load_data(&c.model, &spec, Path::new("."), None).unwrap();
    assert_eq!(ds, again);
}

// ---- the checker ------------------------------------------------------------------------

fn bag(body: &str) -> String {
    format!(
        "model M {{\n    input tok: class[B, 4] of 50\n    label y: class[B] of 2\n    fc = Dense(32 -> 2)\n{body}\n}}\noptimizer sgd(lr = 0.1)\n"
    )
}

#[test]
fn embedding_shapes_and_names() {
    let c = compile(&bag("    emb = Embedding(50 -> 8)\n    loss = cross_entropy(fc(flatten(emb(tok))), y) + l2_penalty(emb, lambda = 0.1)"));
    let shapes: Vec<String> = c
        .model
        .values
        .iter()
        .filter(|v| {
            matches!(
                v.kind,
                nnc::check::ValueKind::Embedding { .. } | nnc::check::ValueKind::Reshape(_)
            )
        })
        .map(|v| v.shape.to_string())
        .collect();
    assert_eq!(shapes, ["[B,4,8]", "[B,32]"]);
    // One id per example: [B] -> [B, dim].
    let src = "model M {\n input tok: class[B] of 7\n label y: class[B] of 2\n emb = Embedding(7 -> 2)\n loss = cross_entropy(emb(tok), y)\n}\noptimizer sgd(lr = 0.1)\n";
    let c = compile(src);
    let v =
        c.model.values.iter().find(|v| matches!(v.kind, nnc::check::ValueKind::Embedding { .. }));
    assert_eq!(v.unwrap().shape.to_string(), "[B,2]");
}

#[test]
fn embedding_mistakes_are_reported_in_the_users_terms() {
    let err = |body: &str| first_error(&bag(body));
    let end = "\n    loss = cross_entropy(fc(flatten(emb(tok))), y)";
    assert_eq!(
        err(&format!("    emb = Embedding(40 -> 8){end}")),
        "emb has 40 rows but `tok` holds ids up to 49"
    );
    assert_eq!(
        err(&format!("    emb = Embedding(50, 8){end}")),
        "Embedding takes its sizes as `num -> dim`"
    );
    assert_eq!(
        err(&format!("    emb = Embedding(50 -> 8, init = lsuv){end}")),
        "lsuv cannot initialize an Embedding"
    );
    assert_eq!(err("    loss = cross_entropy(fc(tok * 2), y)"), "`tok` holds ids, not numbers");
    assert_eq!(
        err(
            "    emb = Embedding(50 -> 8)\n    loss = cross_entropy(fc(flatten(emb(emb(tok)))), y)"
        ),
        "emb looks up integer ids, but receives real values [B,4,8] from emb"
    );
    assert_eq!(
        err("    emb = Embedding(50 -> 8)\n    loss = cross_entropy(fc(flatten(emb(tok))), y) + sum(emb.bias)"),
        "`emb` has no field `bias`"
    );
    let real = "model M {\n input x: [B, 3]\n label y: class[B] of 2\n fc = Dense(3 -> 2)\n loss = cross_entropy(fc(x), y)\n}\noptimizer sgd(lr = 0.1)\ntrain { data = tokens(n = 10) }\n";
    assert_eq!(first_error(real), "tokens makes ids, but `x` is real-valued");
}

#[test]
fn ids_pass_through_user_layers_to_an_embedding() {
    let src = |forward: &str| {
        format!(
            "layer Encoder(v, d) {{\n    emb = Embedding(v -> d)\n    forward(t) = {forward}\n}}\n\
             model M {{\n    input tok: class[B, 4] of 12\n    label y: class[B] of 3\n    \
             enc = Encoder(12, 6)\n    fc = Dense(6 -> 3)\n    loss = cross_entropy(fc(enc(tok)), y)\n}}\n\
             optimizer sgd(lr = 0.5)\n"
        )
    };
    let c = compile(&src("mean(emb(t), axis = 1)"));
    assert_eq!(c.model.params[0].name, "enc.emb.weight");
    assert_eq!(c.model.params[0].shape, vec![12, 6]);
    assert_eq!(first_error(&src("mean(emb(t), axis = 1) * t")), "`tok` holds ids, not numbers");
}
