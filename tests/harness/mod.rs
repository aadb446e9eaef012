//! Shared by tests/optimizers.rs and tests/schedules.rs: runs a program's compiled training
//! step (the reference interpreter in f64) next to an independent f64 implementation of its
//! update written in the test, and compares every parameter after every step.
//!
//! The gradients handed to the reference are computed by the gradient graph at the
//! reference's own parameters, so the two trajectories are independent except for the
//! gradient oracle. The learning rate fed to the compiled step is what a training run uses
//! (`nnc::schedule::lr_at`); the reference computes its own.
#![allow(dead_code)]

use nnc::graph::eval::{apply_updates, eval, Env};
use nnc::pipeline::{compile, Compiled};
use nnc::tensor::Tensor;

/// One Dense layer: parameters `fc.weight` [2, 3], `fc.bias` [2].
pub const TINY: &str = r#"
model Tiny {
    input x: [B, 3]
    label y: [B, 2]
    fc = Dense(3 -> 2, init = normal(0, 0.5))
    loss = mse(tanh(fc(x)), y)
}
"#;

/// Two Dense layers and a model-level gain: parameters (PyTorch order) `gain`,
/// `fc1.weight`, `fc1.bias`, `fc2.weight`, `fc2.bias`.
pub const TWO: &str = r#"
model Two {
    input x: [B, 3]
    label y: [B, 2]
    param gain: [4] = normal(1, 0.2)
    fc1 = Dense(3 -> 4, init = normal(0, 0.5))
    fc2 = Dense(4 -> 2, init = normal(0, 0.5))
    loss = mse(fc2(tanh(fc1(x)) * gain), y)
}
"#;

/// The batch of step `t`: four examples that change from step to step.
pub fn batch(step: usize) -> Vec<Tensor<f64>> {
    let x: Vec<f64> = (0..12).map(|i| ((i * 7 + step * 3) % 11) as f64 / 5.0 - 1.0).collect();
    let y: Vec<f64> = (0..8).map(|i| ((i * 5 + step) % 7) as f64 / 3.0 - 1.0).collect();
    vec![Tensor::new(vec![4, 3], x), Tensor::new(vec![4, 2], y)]
}

pub fn compiled(model: &str, items: &str) -> Compiled {
    let src = format!("{model}\n{items}\n");
    compile(&src).unwrap_or_else(|d| panic!("{}", nnc::diagnostic::render_all(&d, "test.nn", &src)))
}

/// Parameter names of `model` in order.
pub fn names(model: &str, items: &str) -> Vec<String> {
    compiled(model, items).model.params.iter().map(|p| p.name.clone()).collect()
}

/// Zero buffers shaped like the parameters.
pub fn zeros_like(p: &[Vec<f64>]) -> Vec<Vec<f64>> {
    p.iter().map(|v| vec![0.0; v.len()]).collect()
}

/// Runs `steps` steps of `model` with `items` (optimizer, schedule, clip, train) both ways
/// and compares after every step. `update` gets every parameter, every gradient and `t`.
pub fn check(
    model: &str,
    items: &str,
    steps: usize,
    update: &mut dyn FnMut(&mut [Vec<f64>], &[Vec<f64>], usize),
) {
    run(model, items, steps, update, None);
}

/// [`check`], and at every step the JIT too, in f32, from the interpreter's parameters and
/// state rounded to f32 (as in tests/jit.rs: two f32 trajectories drift apart by rounding
/// alone, 2e-6 to 8e-6 of the distance travelled after 100 Adam steps): every new parameter
/// must equal the f64 one to `rtol` of the tensor's largest magnitude. Returns the largest
/// error seen.
pub fn check_jit(
    model: &str,
    items: &str,
    steps: usize,
    rtol: f64,
    update: &mut dyn FnMut(&mut [Vec<f64>], &[Vec<f64>], usize),
) -> f64 {
    run(model, items, steps, update, Some(rtol))
}

