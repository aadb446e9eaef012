//! `nnc landscape`: the loss around given weights along one or two directions
//! (`nnc::study::landscape`): random ones, or the principal directions of a training
//! trajectory (`--dirs pca --trajectory DIR`, which `nnc train --trajectory DIR` writes),
//! on a grid, written as CSV (`--out`) and drawn (`--plot`: a curve, or a surface with
//! contour lines and the trajectory), with a short table.
//!
//! CSV columns: `a` (and `b` with `--2d`), then `train_<output>` for the loss and each metric,
//! then `validation_<output>` when the file holds out a validation split; one row per
//! point, `a` varying fastest.

use std::path::{Path, PathBuf};

use clap::ValueEnum;
use nnc::plot::{Figure, Lines, Series, Surface};
use nnc::study::landscape::{self, Norm};
use nnc::study::line;
use nnc::tensor::Tensor;
use nnc::train::report::{csv_f64, sig};
use nnc::train::session;
use nnc::train::state::Weights;

use super::line::{Along, Grid, Setup};
use super::Failure;
use super::{draw, write_text};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DirsArg {
    Random,
    Pca,
}

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
    /// The weights at the centre of the picture (with --dirs pca: the run's last).
    #[arg(long, value_name = "W.safetensors")]
    weights: PathBuf,
    /// The directions: random (seeded, scaled by --norm), or the first principal components
    /// of the trajectory in --trajectory's folder (Li et al.).
    #[arg(long, value_enum, default_value = "random")]
    dirs: DirsArg,
    /// With --dirs pca: the folder `nnc train --trajectory` wrote.
    #[arg(long, value_name = "DIR", required_if_eq("dirs", "pca"))]
    trajectory: Option<PathBuf>,
    /// Points per axis (odd counts put one at the centre).
    #[arg(long, default_value_t = 51, value_parser = super::line::at_least_two)]
    grid: usize,
    /// Two directions and a surface, instead of one and a curve.
    #[arg(long = "2d")]
    two_d: bool,
    /// The coefficients of the directions, FROM:TO (default -1:1 for random directions;
    /// for PCA, the trajectory's extent and a fifth more on each side).
    #[arg(long, value_parser = span, allow_hyphen_values = true)]
    range: Option<(f64, f64)>,
    /// How each random direction is scaled: each filter (row of a weight) to the norm of the
    /// weights' (Li et al.), each tensor, or not at all.
    #[arg(long, value_enum, default_value = "filter")]
    norm: NormArg,
    /// Give no random direction to the parameters of one dimension (biases, batch norm's).
    #[arg(long, value_enum)]
    ignore: Option<IgnoreArg>,
    /// Seed of the random directions (default: the file's seed).
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

/// The directions, what to say of them, each axis' default range, and the trajectory's
/// coordinates (PCA).
struct Directions {
    dirs: Vec<Vec<Tensor<f32>>>,
    says: String,
    ranges: Vec<(f64, f64)>,
    path: Option<Vec<Vec<f64>>>,
}

fn random(a: &Args, s: &Setup, theta: &Weights, dims: usize) -> Directions {
    let norm = match a.norm {
        NormArg::Filter => Norm::Filter,
        NormArg::Layer => Norm::Layer,
        NormArg::None => Norm::None,
    };
    let ignore = a.ignore.is_some();
    let seed = a.dir_seed.unwrap_or(s.spec.seed);
    let dirs: Vec<_> = (0..dims)
        .map(|k| landscape::random(&s.c.model, theta, seed, k as u64, norm, ignore))
        .collect();
    let mut says = format!(
        "{dims} random direction(s) (seed {seed}, {} normalization{})",
        format!("{norm:?}").to_lowercase(),
        if ignore { ", none for biases and batch norm" } else { "" }
    );
    for (k, d) in dirs.iter().enumerate() {
        let (nd, nt) = (landscape::norm(d), landscape::norm(&theta.params));
        says += &format!("\n  ‖d{}‖ = {}  (‖θ‖ = {})", k + 1, sig(nd, 5), sig(nt, 5));
    }
    Directions { dirs, says, ranges: vec![(-1.0, 1.0); dims], path: None }
}

/// The snapshots of `dir` (`step-<t>.safetensors`), in step order.
fn snapshots(s: &Setup, dir: &Path) -> Result<Vec<Weights>, Failure> {
    let read = std::fs::read_dir(dir)
        .map_err(|e| Failure::Message(format!("--trajectory {}: {e}", dir.display())))?;
    let mut files: Vec<PathBuf> = read
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            name.starts_with("step-") && name.ends_with(".safetensors")
        })
        .collect();
    files.sort();
    files.iter().map(|f| s.weights(f)).collect()
}

fn pca(a: &Args, s: &Setup, theta: &Weights, dims: usize) -> Result<Directions, Failure> {
    let dir = a.trajectory.as_deref().ok_or("--dirs pca needs --trajectory DIR".to_string())?;
    let snaps = snapshots(s, dir)?;
    let Some(p) = landscape::pca(theta, &snaps, dims) else {
        return Err(Failure::Message(format!(
            "--trajectory {}: {} snapshot(s) that span fewer than {dims} direction(s) \
             (train with --trajectory-every so that it holds more)",
            dir.display(),
            snaps.len()
        )));
    };
    let ranges = (0..dims)
        .map(|k| {
            let c = p.path.iter().map(|c| c[k]).chain([0.0]);
            let (lo, hi) =
                c.fold((f64::INFINITY, f64::NEG_INFINITY), |m, x| (m.0.min(x), m.1.max(x)));
            let pad = (hi - lo) / 5.0;
            (lo - pad, hi + pad)
        })
        .collect();
    let shares: Vec<String> = p.explained.iter().map(|e| format!("{:.1}%", 100.0 * e)).collect();
    let says = format!(
        "{dims} PCA direction(s) of the {} snapshots of {} (explaining {} of their variance)",
        snaps.len(),
        dir.display(),
        shares.join(" and ")
    );
    Ok(Directions { dirs: p.dirs, says, ranges, path: Some(p.path) })
}

