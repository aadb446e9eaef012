//! The elementwise rules of the generated code, in two modes: `Vec` (four lanes, `f32x4`)
//! and `Scalar` (`f32`, for loop tails and per-row values). Each rule matches
//! `graph::eval`'s definition, NaN cases included where the interpreter defines them:
//!
//! ```text
//! relu x    = x > 0 ? x : 0          (compare + mask: NaN → 0, as `if x > 0`)
//! step x    = x > 0 ? 1 : 0          sign x = 1, -1, 0 by x's sign, NaN stays NaN
//! max(a,b)  = a > b ? a : b, except b NaN → a (Rust's f32::max)   min likewise
//! gt/ge/eq  = 1 or 0 (ordered: NaN → 0)   select(c,a,b) = c ≠ 0 ? a : b (NaN c → a)
//! recip x   = 1 / x                  square x = x·x
//! ```
//! Transcendental functions (exp, log, log1p, tanh, sigmoid, softplus, erf, pow) are the
//! vectorized polynomial approximations of `vmath` (a scalar goes through lane 0 of a
//! vector); a value computed once per kernel (level Inv) instead calls the exact scalar
//! function the interpreter uses ([`Libm`]): one call per kernel run, never per element.

use cranelift::codegen::ir::ConstantData;
use cranelift::prelude::*;

use super::{Fx, Import};
use crate::graph::{BinaryOp, UnaryOp};
use crate::jit::fuse::RKind;

/// Four lanes or one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Vec,
    Scalar,
}

impl Mode {
    pub fn ty(self) -> Type {
        match self {
            Mode::Vec => types::F32X4,
            Mode::Scalar => types::F32,
        }
    }
}

/// Scalar functions with the interpreter's f32 semantics, called by generated code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Libm {
    Exp,
    Log,
    Log1p,
    Tanh,
    Sigmoid,
    Softplus,
    Erf,
    Pow,
}

extern "C" fn nnc_expf(x: f32) -> f32 {
    x.exp()
}
extern "C" fn nnc_logf(x: f32) -> f32 {
    x.ln()
}
extern "C" fn nnc_log1pf(x: f32) -> f32 {
    x.ln_1p()
}
extern "C" fn nnc_tanhf(x: f32) -> f32 {
    x.tanh()
}
extern "C" fn nnc_sigmoidf(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}
extern "C" fn nnc_softplusf(x: f32) -> f32 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}
extern "C" fn nnc_erff(x: f32) -> f32 {
    crate::graph::eval::erf(x as f64) as f32
}
extern "C" fn nnc_powf(x: f32, y: f32) -> f32 {
    x.powf(y)
}
/// Cranelift's libcall for `fma` on hosts without FMA.
pub extern "C" fn fmaf(a: f32, b: f32, c: f32) -> f32 {
    a.mul_add(b, c)
}

impl Libm {
    pub const ALL: [Libm; 8] = [
        Libm::Exp,
        Libm::Log,
        Libm::Log1p,
        Libm::Tanh,
        Libm::Sigmoid,
        Libm::Softplus,
        Libm::Erf,
        Libm::Pow,
    ];
    pub fn symbol(self) -> &'static str {
        match self {
            Libm::Exp => "nnc_expf",
            Libm::Log => "nnc_logf",
            Libm::Log1p => "nnc_log1pf",
            Libm::Tanh => "nnc_tanhf",
            Libm::Sigmoid => "nnc_sigmoidf",
            Libm::Softplus => "nnc_softplusf",
            Libm::Erf => "nnc_erff",
            Libm::Pow => "nnc_powf",
        }
    }
    pub fn arity(self) -> usize {
        if self == Libm::Pow {
            2
        } else {
            1
        }
    }
    pub fn address(self) -> *const u8 {
        type F1 = extern "C" fn(f32) -> f32;
        match self {
            Libm::Exp => nnc_expf as F1 as *const u8,
            Libm::Log => nnc_logf as F1 as *const u8,
            Libm::Log1p => nnc_log1pf as F1 as *const u8,
            Libm::Tanh => nnc_tanhf as F1 as *const u8,
            Libm::Sigmoid => nnc_sigmoidf as F1 as *const u8,
            Libm::Softplus => nnc_softplusf as F1 as *const u8,
            Libm::Erf => nnc_erff as F1 as *const u8,
            Libm::Pow => nnc_powf as extern "C" fn(f32, f32) -> f32 as *const u8,
        }
    }
    fn of(u: UnaryOp) -> Option<Libm> {
        Some(match u {
            UnaryOp::Exp => Libm::Exp,
            UnaryOp::Log => Libm::Log,
            UnaryOp::Log1p => Libm::Log1p,
            UnaryOp::Tanh => Libm::Tanh,
            UnaryOp::Sigmoid => Libm::Sigmoid,
            UnaryOp::Softplus => Libm::Softplus,
            UnaryOp::Erf => Libm::Erf,
            _ => return None,
        })
    }
}

