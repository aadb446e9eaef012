//! Bounded fuzzing, run with the tests: for `NNC_FUZZ_SECONDS` seconds (default 10; CI
//! gives 60), split between two targets, each driven by a seeded generator so that every
//! failure names the seed that reproduces it.
//!
//! - `mutated_sources_never_panic`: the examples, mutated (ranges deleted, lines duplicated
//!   or swapped, tokens and odd numbers inserted), through the parser, the checker, the whole
//!   pipeline and, when the model is small, the JIT's compilation to machine code. Any
//!   outcome but a panic is fine; diagnostics must render.
//! - `generated_models_match_the_interpreter`: random MLPs (`common::models::random_model`,
//!   beyond the seeds tests/jit.rs fixes) with an optimizer linear in the gradient, trained
//!   on both backends and compared step by step; with every optimizer it is an ignored test
//!   today (see `linear_update`).
//!
//! No coverage guidance (cargo-fuzz needs a nightly toolchain, which this project does not
//! require): mutation of valid programs reaches the checker and the JIT far more often than
//! random bytes would. Each target prints how many inputs it ran. A failure found here
//! becomes a regression test of its own (tests/diagnostics.rs, tests/jit.rs).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::{Duration, Instant};

use nnc::{jit, pipeline};

mod common;
use common::differential::{differential, Reference};
use common::models::{batches_of, random_model, Rng};

