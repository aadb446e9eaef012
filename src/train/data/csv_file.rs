//! CSV data: one header row, one example per row. The label column is named; every other
//! column is a feature, in column order. Cells are trimmed and parsed as numbers.
//!
//! Not handled here: several target columns (a CSV label is one column, so a
//! [`LabelSpec::Targets`] label must want exactly one target), missing-value conventions
//! (an empty cell is an error).

use std::io::BufReader;
use std::path::Path;

use super::{class_index, closest, feature, finite, DataError, DataShape, Dataset, LabelSpec, Loc};
use crate::tensor::Tensor;

/// `ids = Some(V)`: the features are integer ids in `0..V`.
pub(super) fn load(
    path: &Path,
    label: &str,
    want: &DataShape,
    ids: Option<usize>,
) -> Result<Dataset, DataError> {
    load_labelled(path, label, want, ids, false).map(|(ds, _)| ds)
}

/// [`load`], and with `optional_label` a file without the label column whose other columns
/// are exactly the features is read too, with labels 0; the flag says whether the labels
/// were read.
pub(super) fn load_labelled(
    path: &Path,
    label: &str,
    want: &DataShape,
    ids: Option<usize>,
    optional_label: bool,
) -> Result<(Dataset, bool), DataError> {
    let file = crate::files::open_bounded(path, crate::files::available_memory())
        .map_err(|e| DataError::io(path, e))?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(BufReader::new(file));
    let columns: Vec<String> =
        reader.headers().map_err(|e| csv_error(path, e))?.iter().map(String::from).collect();
    if columns.is_empty() {
        return Err(DataError::Empty { path: path.to_path_buf() });
    }
    let label_col = match label_column(path, label, &columns) {
        Err(_) if optional_label && columns.len() == want.feature_count() => None,
        col => {
            let col = col?;
            check_layout(path, label, &columns, want)?;
            Some(col)
        }
    };

    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(path, e))?;
        let line = record.position().map_or(0, |p| p.line());
        for (j, cell) in record.iter().enumerate() {
            let at = || Loc::Cell { line, column: columns[j].clone() };
            let v = parse(cell, path, at)?;
            match (Some(j) == label_col, want.label) {
                (true, LabelSpec::Classes(c)) => ys.push(class_index(v, c, path, at)?),
                (true, LabelSpec::Targets(_)) => ys.push(finite(v, path, at)?),
                (false, _) => xs.push(feature(v, ids, path, at)?),
            }
        }
    }
    let n = xs.len() / want.feature_count().max(1);
    if label_col.is_none() {
        ys = vec![0.0; n * y_width(want.label)];
    }
    if n == 0 {
        return Err(DataError::Empty { path: path.to_path_buf() });
    }
    let y_shape = match want.label {
        LabelSpec::Classes(_) => vec![n],
        LabelSpec::Targets(t) => vec![n, t],
    };
    let x_shape = [vec![n], want.features.clone()].concat();
    let ds = Dataset { x: Tensor::new(x_shape, xs), y: Tensor::new(y_shape, ys) };
    Ok((ds, label_col.is_some()))
}

/// Label values per example.
fn y_width(label: LabelSpec) -> usize {
    match label {
        LabelSpec::Classes(_) => 1,
        LabelSpec::Targets(t) => t,
    }
}

fn label_column(path: &Path, label: &str, columns: &[String]) -> Result<usize, DataError> {
    columns.iter().position(|c| c == label).ok_or_else(|| DataError::MissingLabelColumn {
        path: path.to_path_buf(),
        label: label.to_string(),
        columns: columns.to_vec(),
        suggestion: closest(label, columns.iter().map(String::as_str)).map(String::from),
    })
}

/// The header must give exactly the model's feature count, and one label column must be
/// enough for the label.
fn check_layout(
    path: &Path,
    label: &str,
    columns: &[String],
    want: &DataShape,
) -> Result<(), DataError> {
    let found = columns.len() - 1;
    if found != want.feature_count() {
        let (path, want) = (path.to_path_buf(), want.features.clone());
        return Err(DataError::FeatureCount { path, found: vec![found], want });
    }
    match want.label {
        LabelSpec::Targets(t) if t != 1 => Err(DataError::ShapeMismatch {
            path: path.to_path_buf(),
            message: format!(
                "a CSV file has one label column (\"{label}\") but the model's label wants \
                 {t} targets per example; use .npy or .npz for several targets"
            ),
        }),
        _ => Ok(()),
    }
}

fn parse(cell: &str, path: &Path, at: impl FnOnce() -> Loc) -> Result<f64, DataError> {
    cell.parse::<f64>().map_err(|_| DataError::NonNumeric {
        path: path.to_path_buf(),
        at: at(),
        value: cell.to_string(),
    })
}

fn csv_error(path: &Path, err: csv::Error) -> DataError {
    let line = err.position().map_or(0, |p| p.line());
    let message = match err.kind() {
        csv::ErrorKind::Io(e) => {
            return DataError::Io { path: path.to_path_buf(), message: e.to_string() };
        }
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("row has {len} cells but the header has {expected_len} columns")
        }
        csv::ErrorKind::Utf8 { .. } => "invalid UTF-8".to_string(),
        _ => err.to_string(),
    };
    DataError::Csv { path: path.to_path_buf(), line, message }
}
