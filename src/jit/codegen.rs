//! Code generation: kernel IR ([`Program`]) to native code with Cranelift.
//!
//! One Cranelift module per call of [`compile`] (the step's; the forward pass's on its first
//! use), its functions compiled on every core ([`workers`]). Every loop, gather, reduce and
//! index kernel runs a function `(ctx, start, end, bufs)` over its rows (or elements, for flat
//! kernels), `bufs` holding its buffers' addresses, one function per kernel shape
//! ([`Kernel::shape`]); the thread pool splits loop and gather kernels (reduce and index
//! kernels always run whole); each program (the training step, the forward pass) becomes one
//! entry function `(ctx)` calling its kernels in order and the GEMM trampoline directly.
//! Addresses are computed from the context ([`abi::Ctx`]) and the static [`Plan`], so code
//! never embeds a host address and the printed IR is deterministic.
//!
//! The ISA is the host's (`cranelift_native`, which enables AVX/AVX2/FMA when detected),
//! compiled at `opt_level=none` (see [`host_isa`]). Without FMA the code still runs:
//! Cranelift lowers `fma` to a call of `fmaf`, which is registered.

mod columns;
mod dropout;
mod generic;
mod index;
mod loops;
mod ops;
mod workers;

use std::collections::HashMap;

use cranelift::codegen::ir::{
    BlockArg, FuncRef, Function, InstructionData, Opcode, UserFuncName, ValueDef,
};
use cranelift::codegen::isa::OwnedTargetIsa;
use cranelift::jit::{JITBuilder, JITModule};
use cranelift::module::{default_libcall_names, FuncId, Linkage, Module};
use cranelift::prelude::*;

use super::abi::{self, Ctx};
use super::fuse::{Buf, GemmKernel, Kernel, Program, Sym, WindowKernel};
use super::plan::{Place, Plan, Slot};
use super::JitError;
use crate::graph::ScalarArg;
use crate::jit::gemm::{GEMM_TA, GEMM_TB};
pub use loops::may_split;

fn codegen(m: String) -> JitError {
    JitError::Codegen(m)
}

/// A function the generated code calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Import {
    /// `gemm::nnc_gemm`.
    Gemm,
    /// `pool::nnc_pool_run`.
    PoolRun,
    /// `ops::nnc_unary`: a unary op's scalar definition, for values computed once per
    /// kernel (exactly the interpreter's).
    Unary,
    /// `ops::nnc_binary`, likewise for a binary op (pow).
    Binary,
    /// `abi::nnc_tick`, between kernels of profiled code.
    Tick,
    /// `window::nnc_window`.
    Window,
}

/// Elements above which a splittable loop kernel is run on the thread pool. At 2²⁰,
/// BatchNorm's per-(n, c) kernels of G (16·32·1024 = 2¹⁹ elements at batch 32) stayed on
/// one thread; at 2¹⁹ (with the pool's workers spinning between jobs) G ran 1.10× faster on
/// two threads (0.97-1.25, 5 alternating rounds of `nnc bench examples/bench/g.nn --threads
/// 2`). At 2¹⁸ the kernels of G's second stage (32·32·256) split too: with window ops split
/// by size as well (`window::PAR_MIN_FLOATS`), G's kernel time per step on two threads
/// (`nnc bench --threads 2 --profile`, three runs of each build in turn) went from
/// 26.0-28.7 to 23.4-25.4 ms, those kernels' from 1.6-1.8 to 1.06-1.20 ms. F's largest
/// (6·24·24 at batch 64) stays under it. Of A-F only D has kernels this large;
/// BENCHMARKS.md (2026-12-07, "Threads") has every config at 1 and 2 threads.
pub const PAR_MIN_ELEMS: i64 = 1 << 18;

/// Parameters of a kernel function: `(ctx, start, end, bufs)`, `bufs` pointing at the
/// addresses of the kernel's buffers in [`Kernel::shape`]'s order.
const KERNEL_PARAMS: usize = 4;

