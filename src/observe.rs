//! Watching the compiler work. An [`Observer`] is told when each stage ends and how long it
//! took, and may ask for the text of the generated code. The pipeline driver
//! (`pipeline::compile_observed`) reports the front half (`parse` … `passes`), the JIT
//! (`jit::compile_with`) its own stages (`fuse`, `plan`, `cranelift`); `nnc bench` times
//! every stage with a [`Timer`], `nnc ir --stage clif` captures the code the JIT compiled.

use std::time::Instant;

/// Told about every stage as it ends.
pub trait Observer {
    /// `stage` ended after `ms` milliseconds. A stage that runs more than once (`lower` and
    /// `passes` for a model with batch norm or dropout) is reported each time.
    fn stage(&mut self, stage: &'static str, ms: f64);
    /// True to receive each generated function's Cranelift IR through [`Observer::code`]
    /// (printing it costs compile time, so only when asked).
    fn wants_code(&self) -> bool {
        false
    }
    /// The Cranelift IR of the generated function `function`, before Cranelift optimizes it.
    fn code(&mut self, function: &str, clif: &str) {
        let _ = (function, clif);
    }
}

/// Runs `f` as `stage`, reporting its time to `obs`.
pub fn run<T>(obs: &mut dyn Observer, stage: &'static str, f: impl FnOnce() -> T) -> T {
    let t0 = Instant::now();
    let r = f();
    obs.stage(stage, t0.elapsed().as_secs_f64() * 1e3);
    r
}

/// Observes nothing.
pub struct Quiet;

impl Observer for Quiet {
    fn stage(&mut self, _: &'static str, _: f64) {}
}

/// Milliseconds per stage, in the order stages first ended; repeated stages are summed.
#[derive(Clone, Debug, Default)]
pub struct Timer(pub Vec<(&'static str, f64)>);

impl Observer for Timer {
    fn stage(&mut self, stage: &'static str, ms: f64) {
        match self.0.iter_mut().find(|(s, _)| *s == stage) {
            Some(slot) => slot.1 += ms,
            None => self.0.push((stage, ms)),
        }
    }
}

/// The generated code's text, function by function (`nnc ir --stage clif`).
#[derive(Clone, Debug, Default)]
pub struct Capture(pub Vec<(String, String)>);

impl Observer for Capture {
    fn stage(&mut self, _: &'static str, _: f64) {}
    fn wants_code(&self) -> bool {
        true
    }
    fn code(&mut self, function: &str, clif: &str) {
        self.0.push((function.to_string(), clif.to_string()));
    }
}
