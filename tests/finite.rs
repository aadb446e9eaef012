//! Finite or fail: the first step that makes the loss or a parameter non-finite stops
//! training with exit 1, naming the step, the parameter, and the graph node and source line
//! where the non-finite values start; the last checkpoint stays finite and is named; nothing
//! non-finite is saved. `--allow-nonfinite` trains on.

use std::path::{Path, PathBuf};

mod common;
use common::nnc;

/// sqrt's gradient at 0 is infinite and relu's is 0 there: once a unit of fc1 is switched
/// off, fc1's gradient is NaN while the loss stays finite (at step 11 with this seed).
const SQRT: &str = "
model M {
    input x: [B, 2]
    label y: class[B] of 2
    fc1 = Dense(2 -> 8, init = zeros, bias_init = ones)
    fc2 = Dense(8 -> 2)
    h = sqrt(relu(fc1(x)))
    logits = fc2(h)
    loss = cross_entropy(logits, y)
}
optimizer sgd(lr = 0.5)
train { data = moons(n = 100), batch = 10, seed = 1 }
";

/// exp overflows: after step 4 the weights are finite but the loss on the data is not, and
/// step 5's loss is NaN.
const EXP: &str = "
model M {
    input x: [B, 2]
    label y: class[B] of 2
    fc1 = Dense(2 -> 16)
    fc2 = Dense(16 -> 2)
    logits = fc2(exp(fc1(x)))
    loss = cross_entropy(logits, y)
}
optimizer sgd(lr = 5)
train { data = moons(n = 100), batch = 10, seed = 1 }
";

fn scratch(name: &str, model: &str) -> (PathBuf, PathBuf) {
    let d = std::env::temp_dir().join(format!("nnc-finite-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let file = d.join("m.nn");
    std::fs::write(&file, model).unwrap();
    (d, file)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_parameter_that_becomes_nan_midway_is_named_with_its_source_line() {
    for backend in ["jit", "interp"] {
        let (dir, file) = scratch(&format!("mid-{backend}"), SQRT);
        let (ck, w) = (dir.join("ck"), dir.join("w.safetensors"));
        let (code, _, err) = nnc(&[
            "train",
            s(&file),
            "--steps",
            "300",
            "--backend",
            backend,
            "--checkpoint",
            s(&ck),
            "--checkpoint-every",
            "5",
            "--save",
            s(&w),
        ]);
        assert_eq!(code, 1, "{backend}: {err}");
        assert!(
            err.contains("parameter `fc1.weight` at [5, 0] became NaN at step 11 (epoch 2)"),
            "{err}"
        );
        // The first non-finite value: sqrt's derivative at 0, in the backward of line 7.
        assert!(err.contains("is inf") && err.contains("line 7, grad of"), "{err}");
        assert!(err.contains("7 | h = sqrt(relu(fc1(x)))"), "{err}");
        assert!(err.contains("the last finite checkpoint:") && err.contains("(step 10)"), "{err}");
        assert!(!w.exists(), "{backend}: weights were saved");
        // The checkpoint kept is finite and resumes (to fail at the same step again).
        let (code, shown, e) = nnc(&["weights", s(&ck.join("checkpoint.safetensors")), "--all"]);
        assert_eq!(code, 0, "{e}");
        assert!(!shown.contains("NaN") && !shown.contains("inf"), "{shown}");
        let (code, _, err) = nnc(&["train", s(&file), "--steps", "300", "--resume", s(&ck)]);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("became NaN at step 11"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_parameter_that_becomes_nan_on_the_last_step_is_caught() {
    let (dir, file) = scratch("last", SQRT);
    let w = dir.join("w.safetensors");
    let (code, _, err) = nnc(&["train", s(&file), "--steps", "11", "--save", s(&w)]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("parameter `fc1.weight` at [5, 0] became NaN at step 11"), "{err}");
    assert!(err.contains("no checkpoint was written"), "{err}");
    assert!(!w.exists());
    // One step earlier all is finite.
    let (code, _, err) = nnc(&["train", s(&file), "--steps", "10", "--save", s(&w)]);
    assert_eq!(code, 0, "{err}");
    assert!(w.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_non_finite_loss_is_located_in_the_forward_pass() {
    let (dir, file) = scratch("loss", EXP);
    let (code, _, err) = nnc(&["train", s(&file), "--steps", "100"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("the loss became NaN at step 5"), "{err}");
    assert!(err.contains("= exp ") && err.contains("(line 7)"), "{err}");
    // Stopped after step 4: the weights are finite, their loss on the data is not.
    let w = dir.join("w.safetensors");
    let (code, _, err) = nnc(&["train", s(&file), "--steps", "4", "--save", s(&w)]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("the training loss of the trained weights became"), "{err}");
    assert!(err.contains("= exp ") && err.contains("7 | logits = fc2(exp(fc1(x)))"), "{err}");
    assert!(!w.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn allow_nonfinite_trains_on_but_never_saves_nan() {
    let (dir, file) = scratch("allow", SQRT);
    let (log, w) = (dir.join("log.csv"), dir.join("w.safetensors"));
    let args = ["train", s(&file), "--steps", "20", "--allow-nonfinite", "--log", s(&log)];
    let (code, out, err) = nnc(&args);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("trained 20 steps"), "{out}");
    let rows = std::fs::read_to_string(&log).unwrap();
    assert!(rows.lines().last().unwrap().starts_with("20,2,NaN"), "{rows}");
    let mut with_save = args.to_vec();
    with_save.extend(["--save", s(&w)]);
    let (code, _, err) = nnc(&with_save);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not saving") && err.contains("NaN"), "{err}");
    assert!(!w.exists());
    // The step graph checks every parameter: one `nonfinite` output each.
    let (_, ir, _) = nnc(&["ir", s(&file), "--stage", "opt"]);
    assert!(ir.contains("output nonfinite.fc1.weight"), "{ir}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--checkpoint-every Nepochs` writes at the end of every N-th epoch (10 batches each
/// here): the run that fails at step 11 keeps the checkpoint of step 10 with `1epochs`, and
/// none with `2epochs`.
#[test]
fn epoch_checkpoints_are_written_at_epoch_ends() {
    let (dir, file) = scratch("epochs", SQRT);
    for (every, want) in [("1epochs", "(step 10)"), ("2epochs", "no checkpoint was written")] {
        let ck = dir.join(every);
        let args = [
            "train",
            s(&file),
            "--steps",
            "30",
            "--checkpoint",
            s(&ck),
            "--checkpoint-every",
            every,
        ];
        let (code, _, err) = nnc(&args);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("became NaN at step 11") && err.contains(want), "{every}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
