//! Lottery tickets (`nnc prune`; Frankle & Carbin, "The Lottery Ticket Hypothesis", ICLR
//! 2019; rewinding as in Frankle et al., "Linear Mode Connectivity and the Lottery Ticket
//! Hypothesis", ICML 2020): iterative magnitude pruning. Level 0 trains the dense net; each
//! further level prunes a fraction of the surviving weights with the smallest magnitudes
//! (over all weights, or layer by layer), resets the survivors to their values at the
//! rewind step (the initialization at step 0), and trains again with the mask fixed.
//!
//! Masks are the model's `<weight>_mask` buffers ([`crate::check::Model::add_masks`], every
//! weight of two or more dimensions), compiled into the step so that a pruned weight's
//! gradient and update are multiplied by 0: it stays exactly 0 through every optimizer,
//! weight decay included. Each level's weights, masks included, are saved in the output
//! folder; a level is trained by `session::train` from them, as `nnc train --init` would.
//!
//! Controls (the same masks' sparsity): `random-reinit` trains each level's mask from a
//! fresh initialization (another seed), `random-prune` a random mask of the same per-layer
//! sizes from the same rewound weights.

use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;

use crate::error::{Error, Result};
use crate::pipeline::Compiled;
use crate::runtime::Outputs;
use crate::tensor::Tensor;
use crate::train::data::{self, Stream};
use crate::train::session::{self, BackendKind, Options, Trajectory};
use crate::train::state::{self, Weights};

/// Which weights compete when a level prunes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scope {
    /// All masked weights together.
    Global,
    /// Each weight tensor on its own; the last one (the output layer) at `output_rate`.
    Layerwise { output_rate: f64 },
}

/// The control run of each level, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    RandomReinit,
    RandomPrune,
}

#[derive(Clone, Debug)]
pub struct Settings {
    /// Pruning levels after the dense run.
    pub levels: usize,
    /// The fraction of the surviving weights each level prunes.
    pub rate: f64,
    pub scope: Scope,
    /// The step whose weights the survivors are reset to (0: the initialization).
    pub rewind: u64,
    pub control: Option<Control>,
    /// Where each level's weights go.
    pub out: PathBuf,
}

/// One level's outcome: the surviving fraction of the masked weights, and the trained
/// ticket's (and control's) loss and metrics on the training and validation splits.
#[derive(Clone, Debug)]
pub struct Level {
    pub level: usize,
    pub remaining: f64,
    pub ticket: (Outputs, Option<Outputs>),
    pub control: Option<(Outputs, Option<Outputs>)>,
}

/// The masks of `w` (the buffers after the model's others), one per masked weight, with the
/// index of the weight each masks.
fn masks_of(c: &Compiled, w: &Weights) -> Vec<(usize, Tensor<f32>)> {
    let m = c.model.masks();
    m.iter().enumerate().filter_map(|(i, b)| Some((i, w.buffers[(*b)? as usize].clone()))).collect()
}

/// `w` with `masks` set and every pruned weight 0.
fn masked(c: &Compiled, w: &Weights, masks: &[(usize, Tensor<f32>)]) -> Weights {
    let mut out = w.clone();
    let buffers = c.model.masks();
    for (i, m) in masks {
        for (x, keep) in out.params[*i].data.iter_mut().zip(&m.data) {
            *x *= keep;
        }
        out.buffers[buffers[*i].expect("a masked weight") as usize] = m.clone();
    }
    out
}

/// The fraction of masked weights that survive.
pub fn remaining(masks: &[(usize, Tensor<f32>)]) -> f64 {
    let kept: f64 = masks.iter().map(|(_, m)| m.data.iter().map(|v| *v as f64).sum::<f64>()).sum();
    kept / masks.iter().map(|(_, m)| m.data.len()).sum::<usize>().max(1) as f64
}

/// New masks pruning `rate` of the surviving weights of `w` with the smallest magnitudes
/// (ties in storage order), globally or layer by layer.
pub fn prune(
    w: &Weights,
    masks: &[(usize, Tensor<f32>)],
    rate: f64,
    scope: Scope,
) -> Vec<(usize, Tensor<f32>)> {
    let mut out = masks.to_vec();
    // (|θ|, tensor, element) of every survivor in a group, pruned smallest first.
    let cut = |group: &[usize], rate: f64, out: &mut Vec<(usize, Tensor<f32>)>| {
        let mut alive: Vec<(f32, usize, usize)> = group
            .iter()
            .flat_map(|&k| {
                let (i, m) = &masks[k];
                let data = &w.params[*i].data;
                m.data
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| **v != 0.0)
                    .map(move |(e, _)| (data[e].abs(), k, e))
            })
            .collect();
        alive.sort_by(|a, b| a.0.total_cmp(&b.0));
        let n = (rate * alive.len() as f64).round() as usize;
        for &(_, k, e) in &alive[..n.min(alive.len())] {
            out[k].1.data[e] = 0.0;
        }
    };
    match scope {
        Scope::Global => cut(&(0..masks.len()).collect::<Vec<_>>(), rate, &mut out),
        Scope::Layerwise { output_rate } => {
            for k in 0..masks.len() {
                let r = if k + 1 == masks.len() { output_rate } else { rate };
                cut(&[k], r, &mut out);
            }
        }
    }
    out
}

