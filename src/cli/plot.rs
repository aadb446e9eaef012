//! `nnc plot`: training logs as curves (several runs overlaid, the legend from the file
//! names), or a `--log-layers` file as a heat map of one per-layer statistic over steps
//! (the vanishing/exploding view). Draws through `nnc::plot`.

use std::path::{Path, PathBuf};

use nnc::plot::{self, Figure, Heat, Lines, Series};

use super::Failure;

/// The per-layer statistics of a `--log-layers` file (column prefixes).
const LAYER_STATS: [&str; 4] = ["grad_norm", "weight_norm", "act_mean", "act_var"];

pub(crate) struct Args {
    pub logs: Vec<PathBuf>,
    pub y: Vec<String>,
    pub x: String,
    pub log_x: bool,
    pub log_y: bool,
    pub out: PathBuf,
    pub title: Option<String>,
}

/// A CSV file: its column names and rows of cells (empty where the log has no value).
pub(crate) struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn read(path: &Path) -> Result<Table, Failure> {
        let fail = |e: String| Failure::Message(format!("cannot read {}: {e}", path.display()));
        let file = nnc::files::open_bounded(path, nnc::files::available_memory())
            .map_err(|e| fail(e.to_string()))?;
        let mut r = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(file);
        let columns = r.headers().map_err(|e| fail(e.to_string()))?.iter().map(String::from);
        let columns: Vec<String> = columns.collect();
        let rows = r.records().map(|rec| rec.map(|r| r.iter().map(String::from).collect()));
        let rows =
            rows.collect::<Result<Vec<Vec<String>>, _>>().map_err(|e| fail(e.to_string()))?;
        Ok(Table { columns, rows })
    }

    /// `(x, y)` of every row where both cells are numbers.
    pub(crate) fn points(&self, x: usize, y: usize) -> Vec<(f64, f64)> {
        let num = |row: &[String], i: usize| row.get(i)?.parse::<f64>().ok();
        self.rows.iter().filter_map(|r| Some((num(r, x)?, num(r, y)?))).collect()
    }

    /// The index of column `name`, or an error that lists the columns.
    pub(crate) fn column(&self, name: &str, path: &Path) -> Result<usize, Failure> {
        self.columns.iter().position(|c| c == name).ok_or_else(|| {
            Failure::Message(format!(
                "{} has no column `{name}` (columns: {})",
                path.display(),
                self.columns.join(", ")
            ))
        })
    }

    fn is_layers_log(&self) -> bool {
        self.columns.iter().any(|c| LAYER_STATS.iter().any(|s| c.starts_with(&format!("{s}."))))
    }
}

pub(crate) fn run(a: Args) -> Result<(), Failure> {
    let inputs: Vec<(&str, &Path)> = a.logs.iter().map(|p| ("a log", p.as_path())).collect();
    nnc::files::check_outputs(&inputs, &[("--out", a.out.as_path())])
        .map_err(|e| Failure::Message(e.to_string()))?;
    let tables = a.logs.iter().map(|p| Table::read(p)).collect::<Result<Vec<_>, _>>()?;
    let figure = match tables.iter().any(Table::is_layers_log) {
        true => heat_map(&a, &tables)?,
        false => curves(&a, &tables)?,
    };
    let drawn = plot::write(&a.out, &figure)?;
    let series = match &figure {
        Figure::Lines(l) => format!("{} curves", l.series.len()),
        Figure::Heat(h) => format!("{} layers", h.rows.len()),
        Figure::Surface(s) => format!("a surface of {}x{}", s.x.len(), s.y.len()),
    };
    let dropped = match drawn.dropped {
        0 => String::new(),
        n => format!(" ({n} left out: not finite, or not positive on a log axis)"),
    };
    println!("wrote {}: {series}, {} points{dropped}", a.out.display(), drawn.points);
    Ok(())
}

