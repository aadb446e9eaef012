//! The interface every engine that runs a compiled model implements ([`Backend`]), and the
//! reference engine ([`Interp`]). Neutral ground: the JIT (`crate::jit`) and the training
//! loop (`crate::train`) both depend on this module, not on each other.
//!
//! Backends fail with a [`RunError`] (bad inputs, tensors of the wrong shape).
//!
//! A backend owns the parameters and the optimizer state and runs a whole training step
//! (forward, backward, update) or a forward evaluation on one batch. `Interp` runs the
//! optimized step graph with `graph::eval`; the JIT implements the same trait with one
//! native function per entry point. Inputs are passed in the graph's input order; the batch
//! size is whatever the tensors say.
//!
//! A model's buffers (batch norm's running statistics, `Model::buffers`) are the first
//! states of the step graph, and the only states of the evaluation graph: the step updates
//! them, evaluation reads them, and [`Backend::buffers`] / [`Backend::set_buffers`] move
//! them in and out (weight files, `--init`).
//!
//! A host-driven optimizer (L-BFGS) uses two more entry points: `step_full` (every output in
//! full: its step graph outputs the gradients and updates no parameter) and `set_params`.

use crate::graph::eval::EvalError;

/// Why a backend call failed.
#[derive(Debug)]
pub enum RunError {
    /// The inputs of a run: both backends report the interpreter's error.
    Eval(EvalError),
    /// Tensors handed to a backend (parameters, state, buffers) of the wrong count or shape.
    Tensors(String),
    /// A program compiled on first use failed to compile (a bug of the code generator).
    Compile(String),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            RunError::Eval(e) => write!(f, "{e}"),
            RunError::Tensors(m) => write!(f, "{m}"),
            RunError::Compile(m) => write!(f, "the forward pass could not be compiled: {m}"),
        }
    }
}

impl std::error::Error for RunError {}

impl From<EvalError> for RunError {
    fn from(e: EvalError) -> RunError {
        RunError::Eval(e)
    }
}

/// A backend call's result.
pub type Result<T> = std::result::Result<T, RunError>;
use crate::graph::eval::{apply_updates, eval, Env};
use crate::graph::Graph;
use crate::tensor::Tensor;

/// Loss then metrics (then probes), in the order of the graph's outputs.
pub type Outputs = Vec<f32>;

/// One compiled model ready to run.
pub trait Backend {
    /// One optimizer step at learning rate `lr`, step count `t` (from 1). Returns the loss and
    /// metrics of the forward pass, computed before the update.
    fn step(&mut self, inputs: &[Tensor<f32>], lr: f64, t: u64) -> Result<Outputs>;
    /// Loss and metrics of a forward pass; no update.
    fn evaluate(&mut self, inputs: &[Tensor<f32>]) -> Result<Outputs>;
    /// The current parameters, in the graph's parameter order.
    fn params(&self) -> Vec<Tensor<f32>>;
    /// The current buffers: the evaluation graph's states, which are the first states of
    /// the step graph, in that order.
    fn buffers(&self) -> Result<Vec<Tensor<f32>>>;
    /// Threads the runs so far have used (a JIT given more threads than its work can use
    /// runs on one).
    fn threads_used(&self) -> usize;
    /// The time each kernel of the step took, if the backend measured it (a JIT compiled
    /// with profiling); `step` is the step graph it was compiled from.
    fn kernel_profile(&self, step: &Graph, src: Option<&str>) -> Option<String>;
    /// Overwrites the buffers (same order and shapes as [`Backend::buffers`]).
    fn set_buffers(&mut self, buffers: &[Tensor<f32>]) -> Result<()>;
    /// Like [`Backend::step`] but returns every output of the step graph in full, in the
    /// graph's output order (for L-BFGS: loss, metrics, probes and the gradients).
    fn step_full(&mut self, inputs: &[Tensor<f32>], lr: f64, t: u64) -> Result<Vec<Tensor<f32>>>;
    /// Overwrites the parameters (graph order; shapes must match).
    fn set_params(&mut self, params: &[Tensor<f32>]) -> Result<()>;
    /// Every state of the step graph, in its order: the buffers, then the optimizer's
    /// (what a checkpoint keeps besides the parameters).
    fn states(&self) -> Vec<Tensor<f32>>;
    /// Overwrites every state (same order and shapes as [`Backend::states`]).
    fn set_states(&mut self, states: &[Tensor<f32>]) -> Result<()>;
    /// Overwrites state `i` alone (a curve's coefficients before each step, `study::curve`).
    fn set_state(&mut self, i: usize, value: &Tensor<f32>) -> Result<()> {
        let mut all = self.states();
        match all.get_mut(i) {
            Some(s) => *s = value.clone(),
            None => return Err(RunError::Tensors(format!("no state {i}"))),
        }
        self.set_states(&all)
    }
    /// Readies the forward pass, which a backend may prepare on first use (the JIT compiles
    /// it then); returns the milliseconds that took, 0 if there was nothing to do.
    fn ready_forward(&mut self) -> Result<f64> {
        Ok(0.0)
    }
}

