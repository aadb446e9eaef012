//! Training data on the host: loading a [`DataSpec`] into a [`Dataset`], the seeded
//! train/validation [`split`], and deterministic mini-batch order ([`Batches`]).
//!
//! Invariants of a loaded [`Dataset`] (checked here, so the runtime never re-checks):
//! - `x` has shape `[N, features...]` with exactly the model's per-example feature shape
//!   (a file whose per-example values have the same count in another shape is reshaped
//!   row-major, e.g. `[N, 8, 8]` for an input of `[64]`), `N >= 1`, every value finite
//!   (for an id input, [`load_with`], every value an integer id in `0..V`);
//! - `y` has shape `[N]` holding integer class indices `0..C` as floats for
//!   [`LabelSpec::Classes`], or `[N, T]` finite targets for [`LabelSpec::Targets`].
//!
//! Randomness: every random choice draws from a ChaCha8 stream derived from the run's one
//! `seed` by [`rng`], one stream per purpose ([`Stream`]), so results are identical on every
//! platform and changing one setting (say the validation fraction) does not perturb another
//! (the initial weights).
//!
//! File formats: CSV (`csv_file`), NumPy `.npy`/`.npz` (`numpy`); synthetic sets live in
//! [`super::synthetic`]. Errors are [`DataError`] values naming the file and the problem.

mod csv_file;
mod error;
mod idx;
mod numpy;

use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::check::model::DataSpec;
use crate::tensor::Tensor;

pub use error::{DataError, Loc};

/// Examples in memory, in file order.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// `[N, features...]`.
    pub x: Tensor<f32>,
    /// `[N]` class indices as floats, or `[N, T]` targets.
    pub y: Tensor<f32>,
}

