//! Differential tests of the JIT against the reference interpreter (`graph::eval` in f32):
//! for every example and `tests/cases/ok` model, and for randomly generated models and
//! graphs, the JIT's outputs, updated parameters and optimizer state after several steps
//! equal the interpreter's, at batch sizes 1, 7 and the whole data set, all through one
//! compilation (the batch size changes between calls).
//!
//! Closeness, elementwise: `|jit − ref| ≤ 1e-5·|ref| + 1e-5·max|ref|` against the f32
//! interpreter, the second term scaling with the tensor (a sum that cancels to nearly 0 has
//! no meaningful relative error: the backends add in different orders). Where that fails,
//! the element passes only if the JIT is as accurate as the f32 interpreter itself: within
//! 4× the interpreter's distance to the same computation in f64 (Adam divides by the root
//! of a squared gradient, so a gradient that cancels to nearly 0 turns rounding noise into
//! an update of size `lr`; there neither f32 result is more right than the other).

use std::path::{Path, PathBuf};

use nnc::graph::eval::{apply_updates, eval, Env};
use nnc::graph::Graph;
use nnc::jit::{self, Jit};
use nnc::pipeline::{self, Compiled};
use nnc::tensor::Tensor;
use nnc::train::{data, session, Backend};

const RTOL: f32 = 1e-5;

/// Checks `got` (JIT) against `want` (f32 interpreter), with `exact` (f64 interpreter) as
/// the arbiter described in the module doc.
fn close(what: &str, got: &Tensor<f32>, want: &Tensor<f32>, exact: Option<&Tensor<f64>>) -> Result<(), String> {
    if got.shape != want.shape {
        return Err(format!("{what}: shape {:?}, expected {:?}", got.shape, want.shape));
    }
    let scale = want.data.iter().fold(0f32, |m, x| m.max(x.abs()));
    for (i, (a, b)) in got.data.iter().zip(&want.data).enumerate() {
        let ok = (a - b).abs() <= RTOL * b.abs() + RTOL * scale || (a.is_nan() && b.is_nan()) || a == b;
        let arbiter = exact.map(|e| e.data[i]).filter(|_| !ok);
        let as_good = arbiter.is_some_and(|c| (*a as f64 - c).abs() <= 4.0 * (*b as f64 - c).abs() + 1e-9);
        if !ok && !as_good {
            let c = arbiter.map(|c| format!(", f64 {c}")).unwrap_or_default();
            return Err(format!("{what}[{i}]: jit {a}, interp {b}{c} (tensor max {scale})"));
        }
    }
    Ok(())
}

/// The reference: parameters and states stepped by `graph::eval`, in f32 and in f64.
struct Reference {
    params: Vec<Tensor<f32>>,
    states: Vec<Tensor<f32>>,
    params64: Vec<Tensor<f64>>,
    states64: Vec<Tensor<f64>>,
}

fn to64(v: &[Tensor<f32>]) -> Vec<Tensor<f64>> {
    v.iter().map(|t| t.to_f64()).collect()
}

impl Reference {
    fn new(step: &Graph, params: Vec<Tensor<f32>>) -> Reference {
        let states: Vec<Tensor<f32>> =
            step.states.iter().map(|s| Tensor::full(s.shape.concrete(0), s.init as f32)).collect();
        Reference { params64: to64(&params), states64: to64(&states), params, states }
    }
    /// One step in both precisions: the f32 and f64 outputs.
    #[allow(clippy::type_complexity)]
    fn step(&mut self, g: &Graph, inputs: &[Tensor<f32>], lr: f64, t: u64) -> Result<(Vec<Tensor<f32>>, Vec<Tensor<f64>>), String> {
        let env = Env { inputs, params: &self.params, states: &self.states, lr, step: t as f64 };
        let ev = eval(g, &env).map_err(|e| e.to_string())?;
        apply_updates(g, &ev, &mut self.params, &mut self.states);
        let in64 = to64(inputs);
        let env = Env { inputs: &in64, params: &self.params64, states: &self.states64, lr, step: t as f64 };
        let ev64 = eval(g, &env).map_err(|e| e.to_string())?;
        apply_updates(g, &ev64, &mut self.params64, &mut self.states64);
        Ok((ev.outputs, ev64.outputs))
    }
    fn forward(&self, g: &Graph, inputs: &[Tensor<f32>]) -> Result<Vec<Tensor<f32>>, String> {
        let states = &self.states[..g.states.len()];
        let env = Env { inputs, params: &self.params, states, lr: 0.0, step: 0.0 };
        Ok(eval(g, &env).map_err(|e| e.to_string())?.outputs)
    }
}

