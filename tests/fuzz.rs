//! Bounded fuzzing, run with the tests: for `NNC_FUZZ_SECONDS` seconds (default 10; CI
//! gives 60), split between two targets, each driven by a seeded generator so that every
//! failure names the seed that reproduces it.
//!
//! - `mutated_sources_never_panic`: the examples, mutated (ranges deleted, lines duplicated
//!   or swapped, tokens and odd numbers inserted), through the parser, the checker, the whole
//!   pipeline and, when the model is small, the JIT's compilation to machine code. Any
//!   outcome but a panic is fine; diagnostics must render.
//! - `generated_models_match_the_interpreter`: random MLPs (`common::models::random_model`,
//!   beyond the seeds tests/jit.rs fixes) with every optimizer, trained on both backends
//!   and compared step by step; a model where they differ fails unless it is
//!   ill-conditioned at f32's resolution (`well_conditioned`), which is counted.
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
use common::differential::{differential, noise, to64, Both, Reference};
use common::models::{batches_of, random_model, Rng};
use nnc::graph::eval::{apply_updates, eval_visited, Env};
use nnc::graph::{BinaryOp, Graph, Op, UnaryOp};
use nnc::tensor::Tensor;

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

/// The comparison's closeness: `1e-5` of each value and of the largest of its group.
fn close_groups(a: &[Tensor<f64>], b: &[Tensor<f64>]) -> bool {
    let scale = b.iter().flat_map(|t| &t.data).fold(0f64, |m, v| m.max(v.abs()));
    a.iter().zip(b).all(|(a, b)| {
        a.data
            .iter()
            .zip(&b.data)
            .all(|(&x, &y)| (x - y).abs() <= 1e-5 * (y.abs() + scale) || (x.is_nan() && y.is_nan()))
    })
}

/// True if the model is well-conditioned at f32's resolution, so that two correct f32
/// backends must agree to the comparison's tolerance:
/// - the f32 interpreter's steps agree with the f64 ones. Where they do not, the JIT,
///   accurate to a few ulp, may differ from the interpreter without either being wrong: a
///   tanh saturated at |x| ≈ 8 has `1 − tanh²` of a few ulp of 1, and one ulp of tanh halves
///   it (seed 4668);
/// - the f64 steps barely move when every rounded value (the result of each operation f32
///   rounds) moves by 8 ulp of f32 (relative `1e-6`, random signs), the size of the rounding
///   differences between two correct backends (other summation orders, other polynomial
///   approximations). Where they move more, some operation amplifies rounding: adaptive
///   optimizers divide by the root of a squared gradient, and a gradient element near `eps`
///   turns last-bit differences into a step of up to `lr`. Seed 5518 (AMSGrad, a LayerNorm
///   whose backward cancels) has an element of `fc1.weight`'s gradient at 7.1e-9 in a tensor
///   whose largest is 0.11 (JIT −7.50e-9, interpreter −7.13e-9, f64 −7.09e-9), and its
///   steps differ by 1.2% of `lr`; seed 3976 (centered RMSprop) likewise. Perturbing only
///   the inputs and parameters does not find them: the cancellation is structural.
fn well_conditioned(step: &Graph, params: &[Tensor<f32>], batches: &[Vec<Tensor<f32>>]) -> bool {
    let mut r = Reference::new(step, params.to_vec());
    batches.iter().enumerate().all(|(t, inputs)| {
        let (lr, t) = (0.01, t as u64 + 1);
        // The nudged f64 step starts where the reference's f64 step does.
        let (mut p64, mut s64) = (to64(&r.params), to64(&r.states));
        let Ok(groups) = r.step(step, inputs, lr, t) else { return false };
        let in64 = to64(inputs);
        let env = Env { inputs: &in64, params: &p64, states: &s64, lr, step: t as f64 };
        let mut k = t << 40;
        let Ok(ev) = eval_visited(step, &env, &mut |id, v| {
            if rounded(step.node(id).op) {
                for x in &mut v.data {
                    k += 1;
                    *x *= 1.0 + 1e-6 * noise(t, k).signum() as f64;
                }
            }
        }) else {
            return false;
        };
        apply_updates(step, &ev, &mut p64, &mut s64);
        let nudged = [&ev.outputs, &p64, &s64];
        let close = |((f32s, f64s), n64s): (&Both, &Vec<Tensor<f64>>)| {
            close_groups(&to64(f32s), f64s) && close_groups(n64s, f64s)
        };
        let all = groups.iter().zip(nudged).all(close);
        all
    })
}

/// True for the operations whose f32 result is rounded: not the leaves, and not those whose
/// results are exact (indices, masks, comparisons, signs).
fn rounded(op: Op) -> bool {
    match op {
        Op::Input(_) | Op::Param(_) | Op::State(_) | Op::Const(_) | Op::Scalar(_) => false,
        Op::ArgMax | Op::OneHot(_) | Op::DropMask { .. } => false,
        Op::Unary(u) => !matches!(u, UnaryOp::Sign | UnaryOp::Step | UnaryOp::Abs | UnaryOp::Neg),
        Op::Binary(b) => !matches!(b, BinaryOp::Gt | BinaryOp::Ge | BinaryOp::Eq),
        _ => true,
    }
}

#[test]
fn generated_models_match_the_interpreter() {
    generated_models();
}

/// Random models with every optimizer of the generator.
fn generated_models() {
    let (start, budget) = (Instant::now(), budget());
    let (mut runs, mut ill, mut failures) = (0u64, 0u64, Vec::new());
    // Seeds 0..40 are tests/jit.rs's.
    for seed in 1000u64.. {
        if start.elapsed() >= budget || failures.len() >= 3 {
            break;
        }
        let src = random_model(seed);
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
        "generated models: {runs} in {:.1?}, {ill} of them differing where f32 cannot resolve \
         the result",
        start.elapsed()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