/// Random masks with as many survivors per tensor as `like`'s (seeded).
pub fn random_like(
    like: &[(usize, Tensor<f32>)],
    seed: u64,
    level: usize,
) -> Vec<(usize, Tensor<f32>)> {
    let mut rng = data::rng(seed, Stream::Prune, level as u64);
    like.iter()
        .map(|(i, m)| {
            let kept = m.data.iter().filter(|v| **v != 0.0).count();
            let mut data: Vec<f32> =
                (0..m.data.len()).map(|e| if e < kept { 1.0 } else { 0.0 }).collect();
            data.shuffle(&mut rng);
            (*i, Tensor::new(m.shape.clone(), data))
        })
        .collect()
}

/// Trains `c` (compiled with masks) from the weights in `init`, saving to `save`.
fn train(
    c: &Compiled,
    kind: BackendKind,
    base: &Path,
    o: &Options,
    init: &Path,
    save: &Path,
) -> Result<(Outputs, Option<Outputs>)> {
    let o = Options { init: Some(init.into()), save: Some(save.into()), quiet: true, ..o.clone() };
    let s = session::train(c, kind, base, &o)?;
    Ok((s.train, s.validation))
}

/// Runs the levels, calling `report` after each.
pub fn run(
    c: &Compiled,
    kind: BackendKind,
    base: &Path,
    o: &Options,
    s: &Settings,
    mut report: impl FnMut(&Level),
) -> Result<Vec<Level>> {
    let seed = session::effective_spec(&c.model, o).seed;
    let file = |name: String| s.out.join(name);
    let save = |w: &Weights, p: &Path| state::save(&c.model, w, p);
    let init = state::initial(&c.model, seed, o.init.as_deref())?;
    // Level 0, dense; with a rewind step, its weights there are kept along the way.
    let rewind_dir = file("rewind".into());
    let trajectory = (s.rewind > 0)
        .then(|| Trajectory { dir: rewind_dir.clone(), every: session::Every::Steps(s.rewind) });
    let dense = Options { trajectory, ..o.clone() };
    save(&init, &file("level-0-init.safetensors".into()))?;
    let trained = file("level-0.safetensors".into());
    let ticket = train(c, kind, base, &dense, &file("level-0-init.safetensors".into()), &trained)?;
    let rewound = match s.rewind {
        0 => init.clone(),
        k => {
            let at = Trajectory { dir: rewind_dir, every: session::Every::Steps(k) }.file(k);
            if !at.exists() {
                return Err(Error::Settings(format!(
                    "--rewind {k}: the dense run has fewer steps"
                )));
            }
            state::load(&c.model, &at)?
        }
    };
    let mut masks = masks_of(c, &init);
    let first = Level { level: 0, remaining: remaining(&masks), ticket, control: None };
    report(&first);
    let mut levels = vec![first];
    let mut last = state::load(&c.model, &trained)?;
    for level in 1..=s.levels {
        masks = prune(&last, &masks, s.rate, s.scope);
        let start = file(format!("level-{level}-init.safetensors"));
        save(&masked(c, &rewound, &masks), &start)?;
        let trained = file(format!("level-{level}.safetensors"));
        let ticket = train(c, kind, base, o, &start, &trained)?;
        last = state::load(&c.model, &trained)?;
        let control = match s.control {
            None => None,
            Some(kind_of) => {
                let w = match kind_of {
                    Control::RandomReinit => {
                        masked(c, &state::initial(&c.model, seed.wrapping_add(1), None)?, &masks)
                    }
                    Control::RandomPrune => masked(c, &rewound, &random_like(&masks, seed, level)),
                };
                let start = file(format!("level-{level}-control-init.safetensors"));
                save(&w, &start)?;
                let end = file(format!("level-{level}-control.safetensors"));
                Some(train(c, kind, base, o, &start, &end)?)
            }
        };
        let l = Level { level, remaining: remaining(&masks), ticket, control };
        report(&l);
        levels.push(l);
    }
    Ok(levels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(data: Vec<f32>) -> Tensor<f32> {
        Tensor::new(vec![data.len()], data)
    }

    #[test]
    fn the_smallest_survivors_go_globally_or_layer_by_layer() {
        let w = Weights {
            params: vec![t(vec![0.1, -5.0, 0.2, 3.0]), t(vec![-0.05, 4.0])],
            buffers: vec![],
        };
        let masks = vec![(0, t(vec![1.0, 1.0, 0.0, 1.0])), (1, t(vec![1.0, 1.0]))];
        // Five survivors, half of them pruned (2.5 rounds to 3) by magnitude over both
        // tensors: 0.05, 0.1 and 3.0.
        let g = prune(&w, &masks, 0.5, Scope::Global);
        assert_eq!(g[0].1.data, [0.0, 1.0, 0.0, 0.0]);
        assert_eq!(g[1].1.data, [0.0, 1.0]);
        // Layer by layer: half of the first's three (2: 0.1, 3.0), none of the output's
        // two at rate 0.2 (0.4 rounds to 0).
        let l = prune(&w, &masks, 0.5, Scope::Layerwise { output_rate: 0.2 });
        assert_eq!(l[0].1.data, [0.0, 1.0, 0.0, 0.0]);
        assert_eq!(l[1].1.data, [1.0, 1.0]);
        assert_eq!(remaining(&l), 3.0 / 6.0);
        let r = random_like(&l, 7, 1);
        assert_eq!(
            r.iter().map(|(_, m)| m.data.iter().sum::<f32>()).collect::<Vec<_>>(),
            [1.0, 2.0]
        );
    }
}