/// The compiled programs.
pub struct Code {
    pub module: JITModule,
    /// Each program's index and entry function.
    pub entries: Vec<(usize, FuncId)>,
    /// Per entry, where the buffers its kernel calls pass live, in call order. The runtime
    /// puts their addresses in a table for each run ([`Ctx::TABLE`]), and the entry passes
    /// each call a pointer into it: computing and storing every address itself made the
    /// entry the largest function to compile (G's: 5,171 instructions; 2,045 now).
    pub tables: Vec<Vec<Place>>,
    /// With `want_text`: every function's name and Cranelift IR, before optimization.
    pub text: Vec<(String, String)>,
}

/// True if the host has FMA (and so Cranelift emits `vfmadd` instead of `fmaf` calls).
pub fn host_has_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        true
    }
}

/// The host ISA with its features. Cranelift's IR verifier runs in debug builds (every test
/// compiles through it) and is skipped in release builds, where compile time counts.
///
/// `opt_level=none`: the kernels are built in their final shape (values computed once
/// before the loops that use them, addresses strength-reduced by hand), so Cranelift's
/// e-graph optimizer found nothing that runs faster, and it cost a third of compile time.
/// Measured on this machine (2-core AMD EPYC, AVX2), one thread, best of 30 alternating
/// rounds of 5 steps of both builds in one process; compile time as the best of 15:
///
/// | config | step at `speed` | step at `none` | Cranelift at `speed` | at `none` |
/// |--------|-----------------|----------------|----------------------|-----------|
/// | B      | 0.410 ms        | 0.411 ms       |                      |           |
/// | C      | 7.89 ms         | 7.87 ms        |                      |           |
/// | D      | 146.1 ms        | 146.0 ms       |                      |           |
/// | E      | 0.175 ms        | 0.164 ms       |                      |           |
/// | G      | 53.5 ms         | 53.9 ms        | 36.9 ms              | 27.4-31.3 ms |
///
/// The single-pass register allocator compiles faster still, but its code ran 2-15%
/// slower on the same configs, so the backtracking one is kept for kernels. Entry functions
/// (`ENTRY_ISA`) take the single-pass one.
pub fn host_isa() -> Result<OwnedTargetIsa, JitError> {
    host_isa_with("backtracking")
}

/// Which of [`compile`]'s ISAs an entry function is compiled for: [`host_isa`] with the
/// single-pass register allocator. An entry is a straight line of calls, run once per step;
/// when it still stored each call's buffer addresses (G's step: 5,171 instructions), the
/// backtracking allocator took 13 ms on it, a serial tail of the Cranelift stage.
const ENTRY_ISA: usize = 1;

/// Which of [`compile`]'s ISAs a kernel function is compiled for: [`host_isa`].
const KERNEL_ISA: usize = 0;

fn host_isa_with(regalloc: &str) -> Result<OwnedTargetIsa, JitError> {
    let mut flags = settings::builder();
    let verify = if cfg!(debug_assertions) { "true" } else { "false" };
    let settings = [
        ("regalloc_algorithm", regalloc),
        ("opt_level", "none"),
        ("use_colocated_libcalls", "false"),
        ("is_pic", "false"),
        ("enable_verifier", verify),
    ];
    for (k, v) in settings {
        flags.set(k, v).map_err(|e| codegen(format!("cranelift setting {k}: {e}")))?;
    }
    let isa =
        cranelift::native::builder().map_err(|e| codegen(format!("unsupported host: {e}")))?;
    isa.finish(settings::Flags::new(flags)).map_err(|e| codegen(format!("cranelift ISA: {e}")))
}

