//! The whole compiler, driven from here, read top to bottom: source → AST → checked model →
//! forward graph → gradients ([`GradGraph`]) → training step ([`StepGraph`]) → optimized
//! step ([`compile_observed`]), then the JIT's kernels, memory plan and native code
//! ([`jit()`]). Each stage is reported to an [`Observer`] as it ends (`nnc bench` times them).
//! `nnc ir` prints any of these stages; `train` runs the result.
//!
//! The model is lowered twice: in training mode (batch norm on batch statistics, updating
//! its running statistics; dropout masks), which the step is built from, and in evaluation
//! mode (running statistics; dropout is the identity), which `nnc eval` and validation run.
//! For a model without batch norm or dropout the two graphs are the same. Both register the
//! model's buffers as their first states, so the evaluation graph's states are a prefix of
//! the step's.

use crate::autodiff::GradGraph;
use crate::check::Model;
use crate::diagnostic::{Diagnostic, Result};
use crate::graph::{print, Graph};
use crate::jit::{self, Jit};
use crate::lower::{LowerOptions, Mode};
use crate::observe::{self, Capture, Observer, Quiet};
use crate::syntax::ast;
use crate::update::StepGraph;
use crate::{autodiff, check, lower, passes, syntax, update};

/// Variants of a compilation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompileOptions {
    /// Add the per-layer probes of `crate::probes` to the training step's outputs (after the
    /// loss and the metrics): `nnc train --log-layers`.
    pub log_layers: bool,
    /// Leave out the training step's finite checks (`nnc train --allow-nonfinite`).
    pub allow_nonfinite: bool,
    /// Training needs an `optimizer`; `eval`, `predict`, `grad` and `check` do not.
    pub purpose: check::Purpose,
    /// `--set KEY=VALUE` overrides of the file's settings (`syntax::set`); the compilation's
    /// text is then `syntax::set::combined(src, sets)`.
    pub sets: Vec<String>,
    /// Give every weight a pruning mask (`Model::add_masks`; `nnc prune`).
    pub masks: bool,
}

/// Every stage of one compilation.
pub struct Compiled {
    /// The source text the spans of every stage point into.
    pub src: String,
    pub ast: ast::File,
    pub model: Model,
    /// The lowered training-mode forward graph, as written (stage `graph`).
    pub lowered: Graph,
    /// The optimized evaluation-mode forward graph: loss and metrics (`nnc eval`,
    /// validation). Its states are the model's buffers.
    pub forward: Graph,
    /// Forward plus backward: a gradient output per parameter (stage `grad`).
    pub grad: GradGraph,
    /// The training step before IR optimization (stage `step`).
    pub step: StepGraph,
    /// The optimized training step (stage `opt`): what the backends run.
    pub opt: StepGraph,
    /// Which rewrite rules fired on the way to `opt`, with counts.
    pub rules: Vec<(&'static str, usize)>,
}

pub fn compile(src: &str) -> Result<Compiled> {
    compile_with(src, &CompileOptions::default())
}

pub fn compile_with(src: &str, o: &CompileOptions) -> Result<Compiled> {
    compile_seeded(src, o, None)
}

/// [`compile_with`] for a run whose `seed` overrides the file's (`nnc train --seed`): the
/// seed salts the dropout masks, which are part of the compiled training step.
pub fn compile_seeded(src: &str, o: &CompileOptions, seed: Option<u64>) -> Result<Compiled> {
    compile_observed(src, o, seed, &mut Quiet)
}

/// The driver of the front half: every stage in order, each reported to `obs` as it ends
/// (`parse`, `check`, `lower`, `passes`, `autodiff`, `update`; a model with batch norm or
/// dropout is lowered and optimized a second time, in evaluation mode).
pub fn compile_observed(
    src: &str,
    o: &CompileOptions,
    seed: Option<u64>,
    obs: &mut dyn Observer,
) -> Result<Compiled> {
    let ast = observe::run(obs, "parse", || syntax::parse_with(src, &o.sets))?;
    let mut model = observe::run(obs, "check", || check::check_for(&ast, o.purpose))?;
    if let Some(s) = seed {
        model.train.seed = s;
    }
    if o.masks {
        model.add_masks();
    }
    let train = LowerOptions { mode: Mode::Train, probes: o.log_layers, prediction: false };
    let lowered = observe::run(obs, "lower", || lower::lower_with(&model, train));
    // Stabilize before differentiating: the backward pass of log(softmax(z)) is not stable,
    // that of the fused cross-entropy is.
    let stable = observe::run(obs, "passes", || passes::optimize(&lowered));
    let mut grad = observe::run(obs, "autodiff", || autodiff::backward(&stable));
    if o.log_layers {
        grad.add_param_norms();
    }
    // Probes are outputs of training only.
    let forward = match !modes_differ(&model) && !o.log_layers {
        true => stable,
        false => {
            let eval = LowerOptions { mode: Mode::Eval, ..Default::default() };
            let g = observe::run(obs, "lower", || lower::lower_with(&model, eval));
            observe::run(obs, "passes", || passes::optimize(&g))
        }
    };
    let step = observe::run(obs, "update", || update::step(&grad, &model, !o.allow_nonfinite));
    let mut rules = Vec::new();
    let opt = observe::run(obs, "passes", || {
        step.map(|g| {
            let (opt, log) = passes::optimize_with_log(g);
            rules = log;
            opt
        })
    });
    let src = syntax::set::combined(src, &o.sets);
    Ok(Compiled { src, ast, model, lowered, forward, grad, step, opt, rules })
}

/// The driver of the JIT half: `c`'s optimized step and forward graph through the JIT's
/// stages (`fuse`, `plan`, `cranelift`), each reported to `obs`.
pub fn jit(
    c: &Compiled,
    o: jit::Options,
    obs: &mut dyn Observer,
) -> std::result::Result<Jit, jit::JitError> {
    jit::compile_with(&c.opt, &c.forward, o, obs)
}

/// True if `model` lowers differently in evaluation mode than in training mode: it has
/// buffers (batch norm) or dropout.
pub fn modes_differ(model: &Model) -> bool {
    !model.buffers.is_empty()
        || model.values.iter().any(|v| matches!(v.kind, check::ValueKind::Dropout { .. }))
}

/// The stages `nnc ir --stage` can print.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Ast,
    Graph,
    Grad,
    Step,
    Opt,
    /// The JIT's fused kernels and memory plan (`jit::print::kernels`).
    Kernels,
    /// The JIT's Cranelift IR of the training step (`jit::print::clif`).
    Clif,
}

