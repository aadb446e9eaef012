//! End-to-end training through the command line: the examples reach the losses and
//! accuracies their headers promise, logs and weight files follow the contracts, and
//! `nnc grad` (JIT and interpreter) writes gradients equal to central finite differences.

use std::path::PathBuf;

mod common;
use common::nnc;

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nnc-training-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// The value after `key` on the line starting with `line`, e.g. ("validation", "accuracy").
fn metric(stdout: &str, line: &str, key: &str) -> f64 {
    let l = stdout
        .lines()
        .find(|l| l.starts_with(line))
        .unwrap_or_else(|| panic!("no `{line}` line in {stdout}"));
    let words: Vec<&str> = l.split_whitespace().collect();
    let i = words.iter().position(|w| *w == key).unwrap_or_else(|| panic!("no {key} in {l}"));
    words[i + 1].parse().unwrap()
}

#[test]
fn xor_trains_below_0_01() {
    let (code, out, err) = nnc(&["train", "examples/xor.nn", "--backend", "interp"]);
    assert_eq!(code, 0, "{err}");
    let loss = metric(&out, "train ", "loss");
    assert!(loss < 0.01, "xor final loss {loss}\n{out}");
}

#[test]
fn digits_mlp_reaches_95_percent_validation_accuracy() {
    let (code, out, err) = nnc(&["train", "examples/digits_mlp.nn", "--backend", "interp"]);
    assert_eq!(code, 0, "{err}");
    let acc = metric(&out, "validation", "accuracy");
    assert!(acc >= 0.95, "digits validation accuracy {acc}\n{out}");
}

