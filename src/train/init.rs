//! Parameter initialization: every [`Init`] as docs/methods.md#initializers and PyTorch
//! define it, drawn from one ChaCha8 stream per run ([`init_params`]: seeded from the run's
//! seed, parameters in declaration order, elements in row-major order), so the initial
//! weights are a pure function of the model and the seed, identical on every platform.
//!
//! Sampling is done in f64 and rounded to f32 once. The rules, one per variant
//! (`fi`, `fo` = the parameter's fan-in/fan-out):
//!
//! | init                   | distribution                                              |
//! | ---------------------- | --------------------------------------------------------- |
//! | default                | `U(±1/√fi)` (0 when fi = 0) [torch.nn.Linear]             |
//! | zeros, ones, constant  | `0`, `1`, `c`                                             |
//! | normal(μ, σ)           | `μ + σ·N(0,1)`                                            |
//! | uniform(a, b)          | `U[a, b)`                                                 |
//! | truncated_normal(μ, σ) | `μ + σ·z`, `z ~ N(0,1)` redrawn while `|z| > 2`           |
//! | xavier_uniform(g)      | `U(±g·√(6/(fi+fo)))`                                      |
//! | xavier_normal(g)       | `N(0, g²·2/(fi+fo))`                                      |
//! | he_uniform / he_normal | `U(±√(6/fi))` / `N(0, 2/fi)` [kaiming_*, relu, fan_in]    |
//! | lecun_uniform / normal | `U(±√(3/fi))` / `N(0, 1/fi)`                              |
//! | orthogonal(g)          | `g·Q`, Q from the QR of a Gaussian `[rows, cols]` matrix, signs fixed by diag(R) [orthogonal_] |
//! | identity               | ones on the diagonal of `[rows, cols]`, zeros elsewhere   |
//! | delta_orthogonal(g)    | `[out, in, taps...]`: `g·Q` (orthogonal `[out, in]`) at the centre tap `⌊(k−1)/2⌋` of every tap axis, 0 elsewhere; a `[out, in]` weight (one tap) is `orthogonal(g)`, draw for draw |
//! | fixup(L, m)            | `N(0, 2/fi)·L^(−1/(2m−2))` (He normal, scaled)            |
//! | lsuv                   | orthogonal(1); `train::lsuv` then rescales it on data     |
//! | row norm of `v`        | `‖v_i‖₂` per row `i`, after every other parameter (weight_norm's `g`) |
//!
//! `rows` is the first dimension and `cols` the product of the others (a scalar is `[1,1]`,
//! a vector `[1, n]`), as PyTorch's `orthogonal_` flattens. A zero fan gives a zero bound.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use crate::check::model::{Init, ParamDef};
use crate::tensor::Tensor;

/// The initial values of every parameter, in order, from one ChaCha8 stream seeded with
/// `seed` (the same stream as `data::rng(seed, Stream::Init, 0)`).
pub fn init_params(params: &[ParamDef], seed: u64) -> Vec<Tensor<f32>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out: Vec<Tensor<f32>> = params.iter().map(|p| init_param(p, &mut rng)).collect();
    for (i, p) in params.iter().enumerate() {
        if let Init::RowNormOf { param } = p.init {
            out[i] = row_norms(&out[param as usize], &p.shape);
        }
    }
    out
}

/// The 2-norm of each row of `v` (first dimension), shaped `shape` (`[rows, 1]`).
fn row_norms(v: &Tensor<f32>, shape: &[usize]) -> Tensor<f32> {
    let rows = v.shape.first().copied().unwrap_or(1).max(1);
    let cols = v.data.len() / rows;
    let norms = (0..rows)
        .map(|r| {
            let row = &v.data[r * cols..(r + 1) * cols];
            row.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt() as f32
        })
        .collect();
    Tensor::new(shape.to_vec(), norms)
}