impl Stage {
    pub const ALL: [(&'static str, Stage); 7] = [
        ("ast", Stage::Ast),
        ("graph", Stage::Graph),
        ("grad", Stage::Grad),
        ("step", Stage::Step),
        ("opt", Stage::Opt),
        ("kernels", Stage::Kernels),
        ("clif", Stage::Clif),
    ];
}

/// Why [`ir`] printed nothing.
#[derive(Debug)]
pub enum IrError {
    /// The source has errors.
    Source(Vec<Diagnostic>),
    /// The JIT could not compile the model.
    Jit(jit::JitError),
}

/// The deterministic text of `stage` for `src`. `kernels` and `clif` are what the JIT
/// compiles for `threads` threads (as `nnc train --threads` would run it).
pub fn ir(src: &str, stage: Stage, threads: usize) -> std::result::Result<String, IrError> {
    if stage == Stage::Ast {
        return Ok(syntax::print::print(&syntax::parse(src).map_err(IrError::Source)?));
    }
    let c = compile(src).map_err(IrError::Source)?;
    let text = match stage {
        Stage::Ast => unreachable!(),
        Stage::Graph => print::print(&c.lowered, Some(src)),
        Stage::Grad => print::print(&c.grad, Some(src)),
        Stage::Step => print::print(&c.step, Some(src)),
        Stage::Opt => {
            let mut s = print::print(&c.opt, Some(src));
            s.push_str("// rewrites:");
            for (name, n) in &c.rules {
                s.push_str(&format!(" {name}×{n}"));
            }
            s.push('\n');
            s
        }
        Stage::Kernels | Stage::Clif => {
            let o = jit::Options { threads, profile: false };
            let mut code = Capture::default();
            let capture: &mut dyn Observer = match stage {
                Stage::Clif => &mut code,
                _ => &mut Quiet,
            };
            let j = self::jit(&c, o, capture).map_err(IrError::Jit)?;
            match stage {
                Stage::Kernels => jit::print::kernels(&j, &c.opt, &c.forward, Some(src)),
                _ => jit::print::clif(&j, &c.opt, &c.forward, &code.0, Some(src)),
            }
        }
    };
    Ok(text)
}
