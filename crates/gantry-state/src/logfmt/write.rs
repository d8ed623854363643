//! Writing per-service log files: `<state_dir>/logs/<service>.log`, one timestamped line per output line.
//!
//! Writes go through a `BufWriter` and reach the file once per batch
//! ([`LogFile::write_batch`] or an explicit [`LogFile::flush`]), not per line or byte.
//!
//! The I/O is synchronous on purpose: appends land in the page cache in microseconds,
//! which is cheaper than hopping to tokio's blocking pool for every batch.

use super::Stream;
use crate::StateDir;
use gantry_time::rfc3339_utc;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

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
    pub fn open(state_dir: impl AsRef<Path>, service: &str) -> Result<LogFile, LogError> {
        let mut log = LogFile::lazy(state_dir, service)?;
        log.writer()?;
        Ok(log)
    }

    /// `<state_dir>/logs/<service>.log`, opened (directories and file created) at the
    /// first write. Only the name is checked here.
    pub fn lazy(state_dir: impl AsRef<Path>, service: &str) -> Result<LogFile, LogError> {
        if service.is_empty()
            || service.starts_with('.')
            || service.contains('/')
            || service.contains('\0')
        {
            return Err(LogError::InvalidName(service.to_string()));
        }
        Ok(LogFile {
            path: StateDir::new(state_dir.as_ref()).log_file(service),
            out: None,
        })
    }

    fn writer(&mut self) -> Result<&mut BufWriter<File>, LogError> {
        if self.out.is_none() {
            // 0600, never through a planted symlink (secure.rs).
            let open = || crate::secure::open_private(&self.path, true);
            let file = match open() {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let dir = self.path.parent().unwrap_or(Path::new("."));
                    std::fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o700)
                        .create(dir)
                        .map_err(|source| LogError::CreateDir {
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
    pub fn write_line(&mut self, stream: Stream, line: &str) -> Result<(), LogError> {
        let ts = rfc3339_utc(SystemTime::now());
        let out = self.writer()?;
        let result = writeln!(out, "{ts} {} {line}", stream.as_str());
        result.map_err(|e| self.write_err(e))
    }

    /// Write a batch of lines from one stream and flush once.
    pub fn write_batch<'a, I>(&mut self, stream: Stream, lines: I) -> Result<(), LogError>
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

#[cfg(test)]
mod tests {
    use super::*;

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
