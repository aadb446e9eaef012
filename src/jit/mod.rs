//! The native backend: the optimized step graph and the forward graph compiled to fused
//! kernels with Cranelift. The design, file by file: docs/jit.md.
//!
//! ```text
//! Graph ─ fuse ─▶ Program (kernels, temporaries)  ─ plan ─▶ Plan (arenas, offsets)
//!       ─ codegen ─▶ one native entry per program: `step(ctx)`, `forward(ctx)`
//! ```
//! [`Jit`] owns the compiled code and the arenas: parameters and optimizer state live in the
//! fixed arena and are updated in place by the step; batch-sized temporaries live in a batch
//! arena grown (never shrunk) to the largest batch seen. One compilation serves every batch
//! size. A step allocates only the returned vector of losses and metrics (and whatever
//! the `gemm` crate allocates inside a call for its packing buffers). Outputs
//! (loss, metrics) stay in their buffers (the plan keeps them live to the end of the
//! program) and are read from there after the run.
//!
//! Known gaps: a class label computed by the graph (not read straight from an input) is not
//! validated (an out-of-range one makes `one_hot` all zeros instead of an error); shapes
//! with two batch dimensions are rejected by `compile`.
//!
//! Inputs are validated before every run exactly as `graph::eval` does (counts, shapes, one
//! batch size, class labels of `softmax_xent`/`one_hot` and ids of `gather`/`scatter_add`
//! read straight from an input), with the same error messages, so both backends fail alike
//! on bad data. Ids the graph computes are clamped into range: never an access out of bounds.
//!
//! Runtime support: `gemm` (the matrix-product trampoline), `window` (the convolution and
//! pooling trampoline), `tile` (the forward convolutions' micro-kernel) and `pool` (the
//! thread pool); `vmath` (vectorized transcendental
//! functions). `unsafe` is confined to `abi`, `gemm`, `window`, `tile` and `pool` (docs/jit.md,
//! *Where `unsafe` lives*).

pub mod abi;
pub mod codegen;
pub mod fuse;
pub mod gemm;
pub mod plan;
pub mod pool;
pub mod print;
pub mod tile;
pub mod vmath;
pub mod window;

use crate::graph::eval::{EvalError, Slot as EvalSlot};
use crate::graph::{Dim, Graph, InputInfo, NodeId, ParamInfo, StateInfo};
use crate::observe::{self, Observer, Quiet};
use crate::runtime::{Backend, Outputs};
use crate::runtime::{Result, RunError};
use crate::tensor::Tensor;
use fuse::{Buf, OutRef, Program};
use plan::{Plan, Slot};

/// One compiled program with what is needed to check its inputs.
struct Prog {
    program: Program,
    inputs: Vec<InputInfo>,
    /// A live node with the batch dimension, if any (needs an input declaring `B`).
    batch_node: Option<NodeId>,
    entry: usize,
}

/// A model compiled to native code; see the module doc.
pub struct Jit {
    machine: abi::Machine,
    plan: Plan,
    step: Prog,
    forward: Prog,
    params: Vec<ParamInfo>,
    states: Vec<StateInfo>,
    /// The model's buffers: the first states, the forward graph's only ones.
    n_buffers: usize,
    threads: usize,
    /// The values of `plan.args` for the current run (reused: a run does not allocate).
    args: Vec<f32>,
}

/// Why the JIT cannot compile a pair of graphs.
#[derive(Debug)]
pub enum JitError {
    /// The step and forward graphs do not go together (different parameters, or forward
    /// states that are not the step's first states).
    Mismatch(&'static str),
    /// A graph the JIT does not support (`fuse::fuse`).
    Unsupported(String),
    /// Cranelift failed: an unsupported host, or a bug of the code generator.
    Codegen(String),
}

impl std::fmt::Display for JitError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            JitError::Mismatch(m) => write!(f, "{m}"),
            JitError::Unsupported(m) => write!(f, "{m}"),
            JitError::Codegen(m) => write!(f, "code generation failed: {m}"),
        }
    }
}

impl std::error::Error for JitError {}

