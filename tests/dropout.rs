//! Dropout (`dropout(x, p)`, the `drop_mask` op): the JIT draws exactly the interpreter's
//! masks (every kernel shape: flat, rows, straight-line rows with a partial vector, scalar
//! tails, multi-pass rows, a mask computed under another node's domain, split across two
//! threads) and trains the same trajectory; the masks have the statistics of independent
//! Bernoulli(1 − p) draws scaled by 1/(1 − p), change with the step, the site and the seed
//! and nothing else; evaluation (the forward graph, validation, `nnc eval`) ignores dropout;
//! and the gradient through dropout matches central finite differences at a fixed step.

use std::path::Path;
use std::process::Command;

use nnc::graph::eval::{eval, Env};
use nnc::graph::{Dim, Graph, InputKind, NodeId, Op, ScalarArg, Shape, F64};
use nnc::jit;
use nnc::pipeline::{self, CompileOptions, Compiled};
use nnc::runtime::{Backend, Interp};
use nnc::tensor::Tensor;
use nnc::train::data;
use nnc::train::session::{self, BackendKind, Options};

// ---- helpers ----------------------------------------------------------------------------

/// A deterministic value in `[-1, 1)` from `(seed, i)`.
fn noise(seed: u64, i: u64) -> f32 {
    let h = (seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i).wrapping_mul(0xD1B5_4A32_D192_ED03);
    ((h >> 40) as f32 / (1u64 << 23) as f32) - 1.0
}

fn noise_tensor(seed: u64, shape: Vec<usize>) -> Tensor<f32> {
    let n = shape.iter().product::<usize>() as u64;
    Tensor::new(shape, (0..n).map(|i| noise(seed, i)).collect())
}

/// `drop_mask[keep, salt](step)` of shape `dims` (`None` is the batch dimension).
fn mask_node(g: &mut Graph, dims: &[Option<u32>], keep: f64, salt: u32) -> NodeId {
    let shape = Shape(dims.iter().map(|d| d.map_or(Dim::Batch, Dim::Fixed)).collect());
    let step = g.scalar(ScalarArg::Step);
    g.add(Op::DropMask { keep: F64::new(keep), salt }, vec![step], shape)
}

/// The f32 interpreter's outputs of `g` at step `t`.
fn interp(g: &Graph, inputs: &[Tensor<f32>], t: f64) -> Vec<Tensor<f32>> {
    let env = Env { inputs, params: &[], states: &[], lr: 0.0, step: t };
    eval(g, &env).unwrap().outputs
}

/// The f64 interpreter's outputs of `g` at step `t`.
fn interp64(g: &Graph, inputs: &[Tensor<f64>], params: &[Tensor<f64>], t: f64) -> Vec<Tensor<f64>> {
    let env = Env { inputs, params, states: &[], lr: 0.0, step: t };
    eval(g, &env).unwrap().outputs
}

fn bits(t: &Tensor<f32>) -> Vec<u32> {
    t.data.iter().map(|x| x.to_bits()).collect()
}

fn drop_masks(g: &Graph) -> Vec<(f64, u32)> {
    g.nodes()
        .filter_map(|(_, n)| match n.op {
            Op::DropMask { keep, salt } => Some((keep.get(), salt)),
            _ => None,
        })
        .collect()
}

/// A model with three dropout sites (one of them `p = 0`, which is no site in the graph).
const MODEL: &str = "
model Drop {
    input x: [B, 2]
    label y: class[B] of 3

    fc1 = Dense(2 -> 24)
    fc2 = Dense(24 -> 24)
    fc3 = Dense(24 -> 3)

    h1     = dropout(tanh(fc1(x)), p = 0.3)
    h2     = dropout(tanh(fc2(h1)))
    logits = fc3(dropout(h2, p = 0))
    loss   = cross_entropy(logits, y)
    metric accuracy(logits, y)
}

optimizer sgd(lr = 0.1, momentum = 0.9)
train { data = blobs(n = 120), batch = 7, steps = 5, seed = 3, validation = 0.25 }
";

