//! `nnc sweep`: trains every combination of `--set KEY=V1,V2,...` values, each with
//! `--seeds` seeds, several runs at a time; writes one log per run, `runs.csv` (one row per
//! run: final and best losses and metrics, [`columns`]), `summary.csv` (mean and spread over
//! seeds per setting) and the curves of every
//! setting (mean over seeds) in `curves.svg` and, with a validation split, `val_curves.svg`.
//! Every combination is compiled, and so checked, before the first run starts. A run that
//! diverges is a result ("diverged at step N"), not a failure of the sweep.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use nnc::error::Error;
use nnc::pipeline::{CompileOptions, Compiled};
use nnc::plot::{self, Figure, Lines, Series};
use nnc::train::report::sig;
use nnc::train::session::{self, BackendKind, Options, Summary};
use nnc::train::sweep::{grid, mean_sd};

use super::plot::Table;
use super::{base_dir, compile_with, Failure, RunArgs};

pub(crate) struct Args {
    pub file: PathBuf,
    pub run: RunArgs,
    pub seeds: usize,
    pub jobs: Option<usize>,
    pub out: PathBuf,
    pub steps: Option<usize>,
    pub epochs: Option<usize>,
}

/// One run of the grid: its setting (index into the grid), seed, compiled model and log.
struct Run {
    point: usize,
    seed: u64,
    compiled: Compiled,
    log: PathBuf,
}

/// What a run ended with: its summary, or the step it diverged at.
enum Outcome {
    Done(Summary),
    Diverged(u64),
}

pub(crate) fn run(a: Args) -> Result<(), Failure> {
    let points = grid(&a.run.sets).map_err(Failure::Message)?;
    let keys: Vec<&str> = a.run.sets.iter().map(|s| s.split('=').next().unwrap_or("")).collect();
    let fail = |m: String| Failure::Message(format!("--out {}: {m}", a.out.display()));
    if std::fs::read_dir(&a.out).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(fail("not empty (a sweep writes its logs and tables there)".into()));
    }
    // Compile (and so check) every combination before any work.
    let compile = |sets: &[String], seed: Option<u64>| {
        let o = CompileOptions { sets: sets.to_vec(), ..Default::default() };
        compile_with(&a.file, &o, seed)
    };
    let first_seed = match a.run.seed {
        Some(s) => s,
        None => compile(&points[0], None)?.model.train.seed,
    };
    let mut runs = Vec::new();
    for (p, sets) in points.iter().enumerate() {
        for seed in (0..a.seeds as u64).map(|k| first_seed + k) {
            let i = runs.len();
            let name = format!("{:02}-{}-seed={seed}.csv", i + 1, file_name(&values(sets)));
            let compiled = compile(sets, Some(seed))?;
            runs.push(Run { point: p, seed, compiled, log: a.out.join(name) });
        }
    }
    std::fs::create_dir_all(&a.out).map_err(|e| fail(e.to_string()))?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = a.jobs.unwrap_or(cores).clamp(1, runs.len());
    println!(
        "sweep: {} settings x {} seeds = {} runs, {jobs} at a time, logs in {}",
        points.len(),
        a.seeds,
        runs.len(),
        a.out.display()
    );
    let outcomes = run_all(&a, &runs, &points, jobs);
    let mut results = Vec::new();
    for (r, o) in runs.iter().zip(outcomes) {
        match o {
            Ok(o) => results.push((r, o)),
            Err(e) => return Err(Failure::Message(format!("run {}: {e}", r.log.display()))),
        }
    }
    report(&a.out, &keys, &points, &results)
}

/// Runs `runs` on `jobs` threads (one JIT thread each), printing a line as each ends.
fn run_all(
    a: &Args,
    runs: &[Run],
    points: &[Vec<String>],
    jobs: usize,
) -> Vec<Result<Outcome, Error>> {
    let next = AtomicUsize::new(0);
    // The runs printed so far, the lines waiting to be printed, the outcomes.
    type State = (usize, Vec<Option<String>>, Vec<Option<Result<Outcome, Error>>>);
    let n = runs.len();
    let state: Mutex<State> = Mutex::new((0, vec![None; n], (0..n).map(|_| None).collect()));
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(r) = runs.get(i) else { break };
                let o = Options {
                    steps: a.steps,
                    epochs: a.epochs,
                    batch: a.run.batch,
                    seed: Some(r.seed),
                    data: a.run.data.clone(),
                    log: Some(r.log.clone()),
                    quiet: true,
                    ..Options::default()
                };
                let kind = BackendKind::Jit { threads: 1 };
                let outcome = match session::train(&r.compiled, kind, base_dir(&a.file), &o) {
                    Ok(s) => Ok(Outcome::Done(s)),
                    Err(Error::NonFinite(n)) => Ok(Outcome::Diverged(n.step)),
                    Err(e) => Err(e),
                };
                let said = match &outcome {
                    Ok(Outcome::Done(s)) => values_text(s),
                    Ok(Outcome::Diverged(step)) => format!("diverged at step {step}"),
                    Err(e) => format!("failed: {e}"),
                };
                // Lines in grid order: each run's once every run before it has ended.
                let mut guard = state.lock().unwrap();
                let (printed, lines, outcomes) = &mut *guard;
                lines[i] = Some(said);
                while let Some(said) = lines.get_mut(*printed).and_then(Option::take) {
                    let r = &runs[*printed];
                    let (k, at) = (*printed + 1, values(&points[r.point]));
                    println!("run {k}/{n}  {at} seed {}: {said}", r.seed);
                    *printed += 1;
                }
                outcomes[i] = Some(outcome);
            });
        }
    });
    let outcomes = state.into_inner().unwrap().2;
    outcomes.into_iter().map(|o| o.expect("every run ran")).collect()
}

