//! Vectorized single-precision math for the JIT: Cranelift IR emitters that compute
//! `exp, ln, ln(1+x), tanh, sigmoid, softplus, erf` and `aᵇ` on `f32x4` values, branch-free.
//!
//! Owns: the algorithms and their constants (`pow` in `vmath/pow.rs`). Every emitter appends
//! straight-line CLIF to the builder's current block (no blocks, calls or memory) using only
//! FMA, float and integer SIMD arithmetic, bit casts, compares and `bitselect`, so it can sit
//! anywhere in a kernel body. The ISA should have FMA (`cranelift_native` detects it on our
//! x86-64 hosts); without it the code still runs, Cranelift lowering each `fma` to a call of
//! the registered `fmaf`, only slower. Scalars (loop
//! tails): splat the scalar into an `f32x4`, emit, `extractlane 0`; lanes are computed
//! independently, so nothing else is needed.
//!
//! Accuracy is measured by `vmath/tests.rs` against `f64` references (std's `exp, ln,
//! ln_1p, tanh`; `1/(1+e⁻ˣ)`; `max(x,0) + ln_1p(e^−|x|)`; [`crate::graph::eval::erf`];
//! `powf`): the maximum error in ulps of the `f32` result (correct rounding has 0.5;
//! subnormal results count in subnormal ulps) and the maximum relative error over normal
//! results. Inputs: every 257th float of both signs (16.7 M; the ignored test
//! `exhaustive_sweep`), dense sweeps of each working range, specials, subnormals, NaN
//! payloads; for pow, bases over the whole range with `|y·ln a|` up to 105, Adam's `βᵗ`.
//! `insts`: CLIF instructions one call adds, vector constants included (the optimizer
//! merges identical constants across calls). `compile`: Cranelift time for a function
//! holding one call, minus an empty function's 69 µs (≈ 6-7 µs per instruction here).
//!
//! ```text
//! fn        ulp   rel     insts compile method
//! exp       0.85  7.4e-8  43    250 µs  2ⁿ·p(r), r = x − n·ln2 (Cody-Waite, FMA), p degree 6
//! log       0.80  8.0e-8  54    360 µs  x = 2ᵏ(1+f), 1+f ∈ [√½,√2), s = f/(2+f), fdlibm:
//!                                       ln(1+f) = f − f²/2 + s(f²/2 + R(s²)), R: 4 terms
//! log1p     0.82  8.1e-8  49    340 µs  u = 1+x: ln u + (x − (u−1))/u, same kernel
//! tanh      4.58  2.7e-7  30    430 µs  x·P(x²)/Q(x²), 7/4 terms, |x| clamped to 9.02
//!                                       (was 1 − 2q/(1+q), q = e^−2|x|, and a polynomial
//!                                       near 0: 1.41 ulp but 56 insts, twice the time)
//! sigmoid   2.33  1.7e-7  47    310 µs  (x ≥ 0 ? 1 : q)/(1+q), q = e^−|x|
//! softplus  1.54  1.2e-7  76    510 µs  max(x,0) + ln(1+q), q = e^−|x|, 1+q split exactly
//! erf       1.01  7.9e-8  57    370 µs  |x| < 0.92: x + xP(x²), 6 terms; else 1 − N(t)/D(t)
//!                                       (6/6 rational erfc), t = (|x| − 0.915)/3.085
//! pow       1.94  1.6e-7  149   1.0 ms  e^(y·ln|a|), ln|a| as hi + lo (see emit_pow)
//! ```
//!
//! Nothing here is correctly rounded, so results can differ from the interpreter's
//! (`f32::exp` etc.) by a few ulps; the relative error stays below 2e-7 everywhere.
//!
//! Special values (as `f32::{exp, ln, ...}` except where noted):
//! - exp: `+∞` for `x > 88.72`, correct subnormal results (two-step scaling
//!   `p·2^⌊n/2⌋·2^⌈n/2⌉`), `0` below `−103.97`, `e^±∞ = ∞, 0`.
//! - log: `ln ±0 = −∞`, `ln(x < 0) = NaN`, `ln ∞ = ∞`; subnormal inputs are rescaled by
//!   2²³, so they are as accurate as normal ones.
//! - log1p: `log1p(−1) = −∞`, `x < −1 → NaN`, tiny x gives x exactly; `log1p(−0) = +0`
//!   (std: −0).
//! - tanh: odd, exactly `±1` for `|x| ≥ 9.02` (the clamp) and at `±∞`, `tanh(−0) = −0`.
//! - sigmoid: exactly `1` for `x ≥ 16.7`, subnormal results down to `x ≈ −103.3`, then
//!   `0`; `σ(±∞) = 1, 0`; never overflows.
//! - softplus: `= x` exactly for `x ≥ 16.7`, `= eˣ` (subnormal) for very negative x,
//!   `(+∞) = ∞`, `(−∞) = 0`.
//! - erf: odd, exactly `±1` for `|x| ≥ 3.919206` (where erf rounds to 1) and at `±∞`.
//! - NaN inputs (quiet or signaling, any payload) give NaN everywhere (payload unspecified).
//!
//! Constants were fitted offline by a weighted minimax (Lawson) iteration in `f64` and
//! rounded to `f32` one coefficient at a time, refitting the rest; the evaluation order
//! here (Horner with FMA) is the one the fit was checked with.

