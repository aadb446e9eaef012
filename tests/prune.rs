//! `nnc prune` (`nnc::study::prune`): pruned weights hold exactly 0 after training with
//! Adam and decoupled weight decay; the masks only shrink, by the rate asked; the survivors
//! start each level at their initial (or rewound) values; controls keep the ticket's sizes.

mod common;
use common::{csv_table, nnc, scratch};
use nnc::tensor::Tensor;
use std::collections::HashMap;
use std::path::Path;

fn load(p: &Path) -> HashMap<String, Tensor<f32>> {
    nnc::train::weights::load(p).unwrap().into_iter().collect()
}

fn prune(dir: &Path, extra: &[&str]) -> String {
    let out = dir.join("tk");
    let args = ["prune", "examples/digits_mlp.nn", "--out", out.to_str().unwrap(), "--epochs", "2"];
    let (code, said, err) = nnc(&[&args[..], extra].concat());
    assert_eq!(code, 0, "{err}");
    said
}

#[test]
fn pruned_weights_stay_zero_through_adamw_and_masks_only_shrink() {
    let dir = scratch("prune");
    let csv = dir.join("t.csv");
    let set = ["--set", "optimizer=adamw(lr = 1e-3, weight_decay = 0.1)"];
    let said = prune(
        &dir,
        &[
            &set[..],
            &["--levels", "2", "--rate", "0.5", "--global", "--csv", csv.to_str().unwrap()],
        ]
        .concat(),
    );
    assert!(said.contains("2 masked weight tensors"), "{said}");
    let tk = dir.join("tk");
    let (head, rows) = csv_table(&std::fs::read_to_string(&csv).unwrap());
    assert_eq!(head[..2], ["level", "remaining"]);
    let init0 = load(&tk.join("level-0-init.safetensors"));
    let mut previous: Option<HashMap<String, Tensor<f32>>> = None;
    for level in 1..=2 {
        let start = load(&tk.join(format!("level-{level}-init.safetensors")));
        let end = load(&tk.join(format!("level-{level}.safetensors")));
        let (mut kept, mut all) = (0usize, 0usize);
        for w in ["fc1.weight", "fc2.weight"] {
            let mask = &end[&format!("{w}_mask")];
            assert_eq!(
                mask.data,
                start[&format!("{w}_mask")].data,
                "the mask is fixed while training"
            );
            for (e, &m) in mask.data.iter().enumerate() {
                assert!(m == 0.0 || m == 1.0);
                match m == 0.0 {
                    // Exactly zero (a product with the mask's 0 may carry a minus sign).
                    true => assert_eq!(end[w].data[e], 0.0, "{w}[{e}] pruned at level {level}"),
                    // The survivors start where the dense run started.
                    false => assert_eq!(start[w].data[e], init0[w].data[e], "{w}[{e}]"),
                }
                if let Some(p) = &previous {
                    assert!(m <= p[&format!("{w}_mask")].data[e], "masks only shrink");
                }
            }
            kept += mask.data.iter().filter(|m| **m == 1.0).count();
            all += mask.data.len();
        }
        let remaining: f64 = rows[level][1].parse().unwrap();
        assert_eq!(remaining, kept as f64 / all as f64);
        assert!((remaining - 0.5f64.powi(level as i32)).abs() < 1e-3, "level {level}: {remaining}");
        // Biases are not pruned.
        assert!(end.contains_key("fc1.bias") && !end.contains_key("fc1.bias_mask"));
        previous = Some(end);
    }
}

#[test]
fn rewinding_resets_the_survivors_to_the_dense_run_at_that_step() {
    let dir = scratch("prune-rewind");
    prune(&dir, &["--levels", "1", "--rewind", "10", "--control", "random-prune"]);
    let tk = dir.join("tk");
    let at10 = load(&tk.join("rewind").join("step-0000010.safetensors"));
    let start = load(&tk.join("level-1-init.safetensors"));
    let control = load(&tk.join("level-1-control-init.safetensors"));
    for w in ["fc1.weight", "fc2.weight"] {
        let (m, cm) = (&start[&format!("{w}_mask")], &control[&format!("{w}_mask")]);
        for (e, &keep) in m.data.iter().enumerate() {
            let want = if keep == 1.0 { at10[w].data[e] } else { 0.0 };
            assert_eq!(start[w].data[e], want, "{w}[{e}]");
        }
        // The control: a random mask of the same size in each layer, the same weights.
        let count = |t: &Tensor<f32>| t.data.iter().filter(|v| **v == 1.0).count();
        assert_eq!(count(m), count(cm), "{w}");
        assert_ne!(m.data, cm.data, "{w}");
    }
}

#[test]
fn bad_requests_are_refused() {
    let dir = scratch("prune-bad");
    std::fs::write(dir.join("x"), "x").unwrap();
    let d = dir.to_str().unwrap();
    for (args, code, says) in [
        (vec!["--out", d], 1, "not empty"),
        (vec!["--out", "fresh", "--rate", "1.5"], 2, "fraction"),
        (vec!["--out", "fresh", "--global", "--output-rate", "0.1"], 2, "cannot be used"),
    ] {
        let (got, _, err) = nnc(&[&["prune", "examples/digits_mlp.nn"][..], &args].concat());
        assert_eq!(got, code, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert!(!Path::new("fresh").exists());
}

/// A level's weights are a weight file like any other: `nnc eval` reads them (compiled with
/// their masks) and gives the level's loss; `nnc train --init` trains on with the mask.
#[test]
fn eval_and_train_read_a_pruned_weight_file() {
    let dir = scratch("prune-eval");
    let csv = dir.join("t.csv");
    prune(&dir, &["--levels", "1", "--rate", "0.5", "--csv", csv.to_str().unwrap()]);
    let level = dir.join("tk").join("level-1.safetensors");
    let w = level.to_str().unwrap();
    let (code, said, err) = nnc(&["eval", "examples/digits_mlp.nn", "--weights", w]);
    assert_eq!(code, 0, "{err}");
    let (head, rows) = csv_table(&std::fs::read_to_string(&csv).unwrap());
    let loss: f64 = rows[1][head.iter().position(|h| h == "train_loss").unwrap()].parse().unwrap();
    let printed: f64 = said.split_whitespace().nth(4).unwrap().parse().unwrap();
    assert!((printed - loss).abs() <= 1e-5 * loss, "{said} vs {loss}");
    let again = dir.join("again.safetensors");
    let args = ["train", "examples/digits_mlp.nn", "--init", w, "--epochs", "1", "--quiet"];
    let (code, _, err) = nnc(&[&args[..], &["--save", again.to_str().unwrap()]].concat());
    assert_eq!(code, 0, "{err}");
    let (before, after) = (load(&level), load(&again));
    for (e, &m) in before["fc1.weight_mask"].data.iter().enumerate() {
        if m == 0.0 {
            assert_eq!(after["fc1.weight"].data[e], 0.0, "fc1.weight[{e}]");
        }
    }
    assert_eq!(after["fc1.weight_mask"].data, before["fc1.weight_mask"].data);
}
