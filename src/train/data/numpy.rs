//! NumPy data: `x` and `y` arrays from two `.npy` files or from one `.npz` archive.
//!
//! `x` is `[N, ...]` whose per-example values number the model's feature count (reshaped
//! row-major to the model's feature shape); `y` is `[N]` or `[N, 1]` class indices, or
//! `[N, T]` targets (`[N]` when `T = 1`). Accepted dtypes, either byte order, C or Fortran
//! order: float32, float64, int32, int64, uint8; all become f32 after validation (labels
//! are validated in their own dtype, so `2.0000001` is not taken for class 2).
//!
//! Not handled: pickled (object) arrays, structured dtypes, other integer widths.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use npyz::{DType, NpyFile, Order, TypeChar};

use super::{class_index, feature, finite, DataError, DataShape, Dataset, LabelSpec, Loc};
use crate::tensor::Tensor;

/// Element storage in the file's own dtype.
pub(super) enum Values {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    U8(Vec<u8>),
}

impl Values {
    fn get(&self, i: usize) -> f64 {
        match self {
            Values::F32(v) => v[i] as f64,
            Values::F64(v) => v[i],
            Values::I32(v) => v[i] as f64,
            Values::I64(v) => v[i] as f64,
            Values::U8(v) => v[i] as f64,
        }
    }
    fn fortran_to_c(self, shape: &[usize]) -> Values {
        match self {
            Values::F32(v) => Values::F32(fortran_to_c(&v, shape)),
            Values::F64(v) => Values::F64(fortran_to_c(&v, shape)),
            Values::I32(v) => Values::I32(fortran_to_c(&v, shape)),
            Values::I64(v) => Values::I64(fortran_to_c(&v, shape)),
            Values::U8(v) => Values::U8(fortran_to_c(&v, shape)),
        }
    }
}

/// One array read from a file, in C order.
pub(super) struct Array {
    pub path: PathBuf,
    pub name: String,
    pub shape: Vec<usize>,
    pub values: Values,
}

impl Array {
    fn at(&self, flat: usize) -> Loc {
        Loc::Element { array: self.name.clone(), index: unravel(flat, &self.shape) }
    }
    fn mismatch(&self, message: String) -> DataError {
        DataError::ShapeMismatch { path: self.path.clone(), message }
    }
}

pub(super) fn load_npy(
    x: &Path,
    y: &Path,
    want: &DataShape,
    ids: Option<usize>,
) -> Result<Dataset, DataError> {
    assemble(open_npy(x, "x")?, open_npy(y, "y")?, want, ids)
}

pub(super) fn load_npz(
    path: &Path,
    x: &str,
    y: &str,
    want: &DataShape,
    ids: Option<usize>,
) -> Result<Dataset, DataError> {
    let file = crate::files::open_bounded(path, crate::files::available_memory())
        .map_err(|e| DataError::io(path, e))?;
    let mut archive =
        npyz::npz::NpzArchive::new(BufReader::new(file)).map_err(|e| DataError::io(path, e))?;
    let mut available: Vec<String> = archive.array_names().map(String::from).collect();
    available.sort();
    let mut get = |name: &str| -> Result<Array, DataError> {
        let corrupt = |e: std::io::Error| corrupt(path, name, e);
        match archive.by_name(name).map_err(corrupt)? {
            Some(file) => read(file, path, name),
            None => Err(array_missing(path, name, &available)),
        }
    };
    let (xa, ya) = (get(x)?, get(y)?);
    assemble(xa, ya, want, ids)
}

fn array_missing(path: &Path, name: &str, available: &[String]) -> DataError {
    let (path, name, available) = (path.to_path_buf(), name.to_string(), available.to_vec());
    DataError::ArrayMissing { path, name, available }
}

fn corrupt(path: &Path, name: &str, e: std::io::Error) -> DataError {
    let message = format!("array \"{name}\" is not a valid NumPy array: {e}");
    DataError::Io { path: path.to_path_buf(), message }
}

fn open_npy(path: &Path, name: &str) -> Result<Array, DataError> {
    let file = crate::files::open_bounded(path, crate::files::available_memory())
        .map_err(|e| DataError::io(path, e))?;
    let npy = NpyFile::new(BufReader::new(file)).map_err(|e| corrupt(path, name, e))?;
    read(npy, path, name)
}

