//! Small file utilities shared by the CLI and the runtime: atomic writes (never a
//! half-written file), the check of a command's outputs before it starts (never a clobbered
//! input, never a run lost to a missing folder), and readable line diffs (`nnc ir --check`).

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Distinguishes the temporary files of concurrent writes within one process.
static TEMP_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Writes `bytes` to `path` through a temporary file in the same folder, synced, then
/// renamed over `path` (and the folder synced), so a reader, or a crash at any point, sees
/// either the old file whole or the new one whole. A failed write removes its temporary
/// file; one left by a killed process is named `.<name>.<pid>-<n>.tmp` ([`is_temp_of`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_with(path, |tmp| std::fs::File::create(tmp)?.write_all(bytes))
}

/// [`write_atomic`] of what `write` writes to the temporary file it is given (a writer that
/// streams, with no copy of the whole content in memory).
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&Path) -> std::io::Result<()>,
) -> std::io::Result<()> {
    use std::io::{Error, ErrorKind};
    let dir = folder(path);
    let name = path.file_name().ok_or_else(|| {
        Error::new(ErrorKind::InvalidInput, format!("{} is not a file name", path.display()))
    })?;
    let n = TEMP_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{}.{}-{n}.tmp", name.to_string_lossy(), std::process::id()));
    let result = (|| {
        write(&tmp)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // The rename itself reaches the disk with the folder's entry.
        #[cfg(unix)]
        std::fs::File::open(dir)?.sync_all()?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// True if `file_name` is a temporary file [`write_atomic`] makes on its way to `name`.
pub fn is_temp_of(file_name: &str, name: &str) -> bool {
    file_name
        .strip_prefix(&format!(".{name}."))
        .and_then(|rest| rest.strip_suffix(".tmp"))
        .is_some_and(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_digit() || c == '-'))
}

/// The largest `.nn` source nnc reads.
pub const MAX_SOURCE_BYTES: u64 = 64 << 20;

/// Opens `path` for reading if it is a regular file of at most `limit` bytes. A device
/// (`/dev/zero`), a pipe or a folder is refused, so a read of it always ends; the limit is
/// checked against the file's size before a byte is read.
pub fn open_bounded(path: &Path, limit: u64) -> std::io::Result<std::fs::File> {
    use std::io::{Error, ErrorKind};
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        let what =
            if meta.is_dir() { "a folder" } else { "not a regular file (a device or a pipe)" };
        return Err(Error::new(ErrorKind::InvalidInput, what));
    }
    if meta.len() > limit {
        let m = format!("{} bytes, more than the {limit} this can read", meta.len());
        return Err(Error::new(ErrorKind::InvalidInput, m));
    }
    Ok(file)
}

/// The bytes of memory the system can still give (Linux: `MemAvailable`), or `u64::MAX`
/// where unknown: the most a weight or data file may hold.
pub fn available_memory() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(u64::MAX, |kib| kib.saturating_mul(1024))
}

/// A path a command reads or writes, and what named it (`--save`, `the model file`, ...).
pub type Named<'a> = (&'a str, &'a Path);

/// Why an output path is refused.
#[derive(Debug)]
pub enum OutputError {
    /// Its folder does not exist.
    NoFolder { what: String, path: PathBuf },
    /// Its folder does not take a new file.
    NotWritable { what: String, path: PathBuf, source: std::io::Error },
    /// It is an existing folder, not a file.
    IsFolder { what: String, path: PathBuf },
    /// It is the same file as an input or as another output.
    Same { what: String, path: PathBuf, other: String },
}

impl fmt::Display for OutputError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            OutputError::NoFolder { what, path } => {
                let dir = folder(path);
                write!(f, "{what} {}: the folder {} does not exist", path.display(), dir.display())
            }
            OutputError::NotWritable { what, path, source } => {
                let dir = folder(path);
                write!(f, "{what} {}: cannot write in {}: {source}", path.display(), dir.display())
            }
            OutputError::IsFolder { what, path } => {
                write!(f, "{what} {}: that is a folder, not a file", path.display())
            }
            OutputError::Same { what, path, other } => write!(
                f,
                "{what} {} is also {other}: refusing to write over it (give another path)",
                path.display()
            ),
        }
    }
}

