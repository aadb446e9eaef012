//! Weight files: safetensors whose tensor names and layouts are PyTorch's `state_dict`
//! (`fc1.weight` is `[out, in]`, `blocks.0.fc1.bias`, ...), so a model trained here loads
//! in PyTorch (`model.load_state_dict(safetensors.torch.load_file(path))`) and back.
//!
//! Invariants: [`save`] writes F32 and never leaves a half-written file at `path` (it writes
//! a temporary file in the same directory, syncs it, then renames it over `path`), streaming
//! the tensors' own memory to the file: saving holds no copy of the weights (the 67 MB of a
//! 16.8 M-parameter model raised the peak RSS of `train --save` by 197 MB when the bytes,
//! then the whole file, were built in memory first; now by 66 MB, the backend's copy out).
//! [`load`] accepts F32, F64, F16, BF16 and integer tensors, all converted to f32.
//! [`load_into`] is strict: every wanted name present with the wanted shape, no unknown
//! tensors, except PyTorch's batch-norm step counters (`*.num_batches_tracked`), which
//! carry no weights: ignored unless asked for, and 0 when asked for but absent (as PyTorch's
//! `load_state_dict` does for a state_dict without them), which [`Loaded::defaulted`] lists.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use super::data::closest;
use crate::tensor::Tensor;

#[derive(Clone, Debug, PartialEq)]
pub enum WeightsError {
    /// The file does not exist.
    NotFound { path: PathBuf },
    /// Reading failed otherwise.
    Io { path: PathBuf, message: String },
    /// Not a valid safetensors file.
    Format { path: PathBuf, message: String },
    /// A tensor of a dtype that is not a number we convert.
    Dtype { path: PathBuf, name: String, dtype: String },
    /// Wanted tensors absent from the file, in the model's order; `suggestion` is the file's
    /// closest name to the first of them.
    Missing { path: PathBuf, names: Vec<String>, suggestion: Option<String> },
    /// A tensor whose shape differs from the model's parameter.
    Shape { path: PathBuf, name: String, file: Vec<usize>, want: Vec<usize> },
    /// Tensors in the file that the model has no parameter for.
    Unexpected { path: PathBuf, names: Vec<String> },
    /// A tensor holding NaN or an infinity (its first such element, as a multi-index).
    NonFinite { path: PathBuf, name: String, at: Vec<usize>, value: f32 },
}

/// The first element of `t` that is NaN or infinite: its multi-index and value.
pub fn first_non_finite(t: &Tensor<f32>) -> Option<(Vec<usize>, f32)> {
    let flat = t.data.iter().position(|v| !v.is_finite())?;
    let mut at = vec![0; t.shape.len()];
    let mut rest = flat;
    for (i, &n) in t.shape.iter().enumerate().rev() {
        at[i] = rest % n.max(1);
        rest /= n.max(1);
    }
    Some((at, t.data[flat]))
}

fn quoted(names: &[String]) -> String {
    let q: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    q.join(", ")
}

impl fmt::Display for WeightsError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        use WeightsError::*;
        match self {
            NotFound { path } => write!(f, "weights file \"{}\" not found", path.display()),
            Io { path, message } => write!(f, "cannot read \"{}\": {message}", path.display()),
            Format { path, message } => {
                write!(f, "\"{}\" is not a valid safetensors file: {message}", path.display())
            }
            Dtype { path, name, dtype } => write!(
                f,
                "\"{}\": tensor `{name}` has dtype {dtype}, which is not supported \
                 (use F32, F64, F16, BF16 or an integer type)",
                path.display()
            ),
            Missing { path, names, suggestion } => {
                write!(f, "weights file \"{}\" lacks {}", path.display(), quoted(names))?;
                match suggestion {
                    Some(s) => write!(f, "; the file has `{s}`"),
                    None => Ok(()),
                }
            }
            Shape { path, name, file, want } => write!(
                f,
                "\"{}\": `{name}` has shape {file:?} in the file but the model wants {want:?}",
                path.display()
            ),
            Unexpected { path, names } => {
                let what = if names.len() == 1 { "tensor" } else { "tensors" };
                write!(f, "\"{}\": unexpected {what} {} in the file", path.display(), quoted(names))
            }
            NonFinite { path, name, at, value } => write!(
                f,
                "\"{}\": `{name}` holds {value} at {at:?}: weights must be finite numbers",
                path.display()
            ),
        }
    }
}

impl std::error::Error for WeightsError {}