fn curves(a: &Args, tables: &[Table]) -> Result<Figure, Failure> {
    let ys: Vec<String> = match a.y.is_empty() {
        false => a.y.clone(),
        // The loss, and the validation loss where a log has it.
        true => ["loss", "val_loss"]
            .into_iter()
            .filter(|c| *c == "loss" || tables.iter().any(|t| t.columns.iter().any(|n| n == c)))
            .map(String::from)
            .collect(),
    };
    let stems = names(&a.logs);
    let mut series = Vec::new();
    for ((t, path), stem) in tables.iter().zip(&a.logs).zip(&stems) {
        let x = t.column(&a.x, path)?;
        for y in &ys {
            let label = match (a.logs.len(), ys.len()) {
                (1, _) => y.clone(),
                (_, 1) => stem.clone(),
                _ => format!("{stem} {y}"),
            };
            series.push(Series { label, points: t.points(x, t.column(y, path)?) });
        }
    }
    let y_label = if ys.len() == 1 { ys[0].clone() } else { ys.join(", ") };
    Ok(Figure::Lines(Lines {
        title: a.title.clone().unwrap_or_else(|| format!("{y_label} against {}", a.x)),
        x_label: a.x.clone(),
        y_label,
        series,
        log_x: a.log_x,
        log_y: a.log_y,
    }))
}

/// The heat map of one statistic (`--y`, default `grad_norm`) of one `--log-layers` file.
fn heat_map(a: &Args, tables: &[Table]) -> Result<Figure, Failure> {
    if tables.len() != 1 || a.y.len() > 1 {
        let m = "a per-layer log is drawn alone, one statistic at a time (--y grad_norm, weight_norm, act_mean or act_var)";
        return Err(Failure::Message(m.into()));
    }
    let (t, path) = (&tables[0], &a.logs[0]);
    let stat = a.y.first().map_or("grad_norm", String::as_str);
    if !LAYER_STATS.contains(&stat) {
        return Err(Failure::Message(format!(
            "--y {stat}: a per-layer log has {}",
            LAYER_STATS.join(", ")
        )));
    }
    let x = t.column(&a.x, path)?;
    let prefix = format!("{stat}.");
    let cols: Vec<usize> =
        (0..t.columns.len()).filter(|&i| t.columns[i].starts_with(&prefix)).collect();
    if cols.is_empty() {
        return Err(Failure::Message(format!("{} has no `{stat}.*` columns", path.display())));
    }
    let cell = |r: &[String], i: usize| r.get(i).and_then(|v| v.parse::<f64>().ok());
    let rows: Vec<&Vec<String>> = t.rows.iter().filter(|r| cell(r, x).is_some()).collect();
    let xs: Vec<f64> = rows.iter().filter_map(|r| cell(r, x)).collect();
    let values = cols
        .iter()
        .map(|&c| rows.iter().map(|r| cell(r, c).unwrap_or(f64::NAN)).collect())
        .collect();
    Ok(Figure::Heat(Heat {
        title: a.title.clone().unwrap_or_else(|| format!("{stat} per layer")),
        x_label: a.x.clone(),
        value_label: stat.to_string(),
        rows: cols.iter().map(|&c| t.columns[c][prefix.len()..].to_string()).collect(),
        x: xs,
        values,
        // Means can be negative; norms and variances are read on a log scale.
        log: stat != "act_mean" || a.log_y,
    }))
}

/// The legend names of the logs: their file stems, or their paths where stems repeat.
pub(crate) fn names(paths: &[PathBuf]) -> Vec<String> {
    let stem = |p: &PathBuf| p.file_stem().map_or(String::new(), |s| s.to_string_lossy().into());
    let stems: Vec<String> = paths.iter().map(stem).collect();
    let unique = stems.iter().all(|s| stems.iter().filter(|t| *t == s).count() == 1);
    match unique {
        true => stems,
        false => paths.iter().map(|p| p.display().to_string()).collect(),
    }
}