#[test]
fn log_has_one_row_per_step_and_weights_round_trip() {
    let log = tmp("iris.csv");
    let w = tmp("iris.safetensors");
    let (code, trained, err) = nnc(&[
        "train",
        "examples/iris.nn",
        "--steps",
        "25",
        "--log",
        log.to_str().unwrap(),
        "--save",
        w.to_str().unwrap(),
        "--seed",
        "3",
    ]);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "step,epoch,loss,lr,accuracy,val_loss,val_accuracy,time_s");
    assert_eq!(lines.len(), 26);
    assert!(lines[25].starts_with("25,"), "{}", lines[25]);
    // Validation columns in the rows that end an epoch (8 steps each, and the last step),
    // empty elsewhere; the wall time in every row.
    for (i, line) in lines[1..].iter().enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        let (step, val) = (i + 1, &cells[5..7]);
        let ends = step % 8 == 0 || step == 25;
        assert!(val.iter().all(|v| v.parse::<f32>().is_ok() == ends), "row {step}: {line}");
        assert!(cells[7].parse::<f64>().is_ok_and(|t| t >= 0.0), "{line}");
    }
    // Evaluating the saved weights on the same split (same seed) reports what training
    // reported at its end, per split.
    let ws = w.to_str().unwrap();
    let (code, out, err) = nnc(&["eval", "examples/iris.nn", "--weights", ws, "--seed", "3"]);
    assert_eq!(code, 0, "{err}");
    for part in ["train", "validation"] {
        let values = |text: &str, sep: &str| {
            let line = text.lines().find(|l| l.starts_with(&format!("{part} "))).unwrap_or("");
            line.split_once(sep).map(|(_, v)| v.trim().to_string())
        };
        let evaluated = values(&out, "examples");
        assert!(evaluated.as_ref().is_some_and(|v| v.contains("accuracy")), "{out}");
        assert_eq!(evaluated, values(&trained, part), "{out}\n{trained}");
    }
    // Starting from them again is accepted.
    let (code, _, err) =
        nnc(&["train", "examples/iris.nn", "--steps", "1", "--init", w.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
}

/// `--every N` prints the first, every N-th and the last epoch, and the example counts.
#[test]
fn every_n_epochs_and_the_counts_are_printed() {
    let (code, _, err) = nnc(&["train", "examples/iris.nn", "--epochs", "7", "--every", "3"]);
    assert_eq!(code, 0, "{err}");
    let epochs: Vec<&str> = err
        .lines()
        .filter_map(|l| l.strip_prefix("epoch "))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(epochs, ["1", "3", "6", "7"], "{err}");
    assert!(err.contains("data: 120 training examples, 30 validation, batch 16"), "{err}");
    // The engine and its threads: by default the machine's cores.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads =
        if cores == 1 { "jit: 1 thread".into() } else { format!("jit: up to {cores} threads") };
    assert!(err.contains(&threads), "{err}");
    let (_, _, err) = nnc(&["train", "examples/iris.nn", "--steps", "1", "--threads", "1"]);
    assert!(err.contains("jit: 1 thread\n"), "{err}");
    let (code, _, err) = nnc(&["train", "examples/iris.nn", "--every", "0"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn training_is_deterministic_from_the_seed() {
    let run = || nnc(&["train", "examples/spirals.nn", "--steps", "30", "--seed", "9"]).1;
    assert_eq!(run(), run());
}

#[test]
fn bad_weights_file_is_a_clean_error() {
    let w = tmp("garbage.safetensors");
    std::fs::write(&w, b"not a safetensors file").unwrap();
    let (code, _, err) = nnc(&["eval", "examples/iris.nn", "--weights", w.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.starts_with("error"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn grad_equals_finite_differences() {
    let w = tmp("grad-w.safetensors");
    let (code, _, err) =
        nnc(&["train", "examples/spirals.nn", "--steps", "5", "--save", w.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    for backend in ["jit", "interp"] {
        let gpath = tmp(&format!("grad-g-{backend}.safetensors"));
        let (code, _, err) = nnc(&[
            "grad",
            "examples/spirals.nn",
            "--weights",
            w.to_str().unwrap(),
            "--out",
            gpath.to_str().unwrap(),
            "--batch",
            "8",
            "--backend",
            backend,
        ]);
        assert_eq!(code, 0, "{err}");
        grads_equal_finite_differences(&w, &gpath, backend);
    }
}

fn grads_equal_finite_differences(w: &std::path::Path, gpath: &std::path::Path, backend: &str) {
    use nnc::graph::eval::{eval, Env};
    // The loss on the first 8 examples in data order, in f64, as a function of the weights.
    let src = std::fs::read_to_string("examples/spirals.nn").unwrap();
    let c = nnc::pipeline::compile(&src).unwrap();
    let names: Vec<(String, Vec<usize>)> =
        c.model.params.iter().map(|p| (p.name.clone(), p.shape.clone())).collect();
    let grads = nnc::train::weights::load_into(gpath, &names).unwrap().tensors;
    let weights = nnc::train::weights::load_into(w, &names).unwrap().tensors;
    let spec = nnc::train::session::effective_spec(&c.model, &Default::default());
    let ds =
        nnc::train::session::load_data(&c.model, &spec, std::path::Path::new("examples"), None)
            .unwrap();
    let (x, y) = nnc::train::data::batch(&ds, &(0..8).collect::<Vec<_>>());
    let inputs: Vec<_> =
        nnc::train::session::inputs_for(&c.model, x, y).iter().map(|t| t.to_f64()).collect();
    let mut params: Vec<_> = weights.iter().map(|t| t.to_f64()).collect();
    let loss_at = |ps: &[nnc::tensor::Tensor<f64>]| {
        let env = Env { inputs: &inputs, params: ps, states: &[], lr: 0.0, step: 0.0 };
        eval(&c.forward, &env).unwrap().outputs[0].data[0]
    };
    assert_eq!(grads.len(), weights.len());
    for (i, g) in grads.iter().enumerate() {
        let name = &names[i].0;
        for j in (0..g.data.len()).step_by(7) {
            let h = 1e-5;
            let orig = params[i].data[j];
            params[i].data[j] = orig + h;
            let up = loss_at(&params);
            params[i].data[j] = orig - h;
            let down = loss_at(&params);
            params[i].data[j] = orig;
            let fd = (up - down) / (2.0 * h);
            let got = g.data[j] as f64;
            assert!(
                (got - fd).abs() <= 1e-3 * fd.abs().max(1e-3),
                "{name}[{j}]: nnc grad --backend {backend} {got}, finite difference {fd}"
            );
        }
    }
}

/// A PyTorch state_dict saved without batch norm's `num_batches_tracked` loads (the counter
/// at 0, as `load_state_dict` does), with a note on stderr naming it.
#[test]
fn weights_without_the_batch_norm_counter_load() {
    use nnc::train::weights;
    let (w, stripped) = (tmp("bn-w.safetensors"), tmp("bn-stripped.safetensors"));
    let file = "tests/cases/ok/norm_layers.nn";
    let (code, _, err) = nnc(&["train", file, "--steps", "3", "--save", w.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let all = weights::load(&w).unwrap();
    let kept: Vec<(String, &nnc::tensor::Tensor<f32>)> = all
        .iter()
        .filter(|(n, _)| !n.ends_with("num_batches_tracked"))
        .map(|(n, t)| (n.clone(), t))
        .collect();
    assert!(kept.len() < all.len(), "the model has a batch norm");
    weights::save(&stripped, &kept).unwrap();
    let (code, full, err) = nnc(&["eval", file, "--weights", w.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("note"), "{err}");
    let (code, out, err) = nnc(&["eval", file, "--weights", stripped.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("note:") && err.contains("bn.num_batches_tracked"), "{err}");
    // The counter does not enter evaluation: the same loss and metrics.
    assert_eq!(out, full);
}

/// Weights must be finite both ways: a weight file holding a NaN is refused with the tensor
/// and the element, and weights holding one are never written.
#[test]
fn non_finite_weights_are_neither_loaded_nor_saved() {
    use nnc::train::{state, weights};
    let (w, bad) = (tmp("finite-w.safetensors"), tmp("nan-w.safetensors"));
    let (code, _, err) =
        nnc(&["train", "examples/xor.nn", "--steps", "2", "--save", w.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let mut all = weights::load(&w).unwrap();
    let (name, t) = all.iter_mut().find(|(_, t)| t.shape.len() == 2).unwrap();
    t.data[t.shape[1] + 1] = f32::NAN;
    let name = name.clone();
    let named: Vec<(String, &nnc::tensor::Tensor<f32>)> =
        all.iter().map(|(n, t)| (n.clone(), t)).collect();
    weights::save(&bad, &named).unwrap();
    for args in [
        vec!["eval", "examples/xor.nn", "--weights", bad.to_str().unwrap()],
        vec!["train", "examples/xor.nn", "--steps", "1", "--init", bad.to_str().unwrap()],
    ] {
        let (code, _, err) = nnc(&args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains(&format!("`{name}` holds NaN at [1, 1]")), "{err}");
    }
    let c = nnc::pipeline::compile(&std::fs::read_to_string("examples/xor.nn").unwrap()).unwrap();
    let mut good = state::load(&c.model, &w).unwrap();
    good.params[0].data[0] = f32::INFINITY;
    let out = tmp("never-written.safetensors");
    let e = state::save(&c.model, &good, &out).unwrap_err().to_string();
    assert!(e.contains("holds inf at [0") && e.contains(&c.model.params[0].name), "{e}");
    assert!(!out.exists(), "nothing is written");
}

/// Two runs writing the same log: the second is refused (the log is locked while a run
/// writes it), and the first's rows are left alone.
#[test]
#[cfg(unix)]
fn a_log_being_written_is_not_taken_over() {
    use std::os::unix::io::AsRawFd;
    let log = tmp("locked.csv");
    std::fs::write(&log, "step,epoch,loss,lr\n1,1,0.5,0.1\n").unwrap();
    let held = std::fs::OpenOptions::new().write(true).open(&log).unwrap();
    // SAFETY: an advisory lock on a descriptor this test owns.
    assert_eq!(unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }, 0);
    let args = ["train", "examples/xor.nn", "--steps", "3", "--log", log.to_str().unwrap()];
    let (code, _, err) = nnc(&args);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("is being written by another run"), "{err}");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "step,epoch,loss,lr\n1,1,0.5,0.1\n");
    drop(held);
    let (code, _, err) = nnc(&args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 4);
}

/// The reported weight change is `‖θ_T − θ₀‖/‖θ₀‖` of the weights the run started from
/// (`--init`) and those it saved, computed here in f64 from the two files.
#[test]
fn the_weight_change_is_that_of_the_saved_weights() {
    let dir = common::scratch("weight-change");
    let (w0, w1) = (dir.join("w0.safetensors"), dir.join("w1.safetensors"));
    let (a, b) = (w0.to_str().unwrap(), w1.to_str().unwrap());
    let run = |args: &[&str]| {
        let (code, said, err) =
            common::nnc(&[&["train", "examples/digits_mlp.nn", "--quiet"], args].concat());
        assert_eq!(code, 0, "{err}");
        said
    };
    run(&["--steps", "5", "--save", a]);
    let said = run(&["--steps", "20", "--init", a, "--save", b]);
    let line = said.lines().find(|l| l.starts_with("weight change")).unwrap();
    let printed: f64 = line.split_whitespace().last().unwrap().parse().unwrap();
    let load = |p: &std::path::Path| nnc::train::weights::load(p).unwrap();
    let (mut moved, mut size) = (0.0f64, 0.0f64);
    for ((n0, t0), (n1, t1)) in load(&w0).iter().zip(load(&w1).iter()) {
        assert_eq!(n0, n1);
        for (x, y) in t0.data.iter().zip(&t1.data) {
            moved += (*y as f64 - *x as f64).powi(2);
            size += (*x as f64).powi(2);
        }
    }
    let want = (moved / size).sqrt();
    assert!((printed - want).abs() <= 1e-5 * want, "{line} vs {want}");
}
