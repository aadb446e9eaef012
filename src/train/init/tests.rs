//! Statistics of every initializer at a realistic size (a `[256, 512]` weight: fan-in 512,
//! fan-out 256), against the variance formulas of docs/methods.md#initializers; exact
//! structure of orthogonal and identity; delta-orthogonal convolutions as isometries (Xiao et
//! al.); determinism.

use super::*;
use crate::diagnostic::Span;

fn param(shape: &[usize], init: Init, fan_in: usize, fan_out: usize) -> ParamDef {
    ParamDef {
        name: "w".into(),
        shape: shape.to_vec(),
        init,
        fan_in,
        fan_out,
        span: Span::default(),
    }
}

/// A `[256, 512]` weight drawn with `init`.
fn draw(init: Init) -> Vec<f64> {
    let p = param(&[256, 512], init, 512, 256);
    init_param(&p, &mut ChaCha8Rng::seed_from_u64(3)).data.iter().map(|&v| v as f64).collect()
}

struct Stats {
    mean: f64,
    var: f64,
    min: f64,
    max: f64,
}

fn stats(v: &[f64]) -> Stats {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    let min = v.iter().cloned().fold(f64::INFINITY, f64::min);
    let max = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    Stats { mean, var, min, max }
}

/// Mean within 5 standard errors of `mean`, variance within 3% of `var`.
fn assert_moments(v: &[f64], mean: f64, var: f64) {
    let s = stats(v);
    let se = (var / v.len() as f64).sqrt();
    assert!((s.mean - mean).abs() < 5.0 * se, "mean {} vs {mean}", s.mean);
    assert!((s.var / var - 1.0).abs() < 0.03, "variance {} vs {var}", s.var);
}

fn assert_within(v: &[f64], lo: f64, hi: f64) {
    let s = stats(v);
    assert!(s.min >= lo && s.max <= hi, "range [{}, {}] outside [{lo}, {hi}]", s.min, s.max);
    // And the range is actually used: the extremes are near the bounds.
    assert!(s.min < lo + 0.01 * (hi - lo) && s.max > hi - 0.01 * (hi - lo));
}

#[test]
fn uniform_families_match_their_bounds_and_variance() {
    // U(±a) has variance a²/3.
    let cases = [
        (Init::Default, (1.0f64 / 512.0).sqrt()),
        (Init::HeUniform, (6.0f64 / 512.0).sqrt()),
        (Init::LecunUniform, (3.0f64 / 512.0).sqrt()),
        (Init::XavierUniform { gain: 1.0 }, (6.0f64 / 768.0).sqrt()),
        (Init::XavierUniform { gain: 5.0 / 3.0 }, 5.0 / 3.0 * (6.0f64 / 768.0).sqrt()),
    ];
    for (init, a) in cases {
        let v = draw(init);
        assert_within(&v, -a - 1e-7, a + 1e-7);
        assert_moments(&v, 0.0, a * a / 3.0);
    }
    let v = draw(Init::Uniform { low: -0.3, high: 0.7 });
    assert_within(&v, -0.3, 0.7);
    assert_moments(&v, 0.2, 1.0 / 12.0);
}

#[test]
fn normal_families_match_their_variance() {
    let cases = [
        (Init::HeNormal, 2.0 / 512.0),
        (Init::LecunNormal, 1.0 / 512.0),
        (Init::XavierNormal { gain: 1.0 }, 2.0 / 768.0),
        (Init::XavierNormal { gain: 2.0f64.sqrt() }, 4.0 / 768.0),
        (Init::Normal { mean: 0.0, std: 0.05 }, 0.0025),
    ];
    for (init, var) in cases {
        assert_moments(&draw(init), 0.0, var);
    }
    assert_moments(&draw(Init::Normal { mean: 0.5, std: 0.1 }), 0.5, 0.01);
}

#[test]
fn truncated_normal_stays_within_two_sigma() {
    // Var of N(0,1) truncated to ±2: 1 − 2·2φ(2)/(Φ(2) − Φ(−2)) = 0.773741.
    let v = draw(Init::TruncatedNormal { mean: 0.1, std: 0.02 });
    assert_within(&v, 0.1 - 0.04 - 1e-7, 0.1 + 0.04 + 1e-7);
    assert_moments(&v, 0.1, 0.0004 * 0.773741);
}

#[test]
fn constants_are_exact() {
    assert!(draw(Init::Zeros).iter().all(|&v| v == 0.0));
    assert!(draw(Init::Ones).iter().all(|&v| v == 1.0));
    assert!(draw(Init::Constant(0.25)).iter().all(|&v| v == 0.25));
    // A zero fan-in gives a zero bound rather than infinities.
    let p = param(&[3], Init::Default, 0, 3);
    assert_eq!(init_param(&p, &mut ChaCha8Rng::seed_from_u64(0)).data, vec![0.0; 3]);
}

