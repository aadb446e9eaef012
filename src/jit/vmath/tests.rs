//! Tests of the vector math: each function is JIT-compiled into a tiny kernel
//! `k(x: *const f32x4, y: *const f32x4, out: *mut f32x4)` and run over sweeps of inputs;
//! results are compared with `f64` references in ulps of the `f32` result.
//! `VMATH_DUMP=1 cargo test --lib jit::vmath -- --nocapture` prints each kernel's CLIF and
//! x86 code.

use super::*;
use crate::graph::eval::erf as erf_ref;
use cranelift::codegen::ir::AbiParam;
use cranelift::jit::{JITBuilder, JITModule};
use cranelift::module::{default_libcall_names, Linkage, Module};
use cranelift::prelude::FunctionBuilderContext;
use std::time::{Duration, Instant};

type Kernel = unsafe extern "C" fn(*const f32, *const f32, *mut f32);

/// A compiled kernel (the module owns its code, so it is kept alive with it).
struct Jitted {
    _module: JITModule,
    f: Kernel,
    /// CLIF instructions the emitter added.
    insts: usize,
    /// Time spent in `define_function` (Cranelift's compile).
    compile: Duration,
}

fn jit(build: impl FnOnce(&mut FunctionBuilder, Value, Value) -> Value) -> Jitted {
    let isa = crate::jit::codegen::host_isa().unwrap();
    let mut module = JITModule::new(JITBuilder::with_isa(isa, default_libcall_names()));
    let config = module.target_config();
    let ptr = config.pointer_type();
    let mut ctx = module.make_context();
    ctx.func.signature.params = vec![AbiParam::new(ptr); 3];
    let mut fbc = FunctionBuilderContext::new();
    let insts;
    {
        let mut b = FunctionBuilder::new(&mut ctx.func, &mut fbc);
        let blk = b.create_block();
        b.append_block_params_for_function_params(blk);
        b.switch_to_block(blk);
        b.seal_block(blk);
        let p = b.block_params(blk).to_vec();
        let mf = MemFlagsData::new().with_notrap();
        let x = b.ins().load(F32X4, mf, p[0], 0);
        let y = b.ins().load(F32X4, mf, p[1], 0);
        let before = b.func.dfg.num_insts();
        let r = build(&mut b, x, y);
        insts = b.func.dfg.num_insts() - before;
        b.ins().store(mf, r, p[2], 0);
        b.ins().return_(&[]);
        b.finalize(config);
    }
    let id = module.declare_function("k", Linkage::Local, &ctx.func.signature).unwrap();
    if std::env::var("VMATH_DUMP").is_ok() {
        println!("{}", ctx.func.display());
        ctx.set_disasm(true);
    }
    let t0 = Instant::now();
    module.define_function(id, &mut ctx).unwrap();
    if std::env::var("VMATH_DUMP").is_ok() {
        println!("{}", ctx.compiled_code().unwrap().vcode.as_deref().unwrap_or(""));
    }
    let compile = t0.elapsed();
    module.clear_context(&mut ctx);
    module.finalize_definitions().unwrap();
    let code = module.get_finalized_function(id);
    // SAFETY: the function was built with exactly this signature (three pointers, no result).
    let f = unsafe { std::mem::transmute::<*const u8, Kernel>(code) };
    Jitted { _module: module, f, insts, compile }
}

impl Jitted {
    /// Applies the kernel to `x` (and `y`, same length) four lanes at a time.
    fn run(&self, x: &[f32], y: &[f32]) -> Vec<f32> {
        assert_eq!(x.len(), y.len());
        let mut out = Vec::with_capacity(x.len());
        for (cx, cy) in x.chunks(4).zip(y.chunks(4)) {
            let (mut a, mut b, mut r) = ([0f32; 4], [0f32; 4], [0f32; 4]);
            a[..cx.len()].copy_from_slice(cx);
            b[..cy.len()].copy_from_slice(cy);
            // SAFETY: three valid 16-byte buffers; the kernel reads 4 floats from the first
            // two and writes 4 to the third.
            unsafe { (self.f)(a.as_ptr(), b.as_ptr(), r.as_mut_ptr()) };
            out.extend_from_slice(&r[..cx.len()]);
        }
        out
    }

    fn run1(&self, x: &[f32]) -> Vec<f32> {
        self.run(x, &vec![0.0; x.len()])
    }
}

fn jit_fn(f: UnaryOp) -> Jitted {
    jit(|b, x, _| emit(b, f, x))
}