/// [`MODEL`] with every `dropout(...)` replaced by its operand.
const MODEL_PLAIN: &str = "
model Drop {
    input x: [B, 2]
    label y: class[B] of 3

    fc1 = Dense(2 -> 24)
    fc2 = Dense(24 -> 24)
    fc3 = Dense(24 -> 3)

    h1     = tanh(fc1(x))
    h2     = tanh(fc2(h1))
    logits = fc3(h2)
    loss   = cross_entropy(logits, y)
    metric accuracy(logits, y)
}

optimizer sgd(lr = 0.1, momentum = 0.9)
train { data = blobs(n = 120), batch = 7, steps = 5, seed = 3, validation = 0.25 }
";

fn compile(src: &str) -> Compiled {
    pipeline::compile(src)
        .unwrap_or_else(|d| panic!("{}", nnc::diagnostic::render_all(&d, "t", src)))
}

/// The model's whole data set (the training split is taken from it by the session).
fn dataset(c: &Compiled) -> data::Dataset {
    let spec = session::effective_spec(&c.model, &Options::default());
    session::load_data(&c.model, &spec, Path::new("."), None).unwrap()
}

// ---- 1. the JIT draws the interpreter's masks ----------------------------------------------

/// Masks of many shapes, alone and fused with other work, on both backends, bit for bit.
#[test]
fn jit_masks_equal_the_interpreter_bit_for_bit() {
    let mut g = Graph::new();
    let x = g.add_input("x", Shape(vec![Dim::Batch, Dim::Fixed(6)]), InputKind::Features);
    let b = None;
    let shapes: [&[Option<u32>]; 8] = [
        &[b, Some(37)],         // a column loop with a scalar tail
        &[b, Some(5)],          // straight-line rows ending in a partial vector
        &[b, Some(64)],         // whole vectors
        &[b, Some(4), Some(6)], // rank 3
        &[b],                   // a flat kernel
        &[Some(3), Some(70)],   // fixed
        &[],                    // a scalar
        &[b, Some(1)],          // trailing unit dimension
    ];
    for (k, dims) in shapes.iter().enumerate() {
        // Alone (a flat kernel), and feeding a softmax (a kernel with row structure).
        let m = mask_node(&mut g, dims, 0.7, 1000 + k as u32);
        g.add_output(format!("mask{k}"), m);
        if !dims.is_empty() {
            let m = mask_node(&mut g, dims, 0.7, 2000 + k as u32);
            g.add_output(format!("row_mask{k}"), m);
            let sm = g.add(Op::Softmax, vec![m], g.shape(m).clone());
            g.add_output("softmax", sm);
        }
    }
    // Fused: x·mask, a multi-pass row kernel (softmax), and a mask of shape [B,2,3] joining
    // the kernel of t = x² (domain B×6) and read back through a reshape.
    let m = mask_node(&mut g, &[b, Some(6)], 0.5, 7);
    let xm = g.mul(x, m);
    g.add_output("x_mask", xm);
    let sm = g.add(Op::Softmax, vec![xm], g.shape(xm).clone());
    g.add_output("softmax", sm);
    let t = g.mul(x, x);
    let m3 = mask_node(&mut g, &[b, Some(2), Some(3)], 0.25, 8);
    let r = g.reshape(m3, &Shape(vec![Dim::Batch, Dim::Fixed(6)]));
    let tm = g.mul(t, r);
    g.add_output("t_mask", tm);
    let mut jit = jit::compile(&g, &g, 1).unwrap();
    for batch in [1, 7, 300] {
        let inputs = vec![noise_tensor(batch as u64, vec![batch, 6])];
        for step in [1u64, 2, 1000, 123_456] {
            let want = interp(&g, &inputs, step as f64);
            let got = jit.step_full(&inputs, 0.1, step).unwrap();
            for ((o, w), j) in g.outputs.iter().zip(&want).zip(&got) {
                if o.name == "softmax" {
                    // exp differs in the last bits; the zeros of the mask must not.
                    let ok = w.data.iter().zip(&j.data).all(|(a, b)| (a - b).abs() <= 1e-5);
                    assert!(ok, "softmax at batch {batch}, step {step}");
                    continue;
                }
                assert_eq!(bits(j), bits(w), "{} at batch {batch}, step {step}", o.name);
            }
        }
    }
}