/// Writes `tensors` as F32 safetensors at `path`, atomically. Duplicate names are an
/// `InvalidInput` error.
pub fn save(path: &Path, tensors: &[(String, &Tensor<f32>)]) -> io::Result<()> {
    save_with(path, tensors, &[], None)
}

#[cfg(not(target_endian = "little"))]
compile_error!("safetensors files are little-endian, and so must the host's floats be");

/// Writes `f32s` as F32 and `f64s` as F64 tensors with `metadata` in the header, atomically,
/// streaming each tensor's memory to the file (no copy of the weights is made).
pub fn save_with(
    path: &Path,
    f32s: &[(String, &Tensor<f32>)],
    f64s: &[(String, &Tensor<f64>)],
    metadata: Option<HashMap<String, String>>,
) -> io::Result<()> {
    // Checked here: safetensors 0.8 panics on duplicate names while serializing.
    let mut seen = HashSet::new();
    let names = f32s.iter().map(|t| &t.0).chain(f64s.iter().map(|t| &t.0));
    if let Some(name) = names.clone().find(|n| !seen.insert(n.as_str())) {
        let message = format!("tensor name `{name}` appears twice");
        return Err(io::Error::new(io::ErrorKind::InvalidInput, message));
    }
    type Piece<'a> = (&'a String, Dtype, &'a Vec<usize>, &'a [u8]);
    fn view(p: Piece<'_>) -> Result<(&str, TensorView<'_>), safetensors::SafeTensorError> {
        Ok((p.0.as_str(), TensorView::new(p.1, p.2.clone(), p.3)?))
    }
    let f32v = f32s.iter().map(|(n, t)| (n, Dtype::F32, &t.shape, bytemuck::cast_slice(&t.data)));
    let f64v = f64s.iter().map(|(n, t)| (n, Dtype::F64, &t.shape, bytemuck::cast_slice(&t.data)));
    let views = f32v
        .chain(f64v)
        .map(view)
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()
        .map_err(invalid)?;
    crate::files::write_atomic_with(path, |tmp| {
        // safetensors streams into a temporary file of its own (`.tmpXXXXXX`, mode 0600)
        // and renames it to `tmp`: the file gets the mode a new file gets here instead.
        let mode = std::fs::File::create(tmp)?.metadata()?.permissions();
        safetensors::serialize_to_file(views, metadata, tmp).map_err(|e| match e {
            safetensors::SafeTensorError::IoError(e) => e,
            e => invalid(e),
        })?;
        std::fs::set_permissions(tmp, mode)
    })
}

fn invalid(e: safetensors::SafeTensorError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e.to_string())
}

/// Every tensor in the file, converted to f32, sorted by name.
pub fn load(path: &Path) -> Result<Vec<(String, Tensor<f32>)>, WeightsError> {
    let read = |path: &Path| -> io::Result<Vec<u8>> {
        let mut f = crate::files::open_bounded(path, crate::files::available_memory())?;
        let mut bytes = Vec::new();
        io::Read::read_to_end(&mut f, &mut bytes)?;
        Ok(bytes)
    };
    let bytes = read(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => WeightsError::NotFound { path: path.to_path_buf() },
        _ => WeightsError::Io { path: path.to_path_buf(), message: e.to_string() },
    })?;
    let file = SafeTensors::deserialize(&bytes)
        .map_err(|e| WeightsError::Format { path: path.to_path_buf(), message: e.to_string() })?;
    let mut out = file
        .iter()
        .map(|(name, view)| {
            let data = to_f32(&view).ok_or_else(|| WeightsError::Dtype {
                path: path.to_path_buf(),
                name: name.to_string(),
                dtype: format!("{:?}", view.dtype()),
            })?;
            if data.len() != view.shape().iter().product::<usize>() {
                let message = format!("tensor `{name}` holds the wrong number of bytes");
                return Err(WeightsError::Format { path: path.to_path_buf(), message });
            }
            Ok((name.to_string(), Tensor::new(view.shape().to_vec(), data)))
        })
        .collect::<Result<Vec<_>, WeightsError>>()?;
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// What a safetensors file's header says: its tensors' names and its metadata.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Header {
    pub names: Vec<String>,
    pub metadata: HashMap<String, String>,
}

