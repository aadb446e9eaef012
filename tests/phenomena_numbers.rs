//! The figures of examples/phenomena/README.md are tests. Every number of its Results table's
//! "measured" cells (phenomena 1-10 and 14) and of its caveats is regenerated here: the
//! documented commands run through the built `nnc` (their logs, layer logs and weights go
//! to a scratch folder under the system's temporary folder and are parsed here), and each
//! number written in the README is compared with what they give.
//!
//! Each row, and each caveat (named by its bold title), has a function that returns one
//! [`Item`] per number of its text, in the order the text writes them: a value the runs
//! measure ([`Item::Got`]), a value computed here from the problem's definition
//! (numpy.linalg.lstsq's solution, the plateaus the teacher's singular values predict, a
//! float64 simulation of Adam: [`Item::Calc`]), a number that states the experiment (a
//! step, a seed, a layer, a rate: [`Item::Given`]), or a reference that cannot be rerun
//! ([`Item::Ref`]: a result of an earlier build). A text whose count of numbers differs
//! from its items fails, and so does every number that differs from its item, and every
//! claim of the prose without a number of its own that a run contradicts (a rate said to
//! diverge that trains). A row or caveat without a function fails too, unless [`UNCHECKED`]
//! lists it with the reason.
//!
//! Tolerance: a measured or computed value agrees with the written one to 1% of it ([`REL`]),
//! a written 0 must be exactly 0, and a given number must be the one the test uses. Unlike
//! tests/docs_numbers.rs there is no absolute floor of 0.001: many of these numbers are far
//! below it (3.7e-21), and the floor would accept any of them; so the README writes every
//! figure with the digits 1% needs (10.3%, not 10%). The outcomes of the chaotic multi-seed
//! rows ([`Item::Seeded`]) get the same rule on a CPU of the README's kind: a run is
//! deterministic for a given binary and CPU (whatever `--threads`), and no looser tolerance
//! would hold across roundings anyway, since a chaotic run moves by far more than any
//! tolerance when the rounding changes (`--backend interp`, or a CPU on which the `gemm`
//! crate picks other kernels). The README's figures come from an AVX2/FMA machine without
//! AVX-512; on one with AVX-512 the crate's AVX-512 kernels round large products
//! differently, and those outcomes are shown beside the written ones, not failed. Every
//! other number (statistics at initialization, steps, computed references, claims) is
//! held on every CPU.
//!
//! The runs, about 100, go two at a time (std::thread::scope), longest first; the test
//! prints each cell's table of written and measured values, and the wall time.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

mod common;
use common::scratch;

const README: &str = "examples/phenomena/README.md";

/// Measured and written values agree to 1% of the written one.
const REL: f64 = 0.01;

/// Results rows (by number) and caveats (by bold title) that no function checks, with the
/// reason. None today.
const UNCHECKED: &[(&str, &str)] = &[];

/// What a number of the README's text is, in the order the text writes them.
#[derive(Debug)]
enum Item {
    /// Measured by the runs: every value listed must agree with the one written number.
    Got(String, Vec<f64>),
    /// The outcome of a chaotic run (one seed of a multi-seed row, after training): measured
    /// and compared, but held to the written number only on a CPU of the README's kind
    /// ([`same_kernels`]); elsewhere the GEMM kernels round differently and the run follows
    /// another trajectory, so a difference is reported, not failed.
    Seeded(String, f64),
    /// Computed here from the problem's definition, not by `nnc`.
    Calc(String, f64),
    /// Part of the statement of the experiment (a step, a seed, a layer, a rate, a formula's
    /// constant): written as the test uses it.
    Given(String, f64),
    /// A reference that cannot be rerun: written, not compared.
    Ref(String),
}

/// The items of one row or caveat, and its claims that carry no number.
#[derive(Default)]
struct Cell {
    items: Vec<Item>,
    claims: Vec<(String, bool)>,
}

impl Cell {
    fn got(&mut self, label: &str, v: f64) {
        self.items.push(Item::Got(label.into(), vec![v]));
    }
    /// One written number that stands for all of `vs`.
    fn all(&mut self, label: &str, vs: impl IntoIterator<Item = f64>) {
        self.items.push(Item::Got(label.into(), vs.into_iter().collect()));
    }
    /// Consecutive written numbers, one per value (seeds 1/2/3): chaotic outcomes.
    fn each(&mut self, label: &str, vs: impl IntoIterator<Item = f64>) {
        for (i, v) in vs.into_iter().enumerate() {
            self.items.push(Item::Seeded(format!("{label} [{}]", i + 1), v));
        }
    }
    fn calc(&mut self, label: &str, v: f64) {
        self.items.push(Item::Calc(label.into(), v));
    }
    fn given(&mut self, label: &str, vs: &[f64]) {
        for v in vs {
            self.items.push(Item::Given(label.into(), *v));
        }
    }
    fn reference(&mut self, label: &str) {
        self.items.push(Item::Ref(label.into()));
    }
    fn claim(&mut self, label: &str, holds: bool) {
        self.claims.push((label.into(), holds));
    }
}

fn agrees(doc: f64, got: f64) -> bool {
    if doc == 0.0 {
        got == 0.0
    } else {
        (doc - got).abs() <= REL * doc.abs()
    }
}

/// A value with 6 significant digits.
fn show(v: f64) -> String {
    if v == 0.0 {
        "0".to_string()
    } else if (1e-3..1e6).contains(&v.abs()) {
        let digits = (5 - v.abs().log10().floor() as i32).clamp(0, 9) as usize;
        let s = format!("{v:.digits$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    } else {
        format!("{v:.5e}")
    }
}

/// Compares a text's numbers with its items: the lines of a table, and the failures.
fn compare(numbers: &[f64], cell: &Cell) -> (Vec<String>, Vec<String>) {
    let (mut table, mut fails) = (Vec::new(), Vec::new());
    for (i, item) in cell.items.iter().enumerate() {
        let doc = numbers.get(i).copied();
        let w = doc.map_or("(none)".to_string(), show);
        let (label, got, ok) = match item {
            Item::Got(l, vs) => {
                let ok = !vs.is_empty() && doc.is_some_and(|d| vs.iter().all(|v| agrees(d, *v)));
                let got = vs.iter().map(|v| show(*v)).collect::<Vec<_>>().join(", ");
                (l.as_str(), got, ok)
            }
            Item::Seeded(l, v) => {
                let agree = doc.is_some_and(|d| agrees(d, *v));
                match (agree, same_kernels()) {
                    (false, false) => {
                        let got = format!("{} (chaotic: not held on this CPU)", show(*v));
                        let line = format!("  {:<4} {l:<58} README {w:<12} measured {got}", "~");
                        table.push(line);
                        continue;
                    }
                    _ => (l.as_str(), show(*v), agree),
                }
            }
            Item::Calc(l, v) => {
                (l.as_str(), format!("{} (computed)", show(*v)), doc.is_some_and(|d| agrees(d, *v)))
            }
            Item::Given(l, v) => (
                l.as_str(),
                format!("{} (given)", show(*v)),
                doc.is_some_and(|d| (d - v).abs() <= 1e-12 * v.abs()),
            ),
            Item::Ref(l) => (l.as_str(), "(reference, not compared)".to_string(), doc.is_some()),
        };
        let line = format!(
            "  {:<4} {label:<58} README {w:<12} measured {got}",
            if ok { "ok" } else { "FAIL" }
        );
        if !ok {
            fails.push(line.clone());
        }
        table.push(line);
    }
    for (i, d) in numbers.iter().enumerate().skip(cell.items.len()) {
        let line = format!("  FAIL number {} of the text, {d}, has no item", i + 1);
        fails.push(line.clone());
        table.push(line);
    }
    for (claim, holds) in &cell.claims {
        let line = format!("  {:<4} {claim}", if *holds { "ok" } else { "FAIL" });
        if !holds {
            fails.push(line.clone());
        }
        table.push(line);
    }
    (table, fails)
}

/// The numbers written in `text`, in order. A `−` (U+2212), or a `-` after a space or an
/// opening bracket, is a minus sign (`500-800` is a range); digits right after a letter
/// belong to a name (f32, float64); superscripts are not digits (2⁻²⁹ reads as 2).
fn numbers(text: &str) -> Vec<f64> {
    let re = regex::Regex::new(r"[0-9]+(?:\.[0-9]+)?(?:e[-+−]?[0-9]+)?").unwrap();
    let mut out = Vec::new();
    for m in re.find_iter(text) {
        let mut before = text[..m.start()].chars().rev();
        let b1 = before.next();
        if b1.is_some_and(|c| c.is_ascii_alphabetic() || c == '_') {
            continue;
        }
        let v: f64 = m.as_str().replace('−', "-").parse().unwrap();
        let negative = match b1 {
            Some('−') => true,
            Some('-') => before.next().map_or(true, |c| c.is_whitespace() || "([".contains(c)),
            _ => false,
        };
        out.push(if negative { -v } else { v });
    }
    out
}

/// The texts the README quotes runs in: each Results row's "measured" cell, keyed
/// `row N`, and each caveat, keyed by its bold title.
fn texts(readme: &str) -> Vec<(String, String)> {
    let section = |title: &str| {
        let s = readme.split(title).nth(1).unwrap_or_else(|| panic!("no `{title}` in {README}"));
        s.split("\n## ").next().unwrap().to_string()
    };
    let mut out = Vec::new();
    for line in section("## Results").lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() == 7 && cells[1].parse::<u32>().is_ok() {
            out.push((format!("row {}", cells[1]), cells[5].to_string()));
        }
    }
    let mut bullets: Vec<String> = Vec::new();
    for line in section("## What did not reproduce").lines() {
        if let Some(b) = line.strip_prefix("- ") {
            bullets.push(b.to_string());
        } else if let (Some(last), true) = (bullets.last_mut(), line.starts_with("  ")) {
            last.push(' ');
            last.push_str(line.trim());
        }
    }
    for b in bullets {
        let title = b.split("**").nth(1).expect("a caveat opens with a bold title");
        out.push((title.to_string(), b.clone()));
    }
    out
}

