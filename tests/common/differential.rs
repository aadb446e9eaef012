//! The JIT against the reference interpreter (`graph::eval`), for tests/jit.rs and
//! tests/jit_ops.rs.
//!
//! Closeness, elementwise, against the f32 interpreter: `|jit − ref| ≤ tol` with
//! `tol = 1e-5·|ref| + 1e-5·scale`, where `scale` is the largest magnitude in the group of
//! tensors compared together (all outputs, all parameters, all states): a sum that cancels
//! to nearly 0 has no meaningful relative error, the backends add in different orders, and
//! a tensor that is 0 in exact arithmetic (the gradient of a bias feeding a batch norm) is
//! pure rounding noise in both. Where that fails, the element still passes when the JIT is
//! as accurate as the f32 interpreter itself: `|jit − exact| ≤ 4·|ref − exact| + tol`, with
//! `exact` the same operation in f64 from the same state. That matters for Adam-like
//! optimizers, which divide by the root of a squared gradient: a gradient that cancels to
//! nearly 0 turns rounding noise into an update of size `lr`, and neither f32 result is
//! more right than the other. Over a large tensor a few such elements are expected where
//! the interpreter's noise happens to be the smaller one: the tensor then passes when the
//! JIT's distance to the exact result (2-norm) is at most twice the interpreter's plus
//! `1e-5·|exact|`; a real error (a wrong element, row or op) is far larger than that.
//!
//! Every comparison is of one operation (a step, a forward pass) from identical state: the
//! JIT is reset to the reference's parameters and state before each, so differences within
//! tolerance do not compound over steps into a sensitive model's loss.

use nnc::graph::eval::{apply_updates, eval, Env};
use nnc::graph::Graph;
use nnc::jit::Jit;
use nnc::runtime::Backend;
use nnc::tensor::Tensor;

const RTOL: f32 = 1e-5;

/// Checks `got` (JIT) against `want` (f32 interpreter), with `exact` (f64 interpreter) as
/// the arbiter described in the module doc; `scale` is the group's largest magnitude.
pub fn close(
    what: &str,
    got: &Tensor<f32>,
    want: &Tensor<f32>,
    exact: Option<&Tensor<f64>>,
    scale: f32,
) -> Result<(), String> {
    if got.shape != want.shape {
        return Err(format!("{what}: shape {:?}, expected {:?}", got.shape, want.shape));
    }
    let mut first_bad = None;
    for (i, (a, b)) in got.data.iter().zip(&want.data).enumerate() {
        let tol = RTOL * b.abs() + RTOL * scale;
        let ok = (a - b).abs() <= tol || (a.is_nan() && b.is_nan()) || a == b;
        let as_good = exact.is_some_and(|e| {
            let c = e.data[i];
            (*a as f64 - c).abs() <= 4.0 * (*b as f64 - c).abs() + tol as f64
        });
        if !ok && !as_good && first_bad.is_none() {
            first_bad = Some(i);
        }
    }
    let Some(i) = first_bad else { return Ok(()) };
    // Tensor-level arbiter: over many elements some are ill-conditioned (a gradient that
    // cancels to nearly 0 under Adam) and the interpreter's noise happens to be smaller
    // there; the JIT passes if it is as close to the exact result as the interpreter overall.
    if let Some(e) = exact {
        let dist = |v: &[f32]| {
            v.iter().zip(&e.data).map(|(a, c)| (*a as f64 - c).powi(2)).sum::<f64>().sqrt()
        };
        let norm = e.data.iter().map(|c| c * c).sum::<f64>().sqrt();
        if dist(&got.data) <= 2.0 * dist(&want.data) + RTOL as f64 * norm {
            return Ok(());
        }
    }
    let c = exact.map(|e| format!(", f64 {}", e.data[i])).unwrap_or_default();
    Err(format!("{what}[{i}]: jit {}, interp {}{c} (scale {scale})", got.data[i], want.data[i]))
}

/// The reference: parameters and states stepped by `graph::eval` in f32; every operation is
/// also evaluated in f64 from the same f32 state, as the arbiter.
pub struct Reference {
    pub params: Vec<Tensor<f32>>,
    pub states: Vec<Tensor<f32>>,
}

pub fn to64(v: &[Tensor<f32>]) -> Vec<Tensor<f64>> {
    v.iter().map(|t| t.to_f64()).collect()
}

/// Results in f32 and, from the same starting state, in f64.
pub type Both = (Vec<Tensor<f32>>, Vec<Tensor<f64>>);

