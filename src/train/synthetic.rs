//! Built-in synthetic data sets, so every example runs with no download. Each generator is
//! a pure function of `(n, noise, shape, seed)`: it draws from the seed's
//! [`Stream::Synthetic`] ChaCha8 stream only, so the same call gives the same examples on
//! every platform.
//!
//! | set     | features | label                    | definition                                   |
//! | ------- | -------- | ------------------------ | -------------------------------------------- |
//! | xor     | 2        | classes(2) or targets(1) | corner `(±1, ±1)` + `noise·N(0,1)`; label = (x₀>0) xor (x₁>0) of the corner |
//! | spirals | 2        | classes(C)               | CS231n: arm j, `r = linspace(0,1)`, `t = linspace(4j, 4j+4) + noise·N(0,1)`, `(r sin t, r cos t)` |
//! | moons   | 2        | classes(2) or targets(1) | sklearn `make_moons`: outer `(cos s, sin s)`, inner `(1−cos s, ½−sin s)`, `s = linspace(0,π)`, + `noise·N(0,1)` |
//! | blobs   | F        | classes(C)               | centres `U[−5,5]^F`; points centre + `(1+noise)·N(0,1)` |
//! | teacher | F        | targets(T)               | `x ~ N(0,1)^F`; `y = W₂ tanh(W₁x + b₁) + b₂ + noise·N(0,1)`, F-32-T, all weights and biases `N(0, 1/fan_in)` |
//! | random  | F        | classes(C) or targets(T) | `x ~ N(0,1)^F` (uniform ids for an id input); class uniform in `0..C`, or `y ~ N(0,1)^T`, drawn example by example; noise unused; for benchmarks |
//! | tokens  | T ids    | classes(C)               | for an id input `class[B, T] of V`: class j owns ids `{v : v mod C = j}`; each token uniform over `0..V` with probability `noise`, else uniform over the class's ids |
//! | linear  | F        | targets(T)               | `x ~ N(0,1)^F`; `y = A x + noise·N(0,1)`, `A = U diag(s) Vᵀ` (`[T, F]`), `s_k = 8·2^−k` for `k < min(F, T)`, U, V orthonormal columns from [`orthogonal`] |
//!
//! Classes are balanced (class j gets `n/C` examples, the first `n mod C` one more), and
//! the examples are then put in a seeded random order, as sklearn's `shuffle=True` does. A
//! targets(1) label of xor or moons holds the class as a 0/1 float. The teacher's weights
//! are drawn first, so the teacher depends on the seed and shapes only, not on `n` (the
//! linear teacher too: U, then V, then the examples). Random
//! examples are neither balanced nor shuffled: each is an independent draw (features then
//! label), computed in f32 directly so a large benchmark set needs no f64 copy.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use super::data::{rng, shuffle, DataError, DataShape, Dataset, LabelSpec, Stream};
use super::init::orthogonal;
use crate::check::model::Synthetic;
use crate::tensor::Tensor;

/// Width of the teacher MLP's hidden layer.
pub const TEACHER_HIDDEN: usize = 32;

/// `n` examples of `kind` shaped as `want` asks, or an error when the set cannot produce it.
pub fn generate(
    kind: Synthetic,
    n: usize,
    noise: f64,
    want: &DataShape,
    seed: u64,
) -> Result<Dataset, DataError> {
    generate_with(kind, n, noise, want, None, seed)
}