/// One parameter's initial value, drawing from `rng`. A row norm of another parameter
/// (`Init::RowNormOf`) is zeros here: [`init_params`] fills it in.
pub fn init_param(p: &ParamDef, rng: &mut ChaCha8Rng) -> Tensor<f32> {
    let n: usize = p.shape.iter().product();
    let (fi, fo) = (p.fan_in as f64, p.fan_out as f64);
    // Each value is drawn in f64 and rounded to f32 at once: no f64 copy of the parameter.
    let round = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<f32>>();
    let values: Vec<f32> = match p.init {
        Init::Default => uniform(n, bound(1.0, fi), rng),
        Init::Zeros => vec![0.0; n],
        Init::Ones => vec![1.0; n],
        Init::Constant(c) => vec![c as f32; n],
        Init::Normal { mean, std } => draws(n, || mean + std * normal(rng)),
        Init::Uniform { low, high } => draws(n, || low + (high - low) * rng.random::<f64>()),
        Init::TruncatedNormal { mean, std } => draws(n, || mean + std * truncated_normal(rng)),
        Init::XavierUniform { gain } => uniform(n, gain * bound(6.0, fi + fo), rng),
        Init::XavierNormal { gain } => gaussian(n, gain * bound(2.0, fi + fo), rng),
        Init::HeUniform => uniform(n, bound(6.0, fi), rng),
        Init::HeNormal => gaussian(n, bound(2.0, fi), rng),
        Init::LecunUniform => uniform(n, bound(3.0, fi), rng),
        Init::LecunNormal => gaussian(n, bound(1.0, fi), rng),
        Init::Orthogonal { gain } => {
            let (rows, cols) = matrix_dims(&p.shape);
            orthogonal(rows, cols, rng).into_iter().map(|v| (gain * v) as f32).collect()
        }
        // He normal scaled by L^(−1/(2m−2))
        Init::Fixup { branches, layers } => {
            let scale = (branches as f64).powf(-1.0 / (2.0 * layers as f64 - 2.0));
            gaussian(n, bound(2.0, fi) * scale, rng)
        }
        Init::Lsuv => {
            let (rows, cols) = matrix_dims(&p.shape);
            round(orthogonal(rows, cols, rng))
        }
        Init::DeltaOrthogonal { gain } => round(delta_orthogonal(&p.shape, gain, rng)),
        Init::RowNormOf { .. } => vec![0.0; n],
        Init::Identity => {
            let (_, cols) = matrix_dims(&p.shape);
            (0..n).map(|i| if i / cols.max(1) == i % cols.max(1) { 1.0 } else { 0.0 }).collect()
        }
    };
    Tensor::new(p.shape.clone(), values)
}

/// `n` values of `draw()`, each rounded to f32.
fn draws(n: usize, mut draw: impl FnMut() -> f64) -> Vec<f32> {
    (0..n).map(|_| draw() as f32).collect()
}

/// A kernel `[out, in, taps...]` that is zero but at its centre tap (index `⌊(k − 1)/2⌋`
/// along every tap axis), where it holds `gain·Q`, `Q` the `[out, in]` draw of
/// [`orthogonal`]. With no tap axes this is `gain·Q` itself (a Dense weight).
fn delta_orthogonal(shape: &[usize], gain: f64, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let (out, inp, taps) = match shape {
        [o, i, taps @ ..] => (*o, *i, taps),
        _ => (matrix_dims(shape).0, matrix_dims(shape).1, &[][..]),
    };
    let area: usize = taps.iter().product();
    if area == 0 {
        return Vec::new();
    }
    // Row-major offset of the centre tap inside one [taps...] block.
    let centre = taps.iter().fold(0, |acc, &k| acc * k + (k - 1) / 2);
    let mut w = vec![0.0; out * inp * area];
    for (k, q) in orthogonal(out, inp, rng).into_iter().enumerate() {
        w[k * area + centre] = gain * q;
    }
    w
}

/// `√(k/fan)`, or 0 for a zero fan.
fn bound(k: f64, fan: f64) -> f64 {
    if fan > 0.0 {
        (k / fan).sqrt()
    } else {
        0.0
    }
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    rng.sample(StandardNormal)
}

/// `n` draws of `U(−a, a)`.
fn uniform(n: usize, a: f64, rng: &mut ChaCha8Rng) -> Vec<f32> {
    draws(n, || a * (2.0 * rng.random::<f64>() - 1.0))
}

