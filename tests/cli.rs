//! The command-line contracts: exit codes (0 ok, 1 user error, 2 usage), `nnc check`'s
//! parameter listing and data check, and `nnc ir --check/--bless` snapshot testing of a
//! user's own model.

use std::process::Command;

mod common;
use common::nnc;

#[test]
fn check_lists_parameters_and_count() {
    let (code, out, err) = nnc(&["check", "examples/digits_mlp.nn"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("fc1.weight") && out.contains("[128, 64]") && out.contains("8192"),
        "{out}"
    );
    assert!(out.contains("9610 parameters in 4 tensors"), "{out}");
}

/// `nnc check` checks the data file the model names, before saying `ok`, unless `--no-data`.
#[test]
fn check_checks_the_data_too() {
    let (code, out, err) = nnc(&["check", "examples/iris.nn"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("data: 120 training examples, 30 validation, 4 features each"), "{out}");
    let dir = common::scratch("cli-check-data");
    let src = std::fs::read_to_string("examples/iris.nn").unwrap();
    let model = dir.join("wrong_data.nn");
    let data = std::path::Path::new("examples/data/iris_petal.csv").canonicalize().unwrap();
    std::fs::write(&model, src.replace("data/iris.csv", data.to_str().unwrap())).unwrap();
    let m = model.to_str().unwrap();
    let (code, out, err) = nnc(&["check", m]);
    assert_eq!(code, 1, "{out}");
    assert!(err.contains("no label column \"species\"") && !out.contains("ok"), "{err}");
    let (code, out, err) = nnc(&["check", m, "--no-data"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ok") && !out.contains("data:"), "{out}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn every_example_checks() {
    for e in std::fs::read_dir("examples").unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "nn") {
            let (code, _, err) = nnc(&["check", p.to_str().unwrap()]);
            assert_eq!(code, 0, "{}: {err}", p.display());
        }
    }
}

#[test]
fn exit_codes() {
    assert_eq!(nnc(&["check", "no/such/file.nn"]).0, 1);
    assert_eq!(nnc(&["frobnicate"]).0, 2);
    assert_eq!(nnc(&["train", "examples/xor.nn", "--steps", "many"]).0, 2);
    let (code, _, err) = nnc(&["train", "examples/xor.nn", "--data", "no/such.csv"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no/such.csv"), "{err}");
}

/// Counts on the command line get the file's checks: a usage error (exit 2) that names the
/// flag, never a panic or an empty run (`grad --batch 0` wrote all-zero gradients).
#[test]
fn command_line_counts_are_checked() {
    let runs: [&[&str]; 6] = [
        &["train", "examples/xor.nn", "--batch", "0"],
        &["train", "examples/xor.nn", "--steps", "0"],
        &["train", "examples/xor.nn", "--epochs", "0"],
        &["train", "examples/xor.nn", "--threads", "0"],
        &["train", "examples/xor.nn", "--threads", "100000"],
        &["grad", "examples/xor.nn", "--weights", "w", "--out", "g", "--batch", "0"],
    ];
    for args in runs {
        let (code, _, err) = nnc(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(args[args.len() - 2]), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn ir_check_and_bless() {
    let dir = std::env::temp_dir().join(format!("nnc-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let expected = dir.join("xor.opt.txt");
    let exp = expected.to_str().unwrap();
    // A missing expected file is not compared with: --bless writes it.
    let (code, _, err) = nnc(&["ir", "examples/xor.nn", "--stage", "opt", "--check", exp]);
    assert!(code == 1 && err.contains("does not exist: add --bless"), "{err}");
    // Blessing writes the current IR ...
    let (code, _, err) =
        nnc(&["ir", "examples/xor.nn", "--stage", "opt", "--check", exp, "--bless"]);
    assert_eq!(code, 0, "{err}");
    let (_, printed, _) = nnc(&["ir", "examples/xor.nn", "--stage", "opt"]);
    assert_eq!(std::fs::read_to_string(&expected).unwrap(), printed);
    // ... which then checks clean ...
    assert_eq!(nnc(&["ir", "examples/xor.nn", "--stage", "opt", "--check", exp]).0, 0);
    // ... and a changed model fails with a diff naming the changed line.
    let model = dir.join("xor.nn");
    let src = std::fs::read_to_string("examples/xor.nn")
        .unwrap()
        .replace("momentum = 0.9", "momentum = 0.8");
    std::fs::write(&model, src).unwrap();
    let (code, _, err) = nnc(&["ir", model.to_str().unwrap(), "--stage", "opt", "--check", exp]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("-") && err.contains("const 0.8") && err.contains("--bless"), "{err}");
    // A line added above the model moves every source line: the diff says so instead of
    // showing every line again.
    let src = std::fs::read_to_string("examples/xor.nn").unwrap();
    std::fs::write(&model, format!("// one more line\n{src}")).unwrap();
    let (code, _, err) = nnc(&["ir", model.to_str().unwrap(), "--stage", "opt", "--check", exp]);
    assert_eq!(code, 1, "{err}");
    let changed = err.lines().filter(|l| l.starts_with(['-', '+'])).count();
    assert_eq!(changed, 2, "only the ---/+++ header:\n{err}");
    assert!(err.contains("more lines differ only in node numbers or source lines"), "{err}");
}

#[test]
fn grad_stage_says_what_each_backward_node_differentiates() {
    let (code, out, err) = nnc(&["ir", "examples/xor.nn", "--stage", "grad"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("grad of %"), "{out}");
    assert!(out.contains("output grad.hidden.weight"), "{out}");
}

#[test]
fn weights_prints_names_shapes_and_values() {
    use nnc::tensor::Tensor;
    let dir = std::env::temp_dir().join(format!("nnc-cli-weights-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("w.safetensors");
    let x = Tensor::new(vec![1], vec![-0.9984375f32]);
    let big = Tensor::new(vec![4, 8], (0..32).map(|i| i as f32 / 4.0).collect());
    let named = vec![("x".to_string(), &x), ("fc.weight".to_string(), &big)];
    nnc::train::weights::save(&path, &named).unwrap();
    let (code, out, err) = nnc(&["weights", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "fc.weight  [4, 8]  32 values: mean 3.875000  std 2.308273  min 0  max 7.75  norm 25.514702\n\
         x          [1]     [-0.9984375]\n"
    );
    let (code, out, _) = nnc(&["weights", path.to_str().unwrap(), "--all"]);
    assert_eq!(code, 0);
    assert!(out.lines().next().unwrap().ends_with("[0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2, 2.25, 2.5, 2.75, 3, 3.25, 3.5, 3.75, 4, 4.25, 4.5, 4.75, 5, 5.25, 5.5, 5.75, 6, 6.25, 6.5, 6.75, 7, 7.25, 7.5, 7.75]"), "{out}");
    let (code, _, err) = nnc(&["weights", dir.join("missing.safetensors").to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("missing.safetensors"), "{err}");
}

/// A reader that stops early (`nnc ir … | head -1`) ends nnc without a panic message.
#[test]
fn output_cut_short_is_not_a_panic() {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_nnc"))
        .args(["ir", "examples/bench/c.nn", "--stage", "clif"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap(); // then the pipe closes
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
}

/// Outputs are checked before any work: one that would overwrite an input (the model, its
/// data, the weights read) or another output, or whose folder is missing, is refused with
/// exit 1 and every file left as it was.
#[test]
fn outputs_never_overwrite_inputs() {
    let dir = std::env::temp_dir().join(format!("nnc-cli-outputs-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let model = dir.join("iris.nn");
    let src = std::fs::read_to_string("examples/iris.nn").unwrap();
    std::fs::write(&model, &src).unwrap();
    let csv = dir.join("data/iris.csv");
    let data = std::fs::read("examples/data/iris.csv").unwrap();
    std::fs::write(&csv, &data).unwrap();
    let (m, c, w) = (model.to_str().unwrap(), csv.to_str().unwrap(), dir.join("w.safetensors"));
    let w = w.to_str().unwrap();
    let (code, _, err) = nnc(&["train", m, "--steps", "2", "--save", w]);
    assert_eq!(code, 0, "{err}");
    let weights = std::fs::read(w).unwrap();
    let missing = dir.join("no/such/w.safetensors");
    let refused: [(&[&str], &str); 7] = [
        (&["train", m, "--save", m], "the model file"),
        (&["train", m, "--log", c], "the data file"),
        (&["train", m, "--init", w, "--save", w], "--init"),
        (&["train", m, "--save", w, "--log", w], "the output of --save"),
        (&["train", m, "--save", missing.to_str().unwrap()], "does not exist"),
        (&["grad", m, "--weights", w, "--out", w], "--weights"),
        (&["ir", m, "--stage", "opt", "--check", m, "--bless"], "the model file"),
    ];
    for (args, says) in refused {
        let (code, out, err) = nnc(args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains(says) && err.contains("error"), "{args:?}: {err}");
        assert!(!out.contains("epoch"), "{args:?} trained before refusing: {out}");
    }
    assert_eq!(std::fs::read_to_string(&model).unwrap(), src);
    assert_eq!(std::fs::read(&csv).unwrap(), data);
    assert_eq!(std::fs::read(w).unwrap(), weights);
    std::fs::remove_dir_all(&dir).ok();
}

/// Reads are bounded: a device (`/dev/zero`, which never ends) or a folder given as the
/// model, the data or the weights is refused at once with exit 1 (it used to read until the
/// process aborted). Run under `timeout` so a regression fails instead of hanging.
#[test]
#[cfg(unix)]
fn devices_are_refused_not_read() {
    let dir = std::env::temp_dir().join(format!("nnc-cli-devices-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = dir.join("zero.nn");
    let src = std::fs::read_to_string("examples/xor.nn").unwrap();
    let data = src.lines().find(|l| l.starts_with("train")).unwrap();
    let src = src.replace(data, "train { data = csv(\"/dev/zero\", label = \"y\"), batch = 4 }");
    std::fs::write(&model, src).unwrap();
    let runs: [&[&str]; 4] = [
        &["check", "/dev/zero"],
        &["check", "/tmp"],
        &["train", model.to_str().unwrap()],
        &["eval", "examples/xor.nn", "--weights", "/dev/zero"],
    ];
    for args in runs {
        let out = std::process::Command::new("timeout")
            .arg("60")
            .arg(env!("CARGO_BIN_EXE_nnc"))
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("not a regular file") || err.contains("a folder"), "{args:?}: {err}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// A model or a synthetic data set too large for the memory available is refused before
/// any of it is allocated, with the bytes it needs and the bytes available (it used to end
/// in an abort). 3.2e9 parameters with Adam need 51 GB; 1e12 examples 24 TB.
#[test]
fn too_large_for_memory_is_an_error_not_an_abort() {
    let dir = std::env::temp_dir().join(format!("nnc-cli-memory-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = |layers: &str, loss: &str, data: &str, input: usize| {
        format!(
            "model Big {{\n  input x: [B, {input}]\n  label y: class[B] of 2\n{layers}\
             \n  loss = cross_entropy({loss}, y)\n}}\noptimizer adam()\n\
             train {{ data = random(n = {data}), batch = 4 }}\n"
        )
    };
    let big = model(
        "  fc1 = Dense(40000 -> 40000)\n  fc2 = Dense(40000 -> 40000)\n  out = Dense(40000 -> 2)",
        "out(fc2(fc1(x)))",
        "8",
        40000,
    );
    let many = model("  fc = Dense(2 -> 2)", "fc(x)", "1000000000000", 2);
    for (name, src, says) in [
        ("big.nn", big, "the model's parameters and optimizer state need"),
        ("many.nn", many, "n = 1000000000000 needs"),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, src).unwrap();
        let out = std::process::Command::new("timeout")
            .arg("120")
            .arg(env!("CARGO_BIN_EXE_nnc"))
            .args(["train", path.to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        assert!(err.contains(says) && err.contains("are available"), "{name}: {err}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// `--set KEY=VALUE` trains exactly as the file edited to say the same, and a wrong
/// override is reported at the flag (`command line:LINE:COLUMN`) with exit 1.
#[test]
fn set_overrides_are_the_file_edited() {
    let dir = common::scratch("cli-set");
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::copy("examples/data/iris.csv", dir.join("data/iris.csv")).unwrap();
    let src = std::fs::read_to_string("examples/iris.nn").unwrap();
    let edit = |src: &str, from: &str, to: &str| {
        assert!(src.contains(from), "examples/iris.nn no longer says `{from}`");
        src.replace(from, to)
    };
    let edited = edit(&src, "sgd(lr = 0.02, momentum = 0.9,", "sgd(lr = 0.01, momentum = 0.5,");
    let edited = edit(&edited, "batch = 16, epochs = 100", "batch = 32, epochs = 3");
    let model = dir.join("edited.nn");
    std::fs::write(&model, edited).unwrap();
    let (code, want, err) = nnc(&["train", model.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let sets = ["optimizer.lr=0.01", "optimizer.momentum=0.5", "train.batch=32", "train.epochs=3"];
    let mut args = vec!["train", "examples/iris.nn"];
    args.extend(sets.iter().flat_map(|s| ["--set", s]));
    let (code, got, err) = nnc(&args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(got, want.replace(model.to_str().unwrap(), "examples/iris.nn"));
    // Errors point at the flag.
    let (code, _, err) =
        nnc(&["train", "examples/iris.nn", "--set", "train.epochs=3", "--set", "optimizer.lr=-1"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("command line:2:20") && err.contains("--set optimizer.lr=-1"), "{err}");
    let (code, _, err) = nnc(&["check", "examples/iris.nn", "--set", "optimizer.lrr=1"]);
    assert!(code == 1 && err.contains("did you mean `lr`"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

/// `--help` teaches: every subcommand shows an example, every argument and flag says what it
/// is, and the top level points at `nnc list`.
#[test]
fn help_describes_every_argument_and_shows_examples() {
    let (_, top, _) = nnc(&["--help"]);
    assert!(top.contains("nnc list") && top.contains("docs/methods.md"), "{top}");
    let commands: Vec<String> = top
        .split("Commands:")
        .nth(1)
        .unwrap()
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .filter(|c| c != "help")
        .collect();
    assert!(commands.len() >= 12, "{commands:?}");
    let flag = regex::Regex::new(
        r"^\s+(?:-\w, )?(?:--[\w-]+(?: <[^>]+>)?(?:\.\.\.)?|<[^>]+>(?:\.\.\.)?)(.*)$",
    )
    .unwrap();
    for c in &commands {
        let (code, help, err) = nnc(&[c, "--help"]);
        assert_eq!(code, 0, "{c}: {err}");
        assert!(help.contains("Example"), "nnc {c} --help shows no example:\n{help}");
        for line in help.lines().filter(|l| l.starts_with("  ")) {
            if let Some(m) = flag.captures(line) {
                assert!(!m[1].trim().is_empty(), "nnc {c}: `{}` is not described", line.trim());
            }
        }
    }
}