use cranelift::codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift::codegen::ir::types::{F32X4, I32X4};
use cranelift::codegen::ir::{ConstantData, MemFlagsData};
use cranelift::prelude::{FunctionBuilder, InstBuilder, Value};
use strum::VariantArray;

use crate::graph::UnaryOp;

/// Emits `f(x)` for an `f32x4` value `x`, returning an `f32x4`. `f` is one of the
/// transcendental functions ([`UnaryOp::is_transcendental`]); the others are a few exact
/// instructions that `jit::codegen::ops` emits itself.
pub fn emit(b: &mut FunctionBuilder, f: UnaryOp, x: Value) -> Value {
    let mut v = V::new(b);
    match f {
        UnaryOp::Exp => exp(&mut v, x),
        UnaryOp::Log => log(&mut v, x),
        UnaryOp::Log1p => log1p(&mut v, x),
        UnaryOp::Tanh => tanh(&mut v, x),
        UnaryOp::Sigmoid => sigmoid(&mut v, x),
        UnaryOp::Softplus => softplus(&mut v, x),
        UnaryOp::Erf => erf(&mut v, x),
        UnaryOp::Neg
        | UnaryOp::Sqrt
        | UnaryOp::Recip
        | UnaryOp::Abs
        | UnaryOp::Sign
        | UnaryOp::Square
        | UnaryOp::Relu
        | UnaryOp::Step => panic!("{f:?} is not transcendental: jit::codegen::ops emits it"),
    }
}

/// The functions [`emit`] computes, in declaration order.
pub fn functions() -> impl Iterator<Item = UnaryOp> {
    UnaryOp::VARIANTS.iter().copied().filter(|f| f.is_transcendental())
}

/// Emits `aᵇ` lane-wise for `f32x4` values, with the full IEEE `powf` semantics:
///
/// ```text
/// a > 0 finite          e^(b·ln a), ln a carried as an unevaluated f32 sum hi + lo (~2⁻³⁰
///                       relative) and b·(hi + lo) split exactly by FMA: 1.94 ulp measured,
///                       including |b·ln a| up to 88 and subnormal results
/// a < 0, b integer      (−1)ᵇ·|a|ᵇ          a < 0 finite, b not an integer: NaN
/// a = ±0                +0 / +∞ for b > 0 / b < 0 (−0 / −∞ when b is an odd integer)
/// a = ±∞                like 1/±0 above, mirrored
/// b = ±0 or a = 1       1 (even for NaN in the other operand; glibc's powf gives NaN
///                       for a signaling NaN there); (−1)^±∞ = 1
/// otherwise NaN in → NaN out
/// ```
///
/// About 150 CLIF instructions: prefer [`emit_pow_const`] when `b` is a known constant.
pub fn emit_pow(b: &mut FunctionBuilder, a: Value, y: Value) -> Value {
    pow::pow(&mut V::new(b), a, y)
}