/// A mask of over 2²⁰ elements, which two threads split between them.
#[test]
fn two_threads_draw_the_same_mask() {
    let mut g = Graph::new();
    g.add_input("x", Shape(vec![Dim::Batch, Dim::Fixed(1024)]), InputKind::Features);
    let m = mask_node(&mut g, &[None, Some(1024)], 0.6, 99);
    g.add_output("mask", m);
    let mut jit = jit::compile(&g, &g, 2).unwrap();
    let inputs = vec![Tensor::full(vec![1100, 1024], 1.0f32)];
    let want = interp(&g, &inputs, 5.0);
    let got = jit.step_full(&inputs, 0.1, 5).unwrap();
    assert_eq!(bits(&got[0]), bits(&want[0]));
}

// ---- 1b. and trains the same trajectory ------------------------------------------------------

/// Both backends train [`MODEL`] from the same parameters with the same batches; losses,
/// metrics and parameters agree after every step at batch sizes 1, 7 and the whole set.
#[test]
fn jit_and_interpreter_train_the_same_trajectory() {
    let c = compile(MODEL);
    assert_eq!(drop_masks(&c.opt).len(), 2, "two sites with p > 0");
    let ds = dataset(&c);
    let params = session::initial_params(&c.model, 3, None).unwrap();
    for size in [1, 7, ds.len()] {
        let mut interp = Interp::new(&c.opt, &c.forward, params.clone());
        let mut jit =
            session::make_backend(BackendKind::Jit { threads: 1 }, &c, params.clone()).unwrap();
        for t in 1..=6u64 {
            let idx: Vec<usize> = (0..size).map(|k| (t as usize * size + k) % ds.len()).collect();
            let (x, y) = data::batch(&ds, &idx);
            let inputs = session::inputs_for(&c.model, x, y);
            let want = interp.step(&inputs, 0.1, t).unwrap();
            let got = jit.step(&inputs, 0.1, t).unwrap();
            for (a, b) in got.iter().zip(&want) {
                assert!(
                    (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                    "step {t} batch {size}: {got:?} vs {want:?}"
                );
            }
        }
        for (p, q) in jit.params().iter().zip(interp.params()) {
            let scale = q.data.iter().fold(0f32, |m, x| m.max(x.abs()));
            for (a, b) in p.data.iter().zip(&q.data) {
                assert!((a - b).abs() <= 1e-4 * (b.abs() + scale), "batch {size}: {a} vs {b}");
            }
        }
    }
}

// ---- 2. statistics -------------------------------------------------------------------------

/// Kept fraction, mean of `dropout(ones)`, independence of neighbours, of steps, of sites.
#[test]
fn masks_look_like_independent_scaled_bernoulli_draws() {
    let n = 1000usize;
    for keep in [0.9, 0.5, 0.2] {
        let mut g = Graph::new();
        g.add_input("x", Shape(vec![Dim::Batch]), InputKind::Features);
        for salt in [11, 12] {
            let m = mask_node(&mut g, &[Some(n as u32), Some(n as u32)], keep, salt);
            g.add_output(format!("site{salt}"), m);
        }
        let x = vec![Tensor::full(vec![1], 0.0f64)];
        let [a, b]: [Tensor<f64>; 2] = interp64(&g, &x, &[], 1.0).try_into().unwrap();
        let a2 = interp64(&g, &x, &[], 2.0).remove(0);
        let total = (n * n) as f64;
        let on = |t: &Tensor<f64>| t.data.iter().filter(|&&v| v != 0.0).count() as f64;
        // Every element is 0 or 1/keep.
        assert!(a.data.iter().all(|&v| v == 0.0 || v == 1.0 / keep));
        // Kept fraction ≈ keep, within 5 standard errors.
        let se = (keep * (1.0 - keep) / total).sqrt();
        let frac = on(&a) / total;
        assert!((frac - keep).abs() < 5.0 * se, "keep {keep}: kept fraction {frac}");
        // The mean of dropout(ones) is ≈ 1 (its standard error is se / keep).
        let mean = a.data.iter().sum::<f64>() / total;
        assert!((mean - 1.0).abs() < 5.0 * se / keep, "keep {keep}: mean {mean}");
        // Two independent masks agree with probability keep² + (1 − keep)².
        let agree_p = keep * keep + (1.0 - keep) * (1.0 - keep);
        let se2 = (agree_p * (1.0 - agree_p) / total).sqrt();
        let agree = |u: &[f64], v: &[f64]| {
            u.iter().zip(v).filter(|(x, y)| (**x != 0.0) == (**y != 0.0)).count() as f64
                / u.len() as f64
        };
        for (what, u, v) in [
            ("steps 1 and 2", &a.data[..], &a2.data[..]),
            ("two sites", &a.data[..], &b.data[..]),
            ("neighbours", &a.data[..a.data.len() - 1], &a.data[1..]),
            ("rows apart", &a.data[..a.data.len() - n], &a.data[n..]),
        ] {
            let f = agree(u, v);
            assert!(
                (f - agree_p).abs() < 5.0 * se2,
                "keep {keep}, {what}: agreement {f} vs {agree_p}"
            );
        }
        // Each row keeps about keep·n elements (no row is special): within 6 standard errors.
        let row_se = (keep * (1.0 - keep) * n as f64).sqrt();
        for r in a.data.chunks(n) {
            let k = r.iter().filter(|&&v| v != 0.0).count() as f64;
            assert!((k - keep * n as f64).abs() < 6.0 * row_se, "keep {keep}: a row keeps {k}");
        }
    }
}

/// The model's masks change with the step, differ between sites and seeds (`seed =` or
/// `--seed`), and are reproduced exactly by the same seed.
#[test]
fn masks_depend_on_step_site_and_seed_only() {
    let c = compile(MODEL);
    let salts: Vec<u32> = drop_masks(&c.opt).iter().map(|m| m.1).collect();
    assert_eq!(salts.len(), 2);
    assert_ne!(salts[0], salts[1], "two sites, two salts");
    assert_eq!(drop_masks(&compile(MODEL).opt), drop_masks(&c.opt), "same seed, same masks");
    let other = compile(&MODEL.replace("seed = 3", "seed = 4"));
    let s4: Vec<u32> = drop_masks(&other.opt).iter().map(|m| m.1).collect();
    assert!(s4.iter().all(|s| !salts.contains(s)), "another seed, other salts");
    // `--seed 4` is `seed = 4`.
    let over = pipeline::compile_seeded(MODEL, &CompileOptions::default(), Some(4)).unwrap();
    assert_eq!(drop_masks(&over.opt), drop_masks(&other.opt));
    // The same step reproduces the loss exactly; another step changes it.
    let ds = dataset(&c);
    let params = session::initial_params(&c.model, 3, None).unwrap();
    let idx: Vec<usize> = (0..40).collect();
    let (x, y) = data::batch(&ds, &idx);
    let inputs = session::inputs_for(&c.model, x, y);
    let loss_at =
        |t: u64| Interp::new(&c.opt, &c.forward, params.clone()).step(&inputs, 0.1, t).unwrap()[0];
    assert_eq!(loss_at(3).to_bits(), loss_at(3).to_bits());
    assert_ne!(loss_at(3), loss_at(4));
}

// ---- 3. evaluation is the identity -----------------------------------------------------------

/// The forward graph has no mask, and computes exactly what the model without dropout does.
#[test]
fn the_forward_graph_ignores_dropout() {
    let (c, plain) = (compile(MODEL), compile(MODEL_PLAIN));
    assert!(drop_masks(&c.forward).is_empty());
    assert!(!drop_masks(&c.opt).is_empty());
    let ds = dataset(&c);
    let params = session::initial_params(&c.model, 3, None).unwrap();
    let inputs = session::inputs_for(&c.model, ds.x.clone(), ds.y.clone());
    let env = Env { inputs: &inputs, params: &params, states: &[], lr: 0.0, step: 1.0 };
    let a = eval(&c.forward, &env).unwrap().outputs;
    let b = eval(&plain.forward, &env).unwrap().outputs;
    assert_eq!(a, b);
    // The training graph does drop: its loss differs from the evaluation loss.
    let train = eval(&c.grad, &env).unwrap().outputs;
    assert_ne!(train[0], a[0]);
    // The JIT's evaluation is the plain model's too.
    let mut jit =
        session::make_backend(BackendKind::Jit { threads: 1 }, &c, params.clone()).unwrap();
    let got = jit.evaluate(&inputs).unwrap();
    assert!((got[0] - a[0].data[0]).abs() <= 1e-5 * a[0].data[0].abs());
}

fn nnc(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_nnc")).args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "nnc {args:?}: {err}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Validation after training and `nnc eval` report the model without dropout's numbers.
#[test]
fn validation_and_nnc_eval_ignore_dropout() {
    let dir = std::env::temp_dir().join(format!("nnc_dropout_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (file, plain_file) = (dir.join("drop.nn"), dir.join("plain.nn"));
    std::fs::write(&file, MODEL).unwrap();
    std::fs::write(&plain_file, MODEL_PLAIN).unwrap();
    let w = dir.join("w.safetensors");
    let c = compile(MODEL);
    let o = Options { quiet: true, save: Some(w.clone()), ..Options::default() };
    let s = session::train(&c, BackendKind::Interp, &dir, &o).unwrap();
    // The validation split evaluated with the trained weights by the plain model.
    let plain = compile(MODEL_PLAIN);
    let spec = session::effective_spec(&plain.model, &Options::default());
    let (_, val) = data::split(dataset(&plain), spec.validation, spec.seed);
    let weights = session::initial_weights(&plain.model, 3, Some(&w)).unwrap();
    let mut be = session::backend_with(BackendKind::Interp, &plain, weights).unwrap();
    let want = session::evaluate(&plain.model, be.as_mut(), &val.unwrap(), 256).unwrap();
    assert_eq!(s.validation.unwrap(), want);
    // `nnc eval` prints the same for both files.
    let ws = w.to_str().unwrap();
    let a = nnc(&["eval", file.to_str().unwrap(), "--weights", ws]);
    let b = nnc(&["eval", plain_file.to_str().unwrap(), "--weights", ws]);
    assert_eq!(a, b);
    assert!(a.contains("loss"), "{a}");
    std::fs::remove_dir_all(&dir).ok();
}

// ---- 4. the gradient through dropout -----------------------------------------------------------

/// At a fixed step the loss is a smooth function of the parameters (the masks are fixed):
/// the gradient graph's `grad.*` outputs equal central differences of its loss, in f64.
#[test]
fn gradient_matches_finite_differences_at_a_fixed_step() {
    let c = compile(MODEL);
    let g = &c.grad;
    // One mask node per site: the backward pass reuses the forward masks.
    assert_eq!(drop_masks(g).len(), 2);
    let ds = dataset(&c);
    let idx: Vec<usize> = (0..9).collect();
    let (x, y) = data::batch(&ds, &idx);
    let inputs: Vec<Tensor<f64>> =
        session::inputs_for(&c.model, x, y).iter().map(|t| t.to_f64()).collect();
    let params: Vec<Tensor<f64>> =
        session::initial_params(&c.model, 3, None).unwrap().iter().map(|t| t.to_f64()).collect();
    let t = 5.0;
    let out = interp64(g, &inputs, &params, t);
    let loss = g.outputs.iter().position(|o| o.name == "loss").unwrap();
    let h = 1e-6;
    let mut checked = 0;
    for (i, p) in g.params.iter().enumerate() {
        let k = g.outputs.iter().position(|o| o.name == format!("grad.{}", p.name)).unwrap();
        let mut q = params.clone();
        for j in (0..params[i].numel()).step_by(7) {
            let v = params[i].data[j];
            q[i].data[j] = v + h;
            let up = interp64(g, &inputs, &q, t)[loss].data[0];
            q[i].data[j] = v - h;
            let down = interp64(g, &inputs, &q, t)[loss].data[0];
            q[i].data[j] = v;
            let numeric = (up - down) / (2.0 * h);
            let auto = out[k].data[j];
            assert!(
                (auto - numeric).abs() <= 1e-6 * numeric.abs().max(1.0),
                "d loss / d {}[{j}]: autodiff {auto}, numeric {numeric}",
                p.name
            );
            checked += 1;
        }
    }
    assert!(checked > 50);
    // Dropout is active: the gradient differs from the model without it.
    let plain = compile(MODEL_PLAIN);
    let pout = interp64(&plain.grad, &inputs, &params, t);
    let k = g.outputs.iter().position(|o| o.name == "grad.fc1.weight").unwrap();
    let pk = plain.grad.outputs.iter().position(|o| o.name == "grad.fc1.weight").unwrap();
    assert_ne!(out[k], pout[pk], "dropout changes the gradient");
}
