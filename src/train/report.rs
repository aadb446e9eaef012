//! What a training run reports as it goes: the CSV logs (`--log`, one row per step, and
//! `--log-layers`' `<log stem>.layers.csv`) and the console (a progress bar on a terminal,
//! one line per reported epoch).
//!
//! Invariants: a log is written by one run at a time (an exclusive `flock`, taken before the
//! file is emptied); a resumed run keeps the rows its checkpoint counted and appends after
//! them, so that a log continued over any number of resumes equals the uninterrupted run's.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::pipeline::Compiled;
use crate::runtime::Outputs;

/// `--log-layers`: the CSV of the step's probes, `<log stem>.layers.csv` beside `log`;
/// `keep` as for [`CsvLog::create`].
pub fn layer_log(c: &Compiled, log: Option<&Path>, keep: Option<u64>) -> Result<CsvLog> {
    let Some(main) = log else {
        return Err(Error::Settings("--log-layers needs --log FILE.csv".into()));
    };
    let probes: Vec<String> = c.opt.probes().map(|o| o.name.clone()).collect();
    if probes.is_empty() {
        return Err(Error::Internal("--log-layers without a compilation that has probes".into()));
    }
    let path = main.with_extension("layers.csv");
    let header = format!("step,epoch,{}\n", probes.join(","));
    CsvLog::with_header(&path, &header, keep)
}

/// `path` opened for writing once this run holds it: an exclusive advisory lock (`flock`,
/// Unix) that another run writing the same log is refused, so that two runs never
/// interleave their rows (nor the second empty the first's log). The lock lasts as long as
/// the file is open. Emptied, or cut to its first `keep` bytes and positioned at their end.
fn open_locked(path: &Path, keep: Option<u64>) -> Result<File> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| Error::write(path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::io::AsRawFd;
        // SAFETY: flock on a descriptor this function owns; it only sets an advisory lock.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let m = format!("{} is being written by another run", path.display());
            return Err(Error::Settings(m));
        }
    }
    let keep = keep.unwrap_or(0);
    f.set_len(keep).map_err(|e| Error::write(path, e))?;
    f.seek(SeekFrom::End(0)).map_err(|e| Error::write(path, e))?;
    Ok(f)
}

/// A CSV log, one row per step.
pub struct CsvLog {
    out: BufWriter<File>,
    path: PathBuf,
}

impl CsvLog {
    /// A log with `header`. With `keep` (a resumed run: the log's length at the checkpoint),
    /// the file must begin with `header` and hold at least `keep` bytes, which are kept;
    /// an empty or absent file starts afresh.
    fn with_header(path: &Path, header: &str, keep: Option<u64>) -> Result<CsvLog> {
        let keep = match keep {
            Some(k) => check_kept(path, header, k)?,
            None => None,
        };
        let f = open_locked(path, keep)?;
        let mut l = CsvLog { out: BufWriter::new(f), path: path.to_path_buf() };
        if keep.is_none() {
            l.write(header)?;
        }
        Ok(l)
    }

    /// `--log`: header `step,epoch,loss,lr` then the metrics (`names` is loss then metrics).
    pub fn create(path: &Path, names: &[String], keep: Option<u64>) -> Result<CsvLog> {
        let metrics: String = names[1..].iter().map(|m| format!(",{m}")).collect();
        CsvLog::with_header(path, &format!("step,epoch,loss,lr{metrics}\n"), keep)
    }

    /// A row of the probes CSV: `step,epoch` then every probe.
    pub fn probes(&mut self, t: u64, epoch: usize, values: &[f32]) -> Result<()> {
        let v: String = values.iter().map(|m| format!(",{m}")).collect();
        self.write(&format!("{t},{epoch}{v}\n"))
    }

    pub fn row(&mut self, t: u64, epoch: usize, out: &[f32], lr: f64) -> Result<()> {
        let metrics: String = out[1..].iter().map(|m| format!(",{m}")).collect();
        self.write(&format!("{t},{epoch},{},{lr}{metrics}\n", out[0]))
    }

    fn write(&mut self, s: &str) -> Result<()> {
        self.out.write_all(s.as_bytes()).map_err(|e| Error::write(&self.path, e))
    }

    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(|e| Error::write(&self.path, e))
    }

    /// Every row so far on the disk (flushed and synced): the log's length in bytes.
    pub fn sync(&mut self) -> Result<u64> {
        self.flush()?;
        let f = self.out.get_mut();
        f.sync_data().map_err(|e| Error::write(&self.path, e))?;
        f.stream_position().map_err(|e| Error::write(&self.path, e))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// For a resumed log: `Some(keep)` if `path` begins with `header` and holds at least `keep`
/// bytes, `None` (start afresh) if it is absent or empty.
fn check_kept(path: &Path, header: &str, keep: u64) -> Result<Option<u64>> {
    let refuse = |why: String| {
        let m = format!("{}: {why}; it is not the log of the run being resumed", path.display());
        Err(Error::Settings(m))
    };
    let mut head = Vec::new();
    match File::open(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::write(path, e)),
        Ok(f) => {
            let len = f.metadata().map_err(|e| Error::write(path, e))?.len();
            if len == 0 {
                return Ok(None);
            }
            if len < keep {
                return refuse(format!("it holds {len} bytes, and held {keep} at the checkpoint"));
            }
            f.take(header.len() as u64)
                .read_to_end(&mut head)
                .map_err(|e| Error::write(path, e))?;
        }
    }
    if head != header.as_bytes() {
        return refuse("its header differs from this run's".into());
    }
    Ok(Some(keep))
}

/// A progress bar on a terminal; one plain line per epoch otherwise.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    quiet: bool,
}

impl Progress {
    /// A bar for `total` steps, `done` of them already done (a resumed run).
    pub fn new(total: u64, done: u64, quiet: bool) -> Progress {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let b = indicatif::ProgressBar::new(total);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} steps  {msg}  [{elapsed_precise}]",
                )
                .expect("valid template"),
            );
            b.set_position(done);
            b
        });
        Progress { bar, quiet }
    }

    pub fn step(&mut self, epoch: usize, loss: f32) {
        if let Some(b) = &self.bar {
            b.inc(1);
            b.set_message(format!("epoch {epoch}  loss {loss:.4}"));
        }
    }

    /// A line of its own (above the bar on a terminal), unless quiet.
    pub fn say(&self, line: &str) {
        match (&self.bar, self.quiet) {
            (_, true) => {}
            (Some(b), false) => b.println(line),
            (None, false) => eprintln!("{line}"),
        }
    }

    pub fn epoch(&mut self, epoch: usize, names: &[String], mean: &[f32], val: Option<&Outputs>) {
        let mut line = format!("epoch {epoch:>4}");
        for (n, v) in names.iter().zip(mean) {
            line.push_str(&format!("  {n} {v:.4}"));
        }
        if let Some(v) = val {
            for (n, v) in names.iter().zip(v) {
                line.push_str(&format!("  val_{n} {v:.4}"));
            }
        }
        self.say(&line);
    }

    pub fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}