/// Compiles `programs` (each with its index in `plan`'s programs and its name) sharing
/// `plan`; `threads > 1` lets large kernels and products use the pool; `want_text` keeps
/// each function's IR; `profile` times every kernel (see [`abi::Profile`]).
pub fn compile(
    programs: &[(usize, &Program, &str)],
    plan: &Plan,
    threads: usize,
    want_text: bool,
    profile: bool,
) -> Result<Code, JitError> {
    let isa = host_isa()?;
    let entry_isa = host_isa_with("single_pass")?;
    let mut jb = JITBuilder::with_isa(isa.clone(), default_libcall_names());
    jb.symbol("nnc_gemm", abi::gemm_address());
    jb.symbol("nnc_pool_run", abi::pool_run_address());
    jb.symbol("nnc_window", abi::window_address());
    jb.symbol("nnc_tick", abi::tick_address());
    jb.symbol("fmaf", ops::fmaf as extern "C" fn(f32, f32, f32) -> f32 as *const u8);
    for (_, name, address, _) in ops::exact_functions() {
        jb.symbol(name, address);
    }
    let mut module = JITModule::new(jb);
    let ((entries, tables, text), code) = workers::compile(&[&*isa, &*entry_isa], |sink| {
        let mut g = Gen {
            module: &mut module,
            imports: HashMap::new(),
            shapes: HashMap::new(),
            text: Vec::new(),
            want_text,
            profile,
            sink,
            fbc: FunctionBuilderContext::new(),
        };
        let windows = programs
            .iter()
            .any(|(_, p, _)| p.kernels.iter().any(|k| matches!(k, Kernel::Window(_))));
        g.declare_imports(windows)?;
        let (mut entries, mut tables) = (Vec::new(), Vec::new());
        for &(p, prog, name) in programs {
            let (entry, table) = g.program(prog, name, plan, p, threads)?;
            entries.push((p, entry));
            tables.push(table);
        }
        Ok((entries, tables, g.text))
    })?;
    for c in code {
        module
            .define_function_bytes(c.id, c.alignment, &c.bytes, &c.relocs)
            .map_err(|e| codegen(format!("cranelift: {}: {e}", c.name)))?;
    }
    module.finalize_definitions().map_err(|e| codegen(format!("cranelift: {e}")))?;
    Ok(Code { module, entries, tables, text })
}

struct Gen<'m> {
    module: &'m mut JITModule,
    imports: HashMap<Import, FuncId>,
    /// The function of each kernel shape built so far, with its name.
    shapes: HashMap<Kernel, (FuncId, String)>,
    text: Vec<(String, String)>,
    want_text: bool,
    profile: bool,
    /// Built functions go here to be compiled.
    sink: workers::Sink,
    /// The function builder's scratch, reused from function to function.
    fbc: FunctionBuilderContext,
}

fn sig(m: &JITModule, params: &[Type], ret: Option<Type>) -> Signature {
    let mut s = m.make_signature();
    s.params.extend(params.iter().map(|&t| AbiParam::new(t)));
    s.returns.extend(ret.map(AbiParam::new));
    s
}