// ---------------------------------------------------------------------------------------
// Runs

/// One `nnc train` run: `--log DIR/NAME.csv` is added, and with `save`,
/// `--save DIR/NAME.safetensors` (then `nnc weights` prints the file). With `edit`, the
/// model file is a copy with one text replaced, written to the scratch folder.
struct Spec {
    name: String,
    file: String,
    args: Vec<String>,
    save: bool,
    edit: Option<(&'static str, &'static str)>,
    /// Instead of one `nnc train`: train the file with seeds 1 and 2 (`args` added to
    /// both), then `nnc connect` their weights with `connect`'s arguments; its CSV is the
    /// run's log and its output the run's.
    connect: Option<Vec<String>>,
    /// Instead of `nnc train`: `nnc prune` with `args`, its levels into a folder of the
    /// scratch folder and its CSV as the run's log.
    prune: bool,
}

fn spec(name: &str, file: &str, args: &[&str]) -> Spec {
    let file = if file.starts_with("examples/") {
        file.to_string()
    } else {
        format!("examples/phenomena/{file}")
    };
    Spec {
        name: name.into(),
        file,
        args: args.iter().map(|a| a.to_string()).collect(),
        save: false,
        edit: None,
        connect: None,
        prune: false,
    }
}

/// `name_s1`, `name_s2`, `name_s3`: the file's seed 1, then `--seed 2` and `--seed 3`.
fn seeded(name: &str, file: &str, args: &[&str]) -> Vec<Spec> {
    (1..=3)
        .map(|s| {
            let mut a: Vec<&str> = args.to_vec();
            let seed = s.to_string();
            if s > 1 {
                a.extend(["--seed", seed.as_str()]);
            }
            spec(&format!("{name}_s{s}"), file, &a)
        })
        .collect()
}

/// A finished run: its exit code, output, log, layer log and printed weights.
struct Done {
    name: String,
    code: i32,
    stdout: String,
    stderr: String,
    log: Option<Csv>,
    layers: Option<Csv>,
    weights: String,
    secs: f64,
}

/// A CSV of numbers (empty cells are NaN).
struct Csv {
    header: Vec<String>,
    rows: Vec<Vec<f64>>,
}

impl Csv {
    fn read(path: &Path) -> Option<Csv> {
        let text = std::fs::read_to_string(path).ok()?;
        let mut lines = text.lines();
        let header = lines.next()?.split(',').map(String::from).collect();
        let rows =
            lines.map(|l| l.split(',').map(|v| v.parse().unwrap_or(f64::NAN)).collect()).collect();
        Some(Csv { header, rows })
    }
    fn col(&self, name: &str) -> usize {
        self.header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name}"))
    }
}

fn execute(dir: &Path, s: &Spec) -> Done {
    let t = Instant::now();
    let file = match s.edit {
        None => s.file.clone(),
        Some((from, to)) => {
            let text = std::fs::read_to_string(&s.file).unwrap();
            assert!(text.contains(from), "{}: `{from}` is no longer in the file", s.file);
            let copy = dir.join(format!("{}.nn", s.name));
            std::fs::write(&copy, text.replace(from, to)).unwrap();
            copy.display().to_string()
        }
    };
    let log = dir.join(format!("{}.csv", s.name));
    if let Some(connect) = &s.connect {
        return execute_connect(dir, s, &file, connect, &log, t);
    }
    if s.prune {
        let tickets = dir.join(format!("{}-tickets", s.name)).display().to_string();
        let mut args = vec!["prune".to_string(), file, "--out".into(), tickets];
        args.extend(["--csv".into(), log.display().to_string()]);
        args.extend(s.args.iter().cloned());
        let out = Command::new(env!("CARGO_BIN_EXE_nnc")).args(&args).output().unwrap();
        return Done::of(&s.name, out, &log, t);
    }
    let saved = dir.join(format!("{}.safetensors", s.name));
    let mut args = vec!["train".to_string(), file];
    args.extend(s.args.iter().cloned());
    args.extend(["--log".into(), log.display().to_string()]);
    if s.save {
        args.extend(["--save".into(), saved.display().to_string()]);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_nnc")).args(&args).output().unwrap();
    let weights = if s.save && out.status.success() {
        let w =
            Command::new(env!("CARGO_BIN_EXE_nnc")).arg("weights").arg(&saved).output().unwrap();
        String::from_utf8_lossy(&w.stdout).into_owned()
    } else {
        String::new()
    };
    let layers = Csv::read(&dir.join(format!("{}.layers.csv", s.name)));
    Done { layers, weights, ..Done::of(&s.name, out, &log, t) }
}

/// Trains `file` with seeds 1 and 2, then runs `nnc connect` on the two solutions.
fn execute_connect(
    dir: &Path,
    s: &Spec,
    file: &str,
    connect: &[String],
    log: &Path,
    t: Instant,
) -> Done {
    let nnc =
        |args: &[String]| Command::new(env!("CARGO_BIN_EXE_nnc")).args(args).output().unwrap();
    let mut ends = Vec::new();
    let mut failed = None;
    for seed in ["1", "2"] {
        let w = dir.join(format!("{}_seed{seed}.safetensors", s.name)).display().to_string();
        let mut args: Vec<String> =
            ["train", file, "--quiet", "--seed", seed, "--save", &w].map(String::from).to_vec();
        args.extend(s.args.iter().cloned());
        let out = nnc(&args);
        if !out.status.success() {
            failed.get_or_insert(out);
        }
        ends.push(w);
    }
    let curve = dir.join(format!("{}_curve.safetensors", s.name)).display().to_string();
    let mut args: Vec<String> =
        ["connect", file, "--from", &ends[0], "--to", &ends[1]].map(String::from).to_vec();
    args.extend(["--out".into(), log.display().to_string(), "--save".into(), curve]);
    args.extend(connect.iter().cloned());
    let out = failed.unwrap_or_else(|| nnc(&args));
    Done::of(&s.name, out, log, t)
}

impl Done {
    /// The run `name` that ended with `out`, its log at `log`, started at `t` (no layer log,
    /// no weights printed).
    fn of(name: &str, out: std::process::Output, log: &Path, t: Instant) -> Done {
        Done {
            name: name.to_string(),
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            log: Csv::read(log),
            layers: None,
            weights: String::new(),
            secs: t.elapsed().as_secs_f64(),
        }
    }
    fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "{} failed:\n{}", self.name, self.stderr);
        self
    }
    fn grab(&self, text: &str, re: &str) -> f64 {
        let re = regex::Regex::new(re).unwrap();
        let c = re.captures(text).unwrap_or_else(|| panic!("{}: no `{re}` in\n{text}", self.name));
        c[1].parse().unwrap()
    }
    /// The final summary's `train` or `validation` value of `key` (`loss`, `accuracy`).
    fn last(&self, split: &str, key: &str) -> f64 {
        self.ok().grab(&self.stdout, &format!(r"(?m)^{split}\s.*\b{key} (\S+)"))
    }
    /// The final training accuracy, in percent.
    fn acc(&self) -> f64 {
        100.0 * self.last("train", "accuracy")
    }
    /// The final validation accuracy, in percent.
    fn val(&self) -> f64 {
        100.0 * self.last("validation", "accuracy")
    }
    fn steps(&self) -> f64 {
        self.ok().grab(&self.stdout, r"trained (\d+) steps")
    }
    fn epochs(&self) -> f64 {
        self.ok().grab(&self.stdout, r"trained \d+ steps \((\d+) epochs\)")
    }
    /// The mean training loss of epoch `k`, as its epoch line prints it.
    fn epoch_loss(&self, k: u32) -> f64 {
        self.ok().grab(&self.stderr, &format!(r"(?m)^epoch\s+{k}\s+loss (\S+)"))
    }
    /// The step at which the run stopped on a NaN (it must have stopped).
    fn nan_step(&self) -> f64 {
        assert_ne!(self.code, 0, "{} was expected to diverge", self.name);
        self.grab(&self.stderr, r"became NaN at step (\d+)")
    }
    fn diverged(&self) -> bool {
        self.code == 1 && self.stderr.contains("became NaN")
    }
    /// Column `col` of the log at step `step`.
    fn at(&self, step: usize, col: &str) -> f64 {
        let log = self.log.as_ref().unwrap_or_else(|| panic!("{}: no log", self.name));
        let row = &log.rows[step - 1];
        assert_eq!(row[0] as usize, step, "{}: log row {step}", self.name);
        row[log.col(col)]
    }
    fn losses(&self) -> Vec<f64> {
        let log = self.ok().log.as_ref().unwrap();
        let c = log.col("loss");
        log.rows.iter().map(|r| r[c]).collect()
    }
    /// The layer log's columns at step 1 whose names `keep` accepts, in file order.
    fn init(&self, keep: impl Fn(&str) -> bool) -> Vec<(String, f64)> {
        let l = self.layers.as_ref().unwrap_or_else(|| panic!("{}: no layer log", self.name));
        l.header
            .iter()
            .zip(&l.rows[0])
            .filter(|(h, _)| keep(h))
            .map(|(h, v)| (h.clone(), *v))
            .collect()
    }
    fn init_at(&self, col: &str) -> f64 {
        let v = self.init(|h| h == col);
        assert_eq!(v.len(), 1, "{}: no column {col}", self.name);
        v[0].1
    }
    /// The values of tensor `name` as `nnc weights` prints them.
    fn weights(&self, name: &str) -> Vec<f64> {
        let line = self
            .weights
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{}: no {name} in\n{}", self.name, self.weights));
        let values = line.rsplit('[').next().unwrap().trim_end_matches(']');
        values.split(',').map(|v| v.trim().parse().unwrap()).collect()
    }
}

