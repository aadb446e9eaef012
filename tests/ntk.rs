//! `nnc ntk` (`nnc::study::ntk`): the kernel the compiler's vector-Jacobian products give,
//! row by row and factored per layer, is `Σ_c J_c J_cᵀ` of a Jacobian computed here by
//! central differences of the prediction in f64 (no autodiff); its eigenvalues sum to the trace, their squares to the kernel's
//! Frobenius norm, and the largest is the power iteration's; the JIT and the interpreter
//! agree.

mod common;
use common::{csv_table, differential::noise, nnc, scratch};
use nnc::graph::eval::{eval, Env};
use nnc::graph::Role;
use nnc::lower::{lower_with, LowerOptions, Mode};
use nnc::pipeline::compile;
use nnc::study::ntk;
use nnc::tensor::Tensor;
use nnc::train::session;

const TINY: &str = "
model Tiny {
    input x: [B, 3]
    label y: class[B] of 2
    fc1 = Dense(3 -> 4)
    fc2 = Dense(4 -> 2)
    loss = cross_entropy(fc2(tanh(fc1(x))), y)
}
optimizer sgd(lr = 0.1)
";

#[test]
fn the_kernel_is_the_jacobians_products() {
    let c = compile(TINY).unwrap();
    let model = &c.model;
    let w = session::initial_weights(model, 3, None).unwrap();
    let n = 5;
    let x = Tensor::new(vec![n, 3], (0..3 * n).map(|i| noise(11, i as u64)).collect());
    let (g, shape) = ntk::vjp_graph(model).unwrap();
    assert_eq!(shape, [2]);
    let rows = ntk::rows(model, &x, 2, |inputs| {
        let env = Env { inputs, params: &w.params, states: &w.buffers, lr: 0.0, step: 0.0 };
        let out = eval(&g, &env).unwrap().outputs;
        Ok((0..g.params.len() as u32)
            .map(|i| out[g.output_of(Role::Grad(i)).unwrap()].clone())
            .collect())
    })
    .unwrap();
    let k = ntk::Ntk::new(ntk::kernel(&rows, n, 2 * model.param_count()), n);
    // The factored way: two Dense layers, `C = 2` runs of the whole batch.
    let (mut gf, _) = ntk::vjp_graph(model).unwrap();
    let (factors, nodes) = ntk::factors(&mut gf).expect("Dense layers factor");
    assert_eq!(factors.len(), 4);
    let first = gf.outputs.len() - nodes.len();
    let y0 = Tensor::new(vec![n], vec![0.0f32; n]);
    let factored = ntk::factored(&factors, &nodes, n, 2, |v| {
        let inputs = [x.clone(), y0.clone(), v];
        let env =
            Env { inputs: &inputs, params: &w.params, states: &w.buffers, lr: 0.0, step: 0.0 };
        Ok(eval(&gf, &env).unwrap().outputs[first..].to_vec())
    })
    .unwrap();
    // J by central differences of the prediction, in f64.
    let o = LowerOptions { mode: Mode::Eval, probes: false, prediction: true };
    let f = lower_with(model, o);
    let at = f.output_of(Role::Prediction).unwrap();
    let x64 = x.to_f64();
    let y = Tensor::new(vec![n], vec![0.0f64; n]);
    let predict = |params: &[Tensor<f64>]| -> Vec<f64> {
        let env =
            Env { inputs: &[x64.clone(), y.clone()], params, states: &[], lr: 0.0, step: 0.0 };
        eval(&f, &env).unwrap().outputs[at].data.clone()
    };
    let base: Vec<Tensor<f64>> = w.params.iter().map(|t| t.to_f64()).collect();
    let h = 1e-6;
    let mut jac: Vec<Vec<f64>> = Vec::new(); // one column per parameter element: d f[i, c]
    for (p, t) in base.iter().enumerate() {
        for e in 0..t.data.len() {
            let (mut up, mut down) = (base.clone(), base.clone());
            up[p].data[e] += h;
            down[p].data[e] -= h;
            let (fu, fd) = (predict(&up), predict(&down));
            jac.push(fu.iter().zip(&fd).map(|(a, b)| (a - b) / (2.0 * h)).collect());
        }
    }
    for i in 0..n {
        for j in 0..n {
            let want: f64 = (0..2)
                .map(|cl| jac.iter().map(|col| col[i * 2 + cl] * col[j * 2 + cl]).sum::<f64>())
                .sum();
            for (how, got) in [("rows", k.kernel[i * n + j]), ("factored", factored[i * n + j])] {
                let close = (got - want).abs() <= 1e-4 * want.abs().max(1.0);
                assert!(close, "{how}: Θ[{i}][{j}] = {got}, explicit {want}");
            }
        }
    }
    // The spectrum: trace, Frobenius norm, and the largest eigenvalue by power iteration.
    let trace: f64 = (0..n).map(|i| k.kernel[i * n + i]).sum();
    assert!((k.eigenvalues.iter().sum::<f64>() - trace).abs() < 1e-9 * trace);
    let frob: f64 = k.kernel.iter().map(|v| v * v).sum();
    assert!((k.eigenvalues.iter().map(|e| e * e).sum::<f64>() - frob).abs() < 1e-9 * frob);
    let mut v = vec![1.0f64; n];
    let mut lambda = 0.0;
    for _ in 0..500 {
        let kv: Vec<f64> =
            (0..n).map(|i| (0..n).map(|j| k.kernel[i * n + j] * v[j]).sum()).collect();
        let norm = kv.iter().map(|x| x * x).sum::<f64>().sqrt();
        lambda = norm / v.iter().map(|x| x * x).sum::<f64>().sqrt();
        v = kv.iter().map(|x| x / norm).collect();
    }
    assert!((lambda - k.eigenvalues[0]).abs() < 1e-8 * lambda, "{lambda} vs {}", k.eigenvalues[0]);
    assert!(k.eigenvalues.windows(2).all(|p| p[0] >= p[1]));
}