/// [`generate`] for an input that may hold ids: with `ids = Some(V)` the features are
/// integer ids in `0..V` (only `tokens` and `random` make them; `tokens` needs them).
pub fn generate_with(
    kind: Synthetic,
    n: usize,
    noise: f64,
    want: &DataShape,
    ids: Option<usize>,
    seed: u64,
) -> Result<Dataset, DataError> {
    let fail = |message: String| DataError::Synthetic { kind, message };
    if n == 0 {
        return Err(fail("needs at least one example (n >= 1)".into()));
    }
    if !(noise.is_finite() && noise >= 0.0) {
        return Err(fail(format!("noise must be a finite number >= 0, not {noise}")));
    }
    fits(kind, want).map_err(fail)?;
    // The examples as f32, twice (the data set and its training split), before any is made.
    let labels = match want.label {
        LabelSpec::Classes(_) => 1,
        LabelSpec::Targets(t) => t,
    };
    let needed = (n as u64).saturating_mul((want.feature_count() + labels) as u64 * 8);
    let available = crate::files::available_memory();
    if needed > available {
        let m = format!("n = {n} needs {needed} bytes of memory, and {available} are available");
        return Err(fail(m));
    }
    let rng = &mut rng(seed, Stream::Synthetic, 0);
    match (kind, ids, want.label) {
        (Synthetic::Tokens, Some(v), LabelSpec::Classes(c)) => {
            if noise > 1.0 {
                let m =
                    format!("noise is the probability of a random token: at most 1, not {noise}");
                return Err(fail(m));
            }
            if v < c {
                let m =
                    format!("gives each of {c} classes its own ids, but there are only {v} ids");
                return Err(fail(m));
            }
            let (xs, y) = tokens(n, want.feature_count(), v, c, noise, rng);
            return Ok(shuffled(n, want, xs, y, rng));
        }
        (Synthetic::Random, Some(_), label) => return Ok(random(n, want, label, ids, rng)),
        (Synthetic::Tokens, _, _) => {
            return Err(fail("makes ids: the model's input must be `class[B, T] of V`".into()))
        }
        (_, Some(_), _) => {
            return Err(fail("makes real-valued features, but the model's input holds ids".into()))
        }
        _ => {}
    }
    let f = want.feature_count();
    let (xs, y) = match (kind, want.label) {
        (Synthetic::Xor, _) => xor(n, noise, rng),
        (Synthetic::Spirals, LabelSpec::Classes(c)) => spirals(n, c, noise, rng),
        (Synthetic::Moons, _) => moons(n, noise, rng),
        (Synthetic::Blobs, LabelSpec::Classes(c)) => blobs(n, f, c, noise, rng),
        (Synthetic::Teacher, LabelSpec::Targets(t)) => {
            let y = teacher(n, f, t, noise, rng);
            return Ok(Dataset { x: x_tensor(n, want, y.0), y: Tensor::new(vec![n, t], y.1) });
        }
        (Synthetic::Random, label) => return Ok(random(n, want, label, None, rng)),
        (Synthetic::Linear, LabelSpec::Targets(t)) => {
            let y = linear(n, f, t, noise, rng);
            return Ok(Dataset { x: x_tensor(n, want, y.0), y: Tensor::new(vec![n, t], y.1) });
        }
        (_, label) => return Err(fail(format!("cannot produce {}", label_text(label)))),
    };
    Ok(shuffled(n, want, xs, y, rng))
}

/// Whether `kind` can produce `want`; the message says what it needs otherwise.
fn fits(kind: Synthetic, want: &DataShape) -> Result<(), String> {
    let f = want.feature_count();
    let two = || match f {
        2 => Ok(()),
        _ => Err(format!("has 2 features but the model's input wants {f}")),
    };
    match (kind, want.label) {
        (Synthetic::Xor, LabelSpec::Classes(2) | LabelSpec::Targets(1)) => two(),
        (Synthetic::Moons, LabelSpec::Classes(2) | LabelSpec::Targets(1)) => two(),
        (Synthetic::Spirals, LabelSpec::Classes(c)) if c >= 1 => two(),
        (Synthetic::Blobs, LabelSpec::Classes(c)) if c >= 1 && f >= 1 => Ok(()),
        (Synthetic::Teacher | Synthetic::Linear, LabelSpec::Targets(t)) if t >= 1 && f >= 1 => {
            Ok(())
        }
        (Synthetic::Random, LabelSpec::Classes(c) | LabelSpec::Targets(c)) if c >= 1 => Ok(()),
        (Synthetic::Tokens, LabelSpec::Classes(c)) if c >= 1 && f >= 1 => Ok(()),
        (Synthetic::Random, label) => {
            Err(format!("cannot produce {} (needs at least one)", label_text(label)))
        }
        (Synthetic::Xor | Synthetic::Moons, label) => Err(format!(
            "has 2 classes (or one 0/1 target) but the model's label wants {}",
            label_text(label)
        )),
        (Synthetic::Spirals | Synthetic::Blobs | Synthetic::Tokens, label) => {
            Err(format!("has class labels but the model's label wants {}", label_text(label)))
        }
        (Synthetic::Teacher | Synthetic::Linear, label) => {
            Err(format!("has real targets but the model's label wants {}", label_text(label)))
        }
    }
}

