//! `nnc line`: loss and metrics along the line between two weight files
//! (`nnc::study::line`), written as CSV (`--out`) and drawn (`--plot`), with the barrier
//! table printed.
//!
//! CSV columns: `t`, then `train_<output>` for the loss and each metric, then
//! `validation_<output>` when the file holds out a validation split; one row per point.

use std::path::PathBuf;

use clap::ValueEnum;
use nnc::pipeline::CompileOptions;
use nnc::plot::{self, Figure, Lines, Series};
use nnc::study::line::{self, Point, Settings};
use nnc::study::path::Path;
use nnc::train::report::{csv_f64, sig};
use nnc::train::{data, session};

use super::{
    backend_kind, base_dir, check_outputs, compile_with, default_threads, positive, run_spec,
    thread_count, BackendArg, Failure, RunArgs,
};

/// Batch norm's statistics at each point.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum BnArg {
    /// One pass over the training data at each point (as `update_bn`).
    Recompute,
    /// The endpoints' running statistics, mixed like the parameters.
    Interpolate,
}

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The model file (.nn).
    file: PathBuf,
    /// The weights at t = 0.
    #[arg(long, value_name = "A.safetensors")]
    from: PathBuf,
    /// The weights at t = 1.
    #[arg(long, value_name = "B.safetensors")]
    to: PathBuf,
    /// Points on [0, 1], both ends included.
    #[arg(long, default_value_t = 61, value_parser = at_least_two)]
    points: usize,
    /// Also evaluate this far beyond each end (same spacing), e.g. 0.25.
    #[arg(long, default_value_t = 0.0, value_parser = extent)]
    extend: f64,
    /// Batch norm's statistics at each point.
    #[arg(long, value_enum, default_value = "recompute")]
    bn: BnArg,
    /// Write one row per point here.
    #[arg(long, value_name = "FILE.csv")]
    out: Option<PathBuf>,
    /// Draw the losses against t here.
    #[arg(long, value_name = "FILE.svg|FILE.png")]
    plot: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "jit")]
    backend: BackendArg,
    /// Threads of the JIT.
    #[arg(long, default_value_t = default_threads(), value_parser = thread_count)]
    threads: usize,
    #[command(flatten)]
    run: RunArgs,
}

fn at_least_two(s: &str) -> Result<usize, String> {
    match positive(s) {
        Ok(n) if n >= 2 => Ok(n),
        _ => Err(format!("expected an integer of at least 2, found `{s}`")),
    }
}

fn extent(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if (0.0..=10.0).contains(&x) => Ok(x),
        _ => Err(format!("expected a number from 0 to 10, found `{s}`")),
    }
}

