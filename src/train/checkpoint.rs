//! Checkpoints: everything a training run needs to continue exactly where it stopped, in one
//! safetensors file, `DIR/checkpoint.safetensors`, that `nnc weights` can read.
//!
//! | tensors | names | dtype |
//! |---------|-------|-------|
//! | parameters and buffers | their `state_dict` names (`fc1.weight`, `bn.running_mean`) | F32 |
//! | the optimizer's per-parameter state | `optimizer.<parameter>.<key>`, PyTorch's keys (`exp_avg`, `exp_avg_sq`, `momentum_buffer`, ...) | F32 |
//! | L-BFGS's state (host-driven, f64) | `optimizer.<key>`, PyTorch's keys (`d`, `old_dirs`, `ro`, `H_diag`, ...) and `optimizer.flat_params` | F64 |
//! | the parameters the run started from (for its weight change) | `start.<parameter>` | F32 |
//!
//! The header's metadata holds the [`Cursor`] (steps done, the epoch in progress and the
//! batches of it done, the epoch's running sums, the logs' lengths) and the run's
//! [`Settings`]. Nothing else is needed: data order, dropout masks and the schedule are
//! functions of the seed, the epoch and the step.
//!
//! Invariants: a checkpoint is written atomically (`files::write_atomic`: the previous one
//! stays whole until the new one is renamed over it), and only when every tensor is finite;
//! [`prepare`] removes temporary files a killed run left. [`load`] refuses a checkpoint whose
//! settings differ from the run's, naming each difference.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensors};

use super::data::Dataset;
use super::weights::first_non_finite;
use crate::check::TrainSpec;
use crate::error::{Error, Result};
use crate::pipeline::Compiled;
use crate::tensor::Tensor;

/// The checkpoint's file name inside its folder.
pub const FILE: &str = "checkpoint.safetensors";

/// The checkpoint file of folder `dir`.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

/// Where a run is between two steps.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Cursor {
    /// Optimizer steps done.
    pub step: u64,
    /// The epoch in progress, from 1 (0 before the first).
    pub epoch: usize,
    /// Batches of `epoch` done.
    pub batches: usize,
    /// The loss and metrics of `epoch`'s batches so far, each weighted by its batch size.
    pub sums: Vec<f64>,
    /// Examples of `epoch` seen so far.
    pub seen: usize,
    /// The last step's loss and metrics.
    pub last: Vec<f32>,
    /// Bytes of the `--log` file and of its `.layers.csv` when the checkpoint was written.
    pub log_bytes: Option<u64>,
    pub layer_log_bytes: Option<u64>,
    /// Wall-clock milliseconds the run had trained when the checkpoint was written (the
    /// log's `time_s` goes on from there).
    pub elapsed_ms: u64,
}

/// What must be the same for a run to continue from a checkpoint: `(key, value)` pairs.
pub type Settings = Vec<(String, String)>;

/// One checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub cursor: Cursor,
    /// Parameters, buffers, then the optimizer's states, named as the table above says.
    pub tensors: Vec<(String, Tensor<f32>)>,
    /// A host-driven optimizer's state, `optimizer.<key>`.
    pub host: Vec<(String, Tensor<f64>)>,
    pub settings: Settings,
}

/// The settings of run `c` with `spec` on the training split `train`: the model (its name
/// and its gradient graph, source lines aside), the optimizer, the clipping, the schedule,
/// the train settings that shape the batches, and the data.
pub fn settings(c: &Compiled, spec: &TrainSpec, train: &Dataset) -> Settings {
    let m = &c.model;
    let graph: String = crate::graph::print::print(&c.grad, None)
        .lines()
        .map(|l| l.split("//").next().unwrap_or("").trim_end())
        .collect::<Vec<_>>()
        .join("\n");
    let mut s: Settings = vec![
        ("model".into(), m.name.clone()),
        ("gradient graph".into(), format!("fingerprint {:016x}", fnv1a(graph.bytes()))),
        ("optimizer".into(), format!("{:?}", m.optimizer.method)),
    ];
    s.extend(
        fields(&format!("{:?}", m.optimizer.hyper)).map(|(k, v)| (format!("optimizer.{k}"), v)),
    );
    for (i, g) in m.optimizer.groups.iter().enumerate() {
        s.push((format!("group {i}"), format!("{:?} {:?} {:?}", g.patterns, g.hyper, g.clip)));
    }
    let data = train.x.data.iter().chain(&train.y.data).flat_map(|v| v.to_le_bytes());
    s.extend([
        ("clip".into(), format!("{:?}", m.clip)),
        ("schedule".into(), format!("{:?}", m.schedule.phases)),
        ("batch".into(), spec.batch.to_string()),
        ("seed".into(), spec.seed.to_string()),
        ("shuffle".into(), spec.shuffle.to_string()),
        ("validation".into(), spec.validation.to_string()),
        ("scale_lr".into(), format!("{:?}", spec.scale_lr)),
        ("data".into(), format!("{} training examples, {:016x}", train.x.shape[0], fnv1a(data))),
    ]);
    s
}