impl Gen<'_> {
    /// Declares the imported functions; the window trampoline only when `windows` (a
    /// program has window kernels), so dense programs keep their function numbering.
    fn declare_imports(&mut self, windows: bool) -> Result<(), JitError> {
        let i64s = |n| vec![types::I64; n];
        let mut gemm = i64s(7);
        gemm.push(types::I32);
        let mut decls = vec![
            (Import::Gemm, "nnc_gemm".to_string(), sig(self.module, &gemm, None)),
            (Import::PoolRun, "nnc_pool_run".to_string(), sig(self.module, &i64s(6), None)),
        ];
        if windows {
            decls.push((Import::Window, "nnc_window".into(), sig(self.module, &i64s(6), None)));
        }
        if self.profile {
            decls.push((Import::Tick, "nnc_tick".into(), sig(self.module, &i64s(3), None)));
        }
        for (import, name, _, floats) in ops::exact_functions() {
            let mut params = vec![types::I32];
            params.extend(vec![types::F32; floats]);
            decls.push((import, name.to_string(), sig(self.module, &params, Some(types::F32))));
        }
        for (imp, name, s) in decls {
            let id = self
                .module
                .declare_function(&name, Linkage::Import, &s)
                .map_err(|e| codegen(e.to_string()))?;
            self.imports.insert(imp, id);
        }
        Ok(())
    }

    /// Declares a function named `name` taking `params` i64s.
    fn declare(&mut self, name: &str, params: usize) -> Result<(FuncId, Signature), JitError> {
        let s = sig(self.module, &vec![types::I64; params], None);
        let id = self
            .module
            .declare_function(name, Linkage::Local, &s)
            .map_err(|e| codegen(e.to_string()))?;
        Ok((id, s))
    }

    /// Defines an entry function named `name` taking `params` i64s, built by `body`; `plan`
    /// and `prog` say where program `prog`'s buffers are.
    fn define<'p>(
        &mut self,
        name: &str,
        params: usize,
        header: &str,
        at: (&'p Plan, usize),
        body: impl FnOnce(&mut Fx<'_, 'p>),
    ) -> Result<FuncId, JitError> {
        let (id, s) = self.declare(name, params)?;
        self.build((id, s), name, header, at, ENTRY_ISA, body);
        Ok(id)
    }

    /// Builds the declared function `id` (see [`Gen::define`]) and sends it to be compiled.
    fn build<'p>(
        &mut self,
        (id, s): (FuncId, Signature),
        name: &str,
        header: &str,
        (plan, prog): (&'p Plan, usize),
        isa: usize,
        body: impl FnOnce(&mut Fx<'_, 'p>),
    ) {
        let mut func = Function::with_name_signature(UserFuncName::user(0, id.as_u32()), s);
        let target = self.module.target_config();
        {
            let b = FunctionBuilder::new(&mut func, &mut self.fbc);
            let mut fx = Fx::new(b, self.module, &self.imports, plan, prog);
            body(&mut fx);
            let mut b = fx.b;
            b.seal_all_blocks();
            b.finalize(target);
        }
        if self.want_text {
            self.text.push((name.to_string(), format!("{header}{}", func.display())));
        }
        self.sink.send(id, name, func, isa);
    }

    /// The kernels of `prog` and its entry function. Kernels of equal [`Kernel::shape`] share
    /// one function, built for the shape (its buffers read from the `bufs` parameter): a
    /// network's repeated layers compile once. The entry is built first (its kernels
    /// declared ahead), so that while the kernels are built and compiled, one worker
    /// compiles it: with thousands of layers it is the largest function (0.9 s of 10,000
    /// stacked layers), which compiled last was a serial tail. Its text still comes last.
    fn program(
        &mut self,
        prog: &Program,
        name: &str,
        plan: &Plan,
        p: usize,
        threads: usize,
    ) -> Result<(FuncId, Vec<Place>), JitError> {
        // Per kernel: its function and buffers, and the shape to build (`None`: shared).
        let mut calls = Vec::new();
        let mut builds = Vec::new();
        for (i, k) in prog.kernels.iter().enumerate() {
            if matches!(k, Kernel::Gemm(_) | Kernel::Window(_)) {
                calls.push(None);
                builds.push(None);
                continue;
            }
            let (shape, bufs) = k.shape();
            let (id, build) = match self.shapes.get(&shape) {
                Some((id, owner)) => (*id, Err(owner.clone())),
                None => {
                    let fname = format!("{name}_k{i}");
                    let f = self.declare(&fname, KERNEL_PARAMS)?;
                    self.shapes.insert(shape.clone(), (f.0, fname));
                    (f.0, Ok((f, shape)))
                }
            };
            calls.push(Some((id, bufs)));
            builds.push(Some(build));
        }
        let table = calls.iter().flatten().flat_map(|(_, bufs)| bufs.iter());
        let table = table.map(|&b| plan.place(p, b)).collect();
        let text_at = self.text.len();
        let entry = self.entry(prog, name, plan, p, threads, &calls)?;
        for (i, build) in builds.into_iter().enumerate() {
            let (fname, at) = (format!("{name}_k{i}"), (plan, p));
            let (f, shape) = match build {
                None => continue,
                Some(Err(owner)) => {
                    if self.want_text {
                        self.text.push((fname, format!("; runs the code of {owner}\n")));
                    }
                    continue;
                }
                Some(Ok(b)) => b,
            };
            match &shape {
                Kernel::Loop(l) => {
                    self.build(f, &fname, "", at, KERNEL_ISA, |fx| loops::emit(fx, l, threads))
                }
                Kernel::Gather(gk) => {
                    self.build(f, &fname, "", at, KERNEL_ISA, |fx| generic::gather(fx, gk))
                }
                Kernel::Reduce(rk) => {
                    self.build(f, &fname, "", at, KERNEL_ISA, |fx| generic::reduce(fx, rk))
                }
                Kernel::Index(ik) => {
                    self.build(f, &fname, "", at, KERNEL_ISA, |fx| index::emit(fx, ik))
                }
                Kernel::Gemm(_) | Kernel::Window(_) => unreachable!("a call is no function"),
            }
        }
        if self.text.len() > text_at {
            self.text[text_at..].rotate_left(1);
        }
        Ok((entry, table))
    }

    /// The entry function of `prog`: its kernels (`calls`: the function and buffers of each,
    /// `None` for products) in order.
    fn entry(
        &mut self,
        prog: &Program,
        name: &str,
        plan: &Plan,
        p: usize,
        threads: usize,
        calls: &[Option<(FuncId, Vec<Buf>)>],
    ) -> Result<FuncId, JitError> {
        let header = format!("; {name}: {} kernels in order\n", prog.kernels.len());
        let profile = self.profile;
        self.define(name, 1, &header, (plan, p), |fx| {
            let tick = |fx: &mut Fx, k: i64| {
                if profile {
                    let (prof, entry) = (fx.ctx_field(Ctx::PROF, types::I64), fx.iconst(p as i64));
                    let k = fx.iconst(k);
                    fx.call(Import::Tick, &[prof, entry, k]);
                }
            };
            tick(fx, -1);
            let mut at = 0;
            for (i, (k, call)) in prog.kernels.iter().zip(calls).enumerate() {
                match (k, call) {
                    (Kernel::Gemm(gk), _) => fx.gemm(gk),
                    (Kernel::Window(wk), _) => fx.window(wk),
                    (k, Some((f, bufs))) => {
                        fx.call_kernel(k, *f, at, threads);
                        at += bufs.len();
                    }
                    _ => unreachable!("every kernel but a call is a function with buffers"),
                }
                tick(fx, i as i64);
            }
            fx.b.ins().return_(&[]);
        })
    }
}