fn read<R: Read>(file: NpyFile<R>, path: &Path, name: &str) -> Result<Array, DataError> {
    let shape: Vec<usize> = file.shape().iter().map(|&d| d as usize).collect();
    let fortran = file.order() == Order::Fortran;
    if shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).is_none() {
        let e = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("its shape {shape:?} has more elements than fit in memory"),
        );
        return Err(corrupt(path, name, e));
    }
    let dtype = file.dtype();
    let kind = match &dtype {
        DType::Plain(ts) if !file.uses_pickled_array() => Some((ts.type_char(), ts.size_field())),
        _ => None,
    };
    let bad = |e: std::io::Error| corrupt(path, name, e);
    let values = match kind {
        Some((TypeChar::Float, 4)) => Values::F32(file.into_vec().map_err(bad)?),
        Some((TypeChar::Float, 8)) => Values::F64(file.into_vec().map_err(bad)?),
        Some((TypeChar::Int, 4)) => Values::I32(file.into_vec().map_err(bad)?),
        Some((TypeChar::Int, 8)) => Values::I64(file.into_vec().map_err(bad)?),
        Some((TypeChar::Uint, 1)) => Values::U8(file.into_vec().map_err(bad)?),
        _ => {
            let (path, array) = (path.to_path_buf(), name.to_string());
            return Err(DataError::UnsupportedDtype { path, array, dtype: dtype.descr() });
        }
    };
    let values = if fortran && shape.len() > 1 { values.fortran_to_c(&shape) } else { values };
    Ok(Array { path: path.to_path_buf(), name: name.to_string(), shape, values })
}

/// Checks `x` and `y` against each other and the model, then converts to f32; with
/// `ids = Some(V)` the features must be integer ids in `0..V`.
pub(super) fn assemble(
    x: Array,
    y: Array,
    want: &DataShape,
    ids: Option<usize>,
) -> Result<Dataset, DataError> {
    let Some(&n) = x.shape.first() else {
        return Err(x.mismatch(format!("\"{}\" is a scalar, not [N, features...]", x.name)));
    };
    if n == 0 {
        return Err(DataError::Empty { path: x.path });
    }
    let per_example = x.shape[1..].to_vec();
    if per_example.iter().product::<usize>() != want.feature_count() {
        let found = if per_example.is_empty() { vec![1] } else { per_example };
        let want = want.features.clone();
        return Err(DataError::FeatureCount { path: x.path, found, want });
    }
    let y_shape = label_shape(&x, &y, n, want.label)?;
    let xs = (0..x.shape.iter().product())
        .map(|i| feature(x.values.get(i), ids, &x.path, || x.at(i)))
        .collect::<Result<Vec<f32>, _>>()?;
    let ys = (0..n * y_shape[1..].iter().product::<usize>())
        .map(|i| match want.label {
            LabelSpec::Classes(c) => class_index(y.values.get(i), c, &y.path, || y.at(i)),
            LabelSpec::Targets(_) => finite(y.values.get(i), &y.path, || y.at(i)),
        })
        .collect::<Result<Vec<f32>, _>>()?;
    let x_shape = [vec![n], want.features.clone()].concat();
    Ok(Dataset { x: Tensor::new(x_shape, xs), y: Tensor::new(y_shape, ys) })
}

/// The shape `y` becomes: `[N]` for classes (from `[N]` or `[N, 1]`), `[N, T]` for targets
/// (from `[N, T]`, or `[N]` when `T = 1`).
fn label_shape(x: &Array, y: &Array, n: usize, label: LabelSpec) -> Result<Vec<usize>, DataError> {
    if y.shape.first() != Some(&n) {
        return Err(y.mismatch(format!(
            "\"{}\" has {n} examples but \"{}\" has shape {:?}",
            x.name, y.name, y.shape
        )));
    }
    let ok = match label {
        LabelSpec::Classes(_) => y.shape == [n] || y.shape == [n, 1],
        LabelSpec::Targets(t) => y.shape == [n, t] || (t == 1 && y.shape == [n]),
    };
    let (want, what) = match label {
        LabelSpec::Classes(_) => (vec![n], "one class index per example".to_string()),
        LabelSpec::Targets(t) => (vec![n, t], format!("{t} targets per example")),
    };
    if !ok {
        return Err(y.mismatch(format!(
            "\"{}\" has shape {:?} but the model's label wants {want:?} ({what})",
            y.name, y.shape
        )));
    }
    Ok(want)
}

/// Row-major multi-index of flat position `flat`.
fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for k in (0..shape.len()).rev() {
        index[k] = flat % shape[k].max(1);
        flat /= shape[k].max(1);
    }
    index
}

/// Reorders column-major (Fortran) data to row-major.
fn fortran_to_c<T: Copy>(data: &[T], shape: &[usize]) -> Vec<T> {
    let mut strides = vec![1; shape.len()];
    for k in 1..shape.len() {
        strides[k] = strides[k - 1] * shape[k - 1];
    }
    let mut index = vec![0; shape.len()];
    let mut out = Vec::with_capacity(data.len());
    for _ in 0..data.len() {
        out.push(data[index.iter().zip(&strides).map(|(i, s)| i * s).sum::<usize>()]);
        for k in (0..shape.len()).rev() {
            index[k] += 1;
            if index[k] < shape[k] {
                break;
            }
            index[k] = 0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fortran_order_becomes_row_major() {
        // The 2x3 matrix [[0, 1, 2], [3, 4, 5]] stored column by column.
        let f = [0, 3, 1, 4, 2, 5];
        assert_eq!(fortran_to_c(&f, &[2, 3]), vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(unravel(5, &[2, 3]), vec![1, 2]);
    }
}