impl Dataset {
    /// Number of examples `N`.
    pub fn len(&self) -> usize {
        self.x.shape[0]
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The examples at `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> Dataset {
        Dataset { x: self.x.gather_rows(idx), y: self.y.gather_rows(idx) }
    }
}

/// What the model's `label` wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabelSpec {
    /// One integer class index in `0..C` per example; `y: [N]`.
    Classes(usize),
    /// `T` real targets per example; `y: [N, T]`.
    Targets(usize),
}

/// The per-example shapes the model consumes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataShape {
    /// Per-example feature dimensions, e.g. `[64]` or `[1, 8, 8]`.
    pub features: Vec<usize>,
    pub label: LabelSpec,
}

impl DataShape {
    /// Values per example: the product of `features`.
    pub fn feature_count(&self) -> usize {
        self.features.iter().product()
    }
}

/// Loads the examples `spec` names for a real-valued input. Relative paths are resolved
/// against `base_dir` (the directory of the `.nn` file); `seed` drives the synthetic
/// generators only.
pub fn load(
    spec: &DataSpec,
    base_dir: &Path,
    want: &DataShape,
    seed: u64,
) -> Result<Dataset, DataError> {
    load_with(spec, base_dir, want, None, seed)
}

/// [`load`] for an input that may hold ids: with `ids = Some(V)` (an input declared
/// `class[B, ...] of V`, read by an Embedding) every feature value must be an integer in
/// `0..V` (else [`DataError::BadId`], naming the place), and synthetic sets draw ids.
pub fn load_with(
    spec: &DataSpec,
    base_dir: &Path,
    want: &DataShape,
    ids: Option<usize>,
    seed: u64,
) -> Result<Dataset, DataError> {
    match spec {
        DataSpec::Csv { path, label, .. } => csv_file::load(&base_dir.join(path), label, want, ids),
        DataSpec::Idx { images, labels, .. } => {
            idx::load_idx(&base_dir.join(images), &base_dir.join(labels), want, ids)
        }
        DataSpec::Npy { x, y, .. } => {
            numpy::load_npy(&base_dir.join(x), &base_dir.join(y), want, ids)
        }
        DataSpec::Npz { path, x, y, .. } => numpy::load_npz(&base_dir.join(path), x, y, want, ids),
        DataSpec::Synthetic { kind, n, noise, .. } => {
            super::synthetic::generate_with(*kind, *n, *noise, want, ids, seed)
        }
    }
}

/// [`load_with`] for data that may come without labels (`nnc predict`): a CSV file without
/// the label column whose columns are exactly the features is read with labels 0. Returns
/// the examples and whether their labels were read.
pub fn load_maybe_labelled(
    spec: &DataSpec,
    base_dir: &Path,
    want: &DataShape,
    ids: Option<usize>,
    seed: u64,
) -> Result<(Dataset, bool), DataError> {
    match spec {
        DataSpec::Csv { path, label, .. } => {
            csv_file::load_labelled(&base_dir.join(path), label, want, ids, true)
        }
        _ => load_with(spec, base_dir, want, ids, seed).map(|ds| (ds, true)),
    }
}

/// Validates one class label: finite (else [`DataError::NonFinite`]), an integer, and in
/// `0..classes`. `at` is built only on error.
fn class_index(
    v: f64,
    classes: usize,
    path: &Path,
    at: impl FnOnce() -> Loc,
) -> Result<f32, DataError> {
    let path = path.to_path_buf();
    if !v.is_finite() {
        Err(DataError::NonFinite { path, at: at(), value: v })
    } else if v.fract() != 0.0 {
        Err(DataError::NonIntegerLabel { path, at: at(), value: v })
    } else if v < 0.0 || v >= classes as f64 {
        Err(DataError::LabelOutOfRange { path, at: at(), value: v, classes })
    } else {
        Ok(v as f32)
    }
}

/// Validates one feature value: finite, and with `ids = Some(V)` an integer id in `0..V`.
fn feature(
    v: f64,
    ids: Option<usize>,
    path: &Path,
    at: impl FnOnce() -> Loc,
) -> Result<f32, DataError> {
    match ids {
        None => finite(v, path, at),
        Some(n) if v >= 0.0 && v.fract() == 0.0 && v < n as f64 => Ok(v as f32),
        Some(n) => Err(DataError::BadId { path: path.to_path_buf(), at: at(), value: v, ids: n }),
    }
}

/// Validates one feature or target value: finite also as an f32.
fn finite(v: f64, path: &Path, at: impl FnOnce() -> Loc) -> Result<f32, DataError> {
    if (v as f32).is_finite() {
        Ok(v as f32)
    } else {
        Err(DataError::NonFinite { path: path.to_path_buf(), at: at(), value: v })
    }
}

/// The independent random streams derived from one seed (the ChaCha8 stream number is
/// `purpose << 48 | index`). `Init` with index 0 is exactly `ChaCha8Rng::seed_from_u64(seed)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Parameter initialization ([`super::init::init_params`]).
    Init = 0,
    /// Synthetic data generation.
    Synthetic = 1,
    /// Choosing the validation examples.
    Split = 2,
    /// The example order of epoch `index`.
    Epoch = 3,
    /// The curve parameter `t` of each step of `nnc connect`.
    Curve = 4,
    /// The random directions of `nnc landscape` (index: the direction).
    Landscape = 5,
    /// The random masks of `nnc prune --control random-prune` (index: the level).
    Prune = 6,
}

/// The ChaCha8 generator for `stream` number `index` of `seed`.
pub fn rng(seed: u64, stream: Stream, index: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(((stream as u64) << 48) | (index & ((1 << 48) - 1)));
    rng
}

/// Fisher–Yates with portable (u64) index sampling: the same permutation on every platform.
pub fn shuffle<T>(items: &mut [T], rng: &mut ChaCha8Rng) {
    for i in (1..items.len()).rev() {
        let j = rng.random_range(0..=i as u64) as usize;
        items.swap(i, j);
    }
}

/// Holds out `ceil(validation · N)` examples for validation, chosen as the last ones after a
/// seeded shuffle ([`Stream::Split`]). Both parts keep file order, so `--no-shuffle` still
/// trains in file order. At least one training example is always kept; `None` when no
/// example is held out (`validation <= 0`).
pub fn split(ds: Dataset, validation: f64, seed: u64) -> (Dataset, Option<Dataset>) {
    let n = ds.len();
    let held = if validation > 0.0 { (validation * n as f64).ceil() as usize } else { 0 };
    let held = held.min(n.saturating_sub(1));
    if held == 0 {
        return (ds, None);
    }
    let mut order: Vec<usize> = (0..n).collect();
    shuffle(&mut order, &mut rng(seed, Stream::Split, 0));
    let (train, val) = order.split_at_mut(n - held);
    train.sort_unstable();
    val.sort_unstable();
    (ds.select(train), Some(ds.select(val)))
}

/// The example order of `epoch` (from 0): a seeded permutation ([`Stream::Epoch`], index
/// `epoch`), or `0..n` when `!shuffle`.
pub fn epoch_order(n: usize, shuffle: bool, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    if shuffle {
        self::shuffle(&mut order, &mut rng(seed, Stream::Epoch, epoch as u64));
    }
    order
}

/// The features and labels of the examples at `idx`, in that order.
pub fn batch(ds: &Dataset, idx: &[usize]) -> (Tensor<f32>, Tensor<f32>) {
    (ds.x.gather_rows(idx), ds.y.gather_rows(idx))
}

/// One mini-batch: which epoch it belongs to and the example indices it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchIndices {
    /// From 0.
    pub epoch: usize,
    /// Position of this batch within its epoch, from 0.
    pub index: usize,
    pub rows: Vec<usize>,
}

