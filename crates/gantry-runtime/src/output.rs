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
}

impl Output {
    pub fn new(mode: OutputMode, names: &[&str]) -> Output {
        let width = names.iter().map(|n| n.len()).max().unwrap_or(6).max(6);
        Output { mode, width }
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
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    /// A line a service printed.
    pub fn service_line(&self, name: &str, index: usize, stream: StreamKind, line: &str) {
        if self.mode == OutputMode::Json {
            self.json(serde_json::json!({ "event": "output", "service": name, "stream": stream.as_str(), "line": line }));
        } else {
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