/// The `key: value` fields of a struct's `Debug` text (`Hyper { lr: 0.1, ... }`).
fn fields(debug: &str) -> impl Iterator<Item = (String, String)> + '_ {
    let inner = debug.split_once('{').map_or("", |(_, r)| r.trim_end_matches('}'));
    inner.split(", ").filter_map(|f| {
        let (k, v) = f.split_once(':')?;
        Some((k.trim().to_string(), v.trim().to_string()))
    })
}

/// FNV-1a, 64 bits: a stable fingerprint (std's hashers may change between releases).
fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    let step = |h: u64, b: u8| (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, step)
}

/// The differences between a checkpoint's settings and a run's, one line each.
pub fn differences(saved: &Settings, now: &Settings) -> Vec<String> {
    let saved_map: HashMap<&str, &str> =
        saved.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let now_map: HashMap<&str, &str> = now.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut out = Vec::new();
    for (k, v) in now {
        match saved_map.get(k.as_str()) {
            Some(s) if s == v => {}
            Some(s) => out.push(format!("{k}: the checkpoint has {s}, this run {v}")),
            None => out.push(format!("{k}: the checkpoint has none, this run {v}")),
        }
    }
    for (k, s) in saved.iter().filter(|(k, _)| !now_map.contains_key(k.as_str())) {
        out.push(format!("{k}: the checkpoint has {s}, this run none"));
    }
    out
}