/// An endless iterator over mini-batches: each epoch visits every example exactly once in
/// [`epoch_order`], cut into batches of `batch` examples with the last one possibly short;
/// then the next epoch starts. Take as many as the run needs (`take(steps)`, or while
/// `epoch < epochs`). Yields nothing when `n == 0`.
#[derive(Clone, Debug)]
pub struct Batches {
    n: usize,
    batch: usize,
    shuffle: bool,
    seed: u64,
    epoch: usize,
    index: usize,
    order: Vec<usize>,
    pos: usize,
}

impl Batches {
    /// `batch` is clamped to at least 1.
    pub fn new(n: usize, batch: usize, shuffle: bool, seed: u64) -> Batches {
        let order = epoch_order(n, shuffle, seed, 0);
        Batches { n, batch: batch.max(1), shuffle, seed, epoch: 0, index: 0, order, pos: 0 }
    }
    /// Batches per epoch: `ceil(n / batch)`.
    pub fn per_epoch(&self) -> usize {
        self.n.div_ceil(self.batch)
    }
}

impl Iterator for Batches {
    type Item = BatchIndices;

    fn next(&mut self) -> Option<BatchIndices> {
        if self.n == 0 {
            return None;
        }
        if self.pos == self.n {
            self.epoch += 1;
            self.index = 0;
            self.pos = 0;
            self.order = epoch_order(self.n, self.shuffle, self.seed, self.epoch);
        }
        let end = (self.pos + self.batch).min(self.n);
        let rows = self.order[self.pos..end].to_vec();
        let out = BatchIndices { epoch: self.epoch, index: self.index, rows };
        self.pos = end;
        self.index += 1;
        Some(out)
    }
}

/// The candidate closest to `name` by normalized Damerau–Levenshtein similarity (at least
/// 0.5, or equal ignoring case): the "did you mean" of error messages.
pub(crate) fn closest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = name.to_lowercase();
    let score = |c: &str| {
        if c.to_lowercase() == lower {
            2.0
        } else {
            strsim::normalized_damerau_levenshtein(name, c)
        }
    };
    let best =
        candidates.into_iter().map(|c| (score(c), c)).fold(None, |best, (s, c)| match best {
            Some((bs, _)) if bs >= s => best,
            _ => Some((s, c)),
        });
    best.filter(|&(s, _)| s >= 0.5).map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_suggests_near_names_only() {
        let cols = ["p0", "p1", "label"];
        assert_eq!(closest("lable", cols), Some("label"));
        assert_eq!(closest("Label", cols), Some("label"));
        assert_eq!(closest("species", cols), None);
    }

    #[test]
    fn init_stream_is_the_plain_seed() {
        let mut a = rng(7, Stream::Init, 0);
        let mut b = ChaCha8Rng::seed_from_u64(7);
        assert_eq!(a.random::<u64>(), b.random::<u64>());
        let mut c = rng(7, Stream::Epoch, 0);
        assert_ne!(rng(7, Stream::Init, 0).random::<u64>(), c.random::<u64>());
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut v: Vec<usize> = (0..100).collect();
        shuffle(&mut v, &mut rng(1, Stream::Split, 0));
        assert_ne!(v, (0..100).collect::<Vec<_>>());
        v.sort_unstable();
        assert_eq!(v, (0..100).collect::<Vec<_>>());
    }
}
