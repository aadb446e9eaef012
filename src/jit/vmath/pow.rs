//! `aʸ` for [`super::emit_pow`] and [`super::emit_pow_const`]: `e^(y·ln|a|)` with `ln|a|`
//! carried in two floats, and the IEEE `powf` special cases patched in with lane masks.

use super::{exp_core, log_special, reduce, EXP_HI, EXP_LO, LG, SIGN, V};
use cranelift::codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift::prelude::{InstBuilder, Value};

/// `ln 2` to 16 bits (so `k·LN2_HI16` is exact for |k| < 256) and the rest.
const LN2_HI16: f32 = 0.693_145_75;
const LN2_LO16: f32 = 1.428_606_8e-6;
/// `|y·ln a|` beyond which the low part of the product is dropped (result is 0 or ∞).
const PH_LIMIT: f32 = 128.0;

/// `aʸ` for a compile-time `y`; see [`super::emit_pow_const`].
pub(super) fn pow_const(v: &mut V, a: Value, y: f32) -> Value {
    let sq = |v: &mut V, a| v.b.ins().fmul(a, a);
    if y == 0.0 {
        v.f(1.0)
    } else if y == 1.0 {
        a
    } else if y == 2.0 {
        sq(v, a)
    } else if y == 3.0 {
        let s = sq(v, a);
        v.b.ins().fmul(s, a)
    } else if y == 4.0 {
        let s = sq(v, a);
        sq(v, s)
    } else if y == -1.0 {
        let one = v.f(1.0);
        v.b.ins().fdiv(one, a)
    } else if y == -2.0 {
        // (1/a)² rather than 1/a²: a² may overflow or underflow when the result does not.
        let one = v.f(1.0);
        let r = v.b.ins().fdiv(one, a);
        sq(v, r)
    } else if y.abs() == 0.5 {
        // `+ 0` turns −0 into +0: pow(−0, ½) = +0, pow(−0, −½) = +∞.
        let zero = v.f(0.0);
        let a0 = v.b.ins().fadd(a, zero);
        let r = v.b.ins().sqrt(a0);
        if y > 0.0 {
            r
        } else {
            let one = v.f(1.0);
            v.b.ins().fdiv(one, r)
        }
    } else {
        let yv = v.f(y);
        pow(v, a, yv)
    }
}

/// `aʸ`; see [`super::emit_pow`].
pub(super) fn pow(v: &mut V, a: Value, y: Value) -> Value {
    let xa = v.b.ins().fabs(a);
    let (hi, lo, i) = log_hi_lo(v, xa);
    // y·(hi + lo) = ph + pl exactly up to y·lo's rounding.
    let ph = v.b.ins().fmul(y, hi);
    let nph = v.b.ins().fneg(ph);
    let pe = v.b.ins().fma(y, hi, nph);
    let pl = v.b.ins().fma(y, lo, pe);
    // Beyond the clamps pl is meaningless (huge, or ∞ − ∞): drop it there.
    let aph = v.b.ins().fabs(ph);
    let lim = v.f(PH_LIMIT);
    let finite = v.b.ins().fcmp(FloatCC::LessThan, aph, lim);
    let finite = v.float(finite);
    let pl = v.b.ins().band(pl, finite);
    let ph = v.min(ph, EXP_HI);
    let ph = v.max(ph, EXP_LO);
    let main = exp_core(v, ph, Some(pl), true);
    let res = pow_specials(v, xa, y, i, main);
    pow_negative_base(v, a, y, res)
}

