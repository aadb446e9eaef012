//! Checkpoints and resume (`--checkpoint`, `--checkpoint-every`, `--resume`): a run split by
//! a resume, a SIGINT or a kill -9 ends byte-identical (weights and log) to the same run
//! straight through, for every kind of state a run carries (momentum, Adam's moments,
//! batch-norm statistics, dropout masks, a schedule, shuffling, L-BFGS's history); a
//! checkpoint of another run is refused with what differs; a log that cannot be written
//! stops the run with its checkpoint and weights saved.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::nnc;

/// A fresh temporary folder for one test.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nnc-ckpt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const MOMENTUM_DROPOUT: &str = "
model M {
    input x: [B, 2]
    label y: class[B] of 2
    fc1 = Dense(2 -> 32)
    fc2 = Dense(32 -> 2)
    logits = fc2(dropout(tanh(fc1(x)), p = 0.3))
    loss = cross_entropy(logits, y)
    metric accuracy(logits, y)
}
optimizer sgd(lr = 0.1, momentum = 0.9, nesterov = true, weight_decay = 1e-4)
schedule cosine(T = 40)
train { data = moons(n = 90, noise = 0.2), batch = 16, seed = 3, validation = 0.2 }
";

const ADAM_BATCHNORM: &str = "
model M {
    input x: [B, 2]
    label y: class[B] of 3
    fc1 = Dense(2 -> 16, bias = false)
    bn = BatchNorm(16)
    fc2 = Dense(16 -> 3)
    logits = fc2(relu(bn(fc1(x))))
    loss = cross_entropy(logits, y)
    metric accuracy(logits, y)
}
optimizer adam(lr = 1e-2, amsgrad = true)
clip global_norm(1.0)
train { data = spirals(n = 120, noise = 0.2), batch = 32, seed = 5 }
";

const LBFGS: &str = "
model M {
    input x: [B, 2]
    label y: class[B] of 2
    fc1 = Dense(2 -> 8)
    fc2 = Dense(8 -> 2)
    logits = fc2(tanh(fc1(x)))
    loss = cross_entropy(logits, y)
}
optimizer lbfgs(history_size = 4)
train { data = moons(n = 60, noise = 0.4), shuffle = false }
";

