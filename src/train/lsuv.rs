//! LSUV, layer-sequential unit-variance initialization (Mishkin & Matas 2016): after the
//! orthogonal draw of `init = lsuv` (`train::init`), each Dense or Conv2d layer whose weight
//! says `lsuv`, in forward order, is rescaled on one data batch:
//!
//! ```text
//! repeat at most MAX_ITERS times:
//!     v = Var(layer output)            over every element of the batch's output, biased
//!     if |v − 1| < TOL: stop
//!     W ← W / √v
//! ```
//!
//! The variances are the `act_var.<layer>` probes of the training-mode forward graph
//! (`crate::probes`), evaluated by the interpreter in f32, so a layer sees the already
//! rescaled layers before it. Biases are left as initialized. A layer whose output variance
//! is zero or not finite cannot be rescaled: it stops there and its report says so.

use crate::check::{Init, Model, ValueKind};
use crate::graph::eval::{eval, Env};
use crate::graph::Graph;
use crate::lower::{self, LowerOptions, Mode};
use crate::passes;
use crate::tensor::Tensor;

/// Stop when the output variance is within this of 1.
pub const TOL: f64 = 0.1;
/// Most rescalings per layer.
pub const MAX_ITERS: usize = 10;

/// What LSUV did to one layer.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// The layer's path, e.g. `fc1` or `blocks.2.fc1`.
    pub layer: String,
    /// Output variance before the first and after the last rescaling.
    pub first: f64,
    pub last: f64,
    /// How many times the weight was divided by `√v`.
    pub rescalings: usize,
}

/// The Dense and Conv2d layers to rescale, in forward order: (layer path, weight parameter
/// index).
pub fn layers(model: &Model) -> Vec<(String, u32)> {
    let mut out: Vec<(String, u32)> = Vec::new();
    for v in &model.values {
        let weight = match &v.kind {
            ValueKind::Dense { weight, .. } | ValueKind::Conv2d { weight, .. } => weight,
            _ => continue,
        };
        let Some(path) = &v.layer else { continue };
        if model.params[*weight as usize].init == Init::Lsuv && !out.iter().any(|l| l.0 == *path) {
            out.push((path.clone(), *weight));
        }
    }
    out
}

/// Rescales the LSUV layers' weights in `params` on the batch `inputs` (graph input order);
/// `buffers` are the model's buffers. Returns one report per layer.
pub fn calibrate(
    model: &Model,
    params: &mut [Tensor<f32>],
    buffers: &[Tensor<f32>],
    inputs: &[Tensor<f32>],
) -> crate::error::Result<Vec<Report>> {
    let todo = layers(model);
    if todo.is_empty() {
        return Ok(Vec::new());
    }
    let probed = LowerOptions { mode: Mode::Train, probes: true, prediction: false };
    let g = passes::optimize(&lower::lower_with(model, probed));
    let mut reports = Vec::new();
    for (layer, weight) in todo {
        let name = format!("act_var.{layer}");
        let Some(o) = g.outputs.iter().find(|o| o.name == name) else {
            let m = format!("lsuv: no output variance for layer `{layer}`");
            return Err(crate::error::Error::Internal(m));
        };
        // Only what this layer's output needs: the layers before it.
        let mut gl = g.clone();
        (gl.outputs, gl.updates) = (vec![o.clone()], Vec::new());
        let part = gl.compact();
        let mut var = variance(&part, params, buffers, inputs)?;
        let first = var;
        let mut rescalings = 0;
        while (var - 1.0).abs() >= TOL && rescalings < MAX_ITERS && var.is_finite() && var > 0.0 {
            let k = (1.0 / var.sqrt()) as f32;
            params[weight as usize].data.iter_mut().for_each(|w| *w *= k);
            rescalings += 1;
            var = variance(&part, params, buffers, inputs)?;
        }
        reports.push(Report { layer, first, last: var, rescalings });
    }
    Ok(reports)
}

/// The first output of `g` (a scalar) on one evaluation.
fn variance(
    g: &Graph,
    params: &[Tensor<f32>],
    states: &[Tensor<f32>],
    inputs: &[Tensor<f32>],
) -> crate::error::Result<f64> {
    let env = Env { inputs, params, states, lr: 0.0, step: 1.0 };
    let ev = eval(g, &env)?;
    Ok(ev.outputs[0].data.first().copied().unwrap_or(f32::NAN) as f64)
}