/// Emits `aʸ` for a compile-time exponent, by products, one division or a square root
/// (0-5 instructions) where that is exact enough, else [`emit_pow`] with `y` splatted:
///
/// ```text
/// y      0    1    2    3      4        −1   −2       ½    −½
/// code   1    a    a·a  a·a·a  (a·a)²   1/a  (1/a)²   √a   1/√a
/// ulp    0    0    0.5  1.15   1.79     0.5  1.75     0.5  1.40   (measured)
/// ```
/// Special values as `powf`, except `(−∞)^±½ = NaN` (powf: +∞, +0).
pub fn emit_pow_const(b: &mut FunctionBuilder, a: Value, y: f32) -> Value {
    pow::pow_const(&mut V::new(b), a, y)
}

// ---------------------------------------------------------------------------------------
// Constants. Polynomials are listed constant term first and evaluated by Horner with FMA.

/// `e^r ≈ Σ EXP_P[k]·r^k` on `|r| ≤ ln2/2`: relative error 3.2e-9.
const EXP_P: [f32; 7] = [1.0, 1.0, 0.49999994, 0.16666521, 0.041668266, 0.008368687, 0.0013821048];
const LOG2E: f32 = std::f32::consts::LOG2_E;
/// `1.5·2²³`: adding it rounds to an integer that sits in the low mantissa bits.
const ROUND_MAGIC: f32 = 12582912.0;
/// `ln 2 = LN2_HI + LN2_LO` (`LN2_HI` is `ln 2` rounded to f32).
const LN2_HI: f32 = std::f32::consts::LN_2;
const LN2_LO: f32 = -1.904_654_3e-9;
/// `exp` input clamps: `e^89 = ∞` in f32; `e^−104` rounds to 0.
const EXP_HI: f32 = 89.0;
const EXP_LO: f32 = -104.0;

/// `(ln((1+s)/(1−s)) − 2s)/s ≈ Σ LG[k]·z^(k+1)`, `z = s²`, `|s| ≤ 0.2`: error 2.6e-11.
const LG: [f32; 4] = [0.6666666, 0.40000933, 0.28503516, 0.24151592];
/// Bits of `√½`: the mantissa split puts `1 + f` in `[√½, √2)`.
const SQRT_HALF_BITS: i32 = 0x3F35_04F3;
/// Smallest normal f32 and the factor that makes subnormals normal.
const MIN_NORMAL: f32 = f32::MIN_POSITIVE;
const TWO_23: f32 = 8388608.0;

/// `tanh x ≈ x·Σ TANH_NUM[k]·z^k / Σ TANH_DEN[k]·z^k`, `z = x²`, on `|x| ≤ TANH_CLAMP`:
/// a (13, 6) rational fit of the relative error (6.8e-9 in exact arithmetic; the roundings
/// of its f32 evaluation make the 4.6 ulp measured).
const TANH_NUM: [f32; 7] =
    [1.0, 0.13083154, 0.0031029978, 1.1144215e-5, -2.0183775e-8, 5.257672e-11, -8.4357394e-14];
const TANH_DEN: [f32; 4] = [1.0, 0.4641648, 0.024491368, 0.00025447458];
const TANH_CLAMP: f32 = 9.02;

/// `erf x ≈ x + x·Σ ERF_P[k]·z^k`, `z = x²`, `|x| < ERF_SMALL`: relative error 1.5e-8.
const ERF_P: [f32; 6] =
    [0.12837915, -0.376125, 0.11281877, -0.02676858, 0.004995853, -0.0006003794];
const ERF_SMALL: f32 = 0.92;
/// `erfc x ≈ N(t)/D(t)`, `t = x·ERF_T_SCALE + ERF_T_SHIFT = (x − 0.915)/3.085`, on
/// `[0.915, 4]`: absolute error 2.6e-8 (rounded coefficients).
const ERFC_N: [f32; 7] =
    [0.19566353, -1.23715, 3.3025076, -4.759548, 3.901604, -1.7228453, 0.31977054];