/// The header of the file at `path`, read alone (the 8-byte length and the JSON after it),
/// so that a command can decide how to compile, or what the file holds, before loading it.
pub fn header(path: &Path) -> Result<Header, WeightsError> {
    let io = |e: io::Error| match e.kind() {
        io::ErrorKind::NotFound => WeightsError::NotFound { path: path.to_path_buf() },
        _ => WeightsError::Io { path: path.to_path_buf(), message: e.to_string() },
    };
    let format = |m: &str| WeightsError::Format { path: path.to_path_buf(), message: m.into() };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let mut len = [0u8; 8];
    io::Read::read_exact(&mut f, &mut len).map_err(|_| format("shorter than its header"))?;
    // safetensors' own bound on a header.
    let n = usize::try_from(u64::from_le_bytes(len)).ok().filter(|n| *n <= 100_000_000);
    let n = n.ok_or_else(|| format("its header length is not plausible"))?;
    let mut text = vec![0u8; n];
    io::Read::read_exact(&mut f, &mut text).map_err(|_| format("shorter than its header"))?;
    let json: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| format(&e.to_string()))?;
    let map = json.as_object().ok_or_else(|| format("its header is not a JSON object"))?;
    let names = map.keys().filter(|k| *k != "__metadata__").cloned().collect();
    let metadata = map
        .get("__metadata__")
        .and_then(|m| m.as_object())
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))))
        .map(|kv| kv.collect())
        .unwrap_or_default();
    Ok(Header { names, metadata })
}

/// Tensors of at most this many elements are printed in full by [`show`].
pub const SHOW_ALL_UP_TO: usize = 20;

/// The text of `nnc weights`: one line per tensor, `name  [shape]  values`, names aligned.
/// The values are every element in row-major order (shortest round-trip decimals) when there
/// are at most [`SHOW_ALL_UP_TO`] or `all` is set, else `n values: mean, std (biased), min,
/// max, norm (2-norm)`.
pub fn show(tensors: &[(String, Tensor<f32>)], all: bool) -> String {
    let w = tensors.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let shapes: Vec<String> = tensors.iter().map(|(_, t)| format!("{:?}", t.shape)).collect();
    let sw = shapes.iter().map(String::len).max().unwrap_or(0);
    let mut out = String::new();
    for ((name, t), shape) in tensors.iter().zip(&shapes) {
        let values = if all || t.data.len() <= SHOW_ALL_UP_TO {
            let v: Vec<String> = t.data.iter().map(|x| x.to_string()).collect();
            format!("[{}]", v.join(", "))
        } else {
            summary(&t.data)
        };
        out += &format!("{name:w$}  {shape:sw$}  {values}\n");
    }
    out
}

/// `n values: mean m  std s  min a  max b  norm r`, statistics in f64.
fn summary(v: &[f32]) -> String {
    let n = v.len() as f64;
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
    let norm = v.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
    let min = v.iter().copied().fold(f32::INFINITY, f32::min);
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    format!(
        "{} values: mean {mean:.6}  std {:.6}  min {min}  max {max}  norm {norm:.6}",
        v.len(),
        var.sqrt()
    )
}

/// Decodes little-endian elements of the supported dtypes.
fn to_f32(view: &TensorView) -> Option<Vec<f32>> {
    fn each<const N: usize>(b: &[u8], f: impl Fn([u8; N]) -> f32) -> Vec<f32> {
        b.chunks_exact(N).map(|c| f(c.try_into().expect("chunks_exact gives N bytes"))).collect()
    }
    let b = view.data();
    Some(match view.dtype() {
        Dtype::F32 => each(b, f32::from_le_bytes),
        Dtype::F64 => each(b, |c| f64::from_le_bytes(c) as f32),
        Dtype::F16 => each(b, |c| f16_to_f32(u16::from_le_bytes(c))),
        Dtype::BF16 => each(b, |c| f32::from_bits((u16::from_le_bytes(c) as u32) << 16)),
        Dtype::I64 => each(b, |c| i64::from_le_bytes(c) as f32),
        Dtype::I32 => each(b, |c| i32::from_le_bytes(c) as f32),
        Dtype::I16 => each(b, |c| i16::from_le_bytes(c) as f32),
        Dtype::I8 => each(b, |c: [u8; 1]| c[0] as i8 as f32),
        Dtype::U8 => each(b, |c: [u8; 1]| c[0] as f32),
        Dtype::BOOL => each(b, |c: [u8; 1]| f32::from(c[0] != 0)),
        _ => return None,
    })
}

/// IEEE binary16 to binary32 (exact): sign, 5-bit exponent (bias 15), 10-bit mantissa.
fn f16_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = ((h >> 10) & 0x1f) as i32;
    let man = (h & 0x3ff) as f32;
    sign * match exp {
        0 => man * 2f32.powi(-24),         // subnormal: m · 2⁻¹⁴ · 2⁻¹⁰
        31 if man == 0.0 => f32::INFINITY, // ±inf
        31 => f32::NAN,                    // NaN
        _ => (1.0 + man / 1024.0) * 2f32.powi(exp - 15), // normal: (1 + m/2¹⁰) · 2^(e−15)
    }
}