/// `a · aᵀ` for a row-major `[r, c]` matrix.
fn gram_rows(a: &[f32], r: usize, c: usize) -> Vec<f64> {
    let mut g = vec![0.0; r * r];
    for i in 0..r {
        for j in 0..r {
            g[i * r + j] = (0..c).map(|k| a[i * c + k] as f64 * a[j * c + k] as f64).sum();
        }
    }
    g
}

fn assert_scaled_identity(g: &[f64], r: usize, scale: f64) {
    for i in 0..r {
        for j in 0..r {
            let want = if i == j { scale } else { 0.0 };
            assert!((g[i * r + j] - want).abs() < 1e-5 * scale, "gram[{i},{j}] = {}", g[i * r + j]);
        }
    }
}

#[test]
fn orthogonal_wide_has_orthonormal_rows() {
    let p = param(&[256, 512], Init::Orthogonal { gain: 2.0 }, 512, 256);
    let w = init_param(&p, &mut ChaCha8Rng::seed_from_u64(1));
    assert_scaled_identity(&gram_rows(&w.data, 256, 512), 256, 4.0);
}

#[test]
fn orthogonal_tall_has_orthonormal_columns() {
    let p = param(&[512, 128], Init::Orthogonal { gain: 1.0 }, 128, 512);
    let w = init_param(&p, &mut ChaCha8Rng::seed_from_u64(1));
    let wt: Vec<f32> = transpose(&w.to_f64().data, 512, 128).iter().map(|&v| v as f32).collect();
    assert_scaled_identity(&gram_rows(&wt, 128, 512), 128, 1.0);
    // Not a trivial orthogonal matrix: entries spread like N(0, 1/512).
    let s = stats(&w.to_f64().data);
    assert!((s.var * 512.0 - 1.0).abs() < 0.01 && s.max < 0.3, "{} {}", s.var, s.max);
}

#[test]
fn thin_q_is_the_qr_factor_with_positive_r_diagonal() {
    let (m, n) = (7, 4);
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let a: Vec<f64> = (0..m * n).map(|_| normal(&mut rng)).collect();
    let q = thin_q(a.clone(), m, n);
    // R = Qᵀ A must be upper triangular with a positive diagonal, and Q R = A.
    let r: Vec<f64> =
        (0..n * n).map(|ij| (0..m).map(|k| q[k * n + ij / n] * a[k * n + ij % n]).sum()).collect();
    for i in 0..n {
        assert!(r[i * n + i] > 0.0);
        for j in 0..i {
            assert!(r[i * n + j].abs() < 1e-12, "R[{i},{j}] = {}", r[i * n + j]);
        }
    }
    for i in 0..m {
        for j in 0..n {
            let qr: f64 = (0..n).map(|k| q[i * n + k] * r[k * n + j]).sum();
            assert!((qr - a[i * n + j]).abs() < 1e-12);
        }
    }
}