/// Is `col` a Dense layer's weight gradient (`grad_norm.stem.weight`,
/// `grad_norm.layers.3.fc.weight`, `grad_norm.head.weight`)?
fn dense_weight_grad(col: &str) -> bool {
    let Some(p) = col.strip_prefix("grad_norm.") else { return false };
    p == "stem.weight" || p == "head.weight" || p.ends_with(".fc.weight")
}

fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

/// The index K of a column `grad_norm.<group>.K.fc.weight`.
fn layer_index(col: &str) -> f64 {
    col.split('.').nth(2).and_then(|k| k.parse().ok()).unwrap_or(f64::NAN)
}

struct Runs(HashMap<String, Done>);

impl Runs {
    fn get(&self, name: &str) -> &Done {
        self.0.get(name).unwrap_or_else(|| panic!("no run {name}"))
    }
    /// Runs `name_s1`, `name_s2`, `name_s3`.
    fn seeds(&self, name: &str) -> [&Done; 3] {
        [1, 2, 3].map(|s| self.get(&format!("{name}_s{s}")))
    }
}

// ---------------------------------------------------------------------------------------
// Computed references

/// Solves `a x = b` by Gaussian elimination with partial pivoting.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    for k in 0..n {
        let p = (k..n).max_by(|&i, &j| a[i][k].abs().total_cmp(&a[j][k].abs())).unwrap();
        a.swap(k, p);
        b.swap(k, p);
        for i in k + 1..n {
            let f = a[i][k] / a[k][k];
            for j in k..n {
                a[i][j] -= f * a[k][j];
            }
            b[i] -= f * b[k];
        }
    }
    let mut x = vec![0.0; n];
    for k in (0..n).rev() {
        x[k] = (b[k] - (k + 1..n).map(|j| a[k][j] * x[j]).sum::<f64>()) / a[k][k];
    }
    x
}

/// The eigenvalues of a symmetric matrix, ascending (cyclic Jacobi rotations).
fn eigenvalues(mut a: Vec<Vec<f64>>) -> Vec<f64> {
    let n = a.len();
    for _ in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).map(move |j| (i, j)))
            .filter(|(i, j)| i != j)
            .map(|(i, j)| a[i][j] * a[i][j])
            .sum();
        if off < 1e-30 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                if a[p][q] == 0.0 {
                    continue;
                }
                let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for row in a.iter_mut() {
                    let (kp, kq) = (row[p], row[q]);
                    row[p] = c * kp - s * kq;
                    row[q] = s * kp + c * kq;
                }
                for k in 0..n {
                    let (pk, qk) = (a[p][k], a[q][k]);
                    a[p][k] = c * pk - s * qk;
                    a[q][k] = s * pk + c * qk;
                }
            }
        }
    }
    let mut ev: Vec<f64> = (0..n).map(|i| a[i][i]).collect();
    ev.sort_by(f64::total_cmp);
    ev
}

/// Least squares of `label` on the other columns of a CSV and a bias, in f64, as
/// numpy.linalg.lstsq: the weights, the bias, the MSE, and the eigenvalues of the MSE's
/// Hessian 2/N·[X 1]ᵀ[X 1], ascending.
struct Lstsq {
    w: Vec<f64>,
    b: f64,
    mse: f64,
    eig: Vec<f64>,
}

fn lstsq(path: &str, label: &str) -> Lstsq {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let y_col = header.iter().position(|h| *h == label).unwrap();
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for l in lines.filter(|l| !l.trim().is_empty()) {
        let v: Vec<f64> = l.split(',').map(|x| x.parse().unwrap()).collect();
        let mut x: Vec<f64> =
            v.iter().enumerate().filter(|(i, _)| *i != y_col).map(|(_, x)| *x).collect();
        x.push(1.0);
        xs.push(x);
        ys.push(v[y_col]);
    }
    let (n, d) = (xs.len(), xs[0].len());
    let gram: Vec<Vec<f64>> =
        (0..d).map(|i| (0..d).map(|j| xs.iter().map(|x| x[i] * x[j]).sum()).collect()).collect();
    let rhs: Vec<f64> = (0..d).map(|i| xs.iter().zip(&ys).map(|(x, y)| x[i] * y).sum()).collect();
    let sol = solve(gram.clone(), rhs);
    let mse = xs
        .iter()
        .zip(&ys)
        .map(|(x, y)| (x.iter().zip(&sol).map(|(a, b)| a * b).sum::<f64>() - y).powi(2))
        .sum::<f64>()
        / n as f64;
    let hessian = gram.iter().map(|r| r.iter().map(|g| 2.0 * g / n as f64).collect()).collect();
    Lstsq { w: sol[..d - 1].to_vec(), b: sol[d - 1], mse, eig: eigenvalues(hessian) }
}

/// x after `steps` steps of Adam (or AMSGrad) in f64 on Reddi et al.'s problem as
/// 09_amsgrad's files set it: the gradient of step t is c_t of data/reddi.csv (in order),
/// betas (0.9, 0.99), eps 1e-8, rate 0.5/√t, x projected onto [−1, 1]; PyTorch's update.
fn reddi_f64(amsgrad: bool, steps: usize) -> f64 {
    let text = std::fs::read_to_string("examples/data/reddi.csv").unwrap();
    let c: Vec<f64> =
        text.lines().skip(1).map(|l| l.split(',').nth(1).unwrap().parse().unwrap()).collect();
    let (b1, b2, eps) = (0.9f64, 0.99f64, 1e-8);
    let (mut x, mut m, mut v, mut vmax) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for t in 1..=steps {
        let g = c[(t - 1) % c.len()];
        m = b1 * m + (1.0 - b1) * g;
        v = b2 * v + (1.0 - b2) * g * g;
        vmax = vmax.max(v);
        let second = if amsgrad { vmax } else { v };
        let denom = second.sqrt() / (1.0 - b2.powi(t as i32)).sqrt() + eps;
        x -= 0.5 / (t as f64).sqrt() / (1.0 - b1.powi(t as i32)) * m / denom;
        x = x.clamp(-1.0, 1.0);
    }
    x
}

/// x_t of a 09_amsgrad log: step t's loss is c_t·x_t.
fn reddi_x(run: &Done, t: usize) -> f64 {
    let c = if (t - 1) % 101 == 0 { 1010.0 } else { -10.0 };
    run.at(t, "loss") / c
}

// ---------------------------------------------------------------------------------------
// The runs, and what each text says about them

