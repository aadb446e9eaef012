//! `nnc line` and what it rests on (`nnc::study`): the line at t = 0 and 1 is `nnc eval` of
//! the endpoints; batch norm's recomputed statistics are the data's, computed here in f64;
//! the CSV and the picture hold one point per t; bad requests are refused before any work.

mod common;
use common::{csv_table, differential::noise, digits_weights, nnc, polylines, scratch};
use nnc::pipeline::{compile_with, CompileOptions};
use nnc::study::bn;
use nnc::tensor::Tensor;
use nnc::train::data::Dataset;
use nnc::train::session::{self, BackendKind};

/// `nnc eval`'s values: the loss and accuracy of the train and validation lines.
fn eval(w: &str) -> Vec<f64> {
    let (code, said, err) = nnc(&["eval", "examples/digits_mlp.nn", "--weights", w]);
    assert_eq!(code, 0, "{err}");
    let words: Vec<&str> = said.split_whitespace().collect();
    let after = |i: usize| words[i + 1].parse::<f64>().unwrap();
    words
        .iter()
        .enumerate()
        .filter(|(_, w)| ["loss", "accuracy"].contains(w))
        .map(|(i, _)| after(i))
        .collect()
}

#[test]
fn the_line_at_its_ends_is_eval_of_the_endpoints() {
    let dir = scratch("line");
    let (a, b) = (digits_weights(&dir, "1"), digits_weights(&dir, "2"));
    let (csv, svg) = (dir.join("line.csv"), dir.join("line.svg"));
    let (c, s) = (csv.to_str().unwrap(), svg.to_str().unwrap());
    let args = ["line", "examples/digits_mlp.nn", "--from", &a, "--to", &b, "--points", "5"];
    let (code, said, err) =
        nnc(&[&args[..], &["--extend", "0.5", "--out", c, "--plot", s]].concat());
    assert_eq!(code, 0, "{err}");
    assert!(said.contains("5 points on [0, 1] and 2 beyond each end"), "{said}");
    let (head, rows) = csv_table(&std::fs::read_to_string(&csv).unwrap());
    let want = ["t", "train_loss", "train_accuracy", "validation_loss", "validation_accuracy"];
    assert_eq!(head, want);
    let ts: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(ts, ["-0.5", "-0.25", "0.0", "0.25", "0.5", "0.75", "1.0", "1.25", "1.5"]);
    // `nnc eval` runs the interpreter and prints 6 significant digits; the line the JIT.
    for (row, w) in [(&rows[2], &a), (&rows[6], &b)] {
        let line: Vec<f64> = row[1..].iter().map(|v| v.parse().unwrap()).collect();
        for (x, y) in line.iter().zip(eval(w)) {
            assert!((x - y).abs() <= 2e-5 * y.abs().max(1e-3), "{row:?} vs eval of {w}: {y}");
        }
    }
    // The table's barrier is the CSV's: the highest train loss on [0, 1] above the ends' mean.
    let loss = |i: usize| rows[i][1].parse::<f64>().unwrap();
    let max = (2..=6).map(loss).fold(f64::MIN, f64::max);
    let height = max - (loss(2) + loss(6)) / 2.0;
    let printed = said.lines().find(|l| l.trim_start().starts_with("train loss")).unwrap();
    let last: f64 = printed.split_whitespace().last().unwrap().parse().unwrap();
    assert!((last - height).abs() <= 1e-4 * height.abs().max(1e-3), "{printed} vs {height}");
    // Two curves (train and validation loss) of one vertex per point.
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert_eq!(polylines(&svg, None)[..2], [9, 9]);
}

#[test]
fn bad_requests_are_refused_before_any_work() {
    let dir = scratch("line-bad");
    let a = digits_weights(&dir, "1");
    let missing = dir.join("none.safetensors");
    let m = missing.to_str().unwrap();
    let out = dir.join("out.csv");
    let o = out.to_str().unwrap();
    let base = ["line", "examples/digits_mlp.nn", "--from", &a];
    let cases: [(&[&str], i32, &str); 4] = [
        (&["--to", m], 1, "none.safetensors"),
        (&["--to", &a, "--out", &a], 1, "--out"),
        (&["--to", &a, "--points", "1"], 2, "at least 2"),
        (&["--to", &a, "--extend", "11"], 2, "from 0 to 10"),
    ];
    for (extra, want, says) in cases {
        let (code, _, err) = nnc(&[&base[..], extra].concat());
        assert_eq!(code, want, "{extra:?}: {err}");
        assert!(err.contains(says), "{extra:?}: {err}");
    }
    assert!(!out.exists() && std::fs::metadata(&a).unwrap().len() > 0, "{o} untouched");
}

