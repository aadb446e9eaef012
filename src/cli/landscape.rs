//! `nnc landscape`: the loss around given weights along random directions
//! (`nnc::study::landscape`), on a 1D grid or a 2D one, written as CSV (`--out`) and drawn
//! (`--plot`: a curve, or a surface with contour lines), with a short table.
//!
//! CSV columns: `a` (and `b` with `--2d`), then `train_<output>` for the loss and each metric,
//! then `validation_<output>` when the file holds out a validation split; one row per
//! point, `a` varying fastest.

use std::path::PathBuf;

use clap::ValueEnum;
use nnc::pipeline::CompileOptions;
use nnc::plot::{self, Figure, Lines, Series, Surface};
use nnc::study::landscape::{self, Norm};
use nnc::study::line;
use nnc::train::report::{csv_f64, sig};

use super::line::{Along, Grid, Setup};
use super::Failure;

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum NormArg {
    Filter,
    Layer,
    None,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum IgnoreArg {
    BiasBn,
}

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The model file (.nn).
    file: PathBuf,
    /// The weights at the centre of the picture.
    #[arg(long, value_name = "W.safetensors")]
    weights: PathBuf,
    /// Points per axis (odd counts put one at the centre).
    #[arg(long, default_value_t = 51, value_parser = super::line::at_least_two)]
    grid: usize,
    /// Two directions and a surface, instead of one and a curve.
    #[arg(long = "2d")]
    two_d: bool,
    /// The coefficients of the directions: from:to.
    #[arg(long, default_value = "-1:1", value_parser = span, allow_hyphen_values = true)]
    range: (f64, f64),
    /// How each random direction is scaled: each filter (row of a weight) to the norm of the
    /// weights' (Li et al.), each tensor, or not at all.
    #[arg(long, value_enum, default_value = "filter")]
    norm: NormArg,
    /// Give no direction to the parameters of one dimension (biases, batch norm's).
    #[arg(long, value_enum)]
    ignore: Option<IgnoreArg>,
    /// Seed of the directions (default: the file's seed).
    #[arg(long)]
    dir_seed: Option<u64>,
    #[command(flatten)]
    along: Along,
}

fn span(s: &str) -> Result<(f64, f64), String> {
    let bad = || format!("expected FROM:TO with FROM < TO, found `{s}`");
    let (a, b) = s.split_once(':').ok_or_else(bad)?;
    let (a, b): (f64, f64) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
    match a < b && a.is_finite() && b.is_finite() {
        true => Ok((a, b)),
        false => Err(bad()),
    }
}