/// True if `op` is computed by a vectorized math function.
pub fn is_math(op: UnaryOp) -> bool {
    Libm::of(op).is_some()
}

pub fn fconst(fx: &mut Fx, v: f32, mode: Mode) -> Value {
    let c = fx.b.ins().f32const(v);
    match mode {
        Mode::Vec => fx.b.ins().splat(types::F32X4, c),
        Mode::Scalar => c,
    }
}

pub fn splat(fx: &mut Fx, x: Value) -> Value {
    fx.b.ins().splat(types::F32X4, x)
}

/// `[0, 1, 2, 3]`.
pub fn lanes(fx: &mut Fx) -> Value {
    let bytes: Vec<u8> = [0f32, 1.0, 2.0, 3.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    let c = fx.b.func.dfg.constants.insert(ConstantData::from(bytes));
    fx.b.ins().vconst(types::F32X4, c)
}

/// A comparison as a lane mask usable with `bitselect`/`band` (Vec) or a flag (Scalar).
fn cmp(fx: &mut Fx, cc: FloatCC, x: Value, y: Value, mode: Mode) -> Value {
    let m = fx.b.ins().fcmp(cc, x, y);
    match mode {
        Mode::Vec => fx.b.ins().bitcast(types::F32X4, MemFlagsData::new(), m),
        Mode::Scalar => m,
    }
}

/// `c ? x : y` for a mask or flag from [`cmp`].
fn pick(fx: &mut Fx, c: Value, x: Value, y: Value, mode: Mode) -> Value {
    match mode {
        Mode::Vec => fx.b.ins().bitselect(c, x, y),
        Mode::Scalar => fx.b.ins().select(c, x, y),
    }
}

/// `c ? x : 0`.
fn keep(fx: &mut Fx, c: Value, x: Value, mode: Mode) -> Value {
    match mode {
        Mode::Vec => fx.b.ins().band(x, c),
        Mode::Scalar => {
            let z = fconst(fx, 0.0, mode);
            fx.b.ins().select(c, x, z)
        }
    }
}

/// A transcendental function: vectorized, or exact (`exact` and Scalar: one call).
fn math(fx: &mut Fx, f: Libm, args: &[Value], mode: Mode, exact: bool) -> Value {
    match mode {
        Mode::Scalar if exact => fx.call(Import::Libm(f), args).expect("libm returns"),
        Mode::Scalar => {
            let v: Vec<Value> = args.iter().map(|&a| splat(fx, a)).collect();
            let r = vmath(fx, f, &v);
            fx.b.ins().extractlane(r, 0)
        }
        Mode::Vec => vmath(fx, f, args),
    }
}

/// `f` on four lanes, by the vectorized approximations of `vmath`.
fn vmath(fx: &mut Fx, f: Libm, args: &[Value]) -> Value {
    use crate::jit::vmath::{self as vm, MathFn};
    let g = match f {
        Libm::Exp => MathFn::Exp,
        Libm::Log => MathFn::Log,
        Libm::Log1p => MathFn::Log1p,
        Libm::Tanh => MathFn::Tanh,
        Libm::Sigmoid => MathFn::Sigmoid,
        Libm::Softplus => MathFn::Softplus,
        Libm::Erf => MathFn::Erf,
        Libm::Pow => return vm::emit_pow(&mut fx.b, args[0], args[1]),
    };
    vm::emit(&mut fx.b, g, args[0])
}

/// `x^c` for a constant exponent (products or a square root for the common ones).
pub fn pow_const(fx: &mut Fx, x: Value, c: f32, mode: Mode) -> Value {
    match mode {
        Mode::Vec => crate::jit::vmath::emit_pow_const(&mut fx.b, x, c),
        Mode::Scalar => {
            let v = splat(fx, x);
            let r = crate::jit::vmath::emit_pow_const(&mut fx.b, v, c);
            fx.b.ins().extractlane(r, 0)
        }
    }
}

pub fn unary(fx: &mut Fx, op: UnaryOp, x: Value, mode: Mode, exact: bool) -> Value {
    if let Some(f) = Libm::of(op) {
        return math(fx, f, &[x], mode, exact);
    }
    let zero = || 0.0f32;
    match op {
        UnaryOp::Neg => fx.b.ins().fneg(x),
        UnaryOp::Sqrt => fx.b.ins().sqrt(x),
        UnaryOp::Recip => {
            let one = fconst(fx, 1.0, mode);
            fx.b.ins().fdiv(one, x)
        }
        UnaryOp::Abs => fx.b.ins().fabs(x),
        UnaryOp::Square => fx.b.ins().fmul(x, x),
        UnaryOp::Relu => {
            let z = fconst(fx, zero(), mode);
            let pos = cmp(fx, FloatCC::GreaterThan, x, z, mode);
            keep(fx, pos, x, mode)
        }
        UnaryOp::Step => {
            let (z, one) = (fconst(fx, 0.0, mode), fconst(fx, 1.0, mode));
            let pos = cmp(fx, FloatCC::GreaterThan, x, z, mode);
            keep(fx, pos, one, mode)
        }
        UnaryOp::Sign => {
            let (z, one, m1) =
                (fconst(fx, 0.0, mode), fconst(fx, 1.0, mode), fconst(fx, -1.0, mode));
            let pos = cmp(fx, FloatCC::GreaterThan, x, z, mode);
            let neg = cmp(fx, FloatCC::LessThan, x, z, mode);
            let nan = cmp(fx, FloatCC::Unordered, x, x, mode);
            let r = pick(fx, neg, m1, z, mode);
            let r = pick(fx, pos, one, r, mode);
            pick(fx, nan, x, r, mode)
        }
        _ => unreachable!("transcendental ops are handled above"),
    }
}

pub fn binary(fx: &mut Fx, op: BinaryOp, x: Value, y: Value, mode: Mode, exact: bool) -> Value {
    let flag = |fx: &mut Fx, cc| {
        let one = fconst(fx, 1.0, mode);
        let c = cmp(fx, cc, x, y, mode);
        keep(fx, c, one, mode)
    };
    match op {
        BinaryOp::Add => fx.b.ins().fadd(x, y),
        BinaryOp::Sub => fx.b.ins().fsub(x, y),
        BinaryOp::Mul => fx.b.ins().fmul(x, y),
        BinaryOp::Div => fx.b.ins().fdiv(x, y),
        BinaryOp::Max | BinaryOp::Min => {
            let cc = if op == BinaryOp::Max { FloatCC::GreaterThan } else { FloatCC::LessThan };
            let better = cmp(fx, cc, x, y, mode);
            let r = pick(fx, better, x, y, mode);
            let y_nan = cmp(fx, FloatCC::Unordered, y, y, mode);
            pick(fx, y_nan, x, r, mode)
        }
        BinaryOp::Pow => math(fx, Libm::Pow, &[x, y], mode, exact),
        BinaryOp::Gt => flag(fx, FloatCC::GreaterThan),
        BinaryOp::Ge => flag(fx, FloatCC::GreaterThanOrEqual),
        BinaryOp::Eq => flag(fx, FloatCC::Equal),
    }
}

/// `c ≠ 0 ? x : y`.
pub fn select(fx: &mut Fx, c: Value, x: Value, y: Value, mode: Mode) -> Value {
    let z = fconst(fx, 0.0, mode);
    let nz = cmp(fx, FloatCC::NotEqual, c, z, mode);
    pick(fx, nz, x, y, mode)
}

/// `x` in its first `r` lanes, `fill` in the others (a partial vector's contribution to a
/// reduction).
pub fn first_lanes(fx: &mut Fx, x: Value, r: u8, fill: f32) -> Value {
    let bytes: Vec<u8> =
        (0..4u8).flat_map(|l| (if l < r { -1i32 } else { 0 }).to_le_bytes()).collect();
    let c = fx.b.func.dfg.constants.insert(ConstantData::from(bytes));
    let mask = fx.b.ins().vconst(types::F32X4, c);
    let f = fconst(fx, fill, Mode::Vec);
    fx.b.ins().bitselect(mask, x, f)
}

/// The starting value of a reduction.
pub fn init(kind: RKind) -> f32 {
    match kind {
        RKind::Sum => 0.0,
        RKind::Max | RKind::MaxNum => f32::NEG_INFINITY,
        RKind::Min => f32::INFINITY,
    }
}

/// One step of a reduction: `acc ⊕ x`.
pub fn combine(fx: &mut Fx, kind: RKind, acc: Value, x: Value, mode: Mode) -> Value {
    match kind {
        RKind::Sum => fx.b.ins().fadd(acc, x),
        RKind::MaxNum => {
            let gt = cmp(fx, FloatCC::GreaterThan, x, acc, mode);
            pick(fx, gt, x, acc, mode)
        }
        RKind::Min => {
            let lt = cmp(fx, FloatCC::LessThan, x, acc, mode);
            pick(fx, lt, x, acc, mode)
        }
        RKind::Max => {
            // `if x > acc || x is NaN { x }`: NaN propagates.
            let gt = cmp(fx, FloatCC::GreaterThan, x, acc, mode);
            let nan = cmp(fx, FloatCC::Unordered, x, x, mode);
            let c = fx.b.ins().bor(gt, nan);
            pick(fx, c, x, acc, mode)
        }
    }
}

/// The four lanes of `v` combined, in lane order.
pub fn hreduce(fx: &mut Fx, kind: RKind, v: Value) -> Value {
    let mut acc = fx.b.ins().extractlane(v, 0);
    for lane in 1..4u8 {
        let x = fx.b.ins().extractlane(v, lane);
        acc = combine(fx, kind, acc, x, Mode::Scalar);
    }
    acc
}