/// `x` to 4 decimals, without trailing zeros.
fn short(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

pub(crate) fn run(a: Args) -> Result<(), Failure> {
    let inputs = [("--weights", &Some(a.weights.clone()))];
    let s = Setup::new(&a.file, &a.along, &Grid::ENDS, a.along.evaluating(), &inputs, &[])?;
    let theta = s.weights(&a.weights)?;
    let dims = if a.two_d { 2 } else { 1 };
    let d = match a.dirs {
        DirsArg::Random => random(&a, &s, &theta, dims),
        DirsArg::Pca => pca(&a, &s, &theta, dims)?,
    };
    let axes: Vec<Vec<f64>> = d
        .ranges
        .iter()
        .map(|&r| {
            let (lo, hi) = a.range.unwrap_or(r);
            (0..a.grid).map(|i| lo + (hi - lo) * i as f64 / (a.grid - 1) as f64).collect()
        })
        .collect();
    let grid: Vec<Vec<f64>> = match dims {
        1 => axes[0].iter().map(|&x| vec![x]).collect(),
        _ => axes[1].iter().flat_map(|&y| axes[0].iter().map(move |&x| vec![x, y])).collect(),
    };
    let extent: Vec<String> =
        axes.iter().map(|x| format!("[{}, {}]", short(x[0]), short(x[x.len() - 1]))).collect();
    println!("landscape of {}: {}", a.weights.display(), d.says);
    println!("  {} points per axis on {}", a.grid, extent.join(" x "));
    let mut be = session::backend_with(s.kind, &s.c, theta.clone())?;
    let (train, val) = (&s.train, s.validation.as_ref());
    let mut rows = Vec::new();
    for c in &grid {
        let w = landscape::shifted(&theta, &d.dirs, c);
        let (t, v) = line::at(&s.c.model, be.as_mut(), &w, train, val, &s.settings)?;
        rows.push((c.clone(), t, v));
    }
    let losses: Vec<f64> = rows.iter().map(|r| r.1[0] as f64).collect();
    let at = |c: &[f64]| c.iter().map(|x| sig(*x, 3)).collect::<Vec<_>>().join(", ");
    if let Some(i) = rows.iter().position(|r| r.0.iter().all(|x| *x == 0.0)) {
        println!("  train loss at the centre  {}", sig(losses[i], 6));
    }
    let low = (0..rows.len()).fold(0, |m, i| if losses[i] < losses[m] { i } else { m });
    println!("  lowest train loss         {} at ({})", sig(losses[low], 6), at(&rows[low].0));
    let max = losses.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    println!("  highest train loss        {}", sig(max, 6));
    if let Some(p) = &a.along.out {
        let mut head: Vec<String> = ["a", "b"][..dims].iter().map(|s| s.to_string()).collect();
        let names = s.names();
        head.extend(names.iter().map(|n| format!("train_{n}")));
        if val.is_some() {
            head.extend(names.iter().map(|n| format!("validation_{n}")));
        }
        let mut text = head.join(",") + "\n";
        for (c, t, v) in &rows {
            let outs = t.iter().chain(v.iter().flatten()).map(|x| *x as f64);
            text +=
                &(c.iter().copied().chain(outs).map(csv_f64).collect::<Vec<_>>().join(",") + "\n");
        }
        write_text(p, &text)?;
    }
    if let Some(p) = &a.along.plot {
        let title = format!("train loss around {}", a.weights.display());
        let figure = match dims {
            1 => {
                let curve = |k: usize, label: &str| Series {
                    label: label.into(),
                    points: rows
                        .iter()
                        .map(|r| {
                            (
                                r.0[0],
                                if k == 0 {
                                    r.1[0]
                                } else {
                                    r.2.as_ref().map_or(f32::NAN, |v| v[0])
                                } as f64,
                            )
                        })
                        .collect(),
                };
                let mut series = vec![curve(0, "train loss")];
                if val.is_some() {
                    series.push(curve(1, "validation loss"));
                }
                let (x_label, y_label) = ("a (direction 1)".into(), "loss".into());
                Figure::Lines(Lines { title, x_label, y_label, series, log_x: false, log_y: false })
            }
            _ => Figure::Surface(Surface {
                title,
                x_label: "a (direction 1)".into(),
                y_label: "b (direction 2)".into(),
                value_label: "train loss".into(),
                x: axes[0].clone(),
                y: axes[1].clone(),
                z: losses.chunks(a.grid).map(|r| r.to_vec()).collect(),
                log: true,
                levels: 12,
                path: d.path.as_ref().map(|path| Series {
                    label: "trajectory".into(),
                    points: path.iter().map(|c| (c[0], c[1])).collect(),
                }),
            }),
        };
        draw(p, &figure)?;
    }
    Ok(())
}
