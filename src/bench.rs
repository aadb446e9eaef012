//! `nnc bench`: how long a model takes to compile, stage by stage, how many training steps
//! per second it runs, and its peak memory — measured the way the peer scripts
//! (`bench/peers/bench_common.py`) measure PyTorch and JAX, so the numbers compare.
//!
//! Method (the same as `bench_common.time_windows`):
//! - compile: the pipeline driver reports every stage as it ends, front half and JIT half
//!   (`crate::observe::Timer`): each is timed once, directly (for the JIT: `fuse`, `plan`,
//!   and `cranelift`, which is code generation, Cranelift and finalizing);
//! - data: 8 batches of the file's batch size, taken in order from the file's data set
//!   (benchmarks use `random(n = 8 * batch)`), built once and held in memory, cycled;
//! - steps/s: one first step (timed alone), a warm-up of `warmup_s` seconds, a calibration
//!   of about 0.2 s that sets the steps per window (at least 3, about `window_s` seconds),
//!   then `windows` timed windows; the figure is the median window rate;
//! - peak RSS: the process's high-water resident set (`VmHWM` in `/proc/self/status`,
//!   the value `getrusage` reports as `ru_maxrss`; Linux only, else absent).
//!
//! A step here is exactly what `nnc train` runs per batch: forward, loss, backward, update,
//! with the scheduled learning rate of step `t`.

use std::time::Instant;

use crate::check::{Model, TrainSpec};
use crate::diagnostic::Diagnostic;
use crate::error::Error;
use crate::graph::op::Op;
use crate::graph::Graph;
use crate::observe::{self, Timer};
use crate::pipeline::{self, Compiled};
use crate::runtime::{Backend, Interp};
use crate::tensor::Tensor;
use crate::train::data;
use crate::train::session::{self, Options};

/// Pre-built batches cycled through, as the peer scripts do.
pub const N_BATCHES: usize = 8;

/// Which engine runs the steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Jit,
    Interp,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Jit => "jit",
            Engine::Interp => "interp",
        }
    }
}

/// How to measure.
#[derive(Clone, Debug)]
pub struct Settings {
    pub engine: Engine,
    pub threads: usize,
    /// Timed windows; the result is their median.
    pub windows: usize,
    /// Target seconds per window.
    pub window_s: f64,
    /// Untimed seconds after the first step.
    pub warmup_s: f64,
    /// Fewest steps in a window.
    pub min_window_steps: usize,
    /// Time every kernel of the JIT's step (costs ≈ 50 ns per kernel and step).
    pub profile: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            engine: Engine::Jit,
            threads: 1,
            windows: 5,
            window_s: 1.0,
            warmup_s: 1.0,
            min_window_steps: 3,
            profile: false,
        }
    }
}