// ---------------------------------------------------------------------------------------
// References and error measure.

/// The function in f64: the ops' own definition, except erf (an independent reference).
fn reference(f: UnaryOp, x: f64) -> f64 {
    match f {
        UnaryOp::Erf => erf_ref(x),
        _ => f.apply(x),
    }
}

/// The spacing of f32 values around `r` (subnormal spacing below the normal range).
fn ulp(r: f64) -> f64 {
    let e = if r == 0.0 { -126 } else { (r.abs().log2().floor() as i32).max(-126) };
    2f64.powi(e - 23)
}

/// Worst errors seen, with the inputs that produced them.
#[derive(Default, Debug)]
struct Stats {
    ulp: f64,
    ulp_at: (f32, f32),
    rel: f64,
    rel_at: (f32, f32),
    count: usize,
}

impl Stats {
    /// Records `got` against the exact `r` for inputs `(x, y)`; panics on a wrong special
    /// value (NaN where a number is expected or the other way round, a wrong infinity).
    fn add(&mut self, x: f32, y: f32, got: f32, r: f64) {
        self.count += 1;
        if r.is_nan() {
            assert!(got.is_nan(), "({x:e}, {y:e}): expected NaN, got {got:e}");
            return;
        }
        assert!(!got.is_nan(), "({x:e}, {y:e}): expected {r:e}, got NaN");
        if r.is_infinite() || (got.is_infinite() && (r as f32).is_infinite()) {
            assert_eq!(got as f64, r as f32 as f64, "({x:e}, {y:e}): expected {r:e}, got {got:e}");
            return;
        }
        let err = (got as f64 - r).abs();
        let u = err / ulp(r);
        if u > self.ulp {
            self.ulp = u;
            self.ulp_at = (x, y);
        }
        if r.abs() >= f32::MIN_POSITIVE as f64 {
            let rel = err / r.abs();
            if rel > self.rel {
                self.rel = rel;
                self.rel_at = (x, y);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Inputs.

/// Special values every function sees.
fn specials() -> Vec<f32> {
    let pos = [
        0.0,
        1e-45,
        1e-40,
        f32::MIN_POSITIVE,
        1e-30,
        1e-10,
        1e-7,
        0.5,
        1.0,
        2.0,
        10.0,
        100.0,
        1e10,
        1e30,
        f32::MAX,
        f32::INFINITY,
    ];
    let mut v: Vec<f32> = pos.iter().flat_map(|&p| [p, -p]).collect();
    // Quiet and signaling NaNs with payloads (the payload must not leak into exponent tricks).
    let nans = [0x7FC0_0000u32, 0xFFC0_0000, 0x7F80_0001, 0x7FBF_FFFF, 0xFFC0_1234, 0x7FC0_0101];
    v.extend(nans.iter().map(|&b| f32::from_bits(b)));
    v
}

/// `n` floats evenly spaced in bit pattern over all finite non-negative floats, and their
/// negatives: every binade from subnormals to `f32::MAX` gets the same share.
fn log_sweep(n: u32) -> Vec<f32> {
    let step = 0x7F80_0000 / n;
    (0..n).map(|k| f32::from_bits(k * step + (k % 7))).flat_map(|p| [p, -p]).collect()
}

/// `n + 1` points evenly spaced on `[lo, hi]`.
fn lin_sweep(lo: f32, hi: f32, n: usize) -> Vec<f32> {
    let (lo, hi) = (lo as f64, hi as f64);
    (0..=n).map(|k| (lo + (hi - lo) * k as f64 / n as f64) as f32).collect()
}

/// The interval where each function does its interesting work.
fn dense_range(f: UnaryOp) -> (f32, f32) {
    match f {
        UnaryOp::Exp => (-104.0, 89.0),
        UnaryOp::Log => (0.0, 4.0),
        UnaryOp::Log1p => (-1.0, 4.0),
        UnaryOp::Tanh | UnaryOp::Erf => (-10.0, 10.0),
        UnaryOp::Sigmoid | UnaryOp::Softplus => (-110.0, 30.0),
        _ => unreachable!("{f:?} is not a vmath function"),
    }
}

fn inputs(f: UnaryOp, n: usize) -> Vec<f32> {
    let (lo, hi) = dense_range(f);
    let mut xs = specials();
    xs.extend(log_sweep(n as u32 / 2));
    xs.extend(lin_sweep(lo, hi, n));
    xs.extend(lin_sweep(-1.0, 1.0, n / 4));
    xs
}

fn measure(f: UnaryOp, k: &Jitted, xs: &[f32]) -> Stats {
    let got = k.run1(xs);
    let mut s = Stats::default();
    for (&x, &g) in xs.iter().zip(&got) {
        s.add(x, 0.0, g, reference(f, x as f64));
    }
    s
}

/// Max ulp bound per function (measured values are in the module doc).
fn ulp_bound(f: UnaryOp) -> f64 {
    match f {
        UnaryOp::Exp | UnaryOp::Log | UnaryOp::Log1p | UnaryOp::Erf => 1.5,
        UnaryOp::Softplus => 2.0,
        UnaryOp::Tanh => 5.0,
        UnaryOp::Sigmoid => 2.5,
        _ => unreachable!("{f:?} is not a vmath function"),
    }
}

// ---------------------------------------------------------------------------------------
// Tests.

#[test]
fn accuracy_table() {
    println!("fn         max ulp (at x)            max rel (at x)          insts  compile");
    for f in functions() {
        let k = jit_fn(f);
        let s = measure(f, &k, &inputs(f, 120_000));
        println!(
            "{:<9} {:>6.3} ({:>13e})  {:>9.2e} ({:>13e})  {:>5}  {:?}",
            format!("{f:?}"),
            s.ulp,
            s.ulp_at.0,
            s.rel,
            s.rel_at.0,
            k.insts,
            k.compile
        );
        assert!(s.ulp <= ulp_bound(f), "{f:?}: {s:?}");
        assert!(s.rel <= 5e-7, "{f:?}: {s:?}");
    }
}

/// Exact special values (compared bit for bit, NaN by class).
#[test]
fn special_values() {
    use UnaryOp::*;
    let inf = f32::INFINITY;
    let nan = f32::NAN;
    let cases: &[(UnaryOp, &[(f32, f32)])] = &[
        (
            Exp,
            &[
                (0.0, 1.0),
                (-0.0, 1.0),
                (inf, inf),
                (-inf, 0.0),
                (88.73, inf),
                (89.0, inf),
                (1000.0, inf),
                (-103.98, 0.0),
                (-1000.0, 0.0),
                (nan, nan),
            ],
        ),
        (
            Log,
            &[
                (0.0, -inf),
                (-0.0, -inf),
                (-1.0, nan),
                (-1e-40, nan),
                (-inf, nan),
                (inf, inf),
                (1.0, 0.0),
                (nan, nan),
            ],
        ),
        (
            Log1p,
            &[
                (-1.0, -inf),
                (-2.0, nan),
                (-inf, nan),
                (inf, inf),
                (0.0, 0.0),
                (1e-30, 1e-30),
                (-1e-30, -1e-30),
                (1e-45, 1e-45),
                (nan, nan),
            ],
        ),
        (
            Tanh,
            &[
                (0.0, 0.0),
                (-0.0, -0.0),
                (9.02, 1.0),
                (9.1, 1.0),
                (-9.1, -1.0),
                (1e30, 1.0),
                (inf, 1.0),
                (-inf, -1.0),
                (1e-30, 1e-30),
                (-1e-40, -1e-40),
                (nan, nan),
            ],
        ),
        (
            Sigmoid,
            &[
                (0.0, 0.5),
                (-0.0, 0.5),
                (17.0, 1.0),
                (inf, 1.0),
                (-104.0, 0.0),
                (-inf, 0.0),
                (nan, nan),
            ],
        ),
        (
            Softplus,
            &[
                (17.0, 17.0),
                (30.0, 30.0),
                (1e10, 1e10),
                (f32::MAX, f32::MAX),
                (inf, inf),
                (-104.0, 0.0),
                (-inf, 0.0),
                (nan, nan),
            ],
        ),
        (
            Erf,
            &[
                (0.0, 0.0),
                (-0.0, -0.0),
                (3.919206, 1.0),
                (3.95, 1.0),
                (-4.0, -1.0),
                (1e30, 1.0),
                (inf, 1.0),
                (-inf, -1.0),
                (nan, nan),
            ],
        ),
    ];
    for (f, pairs) in cases {
        let k = jit_fn(*f);
        let xs: Vec<f32> = pairs.iter().map(|p| p.0).collect();
        for (&(x, want), got) in pairs.iter().zip(k.run1(&xs)) {
            let same = (want.is_nan() && got.is_nan()) || want.to_bits() == got.to_bits();
            assert!(same, "{f:?}({x:e}) = {got:e}, expected {want:e}");
        }
    }
}

/// Subnormal results of exp/sigmoid/softplus are within an ulp of the subnormal grid.
#[test]
fn subnormal_results() {
    let xs = lin_sweep(-104.0, -87.0, 40_000);
    for f in [UnaryOp::Exp, UnaryOp::Sigmoid, UnaryOp::Softplus] {
        let s = measure(f, &jit_fn(f), &xs);
        assert!(s.ulp <= 1.0, "{f:?}: {s:?}");
    }
}

/// Scalar use: splat, emit, extract lane 0.
#[test]
fn scalar_through_lane_zero() {
    let k = jit(|b, x, _| {
        let s = b.ins().extractlane(x, 2);
        let v = b.ins().splat(F32X4, s);
        let r = emit(b, UnaryOp::Tanh, v);
        let r0 = b.ins().extractlane(r, 0);
        b.ins().splat(F32X4, r0)
    });
    let got = k.run1(&[0.0, 0.0, 0.3, 0.0]);
    assert!(got.iter().all(|&g| g == got[0]));
    assert!((got[0] as f64 - 0.3f64.tanh()).abs() < 1e-7);
}

// ---------------------------------------------------------------------------------------
// pow

fn pow_stats(k: &Jitted, a: &[f32], y: &[f32]) -> Stats {
    let got = k.run(a, y);
    let mut s = Stats::default();
    for ((&a, &y), &g) in a.iter().zip(y).zip(&got) {
        s.add(a, y, g, (a as f64).powf(y as f64));
    }
    s
}

/// Positive bases over the whole range, exponents with |y·ln a| up to ~100 (so results
/// cover the normal and subnormal range and overflow).
#[test]
fn pow_accuracy() {
    let k = jit(emit_pow);
    let (mut a, mut y) = (Vec::new(), Vec::new());
    let bases: Vec<f32> = log_sweep(3000).into_iter().filter(|&b| b > 0.0).collect();
    for (i, &b) in bases.iter().enumerate() {
        let l = (b as f64).ln();
        for j in 0..40 {
            // targets t = y·ln a spread over [−105, 90]
            let t = -105.0 + 195.0 * ((j * 7 + i) % 40) as f64 / 39.0;
            let ey = if l == 0.0 { 3.0 } else { t / l };
            a.push(b);
            y.push(ey as f32);
        }
    }
    // Worst case for the log's low part: no 2ᵏ factor, |f| near its maximum, y·ln a ≈ ±87.
    for &b in lin_sweep(0.5, 2.0, 40_000).iter() {
        let l = (b as f64).ln();
        if l != 0.0 {
            for t in [-87.0, 87.0, -60.0] {
                a.push(b);
                y.push((t / l) as f32);
            }
        }
    }
    // Adam's bias correction β^t and a few everyday exponents.
    for t in 1..2000 {
        for beta in [0.9f32, 0.99, 0.999] {
            a.push(beta);
            y.push(t as f32);
        }
    }
    for &b in &lin_sweep(0.01, 10.0, 5000) {
        for e in [0.5f32, -0.5, 1.5, 2.0, 3.0, -1.0, 0.1, 7.3] {
            a.push(b);
            y.push(e);
        }
    }
    let s = pow_stats(&k, &a, &y);
    println!("pow: {s:?}, insts {}, compile {:?}", k.insts, k.compile);
    assert!(s.ulp <= 2.5, "{s:?}");
}

/// Negative bases, zeros, infinities and NaNs agree with `f32::powf` exactly (sign
/// included) or within 3 ulp for ordinary finite results.
#[test]
fn pow_special_values() {
    let k = jit(emit_pow);
    let vals = [
        0.0f32,
        -0.0,
        1.0,
        -1.0,
        0.5,
        -0.5,
        2.0,
        -2.0,
        3.0,
        -3.0,
        2.5,
        -2.5,
        1e-40,
        -1e-40,
        1e30,
        -1e30,
        1e-30,
        1e20,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        0.999,
        1.001,
        -7.0,
        17.0,
        -1e9,
        1e9,
    ];
    let (mut a, mut y) = (Vec::new(), Vec::new());
    for &p in &vals {
        for &q in &vals {
            a.push(p);
            y.push(q);
        }
    }
    let got = k.run(&a, &y);
    let mut s = Stats::default();
    for ((&p, &q), &g) in a.iter().zip(&y).zip(&got) {
        let want = p.powf(q);
        if (is_snan(p) || is_snan(q)) && g == 1.0 {
            continue;
        }
        if want.is_nan() || want == 0.0 || want.is_infinite() || want.abs() == 1.0 {
            let same = (want.is_nan() && g.is_nan()) || want.to_bits() == g.to_bits();
            assert!(same, "pow({p:e}, {q:e}) = {g:e}, expected {want:e}");
        } else {
            s.add(p, q, g, (p as f64).powf(q as f64));
        }
    }
    assert!(s.ulp <= 3.0, "{s:?}");
}

/// A signaling NaN: `powf` (glibc) returns NaN for `pow(sNaN, 0)` and `pow(1, sNaN)`
/// where quiet NaNs give 1; the JIT gives 1 for both kinds (documented).
fn is_snan(x: f32) -> bool {
    x.is_nan() && x.to_bits() & 0x0040_0000 == 0
}

/// The constant-exponent shortcuts agree with `powf` (ulp bound and special values).
#[test]
fn pow_const_exponents() {
    let mut xs = specials();
    xs.extend(lin_sweep(-10.0, 10.0, 4000));
    xs.extend(log_sweep(2000));
    for y in [0.0f32, 1.0, 2.0, 3.0, 4.0, -1.0, -2.0, 0.5, -0.5, 1.7, -3.0] {
        let k = jit(|b, x, _| emit_pow_const(b, x, y));
        let got = k.run1(&xs);
        let mut s = Stats::default();
        for (&x, &g) in xs.iter().zip(&got) {
            let want = x.powf(y);
            if is_snan(x) && g == 1.0 {
                continue;
            }
            if want.is_nan() || want == 0.0 || want.is_infinite() {
                let skip = y.abs() == 0.5 && x == f32::NEG_INFINITY; // documented: NaN
                let same = (want.is_nan() && g.is_nan()) || want.to_bits() == g.to_bits();
                assert!(skip || same, "pow({x:e}, {y}) = {g:e}, expected {want:e}");
            } else {
                s.add(x, y, g, (x as f64).powf(y as f64));
            }
        }
        println!("pow_const y = {y}: {:.3} ulp", s.ulp);
        assert!(s.ulp <= 2.0, "y = {y}: {s:?}");
    }
}

/// A long sweep over every 257th float (both signs), for the numbers in the module doc.
/// `cargo test --lib jit::vmath -- --ignored --nocapture`
#[test]
#[ignore]
fn exhaustive_sweep() {
    let xs: Vec<f32> = (0..=0xFF80_0000u32).step_by(257).map(f32::from_bits).collect();
    for f in functions() {
        let s = measure(f, &jit_fn(f), &xs);
        println!("{f:?}: {s:?}");
    }
}

/// Several calls in one function (shared constants, one block) give the same bits as
/// separate kernels.
#[test]
fn calls_compose() {
    let both = jit(|b, x, _| {
        let e = emit(b, UnaryOp::Softplus, x);
        let t = emit(b, UnaryOp::Erf, e);
        emit(b, UnaryOp::Log, t)
    });
    let xs = lin_sweep(-5.0, 5.0, 999);
    let (sp, er, lg) = (jit_fn(UnaryOp::Softplus), jit_fn(UnaryOp::Erf), jit_fn(UnaryOp::Log));
    let want = lg.run1(&er.run1(&sp.run1(&xs)));
    let got = both.run1(&xs);
    assert!(want.iter().zip(&got).all(|(w, g)| w.to_bits() == g.to_bits()));
}

/// Instruction counts stay where the module doc says (compile time is ~6 µs each).
#[test]
fn instruction_counts() {
    for f in functions() {
        let n = jit_fn(f).insts;
        assert!(n <= if f == UnaryOp::Softplus { 80 } else { 60 }, "{f:?}: {n}");
    }
    assert!(jit(emit_pow).insts <= 155);
    for (y, most) in [
        (0.0f32, 1),
        (1.0, 0),
        (2.0, 1),
        (3.0, 2),
        (4.0, 2),
        (-1.0, 2),
        (-2.0, 3),
        (0.5, 3),
        (-0.5, 5),
    ] {
        let n = jit(|b, x, _| emit_pow_const(b, x, y)).insts;
        assert!(n <= most, "pow_const {y}: {n}");
    }
}
