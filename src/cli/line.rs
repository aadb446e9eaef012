//! `nnc line`: loss and metrics along the line between two weight files, or along a curve
//! (`nnc::study::line`), written as CSV (`--out`) and drawn (`--plot`), with the barrier
//! table printed. Also what `connect` and `landscape` share with it: the evaluation flags
//! ([`Along`]), the grid of `t` ([`Grid`]), the compiled model with its data split
//! ([`Setup`]), and the table, CSV and picture of paths.
//!
//! CSV columns: `t`, then `train_<output>` for the loss and each metric, then
//! `validation_<output>` when the file holds out a validation split; one row per point.

use std::path::{Path as FsPath, PathBuf};

use clap::ValueEnum;

use nnc::check::TrainSpec;
use nnc::pipeline::{CompileOptions, Compiled};
use nnc::plot::{Figure, Lines, Series};
use nnc::study::curve;
use nnc::study::line::{self, Point, Settings};
use nnc::study::path::Path;
use nnc::train::data::{self, Dataset};
use nnc::train::report::{csv_f64, sig};
use nnc::train::session::{self, BackendKind};
use nnc::train::state::Weights;

use super::{
    backend_kind, base_dir, check_outputs, compile_with, default_threads, positive, run_spec,
    thread_count, BackendArg, Failure, RunArgs,
};
use super::{draw, write_text};

/// Batch norm's statistics at each point.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum BnArg {
    Recompute,
    Interpolate,
}

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The model file (.nn).
    file: PathBuf,
    /// The weights at t = 0.
    #[arg(long, value_name = "A.safetensors", required_unless_present = "curve", requires = "to")]
    from: Option<PathBuf>,
    /// The weights at t = 1.
    #[arg(long, value_name = "B.safetensors", requires = "from")]
    to: Option<PathBuf>,
    /// Along the curve `nnc connect --save` wrote instead of a line.
    #[arg(long, value_name = "CURVE.safetensors", conflicts_with_all = ["from", "to"])]
    curve: Option<PathBuf>,
    #[command(flatten)]
    grid: Grid,
    #[command(flatten)]
    along: Along,
}

/// The grid of `t` of `line` and `connect`.
#[derive(clap::Args)]
pub(crate) struct Grid {
    /// Points on [0, 1], both ends included.
    #[arg(long, default_value_t = 61, value_parser = at_least_two)]
    points: usize,
    /// Also evaluate this far beyond each end (same spacing), e.g. 0.25.
    #[arg(long, default_value_t = 0.0, value_parser = extent)]
    extend: f64,
}

impl Grid {
    /// No grid: the two ends (for a command that evaluates other points).
    pub const ENDS: Grid = Grid { points: 2, extend: 0.0 };
}

/// How `line`, `connect` and `landscape` evaluate weights, and where they write.
#[derive(clap::Args)]
pub(crate) struct Along {
    /// Batch norm's statistics at each point: recomputed by one pass over the training data
    /// (as `update_bn`), or the endpoints' interpolated like the parameters.
    #[arg(long, value_enum, default_value = "recompute")]
    bn: BnArg,
    /// Write one row per point here.
    #[arg(long, value_name = "FILE.csv")]
    pub out: Option<PathBuf>,
    /// Draw the losses against t here.
    #[arg(long, value_name = "FILE.svg|FILE.png")]
    pub plot: Option<PathBuf>,
    /// The engine: the JIT, or the reference interpreter.
    #[arg(long, value_enum, default_value = "jit")]
    backend: BackendArg,
    /// Threads of the JIT.
    #[arg(long, default_value_t = default_threads(), value_parser = thread_count)]
    threads: usize,
    #[command(flatten)]
    pub run: RunArgs,
}

