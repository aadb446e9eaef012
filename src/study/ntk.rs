//! The empirical neural tangent kernel (`nnc ntk`; Jacot et al., "Neural Tangent Kernel",
//! NeurIPS 2018): `Θ(x, x') = Σ_c J_c(x)·J_c(x')ᵀ`, `J_c(x)` the gradient of output `c` of the
//! model's prediction at `x` with respect to every parameter, on a set of examples. The sum
//! over the outputs is neural-tangents' default (`trace_axes=(-1,)`): an `N × N` kernel.
//!
//! The Jacobian is derived by the compiler: the model is lowered in evaluation mode with its
//! prediction `f` (`[B, C]`), a cotangent input `V` of `f`'s shape is added, and autodiff of
//! `Σ V ⊙ f` gives `Σ_i Σ_c V_ic·∇f_ic`, the vector-Jacobian product ([`vjp_graph`]).
//!
//! Factored (the default, [`factors`]): in that gradient graph a Dense weight's gradient is
//! `δᵀ·a` and its bias's `Σ_i δ_i`, with `a` the layer's input `[B, in]` and `δ` the gradient
//! of its output `[B, out]`, per example. One run of the whole batch with `V = e_c` for every
//! example gives every layer's `δ^c` (examples do not mix in evaluation mode), so `C` runs
//! give the kernel without forming `J`: each weight adds `(A·Aᵀ) ⊙ Σ_c D_c·D_cᵀ` and each
//! bias `Σ_c D_c·D_cᵀ` (`∂f_c/∂W = δ^c ⊗ a` per example). A model with any other parameter
//! (a convolution, a normalization) takes the general way ([`rows`]): a batch of one example
//! and `V = e_c` is row `(i, c)` of `J`, `N·C` runs fill it (`f32`), and the kernel is one
//! matrix product `R·Rᵀ`, row `i` of `R` holding example `i`'s `C` gradients end to end.
//! The eigenvalues come from a dense symmetric eigen-decomposition in `f64`.

use crate::check::Model;
use crate::graph::{Graph, InputKind, NodeId, Op, Output, Role};
use crate::lower::{self, LowerOptions, Mode};
use crate::tensor::Tensor;

/// The vector-Jacobian product graph of `model`'s prediction: inputs the model's, then the
/// cotangent `ntk.cotangent`; outputs `Σ V ⊙ f`, then one gradient per parameter. `None` for
/// a model without a prediction (no loss of a prediction).
pub fn vjp_graph(model: &Model) -> Option<(Graph, Vec<usize>)> {
    let o = LowerOptions { mode: Mode::Eval, probes: false, prediction: true };
    let mut g = lower::lower_with(model, o);
    let f = g.outputs[g.output_of(Role::Prediction)?].node;
    let shape = g.shape(f).clone();
    let out_shape = shape.concrete(1)[1..].to_vec();
    let v = g.add_input("ntk.cotangent", shape, InputKind::Targets);
    let prod = g.mul(f, v);
    let s = g.sum_all(prod);
    g.outputs = vec![Output { name: "ntk.vjp".into(), node: s, role: Role::Loss }];
    let stable = crate::passes::optimize(&g);
    let grad = crate::autodiff::backward(&stable);
    Some((crate::passes::optimize(grad.graph()), out_shape))
}

/// The kernel and its spectrum.
#[derive(Clone, Debug)]
pub struct Ntk {
    /// `N × N`, row-major.
    pub kernel: Vec<f64>,
    pub n: usize,
    /// Descending.
    pub eigenvalues: Vec<f64>,
}

impl Ntk {
    /// The kernel `kernel` (`n × n`, symmetric) and its eigenvalues.
    pub fn new(kernel: Vec<f64>, n: usize) -> Ntk {
        let m = nalgebra::DMatrix::from_row_slice(n, n, &kernel);
        let mut eigenvalues: Vec<f64> =
            nalgebra::SymmetricEigen::new(m).eigenvalues.iter().copied().collect();
        eigenvalues.sort_by(|a, b| b.total_cmp(a));
        Ntk { kernel, n, eigenvalues }
    }
    /// The largest eigenvalue over the smallest (infinite if the smallest is not positive).
    pub fn condition(&self) -> f64 {
        let (hi, lo) = (self.eigenvalues[0], *self.eigenvalues.last().expect("one example"));
        if lo > 0.0 {
            hi / lo
        } else {
            f64::INFINITY
        }
    }
}

/// `Θ = R·Rᵀ` (`n × n`, row-major) of the Jacobian rows `rows` (`n` examples, each `width`
/// values: its outputs' gradients end to end), in f32 products summed as the GEMM does.
pub fn kernel(rows: &[f32], n: usize, width: usize) -> Vec<f64> {
    let mut k = vec![0.0f32; n * n];
    crate::jit::gemm::matmul(n, n, width, rows, false, rows, true, &mut k, false);
    symmetric(k.iter().map(|v| *v as f64).collect(), n)
}

