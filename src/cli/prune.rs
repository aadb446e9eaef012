//! `nnc prune`: iterative magnitude pruning (`nnc::study::prune`): trains the dense model,
//! then each level's ticket (and control), printing a row per level as it ends; writes every
//! level's weights and masks into `--out`, a CSV (`--csv`) and a picture (`--plot`).
//!
//! CSV columns: `level`, `remaining` (the fraction of the masked weights that survive), then
//! `train_<output>` and `validation_<output>` of the ticket, then the same prefixed
//! `control_` when there is a control.

use std::path::PathBuf;

use clap::ValueEnum;
use nnc::pipeline::CompileOptions;
use nnc::plot::{Figure, Lines, Series};
use nnc::study::prune::{self, Control, Level, Scope, Settings};
use nnc::train::report::{csv_f64, sig};
use nnc::train::session::{self, Options};

use super::{
    backend_kind, base_dir, check_outputs, compile_with, default_threads, positive, thread_count,
};
use super::{draw, write_text};
use super::{BackendArg, Failure, RunArgs};

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ControlArg {
    RandomReinit,
    RandomPrune,
}

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The model file (.nn).
    file: PathBuf,
    /// Pruning levels after the dense run.
    #[arg(long, default_value_t = 5, value_parser = positive)]
    levels: usize,
    /// The fraction of the surviving weights each level prunes.
    #[arg(long, default_value_t = 0.2, value_parser = fraction)]
    rate: f64,
    /// Prune by magnitude over all weights at once (the default prunes layer by layer).
    #[arg(long, conflicts_with = "output_rate")]
    global: bool,
    /// Layer by layer: the output layer's (the last weight's) rate; default half of --rate,
    /// as Frankle & Carbin prune it.
    #[arg(long, value_parser = fraction)]
    output_rate: Option<f64>,
    /// Reset the survivors to their values after this many steps of the dense run (default
    /// 0: the initialization).
    #[arg(long, default_value_t = 0)]
    rewind: u64,
    /// Also train a control at each level: the same mask from a new initialization, or a
    /// random mask of the same sizes from the same weights.
    #[arg(long, value_enum)]
    control: Option<ControlArg>,
    /// A new or empty folder for every level's weights and masks.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Write one row per level here.
    #[arg(long, value_name = "FILE.csv")]
    csv: Option<PathBuf>,
    /// Draw accuracy (else the loss) against the weights remaining.
    #[arg(long, value_name = "FILE.svg|FILE.png")]
    plot: Option<PathBuf>,
    /// Train every level for this many epochs (default: the file's).
    #[arg(long, value_parser = positive)]
    epochs: Option<usize>,
    /// The engine: the JIT, or the reference interpreter.
    #[arg(long, value_enum, default_value = "jit")]
    backend: BackendArg,
    /// Threads of the JIT.
    #[arg(long, default_value_t = default_threads(), value_parser = thread_count)]
    threads: usize,
    #[command(flatten)]
    run: RunArgs,
}

/// `x` as a percentage, to 4 decimals without trailing zeros (`0.3` is `30`, not
/// `30.000000000000004`).
fn percent(x: f64) -> f64 {
    (x * 1e6).round() / 1e4
}

fn fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x > 0.0 && x < 1.0 => Ok(x),
        _ => Err(format!("expected a fraction between 0 and 1, found `{s}`")),
    }
}