fn all_close(what: &str, got: &[Tensor<f32>], want: &[Tensor<f32>], exact: Option<&[Tensor<f64>]>) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!("{what}: {} tensors, expected {}", got.len(), want.len()));
    }
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        close(&format!("{what} #{i}"), a, b, exact.map(|e| &e[i]))?;
    }
    Ok(())
}

/// Runs `steps` steps on both backends from the same parameters and compares everything.
fn differential(
    c: &Compiled,
    jit: &mut Jit,
    params: &[Tensor<f32>],
    batches: &[Vec<Tensor<f32>>],
    lr: f64,
) -> Result<(), String> {
    let mut r = Reference::new(&c.opt, params.to_vec());
    jit.set_params(params)?;
    jit.set_states(&r.states)?;
    for (t, inputs) in batches.iter().enumerate() {
        let t = t as u64 + 1;
        let (want, exact) = r.step(&c.opt, inputs, lr, t)?;
        let got = jit.step_full(inputs, lr, t)?;
        all_close(&format!("step {t} outputs"), &got, &want, Some(&exact))?;
        let firsts = Backend::evaluate(jit, inputs)?;
        let fwd = r.forward(&c.forward, inputs)?;
        let want_first: Vec<f32> = fwd.iter().map(|t| t.data.first().copied().unwrap_or(f32::NAN)).collect();
        let (n, m) = (firsts.len(), want_first.len());
        close("evaluate", &Tensor::new(vec![n], firsts), &Tensor::new(vec![m], want_first), None)?;
    }
    all_close("parameters", &jit.params(), &r.params, Some(&r.params64))?;
    all_close("states", &jit.states(), &r.states, Some(&r.states64))?;
    let inputs = &batches[0];
    all_close("forward outputs", &jit.forward_full(inputs)?, &r.forward(&c.forward, inputs)?, None)
}

fn programs() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["examples", "tests/cases/ok"] {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "nn"))
            .collect();
        v.sort();
        files.extend(v);
    }
    files
}

/// A deterministic value in `[-1, 1)` from `(seed, i)`.
fn noise(seed: u64, i: u64) -> f32 {
    let h = (seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i).wrapping_mul(0xD1B5_4A32_D192_ED03);
    ((h >> 40) as f32 / (1u64 << 23) as f32) - 1.0
}

/// The model's data set, or (when its file is not in this repository) 300 random examples
/// of the right shapes.
fn dataset(c: &Compiled, base: &Path) -> data::Dataset {
    let spec = session::effective_spec(&c.model, &session::Options::default());
    if let Ok(ds) = session::load_data(&c.model, &spec, base, None) {
        return ds;
    }
    let shape = session::data_shape(&c.model).unwrap();
    let n = 300;
    let f = shape.feature_count();
    let x: Vec<f32> = (0..n * f).map(|i| noise(1, i as u64)).collect();
    let mut xs = vec![n];
    xs.extend(&shape.features);
    let y = match shape.label {
        data::LabelSpec::Classes(k) => {
            Tensor::new(vec![n], (0..n).map(|i| ((noise(2, i as u64) + 1.0) * k as f32 / 2.0).floor().min(k as f32 - 1.0)).collect())
        }
        data::LabelSpec::Targets(t) => Tensor::new(vec![n, t], (0..n * t).map(|i| noise(3, i as u64)).collect()),
    };
    data::Dataset { x: Tensor::new(xs, x), y }
}

/// `steps` batches of `size` consecutive examples of the model's data, wrapping.
fn batches_of(c: &Compiled, base: &Path, size: usize, steps: usize) -> Result<Vec<Vec<Tensor<f32>>>, String> {
    let ds = dataset(c, base);
    let n = ds.len();
    Ok((0..steps)
        .map(|s| {
            let idx: Vec<usize> = (0..size.min(n)).map(|k| (s * size + k) % n).collect();
            let (x, y) = data::batch(&ds, &idx);
            session::inputs_for(&c.model, x, y)
        })
        .collect())
}

#[test]
fn every_program_matches_the_interpreter_at_batch_sizes_1_7_and_all() {
    let mut failures = Vec::new();
    for path in programs() {
        let src = std::fs::read_to_string(&path).unwrap();
        let c = pipeline::compile(&src).unwrap_or_else(|_| panic!("{} compiles", path.display()));
        let base = path.parent().unwrap();
        let spec = session::effective_spec(&c.model, &session::Options::default());
        let params = session::initial_params(&c.model, spec.seed, None).unwrap();
        let mut jit = jit::compile(&c, 1).unwrap();
        let all = dataset(&c, base).len().min(2000);
        for size in [1, 7, all, 7] {
            let batches = batches_of(&c, base, size, 3).unwrap();
            if let Err(e) = differential(&c, &mut jit, &params, &batches, 0.01) {
                failures.push(format!("{} at batch {size}: {e}", path.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