const ERFC_D: [f32; 7] = [1.0, 1.3790402, 5.7604303, 6.495922, 13.851103, 9.716647, 21.71132];
const ERF_T_SCALE: f32 = 0.3241491;
const ERF_T_SHIFT: f32 = -0.29659644;
/// `erfc x < 2⁻²⁵` from here on: `erf x` rounds to 1.
const ERF_ONE: f32 = 3.919206;

const SIGN: f32 = -0.0;

// ---------------------------------------------------------------------------------------
// The functions.

/// `eˣ` with both clamps and subnormal results.
fn exp(v: &mut V, x: Value) -> Value {
    let x = v.min(x, EXP_HI);
    let x = v.max(x, EXP_LO);
    exp_core(v, x, None, true)
}

/// `e^x` for `x` already clamped to `[EXP_LO, EXP_HI]` (or to `[−86.5, ..]` when
/// `subnormal` is false). `r_lo` is an extra low-order part of the argument (pow).
///
/// ```text
/// n = round(x·log2 e)            k = x·log2e + 1.5·2²³ (n in its low bits)
/// r = x − n·ln2 (+ r_lo)         exact FMA steps, |r| ≤ ln2/2
/// eˣ = 2ⁿ·p(r)                   2ⁿ as floats built from exponent bits:
///   subnormal: (p·2^⌊n/2⌋)·2^⌈n/2⌉, exact then one rounding (n ∈ [−150, 128])
///   else:      p·2ⁿ (needs n ≥ −126)
/// ```
fn exp_core(v: &mut V, x: Value, r_lo: Option<Value>, subnormal: bool) -> Value {
    let (log2e, magic) = (v.f(LOG2E), v.f(ROUND_MAGIC));
    let k = v.b.ins().fma(x, log2e, magic);
    let n = v.b.ins().fsub(k, magic);
    let (nhi, nlo) = (v.f(-LN2_HI), v.f(-LN2_LO));
    let r = v.b.ins().fma(n, nhi, x);
    let mut r = v.b.ins().fma(n, nlo, r);
    if let Some(lo) = r_lo {
        r = v.b.ins().fadd(r, lo);
    }
    let p = v.horner(&EXP_P, r);
    // Scale factors are built as floats (not added into p's exponent) so that a NaN p, whose
    // k holds garbage in the n bits, stays NaN.
    let ki = v.int(k);
    let one_bits = v.i(1.0f32.to_bits() as i32);
    let n23 = v.b.ins().ishl_imm_u(ki, 23);
    if subnormal {
        // (n>>1)<<23 = (k<<22) & 0xFF800000: only n's bits survive the shift.
        let top9 = v.i(0xFF80_0000_u32 as i32);
        let t = v.b.ins().ishl_imm_u(ki, 22);
        let a23 = v.b.ins().band(t, top9);
        let b23 = v.b.ins().isub(n23, a23);
        let s1 = v.b.ins().iadd(a23, one_bits);
        let s2 = v.b.ins().iadd(b23, one_bits);
        let (s1, s2) = (v.float(s1), v.float(s2));
        let ps = v.b.ins().fmul(p, s1);
        v.b.ins().fmul(ps, s2)
    } else {
        let s = v.b.ins().iadd(n23, one_bits);
        let s = v.float(s);
        v.b.ins().fmul(p, s)
    }
}

