//! `gantry logs`: services' recorded output from `<state_dir>/logs/*.log`, merged by time, filtered, optionally followed.
//!
//! Reads the files `gantry up` writes (one `2026-11-24T07:41:00.123Z out <line>` per output
//! line) directly, so it works whether or not gantry is running. Several services are merged
//! by timestamp and prefixed with their name (`db      | line`). `--follow` polls the files
//! every 200 ms (growth, truncation and rotation) until Ctrl-C.

use crate::Outcome;
use crate::load::load;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often `--follow` looks at the files.
const POLL: Duration = Duration::from_millis(200);
/// At most this much is read from one file per poll (the rest comes at the next one).
const MAX_CHUNK: u64 = 8 << 20;
/// Output is handed to stdout in chunks of about this size.
const OUT_CHUNK: usize = 64 << 10;

/// Which of a service's streams a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Out,
    Err,
}

impl Stream {
    pub fn parse(s: &str) -> Option<Stream> {
        match s {
            "out" | "stdout" => Some(Stream::Out),
            "err" | "stderr" => Some(Stream::Err),
            _ => None,
        }
    }
}

/// One output line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Milliseconds since the Unix epoch (`i64::MIN` for a line before any timestamp).
    pub ts: i64,
    pub stream: Stream,
    pub text: String,
}

/// `gantry logs [NAME...] [-f] [--since DURATION] [--stream out|err]`.
pub fn run(
    file: &Path,
    names: &[String],
    follow: bool,
    since: Option<&str>,
    stream: Option<String>,
) -> anyhow::Result<Outcome> {
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
    let checked = match load(file, &Default::default()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(Outcome::Usage);
        }
    };
    let state_dir = crate::analyze::state_dir(file, &checked.spec.settings.state_dir);
    let log_dir = state_dir.join("logs");
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
    let known = known_services(&declared, &log_files(&log_dir)?);
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
    let mut printer = Printer::new(prefix, width, Filter { cutoff_ms, stream }, crate::emit);
    let sources: Vec<(String, PathBuf)> = selected
        .iter()
        .map(|n| (n.clone(), log_path(&log_dir, n)))
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
    let tails = dump(&sources, &mut printer, follow);
    printer.flush();
    if follow {
        let discover = names.is_empty().then_some(log_dir.as_path());
        follow_tails(tails, &mut printer, discover)?;
    }
    Ok(Outcome::Success)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn log_path(log_dir: &Path, name: &str) -> PathBuf {
    log_dir.join(format!("{name}.log"))
}

/// Service names that have a `<name>.log` file in `log_dir`, sorted.
fn log_files(log_dir: &Path) -> anyhow::Result<Vec<String>> {
    let entries = std::fs::read_dir(log_dir)
        .map_err(|e| anyhow::anyhow!("cannot list {}: {e}", log_dir.display()))?;
    let mut out: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".log")?;
            (!stem.is_empty() && !stem.starts_with('.')).then(|| stem.to_string())
        })
        .collect();
    out.sort();
    Ok(out)
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
// Parsing

/// `YYYY-MM-DDTHH:MM:SS[.fff…]Z` (UTC) to milliseconds since the Unix epoch.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=days_in_month(year, month)).contains(&day)
        || hour > 23
        || min > 59
        || sec > 60
    {
        return None;
    }
    let rest = &s[19..];
    let millis = match rest.strip_prefix('.') {
        None if rest == "Z" => 0,
        None => return None,
        Some(frac) => {
            let digits = frac.strip_suffix('Z')?;
            if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let ms: String = digits.chars().chain("00".chars()).take(3).collect();
            ms.parse::<i64>().ok()?
        }
    };
    let days = days_from_civil(year, month, day);
    Some(((days * 24 + hour) * 60 + min) * 60_000 + sec * 1000 + millis)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses log lines; a line without a timestamp and stream tag (a foreign or damaged line)
/// keeps the previous line's time and stream, so it stays where it was.
#[derive(Clone, Debug)]
pub struct LineParser {
    last_ts: i64,
    last_stream: Stream,
}

impl Default for LineParser {
    fn default() -> Self {
        LineParser {
            last_ts: i64::MIN,
            last_stream: Stream::Out,
        }
    }
}

