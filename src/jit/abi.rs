//! The runtime ABI between Rust and the generated code: the context every generated
//! function receives, the arenas, and the calls into JIT code. The JIT's `unsafe` is here
//! and in the GEMM and pool trampolines (`gemm.rs`, `pool.rs`), which own theirs; docs/jit.md
//! lists every `unsafe` of the crate.
//!
//! Soundness rests on three facts, checked here or by construction:
//! - generated code touches only the arenas at offsets of the static plan, sized for the
//!   batch size in the context ([`Machine::run`] grows the batch arena to
//!   `plan.batch_len(batch)` before every call), and the inputs, whose lengths
//!   [`Machine::run`] checks against what the program reads; the address table the entry
//!   hands its kernels ([`Ctx::table`]) is filled by [`Machine::run`] from the same plan,
//!   for this run's arenas and inputs;
//! - the function pointers come from finalized modules that `Machine` owns and frees only
//!   when dropped;
//! - the context is `repr(C)` with the field offsets the generator uses ([`Ctx::FIXED`] …).

use std::mem::offset_of;
use std::time::Instant;

use cranelift::jit::JITModule;
use cranelift::module::FuncId;

use super::gemm::nnc_gemm;
use super::plan::{Place, Slot};
use super::pool::{nnc_pool_run, Pool};

/// What every generated function receives (by pointer).
#[repr(C)]
pub struct Ctx {
    /// Parameters, optimizer state, fixed-size temporaries.
    pub fixed: *mut f32,
    /// Batch-sized temporaries, `plan.batch_units · B̂` floats.
    pub batch_arena: *mut f32,
    /// One pointer per graph input.
    pub inputs: *const *const f32,
    /// The thread pool, or null for one thread.
    pub pool: *const Pool,
    /// The batch size `B`.
    pub batch: u64,
    /// `B̂`: `B` rounded up to a multiple of 16.
    pub batch_pad: u64,
    /// The values of the runtime scalars (`plan.args`, in that order): the learning rate,
    /// the step `t` and the optimizers' step-dependent scalars (`graph::ScalarArg`),
    /// computed on the host in f64 and rounded once to f32.
    pub args: *const f32,
    /// Per-kernel timing, or null unless compiled with profiling.
    pub prof: *mut Profile,
    /// The addresses of the buffers the entry's kernel calls pass, in call order
    /// (`codegen::Code::tables`), filled for this run.
    pub table: *const *const f32,
}

impl Ctx {
    pub const FIXED: usize = offset_of!(Ctx, fixed);
    pub const BATCH_ARENA: usize = offset_of!(Ctx, batch_arena);
    pub const INPUTS: usize = offset_of!(Ctx, inputs);
    pub const POOL: usize = offset_of!(Ctx, pool);
    pub const BATCH: usize = offset_of!(Ctx, batch);
    pub const BATCH_PAD: usize = offset_of!(Ctx, batch_pad);
    pub const ARGS: usize = offset_of!(Ctx, args);
    pub const PROF: usize = offset_of!(Ctx, prof);
    pub const TABLE: usize = offset_of!(Ctx, table);
}

/// Wall time spent in each kernel of each entry, accumulated over runs (`nnc bench
/// --profile`). Code compiled with profiling calls [`nnc_tick`] before its first kernel
/// and after every kernel.
#[derive(Debug)]
pub struct Profile {
    last: Instant,
    /// `ns[entry][kernel]`: nanoseconds summed over runs.
    pub ns: Vec<Vec<u64>>,
    /// Runs of each entry.
    pub runs: Vec<u64>,
}

impl Profile {
    /// Zeroed accumulators for entries with `kernels[e]` kernels.
    pub fn new(kernels: &[usize]) -> Profile {
        Profile {
            last: Instant::now(),
            ns: kernels.iter().map(|&n| vec![0; n]).collect(),
            runs: vec![0; kernels.len()],
        }
    }
}

/// `kernel == u64::MAX`: entry `entry` starts a run; otherwise kernel `kernel` just ended.
///
/// # Safety
/// `p` is the `prof` pointer of a live [`Ctx`]: null or a valid, exclusively used `Profile`.
pub unsafe extern "C" fn nnc_tick(p: *mut Profile, entry: u64, kernel: u64) {
    // SAFETY: the caller passes the context's pointer, which `Machine::run` sets from its
    // own `Box<Profile>` for the duration of the call (or null).
    let Some(p) = (unsafe { p.as_mut() }) else { return };
    let now = Instant::now();
    let e = entry as usize;
    if kernel == u64::MAX {
        p.runs[e] += 1;
    } else if let Some(slot) = p.ns.get_mut(e).and_then(|v| v.get_mut(kernel as usize)) {
        *slot += now.duration_since(p.last).as_nanos() as u64;
    }
    p.last = Instant::now();
}

/// The address profiled code calls between kernels.
pub fn tick_address() -> *const u8 {
    nnc_tick as *const u8
}

/// The address generated code calls for matrix products.
pub fn gemm_address() -> *const u8 {
    nnc_gemm as *const u8
}

/// The address generated code calls for window ops.
pub fn window_address() -> *const u8 {
    super::window::nnc_window as *const u8
}

/// The address generated code calls to split a kernel across the pool.
pub fn pool_run_address() -> *const u8 {
    nnc_pool_run as *const u8
}

type EntryFn = unsafe extern "C" fn(*mut Ctx);