pub(crate) fn at_least_two(s: &str) -> Result<usize, String> {
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

/// A compiled model ready to be evaluated along paths: its data split as training splits
/// it, and the grid.
pub(crate) struct Setup {
    pub c: Compiled,
    pub spec: TrainSpec,
    pub train: Dataset,
    pub validation: Option<Dataset>,
    pub settings: Settings,
    pub ts: Vec<f64>,
    pub kind: BackendKind,
}

impl Setup {
    /// Compiles `file` with `o` and loads its data, after checking that no output
    /// (`--out`, `--plot`, `extra_out`) overwrites an input (the file, its data, `inputs`).
    pub fn new(
        file: &FsPath,
        along: &Along,
        grid: &Grid,
        o: CompileOptions,
        inputs: &[(&str, &Option<PathBuf>)],
        extra_out: &[(&str, &Option<PathBuf>)],
    ) -> Result<Setup, Failure> {
        let c = compile_with(file, &o, along.run.seed)?;
        let mut outputs = vec![("--out", &along.out), ("--plot", &along.plot)];
        outputs.extend(extra_out);
        check_outputs(file, &c, &along.run, inputs, &outputs)?;
        session::check_memory(&c)?;
        let spec = run_spec(&c, &along.run);
        let ds = session::load_data(&c.model, &spec, base_dir(file), along.run.data.as_deref())?;
        let (train, validation) = data::split(ds, spec.validation, spec.split_seed());
        let settings = Settings {
            points: grid.points,
            extend: grid.extend,
            recompute_bn: matches!(along.bn, BnArg::Recompute),
            batch: spec.batch,
            eval_batch: spec.batch.max(256),
        };
        let ts = line::grid(settings.points, settings.extend);
        let kind = backend_kind(along.backend, along.threads);
        Ok(Setup { c, spec, train, validation, settings, ts, kind })
    }

    pub fn weights(&self, file: &FsPath) -> Result<Weights, Failure> {
        Ok(session::initial_weights(&self.c.model, self.spec.seed, Some(file))?)
    }

    /// What the grid and the statistics are, for the first line printed.
    pub fn describe(&self) -> String {
        let s = &self.settings;
        let has_bn = !nnc::study::bn::batch_norms(&self.c.model).is_empty();
        let stats = match (has_bn, s.recompute_bn) {
            (false, _) => String::new(),
            (true, true) => format!(
                ", batch-norm statistics recomputed at each point on {} training examples",
                self.train.len()
            ),
            (true, false) => ", batch-norm statistics interpolated".into(),
        };
        let beyond = match self.ts.len() - s.points {
            0 => String::new(),
            n => format!(" and {} beyond each end", n / 2),
        };
        format!("{} points on [0, 1]{beyond}{stats}", s.points)
    }

    /// Loss and metrics along `path`.
    pub fn evaluate(&self, path: &Path) -> Result<Vec<Point>, Failure> {
        let mut be = session::backend_with(self.kind, &self.c, path.nodes[0].clone())?;
        let (train, val) = (&self.train, self.validation.as_ref());
        Ok(line::evaluate(&self.c.model, be.as_mut(), path, &self.ts, train, val, &self.settings)?)
    }

    /// The names of the loss and the metrics.
    pub fn names(&self) -> Vec<&str> {
        self.c.forward.outputs.iter().map(|o| o.name.as_str()).collect()
    }
}

impl Along {
    /// The compilation of a command that evaluates weights no run produced: the file needs
    /// no optimizer, and a loss that overflows (far beyond the ends) is reported, not refused.
    pub fn evaluating(&self) -> CompileOptions {
        CompileOptions {
            purpose: nnc::check::Purpose::Evaluate,
            allow_nonfinite: true,
            sets: self.run.sets.clone(),
            ..Default::default()
        }
    }
}

pub(crate) fn run(a: Args) -> Result<(), Failure> {
    let o = a.along.evaluating();
    let inputs = [("--from", &a.from), ("--to", &a.to), ("--curve", &a.curve)];
    let s = Setup::new(&a.file, &a.along, &a.grid, o, &inputs, &[])?;
    let (path, what) = match (&a.curve, &a.from, &a.to) {
        (Some(f), _, _) => match curve::load(&s.c.model, f)? {
            Some(p) => {
                let bends = p.nodes.len() - 2;
                (p, format!("curve {} ({bends} bend(s))", f.display()))
            }
            None => {
                let m =
                    format!("{} is a weight file, not a curve: use --from and --to", f.display());
                return Err(Failure::Message(m));
            }
        },
        (None, Some(from), Some(to)) => (
            Path::line(s.weights(from)?, s.weights(to)?),
            format!("line from {} to {}", from.display(), to.display()),
        ),
        _ => return Err(Failure::Message("give --curve, or --from and --to".into())),
    };
    println!("{what}: {}", s.describe());
    let points = s.evaluate(&path)?;
    print!("{}", table(&[("", &points)]));
    write(
        &s.names(),
        &[("", &points)],
        &a.along.out,
        &a.along.plot,
        format!("loss along the {what}"),
    )
}

/// Points along one path, named for the table, the CSV and the legend ("" when alone).
pub(crate) type Named<'a> = (&'a str, &'a [Point]);

/// The loss of each split along the path: `(split, (t, loss) points)`.
fn losses(points: &[Point]) -> Vec<(&'static str, Vec<(f64, f64)>)> {
    let mut out = vec![("train", points.iter().map(|p| (p.t, p.train[0] as f64)).collect())];
    if points.first().is_some_and(|p| p.validation.is_some()) {
        let v = points.iter().filter_map(|p| Some((p.t, p.validation.as_ref()?[0] as f64)));
        out.push(("validation", v.collect()));
    }
    out
}

fn joined(a: &str, b: &str) -> String {
    [a, b].iter().filter(|s| !s.is_empty()).copied().collect::<Vec<_>>().join(" ")
}

/// The barrier table: a row per path and split.
pub(crate) fn table(paths: &[Named]) -> String {
    let row = |cells: [String; 7]| {
        let [a, b, c, d, e, f, g] = cells;
        format!("  {a:<22} {b:>11} {c:>11} {d:>11} {e:>7} {f:>11} {g:>11}\n")
    };
    let head = ["", "start", "end", "max", "at t", "mean", "barrier"];
    let mut s = row(head.map(String::from));
    let splits = losses(paths.first().map_or(&[], |p| p.1)).len();
    for k in 0..splits {
        for (name, points) in paths {
            let (split, values) = &losses(points)[k];
            let b = line::barrier(values);
            let v = |x: f64| sig(x, 5);
            let label = joined(name, &format!("{split} loss"));
            s += &row([
                label,
                v(b.start),
                v(b.end),
                v(b.max),
                sig(b.t_max, 3),
                v(b.mean),
                v(b.height),
            ]);
        }
    }
    s
}

/// One row per t: `t`, then each path's `<path>_<split>_<output>` columns.
pub(crate) fn csv(names: &[&str], paths: &[Named]) -> String {
    let mut header = vec!["t".to_string()];
    for (path, points) in paths {
        let mut splits = vec!["train"];
        if points.first().is_some_and(|p| p.validation.is_some()) {
            splits.push("validation");
        }
        for split in splits {
            header.extend(
                names.iter().map(|n| joined(path, &format!("{split} {n}")).replace(' ', "_")),
            );
        }
    }
    let mut text = header.join(",") + "\n";
    let rows = paths.first().map_or(0, |p| p.1.len());
    for i in 0..rows {
        let mut row = vec![csv_f64(paths[0].1[i].t)];
        for (_, points) in paths {
            let p = &points[i];
            let values = p.train.iter().chain(p.validation.iter().flatten());
            row.extend(values.map(|v| csv_f64(*v as f64)));
        }
        text += &(row.join(",") + "\n");
    }
    text
}

/// The losses of every path and split against t.
pub(crate) fn figure(title: String, paths: &[Named]) -> Lines {
    let series = paths
        .iter()
        .flat_map(|(name, points)| {
            losses(points).into_iter().map(move |(split, points)| Series {
                label: joined(name, &format!("{split} loss")),
                points,
            })
        })
        .collect();
    Lines { title, x_label: "t".into(), y_label: "loss".into(), series, log_x: false, log_y: false }
}

/// Writes the CSV and the picture when asked.
pub(crate) fn write(
    names: &[&str],
    paths: &[Named],
    out: &Option<PathBuf>,
    picture: &Option<PathBuf>,
    title: String,
) -> Result<(), Failure> {
    if let Some(p) = out {
        write_text(p, &csv(names, paths))?;
    }
    if let Some(p) = picture {
        draw(p, &Figure::Lines(figure(title, paths)))?;
    }
    Ok(())
}
