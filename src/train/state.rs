//! A model's persistent state: its trainable parameters and its buffers (batch norm's
//! running statistics), in `Model::params` and `Model::buffers` order, as they come from the
//! initializers or a weight file and go to one.
//!
//! Weight files hold both under PyTorch's `state_dict` names (`fc1.weight`,
//! `bn.running_mean`, `bn.num_batches_tracked`, ...). Loading is strict, as PyTorch's
//! `load_state_dict`: every parameter and buffer of the model must be in the file with its
//! shape, and nothing else may be, and every value must be finite (so must the values
//! saved: a run that diverged never writes its weights); a batch-norm counter (`num_batches_tracked`) the file
//! lacks loads as 0, as PyTorch loads such a state_dict, with a note on stderr.

use std::path::Path;

use super::{init, weights};
use crate::check::Model;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Parameters and buffers of one model.
#[derive(Clone, Debug, PartialEq)]
pub struct Weights {
    pub params: Vec<Tensor<f32>>,
    pub buffers: Vec<Tensor<f32>>,
}

/// From the weight file `file` if given, else from the initializers (seeded by `seed`) and
/// the buffers' initial values.
pub fn initial(model: &Model, seed: u64, file: Option<&Path>) -> Result<Weights> {
    match file {
        Some(p) => load(model, p),
        None => Ok(Weights {
            params: init::init_params(&model.params, seed),
            buffers: initial_buffers(model),
        }),
    }
}

/// Every buffer at its initial value (running mean 0, running variance 1, count 0).
pub fn initial_buffers(model: &Model) -> Vec<Tensor<f32>> {
    model.buffers.iter().map(|b| Tensor::full(b.shape.clone(), b.init as f32)).collect()
}

/// The model's parameters and buffers from the weight file at `path`.
pub fn load(model: &Model, path: &Path) -> Result<Weights> {
    let params = model.params.iter().map(|p| (p.name.clone(), p.shape.clone()));
    let buffers = model.buffers.iter().map(|b| (b.name.clone(), b.shape.clone()));
    let names: Vec<(String, Vec<usize>)> = params.chain(buffers).collect();
    let loaded = weights::load_into(path, &names)?;
    for name in &loaded.defaulted {
        eprintln!("note: {} has no `{name}`; it starts at 0, as in PyTorch", path.display());
    }
    for ((name, _), t) in names.iter().zip(&loaded.tensors) {
        if let Some((at, value)) = weights::first_non_finite(t) {
            let (path, name) = (path.to_path_buf(), name.clone());
            return Err(weights::WeightsError::NonFinite { path, name, at, value }.into());
        }
    }
    let mut all = loaded.tensors;
    let buffers = all.split_off(model.params.len());
    Ok(Weights { params: all, buffers })
}

/// Writes parameters and buffers to `path` under their `state_dict` names; refuses weights
/// that are not all finite (nothing is written then).
pub fn save(model: &Model, w: &Weights, path: &Path) -> Result<()> {
    let params = model.params.iter().map(|d| d.name.clone()).zip(&w.params);
    let buffers = model.buffers.iter().map(|d| d.name.clone()).zip(&w.buffers);
    let named: Vec<(String, &Tensor<f32>)> = params.chain(buffers).collect();
    for (name, t) in &named {
        if let Some((at, value)) = weights::first_non_finite(t) {
            let (path, name) = (path.to_path_buf(), name.clone());
            return Err(Error::NonFiniteSave { path, name, at, value });
        }
    }
    weights::save(path, &named).map_err(|e| Error::write(path, e))
}
