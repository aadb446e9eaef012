//! The phenomenon examples (examples/phenomena/, phenomena 1-10 and 14 of its README): every
//! file checks and carries its header (what to run, what to look for), and the fast ones,
//! run briefly through the command line, already show their effect. Runs use the reference
//! interpreter, so they do not depend on the JIT's rounding.

use std::path::{Path, PathBuf};

use nnc::tensor::Tensor;

const DIR: &str = "examples/phenomena";

mod common;
use common::nnc;

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nnc-phenomena-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn example(rel: &str) -> String {
    format!("{DIR}/{rel}")
}

/// `nnc train FILE --backend interp --quiet ARGS...`; panics unless it succeeds.
fn train(file: &str, args: &[&str]) -> String {
    let f = example(file);
    let mut all = vec!["train", f.as_str(), "--backend", "interp", "--quiet"];
    all.extend_from_slice(args);
    let (code, out, err) = nnc(&all);
    assert_eq!(code, 0, "{file}: {err}");
    out
}

/// The CSV at `path` as a header and rows of numbers.
fn csv(path: &Path) -> (Vec<String>, Vec<Vec<f64>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(String::from).collect();
    let rows = lines.map(|l| l.split(',').map(|v| v.parse().unwrap()).collect()).collect();
    (header, rows)
}

/// The columns of the first row of a `--log-layers` file whose names start with `prefix`
/// and end with `suffix`, in file order.
fn layer_row(path: &Path, prefix: &str, suffix: &str) -> Vec<(String, f64)> {
    let (header, rows) = csv(path);
    header
        .into_iter()
        .zip(rows[0].iter().copied())
        .filter(|(n, _)| n.starts_with(prefix) && n.ends_with(suffix))
        .collect()
}

/// Runs one step with `--log-layers` and returns the layer log's path.
fn first_step_layers(file: &str, name: &str, extra: &[&str]) -> PathBuf {
    let log = tmp(&format!("{name}.csv"));
    let mut args = vec!["--steps", "1", "--log", log.to_str().unwrap(), "--log-layers"];
    args.extend_from_slice(extra);
    train(file, &args);
    tmp(&format!("{name}.layers.csv"))
}

