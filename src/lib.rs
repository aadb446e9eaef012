//! nnc: a compiler for neural-network training.
//!
//! ```text
//! .nn source
//!   ─ syntax (logos lexer + lalrpop grammar) ─▶ ast::File with spans
//!   ─ check (names, layers, shapes, hyper-parameters) ─▶ check::Model (typed, resolved)
//!   ─ lower ─▶ forward Graph (primitive tensor ops)
//!   ─ autodiff ─▶ Graph + gradients (reverse mode, graph to graph)
//!   ─ update ─▶ Graph + optimizer step (the whole training step)
//!   ─ passes (fold, simplify, stabilize, CSE, DCE) ─▶ optimized Graph
//!   ─ jit: fuse ─▶ kernels ─ plan ─▶ arenas ─ codegen (Cranelift) ─▶ native step
//!   ─ train (runtime) ─▶ trained parameters, logs, weight files
//!   ─ study (line, ...) ─▶ research tools driving a compiled model (CSV, tables)
//!   ─ plot ─▶ pictures of logs, sweeps and the lr range test (SVG, PNG)
//! graph::eval: a slow, obviously-correct interpreter of any Graph: the oracle for tests
//! and the `interp` backend. graph::scalar: each elementwise op's one scalar definition.
//! ```
//!
//! `pipeline` strings the front half together; `train::session` builds a backend (the JIT
//! or the interpreter) from its graphs; `bench` times every stage; `main.rs` and `cli/` are
//! only the command line. The JIT's design: docs/jit.md.

pub mod diagnostic;
pub mod error;
pub mod files;
pub mod tensor;

pub mod autodiff;
pub mod bench;
pub mod check;
pub mod graph;
pub mod jit;
pub mod lower;
pub mod observe;
pub mod passes;
pub mod pipeline;
pub mod plot;
pub mod probes;
pub mod runtime;
pub mod schedule;
pub mod study;
pub mod syntax;
pub mod train;
pub mod update;