/// `ln x = hi + lo` for `x ≥ 0` with ~2⁻³⁰ relative accuracy (`|lo| ≤ ulp(hi)/2`), and
/// the (rescaled) bits of x for the special-lane test.
///
/// ```text
/// x = 2ᵏ·(1+f), s = f/(2+f) = sh + sl     sl from the exact remainders of 2+f and f/(2+f)
/// ln(1+f) = 2s + s·z·LG(z), z = s²        2sh exact; the rest is ≤ 1% of the result
/// ln x = k·LN2_HI16 (exact) + 2sh + [sl·(2 + 3z·LG) + sh·z·LG + k·LN2_LO16]   Fast2Sum
/// ```
fn log_hi_lo(v: &mut V, x: Value) -> (Value, Value, Value) {
    let (f, dk, i) = reduce(v, x);
    // d = 2 + f rounded, dd = (2 + f) − d exactly (Fast2Sum, |f| < 2).
    let two = v.f(2.0);
    let d = v.b.ins().fadd(f, two);
    let two_m_d = v.b.ins().fsub(two, d);
    let dd = v.b.ins().fadd(two_m_d, f);
    // s = f/d rounded; sl = (f − s·d − s·dd)/d.
    let s = v.b.ins().fdiv(f, d);
    let ns = v.b.ins().fneg(s);
    let rem = v.b.ins().fma(ns, d, f);
    let rem = v.b.ins().fma(ns, dd, rem);
    let sl = v.b.ins().fdiv(rem, d);
    let z = v.b.ins().fmul(s, s);
    let poly = v.horner(&LG, z);
    // tail(s) = s³·LG(s²); tail(sh + sl) ≈ tail(sh) + 3·sl·z·LG: lo = sl·(2 + 3·z·LG) + tail.
    let zp = v.b.ins().fmul(z, poly);
    let tail = v.b.ins().fmul(s, zp);
    let (three, two) = (v.f(3.0), v.f(2.0));
    let k = v.b.ins().fma(zp, three, two);
    let lo = v.b.ins().fma(sl, k, tail);
    let hi = v.b.ins().fadd(s, s);
    // k·LN2_HI16 + hi = top + e2 (Fast2Sum: |k·ln2| ≥ 0.69 > |hi| unless k = 0).
    let l2h = v.f(LN2_HI16);
    let ka = v.b.ins().fmul(dk, l2h);
    let top = v.b.ins().fadd(ka, hi);
    let moved = v.b.ins().fsub(top, ka);
    let e2 = v.b.ins().fsub(hi, moved);
    let lo = v.b.ins().fadd(lo, e2);
    let l2l = v.f(LN2_LO16);
    let lo = v.b.ins().fma(dk, l2l, lo);
    // Renormalize so that |lo| ≤ ulp(hi)/2: y·lo then stays below ulp(y·hi).
    let sum = v.b.ins().fadd(top, lo);
    let moved = v.b.ins().fsub(sum, top);
    let lo = v.b.ins().fsub(lo, moved);
    (sum, lo, i)
}

/// Lanes where `|a|` is 0, ∞ or NaN get `max(y·ln|a|, 0)` (0, ∞ or NaN); lanes with
/// `y = 0` or `|a| = 1` get 1.
fn pow_specials(v: &mut V, xa: Value, y: Value, i: Value, main: Value) -> Value {
    let m1 = v.i(-1);
    let im = v.b.ins().iadd(i, m1);
    let lim = v.i(0x7F7F_FFFF);
    let odd_a = v.b.ins().icmp(IntCC::UnsignedGreaterThanOrEqual, im, lim);
    let l = log_special(v, xa);
    let w = v.b.ins().fmul(y, l);
    let w = v.max(w, 0.0);
    let res = v.select(odd_a, w, main);
    let (zero, one) = (v.f(0.0), v.f(1.0));
    let y0 = v.b.ins().fcmp(FloatCC::Equal, y, zero);
    let a1 = v.b.ins().fcmp(FloatCC::Equal, xa, one);
    let unit = v.b.ins().bor(y0, a1);
    v.select(unit, one, res)
}

/// Negative `a`: odd integer `y` flips the sign, non-integer `y` (finite `a`) gives NaN.
fn pow_negative_base(v: &mut V, a: Value, y: Value, res: Value) -> Value {
    let ry = v.b.ins().nearest(y);
    let is_int = v.b.ins().fcmp(FloatCC::Equal, ry, y);
    let half = v.f(0.5);
    let hy = v.b.ins().fmul(y, half);
    let rhy = v.b.ins().nearest(hy);
    let frac = v.b.ins().fcmp(FloatCC::NotEqual, rhy, hy);
    let odd = v.b.ins().band(is_int, frac);
    let oddf = v.float(odd);
    let sign = v.f(SIGN);
    let asign = v.b.ins().band(a, sign);
    let flip = v.b.ins().band(asign, oddf);
    let res = v.b.ins().bxor(res, flip);
    let zero = v.f(0.0);
    let neg = v.b.ins().fcmp(FloatCC::LessThan, a, zero);
    let ninf = v.f(f32::NEG_INFINITY);
    let fin = v.b.ins().fcmp(FloatCC::GreaterThan, a, ninf);
    let neg = v.b.ins().band(neg, fin);
    let bad = v.b.ins().band_not(neg, is_int);
    let nan = v.f(f32::NAN);
    v.select(bad, nan, res)
}