/// Compiled code with its memory: the modules, their entry points and the arenas.
pub struct Machine {
    modules: Vec<JITModule>,
    /// One per program; `None` until the program's code is loaded.
    entries: Vec<Option<EntryFn>>,
    /// Per program, where the buffers of its table live, and the table (filled each run).
    tables: Vec<(Vec<Place>, Vec<*const f32>)>,
    /// The fixed arena (parameters and state live here, see the plan).
    pub fixed: Vec<f32>,
    batch: Vec<f32>,
    inputs: Vec<*const f32>,
    /// The pool, created on the first run that has work to split (so a model whose
    /// products and kernels are all too small never starts a worker thread).
    pool: Option<Box<Pool>>,
    threads: usize,
    /// Kernel timing when the code was compiled with profiling.
    pub profile: Option<Box<Profile>>,
}

/// What one run of an entry needs (besides the inputs).
pub struct Run<'a> {
    /// Which entry (index into the compiled programs).
    pub entry: usize,
    pub batch: usize,
    /// Floats the batch arena must hold for this batch size.
    pub batch_len: usize,
    /// The values of `plan.args`.
    pub args: &'a [f32],
    /// Some product or kernel is large enough at this batch size to split over the pool;
    /// otherwise the run sees no pool and is exactly the single-threaded code.
    pub split: bool,
}

impl Machine {
    /// A machine for `programs` programs, none loaded yet ([`Machine::load`]).
    pub fn new(programs: usize, fixed: Vec<f32>, threads: usize) -> Machine {
        Machine {
            modules: Vec::new(),
            entries: vec![None; programs],
            tables: vec![Default::default(); programs],
            fixed,
            batch: Vec::new(),
            inputs: Vec::new(),
            pool: None,
            threads,
            profile: None,
        }
    }

    /// Takes a finalized module whose `entries` (program index, function) have the
    /// signature `(i64 ctx)` and read `tables` (one per entry) through the context.
    pub fn load(
        &mut self,
        module: JITModule,
        entries: &[(usize, FuncId)],
        tables: Vec<Vec<Place>>,
    ) {
        for (&(program, _), places) in entries.iter().zip(tables) {
            let n = places.len();
            self.tables[program] = (places, vec![std::ptr::null(); n]);
        }
        for &(program, id) in entries {
            let p = module.get_finalized_function(id);
            // SAFETY: `p` is a finalized function of `module` compiled with the host's C
            // calling convention and the signature `(i64) -> ()`; a pointer is an i64.
            self.entries[program] = Some(unsafe { std::mem::transmute::<*const u8, EntryFn>(p) });
        }
        self.modules.push(module);
    }

    /// True once program `entry`'s code is loaded.
    pub fn loaded(&self, entry: usize) -> bool {
        self.entries[entry].is_some()
    }

    /// Threads the runs so far have used: `threads` once a run had work to split (the pool
    /// exists), else 1.
    pub fn threads_used(&self) -> usize {
        if self.pool.is_some() {
            self.threads
        } else {
            1
        }
    }

    /// The batch arena as the last run left it.
    pub fn batch_arena(&self) -> &[f32] {
        &self.batch
    }

    /// Runs one entry on `inputs`: the data of each graph input, in order, with the number
    /// of floats the program reads from it. Panics if an input is shorter than that (callers
    /// validate shapes first and report errors; this is the last line of defence).
    /// Allocates only when the batch arena must grow.
    pub fn run<'a>(&mut self, r: &Run, inputs: impl Iterator<Item = (&'a [f32], usize)>) {
        self.inputs.clear();
        for (data, need) in inputs {
            assert!(data.len() >= need, "input of {} floats, the program reads {need}", data.len());
            self.inputs.push(data.as_ptr());
        }
        if self.batch.len() < r.batch_len {
            self.batch.resize(r.batch_len, 0.0);
        }
        let pad = super::plan::batch_pad(r.batch);
        let (places, table) = &mut self.tables[r.entry];
        let (fixed, batch) =
            (self.fixed.as_mut_ptr().cast_const(), self.batch.as_mut_ptr().cast_const());
        for (p, place) in table.iter_mut().zip(places.iter()) {
            // In bounds: the plan placed every buffer inside its arena (`wrapping_add` for
            // the empty arenas of models without one).
            *p = match *place {
                Place::Arena(Slot::Fixed(o)) => fixed.wrapping_add(o),
                Place::Arena(Slot::Batch(u)) => batch.wrapping_add(u * pad),
                Place::Input(i) => self.inputs[i as usize],
            };
        }
        let mut ctx = Ctx {
            fixed: self.fixed.as_mut_ptr(),
            batch_arena: self.batch.as_mut_ptr(),
            inputs: self.inputs.as_ptr(),
            pool: match r.split && self.threads > 1 {
                true => &**self.pool.get_or_insert_with(|| Box::new(Pool::new(self.threads))),
                false => std::ptr::null(),
            },
            batch: r.batch as u64,
            batch_pad: pad as u64,
            args: r.args.as_ptr(),
            prof: self.profile.as_deref_mut().map_or(std::ptr::null_mut(), |p| p as *mut Profile),
            table: table.as_ptr(),
        };
        let f = self.entries[r.entry].expect("the program's code is loaded before it runs");
        // SAFETY: see the module doc: the arenas and inputs are as large as the plan and the
        // input shapes say, `ctx` outlives the call, and the code is alive while `self` is.
        unsafe { f(&mut ctx) }
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        self.entries.clear();
        for m in self.modules.drain(..) {
            // SAFETY: no function pointer of the module survives: `entries` was cleared and
            // no other copy exists (they are private and only called inside `run`).
            unsafe { m.free_memory() };
        }
    }
}