fn label_text(label: LabelSpec) -> String {
    match label {
        LabelSpec::Classes(c) => format!("{c} classes"),
        LabelSpec::Targets(t) => format!("{t} targets"),
    }
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    rng.sample(StandardNormal)
}

/// `m` evenly spaced points from `a` to `b` inclusive (`[a]` when `m = 1`), as np.linspace.
fn linspace(a: f64, b: f64, i: usize, m: usize) -> f64 {
    if m <= 1 {
        a
    } else {
        a + (b - a) * i as f64 / (m - 1) as f64
    }
}

/// How many of `n` examples class `j` of `c` gets.
fn class_size(n: usize, c: usize, j: usize) -> usize {
    n / c + usize::from(j < n % c)
}

type Points = (Vec<f64>, Vec<f32>);

fn xor(n: usize, noise: f64, rng: &mut ChaCha8Rng) -> Points {
    let (mut xs, mut y) = (Vec::with_capacity(2 * n), Vec::with_capacity(n));
    for i in 0..n {
        let (a, b) = (i % 2 == 1, (i / 2) % 2 == 1);
        let sign = |s: bool| if s { 1.0 } else { -1.0 };
        xs.push(sign(a) + noise * normal(rng));
        xs.push(sign(b) + noise * normal(rng));
        y.push(f32::from(u8::from(a != b)));
    }
    (xs, y)
}

fn spirals(n: usize, c: usize, noise: f64, rng: &mut ChaCha8Rng) -> Points {
    let (mut xs, mut y) = (Vec::with_capacity(2 * n), Vec::with_capacity(n));
    for j in 0..c {
        let m = class_size(n, c, j);
        for i in 0..m {
            let r = linspace(0.0, 1.0, i, m);
            let t = linspace(4.0 * j as f64, 4.0 * (j + 1) as f64, i, m) + noise * normal(rng);
            xs.extend([r * t.sin(), r * t.cos()]);
            y.push(j as f32);
        }
    }
    (xs, y)
}

fn moons(n: usize, noise: f64, rng: &mut ChaCha8Rng) -> Points {
    let n_out = n / 2;
    let n_in = n - n_out;
    let (mut xs, mut y) = (Vec::with_capacity(2 * n), Vec::with_capacity(n));
    for i in 0..n_out {
        let s = linspace(0.0, std::f64::consts::PI, i, n_out);
        xs.extend([s.cos() + noise * normal(rng), s.sin() + noise * normal(rng)]);
        y.push(0.0);
    }
    for i in 0..n_in {
        let s = linspace(0.0, std::f64::consts::PI, i, n_in);
        xs.extend([1.0 - s.cos() + noise * normal(rng), 0.5 - s.sin() + noise * normal(rng)]);
        y.push(1.0);
    }
    (xs, y)
}

fn blobs(n: usize, f: usize, c: usize, noise: f64, rng: &mut ChaCha8Rng) -> Points {
    let centres: Vec<f64> = (0..c * f).map(|_| rng.random_range(-5.0..5.0)).collect();
    let (mut xs, mut y) = (Vec::with_capacity(f * n), Vec::with_capacity(n));
    for j in 0..c {
        for _ in 0..class_size(n, c, j) {
            xs.extend(centres[j * f..(j + 1) * f].iter().map(|m| m + (1.0 + noise) * normal(rng)));
            y.push(j as f32);
        }
    }
    (xs, y)
}