/// How to compile.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Threads, the calling one included: `> 1` splits large products and kernels.
    pub threads: usize,
    /// Time every kernel ([`Jit::profile`]); the timing calls cost ≈ 50 ns per kernel.
    pub profile: bool,
}

/// Compiles a training step graph and a forward graph over the same parameters (the
/// forward graph's states are the first states of the step's); parameters start at zero
/// (set them with [`Jit::set_params`]).
pub fn compile(
    step: &Graph,
    forward: &Graph,
    threads: usize,
) -> std::result::Result<Jit, JitError> {
    compile_with(step, forward, Options { threads, profile: false }, &mut Quiet)
}

/// [`compile`], reporting the stages `fuse`, `plan` and `cranelift` (code generation,
/// Cranelift, finalizing) to `obs`, with the generated code's text if it asks.
pub fn compile_with(
    step: &Graph,
    forward: &Graph,
    o: Options,
    obs: &mut dyn Observer,
) -> std::result::Result<Jit, JitError> {
    let Options { threads, profile } = o;
    if !forward.params.is_empty() && step.params != forward.params {
        return Err(JitError::Mismatch("the forward graph's parameters differ from the step's"));
    }
    if step.states.get(..forward.states.len()) != Some(&forward.states[..]) {
        let m = "the forward graph's states are not the first states of the step";
        return Err(JitError::Mismatch(m));
    }
    let (sp, fp) =
        observe::run(obs, "fuse", || Ok::<_, JitError>((fuse::fuse(step)?, fuse::fuse(forward)?)))?;
    let plan = observe::run(obs, "plan", || plan::plan(step, &[&sp, &fp]));
    // The forward program is compiled when first run (`Jit::forward_code`), unless its
    // code is asked for: training starts without waiting for it.
    let text = obs.wants_code();
    let mut programs = vec![(0, &sp, "step")];
    if text {
        programs.push((1, &fp, "forward"));
    }
    let code = observe::run(obs, "cranelift", || {
        codegen::compile(&programs, &plan, threads, text, profile)
    })?;
    for (function, clif) in &code.text {
        obs.code(function, clif);
    }
    // Zeroed memory comes from the OS untouched: fill only non-zero initial states.
    let mut fixed = vec![0f32; plan.fixed_len];
    for (s, &off) in step.states.iter().zip(&plan.states).filter(|(s, _)| s.init != 0.0) {
        fixed[off..off + s.shape.numel(0)].fill(s.init as f32);
    }
    let mut machine = abi::Machine::new(2, fixed, threads);
    machine.load(code.module, &code.entries, code.tables);
    if profile {
        machine.profile = Some(Box::new(abi::Profile::new(&[sp.kernels.len(), fp.kernels.len()])));
    }
    let prog = |g: &Graph, program: Program, entry: usize| Prog {
        program,
        inputs: g.inputs.clone(),
        batch_node: {
            let live = g.live();
            g.ids().find(|id| live[id.index()] && g.shape(*id).has_batch())
        },
        entry,
    };
    Ok(Jit {
        machine,
        plan,
        step: prog(step, sp, 0),
        forward: prog(forward, fp, 1),
        params: step.params.clone(),
        states: step.states.clone(),
        n_buffers: forward.states.len(),
        threads,
        args: Vec::new(),
    })
}

/// True if a product or kernel of `p` reaches its splitting threshold at batch size `batch`
/// ([`gemm::PAR_MIN_FLOP`], [`codegen::PAR_MIN_ELEMS`], [`window::Geometry::splits`]): the
/// same tests the generated code and the GEMM and window trampolines make, so when this is
/// false a run with the pool would not use it.
fn splits(p: &Program, batch: usize, threads: usize) -> bool {
    let n = |s: fuse::Sym| s.eval(batch) as f64;
    let elems = codegen::PAR_MIN_ELEMS as f64;
    threads > 1
        && p.kernels.iter().any(|k| match k {
            fuse::Kernel::Gemm(g) => 2.0 * n(g.m) * n(g.n) * n(g.k) >= gemm::PAR_MIN_FLOP,
            fuse::Kernel::Loop(l) => {
                codegen::may_split(l, threads) && n(l.dom.rows) * n(l.dom.cols) >= elems
            }
            fuse::Kernel::Gather(g) => g.dims.iter().map(|&d| n(d)).product::<f64>() >= elems,
            fuse::Kernel::Window(w) => w.geom.splits(n(w.n) as usize),
            _ => false,
        })
}