/// Makes `dir` ready to take checkpoints: created if absent (its parent must exist), and
/// rid of the temporary files of earlier runs that were killed while writing one (the
/// folder is the checkpoint's own).
pub fn prepare(dir: &Path) -> Result<()> {
    let fail = |e| Error::write(dir, e);
    if !dir.is_dir() {
        std::fs::create_dir(dir).map_err(fail)?;
    }
    for entry in std::fs::read_dir(dir).map_err(fail)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // Ours, and the safetensors crate's own (`.tmp` and six characters).
        let theirs = name.len() == 10
            && name
                .strip_prefix(".tmp")
                .is_some_and(|r| r.chars().all(|c| c.is_ascii_alphanumeric()));
        if crate::files::is_temp_of(&name, FILE) || theirs {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

/// Writes `c` to `dir`'s checkpoint file, atomically, if every tensor is finite.
pub fn save(dir: &Path, c: &Checkpoint) -> Result<PathBuf> {
    let file = path(dir);
    for (name, t) in &c.tensors {
        if let Some((at, value)) = first_non_finite(t) {
            return Err(Error::NonFiniteSave { path: file, name: name.clone(), at, value });
        }
    }
    let f32s: Vec<(String, &Tensor<f32>)> = c.tensors.iter().map(|(n, t)| (n.clone(), t)).collect();
    let f64s: Vec<(String, &Tensor<f64>)> = c.host.iter().map(|(n, t)| (n.clone(), t)).collect();
    super::weights::save_with(&file, &f32s, &f64s, Some(metadata(c)))
        .map_err(|e| Error::write(&file, e))?;
    Ok(file)
}

const FORMAT: &str = "nnc checkpoint 1";

fn metadata(c: &Checkpoint) -> HashMap<String, String> {
    let k = &c.cursor;
    let list = |v: &mut dyn Iterator<Item = String>| v.collect::<Vec<_>>().join(",");
    let mut m: HashMap<String, String> =
        c.settings.iter().map(|(k, v)| (format!("setting {k}"), v.clone())).collect();
    m.extend([
        ("format".to_string(), FORMAT.to_string()),
        ("step".into(), k.step.to_string()),
        ("epoch".into(), k.epoch.to_string()),
        ("batches".into(), k.batches.to_string()),
        ("seen".into(), k.seen.to_string()),
        ("sums".into(), list(&mut k.sums.iter().map(f64::to_string))),
        ("last".into(), list(&mut k.last.iter().map(f32::to_string))),
        ("elapsed_ms".into(), k.elapsed_ms.to_string()),
    ]);
    for (key, v) in [("log_bytes", k.log_bytes), ("layer_log_bytes", k.layer_log_bytes)] {
        if let Some(v) = v {
            m.insert(key.into(), v.to_string());
        }
    }
    m
}

/// The checkpoint in `dir`.
pub fn load(dir: &Path) -> Result<Checkpoint> {
    load_file(&path(dir))
}

/// The checkpoint in `file`.
pub fn load_file(file: &Path) -> Result<Checkpoint> {
    let file = file.to_path_buf();
    let fail = |message: String| Error::Checkpoint { path: file.clone(), message };
    let mut bytes = Vec::new();
    crate::files::open_bounded(&file, crate::files::available_memory())
        .and_then(|mut f| std::io::Read::read_to_end(&mut f, &mut bytes))
        .map_err(|e| fail(e.to_string()))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| fail(format!("not a safetensors file: {e}")))?;
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| fail(e.to_string()))?;
    let meta = header.metadata().clone().unwrap_or_default();
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(fail(format!("not an nnc checkpoint (no `format: {FORMAT}` in its header)")));
    }
    let get = |k: &str| meta.get(k).ok_or_else(|| fail(format!("its header lacks `{k}`")));
    let number = |k: &str| get(k)?.parse::<u64>().map_err(|e| fail(format!("`{k}`: {e}")));
    let list = |k: &str| -> Result<Vec<f64>> {
        let v = get(k)?;
        v.split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().map_err(|e| fail(format!("`{k}`: {e}"))))
            .collect()
    };
    let optional = |k: &str| meta.contains_key(k).then(|| number(k)).transpose();
    let cursor = Cursor {
        step: number("step")?,
        epoch: number("epoch")? as usize,
        batches: number("batches")? as usize,
        seen: number("seen")? as usize,
        sums: list("sums")?,
        last: list("last")?.into_iter().map(|v| v as f32).collect(),
        log_bytes: optional("log_bytes")?,
        layer_log_bytes: optional("layer_log_bytes")?,
        elapsed_ms: optional("elapsed_ms")?.unwrap_or(0),
    };
    let mut settings: Settings = meta
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("setting ")?.to_string(), v.clone())))
        .collect();
    settings.sort();
    let (mut tensors, mut host) = (Vec::new(), Vec::new());
    for (name, view) in st.tensors() {
        let b = view.data();
        let shape = view.shape().to_vec();
        match view.dtype() {
            Dtype::F32 => tensors.push((
                name,
                Tensor::new(
                    shape,
                    b.chunks_exact(4)
                        .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                        .collect(),
                ),
            )),
            Dtype::F64 => host.push((
                name,
                Tensor::new(
                    shape,
                    b.chunks_exact(8)
                        .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                        .collect(),
                ),
            )),
            d => return Err(fail(format!("tensor `{name}` has dtype {d:?}, not F32 or F64"))),
        }
    }
    Ok(Checkpoint { cursor, tensors, host, settings })
}

impl Checkpoint {
    /// What `nnc weights` prints above the tensors: where the run was, and its settings.
    pub fn describe(&self) -> String {
        let k = &self.cursor;
        let mut s = format!(
            "checkpoint after step {} (epoch {}, {} of its batches done)\n",
            k.step, k.epoch, k.batches
        );
        for (key, v) in &self.settings {
            s += &format!("  {key}: {v}\n");
        }
        s
    }

    /// The f32 tensors named `names`, in that order; says which are missing or misshapen.
    pub fn take(
        &mut self,
        path: &Path,
        names: &[(String, Vec<usize>)],
    ) -> Result<Vec<Tensor<f32>>> {
        let fail = |message: String| Error::Checkpoint { path: path.to_path_buf(), message };
        let mut by_name: HashMap<String, Tensor<f32>> =
            std::mem::take(&mut self.tensors).into_iter().collect();
        let out = names
            .iter()
            .map(|(n, shape)| match by_name.remove(n) {
                Some(t) if &t.shape == shape => Ok(t),
                Some(t) => {
                    Err(fail(format!("`{n}` has shape {:?}, the model's {shape:?}", t.shape)))
                }
                None => Err(fail(format!("it lacks `{n}`: it was written for another model"))),
            })
            .collect::<Result<Vec<_>>>()?;
        if let Some(extra) = by_name.keys().min() {
            return Err(fail(format!("it holds `{extra}`, which this model has not")));
        }
        Ok(out)
    }
}
