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

    /// `--log`: header `step,epoch,loss,lr`, the metrics (`names` is loss then metrics),
    /// with `validation` `val_loss` and the `val_` metrics, then `time_s`.
    pub fn create(
        path: &Path,
        names: &[String],
        validation: bool,
        keep: Option<u64>,
    ) -> Result<CsvLog> {
        let metrics: String = names[1..].iter().map(|m| format!(",{m}")).collect();
        let val: String = match validation {
            true => names.iter().map(|m| format!(",val_{m}")).collect(),
            false => String::new(),
        };
        CsvLog::with_header(path, &format!("step,epoch,loss,lr{metrics}{val},time_s\n"), keep)
    }

    /// A row of the probes CSV: `step,epoch` then every probe.
    pub fn probes(&mut self, t: u64, epoch: usize, values: &[f32]) -> Result<()> {
        let v: String = values.iter().map(|&m| format!(",{}", csv_f32(m))).collect();
        self.write(&format!("{t},{epoch}{v}\n"))
    }

    /// A row of the `--log`: the step's loss and metrics `out` at learning rate `lr`, the
    /// validation columns (`validation`: the count of them, filled from `val` where the
    /// epoch ended with an evaluation, empty elsewhere), and the seconds since the run began.
    pub fn row(&mut self, r: Row) -> Result<()> {
        let Row { step, epoch, out, lr, val, validation, time_s } = r;
        let mut line = format!("{step},{epoch},{},{}", csv_f32(out[0]), csv_f64(lr));
        for &m in &out[1..] {
            line.push(',');
            line.push_str(&csv_f32(m));
        }
        for i in 0..validation {
            line.push(',');
            if let Some(v) = val {
                line.push_str(&csv_f32(v[i]));
            }
        }
        line.push_str(&format!(",{time_s:.3}\n"));
        self.write(&line)
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

/// One row of the `--log` (see [`CsvLog::row`]).
pub struct Row<'a> {
    pub step: u64,
    pub epoch: usize,
    pub out: &'a [f32],
    pub lr: f64,
    pub val: Option<&'a [f32]>,
    pub validation: usize,
    pub time_s: f64,
}

/// `v` in a log: the shortest text that reads back as the same f32, with an exponent when
/// the magnitude is below 1e-5 or from 1e16 on (`7.836246e33`, `8.20188e-9`).
pub fn csv_f32(v: f32) -> String {
    ryu::Buffer::new().format(v).to_string()
}

/// [`csv_f32`] for an f64.
pub fn csv_f64(v: f64) -> String {
    ryu::Buffer::new().format(v).to_string()
}

/// `v` on the console: `decimals` decimals while they show at least two significant
/// digits, else three significant digits with an exponent, so that a small loss never
/// reads `0.0000`.
pub fn sig(v: f64, decimals: usize) -> String {
    if v == 0.0 || !v.is_finite() || v.abs() >= 10f64.powi(2 - decimals as i32) {
        format!("{v:.decimals$}")
    } else {
        format!("{v:.2e}")
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
                    "{bar:30} {pos}/{len} steps  {per_sec}  eta {eta}  {msg}  [{elapsed_precise}]",
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
            b.set_message(format!("epoch {epoch}  loss {}", sig(loss as f64, 4)));
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
            line.push_str(&format!("  {n} {}", sig(*v as f64, 4)));
        }
        if let Some(v) = val {
            for (n, v) in names.iter().zip(v) {
                line.push_str(&format!("  val_{n} {}", sig(*v as f64, 4)));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_write_the_shortest_round_trip_with_exponents() {
        for (v, text) in
            [(7.836246e33f32, "7.836246e33"), (8.20188e-9, "8.20188e-9"), (0.05, "0.05")]
        {
            assert_eq!(csv_f32(v), text);
            assert_eq!(csv_f32(v).parse::<f32>().unwrap(), v);
        }
        assert_eq!(csv_f32(1.0), "1.0");
        assert_eq!(csv_f32(f32::NAN), "NaN");
        assert_eq!(csv_f64(3e-4), "0.0003");
    }

    #[test]
    fn the_console_never_shows_a_small_value_as_zero() {
        assert_eq!(sig(1.00734, 4), "1.0073");
        assert_eq!(sig(0.0913, 4), "0.0913");
        assert_eq!(sig(0.00082, 4), "8.20e-4");
        assert_eq!(sig(8.2e-9, 6), "8.20e-9");
        assert_eq!(sig(0.000123, 6), "0.000123");
        assert_eq!(sig(0.0, 4), "0.0000");
    }
}