impl std::error::Error for OutputError {}

/// The folder a file path is in (`.` for a bare name).
fn folder(path: &Path) -> &Path {
    path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// The file `path` names, as an absolute path without symbolic links (its folder resolved
/// when the file does not exist yet); `None` when its folder does not exist.
fn identity(path: &Path) -> Option<PathBuf> {
    if let Ok(p) = path.canonicalize() {
        return Some(p);
    }
    let name = path.file_name()?;
    Some(folder(path).canonicalize().ok()?.join(name))
}

/// True if `a` and `b` name the same file: the same resolved path or, for existing files on
/// Unix, the same inode (hard links).
fn same_file(a: &Path, b: &Path) -> bool {
    if identity(a).is_some_and(|x| identity(b) == Some(x)) {
        return true;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return x.dev() == y.dev() && x.ino() == y.ino();
        }
    }
    false
}

/// Checks, before a command does any work, that each output can be written and destroys
/// nothing: its folder exists and takes a new file (a probe file is created and removed),
/// it is not a folder, and it is neither one of the `inputs` nor another output.
pub fn check_outputs(inputs: &[Named], outputs: &[Named]) -> Result<(), OutputError> {
    for (i, &(what, path)) in outputs.iter().enumerate() {
        let (what_s, path_b) = (what.to_string(), path.to_path_buf());
        if path.is_dir() {
            return Err(OutputError::IsFolder { what: what_s, path: path_b });
        }
        let dir = folder(path);
        if !dir.is_dir() {
            return Err(OutputError::NoFolder { what: what_s, path: path_b });
        }
        let probe = dir.join(format!(".nnc-write-check.{}", std::process::id()));
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&probe) {
            Ok(_) => {
                let _ = std::fs::remove_file(&probe);
            }
            Err(source) => {
                return Err(OutputError::NotWritable { what: what_s, path: path_b, source })
            }
        }
        let earlier = outputs[..i].iter().map(|&(w, p)| (format!("the output of {w}"), p));
        let ins = inputs.iter().map(|&(w, p)| (w.to_string(), p));
        if let Some((other, _)) = ins.chain(earlier).find(|(_, p)| same_file(path, p)) {
            return Err(OutputError::Same { what: what_s, path: path_b, other });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_that_would_destroy_an_input_are_refused() {
        let dir = std::env::temp_dir().join(format!("nnc-outputs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let model = dir.join("m.nn");
        std::fs::write(&model, "model").unwrap();
        let out = dir.join("w.safetensors");
        let ok = check_outputs(&[("the model file", &model)], &[("--save", &out)]);
        assert!(ok.is_ok(), "{ok:?}");
        // The same file through another spelling of its path.
        let again = dir.join(".").join("m.nn");
        let e = check_outputs(&[("the model file", &model)], &[("--save", &again)]);
        assert!(matches!(e, Err(OutputError::Same { .. })), "{e:?}");
        let e = check_outputs(&[], &[("--save", &out), ("--log", &out)]);
        assert!(e.unwrap_err().to_string().contains("the output of --save"));
        let e = check_outputs(&[], &[("--save", &dir.join("no/such/w.safetensors"))]);
        assert!(matches!(e, Err(OutputError::NoFolder { .. })), "{e:?}");
        let e = check_outputs(&[], &[("--log", &dir)]);
        assert!(matches!(e, Err(OutputError::IsFolder { .. })), "{e:?}");
        assert_eq!(std::fs::read_to_string(&model).unwrap(), "model");
        let left: Vec<_> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, vec![std::ffi::OsString::from("m.nn")], "no probe file is left");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn devices_and_folders_are_not_read() {
        for p in ["/dev/zero", "/dev/null", "/tmp"] {
            if Path::new(p).exists() {
                assert!(open_bounded(Path::new(p), u64::MAX).is_err(), "{p}");
            }
        }
        assert!(available_memory() > 0);
    }

    #[test]
    fn atomic_write_replaces_whole_file() {
        let p = std::env::temp_dir().join(format!("nnc-files-{}.txt", std::process::id()));
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two");
        std::fs::remove_file(&p).unwrap();
    }
}