/// `dk·ln2 + ln(1+f)` for `f ∈ [√½−1, 0.5]` (fdlibm's `__log1pf` kernel) plus `extra`,
/// a small correction added before the last roundings.
///
/// ```text
/// s = f/(2+f), z = s², R = z·LG(z)       ln(1+f) = 2s + s·R
/// h = f²/2                               ln(1+f) = f − h + s·(h + R)   (no cancellation)
/// ```
fn log_core(v: &mut V, f: Value, dk: Value, extra: Option<Value>) -> Value {
    let two = v.f(2.0);
    let d = v.b.ins().fadd(f, two);
    let s = v.b.ins().fdiv(f, d);
    let z = v.b.ins().fmul(s, s);
    let poly = v.horner(&LG, z);
    let r = v.b.ins().fmul(poly, z);
    let half = v.f(0.5);
    let hf = v.b.ins().fmul(f, half);
    let h = v.b.ins().fmul(hf, f);
    let t = v.b.ins().fadd(h, r);
    let ln2lo = v.f(LN2_LO);
    let lo = match extra {
        Some(e) => v.b.ins().fma(dk, ln2lo, e),
        None => v.b.ins().fmul(dk, ln2lo),
    };
    let acc = v.b.ins().fma(s, t, lo);
    let acc = v.b.ins().fsub(acc, h);
    let acc = v.b.ins().fadd(acc, f);
    let ln2hi = v.f(LN2_HI);
    v.b.ins().fma(dk, ln2hi, acc)
}

/// Splits the bits `i` of a positive normal float into `x = 2^e·(1+f)`, `1+f ∈ [√½, √2)`:
/// returns `(f, e)` with `f` exact and `e` as `i32x4`.
fn split(v: &mut V, i: Value) -> (Value, Value) {
    let c = v.i(SQRT_HALF_BITS);
    let t = v.b.ins().isub(i, c);
    let e = v.b.ins().sshr_imm_u(t, 23);
    let e23 = v.b.ins().ishl_imm_u(e, 23);
    let mi = v.b.ins().isub(i, e23);
    let m = v.float(mi);
    let one = v.f(1.0);
    let f = v.b.ins().fsub(m, one);
    (f, e)
}

/// `ln x` for every input: subnormals rescaled, specials patched in at the end.
fn log(v: &mut V, x: Value) -> Value {
    let (f, dk, i) = reduce(v, x);
    let l = log_core(v, f, dk, None);
    let special = not_positive_normal(v, i);
    let g = log_special(v, x);
    v.select(special, g, l)
}

/// `x = 2^dk·(1+f)` for positive x, subnormals included (rescaled by 2²³ first): returns
/// `f`, `dk` as a float and the bits of the rescaled x (for [`not_positive_normal`]).
fn reduce(v: &mut V, x: Value) -> (Value, Value, Value) {
    let (tiny, xs) = rescale_subnormal(v, x);
    let i = v.int(xs);
    let (f, e) = split(v, i);
    let c23 = v.i(23);
    let adj = v.b.ins().band(tiny, c23);
    let e = v.b.ins().isub(e, adj);
    let dk = v.b.ins().fcvt_from_sint(F32X4, e);
    (f, dk, i)
}

/// `(x < MIN_NORMAL, x < MIN_NORMAL ? x·2²³ : x)`, the mask as `i32x4`.
fn rescale_subnormal(v: &mut V, x: Value) -> (Value, Value) {
    let min = v.f(MIN_NORMAL);
    let tiny = v.b.ins().fcmp(FloatCC::LessThan, x, min);
    let big = v.f(TWO_23);
    let scaled = v.b.ins().fmul(x, big);
    (tiny, v.select(tiny, scaled, x))
}

/// Mask of lanes whose bits `i` are not a positive normal finite float
/// (`(i − 0x00800000) ≥ 0x7F000000` unsigned: zero, negative, ∞, NaN).
fn not_positive_normal(v: &mut V, i: Value) -> Value {
    let lo = v.i(0x0080_0000);
    let span = v.i(0x7F00_0000);
    let t = v.b.ins().isub(i, lo);
    v.b.ins().icmp(IntCC::UnsignedGreaterThanOrEqual, t, span)
}

/// `√x − 1/x²`: the value of `ln x` on the special lanes (±0 → −∞, x < 0 → NaN, ∞ → ∞,
/// NaN → NaN).
fn log_special(v: &mut V, x: Value) -> Value {
    let r = v.b.ins().sqrt(x);
    let x2 = v.b.ins().fmul(x, x);
    let one = v.f(1.0);
    let inv = v.b.ins().fdiv(one, x2);
    v.b.ins().fsub(r, inv)
}