/// The batch size the inputs agree on (`None` if none declares `B`), or the interpreter's
/// error for them.
fn check_inputs(
    decl: &[InputInfo],
    given: &[Tensor<f32>],
) -> std::result::Result<Option<usize>, EvalError> {
    let slot = EvalSlot::Input;
    if decl.len() != given.len() {
        return Err(EvalError::Count { slot, expected: decl.len(), got: given.len() });
    }
    let mut batch: Option<(usize, &str)> = None;
    for (d, t) in decl.iter().zip(given) {
        let numel: usize = t.shape.iter().product();
        if t.data.len() != numel {
            return Err(EvalError::Data { slot, name: d.name.clone(), len: t.data.len(), numel });
        }
        let err = || EvalError::Shape {
            slot,
            name: d.name.clone(),
            expected: d.shape.clone(),
            got: t.shape.clone(),
        };
        if d.shape.rank() != t.shape.len() {
            return Err(err());
        }
        for (dim, &n) in d.shape.dims().iter().zip(&t.shape) {
            match (dim, &batch) {
                (Dim::Fixed(k), _) if *k as usize != n => return Err(err()),
                (Dim::Batch, None) => batch = Some((n, &d.name)),
                (Dim::Batch, Some((b, first))) if *b != n => {
                    let (first, expected, name) = (first.to_string(), *b, d.name.clone());
                    return Err(EvalError::Batch { name, got: n, first, expected });
                }
                _ => {}
            }
        }
    }
    Ok(batch.map(|b| b.0))
}

impl Jit {
    /// Replaces the parameters (graph order; shapes must match).
    pub fn set_params(&mut self, params: &[Tensor<f32>]) -> Result<()> {
        if params.len() != self.params.len() {
            return Err(RunError::Tensors(format!(
                "expected {} parameter tensor(s), got {}",
                self.params.len(),
                params.len()
            )));
        }
        for ((p, t), &off) in self.params.iter().zip(params).zip(&self.plan.params) {
            if t.shape != p.shape.concrete(0) || t.data.len() != p.shape.numel(0) {
                return Err(RunError::Tensors(format!(
                    "parameter `{}` has shape {:?}, expected {}",
                    p.name, t.shape, p.shape
                )));
            }
            self.machine.fixed[off..off + t.data.len()].copy_from_slice(&t.data);
        }
        Ok(())
    }

    /// Replaces the optimizer state (graph order; shapes must match).
    pub fn set_states(&mut self, states: &[Tensor<f32>]) -> Result<()> {
        if states.len() != self.states.len() {
            return Err(RunError::Tensors(format!(
                "expected {} state tensor(s), got {}",
                self.states.len(),
                states.len()
            )));
        }
        for (i, t) in states.iter().enumerate() {
            self.set_state(i, t)?;
        }
        Ok(())
    }

    /// Replaces state `i` (its shape must match).
    pub fn set_state(&mut self, i: usize, t: &Tensor<f32>) -> Result<()> {
        let (Some(s), Some(&off)) = (self.states.get(i), self.plan.states.get(i)) else {
            return Err(RunError::Tensors(format!("no state {i}")));
        };
        if t.shape != s.shape.concrete(0) || t.data.len() != s.shape.numel(0) {
            return Err(RunError::Tensors(format!(
                "state `{}` has shape {:?}, expected {}",
                s.name, t.shape, s.shape
            )));
        }
        self.machine.fixed[off..off + t.data.len()].copy_from_slice(&t.data);
        Ok(())
    }