/// A setting as text: `optimizer.lr=0.01 train.batch=32` (`default` for an empty grid).
fn values(sets: &[String]) -> String {
    match sets.is_empty() {
        true => "default".into(),
        false => sets.join(" "),
    }
}

/// `text` with every character a file name should not hold replaced by `_`.
fn file_name(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_alphanumeric() || "._=-".contains(c) { c } else { '_' })
        .collect()
}

fn values_text(s: &Summary) -> String {
    let mut parts: Vec<String> =
        s.names.iter().zip(&s.train).map(|(n, v)| format!("{n} {}", sig(*v as f64, 4))).collect();
    if let Some(val) = &s.validation {
        parts
            .extend(s.names.iter().zip(val).map(|(n, v)| format!("val_{n} {}", sig(*v as f64, 4))));
    }
    parts.join("  ")
}

/// The summary's columns for one run (NaN for a diverged run): the final train-split loss
/// and metrics, `best_loss` (the lowest epoch mean of the training loss in the log); with
/// validation, the final validation loss and metrics, `best_val_loss` (the lowest epoch-end
/// validation loss) and the validation metrics at that epoch (`best_val_<metric>`).
fn columns(first: &Summary) -> Vec<String> {
    let mut c = first.names.clone();
    c.push("best_loss".into());
    if first.validation.is_some() {
        c.extend(first.names.iter().map(|n| format!("val_{n}")));
        c.extend(first.names.iter().map(|n| format!("best_val_{n}")));
    }
    c
}

fn row(o: &Outcome, log: &Path, width: usize) -> Vec<f64> {
    let Outcome::Done(s) = o else { return vec![f64::NAN; width] };
    let t = Table::read(log).ok();
    let col = |name: &str| t.as_ref()?.columns.iter().position(|c| c == name);
    let num = |r: &[String], c: Option<usize>| r.get(c?)?.parse::<f64>().ok();
    let rows: &[Vec<String>] = t.as_ref().map_or(&[], |t| &t.rows);
    let mut v: Vec<f64> = s.train.iter().map(|x| *x as f64).collect();
    // Epoch means of the training loss, in epoch order.
    let (epoch, loss) = (col("epoch"), col("loss"));
    let mut means: Vec<(f64, f64, usize)> = Vec::new();
    for r in rows {
        let (Some(e), Some(l)) = (num(r, epoch), num(r, loss)) else { continue };
        match means.last_mut() {
            Some(m) if m.0 == e => (m.1, m.2) = (m.1 + l, m.2 + 1),
            _ => means.push((e, l, 1)),
        }
    }
    v.push(means.iter().map(|m| m.1 / m.2 as f64).fold(f64::NAN, f64::min));
    if let Some(val) = &s.validation {
        v.extend(val.iter().map(|x| *x as f64));
        // The row of the lowest validation loss gives its metrics too.
        let vl = col("val_loss");
        let best = rows
            .iter()
            .filter(|r| num(r, vl).is_some())
            .min_by(|a, b| num(a, vl).unwrap().total_cmp(&num(b, vl).unwrap()));
        for n in &s.names {
            v.push(best.and_then(|r| num(r, col(&format!("val_{n}")))).unwrap_or(f64::NAN));
        }
    }
    v
}