/// `ln(1+x)`: `u = 1 + x` rounded, `ln(1+x) = ln u + (x − (u−1))/u` (the second term
/// restores what the rounding of u lost; it is x itself when u = 1).
fn log1p(v: &mut V, x: Value) -> Value {
    let one = v.f(1.0);
    let u = v.b.ins().fadd(x, one);
    let um1 = v.b.ins().fsub(u, one);
    let lost = v.b.ins().fsub(x, um1);
    let c = v.b.ins().fdiv(lost, u);
    let i = v.int(u);
    let (f, e) = split(v, i);
    let dk = v.b.ins().fcvt_from_sint(F32X4, e);
    let l = log_core(v, f, dk, Some(c));
    let special = not_positive_normal(v, i);
    let g = log_special(v, u);
    v.select(special, g, l)
}

/// `tanh x = x·P(z)/Q(z)`, `z = x²`, x clamped to `±TANH_CLAMP` (where tanh rounds to ±1).
/// Odd by construction (`tanh(−0) = −0`); NaN propagates through the clamp.
fn tanh(v: &mut V, x: Value) -> Value {
    let x = v.min(x, TANH_CLAMP);
    let x = v.max(x, -TANH_CLAMP);
    let z = v.b.ins().fmul(x, x);
    let p = v.horner(&TANH_NUM, z);
    let num = v.b.ins().fmul(p, x);
    let den = v.horner(&TANH_DEN, z);
    v.b.ins().fdiv(num, den)
}

/// `σ(x) = (x ≥ 0 ? 1 : q)/(1 + q)`, `q = e^−|x| ≤ 1`: no overflow, subnormal tails.
fn sigmoid(v: &mut V, x: Value) -> Value {
    let q = exp_neg_abs(v, x);
    let one = v.f(1.0);
    let d = v.b.ins().fadd(q, one);
    let zero = v.f(0.0);
    let pos = v.b.ins().fcmp(FloatCC::GreaterThanOrEqual, x, zero);
    let num = v.select(pos, one, q);
    v.b.ins().fdiv(num, d)
}

/// `e^−|x|` (clamped below, subnormal results kept).
fn exp_neg_abs(v: &mut V, x: Value) -> Value {
    let sign = v.f(SIGN);
    let nx = v.b.ins().bor(x, sign);
    let nx = v.max(nx, EXP_LO);
    exp_core(v, nx, None, true)
}

/// `softplus x = max(x, 0) + ln(1 + q)`, `q = e^−|x|`; `ln(1+q)` needs no rounding of 1+q:
/// for `q < ½`, `f = q`, else `1 + q = 2·(1 + f)` with `f = (q−1)/2` exact.
fn softplus(v: &mut V, x: Value) -> Value {
    let q = exp_neg_abs(v, x);
    let half = v.f(0.5);
    let big = v.b.ins().fcmp(FloatCC::GreaterThanOrEqual, q, half);
    let mhalf = v.f(-0.5);
    let fb = v.b.ins().fma(q, half, mhalf);
    let f = v.select(big, fb, q);
    let one = v.f(1.0);
    let bigf = v.float(big);
    let dk = v.b.ins().band(bigf, one);
    let l = log_core(v, f, dk, None);
    let m = v.max(x, 0.0);
    v.b.ins().fadd(m, l)
}