/// Half the fuzzing budget: each of the two targets gets this long.
fn budget() -> Duration {
    let s: f64 =
        std::env::var("NNC_FUZZ_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(10.0);
    Duration::from_secs_f64(s / 2.0)
}

/// Tokens a mutation inserts: the language's words and punctuation, odd numbers, and text
/// that stresses the lexer and the checker's limits.
const TOKENS: &[&str] = &[
    "model",
    "layer",
    "input",
    "label",
    "param",
    "metric",
    "loss",
    "optimizer",
    "schedule",
    "clip",
    "train",
    "repeat",
    "forward",
    "class",
    "of",
    "B",
    "->",
    "(",
    ")",
    "{",
    "}",
    "[",
    "]",
    ",",
    "=",
    ":",
    ".",
    "+",
    "-",
    "*",
    "/",
    "@",
    "\n",
    " ",
    "x",
    "y",
    "fc1",
    "Dense",
    "BatchNorm",
    "LayerNorm",
    "Embedding",
    "relu",
    "softmax",
    "cross_entropy",
    "mse",
    "dropout",
    "concat",
    "sum",
    "mean",
    "0",
    "1",
    "-1",
    "3",
    "0.5",
    "1e39",
    "1e-45",
    "NaN",
    "inf",
    "-0",
    "4294967296",
    "18446744073709551616",
    "9999999",
    "\"",
    "\"x.csv\"",
    "//",
    "/*",
    "\u{feff}",
    "\u{1b}[31m",
    "é",
    "((((((((((",
    "))))))))))",
    "repeat 3",
];

/// One mutation of `src` drawn from `r`.
fn mutate(src: &str, r: &mut Rng) -> String {
    let mut s: Vec<u8> = src.as_bytes().to_vec();
    let at = |r: &mut Rng, n: usize| r.below(n + 1);
    match r.below(6) {
        0 if !s.is_empty() => {
            let a = at(r, s.len() - 1);
            let b = (a + 1 + r.below(24)).min(s.len());
            s.drain(a..b);
        }
        1 | 2 => {
            let a = at(r, s.len());
            let t = TOKENS[r.below(TOKENS.len())];
            s.splice(a..a, t.bytes());
        }
        3 | 4 => {
            let mut lines: Vec<&str> = src.lines().collect();
            if lines.is_empty() {
                return src.to_string();
            }
            let (i, j) = (r.below(lines.len()), r.below(lines.len()));
            if r.below(2) == 0 {
                lines.swap(i, j);
            } else {
                lines.insert(i, lines[j]);
            }
            return lines.join("\n");
        }
        _ => {
            // A digit replaced by another, or by a huge number.
            if let Some(p) = (0..8)
                .map(|_| at(r, s.len().saturating_sub(1)))
                .find(|&p| s.get(p).is_some_and(u8::is_ascii_digit))
            {
                let t = ["0", "7", "65536", "100000000", "1e30"][r.below(5)];
                s.splice(p..p + 1, t.bytes());
            }
        }
    }
    String::from_utf8_lossy(&s).into_owned()
}

/// The parts of `src`'s compilation that must never panic.
fn compile_everything(src: &str) {
    match pipeline::compile(src) {
        Err(diags) => {
            nnc::diagnostic::render_all(&diags, "fuzz.nn", src);
        }
        // Compiled to machine code only when its arenas fit a test's memory.
        Ok(c) if small(&c.opt) && small(&c.forward) => {
            let _ = jit::compile(&c.opt, &c.forward, 1);
        }
        Ok(_) => {}
    }
}

/// True if every value of `g` has at most 2²⁰ elements per example and `g` at most 20,000
/// nodes (a mutated width can ask for gigabytes, which `nnc train` refuses up front with
/// its memory check, but `jit::compile` alone would try to allocate).
fn small(g: &nnc::graph::Graph) -> bool {
    let numel = |id| g.shape(id).dims().iter().try_fold(1usize, |n, d| n.checked_mul(d.size(1)));
    g.len() < 20_000 && g.ids().all(|id| numel(id).is_some_and(|n| n < 1 << 20))
}

/// True if every `repeat N` of `src` has N ≤ 64: larger ones are legal (up to 10,000) and
/// slow to compile, which a time-bounded run cannot afford.
fn quick(src: &str) -> bool {
    src.match_indices("repeat").all(|(i, w)| {
        let digits: String =
            src[i + w.len()..].trim_start().chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<u64>().map_or(true, |n| n <= 64)
    })
}

#[test]
fn mutated_sources_never_panic() {
    let seeds: Vec<String> =
        common::programs().iter().map(|p| std::fs::read_to_string(p).unwrap()).collect();
    let (start, budget) = (Instant::now(), budget());
    let mut runs = 0u64;
    let mut failures = Vec::new();
    while start.elapsed() < budget && failures.len() < 5 {
        let seed = 0x5eed_0000 + runs;
        let mut r = Rng(seed);
        let mut src = seeds[r.below(seeds.len())].clone();
        for _ in 0..1 + r.below(4) {
            src = mutate(&src, &mut r);
        }
        runs += 1;
        if !quick(&src) {
            continue;
        }
        if catch_unwind(AssertUnwindSafe(|| compile_everything(&src))).is_err() {
            failures.push(format!("seed {seed:#x}:\n{src}"));
        }
    }
    eprintln!("mutated_sources_never_panic: {runs} inputs in {:.1?}", start.elapsed());
    assert!(failures.is_empty(), "{} panics:\n{}", failures.len(), failures.join("\n\n"));
}

/// The optimizers whose step is linear in the gradient (SGD, heavy ball). Adaptive methods
/// divide by the root of a squared gradient: where a gradient is near `eps`, its last-bit
/// differences between two correct backends become a difference of up to `lr` in the step,
/// which the comparison's tolerance cannot tell from an error. This target found two such
/// models: seed 5518 (AMSGrad), where an element of `fc1.weight`'s gradient is 7.1e-9 in a
/// tensor whose largest is 0.11 (JIT −7.50e-9, interpreter −7.13e-9, f64 −7.09e-9: the JIT
/// is off by 4e-9 of the tensor's scale, and the step by 1.2% of `lr`), and seed 3976
/// (centered RMSprop). `generated_models_with_every_optimizer_match_the_interpreter` runs
/// them all; it needs a criterion that knows the step's sensitivity to its gradient.
fn linear_update(src: &str) -> bool {
    ["optimizer sgd(", "optimizer heavy_ball("].iter().any(|o| src.contains(o))
}

/// True if the f32 interpreter's steps agree with the f64 ones to the comparison's tolerance
/// (`1e-5` of each value and of the largest in its group). Where they do not, the model is
/// ill-conditioned in f32 and the JIT, accurate to a few ulp, may differ from the
/// interpreter by more than the tolerance without either being wrong: a tanh saturated at
/// |x| ≈ 8 has `1 − tanh²` of a few ulp of 1, and one ulp of tanh halves it (seed 4668).
fn well_conditioned(
    step: &nnc::graph::Graph,
    params: &[nnc::tensor::Tensor<f32>],
    batches: &[Vec<nnc::tensor::Tensor<f32>>],
) -> bool {
    let mut r = Reference::new(step, params.to_vec());
    batches.iter().enumerate().all(|(t, inputs)| {
        let Ok(groups) = r.step(step, inputs, 0.01, t as u64 + 1) else { return false };
        groups.iter().all(|(f32s, f64s)| {
            let scale = f64s.iter().flat_map(|t| &t.data).fold(0f64, |m, v| m.max(v.abs()));
            f32s.iter().zip(f64s).all(|(a, b)| {
                a.data.iter().zip(&b.data).all(|(&x, &y)| {
                    (x as f64 - y).abs() <= 1e-5 * (y.abs() + scale) || (x.is_nan() && y.is_nan())
                })
            })
        })
    })
}

#[test]
fn generated_models_match_the_interpreter() {
    generated_models(false);
}

/// The same with every optimizer of the generator: fails today (seeds 3976 and 5518, see
/// [`linear_update`]); the comparison needs a criterion for amplified gradient noise.
#[test]
#[ignore = "adaptive optimizers amplify gradient noise past the comparison's tolerance; run with --ignored"]
fn generated_models_with_every_optimizer_match_the_interpreter() {
    generated_models(true);
}

/// Random models, with `all` optimizers or only those linear in the gradient.
fn generated_models(all: bool) {
    let (start, budget) = (Instant::now(), budget());
    let (mut runs, mut ill, mut failures) = (0u64, 0u64, Vec::new());
    // Seeds 0..40 are tests/jit.rs's.
    for seed in 1000u64.. {
        if start.elapsed() >= budget || failures.len() >= 3 {
            break;
        }
        let src = random_model(seed);
        if !(all || linear_update(&src)) {
            continue;
        }
        let c = pipeline::compile(&src).unwrap_or_else(|d| {
            panic!("seed {seed}:\n{src}\n{}", nnc::diagnostic::render_all(&d, "m.nn", &src))
        });
        let params = nnc::train::session::initial_params(&c.model, seed, None).unwrap();
        let mut jit = jit::compile(&c.opt, &c.forward, 1).unwrap();
        let size = [1, 7, 60][seed as usize % 3];
        let batches = batches_of(&c, Path::new("examples"), size, 2).unwrap();
        if let Err(e) = differential(&c.opt, &c.forward, &mut jit, &params, &batches, 0.01) {
            if well_conditioned(&c.opt, &params, &batches) {
                failures.push(format!("seed {seed} at batch {size}: {e}\n{src}"));
            } else {
                ill += 1;
            }
        }
        runs += 1;
    }
    eprintln!(
        "generated models ({}): {runs} in {:.1?}, {ill} of them differing where f32 itself \
         cannot resolve the result",
        if all { "every optimizer" } else { "sgd, heavy_ball" },
        start.elapsed()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