fn specs() -> Vec<Spec> {
    let init = ["--steps", "1", "--log-layers"];
    let mut s = vec![
        Spec { save: true, ..spec("raw", "examples/linear_regression.nn", &["--quiet"]) },
        Spec { save: true, ..spec("std", "01_least_squares/standardized.nn", &["--quiet"]) },
        spec("small", "02_deep_linear/small_init.nn", &["--quiet"]),
        spec("xavier2", "02_deep_linear/xavier.nn", &["--quiet"]),
        spec("n1_init", "03_vanishing/normal_1.nn", &init),
        spec(
            "n1_init_interp",
            "03_vanishing/normal_1.nn",
            &["--steps", "1", "--log-layers", "--backend", "interp"],
        ),
        spec("n001_init", "03_vanishing/normal_0.01.nn", &init),
        Spec {
            edit: Some(("bias_init = normal(0, 0.02)", "bias_init = zeros")),
            ..spec("n001_zero_bias_init", "03_vanishing/normal_0.01.nn", &init)
        },
        spec("xavier3_init", "03_vanishing/xavier.nn", &init),
        spec("he_init", "04_relu_init/he.nn", &init),
        spec("xavier4_init", "04_relu_init/xavier.nn", &init),
        spec("he", "04_relu_init/he.nn", &[]),
        spec("xavier4", "04_relu_init/xavier.nn", &[]),
        spec("plain5_init", "05_batchnorm/plain.nn", &init),
        spec("bn5_init", "05_batchnorm/batchnorm.nn", &init),
        spec("plain6_init", "06_residual/plain.nn", &init),
        spec("plain6_interp", "06_residual/plain.nn", &["--backend", "interp"]),
        spec("plain_bn_init", "06_residual/plain_bn.nn", &init),
        spec("res_no_norm", "06_residual/residual_no_norm.nn", &[]),
        spec("res_no_norm_init", "06_residual/residual_no_norm.nn", &init),
        spec("cplain_init", "06_residual/conv_plain.nn", &init),
        spec("cres_no_norm", "06_residual/conv_residual_no_norm.nn", &[]),
        spec("cres_no_norm_init", "06_residual/conv_residual_no_norm.nn", &init),
        spec("mlp_sgd", "examples/digits_mlp.nn", &["--set", "optimizer=sgd(lr = 0.3)"]),
        spec("mlp_adam", "examples/digits_mlp.nn", &[]),
        spec("mlp_adam3", "examples/digits_mlp.nn", &["--set", "optimizer.lr=3e-3"]),
        Spec { save: true, ..spec("adam9", "09_amsgrad/adam.nn", &["--quiet"]) },
        Spec { save: true, ..spec("amsgrad9", "09_amsgrad/amsgrad.nn", &["--quiet"]) },
        spec(
            "scaled_cosine",
            "10_large_batch/batch1024_scaled.nn",
            &["--quiet", "--set", "schedule=cosine(T = 256)"],
        ),
        Spec {
            connect: Some(vec!["--quiet".into()]),
            ..spec("connect", "12_mode_connectivity/mlp.nn", &[])
        },
        spec("ntk256", "13_ntk/width_256.nn", &[]),
        spec("ntk1024", "13_ntk/width_1024.nn", &[]),
        spec("ntk4096", "13_ntk/width_4096.nn", &[]),
        spec("ntk16384", "13_ntk/width_16384.nn", &[]),
        spec("no_clip", "14_clipping/no_clip.nn", &[]),
        spec("clip_init", "14_clipping/no_clip.nn", &init),
    ];
    for (lr, name) in [("0.2", "b4096"), ("0.15", "b4096_lr015")] {
        let args = ["--quiet", "--batch", "4096", "--steps", "64", "--set"];
        let set = format!("optimizer.lr={lr}");
        let mut a = args.to_vec();
        a.push(set.as_str());
        s.push(Spec {
            edit: Some((
                "schedule warmup(32) then cosine(T = 224)",
                "schedule warmup(8) then cosine(T = 56)",
            )),
            ..spec(&format!("{name}_warmup"), "10_large_batch/batch1024_scaled.nn", &a)
        });
        a.extend(["--set", "schedule=cosine(T = 64)"]);
        s.push(spec(&format!("{name}_cosine"), "10_large_batch/batch1024_scaled.nn", &a));
    }
    for lr in ["0.01", "0.003", "0.001"] {
        let set = format!("optimizer.lr={lr}");
        s.push(spec(
            &format!("no_clip_lr{lr}"),
            "14_clipping/no_clip.nn",
            &["--set", set.as_str()],
        ));
    }
    let seeded_files: [(&str, &str, &[&str]); 26] = [
        ("n1", "03_vanishing/normal_1.nn", &[]),
        ("n001", "03_vanishing/normal_0.01.nn", &[]),
        ("xavier3", "03_vanishing/xavier.nn", &[]),
        ("plain5", "05_batchnorm/plain.nn", &[]),
        ("bn5", "05_batchnorm/batchnorm.nn", &[]),
        ("plain6", "06_residual/plain.nn", &[]),
        ("plain_bn", "06_residual/plain_bn.nn", &[]),
        ("res", "06_residual/residual.nn", &[]),
        ("fixup", "06_residual/fixup.nn", &[]),
        ("cplain", "06_residual/conv_plain.nn", &[]),
        ("cplain_bn", "06_residual/conv_plain_bn.nn", &[]),
        ("cres", "06_residual/conv_residual.nn", &[]),
        ("cfixup", "06_residual/conv_fixup.nn", &[]),
        ("constant", "07_schedules/constant.nn", &[]),
        ("step", "07_schedules/step.nn", &[]),
        ("cosine", "07_schedules/cosine.nn", &[]),
        ("cyclic", "07_schedules/cyclic.nn", &[]),
        ("sgd", "08_adam_sgd/sgd.nn", &[]),
        ("momentum", "08_adam_sgd/sgd_momentum.nn", &[]),
        ("adam8", "08_adam_sgd/adam.nn", &[]),
        ("b64", "10_large_batch/batch64.nn", &["--quiet"]),
        ("b1024", "10_large_batch/batch1024.nn", &["--quiet"]),
        ("scaled", "10_large_batch/batch1024_scaled.nn", &["--quiet"]),
        ("lars", "10_large_batch/batch1024_lars.nn", &["--quiet"]),
        ("lamb", "10_large_batch/batch1024_lamb.nn", &["--quiet"]),
        ("clip", "14_clipping/clip.nn", &[]),
    ];
    for (name, file, args) in seeded_files {
        s.extend(seeded(name, file, args));
    }
    s.extend(seeded("small_lr", "14_clipping/small_lr.nn", &[]));
    let tickets = ["--levels", "10", "--rate", "0.2", "--control", "random-reinit"];
    s.extend(
        seeded("lottery", "11_lottery/mlp.nn", &tickets)
            .into_iter()
            .map(|spec| Spec { prune: true, ..spec }),
    );
    s
}

/// The measurement of each row and caveat, by key.
fn measure(key: &str, r: &Runs, c: &mut Cell) -> bool {
    match key {
        "row 1" => row1(r, c),
        "row 2" => row2(r, c),
        "row 3" => row3(r, c),
        "row 4" => row4(r, c),
        "row 5" => row5(r, c),
        "row 6" => row6(r, c),
        "row 7" => row7(r, c),
        "row 8" => row8(r, c),
        "row 9" => row9(r, c),
        "row 10" => row10(r, c),
        "row 11" => row11(r, c),
        "row 12" => row12(r, c),
        "row 13" => row13(r, c),
        "row 14" => row14(r, c),
        "6, the plain 50-layer net." => caveat_plain50(r, c),
        "8, Adam vs SGD." => caveat_adam(r, c),
        "10, warmup." => caveat_warmup(r, c),
        "3, N(0, 1)." => caveat_normal_1(r, c),
        "3, N(0, 0.01)." => caveat_normal_001(r, c),
        "1." => caveat_least_squares(r, c),
        _ => return false,
    }
    true
}

/// The first step from which every logged loss is below `threshold`.
fn below_from(losses: &[f64], threshold: f64) -> f64 {
    losses.iter().rposition(|l| *l >= threshold).map_or(1, |i| i + 2) as f64
}

fn row1(r: &Runs, c: &mut Cell) {
    let (raw, std) = (r.get("raw"), r.get("std"));
    let ls = lstsq("examples/data/iris_petal.csv", "petal_width");
    let ls_std = lstsq("examples/data/iris_petal_standardized.csv", "petal_width");
    c.all(
        "final MSE, raw and standardized",
        [raw.last("train", "loss"), std.last("train", "loss")],
    );
    c.calc("lstsq's MSE", ls.mse);
    let w = raw.ok().weights("fit.weight");
    c.each("raw w", w.iter().copied());
    c.got("raw b", raw.weights("fit.bias")[0]);
    c.got("raw steps", raw.steps());
    c.each("lstsq w", ls.w.iter().copied());
    c.calc("lstsq b", ls.b);
    c.calc("1 − lr·λmin, raw (lr 0.015)", 1.0 - 0.015 * ls.eig[0]);
    for step in [100, 1000, 10000] {
        c.got(&format!("raw loss at step {step}"), raw.at(step, "loss"));
        c.given("step", &[step as f64]);
    }
    c.got("standardized lr", std.at(1, "lr"));
    for step in [50, 100] {
        c.got(&format!("standardized loss at step {step}"), std.at(step, "loss"));
        c.given("step", &[step as f64]);
    }
    let mut w = std.ok().weights("fit.weight");
    w.push(std.weights("fit.bias")[0]);
    let mut want = ls_std.w.clone();
    want.push(ls_std.b);
    c.got(
        "max |standardized weights − lstsq's|",
        max(&w.iter().zip(&want).map(|(a, b)| (a - b).abs()).collect::<Vec<_>>()),
    );
    c.given("loss threshold", &[0.03587]);
    let (from_std, from_raw) =
        (below_from(&std.losses(), 0.03587), below_from(&raw.losses(), 0.03587));
    c.got("standardized: below from step", from_std);
    c.got("raw: below from step", from_raw);
    c.got("ratio", from_raw / from_std);
}

