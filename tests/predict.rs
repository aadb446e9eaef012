//! `nnc predict` (per-example outputs in data order, checked against `nnc eval`'s accuracy
//! and the data's labels), and the commands that accept a file without an `optimizer`.

mod common;
use common::{csv_table, nnc, scratch};

/// Trains `examples/<name>.nn` briefly and returns the weights' path.
fn trained(dir: &std::path::Path, name: &str, steps: &str) -> String {
    let w = dir.join(format!("{name}.safetensors"));
    let model = format!("examples/{name}.nn");
    let (code, _, err) =
        nnc(&["train", &model, "--steps", steps, "--save", w.to_str().unwrap(), "-q"]);
    assert_eq!(code, 0, "{err}");
    w.to_str().unwrap().to_string()
}

/// The value of `what` that `nnc eval` reports for `model` with weights `w` on all of `data`.
fn evaluated(model: &str, w: &str, data: &str, what: &str) -> f64 {
    let (code, out, err) = nnc(&["eval", model, "--weights", w, "--data", data]);
    assert_eq!(code, 0, "{err}");
    let line = out.lines().find(|l| l.starts_with("all ")).unwrap_or_else(|| panic!("{out}"));
    let after = line.split(&format!(" {what} ")).nth(1).unwrap_or_else(|| panic!("{out}"));
    after.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn a_classifier_predicts_probabilities_and_the_class_in_data_order() {
    let dir = scratch("predict-iris");
    let w = trained(&dir, "iris", "200");
    let (code, out, err) = nnc(&["predict", "examples/iris.nn", "--weights", &w]);
    assert_eq!(code, 0, "{err}");
    let (header, rows) = csv_table(&out);
    assert_eq!(header, ["index", "prob_0", "prob_1", "prob_2", "class", "label"]);
    let data = std::fs::read_to_string("examples/data/iris.csv").unwrap();
    let labels: Vec<&str> = data.lines().skip(1).map(|l| l.rsplit(',').next().unwrap()).collect();
    assert_eq!(rows.len(), labels.len());
    let mut right = 0;
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row[0], i.to_string(), "data order");
        let p: Vec<f64> = row[1..4].iter().map(|v| v.parse().unwrap()).collect();
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-5, "{row:?}");
        let best = (0..3).fold(0, |b, j| if p[j] > p[b] { j } else { b });
        assert_eq!(row[4], best.to_string(), "{row:?}");
        assert_eq!(row[5], labels[i]);
        right += (row[4] == row[5]) as usize;
    }
    // The oracle: `nnc eval` of the same weights on the whole file, through the
    // evaluation graph.
    let accuracy = evaluated("examples/iris.nn", &w, "examples/data/iris.csv", "accuracy");
    assert!((right as f64 / rows.len() as f64 - accuracy).abs() < 1e-6, "{right} vs {out}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn data_without_the_label_column_is_predicted_alike() {
    let dir = scratch("predict-unlabelled");
    let w = trained(&dir, "iris", "20");
    let data = std::fs::read_to_string("examples/data/iris.csv").unwrap();
    let features: String =
        data.lines().map(|l| l.rsplit_once(',').unwrap().0.to_string() + "\n").collect();
    let csv = dir.join("features.csv");
    std::fs::write(&csv, features).unwrap();
    let out = dir.join("p.csv");
    let (o, c) = (out.to_str().unwrap(), csv.to_str().unwrap());
    let (code, said, err) =
        nnc(&["predict", "examples/iris.nn", "--weights", &w, "--data", c, "--out", o]);
    assert_eq!(code, 0, "{err}");
    assert!(said.contains("wrote 150 predictions"), "{said}");
    let (_, whole, _) = nnc(&["predict", "examples/iris.nn", "--weights", &w]);
    // Each line without its last cell, the label.
    let labelled: Vec<&str> = whole.lines().map(|l| l.rsplit_once(',').unwrap().0).collect();
    let unlabelled = std::fs::read_to_string(&out).unwrap();
    let unlabelled: Vec<&str> = unlabelled.lines().collect();
    assert_eq!(unlabelled, labelled, "the same predictions, without the label column");
    // The batch the data is cut into changes nothing.
    let (_, batched, _) = nnc(&["predict", "examples/iris.nn", "--weights", &w, "--batch", "7"]);
    assert_eq!(batched, whole);
    // --out never overwrites an input.
    let (code, _, err) = nnc(&["predict", "examples/iris.nn", "--weights", &w, "--out", &w]);
    assert!(code == 1 && err.contains("--weights"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_regression_predicts_values() {
    let dir = scratch("predict-regression");
    let w = trained(&dir, "linear_regression", "50");
    let (code, out, err) = nnc(&["predict", "examples/linear_regression.nn", "--weights", &w]);
    assert_eq!(code, 0, "{err}");
    let (header, rows) = csv_table(&out);
    assert_eq!(header, ["index", "value", "label"]);
    // The mean squared error of the predictions is the loss `nnc eval` reports.
    let mse: f64 = rows
        .iter()
        .map(|r| (r[1].parse::<f64>().unwrap() - r[2].parse::<f64>().unwrap()).powi(2))
        .sum::<f64>()
        / rows.len() as f64;
    let loss =
        evaluated("examples/linear_regression.nn", &w, "examples/data/iris_petal.csv", "loss");
    assert!((mse - loss).abs() <= 1e-5 * loss.max(1e-3), "{mse} vs {loss}");
    std::fs::remove_dir_all(&dir).ok();
}

/// check, eval, predict and grad need no optimizer; train says it needs one.
#[test]
fn a_file_without_an_optimizer_is_evaluated_not_trained() {
    let dir = scratch("predict-no-optimizer");
    let w = trained(&dir, "iris", "10");
    let src = std::fs::read_to_string("examples/iris.nn").unwrap();
    let kept: String =
        src.lines().filter(|l| !l.starts_with("optimizer")).map(|l| format!("{l}\n")).collect();
    let data = std::path::Path::new("examples/data").canonicalize().unwrap();
    let kept = kept.replace("\"data/iris.csv\"", &format!("\"{}/iris.csv\"", data.display()));
    let model = dir.join("no_optimizer.nn");
    std::fs::write(&model, kept).unwrap();
    let m = model.to_str().unwrap();
    let g = dir.join("g.safetensors");
    let runs: [&[&str]; 4] = [
        &["check", m],
        &["eval", m, "--weights", &w],
        &["predict", m, "--weights", &w],
        &["grad", m, "--weights", &w, "--out", g.to_str().unwrap()],
    ];
    for args in runs {
        let (code, _, err) = nnc(args);
        assert_eq!(code, 0, "{args:?}: {err}");
    }
    let (code, _, err) = nnc(&["train", m]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no `optimizer` for this model"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