fn report(
    out: &Path,
    keys: &[&str],
    points: &[Vec<String>],
    results: &[(&Run, Outcome)],
) -> Result<(), Failure> {
    let first = results.iter().find_map(|(_, o)| match o {
        Outcome::Done(s) => Some(s),
        Outcome::Diverged(_) => None,
    });
    let cols = first.map(columns).unwrap_or_default();
    let setting = |p: usize| -> Vec<String> {
        points[p].iter().map(|s| s.split_once('=').map_or("", |x| x.1).to_string()).collect()
    };
    let names = |extra: &[&str]| -> Vec<String> {
        keys.iter().chain(extra).map(|k| k.to_string()).collect()
    };
    // Each run's values, read once (the best validation loss comes from its log).
    let values: Vec<Vec<f64>> = results.iter().map(|(r, o)| row(o, &r.log, cols.len())).collect();
    // One row per run.
    let mut runs_csv =
        csv_line(&[names(&["seed", "status"]), cols.clone(), vec!["log".into()]].concat());
    for ((r, o), vals) in results.iter().zip(&values) {
        let status = match o {
            Outcome::Done(_) => "ok".to_string(),
            Outcome::Diverged(step) => format!("diverged at step {step}"),
        };
        let vals = vals.iter().map(|v| cell(*v)).collect();
        let log = r.log.file_name().map_or(String::new(), |n| n.to_string_lossy().into());
        runs_csv += &csv_line(
            &[setting(r.point), vec![r.seed.to_string(), status], vals, vec![log]].concat(),
        );
    }
    // Mean and spread over seeds, per setting.
    let stats = cols.iter().flat_map(|c| [format!("{c}_mean"), format!("{c}_sd")]);
    let mut summary_csv = csv_line(&[names(&["runs", "diverged"]), stats.collect()].concat());
    let mut table = vec![[names(&["runs"]), cols.clone()].concat()];
    for p in 0..points.len() {
        let mine: Vec<usize> = (0..results.len()).filter(|&k| results[k].0.point == p).collect();
        let diverged =
            mine.iter().filter(|&&k| matches!(results[k].1, Outcome::Diverged(_))).count();
        let mut csv_fields =
            [setting(p), vec![mine.len().to_string(), diverged.to_string()]].concat();
        let mut shown = setting(p);
        shown.push(match diverged {
            0 => mine.len().to_string(),
            d => format!("{} ({d} diverged)", mine.len()),
        });
        for j in 0..cols.len() {
            let column: Vec<f64> = mine.iter().map(|&k| values[k][j]).collect();
            let (csv, text) = match mean_sd(&column) {
                Some((m, _, 1)) => ([cell(m), cell(0.0)], sig(m, 4)),
                Some((m, sd, _)) => {
                    ([cell(m), cell(sd)], format!("{} ± {}", sig(m, 4), sig(sd, 4)))
                }
                None => ([String::new(), String::new()], "-".into()),
            };
            csv_fields.extend(csv);
            shown.push(text);
        }
        summary_csv += &csv_line(&csv_fields);
        table.push(shown);
    }
    let write = |name: &str, text: &str| {
        let p = out.join(name);
        nnc::files::write_atomic(&p, text.as_bytes())
            .map_err(|e| Failure::Message(format!("cannot write {}: {e}", p.display())))
    };
    write("runs.csv", &runs_csv)?;
    write("summary.csv", &summary_csv)?;
    print!("{}", aligned(&table));
    for (column, name) in [("loss", "curves.svg"), ("val_loss", "val_curves.svg")] {
        let series = mean_curves(points, results, column);
        if series.iter().all(|s| s.points.is_empty()) {
            continue;
        }
        let lines = Lines {
            title: format!("{column}, mean over seeds"),
            x_label: "step".into(),
            y_label: column.into(),
            series,
            log_y: true,
            ..Default::default()
        };
        plot::write(&out.join(name), &Figure::Lines(lines))?;
    }
    println!("wrote runs.csv, summary.csv and the curves to {}", out.display());
    Ok(())
}

/// Per setting, the mean over its runs of `column` at each step that every run logged.
fn mean_curves(points: &[Vec<String>], results: &[(&Run, Outcome)], column: &str) -> Vec<Series> {
    let mut series = Vec::new();
    for (p, sets) in points.iter().enumerate() {
        let curves: Vec<Vec<(f64, f64)>> = results
            .iter()
            .filter(|(r, _)| r.point == p)
            .filter_map(|(r, _)| {
                let t = Table::read(&r.log).ok()?;
                let (x, y) = (t.column("step", &r.log).ok()?, t.column(column, &r.log).ok()?);
                Some(t.points(x, y))
            })
            .collect();
        // step -> (sum, count), steps in order.
        let mut at: std::collections::BTreeMap<u64, (f64, usize)> = Default::default();
        for &(x, y) in curves.iter().flatten() {
            let e = at.entry(x as u64).or_default();
            *e = (e.0 + y, e.1 + 1);
        }
        let curve = at
            .into_iter()
            .filter(|(_, (_, n))| *n == curves.len())
            .map(|(x, (sum, n))| (x as f64, sum / n as f64))
            .collect();
        series.push(Series { label: values(sets), points: curve });
    }
    series
}

/// A table value: shortest round-trip form of the f32 the runs computed in, empty when not
/// finite.
fn cell(v: f64) -> String {
    match v.is_finite() {
        true => nnc::train::report::csv_f32(v as f32),
        false => String::new(),
    }
}

/// One CSV line of `fields`, each quoted when it holds a comma or a quote.
fn csv_line(fields: &[String]) -> String {
    fields.iter().map(|f| quote(f)).collect::<Vec<_>>().join(",") + "\n"
}

/// A CSV field, quoted when it holds a comma or a quote.
fn quote(f: &str) -> String {
    match f.contains([',', '"']) {
        true => format!("\"{}\"", f.replace('"', "\"\"")),
        false => f.to_string(),
    }
}

/// Rows of cells as left-aligned columns, two spaces apart.
fn aligned(rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..rows.first().map_or(0, Vec::len))
        .map(|j| rows.iter().map(|r| r.get(j).map_or(0, |c| c.chars().count())).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let cells: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:w$}")).collect();
        out += cells.join("  ").trim_end();
        out.push('\n');
    }
    out
}