/// Σ s_j² / 8 over the teacher's singular values s_j = 8·2⁻ʲ (j = 0..7) from `k` on: the
/// MSE with the `k` largest modes learned.
fn deep_linear_plateau(k: usize) -> f64 {
    (k..8).map(|j| (8.0 * 0.5f64.powi(j as i32)).powi(2)).sum::<f64>() / 8.0
}

fn row2(r: &Runs, c: &mut Cell) {
    let small = r.get("small").ok();
    // The steps of each plateau (the log's first row, then every 100th as the README's awk
    // prints them), and how many singular modes are learned by then.
    let plateaus: [(&[usize], usize); 5] = [
        (&[1, 100, 200, 300], 0),
        (&[500, 600, 700, 800], 1),
        (&[1000, 1100, 1200, 1300, 1400, 1500, 1600, 1700], 2),
        (&[2000, 2100, 2200, 2300, 2400], 3),
        (&[3000], 4),
    ];
    for (steps, k) in plateaus {
        let losses: Vec<f64> = steps.iter().map(|s| small.at(*s, "loss")).collect();
        if steps.len() > 1 {
            c.got(&format!("small init: lowest loss, steps {steps:?}"), min(&losses));
            c.got("small init: highest loss", max(&losses));
            c.given("steps from, to", &[steps[0] as f64, *steps.last().unwrap() as f64]);
        } else {
            c.got(&format!("small init: loss at step {}", steps[0]), losses[0]);
            c.given("step", &[steps[0] as f64]);
        }
        if k == 0 {
            c.given("‖A‖²/8", &[8.0]);
        }
        c.calc(&format!("predicted, {k} modes learned: Σ_(j≥{k}) s_j²/8"), deep_linear_plateau(k));
    }
    for j in 0..4 {
        c.calc("the teacher's singular value", 8.0 * 0.5f64.powi(j));
    }
    let x = r.get("xavier2").ok();
    for step in [1, 100, 3000] {
        c.got(&format!("xavier: loss at step {step}"), x.at(step, "loss"));
        c.given("step", &[step as f64]);
    }
}

/// The Dense weight gradients at init, head first (the file lists stem … head).
fn grads_head_first(run: &Done) -> Vec<(String, f64)> {
    let mut g = run.init(dense_weight_grad);
    g.reverse();
    g
}

fn row3(r: &Runs, c: &mut Cell) {
    let n1 = grads_head_first(r.get("n1_init"));
    let (head, stem) = (n1[0].1, n1.last().unwrap().1);
    c.given("N(0, 1)", &[0.0, 1.0]);
    c.got("N(0,1): head weight gradient", head);
    c.got("N(0,1): stem weight gradient", stem);
    c.got("N(0,1): orders of magnitude, log10(stem/head)", (stem / head).log10());
    c.got(
        "N(0,1): factor per layer, (stem/head)^(1/49)",
        (stem / head).powf(1.0 / (n1.len() - 1) as f64),
    );
    let n001 = grads_head_first(r.get("n001_init"));
    let at = |k: u32| {
        n001.iter().find(|(n, _)| *n == format!("grad_norm.layers.{k}.fc.weight")).unwrap().1
    };
    c.given("N(0, 0.01)", &[0.0, 0.01]);
    c.got("N(0,0.01): head weight gradient", n001[0].1);
    c.got("N(0,0.01): layers.47", at(47));
    c.given("layer", &[47.0]);
    c.got("N(0,0.01): layers.31", at(31));
    c.given("layer", &[31.0]);
    // The highest layer whose gradient is 0 with all below it (and the stem) 0 too.
    let zero_from = n001.iter().position(|(_, g)| *g == 0.0).unwrap_or(n001.len());
    let rest: Vec<f64> = n001[zero_from..].iter().map(|(_, g)| *g).collect();
    c.got("N(0,0.01): largest gradient from there down", max(&rest));
    c.got("N(0,0.01): zero from layer", layer_index(&n001[zero_from.min(n001.len() - 1)].0));
    let x: Vec<f64> = grads_head_first(r.get("xavier3_init")).iter().map(|(_, g)| *g).collect();
    c.got("xavier: smallest weight gradient", min(&x));
    c.got("xavier: largest weight gradient", max(&x));
    c.got("xavier: layers", x.len() as f64);
    c.got("xavier: largest/smallest", max(&x) / min(&x));
    c.given("seeds", &[1.0, 2.0, 3.0]);
    c.each("xavier: final loss", r.seeds("xavier3").map(|d| d.last("train", "loss")));
    c.each("xavier: train accuracy %", r.seeds("xavier3").map(|d| d.acc()));
    c.given("N(0, 1)", &[0.0, 1.0]);
    c.each("N(0,1): final loss", r.seeds("n1").map(|d| d.last("train", "loss")));
    c.given("N(0, 0.01)", &[0.0, 0.01]);
    let mut l: Vec<f64> = r.seeds("n001").map(|d| d.last("train", "loss")).to_vec();
    l.push(2f64.ln());
    c.all("N(0,0.01): final loss, seeds 1-3, and ln 2", l);
    c.given("ln 2", &[2.0]);
}

fn row4(r: &Runs, c: &mut Cell) {
    let layers = [0, 9, 19, 29];
    c.given("layers", &layers.map(f64::from));
    let var = |run: &str, k: u32| r.get(run).init_at(&format!("act_var.layers.{k}.fc"));
    for k in layers {
        c.got(&format!("he: act_var layers.{k}"), var("he_init", k));
    }
    let he: Vec<f64> = (0..30).map(|k| var("he_init", k)).collect();
    c.got("he: smallest act_var, layers 0-29", min(&he));
    c.got("he: largest act_var, layers 0-29", max(&he));
    for k in layers {
        c.got(&format!("xavier: act_var layers.{k}"), var("xavier4_init", k));
    }
    c.got(
        "xavier: factor per layer, (v29/v0)^(1/29)",
        (var("xavier4_init", 29) / var("xavier4_init", 0)).powf(1.0 / 29.0),
    );
    c.given("2⁻²⁹", &[2.0]);
    c.calc("2⁻²⁹", 0.5f64.powi(29));
    c.all("SGD steps", [r.get("he").steps(), r.get("xavier4").steps()]);
    for run in ["he", "xavier4"] {
        let d = r.get(run);
        c.got(&format!("{run}: loss at step 1"), d.ok().at(1, "loss"));
        c.got(&format!("{run}: final train loss"), d.last("train", "loss"));
    }
}

fn row5(r: &Runs, c: &mut Cell) {
    let plain = r.seeds("plain5");
    let mut l: Vec<f64> = plain.map(|d| d.last("train", "loss")).to_vec();
    l.push(10f64.ln());
    c.all("plain: final train loss, seeds 1-3, and ln 10", l);
    c.given("ln 10", &[10.0]);
    c.each("plain: train accuracy %", plain.map(|d| d.acc()));
    c.all("epochs", plain.map(|d| d.epochs()));
    c.given("seeds", &[1.0, 2.0, 3.0]);
    let g = grads_head_first(r.get("plain5_init"));
    c.got("plain: head weight gradient at init", g[0].1);
    c.got("plain: stem weight gradient at init", g.last().unwrap().1);
    let bn = r.seeds("bn5");
    c.each("batchnorm: final train loss", bn.map(|d| d.last("train", "loss")));
    c.each("batchnorm: train accuracy %", bn.map(|d| d.acc()));
    c.each("batchnorm: validation accuracy %", bn.map(|d| d.val()));
    c.given("seeds", &[1.0, 2.0, 3.0]);
    let g: Vec<f64> = r.get("bn5_init").init(dense_weight_grad).iter().map(|(_, v)| *v).collect();
    c.got("batchnorm: smallest Dense weight gradient at init", min(&g));
    c.got("batchnorm: largest", max(&g));
}

