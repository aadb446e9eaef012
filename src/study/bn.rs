//! Batch norm's running statistics recomputed for given weights: one pass over the training
//! data in training mode, each batch's mean and unbiased variance averaged with the batch's
//! size as weight, which is `torch.optim.swa_utils.update_bn` (and the mode-connectivity
//! code's `bn_update`). Weights that no run produced (a point between two solutions) have no
//! statistics of their own; the running statistics of either endpoint, or their mix, make
//! the curve disagree with its own endpoints.
//!
//! The pass runs the compiled training step, whose batch norms move their buffers by
//! `r ← (1 − m)·r + m·s` for the batch statistic `s`: with the buffers set to 0 before each
//! batch, `s` is the buffer after it divided by the momentum `m`. The step's update of the
//! parameters is undone (they are set again before each batch), so any optimizer serves. A
//! batch norm of momentum 0 never moves its buffers; its statistics are kept as given.

use crate::check::{Model, Norm, ValueKind};
use crate::error::Result;
use crate::runtime::Backend;
use crate::tensor::Tensor;
use crate::train::data::{self, Dataset};
use crate::train::session::inputs_for;
use crate::train::state::Weights;

/// Each batch norm's first buffer (`running_mean`; `running_var` and `num_batches_tracked`
/// follow) and its momentum.
pub fn batch_norms(model: &Model) -> Vec<(usize, f64)> {
    model
        .values
        .iter()
        .filter_map(|v| match v.kind {
            ValueKind::Norm { norm: Norm::Batch { momentum, buffer, .. }, .. } => {
                Some((buffer as usize, momentum))
            }
            _ => None,
        })
        .collect()
}

/// `w` with its batch norms' statistics recomputed on `train` (file order, batches of
/// `batch`); `num_batches_tracked` counts the batches, as after `update_bn`. `be` is left
/// holding `w`'s parameters and the new buffers, its optimizer state as it was.
pub fn recompute(
    model: &Model,
    be: &mut dyn Backend,
    w: &Weights,
    train: &Dataset,
    batch: usize,
) -> Result<Weights> {
    let norms: Vec<(usize, f64)> = batch_norms(model).into_iter().filter(|n| n.1 > 0.0).collect();
    if norms.is_empty() {
        return Ok(w.clone());
    }
    let kept = be.states();
    let mut states = kept.clone();
    let mut sums: Vec<Vec<f64>> = norms
        .iter()
        .flat_map(|&(b, _)| [b, b + 1])
        .map(|b| vec![0.0; w.buffers[b].numel()])
        .collect();
    let (n, mut batches) = (train.len(), 0usize);
    for start in (0..n).step_by(batch.max(1)) {
        let end = (start + batch).min(n);
        for &(b, _) in &norms {
            for s in &mut states[b..b + 2] {
                s.data.iter_mut().for_each(|v| *v = 0.0);
            }
        }
        be.set_params(&w.params)?;
        be.set_states(&states)?;
        let idx: Vec<usize> = (start..end).collect();
        let (x, y) = data::batch(train, &idx);
        be.step(&inputs_for(model, x, y), 0.0, 1)?;
        let moved = be.buffers()?;
        let weight = (end - start) as f64;
        for (k, &(b, m)) in norms.iter().enumerate() {
            for (i, sum) in sums[2 * k..2 * k + 2].iter_mut().enumerate() {
                for (s, v) in sum.iter_mut().zip(&moved[b + i].data) {
                    *s += weight * *v as f64 / m;
                }
            }
        }
        batches += 1;
    }
    let mut out = w.clone();
    for (k, &(b, _)) in norms.iter().enumerate() {
        for i in 0..2 {
            let data = sums[2 * k + i].iter().map(|s| (s / n as f64) as f32).collect();
            out.buffers[b + i] = Tensor::new(w.buffers[b + i].shape.clone(), data);
        }
        out.buffers[b + 2].data.iter_mut().for_each(|v| *v = batches as f32);
    }
    be.set_params(&out.params)?;
    be.set_states(&kept)?;
    be.set_buffers(&out.buffers)?;
    Ok(out)
}
