//! What `gantry up` prints: prefixed service output, lifecycle lines, the final summary; plain, coloured (TTY) or JSON lines.

use crate::process::StreamKind;
use std::io::Write as _;
use std::time::SystemTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    /// A terminal: coloured name prefixes.
    Tty,
    /// Plain timestamped lines (pipes, files, CI).
    Plain,
    /// One JSON object per line: the event stream.
    Json,
}

const COLORS: [&str; 6] = ["36", "33", "35", "32", "34", "91"];

#[derive(Debug)]
pub struct Output {
    mode: OutputMode,
    width: usize,
    /// The live board's rows (TTY only, during boot) and how many lines are on screen.
    board: std::cell::RefCell<Vec<String>>,
    drawn: std::cell::Cell<usize>,
    board_on: std::cell::Cell<bool>,
}

/// One service's row on the live board.
#[derive(Debug, Clone)]
pub struct BoardRow {
    pub name: String,
    pub state: String,
    pub elapsed: std::time::Duration,
    pub attempt: u32,
    pub note: Option<String>,
}

impl Output {
    pub fn new(mode: OutputMode, names: &[&str]) -> Output {
        let width = names.iter().map(|n| n.len()).max().unwrap_or(6).max(6);
        Output {
            mode,
            width,
            board: Default::default(),
            drawn: Default::default(),
            board_on: std::cell::Cell::new(mode == OutputMode::Tty),
        }
    }

    /// Replaces the live board's rows and redraws it (TTY during boot only).
    pub fn board(&self, rows: &[BoardRow]) {
        if !self.board_on.get() {
            return;
        }
        let text = rows
            .iter()
            .map(|r| {
                let (icon, color) = match r.state.as_str() {
                    "ready" | "running" | "completed" => ("✓", "32"),
                    "failed" => ("✗", "31"),
                    "skipped" => ("-", "90"),
                    "starting" => ("…", "33"),
                    _ => ("·", "90"),
                };
                let secs = r.elapsed.as_secs_f64();
                let time = if r.state == "pending" {
                    String::new()
                } else {
                    format!("{secs:>6.2} s")
                };
                let attempt = if r.attempt > 1 {
                    format!("  attempt {}", r.attempt)
                } else {
                    String::new()
                };
                let note = r
                    .note
                    .as_deref()
                    .map(|n| format!("  {n}"))
                    .unwrap_or_default();
                let mut line = format!(
                    "  \x1b[{color}m{icon}\x1b[0m {:<w$} {:<10} {time}{attempt}{note}",
                    r.name,
                    r.state,
                    w = self.width
                );
                // Keep each row on one terminal line so the redraw arithmetic holds.
                if line.chars().count() > 160 {
                    line = line.chars().take(157).collect::<String>() + "...";
                }
                line
            })
            .collect();
        *self.board.borrow_mut() = text;
        let mut out = std::io::stdout().lock();
        self.erase(&mut out);
        self.draw(&mut out);
        let _ = out.flush();
    }

    /// Removes the board for good (the boot is decided).
    pub fn end_board(&self) {
        if self.board_on.replace(false) {
            let mut out = std::io::stdout().lock();
            self.erase(&mut out);
            let _ = out.flush();
        }
    }

    fn erase(&self, out: &mut impl std::io::Write) {
        let n = self.drawn.replace(0);
        if n > 0 {
            let _ = write!(out, "\x1b[{n}F\x1b[J");
        }
    }

    fn draw(&self, out: &mut impl std::io::Write) {
        if !self.board_on.get() {
            return;
        }
        let rows = self.board.borrow();
        for r in rows.iter() {
            let _ = writeln!(out, "{r}");
        }
        self.drawn.set(rows.len());
    }

    pub fn mode(&self) -> OutputMode {
        self.mode
    }

    fn stamp() -> String {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let secs = now.as_secs() % 86_400;
        format!(
            "{:02}:{:02}:{:02}.{:03}",
            secs / 3600,
            secs / 60 % 60,
            secs % 60,
            now.subsec_millis()
        )
    }

    fn prefix(&self, name: &str, index: usize) -> String {
        match self.mode {
            OutputMode::Tty => format!(
                "\x1b[{}m{name:<w$}\x1b[0m |",
                COLORS[index % COLORS.len()],
                w = self.width
            ),
            _ => format!("{} {name:<w$} |", Self::stamp(), w = self.width),
        }
    }

    fn write(&self, line: &str) {
        let mut out = std::io::stdout().lock();
        self.erase(&mut out);
        let _ = writeln!(out, "{line}");
        self.draw(&mut out);
        let _ = out.flush();
    }

    /// A line a service printed.
    pub fn service_line(&self, name: &str, index: usize, stream: StreamKind, line: &str) {
        if self.mode == OutputMode::Json {
            self.json(serde_json::json!({ "event": "output", "service": name, "stream": stream.as_str(), "line": line }));
        } else {
            // Control sequences in a service's output are shown, not obeyed (colour may
            // pass on a terminal).
            let line = gantry_state::logfmt::terminal_safe(line, self.mode == OutputMode::Tty);
            self.write(&format!("{} {line}", self.prefix(name, index)));
        }
    }

    /// A lifecycle line from gantry itself about one service or the stack.
    pub fn gantry_line(&self, text: &str) {
        match self.mode {
            OutputMode::Json => {}
            OutputMode::Tty => self.write(&format!(
                "\x1b[1m{:<w$}\x1b[0m | {text}",
                "gantry",
                w = self.width
            )),
            OutputMode::Plain => self.write(&format!(
                "{} {:<w$} | {text}",
                Self::stamp(),
                "gantry",
                w = self.width
            )),
        }
    }

    /// Writes one line exactly as given (the JSON event stream).
    pub fn raw(&self, line: &str) {
        self.write(line);
    }

    pub fn json(&self, mut value: serde_json::Value) {
        if let Some(obj) = value.as_object_mut() {
            let ms = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis() as u64;
            obj.insert("ts_ms".into(), ms.into());
        }
        self.write(&value.to_string());
    }

    /// The boot verdict, emphasised on a terminal.
    pub fn verdict(&self, ok: bool, text: &str) {
        match self.mode {
            OutputMode::Json => {}
            OutputMode::Tty => {
                let color = if ok { "32" } else { "31" };
                self.write(&format!(
                    "\x1b[1m{:<w$}\x1b[0m | \x1b[1;{color}m{text}\x1b[0m",
                    "gantry",
                    w = self.width
                ));
            }
            OutputMode::Plain => self.gantry_line(text),
        }
    }
}