fn row6(r: &Runs, c: &mut Cell) {
    c.all("epochs", r.seeds("res").map(|d| d.epochs()));
    c.given("seeds", &[1.0, 2.0, 3.0]);
    c.each("plain: train accuracy %", r.seeds("plain6").map(|d| d.acc()));
    c.each("plain_bn: train accuracy %", r.seeds("plain_bn").map(|d| d.acc()));
    let g = r.get("plain_bn_init").init(|h| dense_weight_grad(h) && h.contains("blocks."));
    let (name, smallest) = g.iter().min_by(|a, b| a.1.total_cmp(&b.1)).unwrap();
    c.got("plain_bn: smallest block weight gradient at init", *smallest);
    c.got("plain_bn: its block", layer_index(name));
    c.got(
        "plain_bn: stem weight gradient at init",
        r.get("plain_bn_init").init_at("grad_norm.stem.weight"),
    );
    residual_and_fixup(r, c, "", "res", "fixup");
    c.given("CNN: convolutions", &[41.0]);
    c.given("CNN: channels", &[8.0]);
    c.all("CNN: epochs", r.seeds("cres").map(|d| d.epochs()));
    c.given("seeds", &[1.0, 2.0, 3.0]);
    c.each("CNN plain: train accuracy %", r.seeds("cplain").map(|d| d.acc()));
    let init = r.get("cplain_init");
    for block in [0, 19] {
        let col = format!("act_var.blocks.{block}.conv2");
        c.got(&format!("CNN plain: {col} at init"), init.init_at(&col));
        c.given("CNN plain: its block", &[block as f64]);
    }
    c.each("CNN plain_bn: train accuracy %", r.seeds("cplain_bn").map(|d| d.acc()));
    residual_and_fixup(r, c, "CNN ", "cres", "cfixup");
}

/// Row 6's residual runs (`{res}_s1..3`, `{res}_no_norm`, `{res}_no_norm_init`) and Fixup
/// runs, in the order the text writes them, labelled with `what` first.
fn residual_and_fixup(r: &Runs, c: &mut Cell, what: &str, res: &str, fixup: &str) {
    let runs = r.seeds(res);
    c.each(&format!("{what}residual: train accuracy %"), runs.map(|d| d.acc()));
    c.each(&format!("{what}residual: validation accuracy %"), runs.map(|d| d.val()));
    c.got(
        &format!("{what}residual without normalization: NaN at step"),
        r.get(&format!("{res}_no_norm")).nan_step(),
    );
    c.got(
        &format!("{what}residual without normalization: head's act_var at init"),
        r.get(&format!("{res}_no_norm_init")).init_at("act_var.head"),
    );
    let runs = r.seeds(fixup);
    c.each(&format!("{what}fixup: train accuracy %"), runs.map(|d| d.acc()));
    c.each(&format!("{what}fixup: validation accuracy %"), runs.map(|d| d.val()));
}

fn row7(r: &Runs, c: &mut Cell) {
    c.given("seeds", &[1.0, 2.0, 3.0]);
    c.given("momentum", &[0.9]);
    c.got("lr at step 1", r.get("constant_s1").ok().at(1, "lr"));
    c.got("steps", r.get("constant_s1").steps());
    for name in ["constant", "step", "cosine", "cyclic"] {
        let runs = r.seeds(name);
        c.each(&format!("{name}: final train loss"), runs.map(|d| d.last("train", "loss")));
        c.each(&format!("{name}: validation accuracy %"), runs.map(|d| d.val()));
    }
}

fn row8(r: &Runs, c: &mut Cell) {
    let epochs = [1, 3, 5, 10];
    c.given("epochs", &epochs.map(f64::from));
    c.given("tanh layers", &[8.0]);
    for name in ["sgd", "momentum", "adam8"] {
        c.got(&format!("{name}: lr"), r.get(&format!("{name}_s1")).ok().at(1, "lr"));
        for e in epochs {
            c.got(
                &format!("{name}: mean loss, epoch {e}"),
                r.get(&format!("{name}_s1")).epoch_loss(e),
            );
        }
    }
    c.given("epoch", &[10.0]);
    c.given("seeds", &[2.0, 3.0]);
    for name in ["sgd", "momentum", "adam8"] {
        for s in [2, 3] {
            c.got(
                &format!("{name}: mean loss, epoch 10, seed {s}"),
                r.get(&format!("{name}_s{s}")).epoch_loss(10),
            );
        }
    }
}

fn row9(r: &Runs, c: &mut Cell) {
    let (adam, ams) = (r.get("adam9"), r.get("amsgrad9"));
    c.all("steps", [adam.steps(), ams.steps()]);
    c.given("betas", &[0.9, 0.99]);
    c.got("lr at step 1", adam.ok().at(1, "lr"));
    c.given("projection onto [−1, 1]", &[-1.0, 1.0]);
    c.got("adam: final x", adam.weights("x")[0]);
    for t in [1000, 10000, 20000] {
        c.got(&format!("adam: x at step {t}"), reddi_x(adam, t));
        c.given("step", &[t as f64]);
    }
    c.got("amsgrad: final x", ams.ok().weights("x")[0]);
    for t in [1000, 20000, 50000] {
        c.got(&format!("amsgrad: x at step {t}"), reddi_x(ams, t));
        c.given("step", &[t as f64]);
    }
    c.calc("adam in f64", reddi_f64(false, 100000));
    c.calc("amsgrad in f64", reddi_f64(true, 100000));
}

fn row10(r: &Runs, c: &mut Cell) {
    c.given("spirals", &[5.0]);
    c.given("points: spirals(n = 16384)", &[16384.0]);
    c.all(
        "epochs",
        ["b64", "b1024", "scaled", "lars", "lamb"].map(|n| r.get(&format!("{n}_s1")).epochs()),
    );
    c.given("seeds", &[1.0, 2.0, 3.0]);
    c.given("batch", &[64.0]);
    c.each("batch 64: validation accuracy %", r.seeds("b64").map(|d| d.val()));
    c.given("batch", &[1024.0, 64.0]);
    c.each("batch 1024: validation accuracy %", r.seeds("b1024").map(|d| d.val()));
    c.given("batch", &[1024.0]);
    let peak = |n: &str| {
        let d = r.get(n).ok();
        let col = d.log.as_ref().unwrap().col("lr");
        max(&d.log.as_ref().unwrap().rows.iter().map(|row| row[col]).collect::<Vec<_>>())
    };
    c.got("scaled rate / batch 64's", peak("scaled_s1") / peak("b64_s1"));
    let warm = r.get("scaled_s1").log.as_ref().unwrap();
    let lr = warm.col("lr");
    let first_peak = warm.rows.iter().position(|row| row[lr] == peak("scaled_s1")).unwrap();
    c.got("warmup steps (the rate peaks at step warmup + 1)", first_peak as f64);
    c.each("scaled: validation accuracy %", r.seeds("scaled").map(|d| d.val()));
    c.each("LARS: validation accuracy %", r.seeds("lars").map(|d| d.val()));
    c.each("LAMB: validation accuracy %", r.seeds("lamb").map(|d| d.val()));
}

fn row11(r: &Runs, c: &mut Cell) {
    let runs = r.seeds("lottery");
    // Column `name` of level `level` of a run's CSV.
    let at = |d: &Done, level: usize, name: &str| {
        let log = d.ok().log.as_ref().expect("the prune CSV");
        let row = &log.rows[level];
        assert_eq!(row[0] as usize, level, "{}: level {level}", d.name);
        row[log.col(name)]
    };
    c.given("levels", &[10.0]);
    c.got("remaining % after them", 100.0 * at(runs[0], 10, "remaining"));
    c.got("pruned %", 100.0 * (1.0 - at(runs[0], 10, "remaining")));
    c.given("rate %", &[20.0]);
    c.given("output layer's %", &[10.0]);
    c.given("epochs", &[30.0]);
    c.each(
        "ticket validation accuracy % at level 10",
        runs.map(|d| 100.0 * at(d, 10, "validation_accuracy")),
    );
    c.each("dense validation accuracy %", runs.map(|d| 100.0 * at(d, 0, "validation_accuracy")));
    let control = |l: usize| runs.map(|d| 100.0 * at(d, l, "control_validation_accuracy"));
    c.each("control validation accuracy % at level 10", control(10));
    c.got("remaining % after 7 levels", 100.0 * at(runs[0], 7, "remaining"));
    c.given("levels", &[7.0]);
    c.each(
        "ticket validation accuracy % at level 7",
        runs.map(|d| 100.0 * at(d, 7, "validation_accuracy")),
    );
    c.each("control validation accuracy % at level 7", control(7));
    c.given("seed", &[3.0]);
    c.claim(
        "the ticket's validation loss is below the control's at levels 7 and 10, every seed",
        runs.iter().all(|d| {
            [7, 10]
                .iter()
                .all(|&l| at(d, l, "validation_loss") < at(d, l, "control_validation_loss"))
        }),
    );
}