fn files() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for d in std::fs::read_dir(DIR).unwrap() {
        let d = d.unwrap().path();
        if d.is_dir() {
            for f in std::fs::read_dir(&d).unwrap() {
                let f = f.unwrap().path();
                if f.extension().is_some_and(|x| x == "nn") {
                    out.push(f);
                }
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_phenomenon_file_checks_and_says_what_to_run() {
    let files = files();
    for n in ["01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "14"] {
        let prefix = format!("{DIR}/{n}_");
        assert!(
            files.iter().any(|f| f.to_str().unwrap().starts_with(&prefix)),
            "no example for phenomenon {n}"
        );
    }
    for f in &files {
        let (code, _, err) = nnc(&["check", f.to_str().unwrap()]);
        assert_eq!(code, 0, "{}: {err}", f.display());
        let src = std::fs::read_to_string(f).unwrap();
        for needle in ["// Phenomenon", "nnc ", "Look for"] {
            assert!(src.contains(needle), "{}: no `{needle}` in the header", f.display());
        }
    }
    let readme = std::fs::read_to_string(format!("{DIR}/README.md")).unwrap();
    for f in &files {
        let dir = f.parent().unwrap().file_name().unwrap().to_str().unwrap();
        let stem = f.file_stem().unwrap().to_str().unwrap();
        assert!(
            readme.contains(&format!("{dir}/")) && readme.contains(stem),
            "README.md does not mention {dir}/{stem}.nn"
        );
    }
}

/// Least squares (1): GD on the standardized iris regression reaches the solution of the
/// normal equations, solved here in f64.
#[test]
fn least_squares_converges_to_the_normal_equations_solution() {
    let w = tmp("ls.safetensors");
    let out = train("01_least_squares/standardized.nn", &["--save", w.to_str().unwrap()]);
    assert!(out.contains("trained 300 steps"), "{out}");
    let (header, rows) = csv(Path::new("examples/data/iris_petal_standardized.csv"));
    let label = header.iter().position(|h| h == "petal_width").unwrap();
    // A = [X 1]; solve AᵀA θ = Aᵀy by Gaussian elimination.
    let mut m = [[0.0f64; 5]; 4];
    for r in &rows {
        let mut a: Vec<f64> = (0..r.len()).filter(|&i| i != label).map(|i| r[i]).collect();
        a.push(1.0);
        for i in 0..4 {
            for j in 0..4 {
                m[i][j] += a[i] * a[j];
            }
            m[i][4] += a[i] * r[label];
        }
    }
    for k in 0..4 {
        let pivot = m[k];
        for row in m.iter_mut().skip(k + 1) {
            let f = row[k] / pivot[k];
            row.iter_mut().zip(&pivot).skip(k).for_each(|(a, p)| *a -= f * p);
        }
    }
    let mut theta = [0.0; 4];
    for i in (0..4).rev() {
        let s: f64 = (i + 1..4).map(|j| m[i][j] * theta[j]).sum();
        theta[i] = (m[i][4] - s) / m[i][i];
    }
    let got: std::collections::HashMap<String, Tensor<f32>> =
        nnc::train::weights::load(&w).unwrap().into_iter().collect();
    let mut fit: Vec<f64> = got["fit.weight"].data.iter().map(|&v| v as f64).collect();
    fit.push(got["fit.bias"].data[0] as f64);
    for (a, b) in fit.iter().zip(&theta) {
        assert!((a - b).abs() < 1e-4, "GD {fit:?} vs normal equations {theta:?}");
    }
}

/// Deep linear network (2): from a small init the loss sits at ‖A‖²_F/8 = 10.67 and then
/// drops to the next plateau, Σ_{j>1} s_j²/8 = 2.67.
#[test]
fn deep_linear_network_plateaus_then_drops() {
    let log = tmp("deep_linear.csv");
    train("02_deep_linear/small_init.nn", &["--steps", "600", "--log", log.to_str().unwrap()]);
    let (_, rows) = csv(&log);
    let loss = |step: usize| rows[step - 1][2];
    assert!((loss(1) - 10.667).abs() < 0.3 && (loss(300) - loss(1)).abs() < 0.05, "plateau");
    assert!((loss(600) - 2.667).abs() < 0.1, "second plateau: {}", loss(600));
}

/// Vanishing/exploding (3): at init, gradient norms span many orders of magnitude with
/// N(0, 1), vanish to 0 with N(0, 0.01), and stay within a small factor with Xavier.
#[test]
fn depth_50_gradient_norms_at_init() {
    let span = |name: &str| {
        let file = format!("03_vanishing/{name}.nn");
        let row = layer_row(&first_step_layers(&file, name, &[]), "grad_norm.", ".weight");
        assert_eq!(row.len(), 50, "50 Dense layers");
        let v: Vec<f64> = row.iter().map(|r| r.1).collect();
        let max = v.iter().copied().fold(0.0, f64::max);
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        (min, max)
    };
    let (min, max) = span("normal_1");
    assert!(max / min > 1e10, "N(0,1): {min} .. {max}");
    let (min, max) = span("normal_0.01");
    assert!(min == 0.0 && max > 1e-3, "N(0,0.01): {min} .. {max}");
    let (min, max) = span("xavier");
    assert!(max / min < 5.0, "Xavier: {min} .. {max}");
}

/// The 30th ReLU layer's output variance at init over the first's (phenomenon 4).
fn relu_variance_ratio(name: &str) -> f64 {
    let file = format!("04_relu_init/{name}.nn");
    let path = first_step_layers(&file, &format!("relu_{name}"), &["--batch", "32"]);
    let v = layer_row(&path, "act_var.layers.", ".fc");
    assert_eq!(v.len(), 30);
    v[29].1 / v[0].1
}

/// He init keeps a depth-30 ReLU net's activation variance (4).
#[test]
fn depth_30_relu_he_keeps_the_variance() {
    let he = relu_variance_ratio("he");
    assert!((0.25..4.0).contains(&he), "He: {he}");
}

/// Xavier init halves it at every layer: 2^-29 over 29 layers (4).
#[test]
fn depth_30_relu_xavier_halves_the_variance_per_layer() {
    let xavier = relu_variance_ratio("xavier");
    assert!(xavier > 2f64.powi(-35) && xavier < 2f64.powi(-23), "Xavier: {xavier}");
}

/// AMSGrad vs Adam on Reddi et al.'s problem (9), 20000 of the example's 100000 steps.
#[test]
fn amsgrad_goes_to_minus_one_where_adam_goes_to_plus_one() {
    let x = |name: &str| {
        let w = tmp(&format!("{name}.safetensors"));
        let file = format!("09_amsgrad/{name}.nn");
        train(&file, &["--steps", "20000", "--save", w.to_str().unwrap()]);
        nnc::train::weights::load(&w).unwrap()[0].1.data[0]
    };
    let adam = x("adam");
    let amsgrad = x("amsgrad");
    assert!(adam > 0.95, "Adam's x: {adam}");
    assert!(amsgrad < -0.9, "AMSGrad's x: {amsgrad}");
}

/// Residual nets (6) and clipping (14): the divergent runs stop at once with a NaN, the
/// fixed ones do not.
#[test]
fn divergent_runs_stop_and_their_fixes_do_not() {
    for (file, steps) in [("06_residual/residual_no_norm.nn", "3"), ("14_clipping/no_clip.nn", "6")]
    {
        let f = example(file);
        let (code, _, err) = nnc(&["train", &f, "--backend", "interp", "--steps", steps]);
        assert_eq!(code, 1, "{file} should diverge: {err}");
        assert!(err.contains("became NaN") || err.contains("became inf"), "{file}: {err}");
    }
    for file in ["06_residual/fixup.nn", "14_clipping/clip.nn"] {
        let out = train(file, &["--steps", "6"]);
        assert!(out.contains("trained 6 steps"), "{file}: {out}");
    }
}