/// The state of one function being built (`'p`: the plan's lifetime).
pub(super) struct Fx<'a, 'p> {
    pub b: FunctionBuilder<'a>,
    module: &'a mut JITModule,
    imports: &'a HashMap<Import, FuncId>,
    refs: HashMap<Import, FuncRef>,
    kernels: HashMap<FuncId, FuncRef>,
    plan: &'p Plan,
    prog: usize,
    pub ctx: Value,
    params: Vec<Value>,
    ptrs: HashMap<Buf, Value>,
    /// A kernel function's `bufs` parameter: its buffers are `Temp(i)` at `bufs[i]`.
    bufs: Option<Value>,
    bases: HashMap<usize, Value>,
    batch: Option<Value>,
    /// The [`Local`] values made in the block held with them.
    locals: (Option<Block>, HashMap<Local, Value>),
}

/// A pure value made once per block ([`Fx::local`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Local {
    /// `ptr + 4·index`.
    Scaled(Value, Value),
    /// An f32 constant by its bits, splat in vector mode.
    Const(u32, ops::Mode),
    /// The mask or flag `c ≠ 0`.
    NonZero(Value, ops::Mode),
}

/// A buffer address: `base + off` bytes, `off` folded into the load or store.
#[derive(Clone, Copy, Debug)]
pub(super) struct Addr {
    pub base: Value,
    pub off: i32,
}

impl Addr {
    /// The address `bytes` further on.
    pub fn plus(self, bytes: i32) -> Addr {
        Addr { off: self.off + bytes, ..self }
    }
}

/// Memory flags of loads from the context: never change during a call.
fn ctx_flags() -> MemFlagsData {
    MemFlagsData::trusted().with_readonly()
}

/// Memory flags of buffer accesses: in bounds, possibly unaligned.
pub(super) fn data_flags() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

impl<'a, 'p> Fx<'a, 'p> {
    fn new(
        mut b: FunctionBuilder<'a>,
        module: &'a mut JITModule,
        imports: &'a HashMap<Import, FuncId>,
        plan: &'p Plan,
        prog: usize,
    ) -> Fx<'a, 'p> {
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let params = b.block_params(entry).to_vec();
        let ctx = params[0];
        let bufs = (params.len() == KERNEL_PARAMS).then(|| params[KERNEL_PARAMS - 1]);
        Fx {
            params,
            b,
            module,
            imports,
            refs: HashMap::new(),
            kernels: HashMap::new(),
            plan,
            prog,
            ctx,
            ptrs: HashMap::new(),
            bufs,
            bases: HashMap::new(),
            batch: None,
            locals: (None, HashMap::new()),
        }
    }

