//! The counter-based random numbers of dropout ([`Op::DropMask`](super::Op::DropMask)): the
//! mask element at flat row-major index `i` of step `t` is a pure function of
//! `(salt, t, i)`, so every backend computes it independently, in any order and on any
//! thread, with the same bits. Only 32-bit wrapping multiplication, xor and shifts are used,
//! which vector units have (the JIT evaluates four lanes at once with the same formulas).
//!
//! ```text
//! mix(x)       = lowbias32: x ^= x>>16; x *= 0x7feb352d; x ^= x>>15; x *= 0x846ca68b; x ^= x>>16
//! salt(s, k)   = mix(mix(lo(s) ^ mix(hi(s) ^ A)) ^ k·φ ^ C)  seed s (u64), dropout site k
//! key(salt, t) = mix(salt ^ mix(t))                           once per step (t saturated to u32)
//! hash(key, i) = mix(i·φ ^ key)                               φ = 0x9e3779b9
//! kept         = hash >> 8 < T,  T = round(keep · 2²⁴)        (a uniform u in [0,1) below keep)
//! mask         = kept ? 1/keep : 0
//! ```
//!
//! Invariants: `mix` is a bijection of `u32` with good avalanche, so neighbouring indices,
//! steps, sites and seeds give unrelated bits; the keep decision is an integer comparison,
//! exact on every backend; `keep = 1` keeps everything (`T = 2²⁴`).

use super::eval::Real;
use crate::tensor::Tensor;

/// The golden-ratio multiplier spreading consecutive indices and sites over all 32 bits.
pub const PHI: u32 = 0x9e37_79b9;
/// The two multipliers of [`mix`] (Chris Wellons' lowbias32).
pub const MIX1: u32 = 0x7feb_352d;
pub const MIX2: u32 = 0x846c_a68b;

/// lowbias32: a bijective 32-bit integer mixer.
pub fn mix(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(MIX1);
    x ^= x >> 15;
    x = x.wrapping_mul(MIX2);
    x ^= x >> 16;
    x
}

/// The salt of dropout site `site` (its index among the model's dropouts) under `seed`.
pub fn salt(seed: u64, site: u32) -> u32 {
    let s = mix((seed as u32) ^ mix((seed >> 32) as u32 ^ 0x6a09_e667));
    mix(s ^ site.wrapping_mul(PHI) ^ 0xbb67_ae85)
}

/// The step counter as the hash sees it: the runtime scalar `step` saturated to `u32` (NaN
/// and negatives give 0), as Cranelift's `fcvt_to_uint_sat` does.
pub fn counter(step: f64) -> u32 {
    step as u32
}

/// The per-step key of a site.
pub fn key(salt: u32, step: u32) -> u32 {
    mix(salt ^ mix(step))
}

/// The random bits of element `i` under `key`.
pub fn hash(key: u32, i: u32) -> u32 {
    mix(i.wrapping_mul(PHI) ^ key)
}

/// `round(keep · 2²⁴)`, in `0..=2²⁴`: an element is kept when `hash >> 8` is below it.
pub fn threshold(keep: f64) -> u32 {
    (keep.clamp(0.0, 1.0) * (1u32 << 24) as f64).round() as u32
}

/// True if element `i` is kept under `key` and `threshold`.
pub fn kept(key: u32, i: u32, threshold: u32) -> bool {
    (hash(key, i) >> 8) < threshold
}

/// The mask tensor of shape `shape` for the scalar step value `step`: `1/keep` where kept,
/// else 0 (the flat index is taken modulo 2³², like the JIT's 32-bit lanes).
pub fn mask<T: Real>(step: T, keep: f64, salt: u32, shape: Vec<usize>) -> Tensor<T> {
    let k = key(salt, counter(step.as_f64()));
    let t = threshold(keep);
    let (on, off) = (T::from_f64(1.0 / keep), T::zero());
    let n: usize = shape.iter().product();
    let data = (0..n).map(|i| if kept(k, i as u32, t) { on } else { off }).collect();
    Tensor { shape, data }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_is_lowbias32() {
        // Pinned values (computed independently in Python): a change here changes every
        // mask of every saved run.
        assert_eq!(mix(0), 0);
        assert_eq!(mix(1), 0x6889_90c0);
        assert_eq!(mix(0xdead_beef), 0xe628_c683);
        // A bijection has no collisions on a sample.
        let mut v: Vec<u32> = (0..1u32 << 16).map(|i| mix(i.wrapping_mul(65_537))).collect();
        v.sort_unstable();
        v.dedup();
        assert_eq!(v.len(), 1 << 16);
    }

    #[test]
    fn thresholds_cover_the_ends() {
        assert_eq!(threshold(1.0), 1 << 24);
        assert_eq!(threshold(0.5), 1 << 23);
        assert_eq!(threshold(0.0), 0);
        // keep = 1 keeps every element whatever its bits.
        assert!((0..1000).all(|i| kept(key(7, 3), i, threshold(1.0))));
        assert!((0..1000).all(|i| !kept(key(7, 3), i, threshold(0.0))));
    }

    #[test]
    fn counter_saturates_like_cranelift() {
        assert_eq!(counter(-3.0), 0);
        assert_eq!(counter(f64::NAN), 0);
        assert_eq!(counter(5.0), 5);
        assert_eq!(counter(1e20), u32::MAX);
    }

    #[test]
    fn masks_are_scaled_and_about_keep_dense() {
        let m = mask(3.0f64, 0.75, salt(1, 0), vec![100, 100]);
        let kept = m.data.iter().filter(|&&x| x != 0.0).count();
        // Binomial(10⁴, 0.75): standard deviation 43.
        assert!((kept as f64 - 7500.0).abs() < 200.0, "{kept}");
        assert!(m.data.iter().all(|&x| x == 0.0 || x == 1.0 / 0.75));
        let other = mask(4.0f64, 0.75, salt(1, 0), vec![100, 100]);
        assert_ne!(m.data, other.data, "the mask changes with the step");
        assert_ne!(salt(1, 0), salt(1, 1));
        assert_ne!(salt(1, 0), salt(2, 0));
        assert_ne!(salt(1, 0), salt(1 << 32 | 1, 0));
    }
}