#[test]
fn identity_is_rectangular_eye() {
    let eye = |shape: &[usize]| {
        let p = param(shape, Init::Identity, shape[1], shape[0]);
        init_param(&p, &mut ChaCha8Rng::seed_from_u64(0)).data
    };
    assert_eq!(eye(&[2, 3]), vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
    assert_eq!(eye(&[3, 2]), vec![1.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
}

#[test]
fn init_params_is_one_stream_in_declaration_order() {
    let params = [
        param(&[16, 8], Init::HeNormal, 8, 16),
        param(&[16], Init::Default, 8, 16),
        param(&[4, 16], Init::Orthogonal { gain: 1.0 }, 16, 4),
    ];
    let a = init_params(&params, 42);
    assert_eq!(a, init_params(&params, 42));
    assert_ne!(a, init_params(&params, 43));
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let b: Vec<Tensor<f32>> = params.iter().map(|p| init_param(p, &mut rng)).collect();
    assert_eq!(a, b);
    // The second parameter's draws follow the first's in the stream.
    assert_ne!(a[1], init_params(&params[1..2], 42)[0]);
}

#[test]
fn same_seed_same_weights_pinned() {
    // Pins the stream: a change of generator, sampling method or draw order shows here.
    let p = param(&[3], Init::Uniform { low: 0.0, high: 1.0 }, 1, 1);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let expected: Vec<f32> = (0..3).map(|_| rng.random::<f64>() as f32).collect();
    assert_eq!(init_param(&p, &mut ChaCha8Rng::seed_from_u64(0)).data, expected);
}

#[test]
fn fixup_is_he_normal_scaled_by_the_branch_count() {
    // Var = 2/fan_in · L^(−2/(2m−2)) = 2/512 · L^(−1/(m−1))
    for (branches, layers) in [(16u32, 2u32), (50, 3), (1, 2)] {
        let v = draw(Init::Fixup { branches, layers });
        let scale = (branches as f64).powf(-1.0 / (layers as f64 - 1.0));
        assert_moments(&v, 0.0, 2.0 / 512.0 * scale);
    }
    // One branch of two layers is plain He normal, draw for draw.
    assert_eq!(draw(Init::Fixup { branches: 1, layers: 2 }), draw(Init::HeNormal));
    assert_ne!(draw(Init::Fixup { branches: 4, layers: 2 }), draw(Init::HeNormal));
}

#[test]
fn lsuv_starts_from_the_orthogonal_draw() {
    // train::lsuv rescales it on data; its statistics before that are orthogonal(1)'s.
    assert_eq!(draw(Init::Lsuv), draw(Init::Orthogonal { gain: 1.0 }));
    let p = param(&[128, 256], Init::Lsuv, 256, 128);
    let w = init_param(&p, &mut ChaCha8Rng::seed_from_u64(5));
    assert_scaled_identity(&gram_rows(&w.data, 128, 256), 128, 1.0);
}

#[test]
fn row_norm_of_another_parameter_is_filled_after_the_draws() {
    // weight_norm's g = ‖v_i‖ per row, so that w = g·v/‖v‖ = v at the start.
    let params = [
        param(&[16], Init::Default, 8, 16),
        param(&[16, 1], Init::RowNormOf { param: 2 }, 8, 16),
        param(&[16, 8], Init::HeNormal, 8, 16),
    ];
    let a = init_params(&params, 7);
    assert_eq!(a, init_params(&params, 7));
    for i in 0..16 {
        let row = &a[2].data[i * 8..(i + 1) * 8];
        let norm = row.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
        assert!((a[1].data[i] as f64 - norm).abs() < 1e-6 * norm, "row {i}");
        assert!(norm > 0.0);
    }
    assert_eq!(a[1].shape, vec![16, 1]);
}

#[test]
fn delta_orthogonal_on_a_dense_weight_is_orthogonal_with_gain() {
    // A Dense weight [out, in] is a one-tap kernel: exactly orthogonal(gain), draw for draw.
    for gain in [1.0, 1.5] {
        let init = Init::DeltaOrthogonal { gain };
        assert_eq!(draw(init.clone()), draw(Init::Orthogonal { gain }));
        // Square: WᵀW = WWᵀ = gain²·I.
        let p = param(&[128, 128], init.clone(), 128, 128);
        let w = init_param(&p, &mut ChaCha8Rng::seed_from_u64(11));
        assert_scaled_identity(&gram_rows(&w.data, 128, 128), 128, gain * gain);
        let wt: Vec<f32> =
            transpose(&w.to_f64().data, 128, 128).iter().map(|&v| v as f32).collect();
        assert_scaled_identity(&gram_rows(&wt, 128, 128), 128, gain * gain);
        // Tall [out > in]: WᵀW = gain²·I (orthonormal columns).
        let p = param(&[384, 96], init.clone(), 96, 384);
        let w = init_param(&p, &mut ChaCha8Rng::seed_from_u64(12));
        let wt: Vec<f32> = transpose(&w.to_f64().data, 384, 96).iter().map(|&v| v as f32).collect();
        assert_scaled_identity(&gram_rows(&wt, 96, 384), 96, gain * gain);
        // Entries spread like N(0, gain²/384), not a permutation.
        let s = stats(&w.to_f64().data);
        assert!((s.var * 384.0 / (gain * gain) - 1.0).abs() < 0.02, "{}", s.var);
    }
}

#[test]
fn delta_orthogonal_is_deterministic_in_the_seed() {
    let p = param(&[64, 32], Init::DeltaOrthogonal { gain: 1.0 }, 32, 64);
    let at = |seed| init_param(&p, &mut ChaCha8Rng::seed_from_u64(seed)).data;
    assert_eq!(at(5), at(5));
    assert_ne!(at(5), at(6));
    let params = [p.clone(), param(&[64], Init::Default, 32, 64)];
    assert_eq!(init_params(&params, 9), init_params(&params, 9));
    assert_ne!(init_params(&params, 9), init_params(&params, 10));
}

#[test]
fn delta_orthogonal_kernel_is_zero_but_its_centre_tap() {
    // [out, in, 3, 4]: centre tap (1, 1) (⌊(k − 1)/2⌋) holds the orthogonal [out, in] draw.
    let (out, inp, kh, kw) = (6, 4, 3, 4);
    let p = param(&[out, inp, kh, kw], Init::DeltaOrthogonal { gain: 2.0 }, inp * 12, out * 12);
    let w = init_param(&p, &mut ChaCha8Rng::seed_from_u64(4)).data;
    let q = orthogonal(out, inp, &mut ChaCha8Rng::seed_from_u64(4));
    for o in 0..out {
        for i in 0..inp {
            for a in 0..kh {
                for b in 0..kw {
                    let v = w[((o * inp + i) * kh + a) * kw + b] as f64;
                    let want = if (a, b) == (1, 1) { 2.0 * q[o * inp + i] } else { 0.0 };
                    assert!((v - want).abs() < 1e-6, "[{o},{i},{a},{b}] {v} vs {want}");
                }
            }
        }
    }
}

/// `y [o, h, w] = k ⊛ x` (`k [o, c, kh, kw]`, `x [c, h, w]`, stride 1, "same" zero padding of
/// `⌊(k − 1)/2⌋` before), or its adjoint `x [c, h, w] = kᵀ ⊛ y` when `transposed`; f64.
fn same_conv(
    k: &[f32],
    [o, c, kh, kw]: [usize; 4],
    v: &[f64],
    (h, w): (usize, usize),
    transposed: bool,
) -> Vec<f64> {
    let mut out = vec![0.0; if transposed { c } else { o } * h * w];
    for (oc, ic, a, b) in taps(o, c, kh, kw) {
        let t = k[((oc * c + ic) * kh + a) * kw + b] as f64;
        for i in 0..h {
            for j in 0..w {
                let (y, x) = (
                    (i + a) as isize - (kh as isize - 1) / 2,
                    (j + b) as isize - (kw as isize - 1) / 2,
                );
                if y < 0 || x < 0 || y >= h as isize || x >= w as isize {
                    continue;
                }
                let pix = (y as usize) * w + x as usize;
                match transposed {
                    false => out[oc * h * w + i * w + j] += t * v[ic * h * w + pix],
                    true => out[ic * h * w + pix] += t * v[oc * h * w + i * w + j],
                }
            }
        }
    }
    out
}

/// Every `(out, in, a, b)` index of a kernel.
fn taps(
    o: usize,
    c: usize,
    kh: usize,
    kw: usize,
) -> impl Iterator<Item = (usize, usize, usize, usize)> {
    (0..o).flat_map(move |oc| {
        (0..c).flat_map(move |ic| (0..kh).flat_map(move |a| (0..kw).map(move |b| (oc, ic, a, b))))
    })
}

#[test]
fn delta_orthogonal_convolutions_are_isometries_as_xiao_et_al_define_them() {
    // Xiao et al. (2018): a delta-orthogonal kernel makes the convolution (stride 1, "same"
    // padding) gain × an isometry: ‖k ⊛ x‖ = gain·‖x‖ for every image when out ≥ in (the
    // centre tap has orthonormal columns); when out < in (orthonormal rows) the adjoint is
    // the isometry, ‖kᵀ ⊛ y‖ = gain·‖y‖. A second draw of the same shape is a different
    // isometry, not a fixed permutation.
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let (h, w) = (5, 6);
    for (o, c, kh, kw, gain) in [(8, 8, 3, 3, 1.0), (12, 5, 3, 3, 1.3), (4, 10, 5, 3, 0.7)] {
        let p = param(&[o, c, kh, kw], Init::DeltaOrthogonal { gain }, c * kh * kw, o * kh * kw);
        let k = init_param(&p, &mut ChaCha8Rng::seed_from_u64(21)).data;
        let mut rng = ChaCha8Rng::seed_from_u64(22);
        let (from, transposed) = if o >= c { (c, false) } else { (o, true) };
        for _ in 0..3 {
            let v: Vec<f64> = (0..from * h * w).map(|_| normal(&mut rng)).collect();
            let out = same_conv(&k, [o, c, kh, kw], &v, (h, w), transposed);
            let ratio = norm(&out) / norm(&v);
            assert!(
                (ratio - gain).abs() < 1e-5 * gain,
                "[{o},{c},{kh},{kw}]: ‖out‖/‖in‖ = {ratio}"
            );
        }
        let other = init_param(&p, &mut ChaCha8Rng::seed_from_u64(23)).data;
        assert_ne!(k, other);
    }
}