    /// The parameters of the entry block: `(ctx[, start, end, bufs])`.
    pub fn entry_params(&mut self) -> Vec<Value> {
        self.params.clone()
    }

    fn ctx_field(&mut self, offset: usize, ty: Type) -> Value {
        let ctx = self.ctx;
        self.b.ins().load(ty, ctx_flags(), ctx, offset as i32)
    }

    /// A pointer field of the context, loaded once per function (first use must be in a
    /// block dominating all later ones: the entry, or straight-line code of an entry).
    fn ctx_base(&mut self, offset: usize) -> Value {
        if let Some(&v) = self.bases.get(&offset) {
            return v;
        }
        let v = self.ctx_field(offset, types::I64);
        self.bases.insert(offset, v);
        v
    }

    pub fn iconst(&mut self, v: i64) -> Value {
        self.b.ins().iconst(types::I64, v)
    }

    /// The value of the runtime scalar `a` (from the context's `args` array).
    pub fn arg(&mut self, a: ScalarArg) -> Value {
        let i = self.plan.args.binary_search(&a).expect("the plan lists every runtime scalar");
        let args = self.ctx_field(Ctx::ARGS, types::I64);
        self.b.ins().load(types::F32, MemFlagsData::trusted(), args, 4 * i as i32)
    }

    /// The batch size, loaded once (call in the entry block before branching).
    pub fn batch(&mut self) -> Value {
        if let Some(b) = self.batch {
            return b;
        }
        let b = self.ctx_field(Ctx::BATCH, types::I64);
        self.batch = Some(b);
        b
    }

    /// A size as an i64.
    pub fn sym(&mut self, s: Sym) -> Value {
        match s.e {
            0 => self.iconst(s.c as i64),
            _ if s.c == 1 => self.batch(),
            _ => {
                let b = self.batch();
                self.b.ins().imul_imm_s(b, s.c as i64)
            }
        }
    }

    /// The address of `buf`. In a kernel function it is loaded once (call in the entry
    /// block); an entry function computes it afresh at each call that needs it, so that no
    /// address lives across the thousands of calls of a deep model (Cranelift's register
    /// allocation grew quadratically with such values: 10,000 stacked layers took 51 s).
    pub fn ptr(&mut self, buf: Buf) -> Value {
        if let Some(bufs) = self.bufs {
            if let Some(&p) = self.ptrs.get(&buf) {
                return p;
            }
            let Buf::Temp(i) = buf else { unreachable!("a kernel's buffers are renamed") };
            let p = self.b.ins().load(types::I64, ctx_flags(), bufs, (i * 8) as i32);
            self.ptrs.insert(buf, p);
            return p;
        }
        let (plan, prog) = (self.plan, self.prog);
        let fixed_at = |fx: &mut Fx, off: usize| {
            let base = fx.ctx_base(Ctx::FIXED);
            match off {
                0 => base,
                _ => fx.b.ins().iadd_imm_s(base, (off * 4) as i64),
            }
        };
        match plan.place(prog, buf) {
            Place::Input(i) => {
                let inputs = self.ctx_base(Ctx::INPUTS);
                self.b.ins().load(types::I64, ctx_flags(), inputs, (i * 8) as i32)
            }
            Place::Arena(Slot::Fixed(o)) => fixed_at(self, o),
            Place::Arena(Slot::Batch(0)) => self.ctx_base(Ctx::BATCH_ARENA),
            Place::Arena(Slot::Batch(units)) => {
                let base = self.ctx_base(Ctx::BATCH_ARENA);
                let pad = self.ctx_base(Ctx::BATCH_PAD);
                let off = self.b.ins().imul_imm_s(pad, (units * 4) as i64);
                self.b.ins().iadd(base, off)
            }
        }
    }