    /// The optimizer state, in graph order.
    pub fn states(&self) -> Vec<Tensor<f32>> {
        let f = &self.machine.fixed;
        self.states
            .iter()
            .zip(&self.plan.states)
            .map(|(s, &o)| Tensor::new(s.shape.concrete(0), f[o..o + s.shape.numel(0)].to_vec()))
            .collect()
    }

    /// With profiling ([`Options::profile`]): the training step's kernels with the mean
    /// wall time of each per step, `g` being the step graph compiled (`c.opt`).
    pub fn profile(&self, g: &Graph, src: Option<&str>) -> Option<String> {
        let p = self.machine.profile.as_deref()?;
        Some(print::profile(g, &self.step.program, &p.ns[0], p.runs[0], src))
    }

    /// One training step; returns every output in full (tests compare them all).
    pub fn step_full(
        &mut self,
        inputs: &[Tensor<f32>],
        lr: f64,
        t: u64,
    ) -> Result<Vec<Tensor<f32>>> {
        let b = self.run(true, inputs, lr, t as f64)?;
        Ok(self.step.program.outputs.iter().map(|o| self.read(0, o, b, inputs)).collect())
    }

    /// A forward pass; returns every output in full.
    pub fn forward_full(&mut self, inputs: &[Tensor<f32>]) -> Result<Vec<Tensor<f32>>> {
        let b = self.run(false, inputs, 0.0, 0.0)?;
        Ok(self.forward.program.outputs.iter().map(|o| self.read(1, o, b, inputs)).collect())
    }

    /// Compiles the forward program if it is not yet; returns the milliseconds it took
    /// (0 if it was compiled already).
    pub fn forward_code(&mut self) -> std::result::Result<f64, JitError> {
        if self.machine.loaded(self.forward.entry) {
            return Ok(0.0);
        }
        let start = std::time::Instant::now();
        let programs = [(self.forward.entry, &self.forward.program, "forward")];
        let profile = self.machine.profile.is_some();
        let code = codegen::compile(&programs, &self.plan, self.threads, false, profile)?;
        self.machine.load(code.module, &code.entries, code.tables);
        Ok(start.elapsed().as_secs_f64() * 1e3)
    }

    /// Validates the inputs and runs the step or forward program; returns the batch size.
    fn run(&mut self, step: bool, inputs: &[Tensor<f32>], lr: f64, t: f64) -> Result<usize> {
        if !step {
            self.ready_forward()?;
        }
        let p = if step { &self.step } else { &self.forward };
        let batch = check_inputs(&p.inputs, inputs)?;
        if let (None, Some(node)) = (batch, p.batch_node) {
            return Err(EvalError::NoBatch { node }.into());
        }
        let batch = batch.unwrap_or(0);
        for l in &p.program.labels {
            // An integer in 0..classes (the cast truncates; NaN fails the range test).
            let bad = |v: f32| !(v >= 0.0 && v < l.classes as f32 && (v as usize) as f32 == v);
            if let Some(&v) = inputs[l.input as usize].data.iter().find(|&&v| bad(v)) {
                let (node, value) = (l.node, v as f64);
                return Err(match l.ids {
                    true => EvalError::Id { node, value, count: l.classes },
                    false => EvalError::Label { node, value, classes: l.classes },
                }
                .into());
            }
        }
        let need =
            inputs.iter().zip(&p.inputs).map(|(t, d)| (t.data.as_slice(), d.shape.numel(batch)));
        let split = splits(&p.program, batch, self.threads);
        let batch_len = self.plan.batch_len(batch);
        self.args.clear();
        self.args.extend(self.plan.args.iter().map(|a| a.value(lr, t) as f32));
        let run = abi::Run { entry: p.entry, batch, batch_len, args: &self.args, split };
        self.machine.run(&run, need);
        Ok(batch)
    }