pub(crate) fn run(a: Args) -> Result<(), Failure> {
    // Far beyond the ends the loss may overflow: it is reported, not refused.
    let o = CompileOptions {
        purpose: nnc::check::Purpose::Evaluate,
        allow_nonfinite: true,
        sets: a.run.sets.clone(),
        ..Default::default()
    };
    let c = compile_with(&a.file, &o, a.run.seed)?;
    let inputs = [("--from", &Some(a.from.clone())), ("--to", &Some(a.to.clone()))];
    check_outputs(&a.file, &c, &a.run, &inputs, &[("--out", &a.out), ("--plot", &a.plot)])?;
    session::check_memory(&c)?;
    let spec = run_spec(&c, &a.run);
    let ds = session::load_data(&c.model, &spec, base_dir(&a.file), a.run.data.as_deref())?;
    let (train, validation) = data::split(ds, spec.validation, spec.seed);
    let from = session::initial_weights(&c.model, spec.seed, Some(&a.from))?;
    let to = session::initial_weights(&c.model, spec.seed, Some(&a.to))?;
    let mut be = session::backend_with(backend_kind(a.backend, a.threads), &c, from.clone())?;
    let s = Settings {
        points: a.points,
        extend: a.extend,
        recompute_bn: matches!(a.bn, BnArg::Recompute),
        batch: spec.batch,
        eval_batch: spec.batch.max(256),
    };
    let ts = line::grid(s.points, s.extend);
    let has_bn = !nnc::study::bn::batch_norms(&c.model).is_empty();
    let stats = match (has_bn, s.recompute_bn) {
        (false, _) => String::new(),
        (true, true) => format!(
            ", batch-norm statistics recomputed at each point on {} training examples",
            train.len()
        ),
        (true, false) => ", batch-norm statistics interpolated".into(),
    };
    let beyond = match ts.len() - s.points {
        0 => String::new(),
        n => format!(" and {} beyond each end", n / 2),
    };
    println!(
        "line from {} to {}: {} points on [0, 1]{beyond}{stats}",
        a.from.display(),
        a.to.display(),
        s.points
    );
    let path = Path::line(from, to);
    let points =
        line::evaluate(&c.model, be.as_mut(), &path, &ts, &train, validation.as_ref(), &s)?;
    let names: Vec<&str> = c.forward.outputs.iter().map(|o| o.name.as_str()).collect();
    print!("{}", table(&points));
    if let Some(p) = &a.out {
        nnc::files::write_atomic(p, csv(&names, &points).as_bytes())
            .map_err(|e| Failure::Message(format!("cannot write {}: {e}", p.display())))?;
        println!("wrote {}", p.display());
    }
    if let Some(p) = &a.plot {
        let title = format!("loss along the line from {} to {}", a.from.display(), a.to.display());
        plot::write(p, &Figure::Lines(figure(title, &points)))?;
        println!("wrote {}", p.display());
    }
    Ok(())
}

/// The loss of each split along the path: `(label, (t, loss) points)`.
fn losses(points: &[Point]) -> Vec<(&'static str, Vec<(f64, f64)>)> {
    let mut out = vec![("train", points.iter().map(|p| (p.t, p.train[0] as f64)).collect())];
    if points.first().is_some_and(|p| p.validation.is_some()) {
        let v = points.iter().filter_map(|p| Some((p.t, p.validation.as_ref()?[0] as f64)));
        out.push(("validation", v.collect()));
    }
    out
}

/// The barrier table: a row per split's loss.
fn table(points: &[Point]) -> String {
    let mut s = format!(
        "  {:<16}{:>12}{:>12}{:>12}{:>8}{:>12}{:>12}\n",
        "", "start", "end", "max", "at t", "mean", "barrier"
    );
    for (split, values) in losses(points) {
        let b = line::barrier(&values);
        s += &format!(
            "  {:<16}{:>12}{:>12}{:>12}{:>8}{:>12}{:>12}\n",
            format!("{split} loss"),
            sig(b.start, 5),
            sig(b.end, 5),
            sig(b.max, 5),
            sig(b.t_max, 3),
            sig(b.mean, 5),
            sig(b.height, 5)
        );
    }
    s
}

fn csv(names: &[&str], points: &[Point]) -> String {
    let mut header = vec!["t".to_string()];
    header.extend(names.iter().map(|n| format!("train_{n}")));
    if points.first().is_some_and(|p| p.validation.is_some()) {
        header.extend(names.iter().map(|n| format!("validation_{n}")));
    }
    let mut text = header.join(",") + "\n";
    for p in points {
        let mut row = vec![csv_f64(p.t)];
        let values = p.train.iter().chain(p.validation.iter().flatten());
        row.extend(values.map(|v| csv_f64(*v as f64)));
        text += &(row.join(",") + "\n");
    }
    text
}

fn figure(title: String, points: &[Point]) -> Lines {
    let series = losses(points)
        .into_iter()
        .map(|(split, points)| Series { label: format!("{split} loss"), points })
        .collect();
    Lines { title, x_label: "t".into(), y_label: "loss".into(), series, log_x: false, log_y: false }
}
