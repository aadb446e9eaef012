//! The library's runtime errors: everything that can fail once a model has compiled (its
//! data, weight files, a run's inputs, the JIT, output files, a diverging run, settings that
//! cannot work), typed up to `main`, which renders them with `Display`. Mistakes in the
//! source are `diagnostic::Diagnostic`s, with spans. The JIT and the backends have their own
//! error types (`jit::JitError`, `runtime::RunError`), so they depend on neither this module
//! nor `train`.

use std::fmt;
use std::path::PathBuf;

use crate::graph::eval::EvalError;
use crate::jit::JitError;
use crate::runtime::RunError;
use crate::train::data::DataError;
use crate::train::weights::WeightsError;

#[derive(Debug)]
pub enum Error {
    /// The data set: a file that cannot be read, or that does not fit the model.
    Data(DataError),
    /// A weight file that cannot be read, or that does not fit the model.
    Weights(WeightsError),
    /// A backend call (a run's inputs, tensors of the wrong shape).
    Run(RunError),
    /// The JIT cannot compile the model.
    Jit(JitError),
    /// An output file that cannot be written.
    Write { path: PathBuf, source: std::io::Error },
    /// Weights to be saved hold NaN or an infinity (nothing was written).
    NonFiniteSave { path: PathBuf, name: String, at: Vec<usize>, value: f32 },
    /// The loss or a parameter stopped being finite (training stopped there).
    NonFinite(Box<NonFinite>),
    /// A checkpoint that cannot be read or does not fit this run (`message` says why).
    Checkpoint { path: PathBuf, message: String },
    /// A signal (SIGINT, SIGTERM) stopped training after `step`, with a checkpoint in `dir`.
    Interrupted { step: u64, dir: PathBuf },
    /// The model does not fit in memory (checked before any of it is allocated).
    Memory { what: &'static str, needed: u64, available: u64 },
    /// Run settings that cannot work (no data, an empty training split, `--log-layers`
    /// without `--log`, ...).
    Settings(String),
    /// A broken invariant of nnc itself.
    Internal(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Where a run stopped being finite.
#[derive(Debug)]
pub struct NonFinite {
    pub step: u64,
    pub epoch: usize,
    /// `the loss` or ``parameter `fc1.weight` ``.
    pub what: String,
    /// Its first non-finite value.
    pub value: f32,
    /// The step's first non-finite graph node, from a replay of the step in the interpreter
    /// (its IR line, source line and value), or why it was not found.
    pub origin: std::result::Result<String, String>,
    /// The last checkpoint (all finite) and its step.
    pub checkpoint: Option<(PathBuf, u64)>,
}

impl fmt::Display for NonFinite {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let (step, epoch, what, value) = (self.step, self.epoch, &self.what, self.value);
        writeln!(f, "{what} became {value} at step {step} (epoch {epoch}): training stopped")?;
        match &self.origin {
            Ok(o) => writeln!(f, "  the first non-finite value: {o}")?,
            Err(why) => writeln!(f, "  (the node it started at is unknown: {why})")?,
        }
        match &self.checkpoint {
            Some((dir, s)) => {
                writeln!(f, "  the last finite checkpoint: {} (step {s})", dir.display())?
            }
            None => writeln!(f, "  no checkpoint was written (--checkpoint DIR keeps one)")?,
        }
        write!(
            f,
            "  try a smaller learning rate or gradient clipping; --allow-nonfinite trains on regardless"
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Error::Data(e) => write!(f, "{e}"),
            Error::Weights(e) => write!(f, "{e}"),
            Error::Run(e) => write!(f, "{e}"),
            Error::Jit(e) => write!(f, "the JIT cannot compile this model: {e}"),
            Error::Settings(m) => write!(f, "{m}"),
            Error::Write { path, source } => write!(f, "cannot write {}: {source}", path.display()),
            Error::NonFiniteSave { path, name, at, value } => write!(
                f,
                "not saving {}: `{name}` holds {value} at {at:?} (the run diverged)",
                path.display()
            ),
            Error::NonFinite(n) => write!(f, "{n}"),
            Error::Checkpoint { path, message } => {
                write!(f, "cannot resume from {}: {message}", path.display())
            }
            Error::Interrupted { step, dir } => write!(
                f,
                "interrupted after step {step}; the checkpoint in {} continues it (--resume {})",
                dir.display(),
                dir.display()
            ),
            Error::Memory { what, needed, available } => {
                write!(f, "{what} need {needed} bytes of memory, and {available} are available")
            }
            Error::Internal(m) => write!(f, "internal error: {m}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<DataError> for Error {
    fn from(e: DataError) -> Error {
        Error::Data(e)
    }
}

impl From<WeightsError> for Error {
    fn from(e: WeightsError) -> Error {
        Error::Weights(e)
    }
}

impl From<RunError> for Error {
    fn from(e: RunError) -> Error {
        Error::Run(e)
    }
}

impl From<EvalError> for Error {
    fn from(e: EvalError) -> Error {
        Error::Run(RunError::Eval(e))
    }
}

impl From<JitError> for Error {
    fn from(e: JitError) -> Error {
        Error::Jit(e)
    }
}

impl Error {
    /// [`Error::Write`] of `path`.
    pub fn write(path: &std::path::Path, source: std::io::Error) -> Error {
        Error::Write { path: path.to_path_buf(), source }
    }
}
