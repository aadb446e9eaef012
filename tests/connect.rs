//! `nnc connect` and the curve step it trains (`nnc::study::curve`): the rewritten graph's
//! gradient of each bend is `c_j(t)` times the model's gradient at `θ(t)` (the model's own
//! `grad` stage, in f64); an untrained bend leaves the curve on the line; the saved curve
//! is what `nnc line --curve` evaluates; a trained curve lowers the barrier.

mod common;
use common::{csv_table, differential::noise, digits_weights, nnc, scratch};
use nnc::graph::eval::{eval, Env};
use nnc::graph::Role;
use nnc::pipeline::{compile, Compiled};
use nnc::study::curve;
use nnc::study::path::{coefficients, Curve, Path};
use nnc::tensor::Tensor;
use nnc::train::session;
use nnc::train::state::Weights;

const MLP: &str = "
model Mlp {
    input x: [B, 3]
    label y: class[B] of 2
    fc1 = Dense(3 -> 5)
    fc2 = Dense(5 -> 2)
    loss = cross_entropy(fc2(tanh(fc1(x))), y)
}
optimizer sgd(lr = 0.1, weight_decay = 1e-3)
";

/// Loss and gradients of `g` (a `grad` stage) in f64.
fn grads(
    g: &nnc::graph::Graph,
    inputs: &[Tensor<f64>],
    params: &[Tensor<f64>],
    states: &[Tensor<f64>],
) -> (f64, Vec<Tensor<f64>>) {
    let g = nnc::passes::optimize(g);
    let env = Env { inputs, params, states, lr: 0.0, step: 0.0 };
    let out = eval(&g, &env).unwrap().outputs;
    let at = |i: u32| out[g.output_of(Role::Grad(i)).unwrap()].clone();
    (out[0].data[0], (0..g.params.len() as u32).map(at).collect())
}

fn f64s(v: &[Tensor<f32>]) -> Vec<Tensor<f64>> {
    v.iter().map(|t| t.to_f64()).collect()
}

#[test]
fn the_gradient_of_a_bend_is_its_coefficient_times_the_models_gradient() {
    let c: Compiled = compile(MLP).unwrap();
    let nodes: Vec<Weights> =
        (1..=4).map(|s| session::initial_weights(&c.model, s, None).unwrap()).collect();
    let n = 16usize;
    let x = Tensor::new(vec![n, 3], (0..3 * n).map(|i| noise(7, i as u64) as f64).collect());
    let y = Tensor::new(vec![n], (0..n).map(|i| (i % 2) as f64).collect());
    let inputs = [x, y];
    for kind in [Curve::Bezier, Curve::Polychain] {
        let cs = curve::compile(&c, kind, 2, true);
        for t in [0.0, 0.3, 0.62, 1.0] {
            let coef = coefficients(kind, 4, t);
            let theta = Path { curve: kind, nodes: nodes.clone() }.at(t);
            let (loss, g) = grads(c.grad.graph(), &inputs, &f64s(&theta.params), &[]);
            let bends: Vec<Tensor<f32>> =
                nodes[1..3].iter().flat_map(|w| w.params.clone()).collect();
            let mut states = f64s(&nodes[0].params);
            states.extend(f64s(&nodes[3].params));
            states.extend(coef.iter().map(|&c| Tensor::new(vec![], vec![c])));
            let (curve_loss, cg) = grads(cs.compiled.grad.graph(), &inputs, &f64s(&bends), &states);
            // θ(t) here is rounded to f32 (as `nnc line` hands it to a backend); the curve
            // step combines the nodes exactly.
            assert!((loss - curve_loss).abs() < 1e-7, "{kind:?} t={t}: {loss} vs {curve_loss}");
            for j in 0..2 {
                for (i, gi) in g.iter().enumerate() {
                    for (a, b) in cg[j * 4 + i].data.iter().zip(&gi.data) {
                        let want = coef[j + 1] * b;
                        assert!(
                            (a - want).abs() <= 1e-8 + 1e-6 * want.abs(),
                            "{kind:?} t={t} bend {j} param {i}: {a} vs {want}"
                        );
                    }
                }
            }
        }
    }
}

fn column(rows: &[Vec<String>], head: &[String], name: &str) -> Vec<f64> {
    let i = head.iter().position(|h| h == name).unwrap_or_else(|| panic!("no {name} in {head:?}"));
    rows.iter().map(|r| r[i].parse().unwrap()).collect()
}

#[test]
fn an_untrained_bend_is_the_line_and_a_trained_curve_lowers_the_barrier() {
    let dir = scratch("connect");
    let (a, b) = (digits_weights(&dir, "1"), digits_weights(&dir, "2"));
    let run = |epochs: &str, name: &str| {
        let (csv, cf) = (dir.join(format!("{name}.csv")), dir.join(format!("{name}.safetensors")));
        let (c, f) = (csv.to_str().unwrap().to_string(), cf.to_str().unwrap().to_string());
        let args =
            ["connect", "examples/digits_mlp.nn", "--from", &a, "--to", &b, "--points", "11"];
        let (code, said, err) =
            nnc(&[&args[..], &["--epochs", epochs, "--out", &c, "--save", &f, "--quiet"]].concat());
        assert_eq!(code, 0, "{err}");
        let (head, rows) = csv_table(&std::fs::read_to_string(&csv).unwrap());
        (head, rows, f, said)
    };
    let (head, rows, _, _) = run("0", "flat");
    for split in ["train", "validation"] {
        for out in ["loss", "accuracy"] {
            let line = column(&rows, &head, &format!("line_{split}_{out}"));
            let curve = column(&rows, &head, &format!("curve_{split}_{out}"));
            for (l, c) in line.iter().zip(&curve) {
                assert!((l - c).abs() <= 1e-5 * l.abs().max(1e-2), "{split} {out}: {l} vs {c}");
            }
        }
    }
    let (head, rows, saved, said) = run("5", "trained");
    let barrier = |name: &str| {
        let v = column(&rows, &head, name);
        v.iter().cloned().fold(f64::MIN, f64::max) - (v[0] + v[v.len() - 1]) / 2.0
    };
    let (line, bent) = (barrier("line_train_loss"), barrier("curve_train_loss"));
    assert!(bent < line / 2.0, "the curve's barrier {bent} vs the line's {line}\n{said}");
    // The saved curve is the one evaluated: `nnc line --curve` gives the same column.
    let out = dir.join("again.csv");
    let o = out.to_str().unwrap();
    let (code, _, err) =
        nnc(&["line", "examples/digits_mlp.nn", "--curve", &saved, "--points", "11", "--out", o]);
    assert_eq!(code, 0, "{err}");
    let (h2, r2) = csv_table(&std::fs::read_to_string(&out).unwrap());
    assert_eq!(column(&r2, &h2, "train_loss"), column(&rows, &head, "curve_train_loss"));
    // A weight file is not a curve, and a curve is not a weight file.
    let (code, _, err) = nnc(&["line", "examples/digits_mlp.nn", "--curve", &a]);
    assert!(code == 1 && err.contains("not a curve"), "{err}");
    let (code, _, err) = nnc(&["eval", "examples/digits_mlp.nn", "--weights", &saved]);
    assert!(code == 1 && err.contains("lacks `fc1.weight`") && err.contains("nodes."), "{err}");
}
