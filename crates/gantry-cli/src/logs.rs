//! `gantry logs`: services' recorded output from `<state_dir>/logs/*.log`, merged by time, filtered, optionally followed.
//!
//! Reads the files `gantry up` writes directly, so it works whether or not gantry is running.
//! The format, its parser, the merge by time and the following of files are
//! `gantry_state::logfmt`; this command keeps its arguments and its output: several services
//! are prefixed with their name (`db      | line`), and `--follow` polls the files every
//! 200 ms until Ctrl-C.

use crate::Outcome;
use gantry_state::StateDir;
use gantry_state::logfmt::{Entry, Filter, Stream, Tail, dump, poll_all, service_logs};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often `--follow` looks at the files.
const POLL: Duration = Duration::from_millis(200);
/// Output is handed to stdout in chunks of about this size.
const OUT_CHUNK: usize = 64 << 10;

/// `gantry logs [NAME...] [-f] [--since DURATION] [--stream out|err]`.
/// What `gantry logs` shows besides the names.
#[derive(Debug, Clone, Default)]
pub struct Show<'a> {
    pub follow: bool,
    pub since: Option<&'a str>,
    pub stream: Option<String>,
    pub timestamps: bool,
}

pub fn run(file: &Path, names: &[String], show: Show<'_>) -> anyhow::Result<Outcome> {
    let Show {
        follow,
        since,
        stream,
        timestamps,
    } = show;
    let stream = match stream.as_deref() {
        None => None,
        Some(s) => match Stream::parse(s) {
            Some(s) => Some(s),
            None => {
                eprintln!("error: --stream {s}: expected `out` or `err`");
                return Ok(Outcome::Usage);
            }
        },
    };
    let cutoff_ms = match since {
        None => None,
        Some(text) => match gantry_spec::duration::parse_duration(text) {
            Ok(d) => Some(now_ms().saturating_sub(d.as_millis().min(i64::MAX as u128) as i64)),
            Err(e) => {
                eprintln!(
                    "error: --since {text}: {e}\n  hint: use a duration such as 30s, 5m or 2h"
                );
                return Ok(Outcome::Usage);
            }
        },
    };
    let checked = match crate::load::load_for_client(file) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(Outcome::Usage);
        }
    };
    let state_dir = StateDir::for_stack(file, &checked.spec.settings.state_dir);
    let log_dir = state_dir.logs_dir();
    if !log_dir.is_dir() {
        anyhow::bail!(
            "no logs in {} yet\n  hint: run `gantry up` first; it records each service's output there",
            log_dir.display()
        );
    }
    let declared: Vec<String> = checked
        .spec
        .services
        .iter()
        .map(|s| s.name.value.clone())
        .collect();
    let with_logs = service_logs(&log_dir)
        .map_err(|e| anyhow::anyhow!("cannot list {}: {e}", log_dir.display()))?;
    let known = known_services(&declared, &with_logs);
    let selected = match select(names, &known) {
        Ok(s) => s,
        Err(msg) => {
            eprintln!("error: {msg}\n  in {}", checked.source.path);
            return Ok(Outcome::Usage);
        }
    };
    let prefix = names.len() != 1;
    let width = selected
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(0);
    let mut printer = Printer::new(prefix, width, Filter { cutoff_ms, stream }, crate::emit)
        .with_timestamps(timestamps)
        .with_terminal(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    let sources: Vec<(String, PathBuf)> = selected
        .iter()
        .map(|n| (n.clone(), state_dir.log_file(n)))
        .collect();
    for (name, path) in &sources {
        if !names.is_empty() && !path.exists() {
            let then = if follow { "; waiting for it" } else { "" };
            eprintln!(
                "note: no output recorded for {name} yet ({} does not exist){then}",
                path.display()
            );
        }
    }
    // Rotated files (NAME.log.N, oldest first) are read too; only current files are followed.
    let mut all = Vec::new();
    for (name, path) in &sources {
        for old in gantry_state::logfmt::rotated_files(path) {
            all.push((name.clone(), old));
        }
        all.push((name.clone(), path.clone()));
    }
    let mut tails = dump(&all, follow, |n, e| printer.print(n, e), warn);
    tails.retain(|t| sources.iter().any(|(_, p)| *p == t.path));
    printer.flush();
    if follow {
        let discover = names.is_empty().then_some(&state_dir);
        follow_tails(tails, &mut printer, discover)?;
    }
    Ok(Outcome::Success)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The services of the file (in file order), then those that only have a log file (sorted).
pub fn known_services(declared: &[String], with_logs: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in declared.iter().chain(with_logs) {
        if !out.contains(n) {
            out.push(n.clone());
        }
    }
    out
}

/// The services to show: the named ones (deduplicated, in the order given), or all known.
/// An unknown name is an error listing the known ones.
pub fn select(names: &[String], known: &[String]) -> Result<Vec<String>, String> {
    if names.is_empty() {
        return Ok(known.to_vec());
    }
    let unknown: Vec<&str> = names
        .iter()
        .filter(|n| !known.contains(n))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        let list = if known.is_empty() {
            "(none yet)".to_string()
        } else {
            known.join(", ")
        };
        let what = if unknown.len() == 1 {
            format!("unknown service `{}`", unknown[0])
        } else {
            format!("unknown services `{}`", unknown.join("`, `"))
        };
        return Err(format!("{what}; known services: {list}"));
    }
    let mut out: Vec<String> = Vec::new();
    for n in names {
        if !out.contains(n) {
            out.push(n.clone());
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Printing

/// `db      | line` (with a prefix) or `line`.
pub fn format_line(prefix: Option<(&str, usize)>, text: &str) -> String {
    match prefix {
        Some((name, width)) => format!("{name:<width$} | {text}\n"),
        None => format!("{text}\n"),
    }
}

/// Filters, formats and buffers lines for a sink (stdout in the binary).
pub struct Printer<F: FnMut(&str)> {
    prefix: bool,
    width: usize,
    filter: Filter,
    buf: String,
    sink: F,
    timestamps: bool,
    /// Printing to a terminal: control sequences are shown escaped, colour passes.
    terminal: bool,
}

impl<F: FnMut(&str)> Printer<F> {
    pub fn new(prefix: bool, width: usize, filter: Filter, sink: F) -> Self {
        Printer {
            prefix,
            width,
            filter,
            buf: String::new(),
            sink,
            timestamps: false,
            terminal: false,
        }
    }

    /// Printing to a terminal: service output's control sequences are shown, not obeyed.
    pub fn with_terminal(mut self, on: bool) -> Self {
        self.terminal = on;
        self
    }

    /// Starts each line with its recorded time (`-t`).
    pub fn with_timestamps(mut self, on: bool) -> Self {
        self.timestamps = on;
        self
    }

    pub fn print(&mut self, name: &str, e: &Entry) {
        if !self.filter.accepts(e) {
            return;
        }
        let prefix = self.prefix.then_some((name, self.width));
        if self.timestamps {
            // A line before any timestamp (a foreign file) has none to show.
            if let Ok(ms) = u64::try_from(e.ts) {
                let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
                self.buf.push_str(&gantry_state::time::rfc3339_utc(at));
                self.buf.push(' ');
            }
        }
        let text = if self.terminal {
            gantry_state::logfmt::terminal_safe(&e.text, true)
        } else {
            std::borrow::Cow::Borrowed(e.text.as_str())
        };
        self.buf.push_str(&format_line(prefix, &text));
        if self.buf.len() >= OUT_CHUNK {
            self.flush();
        }
    }

    pub fn flush(&mut self) {
        if !self.buf.is_empty() {
            (self.sink)(&self.buf);
            self.buf.clear();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Following

/// Polls `tails` every [`POLL`] and prints new lines (merged per poll) until Ctrl-C.
/// With `discover`, log files that appear in that directory are followed too.
fn follow_tails<F: FnMut(&str)>(
    mut tails: Vec<Tail>,
    printer: &mut Printer<F>,
    discover: Option<&StateDir>,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut ctrl_c => break,
                _ = tick.tick() => {}
            }
            if let Some(dir) = discover
                && let Ok(names) = service_logs(&dir.logs_dir())
            {
                for name in names {
                    if !tails.iter().any(|t| t.name == name) {
                        let path = dir.log_file(&name);
                        printer.width = printer.width.max(name.chars().count());
                        tails.push(Tail::new(name, path));
                    }
                }
            }
            poll_once(&mut tails, printer);
        }
    });
    printer.flush();
    Ok(())
}

/// One poll of every tail; new lines merged by time and printed.
pub fn poll_once<F: FnMut(&str)>(tails: &mut [Tail], printer: &mut Printer<F>) {
    poll_all(tails, |n, e| printer.print(n, e), warn);
    printer.flush();
}

/// A problem reading a log file: reported, never fatal.
fn warn(message: String) {
    eprintln!("warning: {message}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_state::logfmt::Stream;
    use gantry_state::time::parse_rfc3339_ms;
    use std::io::Write as _;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn tempdir(name: &str) -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "gantry-logs-unit-{}-{}-{name}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn append(path: &Path, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn entry(ts: i64, text: &str) -> Entry {
        Entry {
            ts,
            stream: Stream::Out,
            text: text.into(),
        }
    }

    /// A printer that collects into a shared string.
    fn collecting(
        prefix: bool,
        width: usize,
        filter: Filter,
    ) -> (
        Printer<impl FnMut(&str)>,
        std::rc::Rc<std::cell::RefCell<String>>,
    ) {
        let out = std::rc::Rc::new(std::cell::RefCell::new(String::new()));
        let sink = {
            let out = out.clone();
            move |s: &str| out.borrow_mut().push_str(s)
        };
        (Printer::new(prefix, width, filter, sink), out)
    }

    #[test]
    fn timestamps_start_each_line_when_asked() {
        let out = std::rc::Rc::new(std::cell::RefCell::new(String::new()));
        let sink = {
            let out = out.clone();
            move |s: &str| out.borrow_mut().push_str(s)
        };
        let filter = Filter {
            cutoff_ms: None,
            stream: None,
        };
        let mut printer = Printer::new(false, 0, filter, sink).with_timestamps(true);
        printer.print("db", &entry(1_800_000_000_123, "listening"));
        printer.print("db", &entry(i64::MIN, "before any timestamp"));
        printer.flush();
        assert_eq!(
            out.borrow().as_str(),
            "2027-01-15T08:00:00.123Z listening\nbefore any timestamp\n"
        );
    }

    #[test]
    fn printer_filters_and_prefixes() {
        let (mut printer, out) = collecting(
            true,
            3,
            Filter {
                cutoff_ms: Some(100),
                stream: Some(Stream::Err),
            },
        );
        printer.print("db", &entry(200, "x"));
        printer.print(
            "db",
            &Entry {
                ts: 100,
                stream: Stream::Err,
                text: "shown".into(),
            },
        );
        printer.flush();
        assert_eq!(out.borrow().as_str(), "db  | shown\n");
        assert_eq!(format_line(Some(("db", 7)), "hi"), "db      | hi\n");
        assert_eq!(format_line(None, "hi"), "hi\n");
    }

    #[test]
    fn selection_validates_names() {
        let known = known_services(&["db".into(), "api".into()], &["api".into(), "old".into()]);
        assert_eq!(known, ["db", "api", "old"]);
        assert_eq!(select(&[], &known).unwrap(), known);
        assert_eq!(
            select(&["api".into(), "db".into(), "api".into()], &known).unwrap(),
            ["api", "db"]
        );
        let err = select(&["nope".into()], &known).unwrap_err();
        assert_eq!(err, "unknown service `nope`; known services: db, api, old");
        let err = select(&["x".into(), "y".into()], &[]).unwrap_err();
        assert_eq!(err, "unknown services `x`, `y`; known services: (none yet)");
    }

    #[test]
    fn dump_merges_files_and_filters() {
        let dir = tempdir("dump");
        append(
            &dir.join("db.log"),
            "2026-11-24T07:41:00.100Z out db starting\n2026-11-24T07:41:00.300Z err db warn\n2026-11-24T07:41:00.500Z out db ready\n",
        );
        append(
            &dir.join("api.log"),
            "2026-11-24T07:41:00.200Z out api starting\n2026-11-24T07:41:00.400Z out api ready\n2026-11-24T07:41:00.600Z out partial",
        );
        let sources: Vec<(String, PathBuf)> = ["db", "api", "missing"]
            .iter()
            .map(|n| (n.to_string(), dir.join(format!("{n}.log"))))
            .collect();
        let (mut printer, out) = collecting(true, 7, Filter::default());
        let tails = dump(&sources, false, |n, e| printer.print(n, e), warn);
        printer.flush();
        assert_eq!(
            out.borrow().as_str(),
            "db      | db starting\napi     | api starting\ndb      | db warn\napi     | api ready\ndb      | db ready\napi     | partial\n"
        );
        assert_eq!(tails.len(), 3);

        let cutoff = parse_rfc3339_ms("2026-11-24T07:41:00.300Z");
        let (mut printer, out) = collecting(
            false,
            0,
            Filter {
                cutoff_ms: cutoff,
                stream: Some(Stream::Out),
            },
        );
        dump(&sources[..1], false, |n, e| printer.print(n, e), warn);
        printer.flush();
        assert_eq!(out.borrow().as_str(), "db ready\n");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn follow_picks_up_growth_partial_lines_truncation_and_rotation() {
        let dir = tempdir("follow");
        let path = dir.join("api.log");
        append(
            &path,
            "2026-11-24T07:41:00.100Z out one\n2026-11-24T07:41:00.200Z out tw",
        );
        let sources = vec![
            ("api".to_string(), path.clone()),
            ("db".to_string(), dir.join("db.log")),
        ];
        let (mut printer, out) = collecting(true, 3, Filter::default());
        let mut tails = dump(&sources, true, |n, e| printer.print(n, e), warn);
        printer.flush();
        // Following: the unfinished last line is left for the tail.
        assert_eq!(out.borrow().as_str(), "api | one\n");
        out.borrow_mut().clear();

        poll_once(&mut tails, &mut printer);
        assert_eq!(out.borrow().as_str(), "");
        append(&path, "o\n");
        append(&dir.join("db.log"), "2026-11-24T07:41:00.150Z out db up\n");
        poll_once(&mut tails, &mut printer);
        assert_eq!(out.borrow().as_str(), "db  | db up\napi | two\n");
        out.borrow_mut().clear();

        // Truncated in place: read again from the start.
        std::fs::write(&path, "2026-11-24T07:42:00.000Z out after truncate\n").unwrap();
        poll_once(&mut tails, &mut printer);
        assert_eq!(out.borrow().as_str(), "api | after truncate\n");
        out.borrow_mut().clear();

        // Rotated: renamed away and a new file created.
        std::fs::rename(&path, dir.join("api.log.1")).unwrap();
        poll_once(&mut tails, &mut printer);
        assert_eq!(out.borrow().as_str(), "");
        append(
            &path,
            "2026-11-24T07:43:00.000Z err rotated, longer than before by far\n",
        );
        poll_once(&mut tails, &mut printer);
        assert_eq!(
            out.borrow().as_str(),
            "api | rotated, longer than before by far\n"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