pub(crate) fn run(a: Args) -> Result<(), Failure> {
    let o = CompileOptions { sets: a.run.sets.clone(), masks: true, ..Default::default() };
    let c = compile_with(&a.file, &o, a.run.seed)?;
    if c.model.optimizer.method == nnc::check::Method::Lbfgs {
        return Err(Failure::Message(
            "prune trains with a first-order optimizer, not lbfgs".into(),
        ));
    }
    check_outputs(&a.file, &c, &a.run, &[], &[("--csv", &a.csv), ("--plot", &a.plot)])?;
    if std::fs::read_dir(&a.out).is_ok_and(|mut e| e.next().is_some()) {
        return Err(Failure::Message(format!(
            "--out {}: not empty (every level's weights go there)",
            a.out.display()
        )));
    }
    std::fs::create_dir_all(&a.out)
        .map_err(|e| format!("cannot create {}: {e}", a.out.display()))?;
    let scope = match a.global {
        true => Scope::Global,
        false => Scope::Layerwise { output_rate: a.output_rate.unwrap_or(a.rate / 2.0) },
    };
    let control = a.control.map(|c| match c {
        ControlArg::RandomReinit => Control::RandomReinit,
        ControlArg::RandomPrune => Control::RandomPrune,
    });
    let s = Settings {
        levels: a.levels,
        rate: a.rate,
        scope,
        rewind: a.rewind,
        control,
        out: a.out.clone(),
    };
    let options = Options {
        epochs: a.epochs,
        batch: a.run.batch,
        seed: a.run.seed,
        data: a.run.data.clone(),
        ..Default::default()
    };
    let names: Vec<String> = c.forward.outputs.iter().map(|o| o.name.clone()).collect();
    let masked = c.model.masks().iter().flatten().count();
    println!(
        "lottery tickets: {} levels pruning {}% of the surviving weights ({}), rewinding to step {}, {} masked weight tensors{}",
        a.levels,
        percent(a.rate),
        match scope {
            Scope::Global => "globally".to_string(),
            Scope::Layerwise { output_rate } => {
                format!("layer by layer, the output layer {}%", percent(output_rate))
            }
        },
        a.rewind,
        masked,
        match control {
            Some(Control::RandomReinit) => ", control: random re-initialization",
            Some(Control::RandomPrune) => ", control: random pruning",
            None => "",
        }
    );
    let shown = |(t, v): &(Vec<f32>, Option<Vec<f32>>)| {
        let both = t.iter().chain(v.iter().flatten());
        both.map(|x| format!("{:>14}", sig(*x as f64, 4))).collect::<Vec<_>>().join("")
    };
    let mut head = format!("{:>5} {:>10} ", "level", "remaining");
    let has_val = session::effective_spec(&c.model, &options).validation > 0.0;
    let splits: Vec<&str> = if has_val { vec!["", "val_"] } else { vec![""] };
    for prefix in ["", "ctl_"].iter().take(if control.is_some() { 2 } else { 1 }) {
        for split in &splits {
            for n in &names {
                head += &format!("{:>14}", format!("{prefix}{split}{n}"));
            }
        }
    }
    println!("{head}");
    let kind = backend_kind(a.backend, a.threads);
    let levels = prune::run(&c, kind, base_dir(&a.file), &options, &s, |l: &Level| {
        let control = l.control.as_ref().map_or(String::new(), shown);
        println!("{:>5} {:>9.2}% {}{control}", l.level, 100.0 * l.remaining, shown(&l.ticket));
    })?;
    println!("wrote the weights and masks of every level to {}", a.out.display());
    if let Some(p) = &a.csv {
        let mut head = vec!["level".to_string(), "remaining".to_string()];
        for prefix in ["", "control_"].iter().take(if control.is_some() { 2 } else { 1 }) {
            for split in if has_val { vec!["train", "validation"] } else { vec!["train"] } {
                head.extend(names.iter().map(|n| format!("{prefix}{split}_{n}")));
            }
        }
        let mut text = head.join(",") + "\n";
        for l in &levels {
            let mut row = vec![l.level.to_string(), csv_f64(l.remaining)];
            for (t, v) in std::iter::once(&l.ticket).chain(l.control.iter()) {
                row.extend(t.iter().chain(v.iter().flatten()).map(|x| csv_f64(*x as f64)));
            }
            text += &(row.join(",") + "\n");
        }
        write_text(p, &text)?;
    }
    if let Some(p) = &a.plot {
        // The first metric if there is one (accuracy), else the loss; validation if held out.
        let k = if names.len() > 1 { 1 } else { 0 };
        let pick = |(t, v): &(Vec<f32>, Option<Vec<f32>>)| v.as_ref().unwrap_or(t)[k] as f64;
        let what = format!("{}{}", if has_val { "validation " } else { "train " }, names[k]);
        let series_of = |label: &str, f: &dyn Fn(&Level) -> Option<f64>| Series {
            label: label.into(),
            points: levels.iter().filter_map(|l| Some((100.0 * l.remaining, f(l)?))).collect(),
        };
        let mut series = vec![series_of("ticket", &|l| Some(pick(&l.ticket)))];
        if control.is_some() {
            series.push(series_of("control", &|l| l.control.as_ref().map(pick)));
        }
        let title = format!("{what} against the weights remaining");
        let lines = Lines {
            title,
            x_label: "weights remaining (%)".into(),
            y_label: what,
            series,
            log_x: true,
            log_y: false,
        };
        draw(p, &Figure::Lines(lines))?;
    }
    Ok(())
}