/// The reference backend: interprets the optimized graphs with `graph::eval` in f32.
pub struct Interp {
    step: Graph,
    forward: Graph,
    params: Vec<Tensor<f32>>,
    states: Vec<Tensor<f32>>,
}

impl Interp {
    pub fn new(step: &Graph, forward: &Graph, params: Vec<Tensor<f32>>) -> Interp {
        let states =
            step.states.iter().map(|s| Tensor::full(s.shape.concrete(0), s.init as f32)).collect();
        Interp { step: step.clone(), forward: forward.clone(), params, states }
    }
}

fn scalars(ev: &[Tensor<f32>]) -> Outputs {
    ev.iter().map(|t| t.data.first().copied().unwrap_or(f32::NAN)).collect()
}

impl Backend for Interp {
    fn threads_used(&self) -> usize {
        1
    }
    fn kernel_profile(&self, _: &Graph, _: Option<&str>) -> Option<String> {
        None
    }
    fn step(&mut self, inputs: &[Tensor<f32>], lr: f64, t: u64) -> Result<Outputs> {
        Ok(scalars(&self.step_full(inputs, lr, t)?))
    }
    fn step_full(&mut self, inputs: &[Tensor<f32>], lr: f64, t: u64) -> Result<Vec<Tensor<f32>>> {
        let env = Env { inputs, params: &self.params, states: &self.states, lr, step: t as f64 };
        let ev = eval(&self.step, &env)?;
        apply_updates(&self.step, &ev, &mut self.params, &mut self.states);
        Ok(ev.outputs)
    }
    fn set_params(&mut self, params: &[Tensor<f32>]) -> Result<()> {
        let want = &self.step.params;
        if params.len() != want.len() {
            return Err(RunError::Tensors(format!(
                "expected {} parameters, got {}",
                want.len(),
                params.len()
            )));
        }
        for (p, info) in params.iter().zip(want) {
            if p.shape != info.shape.concrete(0) || p.data.len() != info.shape.numel(0) {
                return Err(RunError::Tensors(format!(
                    "parameter `{}` has shape {:?}",
                    info.name, p.shape
                )));
            }
        }
        self.params = params.to_vec();
        Ok(())
    }
    fn states(&self) -> Vec<Tensor<f32>> {
        self.states.clone()
    }
    fn set_states(&mut self, states: &[Tensor<f32>]) -> Result<()> {
        let want = &self.step.states;
        if states.len() != want.len() {
            let m = format!("expected {} state tensor(s), got {}", want.len(), states.len());
            return Err(RunError::Tensors(m));
        }
        for (s, info) in states.iter().zip(want) {
            if s.shape != info.shape.concrete(0) || s.data.len() != info.shape.numel(0) {
                let m = format!("state `{}` has shape {:?}", info.name, s.shape);
                return Err(RunError::Tensors(m));
            }
        }
        self.states = states.to_vec();
        Ok(())
    }
    fn evaluate(&mut self, inputs: &[Tensor<f32>]) -> Result<Outputs> {
        let states = &self.states[..self.forward.states.len()];
        let env = Env { inputs, params: &self.params, states, lr: 0.0, step: 0.0 };
        let ev = eval(&self.forward, &env)?;
        Ok(scalars(&ev.outputs))
    }
    fn params(&self) -> Vec<Tensor<f32>> {
        self.params.clone()
    }
    fn buffers(&self) -> Result<Vec<Tensor<f32>>> {
        Ok(self.states[..self.forward.states.len()].to_vec())
    }
    fn set_buffers(&mut self, buffers: &[Tensor<f32>]) -> Result<()> {
        let want = &self.forward.states;
        if buffers.len() != want.len() {
            return Err(RunError::Tensors(format!(
                "expected {} buffers, got {}",
                want.len(),
                buffers.len()
            )));
        }
        for ((b, info), slot) in buffers.iter().zip(want).zip(&mut self.states) {
            if b.shape != info.shape.concrete(0) {
                return Err(RunError::Tensors(format!(
                    "buffer `{}` has shape {:?}",
                    info.name, b.shape
                )));
            }
            *slot = b.clone();
        }
        Ok(())
    }
}