#[test]
fn the_jit_and_the_interpreter_give_the_same_spectrum() {
    let dir = scratch("ntk");
    let run = |backend: &str| {
        let out = dir.join(format!("{backend}.csv"));
        let args = ["ntk", "examples/digits_mlp.nn", "--examples", "32", "--backend", backend];
        let (code, said, err) = nnc(&[&args[..], &["--out", out.to_str().unwrap()]].concat());
        assert_eq!(code, 0, "{err}");
        assert!(
            said.contains("empirical NTK on 32 examples: 10 outputs, 9610 parameters"),
            "{said}"
        );
        let (head, rows) = csv_table(&std::fs::read_to_string(&out).unwrap());
        assert_eq!(head, ["index", "eigenvalue"]);
        rows.iter().map(|r| r[1].parse::<f64>().unwrap()).collect::<Vec<f64>>()
    };
    let (jit, interp) = (run("jit"), run("interp"));
    assert_eq!(jit.len(), 32);
    for (a, b) in jit.iter().zip(&interp) {
        assert!((a - b).abs() <= 1e-4 * jit[0], "{a} vs {b}");
    }
}

/// A model with convolutions takes the general way (a run per example and output); the JIT
/// and the interpreter agree there too.
#[test]
fn a_convolutional_model_takes_the_jacobian_row_by_row() {
    let run = |backend: &str| {
        let args = ["ntk", "examples/lenet_digits.nn", "--examples", "3", "--backend", backend];
        let (code, said, err) = nnc(&args);
        assert_eq!(code, 0, "{err}");
        assert!(said.contains("the Jacobian by 30 runs of one example"), "{said}");
        let line = said.lines().find(|l| l.trim_start().starts_with("trace")).unwrap().to_string();
        line.split_whitespace().last().unwrap().parse::<f64>().unwrap()
    };
    let (jit, interp) = (run("jit"), run("interp"));
    assert!((jit - interp).abs() <= 1e-4 * jit, "{jit} vs {interp}");
}
