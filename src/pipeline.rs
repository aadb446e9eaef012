//! The whole compiler in one function per stage boundary, read top to bottom:
//! source → AST → checked model → forward graph → gradients → training step → optimized
//! step. `nnc ir` prints any of these stages; `train` runs the result.
//!
//! The model is lowered twice: in training mode (batch norm on batch statistics, updating
//! its running statistics; dropout masks), which the step is built from, and in evaluation
//! mode (running statistics; dropout is the identity), which `nnc eval` and validation run.
//! For a model without batch norm or dropout the two graphs are the same. Both register the model's buffers as their first states, so the
//! evaluation graph's states are a prefix of the step's.

use crate::check::Model;
use crate::diagnostic::Result;
use crate::graph::{print, Graph};
use crate::lower::{LowerOptions, Mode};
use crate::syntax::ast;
use crate::{autodiff, check, lower, passes, probes, syntax, update};

/// Variants of a compilation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompileOptions {
    /// Add the per-layer probes of `crate::probes` to the training step's outputs (after the
    /// loss and the metrics): `nnc train --log-layers`.
    pub log_layers: bool,
}

/// Every stage of one compilation.
pub struct Compiled {
    pub ast: ast::File,
    pub model: Model,
    /// The lowered training-mode forward graph, as written (stage `graph`).
    pub lowered: Graph,
    /// The optimized evaluation-mode forward graph: loss and metrics (`nnc eval`,
    /// validation). Its states are the model's buffers.
    pub forward: Graph,
    /// Forward plus backward: outputs `grad.<param>` (stage `grad`).
    pub grad: Graph,
    /// The training step before IR optimization (stage `step`).
    pub step: Graph,
    /// The optimized training step (stage `opt`): what the backends run.
    pub opt: Graph,
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
    let ast = syntax::parse(src)?;
    let mut model = check::check(&ast)?;
    if let Some(s) = seed {
        model.train.seed = s;
    }
    let train = LowerOptions { mode: Mode::Train, probes: o.log_layers };
    let lowered = lower::lower_with(&model, train);
    // Stabilize before differentiating: the backward pass of log(softmax(z)) is not stable,
    // that of the fused cross-entropy is.
    let stable = passes::optimize(&lowered);
    let mut grad = autodiff::backward(&stable);
    if o.log_layers {
        probes::add_param_norms(&mut grad);
    }
    // Probes are outputs of training only.
    let forward = match !modes_differ(&model) && !o.log_layers {
        true => stable,
        false => {
            let eval = LowerOptions { mode: Mode::Eval, probes: false };
            passes::optimize(&lower::lower_with(&model, eval))
        }
    };
    let step = update::step(&grad, &model);
    let (opt, rules) = passes::optimize_with_log(&step);
    Ok(Compiled { ast, model, lowered, forward, grad, step, opt, rules })
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

/// The deterministic text of `stage` for `src`.
pub fn ir(src: &str, stage: Stage) -> Result<String> {
    if stage == Stage::Ast {
        return Ok(syntax::print::print(&syntax::parse(src)?));
    }
    let c = compile(src)?;
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
            let text = match stage {
                Stage::Kernels => crate::jit::print::kernels(&c, Some(src)),
                _ => crate::jit::print::clif(&c, Some(src)),
            };
            let span = crate::diagnostic::Span::default();
            text.map_err(|e| vec![crate::diagnostic::Diagnostic::error(span, e)])?
        }
    };
    Ok(text)
}
