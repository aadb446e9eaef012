//! The whole compiler in one function per stage boundary, read top to bottom:
//! source → AST → checked model → forward graph → gradients → training step → optimized
//! step. `nnc ir` prints any of these stages; `train` runs the result.

use crate::check::Model;
use crate::diagnostic::Result;
use crate::graph::{print, Graph};
use crate::syntax::ast;
use crate::{autodiff, check, lower, passes, syntax, update};

/// Every stage of one compilation.
pub struct Compiled {
    pub ast: ast::File,
    pub model: Model,
    /// The lowered forward graph, as written (stage `graph`).
    pub lowered: Graph,
    /// The optimized forward graph: loss and metrics (used for evaluation).
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
    let ast = syntax::parse(src)?;
    let model = check::check(&ast)?;
    let lowered = lower::lower(&model);
    // Stabilize before differentiating: the backward pass of log(softmax(z)) is not stable,
    // that of the fused cross-entropy is.
    let forward = passes::optimize(&lowered);
    let grad = autodiff::backward(&forward);
    let step = update::step(&grad, &model);
    let (opt, rules) = passes::optimize_with_log(&step);
    Ok(Compiled { ast, model, lowered, forward, grad, step, opt, rules })
}

/// The stages `nnc ir --stage` can print.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Ast,
    Graph,
    Grad,
    Step,
    Opt,
}

impl Stage {
    pub const ALL: [(&'static str, Stage); 5] = [
        ("ast", Stage::Ast),
        ("graph", Stage::Graph),
        ("grad", Stage::Grad),
        ("step", Stage::Step),
        ("opt", Stage::Opt),
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
    };
    Ok(text)
}