impl LineParser {
    /// One raw line, with or without its trailing newline.
    pub fn parse(&mut self, raw: &[u8]) -> Entry {
        let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
        let line = String::from_utf8_lossy(raw);
        if let Some((ts, rest)) = line.split_once(' ')
            && let Some(ts) = parse_timestamp(ts)
        {
            let (tag, text) = rest.split_once(' ').unwrap_or((rest, ""));
            if let Some(stream) = Stream::parse(tag).filter(|_| tag.len() == 3) {
                self.last_ts = ts;
                self.last_stream = stream;
                return Entry {
                    ts,
                    stream,
                    text: text.to_string(),
                };
            }
        }
        Entry {
            ts: self.last_ts,
            stream: self.last_stream,
            text: line.into_owned(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reading and merging

/// The entries of one log file, read lazily.
pub struct FileEntries<R> {
    reader: R,
    parser: LineParser,
    /// Bytes of the lines returned so far.
    consumed: u64,
    /// Whether a last line without its newline is returned (else it is left for following).
    emit_partial: bool,
    done: bool,
    error: Option<std::io::Error>,
}

impl<R: BufRead> FileEntries<R> {
    pub fn new(reader: R, emit_partial: bool) -> Self {
        FileEntries {
            reader,
            parser: LineParser::default(),
            consumed: 0,
            emit_partial,
            done: false,
            error: None,
        }
    }
}

impl<R: BufRead> Iterator for FileEntries<R> {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        if self.done {
            return None;
        }
        let mut buf = Vec::new();
        match self.reader.read_until(b'\n', &mut buf) {
            Ok(0) => None,
            Ok(n) => {
                if buf.last() != Some(&b'\n') && !self.emit_partial {
                    self.done = true;
                    return None;
                }
                self.consumed += n as u64;
                Some(self.parser.parse(&buf))
            }
            Err(e) => {
                self.done = true;
                self.error = Some(e);
                None
            }
        }
    }
}

/// Merges sources by timestamp; equal times keep the source order, and each source's own
/// order is kept (even when its clock went backwards). `sink` gets the source index.
pub fn merge<S: Iterator<Item = Entry>>(sources: &mut [S], mut sink: impl FnMut(usize, Entry)) {
    let mut heads: Vec<Option<Entry>> = sources.iter_mut().map(Iterator::next).collect();
    while let Some((_, i)) = heads
        .iter()
        .enumerate()
        .filter_map(|(i, h)| h.as_ref().map(|e| (e.ts, i)))
        .min()
    {
        let next = sources[i].next();
        if let Some(entry) = std::mem::replace(&mut heads[i], next) {
            sink(i, entry);
        }
    }
}

/// Which lines are shown.
#[derive(Clone, Copy, Debug, Default)]
pub struct Filter {
    /// Only lines at or after this time (ms since the epoch).
    pub cutoff_ms: Option<i64>,
    pub stream: Option<Stream>,
}

impl Filter {
    pub fn accepts(&self, e: &Entry) -> bool {
        self.cutoff_ms.is_none_or(|c| e.ts >= c) && self.stream.is_none_or(|s| e.stream == s)
    }
}

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
}

impl<F: FnMut(&str)> Printer<F> {
    pub fn new(prefix: bool, width: usize, filter: Filter, sink: F) -> Self {
        Printer {
            prefix,
            width,
            filter,
            buf: String::new(),
            sink,
        }
    }

    pub fn print(&mut self, name: &str, e: &Entry) {
        if !self.filter.accepts(e) {
            return;
        }
        let prefix = self.prefix.then_some((name, self.width));
        self.buf.push_str(&format_line(prefix, &e.text));
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

/// Prints what the files hold now, merged. Returns one [`Tail`] per source, positioned after
/// what was printed, for following (`follow`: a last line without its newline is left to it).
pub fn dump<F: FnMut(&str)>(
    sources: &[(String, PathBuf)],
    printer: &mut Printer<F>,
    follow: bool,
) -> Vec<Tail> {
    let mut readers = Vec::new();
    let mut opened = Vec::new();
    let mut tails: Vec<Option<Tail>> = Vec::new();
    for (i, (name, path)) in sources.iter().enumerate() {
        match File::open(path) {
            Ok(f) => {
                let ino = f.metadata().ok().map(|m| m.ino());
                readers.push(FileEntries::new(BufReader::new(f), !follow));
                opened.push((i, ino));
                tails.push(None);
            }
            Err(e) => {
                if e.kind() != std::io::ErrorKind::NotFound {
                    eprintln!("warning: cannot read {}: {e}", path.display());
                }
                tails.push(Some(Tail::new(name.clone(), path.clone())));
            }
        }
    }
    merge(&mut readers, |r, e| {
        printer.print(&sources[opened[r].0].0, &e)
    });
    for (reader, (i, ino)) in readers.into_iter().zip(opened) {
        if let Some(e) = &reader.error {
            eprintln!("warning: stopped reading {}: {e}", sources[i].1.display());
        }
        let mut tail = Tail::new(sources[i].0.clone(), sources[i].1.clone());
        tail.pos = reader.consumed;
        tail.ino = ino;
        tail.parser = reader.parser;
        tails[i] = Some(tail);
    }
    tails.into_iter().flatten().collect()
}

// ---------------------------------------------------------------------------------------------
// Following

/// Follows one log file: new lines since the last poll, across truncation and rotation.
#[derive(Debug)]
pub struct Tail {
    pub name: String,
    pub path: PathBuf,
    pos: u64,
    ino: Option<u64>,
    partial: Vec<u8>,
    parser: LineParser,
    warned: bool,
}

impl Tail {
    /// A tail at the start of `path` (which may not exist yet).
    pub fn new(name: String, path: PathBuf) -> Self {
        Tail {
            name,
            path,
            pos: 0,
            ino: None,
            partial: Vec::new(),
            parser: LineParser::default(),
            warned: false,
        }
    }

    /// The complete lines added since the last poll. A replaced file (another inode) or a
    /// shorter one (truncated) is read again from its start.
    pub fn poll(&mut self) -> std::io::Result<Vec<Entry>> {
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        if self.ino.is_some_and(|i| i != meta.ino()) || meta.len() < self.pos {
            self.pos = 0;
            self.partial.clear();
        }
        self.ino = Some(meta.ino());
        if meta.len() == self.pos {
            return Ok(Vec::new());
        }
        let mut f = File::open(&self.path)?;
        f.seek(SeekFrom::Start(self.pos))?;
        let n = f.take(MAX_CHUNK).read_to_end(&mut self.partial)?;
        self.pos += n as u64;
        let complete = match self.partial.iter().rposition(|&b| b == b'\n') {
            Some(last) => last + 1,
            None => return Ok(Vec::new()),
        };
        let rest = self.partial.split_off(complete);
        let lines = std::mem::replace(&mut self.partial, rest);
        Ok(lines
            .split_inclusive(|&b| b == b'\n')
            .map(|l| self.parser.parse(l))
            .collect())
    }

    /// [`Tail::poll`], reporting an error once (and nothing while it persists).
    fn poll_quietly(&mut self) -> Vec<Entry> {
        match self.poll() {
            Ok(v) => {
                self.warned = false;
                v
            }
            Err(e) => {
                if !self.warned {
                    eprintln!("warning: cannot read {}: {e}", self.path.display());
                    self.warned = true;
                }
                Vec::new()
            }
        }
    }
}

/// Polls `tails` every [`POLL`] and prints new lines (merged per poll) until Ctrl-C.
/// With `discover`, log files that appear in that directory are followed too.
fn follow_tails<F: FnMut(&str)>(
    mut tails: Vec<Tail>,
    printer: &mut Printer<F>,
    discover: Option<&Path>,
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
                && let Ok(names) = log_files(dir)
            {
                for name in names {
                    if !tails.iter().any(|t| t.name == name) {
                        let path = log_path(dir, &name);
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
    let mut batches: Vec<std::vec::IntoIter<Entry>> = tails
        .iter_mut()
        .map(|t| t.poll_quietly().into_iter())
        .collect();
    merge(&mut batches, |i, e| printer.print(&tails[i].name, &e));
    printer.flush();
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_runtime::logs::rfc3339_utc;
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
    fn timestamps_round_trip_with_the_writer() {
        for ms in [
            0i64,
            1,
            999,
            86_399_999,
            951_782_400_000,   // 2000-02-29
            1_709_210_096_789, // 2024-02-29T12:34:56.789Z
            1_795_506_060_123, // 2026-11-24
            4_102_444_800_000, // 2100-01-01
        ] {
            let t = UNIX_EPOCH + Duration::from_millis(ms as u64);
            assert_eq!(
                parse_timestamp(&rfc3339_utc(t)),
                Some(ms),
                "{}",
                rfc3339_utc(t)
            );
        }
        assert_eq!(
            parse_timestamp("2024-02-29T12:34:56.789Z"),
            Some(1_709_210_096_789)
        );
        assert_eq!(
            parse_timestamp("2024-02-29T12:34:56Z"),
            Some(1_709_210_096_000)
        );
        assert_eq!(
            parse_timestamp("2024-02-29T12:34:56.7Z"),
            Some(1_709_210_096_700)
        );
        assert_eq!(
            parse_timestamp("2024-02-29T12:34:56.78912Z"),
            Some(1_709_210_096_789)
        );
        for bad in [
            "",
            "2024-02-30T00:00:00.000Z",
            "2023-02-29T00:00:00.000Z",
            "2024-13-01T00:00:00.000Z",
            "2024-01-01T24:00:00.000Z",
            "2024-01-01 00:00:00.000Z",
            "2024-01-01T00:00:00.000",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00.0a0Z",
            "+024-01-01T00:00:00.000Z",
            "hello world, not a time",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn lines_parse_and_foreign_lines_stay_in_place() {
        let mut p = LineParser::default();
        let e = p.parse(b"2024-02-29T12:34:56.789Z err boom: x y\n");
        assert_eq!(e.ts, 1_709_210_096_789);
        assert_eq!(e.stream, Stream::Err);
        assert_eq!(e.text, "boom: x y");
        assert_eq!(p.parse(b"2024-02-29T12:34:56.790Z out \n").text, "");
        assert_eq!(p.parse(b"2024-02-29T12:34:56.790Z out").text, "");
        let cont = p.parse(b"  continuation without a timestamp\n");
        assert_eq!(cont.ts, 1_709_210_096_790);
        assert_eq!(cont.text, "  continuation without a timestamp");
        let odd = p.parse(b"2024-02-29T12:34:57.000Z stdout x\n");
        assert_eq!(odd.ts, 1_709_210_096_790, "unknown tag: not a log line");
        assert_eq!(LineParser::default().parse(b"first").ts, i64::MIN);
        assert_eq!(
            p.parse(b"\xff\xfe bad utf8").text,
            "\u{fffd}\u{fffd} bad utf8"
        );
    }

    #[test]
    fn merge_orders_by_time_and_keeps_ties_and_file_order() {
        let a = vec![entry(10, "a1"), entry(30, "a2"), entry(30, "a3")];
        let b = vec![
            entry(5, "b1"),
            entry(30, "b2"),
            entry(20, "b3-clock-went-back"),
        ];
        let mut sources = [a.into_iter(), b.into_iter()];
        let mut got = Vec::new();
        merge(&mut sources, |i, e| got.push(format!("{i}:{}", e.text)));
        assert_eq!(
            got,
            [
                "1:b1",
                "0:a1",
                "0:a2",
                "0:a3",
                "1:b2",
                "1:b3-clock-went-back"
            ]
        );
        let mut none: [std::vec::IntoIter<Entry>; 0] = [];
        merge(&mut none, |_, _| panic!());
    }

    #[test]
    fn filters_and_prefixes() {
        let f = Filter {
            cutoff_ms: Some(100),
            stream: Some(Stream::Err),
        };
        assert!(!f.accepts(&entry(200, "x")));
        assert!(f.accepts(&Entry {
            ts: 100,
            stream: Stream::Err,
            text: String::new()
        }));
        assert!(!f.accepts(&Entry {
            ts: 99,
            stream: Stream::Err,
            text: String::new()
        }));
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
            .map(|n| (n.to_string(), log_path(&dir, n)))
            .collect();
        let (mut printer, out) = collecting(true, 7, Filter::default());
        let tails = dump(&sources, &mut printer, false);
        printer.flush();
        assert_eq!(
            out.borrow().as_str(),
            "db      | db starting\napi     | api starting\ndb      | db warn\napi     | api ready\ndb      | db ready\napi     | partial\n"
        );
        assert_eq!(tails.len(), 3);

        let cutoff = parse_timestamp("2026-11-24T07:41:00.300Z");
        let (mut printer, out) = collecting(
            false,
            0,
            Filter {
                cutoff_ms: cutoff,
                stream: Some(Stream::Out),
            },
        );
        dump(&sources[..1], &mut printer, false);
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
        let mut tails = dump(&sources, &mut printer, true);
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
