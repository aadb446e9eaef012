//! [`DataError`]: everything that can be wrong with a data file or a synthetic set, as a
//! typed value whose `Display` names the file, the place and the problem in one line.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::check::model::Synthetic;

/// Where in a file a bad value sits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Loc {
    /// A CSV cell: the file's line number (the header is line 1) and the column's name.
    Cell { line: u64, column: String },
    /// An element of a NumPy array: the array's name and the index (`y[12]`, `x[3, 7]`).
    Element { array: String, index: Vec<usize> },
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Loc::Cell { line, column } => write!(f, "line {line}, column \"{column}\""),
            Loc::Element { array, index } => {
                let idx: Vec<String> = index.iter().map(|i| i.to_string()).collect();
                write!(f, "{array}[{}]", idx.join(", "))
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum DataError {
    /// The file does not exist.
    NotFound { path: PathBuf },
    /// Reading failed otherwise (permissions, a directory, a corrupt `.npy`/`.npz` ...).
    Io { path: PathBuf, message: String },
    /// Malformed CSV (a row with the wrong number of cells, invalid UTF-8 ...).
    Csv { path: PathBuf, line: u64, message: String },
    /// No examples (a header only, or arrays of length 0).
    Empty { path: PathBuf },
    /// The label column named in the spec is not in the CSV header.
    MissingLabelColumn {
        path: PathBuf,
        label: String,
        columns: Vec<String>,
        suggestion: Option<String>,
    },
    /// A CSV cell that does not parse as a number.
    NonNumeric { path: PathBuf, at: Loc, value: String },
    /// NaN or an infinity among the features or targets.
    NonFinite { path: PathBuf, at: Loc, value: f64 },
    /// A class label with a fractional part.
    NonIntegerLabel { path: PathBuf, at: Loc, value: f64 },
    /// A class label outside `0..classes`.
    LabelOutOfRange { path: PathBuf, at: Loc, value: f64, classes: usize },
    /// A value of an id input (`class[B, ...] of ids`) that is not an integer in `0..ids`.
    BadId { path: PathBuf, at: Loc, value: f64, ids: usize },
    /// The per-example feature shape in the file does not hold as many values as the
    /// model's input wants.
    FeatureCount { path: PathBuf, found: Vec<usize>, want: Vec<usize> },
    /// An `.npz` archive without the named array.
    ArrayMissing { path: PathBuf, name: String, available: Vec<String> },
    /// A NumPy dtype other than float32, float64, int32, int64, uint8.
    UnsupportedDtype { path: PathBuf, array: String, dtype: String },
    /// Any other shape disagreement (example counts, label shape), described in `message`.
    ShapeMismatch { path: PathBuf, message: String },
    /// A synthetic set that cannot produce what the model wants.
    Synthetic { kind: Synthetic, message: String },
}

impl DataError {
    pub(crate) fn io(path: &Path, err: std::io::Error) -> DataError {
        match err.kind() {
            std::io::ErrorKind::NotFound => DataError::NotFound { path: path.to_path_buf() },
            _ => DataError::Io { path: path.to_path_buf(), message: err.to_string() },
        }
    }
}

/// `a, b, c` — or the first few, `...` and the last two when there are many.
fn list(items: &[String]) -> String {
    if items.len() <= 10 {
        return items.join(", ");
    }
    let head = items[..6].join(", ");
    let tail = items[items.len() - 2..].join(", ");
    format!("{head}, ..., {tail} ({} in all)", items.len())
}

fn dims(shape: &[usize]) -> String {
    let d: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", d.join(", "))
}

/// `63` for a flat shape, `[8, 8] (64 values)` otherwise.
fn count(shape: &[usize]) -> String {
    let n: usize = shape.iter().product();
    if shape.len() == 1 {
        n.to_string()
    } else {
        format!("{} ({n} values)", dims(shape))
    }
}

fn number(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// A cell as shown in a message: quoted, control characters escaped, cut after 40 characters.
fn quote(cell: &str) -> String {
    let cut: String = cell.chars().take(40).collect();
    let more = if cut.len() < cell.len() { "…" } else { "" };
    format!("\"{}{more}\"", cut.escape_debug())
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        use DataError::*;
        match self {
            NotFound { path } => write!(f, "data file \"{}\" not found", path.display()),
            Io { path, message } => write!(f, "cannot read \"{}\": {message}", path.display()),
            Csv { path, line, message } => {
                write!(f, "\"{}\", line {line}: {message}", path.display())
            }
            Empty { path } => write!(f, "\"{}\" holds no examples", path.display()),
            MissingLabelColumn { path, label, columns, suggestion } => {
                write!(f, "\"{}\" has no label column \"{label}\"", path.display())?;
                if let Some(s) = suggestion {
                    write!(f, "; did you mean \"{s}\"?")?;
                }
                write!(f, " (columns: {})", list(columns))
            }
            NonNumeric { path, at, value } if value.is_empty() => {
                write!(f, "\"{}\", {at}: empty cell, expected a number", path.display())
            }
            NonNumeric { path, at, value } => {
                write!(f, "\"{}\", {at}: {} is not a number", path.display(), quote(value))
            }
            NonFinite { path, at, value } if value.is_finite() => write!(
                f,
                "\"{}\", {at}: value {value:e} overflows f32 (whose largest is {:e})",
                path.display(),
                f32::MAX
            ),
            NonFinite { path, at, value } => {
                write!(f, "\"{}\", {at}: value {value} is not finite", path.display())
            }
            NonIntegerLabel { path, at, value } => {
                write!(f, "\"{}\", {at}: class label {value} is not an integer", path.display())
            }
            LabelOutOfRange { path, at, value, classes } => write!(
                f,
                "\"{}\", {at}: label {} out of range for {classes} classes (0..={})",
                path.display(),
                number(*value),
                classes.saturating_sub(1)
            ),
            BadId { path, at, value, ids } => write!(
                f,
                "\"{}\", {at}: id {} is not an integer in 0..{ids} (the input holds ids for an \
                 Embedding)",
                path.display(),
                number(*value)
            ),
            FeatureCount { path, found, want } => write!(
                f,
                "\"{}\": feature count {} but the model's input wants {}",
                path.display(),
                count(found),
                count(want)
            ),
            ArrayMissing { path, name, available } => {
                write!(f, "\"{}\" has no array \"{name}\"", path.display())?;
                if let Some(s) = super::closest(name, available.iter().map(String::as_str)) {
                    write!(f, "; did you mean \"{s}\"?")?;
                }
                write!(f, " (arrays: {})", list(available))
            }
            UnsupportedDtype { path, array, dtype } => write!(
                f,
                "\"{}\": array \"{array}\" has dtype {dtype}, which is not supported \
                 (use float32, float64, int32, int64 or uint8)",
                path.display()
            ),
            ShapeMismatch { path, message } => write!(f, "\"{}\": {message}", path.display()),
            Synthetic { kind, message } => {
                write!(f, "synthetic data set {}: {message}", format!("{kind:?}").to_lowercase())
            }
        }
    }
}

impl std::error::Error for DataError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_file_place_and_problem() {
        let path = PathBuf::from("d.csv");
        let at = Loc::Cell { line: 5, column: "label".into() };
        let e = DataError::LabelOutOfRange { path: path.clone(), at, value: 12.0, classes: 10 };
        assert_eq!(
            e.to_string(),
            "\"d.csv\", line 5, column \"label\": label 12 out of range for 10 classes (0..=9)"
        );
        let e = DataError::FeatureCount { path, found: vec![63], want: vec![1, 8, 8] };
        assert_eq!(
            e.to_string(),
            "\"d.csv\": feature count 63 but the model's input wants [1, 8, 8] (64 values)"
        );
        let at = Loc::Element { array: "x".into(), index: vec![3, 7] };
        assert_eq!(at.to_string(), "x[3, 7]");
    }

    #[test]
    fn long_column_lists_are_abbreviated() {
        let cols: Vec<String> = (0..65).map(|i| format!("p{i}")).collect();
        assert_eq!(list(&cols), "p0, p1, p2, p3, p4, p5, ..., p63, p64 (65 in all)");
    }
}
