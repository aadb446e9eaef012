//! `nnc ntk`: the empirical neural tangent kernel of given (or initial) weights on the first
//! examples of the training split (`nnc::study::ntk`): its eigenvalues, trace and condition
//! number printed, the eigenvalues written as CSV (`--out`: `index,eigenvalue`, descending)
//! and drawn (`--plot`, log scale).

use std::path::PathBuf;

use nnc::graph::eval::{eval, Env};
use nnc::graph::Role;
use nnc::plot::{Figure, Lines, Series};
use nnc::study::ntk;
use nnc::tensor::Tensor;
use nnc::train::report::{csv_f64, sig};
use nnc::train::{data, session};

use super::{base_dir, check_outputs, compile_to_evaluate, default_threads, positive, run_spec};
use super::{draw, write_text};
use super::{thread_count, BackendArg, Failure, RunArgs};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The model file (.nn).
    file: PathBuf,
    /// The weights (default: the initialization of the file's seed).
    #[arg(long, value_name = "W.safetensors")]
    weights: Option<PathBuf>,
    /// The first N examples of the training split.
    #[arg(long, default_value_t = 256, value_parser = positive)]
    examples: usize,
    /// Write the eigenvalues here (index, eigenvalue; descending).
    #[arg(long, value_name = "FILE.csv")]
    out: Option<PathBuf>,
    /// Draw the eigenvalues (log scale) here.
    #[arg(long, value_name = "FILE.svg|FILE.png")]
    plot: Option<PathBuf>,
    /// The engine of the Jacobian's products: the JIT, or the reference interpreter.
    #[arg(long, value_enum, default_value = "jit")]
    backend: BackendArg,
    /// Threads of the JIT.
    #[arg(long, default_value_t = default_threads(), value_parser = thread_count)]
    threads: usize,
    #[command(flatten)]
    run: RunArgs,
}

/// Five significant digits, with an exponent for large and small values.
fn show(x: f64) -> String {
    match x.abs() {
        a if a != 0.0 && !(1e-3..1e4).contains(&a) => format!("{x:.4e}"),
        _ => sig(x, 5),
    }
}

pub(crate) fn run(a: Args) -> Result<(), Failure> {
    let c = compile_to_evaluate(&a.file, &a.run, a.weights.as_deref())?;
    let inputs = [("--weights", &a.weights)];
    check_outputs(&a.file, &c, &a.run, &inputs, &[("--out", &a.out), ("--plot", &a.plot)])?;
    let model = &c.model;
    let Some((mut g, out_shape)) = ntk::vjp_graph(model) else {
        return Err(Failure::Message("the model's loss has no prediction to differentiate".into()));
    };
    let spec = run_spec(&c, &a.run);
    let ds = session::load_data(model, &spec, base_dir(&a.file), a.run.data.as_deref())?;
    let (train, _) = data::split(ds, spec.validation, spec.split_seed());
    let n = a.examples.min(train.len());
    let w = session::initial_weights(model, spec.seed, a.weights.as_deref())?;
    let outputs: usize = out_shape.iter().product();
    let params: usize = model.param_count();
    let started = std::time::Instant::now();
    let (x, y) = (train.x.rows(0, n), train.y.rows(0, n));
    let factors = ntk::factors(&mut g);
    // Runs the graph on one set of inputs and returns all its outputs.
    let mut engine: Box<dyn FnMut(&[Tensor<f32>]) -> nnc::error::Result<Vec<Tensor<f32>>>> = match a
        .backend
    {
        BackendArg::Interp => {
            let (g, w) = (&g, &w);
            Box::new(move |inputs| {
                let env = Env { inputs, params: &w.params, states: &w.buffers, lr: 0.0, step: 0.0 };
                Ok(eval(g, &env)?.outputs)
            })
        }
        BackendArg::Jit => {
            use nnc::error::Error;
            let mut jit = nnc::jit::compile(&g, &g, a.threads).map_err(Error::from)?;
            jit.set_params(&w.params).map_err(Error::from)?;
            jit.set_states(&w.buffers).map_err(Error::from)?;
            Box::new(move |inputs| Ok(jit.step_full(inputs, 0.0, 0)?))
        }
    };
    let (k, how) = match &factors {
        Some((factors, nodes)) => {
            let first = g.outputs.len() - nodes.len();
            let k = ntk::factored(factors, nodes, n, outputs, |v| {
                let inputs = session::inputs_for(model, x.clone(), y.clone());
                let out = engine(&[inputs, vec![v]].concat())?;
                Ok(out[first..].to_vec())
            })?;
            (k, format!("factored per layer, {outputs} runs of the batch"))
        }
        None => {
            let grads: Vec<usize> = (0..g.params.len() as u32)
                .map(|i| g.output_of(Role::Grad(i)).expect("a gradient"))
                .collect();
            let rows = ntk::rows(model, &x, outputs, |inputs| {
                let out = engine(inputs)?;
                Ok(grads.iter().map(|&i| out[i].clone()).collect())
            })?;
            let how = format!("the Jacobian by {} runs of one example", n * outputs);
            (ntk::kernel(&rows, n, outputs * params), how)
        }
    };
    let secs = started.elapsed().as_secs_f64();
    let started = std::time::Instant::now();
    let k = ntk::Ntk::new(k, n);
    let eig_secs = started.elapsed().as_secs_f64();
    let trace: f64 = (0..n).map(|i| k.kernel[i * n + i]).sum();
    println!(
        "empirical NTK on {n} examples: {outputs} outputs, {params} parameters \
         (Θ = Σ_c J_c·J_cᵀ, {n}x{n}, {how}; {:.1} ms)",
        secs * 1e3
    );
    let top: Vec<String> = k.eigenvalues.iter().take(5).map(|e| show(*e)).collect();
    println!("  largest eigenvalues  {}", top.join("  "));
    println!("  smallest eigenvalue  {}", show(*k.eigenvalues.last().unwrap_or(&f64::NAN)));
    println!("  condition number     {}", show(k.condition()));
    println!("  trace                {}", show(trace));
    println!("  (eigenvalues in {:.1} ms)", eig_secs * 1e3);
    if let Some(p) = &a.out {
        let mut text = String::from("index,eigenvalue\n");
        for (i, e) in k.eigenvalues.iter().enumerate() {
            text += &format!("{},{}\n", i + 1, csv_f64(*e));
        }
        write_text(p, &text)?;
    }
    if let Some(p) = &a.plot {
        let points = k.eigenvalues.iter().enumerate().map(|(i, e)| ((i + 1) as f64, *e)).collect();
        let series = vec![Series { label: String::new(), points }];
        let title = format!("NTK eigenvalues on {n} examples");
        let lines = Lines {
            title,
            x_label: "index".into(),
            y_label: "eigenvalue".into(),
            series,
            log_x: true,
            log_y: true,
        };
        draw(p, &Figure::Lines(lines))?;
    }
    Ok(())
}