const BN_MODEL: &str = "
model Bn {
    input x: [B, 3]
    label y: class[B] of 2
    bn = BatchNorm(3, momentum = 0.3)
    fc = Dense(3 -> 2)
    loss = cross_entropy(fc(bn(x)), y)
}
optimizer adam(lr = 0.1)
";

/// Batch norm's recomputed statistics are the size-weighted mean of each batch's mean and
/// unbiased variance, computed here in f64 from the data (the batch norm reads the input).
#[test]
fn recomputed_batch_norm_statistics_are_the_datas() {
    let c = compile_with(BN_MODEL, &CompileOptions::default()).unwrap();
    let (n, f, batch) = (30usize, 3usize, 7usize);
    let x: Vec<f32> =
        (0..n * f).map(|i| 2.0 + 3.0 * noise(5, i as u64) * (1 + i % f) as f32).collect();
    let y: Vec<f32> = (0..n).map(|i| (i % 2) as f32).collect();
    let ds = Dataset { x: Tensor::new(vec![n, f], x.clone()), y: Tensor::new(vec![n], y) };
    let (mut mean, mut var) = (vec![0.0f64; f], vec![0.0f64; f]);
    for start in (0..n).step_by(batch) {
        let rows = start..(start + batch).min(n);
        let m = rows.len() as f64;
        for j in 0..f {
            let col: Vec<f64> = rows.clone().map(|i| x[i * f + j] as f64).collect();
            let mu = col.iter().sum::<f64>() / m;
            let unbiased = col.iter().map(|v| (v - mu).powi(2)).sum::<f64>() / (m - 1.0);
            mean[j] += mu * m / n as f64;
            var[j] += unbiased * m / n as f64;
        }
    }
    for kind in [BackendKind::Interp, BackendKind::Jit { threads: 1 }] {
        let w = session::initial_weights(&c.model, 1, None).unwrap();
        let mut be = session::backend_with(kind, &c, w.clone()).unwrap();
        let states = be.states();
        let got = bn::recompute(&c.model, be.as_mut(), &w, &ds, batch).unwrap();
        assert_eq!(got.params, w.params, "{kind:?}: the parameters do not move");
        assert_eq!(be.params(), w.params, "{kind:?}");
        assert_eq!(be.states()[3..], states[3..], "{kind:?}: the optimizer state is kept");
        assert_eq!(be.buffers().unwrap(), got.buffers, "{kind:?}");
        for (j, (m, v)) in mean.iter().zip(&var).enumerate() {
            let (gm, gv) = (got.buffers[0].data[j] as f64, got.buffers[1].data[j] as f64);
            assert!((gm - m).abs() < 1e-5 * m.abs().max(1.0), "{kind:?} mean {j}: {gm} vs {m}");
            assert!((gv - v).abs() < 1e-5 * v.abs().max(1.0), "{kind:?} var {j}: {gv} vs {v}");
        }
        assert_eq!(got.buffers[2].data, [5.0], "{kind:?}: five batches");
    }
}

/// `split_seed` holds out the same examples whatever `--seed` says (so two solutions of
/// different seeds can be compared on one validation split); without it the seed decides.
#[test]
fn split_seed_fixes_the_validation_split_across_seeds() {
    let dir = scratch("line-split");
    let a = digits_weights(&dir, "1");
    let val = |extra: &[&str]| {
        let args = ["eval", "examples/digits_mlp.nn", "--weights", &a];
        let (code, said, err) = nnc(&[&args[..], extra].concat());
        assert_eq!(code, 0, "{err}");
        said.lines().find(|l| l.starts_with("validation")).unwrap().to_string()
    };
    let fixed = |seed: &str| val(&["--seed", seed, "--set", "train.split_seed=7"]);
    assert_eq!(fixed("1"), fixed("2"));
    assert_ne!(val(&["--seed", "1"]), val(&["--seed", "2"]));
    assert_eq!(val(&["--seed", "7"]), fixed("3"));
}
