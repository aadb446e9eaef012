//! `nnc sweep`: every combination runs exactly as the single run with the same settings
//! would (the oracle), the tables' means are the runs' means, the curves hold one series per
//! setting, divergence is a result, and a bad value is refused at its flag before any run.

mod common;
use common::{csv_table, nnc, polylines, scratch};

/// The values after `train ` in a training run's summary.
fn train_line(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("train "))
        .unwrap_or_else(|| panic!("{out}"))
        .trim()
        .to_string()
}

#[test]
fn a_grid_of_settings_and_seeds_runs_as_single_runs_would() {
    let dir = scratch("sweep-grid");
    let out = dir.join("lr");
    let o = out.to_str().unwrap();
    let args = ["sweep", "examples/iris.nn", "--set", "optimizer.lr=0.01,0.03", "--seeds", "2"];
    let (code, said, err) = nnc(&[&args[..], &["--steps", "30", "--out", o]].concat());
    assert_eq!(code, 0, "{err}");
    assert!(said.contains("2 settings x 2 seeds = 4 runs"), "{said}");
    let (head_runs, runs) = csv_table(&std::fs::read_to_string(out.join("runs.csv")).unwrap());
    assert_eq!(head_runs[..4], ["optimizer.lr", "seed", "status", "loss"]);
    assert_eq!(runs.len(), 4);
    // Run 4 (lr 0.03, seed 3) is the run `nnc train` makes with those settings.
    let (code, single, err) = nnc(&[
        "train",
        "examples/iris.nn",
        "--set",
        "optimizer.lr=0.03",
        "--seed",
        "3",
        "--steps",
        "30",
    ]);
    assert_eq!(code, 0, "{err}");
    let r = &runs[3];
    assert_eq!((r[0].as_str(), r[1].as_str(), r[2].as_str()), ("0.03", "3", "ok"));
    let loss: f64 = r[3].parse().unwrap();
    let want: f64 = train_line(&single).split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!((loss - want).abs() <= 5e-7 * want.max(1.0), "{loss} vs {single}");
    // The summary's mean over seeds is the mean of the runs.
    let (head, summary) = csv_table(&std::fs::read_to_string(out.join("summary.csv")).unwrap());
    assert_eq!(head[..5], ["optimizer.lr", "runs", "diverged", "loss_mean", "loss_sd"]);
    assert_eq!(summary.len(), 2);
    let mean = (runs[2][3].parse::<f64>().unwrap() + loss) / 2.0;
    let got: f64 = summary[1][3].parse().unwrap();
    assert!((got - mean).abs() <= 1e-6 * mean, "{got} vs {mean}");
    // The best columns, from run 4's own log: the lowest epoch mean of the training loss,
    // and the validation accuracy where the validation loss is lowest.
    let at = |name: &str| head_runs.iter().position(|c| c == name).unwrap();
    let (lh, log) = csv_table(&std::fs::read_to_string(out.join(&r[at("log")])).unwrap());
    let col = |name: &str| lh.iter().position(|c| c == name).unwrap();
    let mut means: Vec<(String, f64, f64)> = Vec::new();
    for row in &log {
        let l: f64 = row[col("loss")].parse().unwrap();
        match means.last_mut() {
            Some(m) if m.0 == row[col("epoch")] => (m.1, m.2) = (m.1 + l, m.2 + 1.0),
            _ => means.push((row[col("epoch")].clone(), l, 1.0)),
        }
    }
    let best_loss = means.iter().map(|m| m.1 / m.2).fold(f64::INFINITY, f64::min);
    let got: f64 = r[at("best_loss")].parse().unwrap();
    assert!((got - best_loss).abs() <= 1e-6 * best_loss, "{got} vs {best_loss}");
    let ends: Vec<&Vec<String>> =
        log.iter().filter(|row| !row[col("val_loss")].is_empty()).collect();
    let best = ends
        .iter()
        .min_by(|a, b| {
            a[col("val_loss")]
                .parse::<f64>()
                .unwrap()
                .total_cmp(&b[col("val_loss")].parse().unwrap())
        })
        .unwrap();
    assert_eq!(r[at("best_val_loss")], best[col("val_loss")]);
    assert_eq!(r[at("best_val_accuracy")], best[col("val_accuracy")]);
    // One log per run; a curve per setting of one point per step.
    let logs = std::fs::read_dir(&out).unwrap().filter(|e| {
        let n = e.as_ref().unwrap().file_name();
        n.to_string_lossy().contains("-seed=")
    });
    assert_eq!(logs.count(), 4);
    let svg = std::fs::read_to_string(out.join("curves.svg")).unwrap();
    let curves = polylines(&svg, None).into_iter().filter(|&n| n == 30).count();
    assert_eq!(curves, 2, "two curves of 30 steps");
    // The folder now holds a sweep: a second one is refused.
    let (code, _, err) = nnc(&[&args[..], &["--out", o]].concat());
    assert!(code == 1 && err.contains("not empty"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn divergence_is_a_result_and_bad_values_are_refused_before_any_run() {
    let dir = scratch("sweep-diverge");
    let out = dir.join("s");
    let o = out.to_str().unwrap();
    let (code, said, err) = nnc(&[
        "sweep",
        "examples/iris.nn",
        "--set",
        "optimizer.lr=0.01,1e30",
        "--steps",
        "10",
        "--out",
        o,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(said.contains("optimizer.lr=1e30 seed 2: diverged at step"), "{said}");
    let (_, runs) = csv_table(&std::fs::read_to_string(out.join("runs.csv")).unwrap());
    assert!(runs[1][2].starts_with("diverged at step"), "{runs:?}");
    let bad = dir.join("bad");
    let (code, _, err) = nnc(&[
        "sweep",
        "examples/iris.nn",
        "--set",
        "optimizer.lr=0.01,-1",
        "--out",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("command line:1:20") && err.contains("out of range"), "{err}");
    assert!(!bad.exists(), "nothing is written before every setting checks");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn one_job_at_a_time_and_epochs_per_run() {
    let dir = scratch("sweep-jobs");
    let out = dir.join("s");
    let (code, said, err) = nnc(&[
        "sweep",
        "examples/iris.nn",
        "--set",
        "optimizer.lr=0.01,0.02",
        "--jobs",
        "1",
        "--epochs",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(said.contains("2 runs, 1 at a time"), "{said}");
    for name in ["01-optimizer.lr=0.01-seed=2.csv", "02-optimizer.lr=0.02-seed=2.csv"] {
        let (_, rows) = csv_table(&std::fs::read_to_string(out.join(name)).unwrap());
        assert_eq!(rows.len(), 8, "{name}: one epoch of 8 batches");
    }
    std::fs::remove_dir_all(&dir).ok();
}
