//! Dropout masks in generated code: the formulas of `graph::dropout` on `i32` (one element)
//! or `i32x4` (four consecutive flat indices), bit for bit the interpreter's.
//!
//! ```text
//! key  = mix(salt ^ mix(sat_u32(step)))        once per kernel run, kept as f32 bits
//! h    = mix(index·φ ^ key)                    index = flat index (+ lane), wrapping i32
//! mask = (h >>u 8) <s T ? scale : 0            h >> 8 < 2²⁴: the signed compare is exact
//! mix  = x ^= x>>16; x *= M1; x ^= x>>15; x *= M2; x ^= x>>16   (lowbias32)
//! ```
//! Every step is wrapping 32-bit arithmetic (`imul` on `i32x4` is `pmulld`), so lanes and the
//! scalar tail agree with `graph::dropout::hash` for every index.

use cranelift::codegen::ir::{ConstantData, MemFlagsData};
use cranelift::prelude::*;

use super::ops::{self, Mode};
use super::Fx;
use crate::graph::dropout::{MIX1, MIX2, PHI};

/// The integer type of a mode.
fn int_ty(mode: Mode) -> Type {
    match mode {
        Mode::Vec => types::I32X4,
        Mode::Scalar => types::I32,
    }
}

/// A 32-bit constant in every lane.
fn int_const(fx: &mut Fx, bits: u32, mode: Mode) -> Value {
    match mode {
        Mode::Scalar => fx.b.ins().iconst(types::I32, bits as i32 as i64),
        Mode::Vec => {
            let data = ConstantData::from(bits.to_le_bytes().repeat(4));
            let c = fx.b.func.dfg.constants.insert(data);
            fx.b.ins().vconst(types::I32X4, c)
        }
    }
}

/// lowbias32, lane-wise.
fn mix(fx: &mut Fx, x: Value, mode: Mode) -> Value {
    let mut x = x;
    for (shift, mul) in [(16, Some(MIX1)), (15, Some(MIX2)), (16, None)] {
        let s = fx.b.ins().ushr_imm_u(x, shift);
        x = fx.b.ins().bxor(x, s);
        if let Some(m) = mul {
            let m = int_const(fx, m, mode);
            x = fx.b.ins().imul(x, m);
        }
    }
    x
}

/// The key of a site at the step `step` (an f32 scalar), returned as f32 bits.
pub(super) fn key(fx: &mut Fx, salt: u32, step: Value) -> Value {
    let t = fx.b.ins().fcvt_to_uint_sat(types::I32, step);
    let t = mix(fx, t, Mode::Scalar);
    let s = int_const(fx, salt, Mode::Scalar);
    let k = fx.b.ins().bxor(t, s);
    let k = mix(fx, k, Mode::Scalar);
    fx.b.ins().bitcast(types::F32, MemFlagsData::new(), k)
}

/// The mask at flat index `index` (i64; lanes `index + 0..4` in Vec mode) from `key` (the
/// f32 bits of [`key`], splat in Vec mode): `scale` where kept, else 0.
pub(super) fn mask(
    fx: &mut Fx,
    key: Value,
    index: Value,
    (threshold, scale): (u32, u32),
    mode: Mode,
) -> Value {
    let ty = int_ty(mode);
    let key = fx.b.ins().bitcast(ty, MemFlagsData::new(), key);
    let i = fx.b.ins().ireduce(types::I32, index);
    let i = match mode {
        Mode::Scalar => i,
        Mode::Vec => {
            let s = fx.b.ins().splat(types::I32X4, i);
            let bytes: Vec<u8> = (0..4u32).flat_map(|l| l.to_le_bytes()).collect();
            let c = fx.b.func.dfg.constants.insert(ConstantData::from(bytes));
            let lanes = fx.b.ins().vconst(types::I32X4, c);
            fx.b.ins().iadd(s, lanes)
        }
    };
    let phi = int_const(fx, PHI, mode);
    let h = fx.b.ins().imul(i, phi);
    let h = fx.b.ins().bxor(h, key);
    let h = mix(fx, h, mode);
    let u = fx.b.ins().ushr_imm_u(h, 8);
    let t = int_const(fx, threshold, mode);
    let kept = fx.b.ins().icmp(IntCC::SignedLessThan, u, t);
    let on = ops::fconst(fx, f32::from_bits(scale), mode);
    match mode {
        Mode::Vec => {
            let m = fx.b.ins().bitcast(types::F32X4, MemFlagsData::new(), kept);
            fx.b.ins().band(on, m)
        }
        Mode::Scalar => {
            let off = ops::fconst(fx, 0.0, mode);
            fx.b.ins().select(kept, on, off)
        }
    }
}