/// The Jacobian rows of `x` (`N` examples): `run(inputs)` evaluates the graph of
/// [`vjp_graph`] on one example's inputs and returns its gradients in parameter order;
/// `outputs` is the prediction's per-example size `C`.
pub fn rows(
    model: &Model,
    x: &Tensor<f32>,
    outputs: usize,
    mut run: impl FnMut(&[Tensor<f32>]) -> crate::error::Result<Vec<Tensor<f32>>>,
) -> crate::error::Result<Vec<f32>> {
    let n = x.shape[0];
    let mut out = Vec::new();
    for i in 0..n {
        let xi = x.rows(i, i + 1);
        for c in 0..outputs {
            let mut e = vec![0.0f32; outputs];
            e[c] = 1.0;
            let mut inputs: Vec<Tensor<f32>> = model
                .inputs
                .iter()
                .map(|inp| match inp.is_label {
                    false => xi.clone(),
                    // The label is an input the gradients do not read.
                    true => Tensor::full(inp.shape.concrete(1), 0.0),
                })
                .collect();
            inputs.push(Tensor::new(vec![1, outputs], e));
            for g in run(&inputs)? {
                out.extend_from_slice(&g.data);
            }
        }
    }
    Ok(out)
}

/// How a parameter's gradient factors over the examples: the nodes of `δ` (and `a`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Factor {
    /// `δᵀ·a`: a Dense weight.
    Weight { delta: NodeId, input: NodeId },
    /// `Σ_i δ_i`: a bias.
    Bias { delta: NodeId },
}

/// Each parameter's factors in the gradient graph `g` of [`vjp_graph`], if every parameter
/// has them; the graph gains an output per factor node (`ntk.factor.<node>`), in the
/// returned order of nodes.
pub fn factors(g: &mut Graph) -> Option<(Vec<Factor>, Vec<NodeId>)> {
    let batch_first = |g: &Graph, n: NodeId| {
        g.shape(n).dims().first() == Some(&crate::graph::Dim::Batch) && g.shape(n).rank() == 2
    };
    let mut found = Vec::new();
    for i in 0..g.params.len() as u32 {
        let mut n = g.outputs[g.output_of(Role::Grad(i))?].node;
        if g.node(n).op == Op::Reshape {
            n = g.node(n).args[0];
        }
        let node = g.node(n);
        let f = match node.op {
            Op::MatMul { ta: true, tb: false } if node.args.iter().all(|&a| batch_first(g, a)) => {
                Factor::Weight { delta: node.args[0], input: node.args[1] }
            }
            Op::ReduceSum(ax)
                if ax.contains(0) && !ax.contains(1) && batch_first(g, node.args[0]) =>
            {
                Factor::Bias { delta: node.args[0] }
            }
            _ => return None,
        };
        found.push(f);
    }
    let mut nodes: Vec<NodeId> = Vec::new();
    for f in &found {
        let ns = match *f {
            Factor::Weight { delta, input } => vec![delta, input],
            Factor::Bias { delta } => vec![delta],
        };
        for n in ns {
            if !nodes.contains(&n) {
                nodes.push(n);
                g.add_output_as(Role::Probe, format!("ntk.factor.{}", n.index()), n);
            }
        }
    }
    Some((found, nodes))
}

/// The kernel from the factors: `run(v)` runs the graph of [`factors`] on the whole batch
/// with the cotangent `v` (`[N, C]`) and returns the factor nodes' values in their order.
pub fn factored(
    factors: &[Factor],
    nodes: &[NodeId],
    n: usize,
    outputs: usize,
    mut run: impl FnMut(Tensor<f32>) -> crate::error::Result<Vec<Tensor<f32>>>,
) -> crate::error::Result<Vec<f64>> {
    let gram = |t: &Tensor<f32>| {
        let width = t.data.len() / n;
        let mut k = vec![0.0f32; n * n];
        crate::jit::gemm::matmul(n, n, width, &t.data, false, &t.data, true, &mut k, false);
        k
    };
    let at = |node: NodeId| nodes.iter().position(|m| *m == node).expect("a factor node");
    let is_delta: Vec<bool> = nodes
        .iter()
        .map(|m| factors.iter().any(|f| matches!(*f, Factor::Weight { delta, .. } | Factor::Bias { delta } if delta == *m)))
        .collect();
    let is_input: Vec<bool> = nodes
        .iter()
        .map(|m| factors.iter().any(|f| matches!(*f, Factor::Weight { input, .. } if input == *m)))
        .collect();
    // Σ_c D_c·D_cᵀ of each δ, and A·Aᵀ of each weight's input (the same for every c).
    let mut deltas: Vec<Vec<f64>> = vec![vec![0.0; n * n]; nodes.len()];
    let mut inputs: Vec<Vec<f32>> = vec![Vec::new(); nodes.len()];
    for c in 0..outputs {
        let v: Vec<f32> =
            (0..n * outputs).map(|e| if e % outputs == c { 1.0 } else { 0.0 }).collect();
        let values = run(Tensor::new(vec![n, outputs], v))?;
        for (k, t) in values.iter().enumerate() {
            if is_delta[k] {
                for (s, v) in deltas[k].iter_mut().zip(gram(t)) {
                    *s += v as f64;
                }
            }
            if is_input[k] && c == 0 {
                inputs[k] = gram(t);
            }
        }
    }
    let mut kernel = vec![0.0f64; n * n];
    for f in factors {
        match *f {
            Factor::Weight { delta, input } => {
                let (d, a) = (&deltas[at(delta)], &inputs[at(input)]);
                for e in 0..n * n {
                    kernel[e] += a[e] as f64 * d[e];
                }
            }
            Factor::Bias { delta } => {
                for (k, d) in kernel.iter_mut().zip(&deltas[at(delta)]) {
                    *k += d;
                }
            }
        }
    }
    Ok(symmetric(kernel, n))
}

/// `k` made exactly symmetric: the mean of it and its transpose (rounding aside, it is).
fn symmetric(k: Vec<f64>, n: usize) -> Vec<f64> {
    (0..n * n).map(|e| (k[e] + k[(e % n) * n + e / n]) / 2.0).collect()
}
