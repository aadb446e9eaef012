//! `nnc lr-find`: the learning-rate range test (`nnc::train::lr_find`). Trains the file's
//! model and optimizer from its initial weights with the rate growing exponentially from
//! `--min` to `--max` over one epoch (at least 100 steps, or `--steps`), then prints where
//! the smoothed loss is lowest and where it falls fastest, and writes the curve (`--out`) and
//! its picture (`--plot`).

use std::path::PathBuf;

use nnc::check::Method;
use nnc::pipeline::CompileOptions;
use nnc::plot::{Figure, Lines, Series};
use nnc::train::lr_find::{self, Point};
use nnc::train::report::{csv_f64, sig};
use nnc::train::{data, session};

use super::plot::Table;
use super::{base_dir, check_outputs, compile_with, run_spec, Failure, RunArgs};
use super::{draw, write_text};

/// Steps of a test whose epoch is shorter.
const MIN_STEPS: usize = 100;

pub(crate) struct Args {
    pub file: PathBuf,
    pub run: RunArgs,
    pub min: f64,
    pub max: f64,
    pub steps: Option<usize>,
    pub out: Option<PathBuf>,
    pub plot: Option<PathBuf>,
}

pub(crate) fn run(a: Args) -> Result<(), Failure> {
    if !(a.min > 0.0 && a.max > a.min && a.max.is_finite()) {
        return Err(Failure::Message(format!(
            "--min {} --max {}: the rates must satisfy 0 < min < max",
            a.min, a.max
        )));
    }
    let plain = CompileOptions { sets: a.run.sets.clone(), ..Default::default() };
    let c = compile_with(&a.file, &plain, a.run.seed)?;
    if c.model.optimizer.method == Method::Lbfgs {
        return Err(Failure::Message("lr-find needs a first-order optimizer, not lbfgs".into()));
    }
    check_outputs(&a.file, &c, &a.run, &[], &[("--out", &a.out), ("--plot", &a.plot)])?;
    let spec = run_spec(&c, &a.run);
    let ds = session::load_data(&c.model, &spec, base_dir(&a.file), a.run.data.as_deref())?;
    let (train, _) = data::split(ds, spec.validation, spec.split_seed());
    let steps = a.steps.unwrap_or(train.len().div_ceil(spec.batch).max(MIN_STEPS));
    let gamma = lr_find::gamma(a.min, a.max, steps);
    let mut sets = a.run.sets.clone();
    sets.push(format!("optimizer.lr={:e}", a.min));
    sets.push(format!("schedule=exponential(gamma = {gamma})"));
    // The loss is read until it blows up; the steps after may not be finite.
    let ramp = CompileOptions { sets, allow_nonfinite: true, ..Default::default() };
    let c = compile_with(&a.file, &ramp, a.run.seed)?;
    println!(
        "lr range test: {steps} steps, lr {} to {} (x{} per step), batch {}",
        csv_f64(a.min),
        csv_f64(a.max),
        sig(gamma, 4),
        spec.batch
    );
    let log = std::env::temp_dir().join(format!("nnc-lr-find-{}.csv", std::process::id()));
    let o = session::Options {
        steps: Some(steps),
        batch: a.run.batch,
        seed: a.run.seed,
        data: a.run.data.clone(),
        log: Some(log.clone()),
        quiet: true,
        allow_nonfinite: true,
        ..Default::default()
    };
    let trained =
        session::train(&c, session::BackendKind::Jit { threads: 1 }, base_dir(&a.file), &o);
    let table = Table::read(&log);
    std::fs::remove_file(&log).ok();
    trained?;
    let table = table?;
    let col = |name: &str| table.column(name, &log);
    let (s, l, y) = (col("step")?, col("lr")?, col("loss")?);
    let num =
        |r: &[String], i: usize| r.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
    let rows: Vec<(u64, f64, f64)> =
        table.rows.iter().map(|r| (num(r, s) as u64, num(r, l), num(r, y))).collect();
    let (points, stopped) = lr_find::smooth(&rows);
    let Some(reading) = lr_find::read(&points, stopped) else {
        return Err(Failure::Message(format!(
            "the loss was not finite from the first step at lr {}: lower --min",
            a.min
        )));
    };
    if let Some(step) = reading.stopped {
        let lr = rows.iter().find(|r| r.0 == step).map_or(f64::NAN, |r| r.1);
        println!(
            "stopped reading at step {step} (lr {}): the smoothed loss passed {}x its minimum",
            sig(lr, 4),
            lr_find::BLOW_UP
        );
    }
    let m = reading.min;
    println!(
        "lowest smoothed loss {} at lr {} (a tenth of it: {})",
        sig(m.smoothed, 4),
        sig(m.lr, 4),
        sig(m.lr / 10.0, 4)
    );
    if let Some(p) = reading.steepest {
        println!("steepest fall of the smoothed loss at lr {}", sig(p.lr, 4));
    }
    if let Some(path) = &a.out {
        let mut text = String::from("step,lr,loss,smoothed_loss\n");
        for &(step, lr, loss) in &rows {
            let smoothed = points
                .iter()
                .find(|p| p.step == step)
                .map_or(String::new(), |p| csv_f64(p.smoothed));
            text += &format!("{step},{},{},{smoothed}\n", csv_f64(lr), csv_f64(loss));
        }
        write_text(path, &text)?;
    }
    if let Some(path) = &a.plot {
        // The smoothed loss, as Smith and fastai draw it: the batch losses' spikes would
        // set the scale.
        let smoothed = Series {
            label: String::new(),
            points: points.iter().map(|p: &Point| (p.lr, p.smoothed)).collect(),
        };
        let lines = Lines {
            title: "learning-rate range test".into(),
            x_label: "learning rate".into(),
            y_label: "smoothed loss".into(),
            series: vec![smoothed],
            log_x: true,
            log_y: false,
        };
        draw(path, &Figure::Lines(lines))?;
    }
    Ok(())
}