pub(crate) fn run(a: Args) -> Result<(), Failure> {
    let o = CompileOptions {
        purpose: nnc::check::Purpose::Evaluate,
        allow_nonfinite: true,
        sets: a.along.run.sets.clone(),
        ..Default::default()
    };
    let inputs = [("--weights", &Some(a.weights.clone()))];
    let s = Setup::new(&a.file, &a.along, &Grid::ENDS, o, &inputs, &[])?;
    let theta = s.weights(&a.weights)?;
    let norm = match a.norm {
        NormArg::Filter => Norm::Filter,
        NormArg::Layer => Norm::Layer,
        NormArg::None => Norm::None,
    };
    let ignore = a.ignore.is_some();
    let seed = a.dir_seed.unwrap_or(s.spec.seed);
    let dims = if a.two_d { 2 } else { 1 };
    let dirs: Vec<_> = (0..dims)
        .map(|k| landscape::random(&s.c.model, &theta, seed, k as u64, norm, ignore))
        .collect();
    let (lo, hi) = a.range;
    let axis: Vec<f64> =
        (0..a.grid).map(|i| lo + (hi - lo) * i as f64 / (a.grid - 1) as f64).collect();
    let grid: Vec<Vec<f64>> = match dims {
        1 => axis.iter().map(|&x| vec![x]).collect(),
        _ => axis.iter().flat_map(|&y| axis.iter().map(move |&x| vec![x, y])).collect(),
    };
    println!(
        "landscape of {}: {} random direction(s) (seed {seed}, {} normalization{}), {} points on [{}, {}]{}",
        a.weights.display(),
        dims,
        format!("{:?}", norm).to_lowercase(),
        if ignore { ", none for biases and batch norm" } else { "" },
        a.grid,
        lo,
        hi,
        if dims == 2 { " per axis" } else { "" },
    );
    for (k, d) in dirs.iter().enumerate() {
        println!(
            "  ‖d{}‖ = {}  (‖θ‖ = {})",
            k + 1,
            sig(landscape::norm(d), 5),
            sig(landscape::norm(&theta.params), 5)
        );
    }
    let mut be = nnc::train::session::backend_with(s.kind, &s.c, theta.clone())?;
    let (train, val) = (&s.train, s.validation.as_ref());
    let mut rows = Vec::new();
    for c in &grid {
        let w = landscape::shifted(&theta, &dirs, c);
        let (t, v) = line::at(&s.c.model, be.as_mut(), &w, train, val, &s.settings)?;
        rows.push((c.clone(), t, v));
    }
    let losses: Vec<f64> = rows.iter().map(|r| r.1[0] as f64).collect();
    let centre = rows.iter().position(|r| r.0.iter().all(|x| *x == 0.0));
    let (min_i, _) =
        losses
            .iter()
            .enumerate()
            .fold((0, f64::INFINITY), |m, (i, &l)| if l < m.1 { (i, l) } else { m });
    let at = |c: &[f64]| c.iter().map(|x| sig(*x, 3)).collect::<Vec<_>>().join(", ");
    if let Some(i) = centre {
        println!("  train loss at the centre  {}", sig(losses[i], 6));
    }
    println!("  lowest train loss         {} at ({})", sig(losses[min_i], 6), at(&rows[min_i].0));
    let max = losses.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    println!("  highest train loss        {}", sig(max, 6));
    let names = s.names();
    if let Some(p) = &a.along.out {
        let mut head: Vec<String> = ["a", "b"][..dims].iter().map(|s| s.to_string()).collect();
        head.extend(names.iter().map(|n| format!("train_{n}")));
        if val.is_some() {
            head.extend(names.iter().map(|n| format!("validation_{n}")));
        }
        let mut text = head.join(",") + "\n";
        for (c, t, v) in &rows {
            let cells =
                c.iter().copied().chain(t.iter().chain(v.iter().flatten()).map(|x| *x as f64));
            text += &(cells.map(csv_f64).collect::<Vec<_>>().join(",") + "\n");
        }
        nnc::files::write_atomic(p, text.as_bytes())
            .map_err(|e| Failure::Message(format!("cannot write {}: {e}", p.display())))?;
        println!("wrote {}", p.display());
    }
    if let Some(p) = &a.along.plot {
        let title = format!("train loss around {}", a.weights.display());
        let figure = match dims {
            1 => {
                let mut series = vec![Series {
                    label: "train loss".into(),
                    points: axis.iter().copied().zip(losses.iter().copied()).collect(),
                }];
                if val.is_some() {
                    let v = rows
                        .iter()
                        .map(|r| (r.0[0], r.2.as_ref().map_or(f64::NAN, |v| v[0] as f64)));
                    series.push(Series { label: "validation loss".into(), points: v.collect() });
                }
                Figure::Lines(Lines {
                    title,
                    x_label: "a (direction 1)".into(),
                    y_label: "loss".into(),
                    series,
                    log_x: false,
                    log_y: false,
                })
            }
            _ => Figure::Surface(Surface {
                title,
                x_label: "a (direction 1)".into(),
                y_label: "b (direction 2)".into(),
                value_label: "train loss".into(),
                x: axis.clone(),
                y: axis.clone(),
                z: losses.chunks(a.grid).map(|r| r.to_vec()).collect(),
                log: true,
                levels: 12,
                path: None,
            }),
        };
        plot::write(p, &figure)?;
        println!("wrote {}", p.display());
    }
    Ok(())
}
