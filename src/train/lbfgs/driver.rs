//! L-BFGS over a [`Backend`]: the oracle `x ↦ (loss, gradient)` is "set the parameters to
//! `x` (rounded to f32), run the step graph on the batch, read the loss and `grad.<param>`".
//!
//! Invariants: the flat vector lists the parameters in graph order, each row-major
//! ([`Layout`]); the host keeps `x` in f64 between steps (the backend holds its f32
//! rounding); after a step the backend holds the step's final `x`. The step graph of a
//! host-driven optimizer updates no parameter, so running it only evaluates (and moves
//! batch-norm running statistics, as every closure call of PyTorch does in training mode).

use super::{Config, Lbfgs, StepInfo};
use crate::check::Method;
use crate::error::{Error, Result};
use crate::graph::{Graph, Role};
use crate::pipeline::Compiled;
use crate::runtime::{Backend, Outputs};
use crate::tensor::Tensor;

/// Where the flat parameter vector's pieces and the gradients are in a step graph.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    shapes: Vec<Vec<usize>>,
    /// Output index of each parameter's gradient (`Role::Grad`).
    grads: Vec<usize>,
    /// Output indices of everything else (loss, metrics, probes), in order.
    reported: Vec<usize>,
}

impl Layout {
    /// The layout of a host-driven step graph (one with a gradient output for every
    /// parameter).
    pub fn of(step: &Graph) -> Result<Layout> {
        let grads = (0..step.params.len())
            .map(|i| {
                step.output_of(Role::Grad(i as u32)).ok_or_else(|| {
                    let p = &step.params[i].name;
                    Error::Internal(format!("the step graph has no gradient for `{p}`"))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let reported = (0..step.outputs.len()).filter(|k| !grads.contains(k)).collect();
        let shapes = step.params.iter().map(|p| p.shape.concrete(0)).collect();
        Ok(Layout { shapes, grads, reported })
    }

    /// The number of parameter elements.
    pub fn len(&self) -> usize {
        self.shapes.iter().map(|s| s.iter().product::<usize>()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The output indices that are not gradients: loss, metrics, probes.
    pub fn reported(&self) -> &[usize] {
        &self.reported
    }

    /// Parameters (graph order) as one flat f64 vector.
    pub fn flatten<T: Copy + Into<f64>>(&self, params: &[Tensor<T>]) -> Vec<f64> {
        params.iter().flat_map(|t| t.data.iter().map(|&v| v.into())).collect()
    }

    /// The flat vector `x` as parameter tensors, through `cast`.
    pub fn tensors<T: Copy>(&self, x: &[f64], cast: impl Fn(f64) -> T) -> Vec<Tensor<T>> {
        let mut at = 0;
        self.shapes
            .iter()
            .map(|s| {
                let n: usize = s.iter().product();
                at += n;
                Tensor::new(s.clone(), x[at - n..at].iter().map(|&v| cast(v)).collect())
            })
            .collect()
    }

    /// The flat gradient from a run's outputs.
    pub fn gradient<T: Copy + Into<f64>>(&self, outputs: &[Tensor<T>]) -> Result<Vec<f64>> {
        let mut g = Vec::with_capacity(self.len());
        for (&k, s) in self.grads.iter().zip(&self.shapes) {
            let t = &outputs[k];
            if t.data.len() != s.iter().product::<usize>() {
                let n = t.data.len();
                return Err(Error::Internal(format!("gradient {k} has {n} elements, not {s:?}")));
            }
            g.extend(t.data.iter().map(|&v| v.into()));
        }
        Ok(g)
    }
}

/// L-BFGS training state over a backend: the algorithm's state and the f64 parameters.
#[derive(Clone, Debug)]
pub struct Driver {
    lbfgs: Lbfgs,
    layout: Layout,
    x: Option<Vec<f64>>,
    last: Option<StepInfo>,
}

impl Driver {
    /// A driver for `c` if its optimizer is host-driven (lbfgs), else `None`.
    pub fn new(c: &Compiled) -> Result<Option<Driver>> {
        let opt = &c.model.optimizer;
        if opt.method != Method::Lbfgs {
            return Ok(None);
        }
        let lbfgs = Lbfgs::new(Config::of(&opt.hyper));
        Ok(Some(Driver { lbfgs, layout: Layout::of(&c.opt)?, x: None, last: None }))
    }

    /// What the last step did.
    pub fn last(&self) -> Option<StepInfo> {
        self.last
    }

    /// The state a checkpoint keeps: [`Lbfgs::state`], and `flat_params`, the f64
    /// parameters the next step starts from (the backend holds only their f32 rounding).
    pub fn state(&self) -> Vec<(String, Tensor<f64>)> {
        let mut s: Vec<(String, Tensor<f64>)> =
            self.lbfgs.state().into_iter().map(|(k, t)| (k.to_string(), t)).collect();
        if let Some(x) = &self.x {
            s.push(("flat_params".into(), Tensor::new(vec![x.len()], x.clone())));
        }
        s
    }

    /// The first parameter (graph order) whose f64 value is not finite, and that value.
    pub fn first_non_finite(&self) -> Option<(usize, f32)> {
        let x = self.x.as_ref()?;
        let at = x.iter().position(|v| !v.is_finite())?;
        let mut end = 0;
        let param = self.layout.shapes.iter().position(|s| {
            end += s.iter().product::<usize>();
            at < end
        })?;
        Some((param, x[at] as f32))
    }

    /// Restores what [`Driver::state`] gave, each key through `get`.
    pub fn restore(
        &mut self,
        get: impl Fn(&str) -> Option<Tensor<f64>>,
    ) -> std::result::Result<(), String> {
        self.lbfgs.restore(&get)?;
        self.x = match get("flat_params") {
            Some(x) if x.data.len() == self.layout.len() => Some(x.data),
            Some(x) => return Err(format!("`flat_params` has {} values", x.data.len())),
            None => None,
        };
        Ok(())
    }

    /// One L-BFGS step on `inputs` (the whole training split) at rate `lr`; `t` is passed
    /// to the backend's step. Returns the first evaluation's loss, metrics and probes (the
    /// step graph's non-gradient outputs, element 0 each): the state before the step.
    pub fn step(
        &mut self,
        be: &mut dyn Backend,
        inputs: &[Tensor<f32>],
        lr: f64,
        t: u64,
    ) -> Result<Outputs> {
        let layout = &self.layout;
        let x = self.x.get_or_insert_with(|| layout.flatten(&be.params()));
        let (mut first, mut err): (Option<Outputs>, Option<Error>) = (None, None);
        let oracle = |p: &[f64]| {
            if err.is_none() {
                match evaluate(be, layout, p, inputs, lr, t) {
                    Ok((out, loss, g)) => {
                        first.get_or_insert(out);
                        return (loss, g);
                    }
                    Err(e) => err = Some(e),
                }
            }
            // After an error: a NaN loss and a zero gradient end the step at once.
            (f64::NAN, vec![0.0; p.len()])
        };
        self.last = Some(self.lbfgs.step(x, lr, oracle));
        if let Some(e) = err {
            return Err(e);
        }
        be.set_params(&layout.tensors(x, |v| v as f32))?;
        first.ok_or_else(|| Error::Internal("L-BFGS made no evaluation".into()))
    }
}

/// The step graph at `x`: the reported outputs, the loss and the flat gradient.
fn evaluate(
    be: &mut dyn Backend,
    layout: &Layout,
    x: &[f64],
    inputs: &[Tensor<f32>],
    lr: f64,
    t: u64,
) -> Result<(Outputs, f64, Vec<f64>)> {
    be.set_params(&layout.tensors(x, |v| v as f32))?;
    let outs = be.step_full(inputs, lr, t)?;
    let first = |k: usize| outs[k].data.first().copied().unwrap_or(f32::NAN);
    let reported: Outputs = layout.reported.iter().map(|&k| first(k)).collect();
    let loss = reported.first().copied().unwrap_or(f32::NAN) as f64;
    Ok((reported, loss, layout.gradient(&outs)?))
}
