//! The elementwise rules of the generated code, in two modes: `Vec` (four lanes, `f32x4`)
//! and `Scalar` (`f32`, for loop tails and per-row values). Each rule matches
//! `graph::eval`'s definition, NaN cases included where the interpreter defines them:
//!
//! ```text
//! relu x    = x > 0 or NaN ? x : 0   (compare + mask: NaN stays NaN)
//! step x    = x > 0 ? 1 : 0          sign x = 1, -1, 0 by x's sign, NaN stays NaN
//! max(a,b)  = a > b ? a : b, then a if a is NaN (b NaN: b already): NaN wins   min likewise
//! gt/ge/eq  = 1 or 0 (ordered: NaN → 0)   select(c,a,b) = c ≠ 0 ? a : b (NaN c → a)
//! recip x   = 1 / x                  square x = x·x
//! ```
//! Transcendental functions (exp, log, log1p, tanh, sigmoid, softplus, erf, pow) are the
//! vectorized polynomial approximations of `vmath` (a scalar goes through lane 0 of a
//! vector); a value computed once per kernel (level Inv) instead calls the ops' one scalar
//! definition (`graph::scalar`, through [`exact_functions`]): one call per kernel run, never per
//! element.

use cranelift::codegen::ir::ConstantData;
use cranelift::prelude::*;

use super::{Fx, Import, Local};
use strum::VariantArray;

use crate::graph::{BinaryOp, UnaryOp};
use crate::jit::fuse::RKind;

/// Four lanes or one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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

/// `op(x)` in f32 by the ops' one scalar definition (`graph::scalar`): what generated code
/// calls for a transcendental value computed once per kernel. `op` indexes
/// `UnaryOp::VARIANTS` (NaN for an index out of range, which codegen never passes).
extern "C" fn nnc_unary(op: u32, x: f32) -> f32 {
    UnaryOp::VARIANTS.get(op as usize).map_or(f32::NAN, |u| u.apply(x))
}
/// `op(a, b)` in f32, as [`nnc_unary`] (for `pow`).
extern "C" fn nnc_binary(op: u32, a: f32, b: f32) -> f32 {
    BinaryOp::VARIANTS.get(op as usize).map_or(f32::NAN, |o| o.apply(a, b))
}
/// Cranelift's libcall for `fma` on hosts without FMA.
pub extern "C" fn fmaf(a: f32, b: f32, c: f32) -> f32 {
    a.mul_add(b, c)
}

/// The exact scalar functions generated code may call: import, symbol, address, and the
/// number of float operands (after the op's index).
pub fn exact_functions() -> [(Import, &'static str, *const u8, usize); 2] {
    type Unary = extern "C" fn(u32, f32) -> f32;
    type Binary = extern "C" fn(u32, f32, f32) -> f32;
    [
        (Import::Unary, "nnc_unary", nnc_unary as Unary as *const u8, 1),
        (Import::Binary, "nnc_binary", nnc_binary as Binary as *const u8, 2),
    ]
}

/// The index generated code passes to [`nnc_unary`] / [`nnc_binary`] for an op.
fn index<T: PartialEq>(all: &[T], op: T) -> i64 {
    all.iter().position(|o| *o == op).expect("VARIANTS lists every op") as i64
}

pub fn fconst(fx: &mut Fx, v: f32, mode: Mode) -> Value {
    fx.local(Local::Const(v.to_bits(), mode), |fx| {
        let c = fx.b.ins().f32const(v);
        match mode {
            Mode::Vec => fx.b.ins().splat(types::F32X4, c),
            Mode::Scalar => c,
        }
    })
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

/// A transcendental function (`Err` is pow): vectorized, or exact (`exact` and Scalar: one
/// call of the ops' scalar definition).
fn math(
    fx: &mut Fx,
    f: Result<UnaryOp, BinaryOp>,
    args: &[Value],
    mode: Mode,
    exact: bool,
) -> Value {
    match mode {
        Mode::Scalar if exact => {
            let (import, op) = match f {
                Ok(u) => (Import::Unary, index(UnaryOp::VARIANTS, u)),
                Err(b) => (Import::Binary, index(BinaryOp::VARIANTS, b)),
            };
            let op = fx.b.ins().iconst(types::I32, op);
            let mut all = vec![op];
            all.extend_from_slice(args);
            fx.call(import, &all).expect("the exact functions return a value")
        }
        Mode::Scalar => {
            let v: Vec<Value> = args.iter().map(|&a| splat(fx, a)).collect();
            let r = vmath(fx, f, &v);
            fx.b.ins().extractlane(r, 0)
        }
        Mode::Vec => vmath(fx, f, args),
    }
}

/// `f` on four lanes, by the vectorized approximations of `vmath`.
fn vmath(fx: &mut Fx, f: Result<UnaryOp, BinaryOp>, args: &[Value]) -> Value {
    match f {
        Ok(u) => crate::jit::vmath::emit(&mut fx.b, u, args[0]),
        Err(_) => crate::jit::vmath::emit_pow(&mut fx.b, args[0], args[1]),
    }
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
    let zero = || 0.0f32;
    match op {
        UnaryOp::Exp
        | UnaryOp::Log
        | UnaryOp::Log1p
        | UnaryOp::Tanh
        | UnaryOp::Sigmoid
        | UnaryOp::Softplus
        | UnaryOp::Erf => math(fx, Ok(op), &[x], mode, exact),
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
            let pos = cmp(fx, FloatCC::UnorderedOrGreaterThan, x, z, mode);
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
            let x_nan = cmp(fx, FloatCC::Unordered, x, x, mode);
            pick(fx, x_nan, x, r, mode)
        }
        BinaryOp::Pow => math(fx, Err(op), &[x, y], mode, exact),
        BinaryOp::Gt => flag(fx, FloatCC::GreaterThan),
        BinaryOp::Ge => flag(fx, FloatCC::GreaterThanOrEqual),
        BinaryOp::Eq => flag(fx, FloatCC::Equal),
    }
}

/// `c ≠ 0 ? x : y`.
pub fn select(fx: &mut Fx, c: Value, x: Value, y: Value, mode: Mode) -> Value {
    let nz = fx.local(Local::NonZero(c, mode), |fx| {
        let z = fconst(fx, 0.0, mode);
        cmp(fx, FloatCC::NotEqual, c, z, mode)
    });
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
