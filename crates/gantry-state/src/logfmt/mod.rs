//! The per-service log-line format, in one place: `2026-11-24T07:41:00.123Z out <line>`, written by `gantry up` and read back by `gantry logs`.
//!
//! One line per output line of a service, in `<state_dir>/logs/<service>.log`: the time in
//! UTC with millisecond precision ([`crate::time`]), the stream tag `out` or `err`, one
//! space, the text. [`write`] appends them ([`LogFile`]); [`read`] parses them back
//! ([`LineParser`]), merges several files by time ([`merge`], [`dump`]) and follows them
//! across growth, truncation and rotation ([`Tail`]).

pub mod read;
mod terminal;
pub mod write;

pub use read::{Entry, FileEntries, Filter, LineParser, Tail, dump, merge, poll_all, service_logs};
pub use terminal::terminal_safe;
pub use write::{LogError, LogFile, Rotation, rotated_files};

/// Which of a service's output streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    Out,
    Err,
}

impl Stream {
    /// `"out"` or `"err"`, the tag in log files.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Out => "out",
            Stream::Err => "err",
        }
    }

    /// The tag, or the stream's name as a user types it (`stdout`, `stderr`).
    pub fn parse(s: &str) -> Option<Stream> {
        match s {
            "out" | "stdout" => Some(Stream::Out),
            "err" | "stderr" => Some(Stream::Err),
            _ => None,
        }
    }
}

impl std::fmt::Display for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stream::Out => "stdout",
            Stream::Err => "stderr",
        })
    }
}
