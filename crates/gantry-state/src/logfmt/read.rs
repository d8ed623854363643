//! Reading per-service log files back: parsing lines, merging files by time, following them across growth, truncation and rotation.
//!
//! Nothing here prints: entries go to a sink, problems to a `warn` callback, so `gantry logs`
//! keeps only its arguments and its output.

use super::Stream;
use crate::dir::service_of_log_file;
use gantry_time::parse_rfc3339_ms;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

/// At most this much is read from one file per poll (the rest comes at the next one).
const MAX_CHUNK: u64 = 8 << 20;

/// One output line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Milliseconds since the Unix epoch (`i64::MIN` for a line before any timestamp).
    pub ts: i64,
    pub stream: Stream,
    pub text: String,
}

// ---------------------------------------------------------------------------------------------
// Parsing

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
            && let Some(ts) = parse_rfc3339_ms(ts)
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

/// Reads what the files of `sources` (name, path) hold now and hands their entries, merged
/// by time, to `sink` (with the source's name). Returns one [`Tail`] per source, positioned
/// after what was read, for following (`follow`: a last line without its newline is left to
/// it). A missing file is not an error (its tail waits for it); other read errors go to
/// `warn`.
pub fn dump(
    sources: &[(String, PathBuf)],
    follow: bool,
    mut sink: impl FnMut(&str, &Entry),
    mut warn: impl FnMut(String),
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
                    warn(format!("cannot read {}: {e}", path.display()));
                }
                tails.push(Some(Tail::new(name.clone(), path.clone())));
            }
        }
    }
    merge(&mut readers, |r, e| sink(&sources[opened[r].0].0, &e));
    for (reader, (i, ino)) in readers.into_iter().zip(opened) {
        if let Some(e) = &reader.error {
            warn(format!("stopped reading {}: {e}", sources[i].1.display()));
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

    /// [`Tail::poll`], handing an error to `warn` once (and nothing while it persists).
    fn poll_reporting(&mut self, warn: &mut impl FnMut(String)) -> Vec<Entry> {
        match self.poll() {
            Ok(v) => {
                self.warned = false;
                v
            }
            Err(e) => {
                if !self.warned {
                    warn(format!("cannot read {}: {e}", self.path.display()));
                    self.warned = true;
                }
                Vec::new()
            }
        }
    }
}

/// One poll of every tail: the new lines, merged by time, go to `sink` with the tail's name;
/// a read error goes to `warn` once while it lasts.
pub fn poll_all(
    tails: &mut [Tail],
    mut sink: impl FnMut(&str, &Entry),
    mut warn: impl FnMut(String),
) {
    let mut batches: Vec<std::vec::IntoIter<Entry>> = tails
        .iter_mut()
        .map(|t| t.poll_reporting(&mut warn).into_iter())
        .collect();
    merge(&mut batches, |i, e| sink(&tails[i].name, &e));
}

/// Service names that have a log file in `logs_dir`, sorted.
pub fn service_logs(logs_dir: &Path) -> std::io::Result<Vec<String>> {
    let mut out: Vec<String> = std::fs::read_dir(logs_dir)?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            service_of_log_file(&name).map(str::to_string)
        })
        .collect();
    out.sort();
    Ok(out)
}