/// Milliseconds spent in each compile stage, in pipeline order.
pub type StageTimes = Vec<(&'static str, f64)>;

/// Everything one `nnc bench` run measured.
#[derive(Clone, Debug)]
pub struct Report {
    /// The benchmark's name (the file stem, e.g. `a`).
    pub config: String,
    pub model: String,
    pub engine: Engine,
    pub threads: usize,
    /// Threads the steps used: 1 when nothing was large enough to split (no pool started).
    pub threads_used: usize,
    pub batch: usize,
    pub n_params: usize,
    /// `2·m·n·k` summed over the step graph's matrix products at this batch size.
    pub matmul_flop_per_step: f64,
    pub compile_ms: StageTimes,
    /// The forward pass's compile, which the JIT does on its first use (validation,
    /// evaluation), not before the first step: measured after the steps, not in the total.
    pub forward_compile_ms: f64,
    pub first_step_ms: f64,
    /// Steps per second of each timed window.
    pub window_rates: Vec<f64>,
    pub steps_per_window: usize,
    pub loss_first: f32,
    pub loss_last: f32,
    pub peak_rss_mib: Option<f64>,
    /// With [`Settings::profile`]: the step's kernels by the time they took.
    pub profile: Option<String>,
}

/// A failure: diagnostics on the source (render them with the file), or a runtime error.
#[derive(Debug)]
pub enum BenchError {
    Diagnostics(Vec<Diagnostic>),
    Run(Error),
}

impl From<Error> for BenchError {
    fn from(e: Error) -> BenchError {
        BenchError::Run(e)
    }
}

/// Builds the engine that runs the steps, its stages timed by `timer`: the JIT's (`fuse`,
/// `plan`, `cranelift`) as the pipeline driver reports them, or the interpreter's set-up
/// (`backend`).
fn backend(
    c: &Compiled,
    s: &Settings,
    params: Vec<Tensor<f32>>,
    timer: &mut Timer,
) -> Result<Box<dyn Backend>, Error> {
    match s.engine {
        Engine::Interp => Ok(observe::run(timer, "backend", || {
            Box::new(Interp::new(&c.opt, &c.forward, params)) as Box<dyn Backend>
        })),
        Engine::Jit => {
            let o = crate::jit::Options { threads: s.threads, profile: s.profile };
            session::jit_with_params(pipeline::jit(c, o, timer)?, params)
        }
    }
}

/// The 8 batches the steps cycle through: consecutive examples of the data set, wrapping.
fn batches(
    c: &Compiled,
    base: &std::path::Path,
    batch: usize,
) -> Result<Vec<Vec<Tensor<f32>>>, Error> {
    let spec = session::effective_spec(&c.model, &Options::default());
    let ds = session::load_data(&c.model, &spec, base, None)?;
    let n = ds.len();
    Ok((0..N_BATCHES)
        .map(|b| {
            let idx: Vec<usize> = (0..batch).map(|i| (b * batch + i) % n).collect();
            let (x, y) = data::batch(&ds, &idx);
            session::inputs_for(&c.model, x, y)
        })
        .collect())
}

/// Compiles `src` (the file `file`, whose folder relative data paths start from) and
/// measures it as the module doc says.
pub fn run(src: &str, file: &std::path::Path, s: &Settings) -> Result<Report, BenchError> {
    let mut timer = Timer::default();
    let c = pipeline::compile_observed(src, &Default::default(), None, &mut timer)
        .map_err(BenchError::Diagnostics)?;
    session::check_memory(&c)?;
    let model = &c.model;
    let spec = session::effective_spec(model, &Options::default());
    let base = file.parent().unwrap_or(std::path::Path::new("."));
    let data = batches(&c, base, spec.batch)?;
    let params = session::initial_params(model, spec.seed, None)?;
    let mut be = backend(&c, s, params, &mut timer)?;
    let compile_ms = timer.0;
    let mut runner =
        Runner { be: be.as_mut(), model, spec: &spec, data: &data, t: 0, last: f32::NAN };
    let t0 = Instant::now();
    runner.steps(1)?;
    let first_step_ms = t0.elapsed().as_secs_f64() * 1e3;
    let loss_first = runner.last;
    let (window_rates, steps_per_window) = runner.windows(s)?;
    let loss_last = runner.last;
    let forward_compile_ms = be.ready_forward().map_err(Error::from)?;
    Ok(Report {
        config: file.file_stem().map(|x| x.to_string_lossy().into_owned()).unwrap_or_default(),
        model: model.name.clone(),
        engine: s.engine,
        threads: s.threads,
        threads_used: be.threads_used(),
        batch: spec.batch,
        n_params: model.param_count(),
        matmul_flop_per_step: matmul_flop(&c.opt, spec.batch),
        compile_ms,
        forward_compile_ms,
        first_step_ms,
        window_rates,
        steps_per_window,
        loss_first,
        loss_last,
        peak_rss_mib: peak_rss_mib(),
        profile: be.kernel_profile(&c.opt, Some(src)),
    })
}

/// Runs steps on the pre-built batches, counting `t` from 1.
struct Runner<'a> {
    be: &'a mut dyn Backend,
    model: &'a Model,
    spec: &'a TrainSpec,
    data: &'a [Vec<Tensor<f32>>],
    t: u64,
    /// The loss of the last step.
    last: f32,
}

impl Runner<'_> {
    fn steps(&mut self, k: usize) -> Result<(), Error> {
        for _ in 0..k {
            self.t += 1;
            let inputs = &self.data[(self.t as usize - 1) % self.data.len()];
            // The learning rate of step `t`, as `nnc train` computes it.
            let lr = crate::schedule::lr_at(self.model, self.spec, self.t);
            self.last = self.be.step(inputs, lr, self.t)?[0];
        }
        Ok(())
    }

    /// Seconds taken by `k` steps.
    fn time(&mut self, k: usize) -> Result<f64, Error> {
        let t0 = Instant::now();
        self.steps(k)?;
        Ok(t0.elapsed().as_secs_f64())
    }

    /// Warm-up, calibration and the timed windows: (steps/s of each window, steps per window).
    fn windows(&mut self, s: &Settings) -> Result<(Vec<f64>, usize), Error> {
        let t0 = Instant::now();
        while t0.elapsed().as_secs_f64() < s.warmup_s {
            self.steps(1)?;
        }
        let mut k = 1;
        let mut dt = self.time(k)?;
        while dt < 0.2_f64.min(s.window_s) {
            k *= 2;
            dt = self.time(k)?;
        }
        let per = dt / k as f64;
        let n = s.min_window_steps.max((s.window_s / per.max(1e-9)) as usize);
        let rates = (0..s.windows.max(1))
            .map(|_| self.time(n).map(|dt| n as f64 / dt))
            .collect::<Result<Vec<f64>, Error>>()?;
        Ok((rates, n))
    }
}

