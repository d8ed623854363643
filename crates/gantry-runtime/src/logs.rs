//! Per-service log files: `<state_dir>/logs/<service>.log`, one timestamped line per output line.
//!
//! Format: `2024-11-24T07:41:00.123Z out <line>` (UTC, millisecond precision, stream tag
//! `out`/`err`). Writes go through a `BufWriter` and reach the file once per batch
//! ([`LogFile::write_batch`] or an explicit [`LogFile::flush`]), not per line or byte.
//!
//! The I/O is synchronous on purpose: appends land in the page cache in microseconds,
//! which is cheaper than hopping to tokio's blocking pool for every batch.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::process::StreamKind;

/// Errors of log files; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error(
        "log file: invalid service name {0:?} (must be non-empty, without '/', NUL, or a leading '.')"
    )]
    InvalidName(String),
    #[error("log file: cannot create directory {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("log file: cannot open {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("log file: cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// An append-only log file of one service. [`LogFile::lazy`] opens it at the first
/// write, so a service that prints nothing costs neither a file nor a buffer, and the
/// boot does not open a hundred files before it spawns anything.
#[derive(Debug)]
pub struct LogFile {
    path: PathBuf,
    out: Option<BufWriter<File>>,
}

impl LogFile {
    /// Open (creating directories and the file) `<state_dir>/logs/<service>.log` for appending.
    pub fn open(state_dir: &Path, service: &str) -> Result<LogFile, LogError> {
        let mut log = LogFile::lazy(state_dir, service)?;
        log.writer()?;
        Ok(log)
    }

    /// `<state_dir>/logs/<service>.log`, opened (directories and file created) at the
    /// first write. Only the name is checked here.
    pub fn lazy(state_dir: &Path, service: &str) -> Result<LogFile, LogError> {
        if service.is_empty()
            || service.starts_with('.')
            || service.contains('/')
            || service.contains('\0')
        {
            return Err(LogError::InvalidName(service.to_string()));
        }
        Ok(LogFile {
            path: state_dir.join("logs").join(format!("{service}.log")),
            out: None,
        })
    }

    fn writer(&mut self) -> Result<&mut BufWriter<File>, LogError> {
        if self.out.is_none() {
            let open = || {
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)
            };
            let file = match open() {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let dir = self.path.parent().unwrap_or(Path::new("."));
                    std::fs::create_dir_all(dir).map_err(|source| LogError::CreateDir {
                        path: dir.to_path_buf(),
                        source,
                    })?;
                    open()
                }
                other => other,
            }
            .map_err(|source| LogError::Open {
                path: self.path.clone(),
                source,
            })?;
            self.out = Some(BufWriter::with_capacity(2 * 1024, file));
        }
        Ok(self.out.as_mut().expect("opened above"))
    }

    /// Path of the file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Buffer one line (written to the file at the next flush, or when the buffer fills).
    pub fn write_line(&mut self, stream: StreamKind, line: &str) -> Result<(), LogError> {
        let ts = rfc3339_utc(SystemTime::now());
        let out = self.writer()?;
        let result = writeln!(out, "{ts} {} {line}", stream.as_str());
        result.map_err(|e| self.write_err(e))
    }

    /// Write a batch of lines from one stream and flush once.
    pub fn write_batch<'a, I>(&mut self, stream: StreamKind, lines: I) -> Result<(), LogError>
    where
        I: IntoIterator<Item = &'a str>,
    {
        // One timestamp per batch: the lines arrived together.
        let ts = rfc3339_utc(SystemTime::now());
        let out = self.writer()?;
        let mut result = Ok(());
        for line in lines {
            if let Err(e) = writeln!(out, "{ts} {} {line}", stream.as_str()) {
                result = Err(e);
                break;
            }
        }
        result.map_err(|e| self.write_err(e))?;
        self.flush()
    }

    /// Push buffered lines to the file.
    pub fn flush(&mut self) -> Result<(), LogError> {
        match &mut self.out {
            Some(out) => out.flush().map_err(|e| self.write_err(e)),
            None => Ok(()),
        }
    }

    fn write_err(&self, source: std::io::Error) -> LogError {
        LogError::Write {
            path: self.path.clone(),
            source,
        }
    }
}

impl Drop for LogFile {
    fn drop(&mut self) {
        // Best effort; BufWriter's own drop would also try, silently.
        if let Some(out) = &mut self.out {
            let _ = out.flush();
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for `t` (UTC). Times before 1970 print as the epoch.
pub fn rfc3339_utc(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let millis = d.subsec_millis();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, day) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_210_096_789); // leap year, Feb 29
        assert_eq!(rfc3339_utc(t), "2024-02-29T12:34:56.789Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339_utc(t), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn rejects_bad_names() {
        let dir = std::env::temp_dir();
        for bad in ["", "../x", "a/b", ".hidden", "nul\0"] {
            assert!(matches!(
                LogFile::open(&dir, bad),
                Err(LogError::InvalidName(_))
            ));
        }
    }
}