/// What a run leaves: its weights file and its log.
fn outputs(dir: &Path, tag: &str) -> (PathBuf, PathBuf) {
    (dir.join(format!("{tag}.safetensors")), dir.join(format!("{tag}.csv")))
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Trains `model` for `steps` straight and in two halves with a resume between them; the
/// weights, the logs (the per-layer log too when `extra` asks for it) and the final report
/// must be the same bytes.
fn split_equals_straight(name: &str, model: &str, steps: u32, extra: &[&str]) {
    let dir = scratch(name);
    let file = dir.join("m.nn");
    std::fs::write(&file, model).unwrap();
    let ck = dir.join("ck");
    let run = |tag: &str, n: u32, more: &[&str]| {
        let (w, log) = outputs(&dir, tag);
        let n = n.to_string();
        let mut args = vec!["train", s(&file), "--steps", &n, "--save", s(&w), "--log", s(&log)];
        args.extend(extra);
        args.extend(more);
        let (code, out, err) = nnc(&args);
        assert_eq!(code, 0, "{name} {args:?}: {err}");
        out
    };
    let straight = run("straight", steps, &[]);
    run("split", steps / 2, &["--checkpoint", s(&ck)]);
    let resumed = run("split", steps, &["--resume", s(&ck)]);
    let report = |out: String, tag: &str| out.replace(&format!("{tag}.safetensors"), "W");
    assert_eq!(report(resumed, "split"), report(straight, "straight"), "{name}: reports differ");
    let ((w1, l1), (w2, l2)) = (outputs(&dir, "straight"), outputs(&dir, "split"));
    assert!(read(&w1) == read(&w2), "{name}: the weights differ");
    assert_eq!(log_rows(&l2), log_rows(&l1), "{name}: the logs differ");
    if extra.contains(&"--log-layers") {
        let layers = |l: &Path| read(&l.with_extension("layers.csv"));
        assert!(layers(&l1) == layers(&l2), "{name}: the per-layer logs differ");
    }
    // The checkpoint carries the optimizer's state under its documented names.
    let (code, shown, err) = nnc(&["weights", s(&ck.join("checkpoint.safetensors"))]);
    assert_eq!(code, 0, "{err}");
    assert!(shown.contains("fc1.weight"), "{shown}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sgd_momentum_dropout_schedule_and_shuffle_resume_exactly() {
    // 40 steps of 5 batches an epoch: the resume falls inside the 4th epoch.
    split_equals_straight("momentum", MOMENTUM_DROPOUT, 40, &[]);
    split_equals_straight("momentum-2t", MOMENTUM_DROPOUT, 40, &["--threads", "2"]);
    split_equals_straight("momentum-interp", MOMENTUM_DROPOUT, 40, &["--backend", "interp"]);
}

#[test]
fn adam_batchnorm_and_clipping_resume_exactly() {
    // 4 batches an epoch: the resume falls on an epoch's end.
    split_equals_straight("adam", ADAM_BATCHNORM, 24, &["--log-layers"]);
}

#[test]
fn lbfgs_resumes_exactly() {
    split_equals_straight("lbfgs", LBFGS, 6, &[]);
}

#[test]
fn optimizer_state_has_pytorch_names() {
    let dir = scratch("names");
    let file = dir.join("m.nn");
    std::fs::write(&file, ADAM_BATCHNORM).unwrap();
    let ck = dir.join("ck");
    let (code, _, err) = nnc(&["train", s(&file), "--steps", "3", "--checkpoint", s(&ck)]);
    assert_eq!(code, 0, "{err}");
    let (_, shown, _) = nnc(&["weights", s(&ck.join("checkpoint.safetensors"))]);
    assert!(shown.starts_with("checkpoint after step 3 (epoch 1, 3 of its batches done)"));
    assert!(shown.contains("  optimizer: Adam\n") && shown.contains("  batch: 32\n"), "{shown}");
    // The folder stands for its checkpoint.
    assert_eq!(nnc(&["weights", s(&ck)]).1, shown);
    for name in [
        "fc1.weight ",
        "bn.running_mean ",
        "bn.num_batches_tracked ",
        "optimizer.fc1.weight.exp_avg ",
        "optimizer.fc1.weight.exp_avg_sq ",
        "optimizer.fc1.weight.max_exp_avg_sq ",
    ] {
        assert!(shown.contains(name), "{name}: {shown}");
    }
    std::fs::write(&file, LBFGS).unwrap();
    let ck = dir.join("ck-lbfgs");
    let (code, _, err) = nnc(&["train", s(&file), "--steps", "2", "--checkpoint", s(&ck)]);
    assert_eq!(code, 0, "{err}");
    let (_, shown, _) = nnc(&["weights", s(&ck.join("checkpoint.safetensors"))]);
    for name in ["optimizer.old_dirs ", "optimizer.ro ", "optimizer.H_diag ", "optimizer.d "] {
        assert!(shown.contains(name), "{name}: {shown}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `nnc train` of `file` for `steps`, slowed to `delay_ms` a step, in the background.
fn spawn_slow(file: &Path, steps: &str, delay_ms: &str, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_nnc"))
        .args(["train", s(file), "--steps", steps])
        .args(args)
        .env("NNC_TEST_STEP_DELAY_MS", delay_ms)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A log without its last column, the wall time (which must be there, and never decrease
/// over a resume: the checkpoint counts the time trained before it).
fn log_rows(log: &Path) -> String {
    let text = String::from_utf8(read(log)).unwrap();
    let mut last = 0.0f64;
    let mut rows = String::new();
    for (i, line) in text.lines().enumerate() {
        let (rest, time) = line.rsplit_once(',').expect("a time column");
        if i == 0 {
            assert_eq!(time, "time_s", "{line}");
        } else {
            let t: f64 = time.parse().expect("seconds");
            assert!(t >= last, "time goes back at row {i}: {last} then {t}");
            last = t;
        }
        rows.push_str(rest);
        rows.push('\n');
    }
    rows
}

/// Waits until `log` holds more than `rows` rows (and a checkpoint exists in `ck`).
fn wait_for(log: &Path, rows: usize, ck: &Path) {
    let start = Instant::now();
    loop {
        let n = std::fs::read_to_string(log).map_or(0, |t| t.lines().count().saturating_sub(1));
        if n > rows && ck.join("checkpoint.safetensors").exists() {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the run never got to step {rows}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A run stopped by `stop` midway and resumed equals the straight run.
fn stopped_and_resumed(name: &str, stop: impl Fn(&mut Child)) -> String {
    let dir = scratch(name);
    let file = dir.join("m.nn");
    std::fs::write(&file, MOMENTUM_DROPOUT).unwrap();
    let ck = dir.join("ck");
    let ((w1, l1), (w2, l2)) = (outputs(&dir, "straight"), outputs(&dir, "split"));
    let (code, _, err) =
        nnc(&["train", s(&file), "--steps", "60", "--save", s(&w1), "--log", s(&l1)]);
    assert_eq!(code, 0, "{err}");
    let mut child = spawn_slow(
        &file,
        "60",
        "20",
        &["--log", s(&l2), "--checkpoint", s(&ck), "--checkpoint-every", "7"],
    );
    wait_for(&l2, 15, &ck);
    assert!(child.try_wait().unwrap().is_none(), "the run ended before it was stopped");
    stop(&mut child);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    // A temporary file that a crash mid-write would leave is cleaned away.
    let stale = ck.join(".checkpoint.safetensors.99999-0.tmp");
    std::fs::write(&stale, b"half a checkpoint").unwrap();
    let (code, _, err) = nnc(&[
        "train",
        s(&file),
        "--steps",
        "60",
        "--resume",
        s(&ck),
        "--save",
        s(&w2),
        "--log",
        s(&l2),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("resuming after step"), "{err}");
    assert!(!stale.exists(), "the stale temporary file is still there");
    assert!(read(&w1) == read(&w2), "{name}: the weights differ");
    assert_eq!(log_rows(&l2), log_rows(&l1), "{name}: the logs differ");
    let _ = std::fs::remove_dir_all(&dir);
    format!("{:?}\n{stderr}", out.status.code())
}

#[test]
fn sigint_writes_a_checkpoint_and_the_run_resumes_exactly() {
    let end = stopped_and_resumed("sigint", |c| {
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(c.id() as i32, libc::SIGINT) };
    });
    assert!(end.starts_with("Some(130)"), "{end}");
    assert!(end.contains("interrupted after step") && end.contains("--resume"), "{end}");
}

#[test]
fn sigterm_also_checkpoints() {
    let end = stopped_and_resumed("sigterm", |c| {
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
    });
    assert!(end.contains("interrupted after step"), "{end}");
}

#[test]
fn kill_9_loses_only_the_steps_after_the_last_checkpoint() {
    let end = stopped_and_resumed("kill9", |c| c.kill().unwrap());
    assert!(end.starts_with("None"), "killed by a signal, no exit code: {end}");
}

#[test]
fn a_checkpoint_of_another_run_is_refused_with_what_differs() {
    let dir = scratch("mismatch");
    let file = dir.join("m.nn");
    std::fs::write(&file, MOMENTUM_DROPOUT).unwrap();
    let ck = dir.join("ck");
    let (code, _, err) = nnc(&["train", s(&file), "--steps", "5", "--checkpoint", s(&ck)]);
    assert_eq!(code, 0, "{err}");
    let saved = read(&ck.join("checkpoint.safetensors"));
    let (code, _, err) =
        nnc(&["train", s(&file), "--steps", "9", "--resume", s(&ck), "--batch", "8"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("batch: the checkpoint has 16, this run 8"), "{err}");
    let other = dir.join("other.nn");
    std::fs::write(&other, MOMENTUM_DROPOUT.replace("momentum = 0.9", "momentum = 0.5")).unwrap();
    let (code, _, err) = nnc(&["train", s(&other), "--steps", "9", "--resume", s(&ck)]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("optimizer.momentum: the checkpoint has 0.9, this run 0.5"), "{err}");
    std::fs::write(&other, ADAM_BATCHNORM).unwrap();
    let (code, _, err) = nnc(&["train", s(&other), "--steps", "9", "--resume", s(&ck)]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("gradient graph") && err.contains("optimizer: "), "{err}");
    assert!(read(&ck.join("checkpoint.safetensors")) == saved, "the checkpoint was changed");
    // Not a checkpoint at all.
    let (code, _, err) = nnc(&["train", s(&file), "--resume", s(&dir)]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot resume from"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn checkpoint_flags_are_checked_before_training() {
    let dir = scratch("flags");
    let file = dir.join("m.nn");
    std::fs::write(&file, MOMENTUM_DROPOUT).unwrap();
    let (code, _, err) = nnc(&["train", s(&file), "--checkpoint-every", "5"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("--checkpoint DIR"), "{err}");
    for bad in ["0", "5minutes", "epochs", "-1"] {
        let (code, _, err) =
            nnc(&["train", s(&file), "--checkpoint", s(&dir), "--checkpoint-every", bad]);
        assert_eq!(code, 2, "{bad}: {err}");
    }
    let missing = dir.join("no/such/ck");
    let (code, _, err) = nnc(&["train", s(&file), "--checkpoint", s(&missing)]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("does not exist") && !missing.exists(), "{err}");
    // --save into the checkpoint's own file.
    let ck = dir.join("ck");
    std::fs::create_dir(&ck).unwrap();
    let same = ck.join("checkpoint.safetensors");
    let (code, _, err) = nnc(&["train", s(&file), "--checkpoint", s(&ck), "--save", s(&same)]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("refusing to write over it"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A log that cannot be written (here: past the file-size limit, as a full disk refuses a
/// write) stops the run with exit 1, its checkpoint and weights saved; the resumed run
/// ends as the straight one.
#[test]
fn a_log_that_cannot_be_written_stops_the_run_with_everything_saved() {
    use std::os::unix::process::CommandExt;
    let dir = scratch("full");
    let file = dir.join("m.nn");
    std::fs::write(&file, MOMENTUM_DROPOUT).unwrap();
    let (ck, w, log) = (dir.join("ck"), dir.join("w.safetensors"), dir.join("log.csv"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nnc"));
    cmd.args(["train", s(&file), "--steps", "2000", "--checkpoint", s(&ck)]);
    cmd.args(["--save", s(&w), "--log", s(&log)]);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let lim = libc::rlimit { rlim_cur: 40_000, rlim_max: 40_000 };
            libc::setrlimit(libc::RLIMIT_FSIZE, &lim);
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot write") && err.contains("log.csv"), "{err}");
    assert!(err.contains("continues the run") && err.contains("weights after step"), "{err}");
    let (code, shown, e) = nnc(&["weights", s(&w)]);
    assert_eq!(code, 0, "{e}");
    assert!(shown.contains("fc1.weight"), "{shown}");
    // Resumed with room for the log (a new one: the old one is incomplete), it ends as the
    // straight run does.
    let (code, resumed, e) = nnc(&["train", s(&file), "--steps", "2000", "--resume", s(&ck)]);
    assert_eq!(code, 0, "{e}");
    let (code, straight, e) = nnc(&["train", s(&file), "--steps", "2000"]);
    assert_eq!(code, 0, "{e}");
    assert_eq!(resumed, straight);
    let _ = std::fs::remove_dir_all(&dir);
}