/// `2·m·n·k` over every matrix product of `g` at batch size `batch`, and the same count of
/// multiply-adds of every convolution and its adjoints (`2 · outputs · C/g·kh·kw`).
pub fn matmul_flop(g: &Graph, batch: usize) -> f64 {
    let numel = |id| g.shape(id).numel(batch) as f64;
    g.nodes()
        .filter_map(|(id, n)| match n.op {
            Op::MatMul { ta, .. } => {
                let out = n.shape.concrete(batch);
                let a = g.shape(n.args[0]).concrete(batch);
                let k = if ta { a[0] } else { a[1] };
                Some(2.0 * out[0] as f64 * out[1] as f64 * k as f64)
            }
            Op::Conv(_) | Op::ConvGradInput(_) | Op::ConvGradKernel(_) => {
                // The convolution's output and its kernel, whichever operand or result each is.
                let (out, kernel) = match n.op {
                    Op::Conv(_) => (id, n.args[1]),
                    Op::ConvGradInput(_) => (n.args[0], n.args[1]),
                    _ => (n.args[1], id),
                };
                let taps = g.shape(kernel).numel(1) / g.shape(kernel).dims()[0].size(1);
                Some(2.0 * numel(out) * taps as f64)
            }
            _ => None,
        })
        .sum()
}

/// The process's peak resident set in MiB (`VmHWM`), on Linux.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

impl Report {
    /// Median steps per second over the windows.
    pub fn steps_per_s(&self) -> f64 {
        median(&self.window_rates)
    }

    /// Total compile milliseconds, text to a ready step function.
    pub fn compile_total_ms(&self) -> f64 {
        self.compile_ms.iter().map(|(_, ms)| ms).sum()
    }

    /// `100·(max − min)/median` of the window rates.
    pub fn spread_pct(&self) -> f64 {
        let max = self.window_rates.iter().copied().fold(f64::MIN, f64::max);
        let min = self.window_rates.iter().copied().fold(f64::MAX, f64::min);
        100.0 * (max - min) / self.steps_per_s()
    }

    /// One JSON object on one line; `steps_per_s` comes first (`compare-peers` takes the
    /// first key that looks like a rate).
    pub fn json(&self) -> String {
        use serde_json::json;
        let sps = self.steps_per_s();
        let mut compile: Vec<(&str, String)> =
            self.compile_ms.iter().map(|(s, ms)| (*s, json!(round3(*ms)).to_string())).collect();
        compile.push(("total", json!(round3(self.compile_total_ms())).to_string()));
        let rates: Vec<f64> = self.window_rates.iter().map(|r| round3(*r)).collect();
        let rss = self.peak_rss_mib.map(round3);
        let fields: Vec<(&str, serde_json::Value)> = vec![
            ("steps_per_s", json!(round3(sps))),
            ("us_per_step", json!(round3(1e6 / sps))),
            ("spread_pct", json!(round3(self.spread_pct()))),
            ("window_rates", json!(rates)),
            ("steps_per_window", json!(self.steps_per_window)),
            ("compile_total_ms", json!(round3(self.compile_total_ms()))),
            ("forward_compile_ms", json!(round3(self.forward_compile_ms))),
            ("first_step_ms", json!(round3(self.first_step_ms))),
            ("peak_rss_mib", json!(rss)),
            ("gflops", json!(round3(self.matmul_flop_per_step * sps / 1e9))),
            ("matmul_flop_per_step", json!(self.matmul_flop_per_step)),
            ("n_params", json!(self.n_params)),
            ("loss_first", json!(self.loss_first)),
            ("loss_last", json!(self.loss_last)),
            ("config", json!(self.config)),
            ("model", json!(self.model)),
            ("backend", json!(self.engine.name())),
            ("threads", json!(self.threads)),
            ("threads_used", json!(self.threads_used)),
            ("batch", json!(self.batch)),
            ("system", json!("nnc")),
        ];
        let mut text: Vec<(&str, String)> =
            fields.into_iter().map(|(k, v)| (k, v.to_string())).collect();
        text.insert(5, ("compile_ms", object(&compile)));
        object(&text)
    }