fn row12(r: &Runs, c: &mut Cell) {
    let run = r.get("connect").ok();
    let log = run.log.as_ref().expect("the connect CSV");
    let col = |name: &str| -> Vec<f64> {
        let i = log.col(name);
        log.rows.iter().map(|row| row[i]).collect()
    };
    let at = |name: &str, t: f64| {
        let i = log.rows.iter().position(|row| row[0] == t).expect("a point at t");
        log.rows[i][log.col(name)]
    };
    let (line, curve) = (col("line_train_loss"), col("curve_train_loss"));
    let peak = |v: &[f64]| max(v);
    let barrier = |v: &[f64]| max(v) - (v[0] + v[v.len() - 1]) / 2.0;
    let t_peak = |v: &[f64]| log.rows[v.iter().position(|x| *x == max(v)).unwrap()][0];
    c.given("seeds", &[1.0, 2.0]);
    c.given("epochs", &[30.0]);
    c.got("train loss at t = 0", line[0]);
    c.got("at t = 1", line[line.len() - 1]);
    let val = col("line_validation_accuracy");
    c.all("validation accuracy % of both", [100.0 * val[0], 100.0 * val[val.len() - 1]]);
    c.got("the line's highest train loss", peak(&line));
    c.got("at t", t_peak(&line));
    c.got("the line's barrier", barrier(&line));
    c.got("train accuracy % there", 100.0 * at("line_train_accuracy", 0.5));
    c.got("validation accuracy % there", 100.0 * at("line_validation_accuracy", 0.5));
    c.given("epochs of the curve", &[30.0]);
    c.got("the curve's highest train loss", peak(&curve));
    c.got("the curve's barrier", barrier(&curve));
    c.given("t", &[0.5]);
    c.got("curve train accuracy % at t = 0.5", 100.0 * at("curve_train_accuracy", 0.5));
    c.got("curve validation accuracy % at t = 0.5", 100.0 * at("curve_validation_accuracy", 0.5));
}

/// The least-squares slope of `ln y` against `ln x`.
fn log_log_slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    let (lx, ly): (Vec<f64>, Vec<f64>) = points.iter().map(|(x, y)| (x.ln(), y.ln())).unzip();
    let (mx, my) = (lx.iter().sum::<f64>() / n, ly.iter().sum::<f64>() / n);
    let cov: f64 = lx.iter().zip(&ly).map(|(x, y)| (x - mx) * (y - my)).sum();
    cov / lx.iter().map(|x| (x - mx).powi(2)).sum::<f64>()
}

fn row13(r: &Runs, c: &mut Cell) {
    let widths = [256.0, 1024.0, 4096.0, 16384.0];
    let runs = widths.map(|w| r.get(&format!("ntk{w}")).ok());
    let change = |d: &Done| d.grab(&d.stdout, r"(?m)^weight change .* (\S+)$");
    c.all("epochs", runs.iter().map(|d| d.epochs()));
    for (w, d) in widths.iter().zip(&runs) {
        c.given("width", &[*w]);
        c.got("weight change", change(d));
    }
    let points: Vec<(f64, f64)> = widths.iter().zip(&runs).map(|(w, d)| (*w, change(d))).collect();
    c.got("fitted slope", log_log_slope(&points));
    c.calc("the slope of the inverse square root", -0.5);
    for d in &runs {
        c.got("train accuracy %", d.acc());
    }
}

fn row14(r: &Runs, c: &mut Cell) {
    let init = r.get("clip_init");
    c.given("ReLU layers", &[20.0]);
    c.got("act_var of the last layer at init", init.init_at("act_var.layers.19.fc"));
    c.got("loss at step 1", init.at(1, "loss"));
    let g: Vec<f64> = init.init(dense_weight_grad).iter().map(|(_, v)| *v).collect();
    c.got("smallest weight gradient at init", min(&g));
    c.got("largest", max(&g));
    c.got("no clipping: lr", r.get("no_clip").at(1, "lr"));
    c.got("no clipping: NaN at step", r.get("no_clip").nan_step());
    for lr in ["0.01", "0.003", "0.001"] {
        c.given("lr", &[lr.parse().unwrap()]);
        c.claim(
            &format!("no clipping, lr {lr}: diverges"),
            r.get(&format!("no_clip_lr{lr}")).diverged(),
        );
    }
    c.given("global_norm", &[1.0]);
    c.got("clip: lr", r.get("clip_s1").ok().at(1, "lr"));
    let clip = r.seeds("clip");
    c.each("clip: train accuracy %", clip.map(|d| d.acc()));
    c.each("clip: validation accuracy %", clip.map(|d| d.val()));
    c.given("seeds", &[1.0, 2.0, 3.0]);
    c.got("small_lr: lr", r.get("small_lr_s1").ok().at(1, "lr"));
    let small = r.seeds("small_lr");
    c.each("small_lr: train accuracy %", small.map(|d| d.acc()));
    c.each("small_lr: validation accuracy %", small.map(|d| d.val()));
}

fn caveat_plain50(r: &Runs, c: &mut Cell) {
    c.given("phenomenon, depth", &[6.0, 50.0]);
    c.got("lr", r.get("plain6_s1").ok().at(1, "lr"));
    // A seed stalls if its final loss is chance's, ln 10 (to 1%).
    let runs = r.seeds("plain6");
    let stalls = |d: &Done| d.last("train", "loss") >= 0.99 * 10f64.ln();
    let (stalled, crawled): (Vec<&Done>, Vec<&Done>) = runs.iter().partition(|d| stalls(d));
    c.claim("one seed of three stalls", stalled.len() == 1);
    let mut l: Vec<f64> = stalled.iter().map(|d| d.last("train", "loss")).collect();
    l.push(10f64.ln());
    c.all("the stalled seed's final loss, and ln 10", l);
    c.given("ln 10", &[10.0]);
    c.all("its train accuracy %", stalled.iter().map(|d| d.acc()));
    let acc: Vec<f64> = crawled.iter().map(|d| d.acc()).collect();
    c.got("lowest train accuracy % of the others", min(&acc));
    c.got("highest", max(&acc));
    c.all("residual: train accuracy %, every seed", r.seeds("res").map(|d| d.acc()));
    let g: Vec<f64> =
        r.get("plain6_init").init(dense_weight_grad).iter().map(|(_, v)| *v).collect();
    c.got("smallest weight gradient norm at init", min(&g));
    c.got("largest", max(&g));
    c.given("seed", &[1.0]);
    c.got("interpreter, seed 1: train accuracy %", r.get("plain6_interp").acc());
    c.reference("an earlier build of the JIT: train accuracy % (not rerun)");
}

fn caveat_adam(r: &Runs, c: &mut Cell) {
    c.given("phenomenon", &[8.0]);
    c.given("inputs in [0, 1]", &[0.0, 1.0]);
    c.given("epoch", &[10.0]);
    c.got("digits_mlp, SGD lr 0.3: loss of epoch 10", r.get("mlp_sgd").epoch_loss(10));
    c.given("lr, and in --set", &[0.3, 0.3]);
    c.got("digits_mlp, Adam 1e-3: loss of epoch 10", r.get("mlp_adam").epoch_loss(10));
    c.given("lr", &[1e-3]);
    c.got("digits_mlp, Adam 3e-3: loss of epoch 10", r.get("mlp_adam3").epoch_loss(10));
    c.given("lr, and in --set", &[3e-3, 3e-3]);
}

fn caveat_warmup(r: &Runs, c: &mut Cell) {
    c.given("phenomenon, batch, lr", &[10.0, 1024.0, 0.2]);
    c.got("batch1024_scaled, cosine(T = 256): validation accuracy %", r.get("scaled_cosine").val());
    c.given("T", &[256.0]);
    c.given("batch", &[4096.0]);
    c.got("steps", r.get("b4096_warmup").steps());
    c.got("lr", r.get("b4096_cosine").ok().at(1, "lr"));
    c.given("--batch 4096 --steps 64 --set optimizer.lr=0.2", &[4096.0, 64.0, 0.2]);
    c.got("warmup(8) then cosine(T = 56): validation accuracy %", r.get("b4096_warmup").val());
    c.given("warmup, T", &[8.0, 56.0]);
    c.got("cosine(T = 64): validation accuracy %", r.get("b4096_cosine").val());
    c.given("T", &[64.0]);
    c.calc("chance: 100% / 5 classes", 20.0);
    c.got("lr", r.get("b4096_lr015_cosine").ok().at(1, "lr"));
    c.given("optimizer.lr", &[0.15]);
    c.got("with the warmup: validation accuracy %", r.get("b4096_lr015_warmup").val());
    c.got("without: validation accuracy %", r.get("b4096_lr015_cosine").val());
    c.reference("an earlier build: validation accuracy % with the warmup (not rerun)");
    c.given("at lr", &[3.2]);
}

fn caveat_normal_1(r: &Runs, c: &mut Cell) {
    c.given("phenomenon, N(0, 1)", &[3.0, 0.0, 1.0]);
    let (jit, interp) = (r.get("n1_init"), r.get("n1_init_interp"));
    c.got("initial loss, JIT", jit.ok().at(1, "loss"));
    c.got("initial loss, interpreter", interp.ok().at(1, "loss"));
    for run in [jit, interp] {
        let g = grads_head_first(run);
        let (head, stem) = (g[0].1, g.last().unwrap().1);
        c.got(&format!("{}: orders of magnitude", run.name), (stem / head).log10());
        c.got(&format!("{}: head weight gradient", run.name), head);
        c.got(&format!("{}: stem weight gradient", run.name), stem);
    }
}