fn run(
    model: &str,
    items: &str,
    steps: usize,
    update: &mut dyn FnMut(&mut [Vec<f64>], &[Vec<f64>], usize),
    jit_rtol: Option<f64>,
) -> f64 {
    use nnc::runtime::Backend;
    let c = compiled(model, items);
    let init = nnc::train::init::init_params(&c.model.params, 7);
    let mut jit = jit_rtol.map(|_| nnc::jit::compile(&c.opt, &c.forward, 1).unwrap());
    let mut worst: f64 = 0.0;
    let mut params: Vec<Tensor<f64>> = init.iter().map(|t| t.to_f64()).collect();
    let mut reference: Vec<Vec<f64>> = params.iter().map(|p| p.data.clone()).collect();
    let mut states: Vec<Tensor<f64>> =
        c.opt.states.iter().map(|s| Tensor::full(s.shape.concrete(0), s.init)).collect();
    for t in 1..=steps {
        let lr = nnc::schedule::lr_at(&c.model, &c.model.train, t as u64);
        let inputs = batch(t);
        let ref_params: Vec<Tensor<f64>> = params
            .iter()
            .zip(&reference)
            .map(|(p, r)| Tensor::new(p.shape.clone(), r.clone()))
            .collect();
        let env = Env { inputs: &inputs, params: &ref_params, states: &[], lr, step: t as f64 };
        let ev = eval(&c.grad, &env).unwrap();
        let grads: Vec<Vec<f64>> = c
            .grad
            .params
            .iter()
            .map(|p| {
                let name = format!("grad.{}", p.name);
                let k = c.grad.outputs.iter().position(|o| o.name == name).unwrap();
                ev.outputs[k].data.clone()
            })
            .collect();
        update(&mut reference, &grads, t);
        let before: Vec<Tensor<f32>> = params.iter().map(|p| p.to_f32()).collect();
        if let Some(jit) = &mut jit {
            jit.set_params(&before).unwrap();
            jit.set_states(&states.iter().map(|s| s.to_f32()).collect::<Vec<_>>()).unwrap();
            let inputs: Vec<Tensor<f32>> = inputs.iter().map(|x| x.to_f32()).collect();
            jit.step(&inputs, lr, t as u64).unwrap();
        }
        let env = Env { inputs: &inputs, params: &params, states: &states, lr, step: t as f64 };
        let ev = eval(&c.opt, &env).unwrap();
        apply_updates(&c.opt, &ev, &mut params, &mut states);
        for ((a, b), p) in params.iter().zip(&reference).zip(&c.model.params) {
            for (x, y) in a.data.iter().zip(b) {
                assert!(
                    x.is_finite() && (x - y).abs() <= 1e-9 * (1.0 + y.abs()),
                    "{items} step {t}, {}: {x} vs {y}",
                    p.name
                );
            }
        }
        let (Some(jit), Some(rtol)) = (&jit, jit_rtol) else { continue };
        for ((got, want), p) in jit.params().iter().zip(&params).zip(&c.model.params) {
            let scale = want.data.iter().fold(0.0, |m: f64, y| m.max(y.abs()));
            for (&x, &y) in got.data.iter().zip(&want.data) {
                let err = (x as f64 - y).abs() / scale;
                worst = worst.max(err);
                assert!(
                    x.is_finite() && err <= rtol,
                    "{items} step {t}, {}: JIT {x} vs f64 {y} ({err:.2e} of the largest |θ|)",
                    p.name
                );
            }
        }
    }
    worst
}

/// `θ −= lr_t·g` for every parameter: the reference of plain SGD under a schedule.
pub fn sgd_with(
    mut lr: impl FnMut(usize) -> f64,
) -> impl FnMut(&mut [Vec<f64>], &[Vec<f64>], usize) {
    move |ps, gs, t| {
        let r = lr(t);
        for (p, g) in ps.iter_mut().zip(gs) {
            for (p, g) in p.iter_mut().zip(g) {
                *p -= r * g;
            }
        }
    }
}

/// The first error's message and the source text it points at.
pub fn first_error(model: &str, items: &str) -> (String, String) {
    let src = format!("{model}\n{items}\n");
    let d = match compile(&src) {
        Ok(_) => panic!("expected an error in:\n{items}"),
        Err(d) => d,
    };
    let s = d[0].primary.span;
    (d[0].message.clone(), src[s.start as usize..s.end as usize].to_string())
}