    /// The value `key` names in the current block: made by `make` at its first use there
    /// and reused after (opt_level `none` does no value numbering of its own).
    pub fn local(&mut self, key: Local, make: impl FnOnce(&mut Self) -> Value) -> Value {
        let block = self.b.current_block();
        if self.locals.0 != block {
            self.locals = (block, HashMap::new());
        }
        if let Some(&v) = self.locals.1.get(&key) {
            return v;
        }
        let v = make(self);
        self.locals.1.insert(key, v);
        v
    }

    /// The address of element `index` of `ptr`. A constant part of `index` (an `iconst`,
    /// or an `iadd` with one: the columns of straight-line and unrolled code) becomes the
    /// access's offset, and `ptr + 4·rest` is made once per block. Without it, address
    /// arithmetic was a third of the kernels' instructions, and Cranelift's time follows
    /// the instruction count.
    pub fn addr(&mut self, ptr: Value, index: Value) -> Addr {
        let (rest, c) = self.split_const(index);
        let base = match rest {
            None => ptr,
            Some(x) => self.local(Local::Scaled(ptr, x), |fx| {
                let off = fx.b.ins().ishl_imm_s(x, 2);
                fx.b.ins().iadd(ptr, off)
            }),
        };
        let off = i32::try_from(4 * c).expect("a constant column offset fits 32 bits");
        Addr { base, off }
    }

    /// `index` as a value and a constant added to it (`None`: `index` is the constant).
    fn split_const(&self, index: Value) -> (Option<Value>, i64) {
        let dfg = &self.b.func.dfg;
        let constant = |v: Value| match dfg.value_def(v) {
            ValueDef::Result(inst, _) => match dfg.insts[inst] {
                InstructionData::UnaryImm { opcode: Opcode::Iconst, imm } => Some(imm.bits()),
                _ => None,
            },
            _ => None,
        };
        if let Some(c) = constant(index) {
            return (None, c);
        }
        if let ValueDef::Result(inst, _) = dfg.value_def(index) {
            if let InstructionData::Binary { opcode: Opcode::Iadd, args: [a, b] } = dfg.insts[inst]
            {
                match (constant(a), constant(b)) {
                    (_, Some(c)) => return (Some(a), c),
                    (Some(c), _) => return (Some(b), c),
                    _ => {}
                }
            }
        }
        (Some(index), 0)
    }

    /// Loads a `ty` from buffer memory at `a`.
    pub fn load(&mut self, ty: Type, a: Addr) -> Value {
        self.b.ins().load(ty, data_flags(), a.base, a.off)
    }

    /// Stores `x` to buffer memory at `a`.
    pub fn store(&mut self, x: Value, a: Addr) {
        self.b.ins().store(data_flags(), x, a.base, a.off);
    }

    /// `a` as one pointer value.
    pub fn pointer(&mut self, a: Addr) -> Value {
        match a.off {
            0 => a.base,
            off => self.b.ins().iadd_imm_s(a.base, off as i64),
        }
    }

    fn import(&mut self, imp: Import) -> FuncRef {
        if let Some(&r) = self.refs.get(&imp) {
            return r;
        }
        let r = self.module.declare_func_in_func(self.imports[&imp], self.b.func);
        self.refs.insert(imp, r);
        r
    }

    /// Calls an import, returning its result if any.
    pub fn call(&mut self, imp: Import, args: &[Value]) -> Option<Value> {
        let f = self.import(imp);
        let call = self.b.ins().call(f, args);
        self.b.inst_results(call).first().copied()
    }

    pub fn jump(&mut self, to: Block, args: &[Value]) {
        let a: Vec<BlockArg> = args.iter().map(|&v| BlockArg::Value(v)).collect();
        self.b.ins().jump(to, &a);
    }

    /// A block with `n` parameters of type `ty`.
    pub fn block(&mut self, tys: &[Type]) -> Block {
        let blk = self.b.create_block();
        for &t in tys {
            self.b.append_block_param(blk, t);
        }
        blk
    }

    fn kernel_ref(&mut self, f: FuncId) -> FuncRef {
        if let Some(&r) = self.kernels.get(&f) {
            return r;
        }
        let r = self.module.declare_func_in_func(f, self.b.func);
        self.kernels.insert(f, r);
        r
    }

