//! The research tools that drive a compiled model without training it as its file says:
//! each takes a [`crate::pipeline::Compiled`] model and a [`crate::runtime::Backend`], never
//! re-parses, and returns typed results that the command line prints, writes as CSV and
//! draws through [`crate::plot`].
//!
//! | module | what |
//! |---|---|
//! | [`path`] | weights along a line or curve between solutions: `θ(t) = Σ_j c_j(t)·P_j` |
//! | [`bn`] | batch norm's running statistics recomputed for given weights |
//! | [`line`](mod@line) | loss and metrics along a path, and its barrier (`nnc line`) |
//! | [`curve`] | the training step rewritten to train a curve's bends (`nnc connect`) |
//! | [`landscape`] | directions and planes through the weights (`nnc landscape`) |
//! | [`ntk`] | the empirical neural tangent kernel and its spectrum (`nnc ntk`) |
//! | [`prune`] | iterative magnitude pruning: lottery tickets and their controls (`nnc prune`) |

pub mod bn;
pub mod curve;
pub mod landscape;
pub mod line;
pub mod ntk;
pub mod path;
pub mod prune;