impl Reference {
    pub fn new(step: &Graph, params: Vec<Tensor<f32>>) -> Reference {
        let states =
            step.states.iter().map(|s| Tensor::full(s.shape.concrete(0), s.init as f32)).collect();
        Reference { params, states }
    }
    /// One step: the outputs, then the parameters and states after it (each in both
    /// precisions); the f32 state advances.
    pub fn step(
        &mut self,
        g: &Graph,
        inputs: &[Tensor<f32>],
        lr: f64,
        t: u64,
    ) -> Result<[Both; 3], String> {
        let (mut p64, mut s64) = (to64(&self.params), to64(&self.states));
        let in64 = to64(inputs);
        let env = Env { inputs: &in64, params: &p64, states: &s64, lr, step: t as f64 };
        let ev64 = eval(g, &env).map_err(|e| e.to_string())?;
        apply_updates(g, &ev64, &mut p64, &mut s64);
        let env = Env { inputs, params: &self.params, states: &self.states, lr, step: t as f64 };
        let ev = eval(g, &env).map_err(|e| e.to_string())?;
        apply_updates(g, &ev, &mut self.params, &mut self.states);
        Ok([(ev.outputs, ev64.outputs), (self.params.clone(), p64), (self.states.clone(), s64)])
    }
    /// A forward pass in both precisions.
    pub fn forward(&self, g: &Graph, inputs: &[Tensor<f32>]) -> Result<Both, String> {
        let n = g.states.len();
        let env =
            Env { inputs, params: &self.params, states: &self.states[..n], lr: 0.0, step: 0.0 };
        let out = eval(g, &env).map_err(|e| e.to_string())?.outputs;
        let (in64, p64, s64) = (to64(inputs), to64(&self.params), to64(&self.states[..n]));
        let env = Env { inputs: &in64, params: &p64, states: &s64, lr: 0.0, step: 0.0 };
        Ok((out, eval(g, &env).map_err(|e| e.to_string())?.outputs))
    }
}

pub fn all_close(
    what: &str,
    got: &[Tensor<f32>],
    want: &[Tensor<f32>],
    exact: &[Tensor<f64>],
) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!("{what}: {} tensors, expected {}", got.len(), want.len()));
    }
    let scale = want.iter().flat_map(|t| &t.data).fold(0f32, |m, x| {
        if x.is_finite() {
            m.max(x.abs())
        } else {
            m
        }
    });
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        close(&format!("{what} #{i}"), a, b, exact.get(i), scale)?;
    }
    Ok(())
}

/// The first element of each tensor, as one tensor (what `Backend::evaluate` reports).
pub fn firsts<T: Copy + num_traits::Float>(v: &[Tensor<T>]) -> Tensor<T> {
    Tensor::new(
        vec![v.len()],
        v.iter().map(|t| t.data.first().copied().unwrap_or(T::nan())).collect(),
    )
}

/// Runs one step per batch on both backends from the same parameters and compares the
/// outputs, parameters and states after each, then the forward pass. Before every step the
/// JIT is reset to the reference's state, so that each comparison is of one operation from
/// identical inputs (differences within tolerance must not accumulate over steps).
pub fn differential(
    step: &Graph,
    forward: &Graph,
    jit: &mut Jit,
    params: &[Tensor<f32>],
    batches: &[Vec<Tensor<f32>>],
    lr: f64,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut r = Reference::new(step, params.to_vec());
    for (t, inputs) in batches.iter().enumerate() {
        jit.set_params(&r.params)?;
        jit.set_states(&r.states)?;
        let t = t as u64 + 1;
        let [(out, out64), (p, p64), (s, s64)] = r.step(step, inputs, lr, t)?;
        all_close(&format!("step {t} outputs"), &jit.step_full(inputs, lr, t)?, &out, &out64)?;
        all_close(&format!("step {t} parameters"), &jit.params(), &p, &p64)?;
        all_close(&format!("step {t} states"), &jit.states(), &s, &s64)?;
        jit.set_params(&r.params)?;
        jit.set_states(&r.states)?;
        let got = Backend::evaluate(jit, inputs)?;
        let (want, exact) = r.forward(forward, inputs)?;
        let got = Tensor::new(vec![got.len()], got);
        all_close("evaluate", &[got], &[firsts(&want)], &[firsts(&exact)])?;
    }
    let inputs = &batches[0];
    let (want, exact) = r.forward(forward, inputs)?;
    Ok(all_close("forward outputs", &jit.forward_full(inputs)?, &want, &exact)?)
}

/// A deterministic value in `[-1, 1)` from `(seed, i)`: inputs and parameters of the tests.
pub fn noise(seed: u64, i: u64) -> f32 {
    let h = (seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i).wrapping_mul(0xD1B5_4A32_D192_ED03);
    ((h >> 40) as f32 / (1u64 << 23) as f32) - 1.0
}