/// What [`load_into`] read.
#[derive(Debug, PartialEq)]
pub struct Loaded {
    /// The wanted tensors, in the order asked for.
    pub tensors: Vec<Tensor<f32>>,
    /// The batch-norm step counters the file lacked, set to 0.
    pub defaulted: Vec<String>,
}

/// A batch-norm step counter: absent from a file, it loads as 0.
fn is_counter(name: &str, shape: &[usize]) -> bool {
    name.ends_with(".num_batches_tracked") && shape.is_empty()
}

/// The tensors named in `names`, in that order, each checked against its wanted shape.
/// Errors, checked in this order: missing names, wrong shapes, unexpected tensors.
pub fn load_into(path: &Path, names: &[(String, Vec<usize>)]) -> Result<Loaded, WeightsError> {
    let mut file: HashMap<String, Tensor<f32>> = load(path)?.into_iter().collect();
    let wanted: HashSet<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
    let mut defaulted = Vec::new();
    for (n, shape) in names {
        if !file.contains_key(n) && is_counter(n, shape) {
            file.insert(n.clone(), Tensor::new(vec![], vec![0.0]));
            defaulted.push(n.clone());
        }
    }
    let missing: Vec<String> =
        names.iter().filter(|(n, _)| !file.contains_key(n)).map(|(n, _)| n.clone()).collect();
    if let Some(first) = missing.first() {
        let spare = file.keys().map(String::as_str).filter(|k| !wanted.contains(k));
        let suggestion = closest(first, spare).map(String::from);
        return Err(WeightsError::Missing { path: path.to_path_buf(), names: missing, suggestion });
    }
    let mut out = Vec::with_capacity(names.len());
    for (name, want) in names {
        let t = &file[name];
        if &t.shape != want {
            let (path, name, want) = (path.to_path_buf(), name.clone(), want.clone());
            return Err(WeightsError::Shape { path, name, file: t.shape.clone(), want });
        }
        out.push(t.clone());
    }
    let mut unexpected: Vec<String> = file
        .into_keys()
        .filter(|k| !wanted.contains(k.as_str()) && !k.ends_with(".num_batches_tracked"))
        .collect();
    if !unexpected.is_empty() {
        unexpected.sort();
        return Err(WeightsError::Unexpected { path: path.to_path_buf(), names: unexpected });
    }
    Ok(Loaded { tensors: out, defaulted })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_prints_small_tensors_in_full_and_summarizes_large_ones() {
        let small = Tensor::new(vec![1, 3], vec![-0.5, 0.25, 1.0]);
        let large = Tensor::new(vec![3, 8], (0..24).map(|i| i as f32).collect());
        let ts = vec![("w".to_string(), small), ("layer.weight".to_string(), large)];
        let text = show(&ts, false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "w             [1, 3]  [-0.5, 0.25, 1]");
        assert_eq!(
            lines[1],
            "layer.weight  [3, 8]  24 values: mean 11.500000  std 6.922187  min 0  max 23  norm 65.757129"
        );
        assert!(show(&ts, true).lines().nth(1).unwrap().ends_with("21, 22, 23]"));
    }

    #[test]
    fn the_header_is_read_alone() {
        let dir = std::env::temp_dir().join(format!("nnc-names-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (Tensor::new(vec![2], vec![1.0, 2.0]), Tensor::new(vec![1], vec![3.0]));
        let path = dir.join("w.safetensors");
        let meta = HashMap::from([("k".to_string(), "v".to_string())]);
        save_with(&path, &[("fc.weight_mask".into(), &a), ("fc.bias".into(), &b)], &[], Some(meta))
            .unwrap();
        let h = header(&path).unwrap();
        let mut got = h.names.clone();
        got.sort();
        assert_eq!(got, ["fc.bias", "fc.weight_mask"]);
        assert_eq!(h.metadata, HashMap::from([("k".to_string(), "v".to_string())]));
        std::fs::write(dir.join("x"), "not safetensors").unwrap();
        assert!(matches!(header(&dir.join("x")), Err(WeightsError::Format { .. })));
        assert!(matches!(header(&dir.join("absent")), Err(WeightsError::NotFound { .. })));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn f16_decodes_exactly() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
    }
}