/// `n` draws of `N(0, std²)`.
fn gaussian(n: usize, std: f64, rng: &mut ChaCha8Rng) -> Vec<f32> {
    draws(n, || std * normal(rng))
}

/// `z ~ N(0,1)` conditioned on `|z| <= 2` by redrawing.
fn truncated_normal(rng: &mut ChaCha8Rng) -> f64 {
    loop {
        let z = normal(rng);
        if z.abs() <= 2.0 {
            return z;
        }
    }
}

/// `(rows, cols)` as PyTorch flattens a tensor for `orthogonal_`/`eye_`.
fn matrix_dims(shape: &[usize]) -> (usize, usize) {
    match shape {
        [] => (1, 1),
        [n] => (1, *n),
        [rows, rest @ ..] => (*rows, rest.iter().product()),
    }
}

/// A `[rows, cols]` row-major matrix with orthonormal rows (rows <= cols) or columns
/// (rows >= cols), distributed as PyTorch's `orthogonal_`: draw a Gaussian `[rows, cols]`,
/// transpose it when `rows < cols`, take Q of its QR with `Q·sign(diag R)`, transpose back.
pub(crate) fn orthogonal(rows: usize, cols: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
    if rows == 0 || cols == 0 {
        return Vec::new();
    }
    let g: Vec<f64> = (0..rows * cols).map(|_| normal(rng)).collect();
    if rows >= cols {
        return thin_q(g, rows, cols);
    }
    let q = thin_q(transpose(&g, rows, cols), cols, rows);
    transpose(&q, cols, rows)
}

/// The `[c, r]` transpose of a row-major `[r, c]` matrix.
fn transpose(a: &[f64], r: usize, c: usize) -> Vec<f64> {
    (0..c * r).map(|k| a[(k % r) * c + k / r]).collect()
}

/// Q (`[m, n]`, orthonormal columns) of the thin QR of `a` (`[m, n]` row-major, `m >= n`) by
/// Householder reflections, with each column multiplied by the sign of `R`'s diagonal entry
/// (so `R`'s diagonal is positive, which makes Q unique).
fn thin_q(mut a: Vec<f64>, m: usize, n: usize) -> Vec<f64> {
    let mut reflectors = Vec::with_capacity(n);
    let mut signs = Vec::with_capacity(n);
    for k in 0..n {
        // H_k = I − 2vvᵀ/(vᵀv) maps a[k.., k] to (α, 0, …), α = −sign(x₀)‖x‖ = R_kk.
        let mut v: Vec<f64> = (k..m).map(|i| a[i * n + k]).collect();
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        let alpha = if v[0] >= 0.0 { -norm } else { norm };
        v[0] -= alpha;
        reflect(&mut a, n, k, k, &v);
        signs.push(if alpha < 0.0 { -1.0 } else { 1.0 });
        reflectors.push(v);
    }
    // Q = H_0 H_1 … H_{n−1} applied to the first n columns of the identity.
    let mut q = vec![0.0; m * n];
    for j in 0..n {
        q[j * n + j] = 1.0;
    }
    for (k, v) in reflectors.iter().enumerate().rev() {
        reflect(&mut q, n, k, 0, v);
    }
    for (i, x) in q.iter_mut().enumerate() {
        *x *= signs[i % n];
    }
    q
}

/// Applies `I − 2vvᵀ/(vᵀv)` to rows `k..` and columns `from..` of the row-major `[_, n]`
/// matrix `a` (`v` has one entry per row from `k`); a zero `v` is the identity.
fn reflect(a: &mut [f64], n: usize, k: usize, from: usize, v: &[f64]) {
    let vv: f64 = v.iter().map(|x| x * x).sum();
    if vv == 0.0 {
        return;
    }
    for j in from..n {
        let s: f64 = v.iter().enumerate().map(|(i, vi)| vi * a[(k + i) * n + j]).sum();
        let f = 2.0 * s / vv;
        for (i, vi) in v.iter().enumerate() {
            a[(k + i) * n + j] -= f * vi;
        }
    }
}

#[cfg(test)]
mod tests;
