//! Differential tests of the JIT against the reference interpreter (`graph::eval` in f32):
//! for every example and `tests/cases/ok` model, and for randomly generated models and
//! graphs, the JIT's outputs, updated parameters and optimizer state after several steps
//! equal the interpreter's, at batch sizes 1, 7 and the whole data set, all through one
//! compilation (the batch size changes between calls).
//!
//! Closeness: `|jit − ref| ≤ 1e-5·|ref| + 1e-5·max|ref|` elementwise, the second term
//! scaling with the tensor (a sum that cancels to nearly 0 has no meaningful relative error:
//! the two backends add in different orders).

use std::path::{Path, PathBuf};

use nnc::graph::eval::{apply_updates, eval, Env};
use nnc::graph::Graph;
use nnc::jit::{self, Jit};
use nnc::pipeline::{self, Compiled};
use nnc::tensor::Tensor;
use nnc::train::{data, session, Backend};

const RTOL: f32 = 1e-5;

fn close(what: &str, got: &Tensor<f32>, want: &Tensor<f32>) -> Result<(), String> {
    if got.shape != want.shape {
        return Err(format!("{what}: shape {:?}, expected {:?}", got.shape, want.shape));
    }
    let scale = want.data.iter().fold(0f32, |m, x| m.max(x.abs()));
    for (i, (a, b)) in got.data.iter().zip(&want.data).enumerate() {
        let ok = (a - b).abs() <= RTOL * b.abs() + RTOL * scale || (a.is_nan() && b.is_nan()) || a == b;
        if !ok {
            return Err(format!("{what}[{i}]: jit {a}, interp {b} (tensor max {scale})"));
        }
    }
    Ok(())
}

/// The reference: parameters and states stepped by `graph::eval`.
struct Reference {
    params: Vec<Tensor<f32>>,
    states: Vec<Tensor<f32>>,
}

impl Reference {
    fn new(step: &Graph, params: Vec<Tensor<f32>>) -> Reference {
        let states = step.states.iter().map(|s| Tensor::full(s.shape.concrete(0), s.init as f32)).collect();
        Reference { params, states }
    }
    fn step(&mut self, g: &Graph, inputs: &[Tensor<f32>], lr: f64, t: u64) -> Result<Vec<Tensor<f32>>, String> {
        let env = Env { inputs, params: &self.params, states: &self.states, lr, step: t as f64 };
        let ev = eval(g, &env).map_err(|e| e.to_string())?;
        apply_updates(g, &ev, &mut self.params, &mut self.states);
        Ok(ev.outputs)
    }
    fn forward(&self, g: &Graph, inputs: &[Tensor<f32>]) -> Result<Vec<Tensor<f32>>, String> {
        let states = &self.states[..g.states.len()];
        let env = Env { inputs, params: &self.params, states, lr: 0.0, step: 0.0 };
        Ok(eval(g, &env).map_err(|e| e.to_string())?.outputs)
    }
}

fn all_close(what: &str, got: &[Tensor<f32>], want: &[Tensor<f32>]) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!("{what}: {} tensors, expected {}", got.len(), want.len()));
    }
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        close(&format!("{what} #{i}"), a, b)?;
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
        let want = r.step(&c.opt, inputs, lr, t)?;
        let got = jit.step_full(inputs, lr, t)?;
        all_close(&format!("step {t} outputs"), &got, &want)?;
        let firsts = Backend::evaluate(jit, inputs)?;
        let fwd = r.forward(&c.forward, inputs)?;
        let want_first: Vec<f32> = fwd.iter().map(|t| t.data.first().copied().unwrap_or(f32::NAN)).collect();
        close("evaluate", &Tensor::new(vec![firsts.len()], firsts), &Tensor::new(vec![want_first.len()], want_first))?;
    }
    all_close("parameters", &jit.params(), &r.params)?;
    all_close("states", &jit.states(), &r.states)?;
    let inputs = &batches[0];
    all_close("forward outputs", &jit.forward_full(inputs)?, &r.forward(&c.forward, inputs)?)
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

/// `steps` batches of `size` consecutive examples of the model's data, wrapping.
fn batches_of(c: &Compiled, base: &Path, size: usize, steps: usize) -> Result<Vec<Vec<Tensor<f32>>>, String> {
    let spec = session::effective_spec(&c.model, &session::Options::default());
    let ds = session::load_data(&c.model, &spec, base, None)?;
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
        let all = session::load_data(&c.model, &spec, base, None).unwrap().len().min(2000);
        for size in [1, 7, all, 7] {
            let batches = batches_of(&c, base, size, 3).unwrap();
            if let Err(e) = differential(&c, &mut jit, &params, &batches, 0.01) {
                failures.push(format!("{} at batch {size}: {e}", path.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