fn caveat_normal_001(r: &Runs, c: &mut Cell) {
    c.given("phenomenon, N(0, 0.01)", &[3.0, 0.0, 0.01]);
    let run = r.get("n001_zero_bias_init");
    c.got("zero biases: the head's output variance", run.init_at("act_var.head"));
    let g: Vec<f64> = run.init(dense_weight_grad).iter().map(|(_, v)| *v).collect();
    c.got("zero biases: largest weight gradient", max(&g));
    let bias: Vec<f64> = run
        .init(|h| h.starts_with("grad_norm.") && h.ends_with(".bias"))
        .iter()
        .map(|(_, v)| *v)
        .collect();
    c.claim("zero biases: the bias gradients are not 0", bias.iter().any(|b| *b > 0.0));
    c.given("bias init N(0, 0.02²)", &[0.0, 0.02]);
}

fn caveat_least_squares(r: &Runs, c: &mut Cell) {
    c.given("phenomenon", &[1.0]);
    let ls = lstsq("examples/data/iris_petal.csv", "petal_width");
    let raw = r.get("raw");
    let b = raw.ok().weights("fit.bias")[0];
    c.got("bias − lstsq's", b - ls.b);
    c.got("bias", b);
    c.calc("lstsq's bias", ls.b);
    c.got("steps", raw.steps());
    let rate = 1.0 - 0.015 * ls.eig[0];
    c.calc("1 − lr·λmin", rate);
    c.calc("(1 − lr·λmin)^30000", rate.powi(30000));
    c.calc("κ = λmax/λmin", ls.eig[3] / ls.eig[0]);
    c.given("2/λmax", &[2.0]);
    c.calc("2/λmax", 2.0 / ls.eig[3]);
    c.calc("1 − lr·λmin", rate);
}

// ---------------------------------------------------------------------------------------

#[test]
fn the_phenomena_readme_quotes_what_the_runs_give() {
    let start = Instant::now();
    let readme = std::fs::read_to_string(README).unwrap();
    let texts = texts(&readme);
    assert!(texts.len() >= 17, "{} rows and caveats found", texts.len());

    let dir = scratch("phenomena-numbers");
    let mut all = specs();
    // Longest first (by the previous measurement), so the two threads finish together.
    let slow = [
        "plain6_interp",
        "n1_s",
        "n001_s",
        "xavier3_s",
        "fixup_s",
        "res_s",
        "plain_bn_s",
        "plain6_s",
    ];
    all.sort_by_key(|s| slow.iter().position(|p| s.name.starts_with(p)).unwrap_or(slow.len()));
    let next = AtomicUsize::new(0);
    let done = Mutex::new(HashMap::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(s) = all.get(i) else { break };
                let d = execute(&dir, s);
                done.lock().unwrap().insert(s.name.clone(), d);
            });
        }
    });
    let runs = Runs(done.into_inner().unwrap());
    let run_time = start.elapsed().as_secs_f64();
    let mut slowest: Vec<(&String, f64)> = runs.0.iter().map(|(n, d)| (n, d.secs)).collect();
    slowest.sort_by(|a, b| b.1.total_cmp(&a.1));
    let cpu: f64 = slowest.iter().map(|s| s.1).sum();

    let mut failures = Vec::new();
    for (key, text) in &texts {
        let mut cell = Cell::default();
        let measured = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            measure(key, &runs, &mut cell)
        }));
        let unchecked = UNCHECKED.iter().find(|(k, _)| k == key);
        match (measured, unchecked) {
            (Ok(false), Some((_, why))) => println!("{key}: unchecked: {why}"),
            (Ok(false), None) => failures.push(format!(
                "{key}: nothing measures it (add a function, or list it in UNCHECKED)"
            )),
            (Ok(true), Some(_)) => {
                failures.push(format!("{key}: measured, and listed in UNCHECKED"))
            }
            (Err(e), _) => {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()));
                failures
                    .push(format!("{key}: the measurement failed: {}", msg.unwrap_or_default()));
            }
            (Ok(true), None) => {
                let (table, fails) = compare(&numbers(text), &cell);
                println!("{key}:\n{}", table.join("\n"));
                if !fails.is_empty() {
                    failures.push(format!("{key}:\n{}", fails.join("\n")));
                }
            }
        }
    }
    for (key, _) in UNCHECKED {
        assert!(
            texts.iter().any(|(k, _)| k == key),
            "UNCHECKED names {key}, which the README does not have"
        );
    }
    println!(
        "{} runs in {run_time:.1} s on 2 threads ({cpu:.1} s of runs; slowest {}), {:.1} s in all",
        runs.0.len(),
        slowest.iter().take(4).map(|(n, s)| format!("{n} {s:.1} s")).collect::<Vec<_>>().join(", "),
        start.elapsed().as_secs_f64()
    );
    let features =
        ["avx512f", "avx2", "fma"].into_iter().filter(|f| has_feature(f)).collect::<Vec<_>>();
    assert!(
        failures.is_empty(),
        "{README} is out of date (tolerance {}%; this CPU has {}; the README's figures come from an AVX2/FMA machine without AVX-512):\n\n{}",
        REL * 100.0,
        features.join(", "),
        failures.join("\n\n")
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Whether this CPU runs the GEMM kernels the README's figures were measured with: the
/// `gemm` crate's AVX2/FMA kernels, which it picks on an x86-64 CPU without AVX-512.
fn same_kernels() -> bool {
    has_feature("avx2") && has_feature("fma") && !has_feature("avx512f")
}

fn has_feature(f: &str) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        match f {
            "avx512f" => std::is_x86_feature_detected!("avx512f"),
            "avx2" => std::is_x86_feature_detected!("avx2"),
            "fma" => std::is_x86_feature_detected!("fma"),
            _ => false,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = f;
        false
    }
}

#[test]
fn numbers_are_read_as_the_readme_writes_them() {
    assert_eq!(
        numbers("w = [−0.20731, 0.22281], steps 500-800, 2e-7, f32, layers.47 (×0.50, 2⁻²⁹ = 1.9e-9) 97/95%"),
        [-0.20731, 0.22281, 500.0, 800.0, 2e-7, 47.0, 0.50, 2.0, 1.9e-9, 97.0, 95.0]
    );
    assert_eq!(numbers("(−1, 1) 3e-4, -2 N(0,0.01)"), [-1.0, 1.0, 3e-4, -2.0, 0.0, 0.01]);
    let mut cell = Cell::default();
    cell.got("a", 0.0456);
    cell.calc("b", 2.0f64.ln());
    cell.given("c", &[300.0]);
    cell.reference("d");
    assert!(compare(&[0.0456, 0.6931, 300.0, 10.0], &cell).1.is_empty());
    let mut empty = Cell::default();
    empty.all("nothing measured", []);
    assert_eq!(compare(&[1.0], &empty).1.len(), 1);
    // A moved number, a missing one, an extra one, a changed setting, a false claim: each fails.
    assert_eq!(compare(&[0.0461, 0.6931, 300.0, 10.0], &cell).1.len(), 1);
    assert_eq!(compare(&[0.0456, 0.6931, 300.0], &cell).1.len(), 1);
    assert_eq!(compare(&[0.0456, 0.6931, 300.0, 10.0, 5.0], &cell).1.len(), 1);
    assert_eq!(compare(&[0.0456, 0.6931, 301.0, 10.0], &cell).1.len(), 1);
    cell.claim("e", false);
    assert_eq!(compare(&[0.0456, 0.6931, 300.0, 10.0], &cell).1.len(), 1);
    assert!(!agrees(0.0, 1e-30) && agrees(0.0, 0.0) && agrees(100.0, 99.0) && !agrees(100.0, 98.9));
    // The computed references: lstsq on an exact line, and a symmetric matrix's eigenvalues.
    let ev = eigenvalues(vec![vec![2.0, 1.0, 0.0], vec![1.0, 2.0, 0.0], vec![0.0, 0.0, 5.0]]);
    assert!(ev.iter().zip([1.0, 3.0, 5.0]).all(|(a, b)| (a - b).abs() < 1e-12), "{ev:?}");
    let x = solve(vec![vec![2.0, 1.0], vec![1.0, 3.0]], vec![3.0, 5.0]);
    assert!((x[0] - 0.8).abs() < 1e-12 && (x[1] - 1.4).abs() < 1e-12, "{x:?}");
    let readme = std::fs::read_to_string(README).unwrap();
    let keys: Vec<String> = texts(&readme).into_iter().map(|(k, _)| k).collect();
    for want in ["row 1", "row 10", "row 14", "1.", "3, N(0, 0.01)."] {
        assert!(keys.iter().any(|k| k == want), "{want} not among {keys:?}");
    }
}
