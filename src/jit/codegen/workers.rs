//! Cranelift on every core: functions are built in order on the calling thread and
//! compiled on worker threads as they come, then placed in the module in build order (so the
//! code and its layout do not depend on the number of threads or on timing).

use std::sync::mpsc;
use std::sync::{Mutex, PoisonError};

use cranelift::codegen::control::ControlPlane;
use cranelift::codegen::ir::Function;
use cranelift::codegen::isa::TargetIsa;
use cranelift::codegen::Context;
use cranelift::module::{FuncId, ModuleReloc};

use super::codegen;
use crate::jit::JitError;

/// Where built functions go to be compiled.
pub(super) struct Sink {
    tx: mpsc::SyncSender<Job>,
    next: usize,
}

impl Sink {
    /// Queues `func` (the function `id`, called `name` in errors) to be compiled for ISA
    /// number `isa` of [`compile`]'s; blocks while every worker is busy and the queue is
    /// full, which bounds the IR held at once.
    pub fn send(&mut self, id: FuncId, name: &str, func: Function, isa: usize) {
        let job = Job { seq: self.next, id, name: name.to_string(), func, isa };
        self.next += 1;
        // The workers only stop early by panicking, which the scope re-raises.
        let _ = self.tx.send(job);
    }
}

struct Job {
    seq: usize,
    id: FuncId,
    name: String,
    func: Function,
    isa: usize,
}

/// A function's machine code with what the module needs to place it.
pub(super) struct Compiled {
    seq: usize,
    pub id: FuncId,
    pub name: String,
    pub alignment: u64,
    pub bytes: Vec<u8>,
    pub relocs: Vec<ModuleReloc>,
}

impl Job {
    /// Compiles the job in `ctx`, a worker's own context: reused from function to function,
    /// it keeps its allocations (the register allocator's among them) instead of making
    /// them anew for each of a model's many small kernels.
    fn compile(self, ctx: &mut Context, isas: &[&dyn TargetIsa]) -> Result<Compiled, JitError> {
        let err = |e: &dyn std::fmt::Debug| codegen(format!("cranelift: {}: {e:?}", self.name));
        let isa = isas[self.isa];
        ctx.clear();
        ctx.func = self.func;
        let res = ctx.compile(isa, &mut ControlPlane::default()).map_err(|e| err(&e.inner))?;
        let alignment = res.buffer.alignment as u64;
        let code = ctx.compiled_code().expect("compiled just now");
        let relocs = code.buffer.relocs().iter();
        let relocs = relocs.map(|r| ModuleReloc::from_mach_reloc(r, &ctx.func, self.id));
        Ok(Compiled {
            seq: self.seq,
            id: self.id,
            alignment,
            bytes: code.code_buffer().to_vec(),
            relocs: relocs.collect(),
            name: self.name,
        })
    }
}

/// Threads Cranelift compiles on: one per core.
fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs `build` on this thread with a [`Sink`] whose functions are compiled for one of
/// `isas` on worker threads meanwhile; returns `build`'s result and the machine code in
/// build order.
pub(super) fn compile<T>(
    isas: &[&dyn TargetIsa],
    build: impl FnOnce(Sink) -> Result<T, JitError>,
) -> Result<(T, Vec<Compiled>), JitError> {
    let workers = threads();
    let (tx, rx) = mpsc::sync_channel::<Job>(workers);
    let rx = Mutex::new(rx);
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::scope(|s| {
        for _ in 0..workers {
            let (rx, done) = (&rx, done_tx.clone());
            s.spawn(move || {
                let mut ctx = Context::new();
                loop {
                    let job = rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
                    let Ok(job) = job else { break };
                    if done.send(job.compile(&mut ctx, isas)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done_tx);
        let out = build(Sink { tx, next: 0 });
        // Every worker ends once the sink is dropped and the queue drained.
        let mut code = done_rx.iter().collect::<Result<Vec<_>, _>>()?;
        code.sort_by_key(|c| c.seq);
        Ok((out?, code))
    })
}