    /// The floats of `buf` for batch size `batch`, from its start.
    fn data<'a>(
        &'a self,
        prog: usize,
        buf: Buf,
        batch: usize,
        inputs: &'a [Tensor<f32>],
    ) -> &'a [f32] {
        let f = &self.machine.fixed;
        match buf {
            Buf::Input(i) => &inputs[i as usize].data,
            Buf::Param(i) => &f[self.plan.params[i as usize]..],
            Buf::State(i) => &f[self.plan.states[i as usize]..],
            Buf::Temp(t) => match self.plan.temps[prog][t as usize] {
                Slot::Fixed(o) => &f[o..],
                Slot::Batch(u) => &self.machine.batch_arena()[u * plan::batch_pad(batch)..],
            },
        }
    }

    /// Output `o` of program `which` gathered from its view.
    fn read(&self, which: usize, o: &OutRef, batch: usize, inputs: &[Tensor<f32>]) -> Tensor<f32> {
        let data = self.data(which, o.buf, batch, inputs);
        let dims: Vec<usize> = o.dims.iter().map(|d| d.eval(batch)).collect();
        let strides: Vec<usize> = o.strides.iter().map(|d| d.eval(batch)).collect();
        let out = (0..dims.iter().product())
            .map(|e: usize| {
                let (mut rem, mut off) = (e, 0);
                for k in (0..dims.len()).rev() {
                    off += (rem % dims[k]) * strides[k];
                    rem /= dims[k];
                }
                data[off]
            })
            .collect();
        Tensor::new(dims, out)
    }

    /// Element 0 of every output of a program (what the training loop reports).
    fn firsts(&self, step: bool, batch: usize, inputs: &[Tensor<f32>]) -> Outputs {
        let (p, which) = if step { (&self.step, 0) } else { (&self.forward, 1) };
        p.program
            .outputs
            .iter()
            .map(|o| self.data(which, o.buf, batch, inputs).first().copied().unwrap_or(f32::NAN))
            .collect()
    }
}

impl Backend for Jit {
    fn kernel_profile(&self, step: &Graph, src: Option<&str>) -> Option<String> {
        self.profile(step, src)
    }
    fn threads_used(&self) -> usize {
        self.machine.threads_used()
    }
    fn step(&mut self, inputs: &[Tensor<f32>], lr: f64, t: u64) -> Result<Outputs> {
        let b = self.run(true, inputs, lr, t as f64)?;
        Ok(self.firsts(true, b, inputs))
    }
    fn step_full(&mut self, inputs: &[Tensor<f32>], lr: f64, t: u64) -> Result<Vec<Tensor<f32>>> {
        Jit::step_full(self, inputs, lr, t)
    }
    fn set_params(&mut self, params: &[Tensor<f32>]) -> Result<()> {
        Jit::set_params(self, params)
    }
    fn states(&self) -> Vec<Tensor<f32>> {
        Jit::states(self)
    }
    fn set_states(&mut self, states: &[Tensor<f32>]) -> Result<()> {
        Jit::set_states(self, states)
    }
    fn set_state(&mut self, i: usize, value: &Tensor<f32>) -> Result<()> {
        Jit::set_state(self, i, value)
    }
    fn ready_forward(&mut self) -> Result<f64> {
        self.forward_code().map_err(|e| RunError::Compile(e.to_string()))
    }
    fn evaluate(&mut self, inputs: &[Tensor<f32>]) -> Result<Outputs> {
        let b = self.run(false, inputs, 0.0, 0.0)?;
        Ok(self.firsts(false, b, inputs))
    }
    fn buffers(&self) -> Result<Vec<Tensor<f32>>> {
        Ok(self.states()[..self.n_buffers].to_vec())
    }
    fn set_buffers(&mut self, buffers: &[Tensor<f32>]) -> Result<()> {
        if buffers.len() != self.n_buffers {
            let m = format!("expected {} buffers, got {}", self.n_buffers, buffers.len());
            return Err(RunError::Tensors(m));
        }
        let mut all = self.states();
        all[..buffers.len()].clone_from_slice(buffers);
        self.set_states(&all)
    }
    fn params(&self) -> Vec<Tensor<f32>> {
        let f = &self.machine.fixed;
        self.params
            .iter()
            .zip(&self.plan.params)
            .map(|(p, &o)| Tensor::new(p.shape.concrete(0), f[o..o + p.shape.numel(0)].to_vec()))
            .collect()
    }
}
