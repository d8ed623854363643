//! Reading a file a user named (config, env file, secret file) without trusting it: regular files only, never past a cap.
//!
//! `/dev/zero` would be read until memory runs out and a FIFO would block forever (and,
//! with it, the event loop that should honour SIGTERM). Every such read goes through
//! [`read_capped`]: it opens with `O_NONBLOCK` (so opening a FIFO with no writer does not
//! wait), refuses anything that is not a regular file, and reads at most `cap` bytes,
//! saying the cap in the error when there is more.

use std::fmt;
use std::io::Read as _;
use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
use std::path::Path;

/// Why a capped read failed. Its `Display` names the path and, for a refusal, the
/// rule that refused it.
#[derive(Debug)]
pub enum ReadError {
    /// Opening or reading failed (not found, permission denied, …).
    Io {
        path: String,
        source: std::io::Error,
    },
    /// Not a regular file: a FIFO, a device, a socket or a directory.
    NotRegular { path: String, kind: &'static str },
    /// Larger than the cap.
    TooLarge { path: String, cap: u64 },
    /// Text expected, and this (1-based) line and column holds the first invalid byte.
    InvalidUtf8 {
        path: String,
        line: usize,
        column: usize,
    },
}

impl ReadError {
    /// The I/O error kind, when the read failed for that reason (`NotFound` is told
    /// apart by callers that have a hint for it).
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        match self {
            ReadError::Io { source, .. } => Some(source.kind()),
            _ => None,
        }
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io { path, source } => write!(f, "cannot read {path}: {source}"),
            ReadError::NotRegular { path, kind } => {
                write!(f, "{path} is {kind}, not a regular file")
            }
            ReadError::TooLarge { path, cap } => {
                write!(
                    f,
                    "{path} is larger than {}, the most gantry reads",
                    human(*cap)
                )
            }
            ReadError::InvalidUtf8 { path, line, column } => {
                write!(f, "{path}:{line}:{column}: not valid UTF-8 text")
            }
        }
    }
}

impl std::error::Error for ReadError {}

/// `cap` in the unit it was most likely written in (KiB or MiB).
fn human(cap: u64) -> String {
    if cap >= 1024 * 1024 && cap.is_multiple_of(1024 * 1024) {
        format!("{} MiB", cap / (1024 * 1024))
    } else if cap >= 1024 && cap.is_multiple_of(1024) {
        format!("{} KiB", cap / 1024)
    } else {
        format!("{cap} bytes")
    }
}

/// The whole content of the regular file `path`, if it holds at most `cap` bytes.
pub fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, ReadError> {
    let shown = || path.display().to_string();
    let io = |source| ReadError::Io {
        path: shown(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)
        .map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    let ft = meta.file_type();
    if !ft.is_file() {
        let kind = if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_char_device() {
            "a character device"
        } else if ft.is_block_device() {
            "a block device"
        } else if ft.is_socket() {
            "a socket"
        } else if ft.is_dir() {
            "a directory"
        } else {
            "a special file"
        };
        return Err(ReadError::NotRegular {
            path: shown(),
            kind,
        });
    }
    if meta.len() > cap {
        return Err(ReadError::TooLarge { path: shown(), cap });
    }
    let mut out = Vec::with_capacity(meta.len() as usize);
    // The file may grow between the stat and the read: never read more than cap + 1.
    file.take(cap + 1).read_to_end(&mut out).map_err(io)?;
    if out.len() as u64 > cap {
        return Err(ReadError::TooLarge { path: shown(), cap });
    }
    Ok(out)
}

/// [`read_capped`] as text; invalid UTF-8 is an error naming the line and column of the
/// first bad byte.
pub fn read_capped_text(path: &Path, cap: u64) -> Result<String, ReadError> {
    let bytes = read_capped(path, cap)?;
    String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = good.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let col = String::from_utf8_lossy(&good[line_start..]).chars().count() + 1;
        ReadError::InvalidUtf8 {
            path: path.display().to_string(),
            line,
            column: col,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regular_file_under_the_cap_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, "A=1\n").unwrap();
        assert_eq!(read_capped_text(&p, 4).unwrap(), "A=1\n");
    }

    #[test]
    fn over_the_cap_is_refused_with_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, "x".repeat(2049)).unwrap();
        let e = read_capped(&p, 2048).unwrap_err().to_string();
        assert!(e.contains("larger than 2 KiB"), "{e}");
    }

    #[test]
    fn dev_zero_and_a_fifo_are_refused_at_once() {
        let e = read_capped(Path::new("/dev/zero"), 1024)
            .unwrap_err()
            .to_string();
        assert!(e.contains("a character device"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        // Without O_NONBLOCK this open would wait for a writer forever.
        let e = read_capped(&fifo, 1024).unwrap_err().to_string();
        assert!(e.contains("a FIFO"), "{e}");
        let e = read_capped(dir.path(), 1024).unwrap_err().to_string();
        assert!(e.contains("a directory"), "{e}");
    }

    #[test]
    fn invalid_utf8_names_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"a = 1\nb = \"\xc3\xa9\xff\"\n").unwrap();
        let e = read_capped_text(&p, 1024).unwrap_err().to_string();
        assert!(e.ends_with("f:2:7: not valid UTF-8 text"), "{e}");
    }
}
