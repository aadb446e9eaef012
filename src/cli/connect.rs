//! `nnc connect`: trains a curve between two weight files (`nnc::study::curve`) with the
//! file's optimizer, schedule and batch, saves it (`--save`), then evaluates the line and the
//! curve on the same grid and prints their barriers side by side. The CSV holds both
//! (`line_…` and `curve_…` columns, as `nnc line` names them).

use std::path::PathBuf;

use clap::ValueEnum;
use nnc::check::Method;
use nnc::pipeline::CompileOptions;
use nnc::study::curve;
use nnc::study::path::{Curve, Path};
use nnc::train::report::sig;

use super::line::{table, write, Along, Grid, Setup};
use super::{positive, Failure};

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum CurveArg {
    Bezier,
    Polychain,
}

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The model file (.nn).
    file: PathBuf,
    /// One endpoint (t = 0).
    #[arg(long, value_name = "A.safetensors")]
    from: PathBuf,
    /// The other endpoint (t = 1).
    #[arg(long, value_name = "B.safetensors")]
    to: PathBuf,
    /// The curve: a Bézier curve with the bends as control points (Garipov et al.), or
    /// straight segments through them.
    #[arg(long, value_enum, default_value = "bezier")]
    curve: CurveArg,
    /// Trainable points of the curve between its endpoints.
    #[arg(long, default_value_t = 1, value_parser = positive)]
    bends: usize,
    /// Epochs of training (default: the file's).
    #[arg(long)]
    epochs: Option<usize>,
    /// Write the curve here (its endpoints and bends; `nnc line --curve` reads it).
    #[arg(long, value_name = "CURVE.safetensors")]
    save: Option<PathBuf>,
    /// Print no per-epoch lines.
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    grid: Grid,
    #[command(flatten)]
    along: Along,
}

pub(crate) fn run(a: Args) -> Result<(), Failure> {
    let o = CompileOptions { sets: a.along.run.sets.clone(), ..Default::default() };
    let inputs = [("--from", &Some(a.from.clone())), ("--to", &Some(a.to.clone()))];
    let s = Setup::new(&a.file, &a.along, &a.grid, o, &inputs, &[("--save", &a.save)])?;
    if s.c.model.optimizer.method == Method::Lbfgs {
        return Err(Failure::Message(
            "connect trains with a first-order optimizer, not lbfgs".into(),
        ));
    }
    let (from, to) = (s.weights(&a.from)?, s.weights(&a.to)?);
    let kind = match a.curve {
        CurveArg::Bezier => Curve::Bezier,
        CurveArg::Polychain => Curve::Polychain,
    };
    let name = format!("{:?}", kind).to_lowercase();
    // A file that counts steps trains its curve for as many epochs as they make.
    let per_epoch = s.train.len().div_ceil(s.spec.batch.max(1)).max(1);
    let epochs =
        a.epochs.or(s.spec.steps.map(|n| n.div_ceil(per_epoch))).or(s.spec.epochs).unwrap_or(1);
    let cs = curve::compile(&s.c, kind, a.bends, true);
    println!(
        "{name} curve with {} bend(s) from {} to {}: {epochs} epochs of batch {}, t uniform per batch",
        a.bends,
        a.from.display(),
        a.to.display(),
        s.spec.batch
    );
    let every = nnc::train::session::default_every(epochs, 1);
    let report = |epoch: usize, loss: f64| {
        if !a.quiet && (epoch == 1 || epoch == epochs || epoch % every == 0) {
            println!("epoch {epoch:>4}  loss {}", sig(loss, 6));
        }
    };
    let curve = curve::train(&cs, s.kind, (&from, &to), &s.train, &s.spec, epochs, report)?;
    if let Some(p) = &a.save {
        curve::save(&s.c.model, &curve, p)?;
        println!("saved the curve to {}", p.display());
    }
    println!("line and curve: {}", s.describe());
    let line = s.evaluate(&Path::line(from, to))?;
    let bent = s.evaluate(&curve)?;
    let paths = [("line", &line[..]), ("curve", &bent[..])];
    print!("{}", table(&paths));
    let title = format!("loss along the line and the {name} curve");
    write(&s.names(), &paths, &a.along.out, &a.along.plot, title)
}