    /// A readable table.
    pub fn table(&self) -> String {
        let used = match self.threads_used {
            n if n == self.threads => String::new(),
            n => format!(" ({n} used: nothing large enough to split)"),
        };
        let mut s = format!(
            "{} ({}), backend {}, {} thread{}{used}, batch {}, {} parameters\n",
            self.config,
            self.model,
            self.engine.name(),
            self.threads,
            if self.threads == 1 { "" } else { "s" },
            self.batch,
            self.n_params
        );
        s.push_str("compile\n");
        for (stage, ms) in &self.compile_ms {
            s.push_str(&format!("  {stage:<10} {ms:>9.3} ms\n"));
        }
        s.push_str(&format!("  {:<10} {:>9.3} ms\n", "total", self.compile_total_ms()));
        if self.forward_compile_ms > 0.0 {
            let f = self.forward_compile_ms;
            s.push_str(&format!(
                "  {:<10} {f:>9.3} ms (on first use, not in the total)\n",
                "forward"
            ));
        }
        let sps = self.steps_per_s();
        s.push_str(&format!(
            "run\n  first step {:>9.3} ms\n  steps/s    {sps:>9.1}   ({:.1} µs/step, spread {:.0}%, {} windows of {} steps)\n",
            self.first_step_ms,
            1e6 / sps,
            self.spread_pct(),
            self.window_rates.len(),
            self.steps_per_window
        ));
        s.push_str(&format!(
            "  matmuls    {:>9.2} GFLOP/s ({:.3e} flop/step)\n",
            self.matmul_flop_per_step * sps / 1e9,
            self.matmul_flop_per_step
        ));
        s.push_str(&format!("  loss       {:.4} -> {:.4}\n", self.loss_first, self.loss_last));
        if let Some(m) = self.peak_rss_mib {
            s.push_str(&format!("memory\n  peak RSS   {m:>9.1} MiB\n"));
        }
        s
    }
}

fn round3(x: f64) -> f64 {
    if x.is_finite() {
        (x * 1000.0).round() / 1000.0
    } else {
        x
    }
}

/// The text of a JSON object with `fields` (already JSON text) in the given order
/// (serde_json's own map would sort the keys).
fn object(fields: &[(&str, String)]) -> String {
    let body: Vec<String> =
        fields.iter().map(|(k, v)| format!("{}:{v}", serde_json::Value::from(*k))).collect();
    format!("{{{}}}", body.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The observed compilation is `pipeline::compile`, and reports every front-half stage.
    #[test]
    fn observed_compile_matches_the_pipeline() {
        let mut files: Vec<std::path::PathBuf> = Vec::new();
        for dir in ["examples", "examples/bench", "tests/cases/ok"] {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.extension().is_some_and(|x| x == "nn") {
                    files.push(p);
                }
            }
        }
        assert!(files.len() >= 10, "{files:?}");
        for f in files {
            let src = std::fs::read_to_string(&f).unwrap();
            let want = crate::pipeline::compile(&src).unwrap();
            let mut times = Timer::default();
            let got = pipeline::compile_observed(&src, &Default::default(), None, &mut times);
            let got = got.unwrap();
            let print = |g: &Graph| crate::graph::print::print(g, Some(&src));
            assert_eq!(print(&got.opt), print(&want.opt), "{}", f.display());
            assert_eq!(print(&got.forward), print(&want.forward), "{}", f.display());
            assert_eq!(print(&got.lowered), print(&want.lowered), "{}", f.display());
            assert_eq!(print(&got.grad), print(&want.grad), "{}", f.display());
            assert_eq!(got.rules, want.rules, "{}", f.display());
            let names: Vec<&str> = times.0.iter().map(|(s, _)| *s).collect();
            let stages = ["parse", "check", "lower", "passes", "autodiff", "update"];
            assert_eq!(names, stages, "{}", f.display());
        }
    }

    #[test]
    fn matmul_flop_counts_the_step_products() {
        // Config A: forward 64·32 and 32·10 per example; backward: both weight gradients and
        // the hidden layer's input gradient (none for the input x): 2·B·(3·320 + 2·2048).
        let src = std::fs::read_to_string("examples/bench/a.nn").unwrap();
        let c = crate::pipeline::compile(&src).unwrap();
        assert_eq!(matmul_flop(&c.opt, 32), 2.0 * 32.0 * (3.0 * 320.0 + 2.0 * 2048.0));
    }

    #[test]
    fn median_and_json_order() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        let r = Report {
            config: "a".into(),
            model: "M".into(),
            engine: Engine::Interp,
            threads: 1,
            threads_used: 1,
            batch: 4,
            n_params: 10,
            matmul_flop_per_step: 1e6,
            compile_ms: vec![("parse", 0.5), ("check", 1.25)],
            forward_compile_ms: 0.0,
            first_step_ms: 0.1,
            window_rates: vec![100.0, 200.0, 400.0],
            steps_per_window: 50,
            loss_first: 2.0,
            loss_last: 1.0,
            peak_rss_mib: Some(3.0),
            profile: None,
        };
        let j = r.json();
        assert!(j.starts_with(r#"{"steps_per_s":200.0,"us_per_step":5000.0,"#), "{j}");
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["compile_ms"]["total"], 1.75);
        assert_eq!(v["compile_ms"]["check"], 1.25);
        assert_eq!(v["spread_pct"], 150.0);
        assert_eq!(v["gflops"], 0.2);
        assert!(r.table().contains("steps/s"));
    }
}