/// A dense layer's weights `[out, inp]` and bias `[out]`, all `N(0, 1/inp)`.
fn teacher_layer(out: usize, inp: usize, rng: &mut ChaCha8Rng) -> (Vec<f64>, Vec<f64>) {
    let std = 1.0 / (inp as f64).sqrt();
    let w = (0..out * inp).map(|_| std * normal(rng)).collect();
    let b = (0..out).map(|_| std * normal(rng)).collect();
    (w, b)
}

/// `w x + b` for `w: [out, inp]`.
fn affine(w: &[f64], b: &[f64], x: &[f64]) -> Vec<f64> {
    b.iter().zip(w.chunks(x.len())).map(|(b, row)| b + dot(row, x)).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

fn teacher(n: usize, f: usize, t: usize, noise: f64, rng: &mut ChaCha8Rng) -> (Vec<f64>, Vec<f32>) {
    let (w1, b1) = teacher_layer(TEACHER_HIDDEN, f, rng);
    let (w2, b2) = teacher_layer(t, TEACHER_HIDDEN, rng);
    let (mut xs, mut y) = (Vec::with_capacity(f * n), Vec::with_capacity(t * n));
    for _ in 0..n {
        let x: Vec<f64> = (0..f).map(|_| normal(rng)).collect();
        let h: Vec<f64> = affine(&w1, &b1, &x).into_iter().map(f64::tanh).collect();
        let out = affine(&w2, &b2, &h);
        y.extend(out.iter().map(|o| (o + noise * normal(rng)) as f32));
        xs.extend(x);
    }
    (xs, y)
}

/// The `k`-th singular value of the linear teacher, `8·2^−k`: 8, 4, 2, 1, 0.5, ...
pub fn linear_singular_value(k: usize) -> f64 {
    8.0 * 0.5f64.powi(k as i32)
}

/// The linear teacher `A = U diag(s) Vᵀ`, `[t, f]` row-major: `U` (`[t, r]`) and `V`
/// (`[f, r]`) have orthonormal columns, `r = min(t, f)`, `s_k` = [`linear_singular_value`].
fn linear_teacher(f: usize, t: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let r = f.min(t);
    let u = orthogonal(t, r, rng);
    let v = orthogonal(f, r, rng);
    let mut a = vec![0.0; t * f];
    for i in 0..t {
        for j in 0..f {
            a[i * f + j] =
                (0..r).map(|k| u[i * r + k] * linear_singular_value(k) * v[j * r + k]).sum();
        }
    }
    a
}

fn linear(n: usize, f: usize, t: usize, noise: f64, rng: &mut ChaCha8Rng) -> (Vec<f64>, Vec<f32>) {
    let a = linear_teacher(f, t, rng);
    let (mut xs, mut y) = (Vec::with_capacity(f * n), Vec::with_capacity(t * n));
    for _ in 0..n {
        let x: Vec<f64> = (0..f).map(|_| normal(rng)).collect();
        y.extend(a.chunks(f).map(|row| (dot(row, &x) + noise * normal(rng)) as f32));
        xs.extend(x);
    }
    (xs, y)
}

/// `n` independent examples: `N(0,1)` features (uniform ids in `0..V` for `ids = Some(V)`),
/// then a uniform class or `N(0,1)` targets.
fn random(
    n: usize,
    want: &DataShape,
    label: LabelSpec,
    ids: Option<usize>,
    rng: &mut ChaCha8Rng,
) -> Dataset {
    let f = want.feature_count();
    let (mut xs, mut y) = (Vec::with_capacity(f * n), Vec::new());
    for _ in 0..n {
        xs.extend((0..f).map(|_| match ids {
            Some(v) => rng.random_range(0..v as u64) as f32,
            None => normal(rng) as f32,
        }));
        match label {
            LabelSpec::Classes(c) => y.push(rng.random_range(0..c) as f32),
            LabelSpec::Targets(t) => y.extend((0..t).map(|_| normal(rng) as f32)),
        }
    }
    let y_shape = match label {
        LabelSpec::Classes(_) => vec![n],
        LabelSpec::Targets(t) => vec![n, t],
    };
    let x_shape = [vec![n], want.features.clone()].concat();
    Dataset { x: Tensor::new(x_shape, xs), y: Tensor::new(y_shape, y) }
}

/// Bag of tokens: `n` examples of `t` ids in `0..v`, `c ≤ v` classes. Class `j` owns the
/// ids `{j, j + c, j + 2c, ...}`; each token is uniform over all `v` ids with probability
/// `noise`, else uniform over its class's own ids.
fn tokens(n: usize, t: usize, v: usize, c: usize, noise: f64, rng: &mut ChaCha8Rng) -> Points {
    let (mut xs, mut y) = (Vec::with_capacity(t * n), Vec::with_capacity(n));
    for j in 0..c {
        let own = (v - j).div_ceil(c) as u64;
        for _ in 0..class_size(n, c, j) {
            for _ in 0..t {
                let id = if rng.random::<f64>() < noise {
                    rng.random_range(0..v as u64)
                } else {
                    j as u64 + c as u64 * rng.random_range(0..own)
                };
                xs.push(id as f64);
            }
            y.push(j as f32);
        }
    }
    (xs, y)
}

fn x_tensor(n: usize, want: &DataShape, xs: Vec<f64>) -> Tensor<f32> {
    let shape = [vec![n], want.features.clone()].concat();
    Tensor::new(shape, xs.into_iter().map(|v| v as f32).collect())
}

/// Puts the examples in a seeded random order; labels become `[n]` classes or `[n, 1]`.
fn shuffled(
    n: usize,
    want: &DataShape,
    xs: Vec<f64>,
    y: Vec<f32>,
    rng: &mut ChaCha8Rng,
) -> Dataset {
    let y_shape = match want.label {
        LabelSpec::Classes(_) => vec![n],
        LabelSpec::Targets(t) => vec![n, t],
    };
    let ds = Dataset { x: x_tensor(n, want, xs), y: Tensor::new(y_shape, y) };
    let mut order: Vec<usize> = (0..n).collect();
    shuffle(&mut order, rng);
    ds.select(&order)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean_std(v: &[f32]) -> (f64, f64) {
        let n = v.len() as f64;
        let m = v.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = v.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / n;
        (m, var.sqrt())
    }

    #[test]
    fn random_classes_are_standard_normal_features_and_uniform_labels() {
        let want = DataShape { features: vec![16], label: LabelSpec::Classes(10) };
        let ds = generate(Synthetic::Random, 2000, 0.1, &want, 5).unwrap();
        assert_eq!((ds.x.shape.clone(), ds.y.shape.clone()), (vec![2000, 16], vec![2000]));
        let (m, s) = mean_std(&ds.x.data);
        assert!(m.abs() < 0.02 && (s - 1.0).abs() < 0.02, "mean {m} std {s}");
        let mut counts = [0usize; 10];
        for &y in &ds.y.data {
            assert!(y.fract() == 0.0 && (0.0..10.0).contains(&y));
            counts[y as usize] += 1;
        }
        assert!(counts.iter().all(|&c| (140..260).contains(&c)), "{counts:?}");
        assert_eq!(ds, generate(Synthetic::Random, 2000, 0.0, &want, 5).unwrap(), "noise unused");
        assert_ne!(ds, generate(Synthetic::Random, 2000, 0.1, &want, 6).unwrap());
    }

    /// The eigenvalues of the symmetric `[n, n]` matrix `m`, largest first, by power
    /// iteration with deflation (for well-separated eigenvalues).
    fn eigenvalues(mut m: Vec<f64>, n: usize, count: usize) -> Vec<f64> {
        let mut out = Vec::new();
        for _ in 0..count {
            let mut v: Vec<f64> = (0..n).map(|i| 1.0 + i as f64 * 0.1).collect();
            let mut lambda = 0.0;
            for _ in 0..300 {
                let w: Vec<f64> = m.chunks(n).map(|row| dot(row, &v)).collect();
                lambda = dot(&v, &w);
                let norm = dot(&w, &w).sqrt();
                v = w.iter().map(|x| x / norm).collect();
            }
            for (k, x) in m.iter_mut().enumerate() {
                *x -= lambda * v[k / n] * v[k % n];
            }
            out.push(lambda);
        }
        out
    }

    #[test]
    fn linear_teacher_has_singular_values_8_4_2_1() {
        let (f, t) = (6, 4);
        let a = linear_teacher(f, t, &mut rng(3, Stream::Synthetic, 0));
        // AᵀA = V diag(s²) Vᵀ: its eigenvalues are the squared singular values, then 0.
        let ata: Vec<f64> =
            (0..f * f).map(|k| (0..t).map(|i| a[i * f + k / f] * a[i * f + k % f]).sum()).collect();
        let got = eigenvalues(ata, f, 5);
        for (k, want) in [64.0, 16.0, 4.0, 1.0, 0.0].into_iter().enumerate() {
            assert!((got[k] - want).abs() < 1e-9, "eigenvalue {k}: {} vs {want}", got[k]);
        }
        assert_eq!(linear_singular_value(4), 0.5);
    }

    #[test]
    fn linear_targets_are_the_teacher_times_the_features_plus_noise() {
        let want = DataShape { features: vec![6], label: LabelSpec::Targets(4) };
        let a = linear_teacher(6, 4, &mut rng(3, Stream::Synthetic, 0));
        let clean = generate(Synthetic::Linear, 3000, 0.0, &want, 3).unwrap();
        assert_eq!((clean.x.shape.clone(), clean.y.shape.clone()), (vec![3000, 6], vec![3000, 4]));
        let residual = |ds: &Dataset| -> Vec<f32> {
            let rows = ds.x.data.chunks(6).zip(ds.y.data.chunks(4));
            rows.flat_map(|(x, y)| {
                let x: Vec<f64> = x.iter().map(|&v| v as f64).collect();
                let ax: Vec<f64> = a.chunks(6).map(|row| dot(row, &x)).collect();
                y.iter().zip(ax).map(|(&y, ax)| (y as f64 - ax) as f32).collect::<Vec<_>>()
            })
            .collect()
        };
        assert!(residual(&clean).iter().all(|r| r.abs() < 1e-4));
        let (m, s) = mean_std(&clean.x.data);
        assert!(m.abs() < 0.03 && (s - 1.0).abs() < 0.03, "features: mean {m} std {s}");
        let noisy = generate(Synthetic::Linear, 3000, 0.5, &want, 3).unwrap();
        let (m, s) = mean_std(&residual(&noisy));
        assert!(m.abs() < 0.02 && (s - 0.5).abs() < 0.02, "noise: mean {m} std {s}");
        let other = generate(Synthetic::Linear, 10, 0.0, &want, 4).unwrap();
        assert!(residual(&other).iter().any(|r| r.abs() > 0.1), "the teacher depends on the seed");
    }

    #[test]
    fn linear_needs_real_targets() {
        let want = DataShape { features: vec![6], label: LabelSpec::Classes(3) };
        let e = generate(Synthetic::Linear, 10, 0.0, &want, 3).unwrap_err();
        assert!(e.to_string().contains("has real targets"), "{e}");
    }

    #[test]
    fn random_targets_are_standard_normal() {
        let want = DataShape { features: vec![3, 2], label: LabelSpec::Targets(4) };
        let ds = generate(Synthetic::Random, 1000, 0.1, &want, 1).unwrap();
        assert_eq!((ds.x.shape.clone(), ds.y.shape.clone()), (vec![1000, 3, 2], vec![1000, 4]));
        let (m, s) = mean_std(&ds.y.data);
        assert!(m.abs() < 0.05 && (s - 1.0).abs() < 0.05, "mean {m} std {s}");
    }
}
