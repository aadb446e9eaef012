//! Training: data, parameter initialization, weight files, and the training loop
//! (`session`) that calls a `runtime::Backend` (the JIT or the interpreter) once per batch.
//! A host-driven optimizer (L-BFGS, [`lbfgs`]) drives the backend's `step_full` and
//! `set_params` itself.

pub mod checkpoint;
pub mod data;
pub mod init;
pub mod lbfgs;
pub mod lr_find;
pub mod lsuv;
pub mod predict;
pub mod report;
pub mod run;
pub mod session;
pub mod state;
pub mod sweep;
pub mod synthetic;
pub mod weights;
