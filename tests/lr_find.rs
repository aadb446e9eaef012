//! `nnc lr-find`: the rates are the exponential ramp from --min to --max, the losses are
//! those of training with that ramp, the printed reading agrees with the written curve, and
//! the picture holds it.

mod common;
use common::{csv_table, nnc, polylines, scratch};

#[test]
fn the_range_test_ramps_the_rate_and_reads_the_curve() {
    let dir = scratch("lr-find");
    let (csv, svg) = (dir.join("lr.csv"), dir.join("lr.svg"));
    let (c, s) = (csv.to_str().unwrap(), svg.to_str().unwrap());
    let args = ["lr-find", "examples/digits_mlp.nn", "--min", "1e-6", "--max", "3", "--out", c];
    let (code, said, err) = nnc(&[&args[..], &["--plot", s]].concat());
    assert_eq!(code, 0, "{err}");
    assert!(said.contains("lr range test: 100 steps, lr 1e-6 to 3.0"), "{said}");
    let (head, rows) = csv_table(&std::fs::read_to_string(&csv).unwrap());
    assert_eq!(head, ["step", "lr", "loss", "smoothed_loss"]);
    assert_eq!(rows.len(), 100, "one epoch of 45 batches is less than 100 steps");
    let num = |r: &Vec<String>, i: usize| r[i].parse::<f64>().unwrap();
    let gamma = (3.0f64 / 1e-6).powf(1.0 / 99.0);
    for (t, r) in rows.iter().enumerate() {
        let want = 1e-6 * gamma.powi(t as i32);
        assert!((num(r, 1) / want - 1.0).abs() < 1e-9, "step {}: lr {} vs {want}", t + 1, r[1]);
    }
    // The losses are those of `nnc train` with the same ramp.
    let log = dir.join("ramp.csv");
    let ramp = format!("schedule=exponential(gamma = {gamma})");
    let (code, _, err) = nnc(&[
        "train",
        "examples/digits_mlp.nn",
        "--set",
        "optimizer.lr=1e-6",
        "--set",
        &ramp,
        "--steps",
        "100",
        "--allow-nonfinite",
        "--log",
        log.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let (_, trained) = csv_table(&std::fs::read_to_string(&log).unwrap());
    let losses: Vec<&String> = trained.iter().map(|r| &r[2]).collect();
    assert_eq!(rows.iter().map(|r| &r[2]).collect::<Vec<_>>(), losses);
    // The reading printed is the written curve's minimum, below where it started.
    let smoothed: Vec<(f64, f64)> =
        rows.iter().filter(|r| !r[3].is_empty()).map(|r| (num(r, 1), num(r, 3))).collect();
    let min =
        smoothed.iter().copied().fold((0.0, f64::INFINITY), |a, b| if b.1 < a.1 { b } else { a });
    assert!(min.1 < smoothed[0].1 * 0.9, "{min:?}");
    let line = said.lines().find(|l| l.starts_with("lowest smoothed loss")).unwrap();
    let lr: f64 =
        line.split(" at lr ").nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap();
    assert!((lr / min.0 - 1.0).abs() < 1e-3, "{line} vs {min:?}");
    let longest = polylines(&std::fs::read_to_string(&svg).unwrap(), None);
    assert_eq!(longest.first(), Some(&smoothed.len()));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_ranges_and_second_order_optimizers_are_refused() {
    let (code, _, err) = nnc(&["lr-find", "examples/iris.nn", "--min", "1", "--max", "0.1"]);
    assert!(code == 1 && err.contains("0 < min < max"), "{err}");
    let (code, _, err) = nnc(&["lr-find", "examples/lbfgs.nn"]);
    assert!(code == 1 && err.contains("first-order"), "{err}");
}

#[test]
fn steps_set_the_length_of_the_ramp() {
    let dir = scratch("lr-find-steps");
    let csv = dir.join("lr.csv");
    let (code, said, err) =
        nnc(&["lr-find", "examples/iris.nn", "--steps", "30", "--out", csv.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(said.contains("30 steps, lr 1e-7 to 10.0"), "{said}");
    let (_, rows) = csv_table(&std::fs::read_to_string(&csv).unwrap());
    assert_eq!(rows.len(), 30);
    assert!((rows[29][1].parse::<f64>().unwrap() / 10.0 - 1.0).abs() < 1e-9, "{:?}", rows[29]);
    std::fs::remove_dir_all(&dir).ok();
}