/// The last `n` complete lines of a log file, oldest first, read from at most its last `window`
/// bytes (the web page's log tail: a bounded read however large the file). A missing file has
/// no lines.
pub fn tail(path: &Path, n: usize, window: u64) -> std::io::Result<Vec<Entry>> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    let start = len.saturating_sub(window);
    file.seek(SeekFrom::Start(start))?;
    let mut reader = BufReader::new(file.take(len - start));
    if start > 0 {
        // Mid-line: the first, partial line is not shown.
        let mut skipped = Vec::new();
        reader.read_until(b'\n', &mut skipped)?;
    }
    let mut last = std::collections::VecDeque::with_capacity(n.min(4096));
    for entry in FileEntries::new(reader, false) {
        if last.len() == n {
            last.pop_front();
        }
        if n > 0 {
            last.push_back(entry);
        }
    }
    Ok(last.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dir::log_file_in;
    use std::io::Write as _;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn tempdir(name: &str) -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "gantry-logfmt-unit-{}-{}-{name}",
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

    #[test]
    fn tail_keeps_the_last_lines_of_a_bounded_window() {
        let dir = tempdir("tail");
        let path = dir.join("svc.log");
        assert!(
            tail(&path, 5, 1024).unwrap().is_empty(),
            "a missing file has no lines"
        );
        let text: String = (0..100)
            .map(|i| format!("2026-01-01T00:00:00.{i:03}Z out line {i}\n"))
            .collect();
        append(&path, &text);
        append(&path, "2026-01-01T00:00:01.000Z out partial");
        let last = tail(&path, 3, 1 << 20).unwrap();
        let texts: Vec<&str> = last.iter().map(|e| e.text.as_str()).collect();
        assert_eq!(texts, ["line 97", "line 98", "line 99"]);
        // A window shorter than the file: only whole lines from inside it.
        let few = tail(&path, 1000, 200).unwrap();
        assert!(
            few.len() < 10 && few.last().unwrap().text == "line 99",
            "{few:?}"
        );
        assert!(few.iter().all(|e| e.text.starts_with("line ")));
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
    fn lines_written_by_log_file_parse_back() {
        let dir = tempdir("roundtrip");
        let mut log = super::super::LogFile::open(&dir, "api").unwrap();
        log.write_batch(Stream::Out, ["hello", "two words"])
            .unwrap();
        log.write_line(Stream::Err, "oops").unwrap();
        log.flush().unwrap();
        let text = std::fs::read(crate::StateDir::new(&dir).log_file("api")).unwrap();
        let entries: Vec<Entry> = FileEntries::new(&text[..], true).collect();
        let got: Vec<(Stream, &str)> = entries
            .iter()
            .map(|e| (e.stream, e.text.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (Stream::Out, "hello"),
                (Stream::Out, "two words"),
                (Stream::Err, "oops")
            ]
        );
        assert!(
            entries.iter().all(|e| e.ts > 1_700_000_000_000),
            "{entries:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
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
    fn filters() {
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
    }

    #[test]
    fn dump_then_poll_hands_merged_entries_to_the_sink() {
        let dir = tempdir("dump");
        append(
            &log_file_in(&dir, "db"),
            "2026-11-24T07:41:00.100Z out db starting\n2026-11-24T07:41:00.300Z err db warn\n",
        );
        append(
            &log_file_in(&dir, "api"),
            "2026-11-24T07:41:00.200Z out api starting\n2026-11-24T07:41:00.400Z out api par",
        );
        let sources: Vec<(String, PathBuf)> = ["db", "api", "missing"]
            .iter()
            .map(|n| (n.to_string(), log_file_in(&dir, n)))
            .collect();
        let mut got = Vec::new();
        let mut warnings = Vec::new();
        let mut tails = dump(
            &sources,
            true,
            |n, e| got.push(format!("{n}:{}", e.text)),
            |w| warnings.push(w),
        );
        assert_eq!(got, ["db:db starting", "api:api starting", "db:db warn"]);
        assert_eq!(tails.len(), 3);
        got.clear();
        append(&log_file_in(&dir, "api"), "tial\n");
        append(
            &log_file_in(&dir, "missing"),
            "2026-11-24T07:41:00.350Z out late\n",
        );
        poll_all(
            &mut tails,
            |n, e| got.push(format!("{n}:{}", e.text)),
            |w| warnings.push(w),
        );
        assert_eq!(got, ["missing:late", "api:api partial"]);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(service_logs(&dir).unwrap(), ["api", "db", "missing"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