/// `erf x`: `x + x·P(x²)` for `|x| < 0.92`, else `±(1 − erfc|x|)` with a rational erfc,
/// dropped (erf = ±1) from `|x| ≥ ERF_ONE` on, where `erf` rounds to 1.
fn erf(v: &mut V, x: Value) -> Value {
    let a = v.b.ins().fabs(x);
    let z = v.b.ins().fmul(a, a);
    let p = v.horner(&ERF_P, z);
    let small = v.b.ins().fma(p, a, a);
    let (sc, sh) = (v.f(ERF_T_SCALE), v.f(ERF_T_SHIFT));
    let t = v.b.ins().fma(a, sc, sh);
    let n = v.horner(&ERFC_N, t);
    let d = v.horner(&ERFC_D, t);
    let r = v.b.ins().fdiv(n, d);
    let lim1 = v.f(ERF_ONE);
    let sat = v.b.ins().fcmp(FloatCC::GreaterThanOrEqual, a, lim1);
    let sat = v.float(sat);
    let r = v.b.ins().band_not(r, sat);
    let one = v.f(1.0);
    let big = v.b.ins().fsub(one, r);
    let lim = v.f(ERF_SMALL);
    let is_small = v.b.ins().fcmp(FloatCC::LessThan, a, lim);
    let y = v.select(is_small, small, big);
    v.copysign(y, x)
}

// ---------------------------------------------------------------------------------------
// Builder helpers.

/// The builder plus a cache of the vector constants made by one emitter call (all in the
/// current block, so they dominate their uses).
struct V<'a, 'b> {
    b: &'a mut FunctionBuilder<'b>,
    consts: Vec<(u32, bool, Value)>,
}

impl<'a, 'b> V<'a, 'b> {
    fn new(b: &'a mut FunctionBuilder<'b>) -> Self {
        V { b, consts: Vec::new() }
    }

    /// A splatted constant (`vconst`), made once per emitter call.
    fn splat(&mut self, bits: u32, float: bool) -> Value {
        if let Some(&(_, _, v)) = self.consts.iter().find(|c| c.0 == bits && c.1 == float) {
            return v;
        }
        let data = ConstantData::from(bits.to_le_bytes().repeat(4));
        let handle = self.b.func.dfg.constants.insert(data);
        let ty = if float { F32X4 } else { I32X4 };
        let v = self.b.ins().vconst(ty, handle);
        self.consts.push((bits, float, v));
        v
    }

    fn f(&mut self, c: f32) -> Value {
        self.splat(c.to_bits(), true)
    }

    fn i(&mut self, c: i32) -> Value {
        self.splat(c as u32, false)
    }

    fn int(&mut self, x: Value) -> Value {
        self.b.ins().bitcast(I32X4, MemFlagsData::new(), x)
    }

    fn float(&mut self, x: Value) -> Value {
        self.b.ins().bitcast(F32X4, MemFlagsData::new(), x)
    }

    /// `mask ? t : f` for an `i32x4` lane mask (all ones / all zeros) and `f32x4` values.
    fn select(&mut self, mask: Value, t: Value, f: Value) -> Value {
        let m = self.float(mask);
        self.b.ins().bitselect(m, t, f)
    }

    /// `min(x, c)`, NaN in x propagates. `c < x ? c : x` is the pattern x86 lowers to one `minps`.
    fn min(&mut self, x: Value, c: f32) -> Value {
        let c = self.f(c);
        let lt = self.b.ins().fcmp(FloatCC::LessThan, c, x);
        self.select(lt, c, x)
    }

    /// `max(x, c)`, NaN in x propagates: `x < c ? c : x` (one `maxps`).
    fn max(&mut self, x: Value, c: f32) -> Value {
        let c = self.f(c);
        let lt = self.b.ins().fcmp(FloatCC::LessThan, x, c);
        self.select(lt, c, x)
    }

    /// `y` with the sign bit of `s` or-ed in (`|y|·sgn s` when y ≥ 0).
    fn copysign(&mut self, y: Value, s: Value) -> Value {
        let sign = self.f(SIGN);
        let sb = self.b.ins().band(s, sign);
        self.b.ins().bor(y, sb)
    }

    /// `Σ c[k]·x^k` by Horner with FMA.
    fn horner(&mut self, c: &[f32], x: Value) -> Value {
        let (last, rest) = c.split_last().expect("a polynomial has a coefficient");
        let mut acc = self.f(*last);
        for &ck in rest.iter().rev() {
            let k = self.f(ck);
            acc = self.b.ins().fma(acc, x, k);
        }
        acc
    }
}

mod pow;
#[cfg(test)]
mod tests;
