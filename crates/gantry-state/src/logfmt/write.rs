//! Writing per-service log files: `<state_dir>/logs/<service>.log`, one timestamped line per output line.
//!
//! Writes are buffered and reach the file once per batch ([`LogFile::write_batch`] or an
//! explicit [`LogFile::flush`]), not per line or byte. The buffer is freed at every flush:
//! a thousand quiet services hold no buffers between their bursts of output.
//!
//! The I/O is synchronous on purpose: appends land in the page cache in microseconds,
//! which is cheaper than hopping to tokio's blocking pool for every batch.

use super::Stream;
use crate::StateDir;
use gantry_time::rfc3339_utc;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Buffered bytes past which a write goes to the file before the next flush.
const SPILL: usize = 8 * 1024;

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
    out: Option<File>,
    /// Lines not yet written to the file; empty (no allocation) after every flush.
    buf: Vec<u8>,
    rotation: Rotation,
    /// Bytes in the current file (its size at open, plus what was written since).
    size: u64,
    /// Flushes in a row that found nothing to write (see [`LogFile::flush`]).
    idle: u8,
}

/// After this many flushes in a row with nothing to write, the file is closed (and opened
/// again at the next line): a quiet service holds no descriptor. With the driver flushing
/// every 250 ms that is a second of silence.
const CLOSE_AFTER_IDLE_FLUSHES: u8 = 4;

/// When a log file is rotated and how many old ones are kept: `NAME.log` becomes
/// `NAME.log.1` (`.1` becomes `.2`, …) once it reaches `max_size`; the oldest beyond
/// `keep` is deleted. A service's disk use is bounded by `max_size × (keep + 1)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    pub max_size: u64,
    pub keep: u32,
}

impl Default for Rotation {
    fn default() -> Rotation {
        Rotation {
            max_size: 10 * 1024 * 1024,
            keep: 3,
        }
    }
}

/// The rotated files of the log at `path`, oldest first (`NAME.log.3`, `.2`, `.1`).
pub fn rotated_files(path: &Path) -> Vec<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = Vec::new();
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let prefix = format!("{}.", name.to_string_lossy());
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let file = e.file_name();
            let file = file.to_string_lossy();
            if let Some(n) = file
                .strip_prefix(&prefix)
                .and_then(|n| n.parse::<u32>().ok())
            {
                found.push((n, e.path()));
            }
        }
    }
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    found.into_iter().map(|(_, p)| p).collect()
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
            buf: Vec::new(),
            rotation: Rotation::default(),
            size: 0,
            idle: 0,
        })
    }

    /// Rotates at another size / keeps another count than [`Rotation::default`].
    pub fn with_rotation(mut self, rotation: Rotation) -> LogFile {
        self.rotation = Rotation {
            max_size: rotation.max_size.max(4096),
            keep: rotation.keep,
        };
        self
    }

    fn writer(&mut self) -> Result<&mut Vec<u8>, LogError> {
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
            self.size = file.metadata().map_or(0, |m| m.len());
            self.out = Some(file);
        }
        // A burst past this size goes to the file before the next flush.
        if self.buf.len() >= SPILL {
            let file = self.out.as_mut().expect("opened above");
            if let Err(e) = file.write_all(&self.buf) {
                self.buf.clear();
                return Err(self.write_err(e));
            }
            self.buf.clear();
        }
        Ok(&mut self.buf)
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
        result.map_err(|e| self.write_err(e))?;
        self.grew(ts.len() + line.len() + 6)
    }

    /// Counts written bytes and rotates once the file reached its size.
    fn grew(&mut self, bytes: usize) -> Result<(), LogError> {
        self.size += bytes as u64;
        if self.size < self.rotation.max_size {
            return Ok(());
        }
        self.flush()?;
        self.out = None;
        self.size = 0;
        let numbered = |n: u32| PathBuf::from(format!("{}.{n}", self.path.display()));
        if self.rotation.keep == 0 {
            let _ = std::fs::remove_file(&self.path);
            return Ok(());
        }
        let _ = std::fs::remove_file(numbered(self.rotation.keep));
        for n in (1..self.rotation.keep).rev() {
            let _ = std::fs::rename(numbered(n), numbered(n + 1));
        }
        std::fs::rename(&self.path, numbered(1)).map_err(|e| self.write_err(e))
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
        let mut bytes = 0;
        for line in lines {
            bytes += ts.len() + line.len() + 6;
            if let Err(e) = writeln!(out, "{ts} {} {line}", stream.as_str()) {
                result = Err(e);
                break;
            }
        }
        result.map_err(|e| self.write_err(e))?;
        self.flush()?;
        self.grew(bytes)
    }

    /// Push buffered lines to the file and free the buffer.
    ///
    /// A file that has had nothing to write for [`CLOSE_AFTER_IDLE_FLUSHES`] flushes in a
    /// row is closed: every descriptor gantry holds is copied into each process it spawns
    /// (the kernel's `dup_fd` at every `clone`), so a thousand quiet services' open logs
    /// made every later start slower, and they count against gantry's descriptor limit.
    pub fn flush(&mut self) -> Result<(), LogError> {
        let buf = std::mem::take(&mut self.buf);
        if buf.is_empty() {
            self.idle = self.idle.saturating_add(1);
            if self.idle >= CLOSE_AFTER_IDLE_FLUSHES {
                self.out = None;
            }
            return Ok(());
        }
        self.idle = 0;
        match &mut self.out {
            Some(out) => out.write_all(&buf).map_err(|e| self.write_err(e)),
            None => Ok(()),
        }
    }

    /// Whether the file is open now (a quiet log is closed; see [`LogFile::flush`]).
    pub fn is_open(&self) -> bool {
        self.out.is_some()
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
        // Best effort: what is buffered reaches the file.
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_log_closes_its_file_and_opens_it_again_for_the_next_line() {
        let root = std::env::temp_dir().join(format!("gantry-quiet-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let mut log = LogFile::lazy(&root, "svc").unwrap();
        assert!(!log.is_open());
        log.write_line(Stream::Out, "one").unwrap();
        log.flush().unwrap();
        assert!(log.is_open());
        for _ in 1..CLOSE_AFTER_IDLE_FLUSHES {
            log.flush().unwrap();
            assert!(log.is_open());
        }
        log.flush().unwrap();
        assert!(!log.is_open());
        log.write_line(Stream::Err, "two").unwrap();
        assert!(log.is_open());
        log.flush().unwrap();
        let text = std::fs::read_to_string(log.path()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].ends_with(" out one") && lines[1].ends_with(" err two"),
            "{text}"
        );
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn rotates_at_its_size_and_keeps_the_newest_files() {
        let root = std::env::temp_dir().join(format!("gantry-rotate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let mut log = LogFile::lazy(&root, "chatty")
            .unwrap()
            .with_rotation(Rotation {
                max_size: 4096,
                keep: 2,
            });
        let line = "x".repeat(100);
        for _ in 0..500 {
            log.write_line(Stream::Out, &line).unwrap();
        }
        log.flush().unwrap();
        let path = log.path().to_path_buf();
        let rotated = rotated_files(&path);
        assert_eq!(rotated.len(), 2, "{rotated:?}");
        assert!(rotated[0].to_string_lossy().ends_with(".log.2"));
        let total: u64 = rotated
            .iter()
            .chain(std::iter::once(&path))
            .map(|p| std::fs::metadata(p).unwrap().len())
            .sum();
        assert!(total <= 3 * (4096 + 200), "{total} bytes on disk");
        let _ = std::fs::remove_dir_all(&root);
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