    /// Calls kernel function `f` for `k` over its whole range, through the pool when it is
    /// large, splittable and there is more than one thread; its buffers' addresses are at
    /// `at` in the context's table (see [`Code::tables`]).
    fn call_kernel(&mut self, k: &Kernel, f: FuncId, at: usize, threads: usize) {
        let table = self.ctx_base(Ctx::TABLE);
        let table = self.b.ins().iadd_imm_s(table, (at * 8) as i64);
        let (n, splittable) = match k {
            Kernel::Loop(l) => {
                let n = if l.flat { l.dom.rows * l.dom.cols } else { l.dom.rows };
                (n, loops::may_split(l, threads))
            }
            Kernel::Gather(g) => (Sym::product(&g.dims), threads > 1),
            _ => (Sym::ONE, false),
        };
        let fr = self.kernel_ref(f);
        let zero = self.iconst(0);
        let n = self.sym(n);
        let ctx = self.ctx;
        if !splittable {
            self.b.ins().call(fr, &[ctx, zero, n, table]);
            return;
        }
        let elems = match k {
            Kernel::Loop(l) if !l.flat => {
                let c = self.sym(l.dom.cols);
                self.b.ins().imul(n, c)
            }
            _ => n,
        };
        let (par, seq, done) =
            (self.b.create_block(), self.b.create_block(), self.b.create_block());
        let big = self.b.ins().icmp_imm_s(IntCC::SignedGreaterThanOrEqual, elems, PAR_MIN_ELEMS);
        self.b.ins().brif(big, par, &[], seq, &[]);
        self.b.switch_to_block(par);
        let pool = self.ctx_field(Ctx::POOL, types::I64);
        let addr = self.b.ins().func_addr(types::I64, fr);
        self.call(Import::PoolRun, &[pool, addr, ctx, zero, n, table]);
        self.jump(done, &[]);
        self.b.switch_to_block(seq);
        self.b.ins().call(fr, &[ctx, zero, n, table]);
        self.jump(done, &[]);
        self.b.switch_to_block(done);
    }

    /// `out = op(a)·op(b)` through the trampoline.
    fn gemm(&mut self, k: &GemmKernel) {
        let pool = self.ctx_field(Ctx::POOL, types::I64);
        let (m, n, kk) = (self.sym(k.m), self.sym(k.n), self.sym(k.k));
        let (a, b, c) = (self.ptr(k.a), self.ptr(k.b), self.ptr(k.out));
        let flags = (if k.ta { GEMM_TA } else { 0 }) | (if k.tb { GEMM_TB } else { 0 });
        let flags = self.b.ins().iconst(types::I32, flags as i64);
        self.call(Import::Gemm, &[pool, m, n, kk, a, b, c, flags]);
    }

    /// A window op through the trampoline, its geometry laid out in a stack slot.
    fn window(&mut self, k: &WindowKernel) {
        let words = k.geom.words();
        let size = (words.len() * 4) as u32;
        let slot = self.b.create_sized_stack_slot(StackSlotData::new(
            StackSlotKind::ExplicitSlot,
            size,
            2,
        ));
        let geom = self.b.ins().stack_addr(types::I64, slot, 0);
        for (i, w) in words.iter().enumerate() {
            let v = self.b.ins().iconst(types::I32, *w as i64);
            self.b.ins().store(MemFlagsData::trusted(), v, geom, (i * 4) as i32);
        }
        let pool = self.ctx_field(Ctx::POOL, types::I64);
        let n = self.sym(k.n);
        let (a, b, out) = (self.ptr(k.srcs[0]), self.ptr(k.srcs[1]), self.ptr(k.out));
        self.call(Import::Window, &[pool, geom, n, a, b, out]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This machine kind has FMA and Cranelift must use it (without it, every `fma` of the
    /// vectorized math becomes four `fmaf` calls).
    #[test]
    fn host_isa_has_fma() {
        assert!(host_has_fma(), "the host should have FMA");
        let isa = host_isa().unwrap();
        let fma = isa.isa_flags().iter().find(|f| f.name == "has_fma").map(|f| f.as_bool());
        assert_eq!(fma, Some(Some(true)), "cranelift_native did not enable has_fma");
        assert_eq!(isa.flags().opt_level(), settings::OptLevel::None);
    }
}
