//! `nnc predict`: the model's per-example predictions on a data set, as CSV on standard
//! output or in a file (`nnc::train::predict`).

use std::path::{Path, PathBuf};

use nnc::train::{predict, session};

use super::{base_dir, check_outputs, compile_to_evaluate, run_spec, Failure, RunArgs};

pub(crate) fn run(
    file: &Path,
    weights: &Path,
    out: Option<PathBuf>,
    run: &RunArgs,
) -> Result<(), Failure> {
    let c = compile_to_evaluate(file, run, Some(weights))?;
    check_outputs(file, &c, run, &[("--weights", &Some(weights.into()))], &[("--out", &out)])?;
    session::check_memory(&c)?;
    let spec = run_spec(&c, run);
    let (ds, labelled) =
        session::load_data_maybe_labelled(&c.model, &spec, base_dir(file), run.data.as_deref())?;
    let w = session::initial_weights(&c.model, spec.seed, Some(weights))?;
    let p = predict::predict(&c.model, &w, &ds, labelled, spec.batch.max(256))?;
    match out {
        None => print!("{}", p.csv()),
        Some(path) => {
            nnc::files::write_atomic(&path, p.csv().as_bytes())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            println!("wrote {} predictions to {}", p.rows.len(), path.display());
        }
    }
    Ok(())
}
